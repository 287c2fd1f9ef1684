"""Nested SELECT (iot-core-rules-and-limits §1.1/§1.2; AWS "Nested object queries",
https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-nested-queries.html, and the
``transform`` examples of the functions page): through the SQL text, ``plantwatch rules
eval`` and a rules file the runner loads."""

from __future__ import annotations

import json
import re

import pytest

from cloud.adapters.local import InMemoryObjectStore, InMemoryPublisher
from cloud.batcher import Batcher, BatcherConfig
from cloud.cli.main import main
from cloud.rules.compiled import compile_statement
from cloud.rules.definitions import rules_from_document
from cloud.rules.evaluate import Message, evaluate
from cloud.rules.runner import RulesRunner
from cloud.rules.sql import parse
from edge.clock import ManualClock
from edge.errors import RuleSqlError

SENML = (
    b'{"e": [{"n": "temperature", "u": "Cel", "t": 1234, "v": 22.5},'
    b' {"n": "light", "u": "lm", "t": 1235, "v": 135},'
    b' {"n": "acidity", "u": "pH", "t": 1235, "v": 7}]}'
)
TRANSFORM_3 = json.dumps(
    {
        "data1": "example",
        "data2": {
            "a": "first attribute",
            "b": "second attribute",
            "c": [
                {"x": {"someInt": 5, "someString": "hello"}, "y": True},
                {"x": {"someInt": 10, "someString": "world"}, "y": False},
            ],
        },
    }
).encode()


def eval_bytes(sql: str, payload: bytes, topic: str = "my/topic") -> bytes | None:
    out = evaluate(parse(sql), Message(topic, payload, client_id="c", timestamp_ms=7))
    return None if out is None else out.to_bytes()


def cli(sql: str, payload: bytes, topic: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["rules", "eval", "--sql", sql, "--topic", topic, "--payload", payload.decode()])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT (SELECT VALUE n FROM e) as sensors FROM 'my/topic'",
            b'{"sensors":["temperature","light","acidity"]}',
        ),
        (
            "SELECT (SELECT v FROM e WHERE n = 'temperature') as temperature FROM 'my/topic'",
            b'{"temperature":[{"v":22.5}]}',
        ),
        (
            "SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v as temperature "
            "FROM 'my/topic'",
            b'{"temperature":22.5}',
        ),
    ],
)
def test_the_aws_page_examples_print_as_documented(
    sql: str, expected: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(sql, SENML, "my/topic", capsys) == expected.decode() + "\n"


def test_the_spec_example_yields_an_array_of_objects() -> None:
    sql = "SELECT (SELECT v FROM e WHERE n = 'temperature') AS t FROM 'my/topic'"
    assert eval_bytes(sql, SENML) == b'{"t":[{"v":22.5}]}'


def test_a_nested_select_on_an_object_is_its_one_result() -> None:
    """AWS's ``transform`` example 3 reads ``(select a, b from data2)`` as an object and
    ``(select value c from data2)`` as ``data2.c`` itself."""
    sql = "SELECT (select a, b from data2) AS o, (select value c from data2) AS c FROM 'A/B'"
    doc = json.loads(eval_bytes(sql, TRANSFORM_3, "A/B") or b"")
    assert doc == {
        "o": {"a": "first attribute", "b": "second attribute"},
        "c": json.loads(TRANSFORM_3)["data2"]["c"],
    }


@pytest.mark.parametrize(
    ("select", "payload", "expected"),
    [
        # missing, Null, a number or a string as the source: Undefined, so the key is omitted
        ("(SELECT v FROM nope) AS x", b'{"e": []}', b"{}"),
        ("(SELECT v FROM e) AS x", b'{"e": null}', b"{}"),
        ("(SELECT v FROM e) AS x", b'{"e": 5}', b"{}"),
        ("(SELECT v FROM e) AS x", b'{"e": "abc"}', b"{}"),
        ("(SELECT v FROM e) AS x", b"not json", b"{}"),
        # an empty array, or no element passing WHERE: an empty array
        ("(SELECT v FROM e) AS x", b'{"e": []}', b'{"x":[]}'),
        ("(SELECT v FROM e WHERE v > 100) AS x", b'{"e": [{"v": 1}]}', b'{"x":[]}'),
        # elements that are not objects: their fields are Undefined
        ("(SELECT v FROM e) AS x", b'{"e": [1, {"v": 2}, [3]]}', b'{"x":[{},{"v":2},{}]}'),
        ("(SELECT VALUE v FROM e) AS x", b'{"e": [1, {"v": 2}, {"w": 3}]}', b'{"x":[2]}'),
        # '*' is the element; alone on a non-object element, the element itself
        ("(SELECT * FROM e WHERE v = 2) AS x", b'{"e": [{"v": 1}, {"v": 2}]}', b'{"x":[{"v":2}]}'),
        ("(SELECT * FROM e) AS x", b'{"e": [1, "a", {"v": 2}]}', b'{"x":[1,"a",{"v":2}]}'),
        (
            "(SELECT *, 1 AS k FROM e) AS x",
            b'{"e": [{"v": 2}, 3]}',
            b'{"x":[{"v":2,"k":1},{"k":1}]}',
        ),
        # a whole Decimal in an element is an Int (2016-03-23), as at the top level
        (
            "(SELECT VALUE v / 4 FROM e) AS x",
            b'{"e": [{"v": 10.0}, {"v": 2.5}]}',
            b'{"x":[2,0.625]}',
        ),
        # WHERE passes only on true: Undefined and Null skip the element
        (
            "(SELECT VALUE n FROM e WHERE v < 20) AS x",
            b'{"e": [{"n": "a", "v": 5}, {"n": "b"}, {"n": "c", "v": null}, {"n": "d", "v": "1"}]}',
            b'{"x":["a","d"]}',
        ),
        # a path as the source, and a nested SELECT inside a nested SELECT
        ("(SELECT VALUE v FROM m.e) AS x", b'{"m": {"e": [{"v": 1}]}}', b'{"x":[1]}'),
        (
            "(SELECT (SELECT VALUE q FROM b WHERE q > 1) AS qs FROM a) AS x",
            b'{"a": [{"b": [{"q": 1}, {"q": 2}]}, {"b": []}, {"c": 1}]}',
            b'{"x":[{"qs":[2]},{"qs":[]},{}]}',
        ),
        # names inside resolve against the element; functions still read the message
        ("(SELECT VALUE topic(2) + n FROM e) AS x", b'{"e": [{"n": "1"}]}', b'{"x":["topic1"]}'),
        ("(SELECT VALUE n FROM e) AS x", b'{"n": "outer", "e": [{"m": 1}]}', b'{"x":[]}'),
        # encode(*) inside a nested SELECT encodes the element, not the whole payload
        (
            "(SELECT VALUE encode(*, 'base64') FROM e) AS x",
            b'{"e": [{"v": 1}]}',
            b'{"x":["eyJ2IjoxfQ=="]}',
        ),
    ],
)
def test_nested_select_cases(select: str, payload: bytes, expected: bytes) -> None:
    assert eval_bytes(f"SELECT {select} FROM 'my/topic'", payload) == expected


def test_select_value_of_a_nested_select_is_the_array() -> None:
    sql = "SELECT VALUE (SELECT VALUE v FROM e WHERE v > 100) FROM 'my/topic'"
    assert eval_bytes(sql, SENML) == b"[135]"


def test_a_nested_select_in_where_decides_the_rule() -> None:
    sql = (
        "SELECT VALUE 'hot' FROM 'my/topic' "
        "WHERE get((SELECT VALUE v FROM e WHERE n = 'temperature'), 0) > 20"
    )
    assert eval_bytes(sql, SENML) == b'"hot"'
    assert eval_bytes(sql, SENML.replace(b"22.5", b"12.5")) is None


@pytest.mark.parametrize(
    ("select", "payload", "expected"),
    [
        # FROM *: the payload as rows; an object is one row (AWS's validation sample reads
        # get(..., 0) of it), an array's elements are rows, anything else is Undefined
        ("(SELECT v FROM *) AS x", b'{"v": 1, "w": 2}', b'{"x":[{"v":1}]}'),
        ("(SELECT v FROM * WHERE v > 5) AS x", b'{"v": 1}', b'{"x":[]}'),
        ("(SELECT VALUE v FROM *) AS x", b'[{"v": 1}, {"v": 2}, 3]', b'{"x":[1,2]}'),
        ("(SELECT v FROM *) AS x", b"not json", b"{}"),
        ("(SELECT v FROM *) AS x", b"7", b"{}"),
        # inside a nested SELECT, * is the element, as a value too
        (
            "(SELECT VALUE (SELECT VALUE w FROM *) FROM e) AS x",
            b'{"e": [{"w": 1}]}',
            b'{"x":[[1]]}',
        ),
        (
            "(SELECT * AS el FROM e) AS x",
            b'{"e": [{"w": 1}, 2]}',
            b'{"x":[{"el":{"w":1}},{"el":2}]}',
        ),
        # *.name is the payload's field, named by its last segment when unaliased
        ("*.m.v", b'{"m": {"v": 4}}', b'{"v":4}'),
        ("encode(*.m, 'base64') AS b", b'{"m": "hi"}', b'{"b":"aGk="}'),
        # * AS name: the payload object; a payload that is not JSON has none (Undefined)
        ("* AS p, 1 AS one", b'{"a": 1}', b'{"p":{"a":1},"one":1}'),
        ("* AS p, 1 AS one", b"\x00binary", b'{"one":1}'),
        ("* AS p.q", b"[1, 2]", b'{"p":{"q":[1,2]}}'),
    ],
)
def test_star_as_a_value(select: str, payload: bytes, expected: bytes) -> None:
    assert eval_bytes(f"SELECT {select} FROM 'my/topic'", payload) == expected


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ("isNull(SELECT VALUE v FROM e) AS x", b'{"x":false}'),
        (
            "concat(SELECT VALUE n FROM e, ['x']) AS x",
            b'{"x":["temperature","light","acidity","x"]}',
        ),
        ("get(SELECT v, n FROM e WHERE v > 100, 0).n AS x", b'{"x":"light"}'),
    ],
)
def test_a_nested_select_may_be_a_bare_function_argument(select: str, expected: bytes) -> None:
    """AWS's rules validation sample runs ``isNull(SELECT VALUE L1 FROM Pos)``: inside a
    call's parentheses a nested SELECT needs none of its own; ',' or ')' ends it."""
    assert eval_bytes(f"SELECT {select} FROM 'my/topic'", SENML) == expected


def test_star_paths_read_the_payload_in_where() -> None:
    sql = "SELECT VALUE *.v FROM 'my/topic' WHERE *.v > 1"
    assert eval_bytes(sql, b'{"v": 2}') == b"2"
    assert eval_bytes(sql, b'{"v": 1}') is None


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT (SELECT v FROM 'a/b') AS x FROM 't'", "not a topic"),
        ("SELECT VALUE * FROM 't'", "SELECT VALUE * is not supported"),
        ("SELECT * + 1 AS x FROM 't'", "expected FROM"),
        ("SELECT a AS x FROM 't' WHERE * = 1", "'*' is only allowed as a SELECT item"),
        ("SELECT SELECT v FROM e AS x FROM 't'", "must be in parentheses"),
        ("SELECT (SELECT v FROM e AS x FROM 't'", "expected ')'"),
        ("SELECT (SELECT v + 1 FROM e) AS x FROM 't'", "needs an alias"),
        ("SELECT (SELECT VALUE v AS y FROM e) AS x FROM 't'", "takes no alias"),
        ("SELECT (SELECT v FROM e) FROM 't'", "needs an alias"),
        ("SELECT " + "(SELECT VALUE v FROM " * 40 + "e" + ")" * 40 + " AS x FROM 't'", "deeper"),
    ],
)
def test_malformed_nested_selects_are_refused_at_load(sql: str, reason: str) -> None:
    with pytest.raises(RuleSqlError, match=re.escape(reason)):
        parse(sql)


def test_a_rules_file_with_a_nested_select_runs_in_the_rules_runner() -> None:
    """The runner compiles only envelope-reading rules; a nested SELECT goes through the
    evaluator, and the republish action receives its output (and a substitution template
    may hold one too: §1.8, any function or operator)."""
    doc = {
        "rules": [
            {
                "ruleName": "temps",
                "topicRulePayload": {
                    "sql": "SELECT (SELECT v FROM e WHERE n = 'temperature') AS t FROM 'my/#'",
                    "awsIotSqlVersion": "2016-03-23",
                    "actions": [{"republish": {"topic": "out/${get((SELECT VALUE n FROM e), 1)}"}}],
                },
            }
        ]
    }
    rules = rules_from_document(doc)
    assert compile_statement(rules[0].statement) is None
    clock = ManualClock(1652443800)
    publisher = InMemoryPublisher()
    batcher = Batcher(InMemoryObjectStore(), BatcherConfig(), clock)
    runner = RulesRunner("mqtt://127.0.0.1:1", rules, batcher, clock, republisher=publisher)
    runner.handle("my/topic", SENML, client_id="dev7")
    assert publisher.published == [("out/light", b'{"t":[{"v":22.5}]}', 0)]


def test_the_deepest_nested_select_that_loads_evaluates_without_recursion_error() -> None:
    """Each nested SELECT costs the evaluator several Python frames; the load-time limits
    (parenthesis nesting, tree depth 256) must keep any rule that loads runnable."""
    deepest = 0
    for n in range(1, 80):
        sql = "SELECT " + "(SELECT VALUE " * n + "e" + " FROM e)" * n + " AS x FROM '#'"
        try:
            parse(sql)
        except RuleSqlError:
            break
        deepest = n
    assert 10 <= deepest < 80
    for chain in range(150, 3000, 25):
        inner = "a" + ".b" * chain
        sql = (
            "SELECT " + "(SELECT VALUE " * deepest + inner + " FROM e)" * deepest + " AS x FROM '#'"
        )
        try:
            statement = parse(sql)
        except RuleSqlError:
            break
        doc: object = {"a": 1}
        for _ in range(deepest):
            doc = {"e": [doc]}
        out = evaluate(statement, Message("a", json.dumps(doc).encode()))
        assert out is not None and out.to_bytes().startswith(b'{"x":')
