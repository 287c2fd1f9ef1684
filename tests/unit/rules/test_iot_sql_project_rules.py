"""The project rules of iot-core-rules-and-limits §1 (where AWS is silent), one row each,
with inputs that tell the rule from its nearest alternative: ``NOT true AND false`` is
``false`` only if NOT binds tighter than AND, ``-1 + 2`` is ``1`` only if unary minus binds
tighter than ``+``."""

from __future__ import annotations

import re

import pytest

from cloud.rules import Message, evaluate, load_rules, parse
from cloud.rules.sql import tokenize
from edge.errors import RuleSqlError

TOPIC = "dt/plantwatch/s1/dev7/telemetry"
PAYLOAD = b'{"m": {"v": 40}, "arr": [1, 2]}'


def output(select: str) -> bytes:
    out = evaluate(parse(f"SELECT {select} FROM '#'"), Message(TOPIC, PAYLOAD, "dev7", 5))
    assert out is not None
    return out.to_bytes()


@pytest.mark.parametrize(
    ("select", "printed"),
    [
        # §1.5 precedence, lowest to highest: OR; AND; NOT; comparisons; + -; * / %; unary -; .
        ("true OR true AND false AS x", b'{"x":true}'),
        ("NOT true AND false AS x", b'{"x":false}'),
        ("NOT false OR true AS x", b'{"x":true}'),
        ("NOT 1 = 2 AS x", b'{"x":true}'),
        ("1 + 1 = 2 AS x", b'{"x":true}'),
        ("2 + 3 * 4 AS x", b'{"x":14}'),
        ("-1 + 2 AS x", b'{"x":1}'),
        ("-m.v AS x", b'{"x":-40}'),
        ("8 / 2 / 2 AS x, 8 - 2 - 1 AS y", b'{"x":2,"y":5}'),
        # §1.5: Int / Int truncates toward zero; division by zero is Undefined (left out)
        ("7 / 2 AS a, -7 / 2 AS b, 7 / -2 AS c", b'{"a":3,"b":-3,"c":-3}'),
        ("7 / 0 AS a, 7.5 / 0 AS b, 7 % 0 AS c, 1 AS d", b'{"d":1}'),
        # §1.6: topic(n) out of range is Undefined
        ("topic(4) AS a, topic(0) AS b, topic(6) AS c, topic(-1) AS d", b'{"a":"dev7"}'),
        # §1.6: cast of a Decimal to Int truncates toward zero
        ("cast(7.9 AS Int) AS a, cast(-7.9 AS Integer) AS b", b'{"a":7,"b":-7}'),
        # §1.6: concat of no argument is Undefined, of one is that argument unchanged
        ("concat() AS a, concat(5) AS b, concat(arr) AS c", b'{"b":5,"c":[1,2]}'),
        # §1.2: an unaliased path is named by its last segment
        ("m.v", b'{"v":40}'),
        ("get(arr, 1) AS second", b'{"second":2}'),
    ],
)
def test_project_rules_of_iot_sql(select: str, printed: bytes) -> None:
    assert output(select) == printed


@pytest.mark.parametrize(
    ("select", "words"),
    [
        # §1.2: array elements are read with get(x, n) only
        ("arr[0] AS x", "array index syntax x[n] is not supported; use get(x, n)"),
        # §1.2: every computed item is aliased
        ("topic()", "a computed SELECT item needs an alias"),
        ("1 + 1", "a computed SELECT item needs an alias"),
        # §1.1: no comments
        ("1 AS x -- note", "comments are not allowed in IoT SQL"),
        # §1.6: aws_lambda is rejected locally
        ("aws_lambda('arn:aws:lambda:eu-west-1:1:function:f', *) AS x", "aws_lambda"),
    ],
)
def test_project_rules_refuse_with_a_reason(select: str, words: str) -> None:
    with pytest.raises(RuleSqlError, match=re.escape(words)):
        parse(f"SELECT {select} FROM '#'")


def style_problems(sql: str) -> list[str]:
    """How *sql* breaks §1.4's and §1.5's rules for project SQL: strings in single quotes
    only, and AND and OR never mixed within one pair of parentheses."""
    problems: list[str] = []
    groups: list[set[str]] = [set()]
    for tok in tokenize(sql):
        if tok.kind == "str" and not tok.text.startswith("'"):
            problems.append(f"string {tok.text} in double quotes")
        elif tok.kind == "op" and tok.value in ("(", "[", "{"):
            groups.append(set())
        elif tok.kind == "op" and tok.value in (")", "]", "}"):
            groups.pop()
        elif tok.kind == "kw" and str(tok.value).lower() in ("and", "or"):
            groups[-1].add(str(tok.value).lower())
            if groups[-1] == {"and", "or"}:
                problems.append(f"AND and OR mixed without parentheses at {tok.pos}")
    return problems


@pytest.mark.parametrize(
    ("sql", "problems"),
    [
        ("SELECT a FROM 't' WHERE (a OR b) AND c", 0),
        ("SELECT a FROM 't' WHERE a OR (b AND c)", 0),
        ("SELECT a FROM 't' WHERE a OR b AND c", 1),
        ("SELECT \"x\" AS a FROM 't'", 1),
    ],
)
def test_the_project_sql_checker_finds_what_it_looks_for(sql: str, problems: int) -> None:
    assert len(style_problems(sql)) == problems


def test_project_rules_quote_strings_singly_and_parenthesise_and_or() -> None:
    """iot-core-rules-and-limits §1.4 (project SQL uses single quotes only) and §1.5 (it
    parenthesises every mix of AND and OR), on every rule the project deploys."""
    rules = load_rules()
    assert rules
    for rule in rules:
        assert style_problems(rule.sql) == [], rule.name
