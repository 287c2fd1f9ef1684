"""The IoT SQL subset behaves as the spec's tables say (iot-core-rules-and-limits §1)."""

from __future__ import annotations

import base64
import json
import re

import pytest

from cloud.rules.evaluate import Message, RuleOutput, evaluate
from cloud.rules.sql import parse
from cloud.rules.topic_filter import topic_matches
from edge.errors import RuleSqlError

TOPIC = "dt/plantwatch/s1/dev7/telemetry"
PAYLOAD = {"t": 21.5, "m": {"v": 40}, "arr": [1, 2], "moisture": 12, "s": "dry"}


def run(select: str, payload: object = PAYLOAD, *, where: str = "", topic: str = TOPIC) -> object:
    sql = f"SELECT {select} FROM 'dt/plantwatch/+/+/telemetry'" + (
        f" WHERE {where}" if where else ""
    )
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    out = evaluate(parse(sql), Message(topic, body, client_id="dev7", timestamp_ms=1234))
    return None if out is None else out.value


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ("*", PAYLOAD),
        ("t", {"t": 21.5}),
        ("t AS temp", {"temp": 21.5}),
        ("*, 15 AS speed", {**PAYLOAD, "speed": 15}),
        ("m.v AS moist", {"moist": 40}),
        ("m.v", {"v": 40}),
        ("get(arr, 0) AS first", {"first": 1}),
        ("VALUE t", 21.5),
        ("VALUE nothing", ""),
        ("[t, m.v] AS pair", {"pair": [21.5, 40]}),
        ("{'a': t, 'b': nothing} AS o", {"o": {"a": 21.5}}),
        ("a, t", {"t": 21.5}),
        (
            "topic(4) AS thing, topic() AS whole, topic(9) AS none",
            {"thing": "dev7", "whole": TOPIC},
        ),
        ("clientid() AS c, timestamp() AS ts", {"c": "dev7", "ts": 1234}),
        (
            "7 / 2 AS a, -7 / 2 AS b, 7 % 3 AS c, 7.5 / 2 AS d, 1 / 0 AS z",
            {"a": 3, "b": -3, "c": 1, "d": 3.75},
        ),
        ("'a' + 1 AS x, 1 + '2' AS y, '3' * 2 AS z", {"x": "a1", "y": "12", "z": 6.0}),
        (
            "round(1.5) AS a, round(-1.5) AS b, floor(-1.2) AS c, ceil(-1.2) AS d",
            {"a": 2, "b": -2, "c": -2, "d": -1},
        ),
        ("abs(-3) AS a, abs('-2.5') AS b, abs(s) AS c", {"a": 3, "b": 2.5}),
        (
            "concat(arr, 3) AS a, concat('x', 1, true) AS b, concat(s) AS c",
            {"a": [1, 2, 3], "b": "x1true", "c": "dry"},
        ),
        ("lower('AbC') AS a, upper(s) AS b", {"a": "abc", "b": "DRY"}),
        (
            "substring('hello', 1, 3) AS a, substring('hello', 3, 1) AS b, substring('hello', -5) AS c",
            {"a": "el", "b": "", "c": "hello"},
        ),
        ("startswith(s, 'd') AS a, startswith(NULL, 'd') AS b", {"a": True}),
        (
            "cast('12.7' AS Int) AS a, cast(true AS Int) AS b, cast(3 AS String) AS c, cast(0 AS Bool) AS d, cast(NULL AS Int) AS e",
            {"a": 12, "b": 1, "c": "3", "d": False},
        ),
        (
            "isUndefined(nope) AS a, isNull(nope) AS b, isNull(NULL) AS c",
            {"a": True, "b": False, "c": True},
        ),
        ("get(m, 'v') AS a, get('abc', 1) AS b, get(arr, 5) AS c", {"a": 40, "b": "b"}),
        ("decode(encode(*, 'base64'), 'base64').t AS t", {"t": 21.5}),
        ("decode('!!!', 'base64') AS bad", {"bad": None}),
        (
            "parse_time('yyyy-MM-dd''T''HH:mm:ss.SSS', 1652443860123) AS a, "
            "parse_time('yy/M/d H:mm Z', 1652443860123, 'Asia/Kolkata') AS b, "
            "parse_time('yyyy', 0, 'No/Where') AS c",
            {"a": "2022-05-13T12:11:00.123", "b": "22/5/13 17:41 +0530"},
        ),
    ],
)
def test_select(select: str, expected: object) -> None:
    assert run(select) == expected


@pytest.mark.parametrize(
    ("where", "passes"),
    [
        ("moisture < 20", True),
        ("moisture < 10", False),
        ("nothing < 20", False),  # Undefined skips the actions
        ("s < 20", False),
        ("s = 'dry' AND moisture < 20", True),
        ("(s = 'wet' OR moisture < 20) AND NOT false", True),
        ("s = 1", False),
        ("s <> 1", True),
        ("m = {'v': 40}", True),
        ("arr = [1, 2]", True),
        ("arr = [2, 1]", False),
        ("moisture = 12.0", True),
        ("true AND 1", False),
        ("'true' AND true", True),
        ("NULL", False),
    ],
)
def test_where(where: str, passes: bool) -> None:
    assert (run("t", where=where) is not None) is passes


def test_from_follows_aws_matching() -> None:
    assert topic_matches("sensor/#", "sensor/")
    assert topic_matches("sensor/#", "sensor/a/b")
    assert not topic_matches("sensor/#", "sensor")
    assert topic_matches("a/+/c", "a/b/c")
    assert not topic_matches("a/+/c", "a/b/c/d")
    assert not topic_matches("#", "$aws/things/x")
    assert run("t", topic="dt/plantwatch/s1/telemetry") is None


def test_non_json_payload_passes_through_star_and_encodes() -> None:
    assert run("*", b"\x00\x01") == b"\x00\x01"
    assert run("encode(*, 'base64') AS d", b"\x00\x01") == {
        "d": base64.b64encode(b"\x00\x01").decode()
    }
    assert run("t", b"\x00") == {}


def test_whole_decimals_become_ints() -> None:
    assert run("*", b'{"a": 10.0, "b": 1.5}') == {"a": 10, "b": 1.5}


@pytest.mark.parametrize(
    ("sql", "position", "reason"),
    [
        ("SELECT a[0] AS x FROM 't'", 9, "get(x, n)"),
        ("SELECT a FROM t", 15, "quoted topic filter"),
        ("SELECT foo(1) AS f FROM 't'", 8, "foo() is not supported"),
        ("SELECT 1 FROM 't'", 8, "needs an alias"),
        ("SELECT a FROM 't' WHERE a != 1", 27, "use '<>'"),
        ("SELECT a FROM 't/#/x'", 15, "'#'"),
        ("SELECT a FROM 't' -- hi", 19, "comments"),
        ("SELECT aws_lambda('arn', *) AS x FROM 't'", 8, "aws_lambda() is not supported locally"),
        ("SELECT (SELECT v FROM 'e') AS x FROM 't'", 23, "nested SELECT's FROM"),
        ("SELECT a FROM 't' WHERE", 24, "expected an expression"),
        ("SELECT 'abc FROM t", 8, "unterminated"),
        ("SELECT a FROM 't' WHERE 1 < 2 < 3", 31, "do not chain"),
        # AWS documents IN and CONTAINS; the local engine does not run them, and says so by
        # name rather than "expected end of statement"
        ("SELECT a FROM 't' WHERE a IN [1, 2]", 27, "operator IN is not supported"),
        ("SELECT a FROM 't' WHERE a in arr", 27, "operator IN is not supported"),
        ("SELECT a FROM 't' WHERE a NOT IN arr", 27, "operator NOT IN is not supported"),
        ("SELECT a FROM 't' WHERE arr CONTAINS 3", 29, "operator CONTAINS is not supported"),
        ("SELECT arr contains 3 AS c FROM 't'", 12, "operator CONTAINS is not supported"),
        ("SELECT foo.bar AS bar. FROM 't'", 24, "expected a name after '.'"),
        # AWS's current SQL reference has a SET clause (rule variables); not run locally
        ("SET @x = 1 SELECT @x AS y FROM 't'", 1, "SET clause (rule variables) is not"),
        ("set x = 1 SELECT x AS y FROM 't'", 1, "SET clause (rule variables) is not"),
    ],
)
def test_unsupported_sql_names_position_and_reason(sql: str, position: int, reason: str) -> None:
    with pytest.raises(RuleSqlError, match=re.escape(reason)) as info:
        parse(sql)
    assert info.value.position == position


@pytest.mark.parametrize(
    ("select", "reason"),
    [
        ("v AS s, w AS s.t", "output name 's.t' is inside output name 's'"),
        ("v AS s.t.u, w AS s.t", "output name 's.t.u' is inside output name 's.t'"),
        ("v AS s.t, w AS s.t", "output name 's.t' is used twice"),
        ("*, v AS s.t", "dotted output name (s.t) beside '*'"),
    ],
)
def test_dotted_output_names_aws_gives_no_output_for_are_refused(select: str, reason: str) -> None:
    """AWS nests ``AS a.b`` (its validation samples); what one name inside another's value,
    or a name beside ``*``, gives it documents nowhere."""
    with pytest.raises(RuleSqlError, match=re.escape(reason)):
        parse(f"SELECT {select} FROM 't'")


def test_dotted_output_names_share_their_objects_and_skip_undefined() -> None:
    assert run("t AS a.b.c, m.v AS a.b.d, nope AS a.x, nope AS z.y, s AS e") == {
        "a": {"b": {"c": 21.5, "d": 40}},
        "e": "dry",
    }
    assert run("(SELECT v AS o.v FROM [m]) AS n") == {"n": [{"o": {"v": 40}}]}


@pytest.mark.parametrize("word", ["value", "Value", "null", "true", "and", "or", "not"])
def test_an_output_name_may_be_a_keyword(word: str) -> None:
    """After AS only a name can follow, so a keyword there is the name as written
    (``SELECT v AS value``): a rule AWS runs is not refused for it."""
    assert run(f"v AS {word}", b'{"v": 1}') == {word: 1}


def test_a_statement_without_from_matches_no_topic_but_runs_by_name() -> None:
    """FROM may be left out of a rule only Basic Ingest triggers (AWS's SQL reference); a
    missing FROM elsewhere is still named."""
    statement = parse("SELECT v WHERE v > 1")
    assert statement.topic_filter is None
    message = Message("a/b", b'{"v": 2}', timestamp_ms=0)
    assert evaluate(statement, message) is None
    assert evaluate(statement, message, match_from=False) == RuleOutput({"v": 2})
    assert evaluate(parse("select v"), message, match_from=False) == RuleOutput({"v": 2})
    with pytest.raises(RuleSqlError, match="expected FROM") as info:
        parse("SELECT v 'a/b'")
    assert info.value.position == 10


def test_the_where_page_example_with_as_value() -> None:
    """AWS's WHERE-clause page: payload ``80``, ``SELECT decode(encode(*, 'base64'),
    'base64') AS value FROM 'topic/subtopic' WHERE decode(encode(*, 'base64'), 'base64') >
    50`` -> ``{"value":80}``."""
    sql = (
        "SELECT decode(encode(*, 'base64'), 'base64') AS value FROM 'topic/subtopic' "
        "WHERE decode(encode(*, 'base64'), 'base64') > 50"
    )
    out = evaluate(parse(sql), Message("topic/subtopic", b"80", timestamp_ms=0))
    assert out is not None and out.to_bytes() == b'{"value":80}'


@pytest.mark.parametrize(
    ("select", "where", "expected"),
    [
        ("*", "value > 10", {"value": 21, "ts": 1}),
        ("value", "", {"value": 21}),
        ("value AS v", "", {"v": 21}),
        ("value, ts", "", {"value": 21, "ts": 1}),
        ("ts, value", "", {"ts": 1, "value": 21}),
        ("value + 1 AS v, value * 2 AS w", "", {"v": 22, "w": 42}),
        ("value", "value = 21 AND ts < value", {"value": 21}),
        ("VALUE value", "", 21),
        ("VALUE value + 1", "", 22),
        ("VALUE -ts", "", -1),
        ("value - 1 AS v", "", {"v": 20}),
        ("value - ts AS d, ts", "", {"d": 20, "ts": 1}),
        ("VALUE (ts)", "", 1),
    ],
)
def test_a_payload_field_named_value_reads_as_a_field(
    select: str, where: str, expected: object
) -> None:
    """VALUE is a keyword only right after SELECT, where an expression follows it; a payload
    field named value (a common name) reads anywhere else, as AWS's WHERE page also writes
    AS value."""
    assert run(select, {"value": 21, "ts": 1}, where=where) == expected
