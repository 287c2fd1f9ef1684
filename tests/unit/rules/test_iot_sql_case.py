"""CASE statements (AWS "Case statements",
https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-case.html): the first WHEN
equal to the subject gives the result, else ELSE, else Undefined; an Undefined subject is
Undefined. ``case``, ``when``, ``then``, ``else`` and ``end`` stay usable as field names."""

from __future__ import annotations

import re

import pytest

from cloud.cli.main import main
from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse
from edge.errors import RuleSqlError


def out(sql: str, payload: bytes) -> bytes | None:
    result = evaluate(parse(sql), Message("a/b", payload))
    return None if result is None else result.to_bytes()


def test_the_aws_example_prints_as_documented(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    sql = (
        "SELECT CASE color WHEN 'green' THEN 'go' WHEN 'yellow' THEN 'caution' WHEN 'red' "
        "THEN 'stop' ELSE 'you are not at a stop light' END as instructions FROM 'a/b'"
    )
    code = main(
        ["rules", "eval", "--sql", sql, "--topic", "a/b", "--payload", '{"color":"yellow"}']
    )
    assert code == 0
    assert capsysbinary.readouterr().out == b'{"instructions":"caution"}\n'


@pytest.mark.parametrize(
    ("select", "payload", "expected"),
    [
        ("CASE v WHEN 1 THEN 'a' WHEN 1 THEN 'b' END AS x", b'{"v": 1}', b'{"x":"a"}'),
        ("CASE v WHEN 1 THEN 'a' ELSE 'z' END AS x", b'{"v": 2}', b'{"x":"z"}'),
        ("CASE v WHEN 1 THEN 'a' END AS x", b'{"v": 2}', b"{}"),
        ("CASE v WHEN 1 THEN 'a' ELSE 'z' END AS x", b"{}", b"{}"),  # Undefined subject
        ("CASE v WHEN 1 THEN 'a' ELSE 'z' END AS x", b'{"v": null}', b'{"x":"z"}'),
        ("CASE v WHEN 1.0 THEN 'one' END AS x", b'{"v": 1}', b'{"x":"one"}'),  # = semantics
        ("CASE v WHEN '1' THEN 's' ELSE 'n' END AS x", b'{"v": 1}', b'{"x":"n"}'),
        ("CASE v WHEN w THEN 'w' ELSE 'e' END AS x", b'{"v": 1}', b'{"x":"e"}'),
        ("CASE v > 2 WHEN true THEN v * 2 ELSE 0 END AS x", b'{"v": 3}', b'{"x":6}'),
        ("CASE [1, v] WHEN [1, 2] THEN 'pair' END AS x", b'{"v": 2}', b'{"x":"pair"}'),
        # the words are not reserved: fields of those names read as fields
        ("case, end AS e", b'{"case": 1, "end": 2}', b'{"case":1,"e":2}'),
        ("case + 1 AS x", b'{"case": 1}', b'{"x":2}'),
        ("case - 1 AS x", b'{"case": 1}', b'{"x":0}'),
        ("case - 1 AS x, (case - end) AS y", b'{"case": 1, "end": 3}', b'{"x":0,"y":-2}'),
        # a subject that starts with unary minus: a CASE statement, since WHEN follows
        ("CASE -v WHEN -1 THEN 'minus one' END AS x", b'{"v": 1}', b'{"x":"minus one"}'),
        ("CASE -1 WHEN v THEN 'yes' ELSE 'no' END AS x", b'{"v": -1}', b'{"x":"yes"}'),
        ("lower(CASE - (v) WHEN -2 THEN 'A' END) AS x", b'{"v": 2}', b'{"x":"a"}'),
        (
            "CASE case WHEN when THEN then ELSE else END AS x",
            b'{"case": 1, "when": 1, "then": "t", "else": "e"}',
            b'{"x":"t"}',
        ),
        (
            "CASE a WHEN 1 THEN CASE b WHEN 2 THEN 'both' END END AS x",
            b'{"a": 1, "b": 2}',
            b'{"x":"both"}',
        ),
    ],
)
def test_case_cases(select: str, payload: bytes, expected: bytes) -> None:
    assert out(f"SELECT {select} FROM 'a/b'", payload) == expected


def test_only_the_chosen_result_is_evaluated_and_where_can_branch() -> None:
    sql = "SELECT VALUE 'hot' FROM 'a/b' WHERE CASE unit WHEN 'F' THEN t > 86 ELSE t > 30 END"
    assert out(sql, b'{"unit": "F", "t": 90}') == b'"hot"'
    assert out(sql, b'{"unit": "C", "t": 40}') == b'"hot"'
    assert out(sql, b'{"unit": "C", "t": 20}') is None


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT CASE v ELSE 1 END AS x FROM 't'", "expected WHEN (a CASE needs at least one)"),
        ("SELECT CASE v WHEN 1 'a' END AS x FROM 't'", "expected THEN"),
        ("SELECT CASE v WHEN 1 THEN 'a' AS x FROM 't'", "expected WHEN, ELSE or END"),
        ("SELECT CASE v WHEN 1 THEN 'a' ELSE 2 AS x FROM 't'", "expected END"),
        ("SELECT CASE v WHEN 1 THEN 'a' END FROM 't'", "needs an alias"),
        # AWS's syntax has no CASE without a value to match; say how to write a condition
        (
            "SELECT CASE WHEN t > 30 THEN 'hot' ELSE 'ok' END AS x FROM 't'",
            "CASE needs a value to match (CASE v WHEN t THEN r ...); for conditions write "
            "CASE true WHEN condition THEN r ...",
        ),
    ],
)
def test_malformed_case_is_refused_at_load(sql: str, reason: str) -> None:
    with pytest.raises(RuleSqlError, match=re.escape(reason)):
        parse(sql)
