"""IoT SQL properties: every text parses or raises RuleSqlError; the evaluator agrees with
hand-written expectations on random payloads and never raises."""

from __future__ import annotations

import json
import math
import random
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import UNDEFINED, Message, evaluate
from cloud.rules.sql import CAST_TYPES, FUNCTIONS, KEYWORDS, parse
from cloud.rules.topic_filter import topic_matches
from edge.errors import RuleSqlError

TOPIC = "dt/plantwatch/s1/dev7/telemetry"
FROM = " FROM 'dt/plantwatch/+/+/telemetry'"

SQL_WORDS = [
    "SELECT", "VALUE", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "true", "NULL", "*", ",",
    "(", ")", "[", "]", "{", "}", ":", ".", "+", "-", "/", "%", "=", "<>", "<", ">=", "!=",
    "'t/#'", "'a'", "\"b\"", "'", "1", "2.5", "1e3", "a", "b", "m", "topic", "get", "cast",
    "Int", "concat", "encode", "nested", "--", "#", "$", "\\", "9" * 80, "IN", "contains",
    "IS", "LIKE", "value", "case", "WHEN", "then", "END",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
payloads = st.dictionaries(st.sampled_from(["a", "b", "m", "s", "x"]), json_values, max_size=5)


def run(sql: str, payload: Any, topic: str = TOPIC) -> Any:
    body = json.dumps(payload).encode()
    out = evaluate(parse(sql), Message(topic, body, client_id="c1", timestamp_ms=5))
    return None if out is None else out.value


def normalised(value: Any) -> Any:
    """A payload number as the rules engine reads the JSON text ``json.dumps`` wrote: the
    exact Decimal of that text, and an Int when whole within 34 digits (2016-03-23 reads
    ``10.0`` as ``10``)."""
    if isinstance(value, float):
        exact = Decimal(repr(value))
        whole = exact == exact.to_integral_value() and exact.copy_abs() < 10**34
        return int(exact) if whole else exact
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    return value


@given(st.text(max_size=120))
def test_any_text_parses_or_raises_rule_sql_error(text: str) -> None:
    try:
        parse(text)
    except RuleSqlError as exc:
        assert exc.position is None or 1 <= exc.position <= len(text) + 1
        assert "\n" not in str(exc) and "\r" not in str(exc)  # one line, whatever the text


@given(st.lists(st.sampled_from(SQL_WORDS), max_size=25))
def test_token_soup_parses_or_raises_rule_sql_error(words: list[str]) -> None:
    text = " ".join(words)
    try:
        parse(text)
    except RuleSqlError as exc:
        assert exc.position is not None and 1 <= exc.position <= len(text) + 1
        assert "\n" not in str(exc)


@given(payloads)
def test_select_star_is_the_payload(payload: dict[str, Any]) -> None:
    assert run("SELECT *" + FROM, payload) == normalised(payload)


@given(payloads)
def test_select_field_and_alias(payload: dict[str, Any]) -> None:
    expected = {"y": normalised(payload["a"])} if "a" in payload else {}
    assert run("SELECT a AS y" + FROM, payload) == expected


@given(payloads, st.sampled_from(["a", "b", "m"]))
def test_nested_path_is_undefined_unless_objects_all_the_way(payload: dict, key: str) -> None:
    inner = payload.get("m")
    expected = {}
    if isinstance(inner, dict) and key in inner:
        expected = {key: normalised(inner[key])}
    assert run(f"SELECT m.{key}" + FROM, payload) == expected


def reference_less_than(value: Any, limit: float) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return value < limit
    if isinstance(value, str):
        import re

        if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE]-?[0-9]+)?", value):  # Java's ASCII \d
            number = Decimal(value)  # a Decimal within 1E-999 .. 9.999...E999
            in_range = number.is_zero() or Decimal("1E-999") <= number.copy_abs() < Decimal(
                "1E+1000"
            )
            return in_range and number < limit
    return False


@given(payloads, st.integers(-50, 50))
def test_where_comparison_passes_only_on_numeric_true(payload: dict, limit: int) -> None:
    passes = run(f"SELECT 1 AS one{FROM} WHERE x < {limit}", payload) is not None
    assert passes is reference_less_than(payload.get("x", UNDEFINED), limit)


@given(st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6))
def test_integer_arithmetic(a: int, b: int) -> None:
    out = run(
        f"SELECT a + b AS s, a - b AS d, a * b AS p, a / b AS q, a % b AS r{FROM}", {"a": a, "b": b}
    )
    expected: dict[str, int] = {"s": a + b, "d": a - b, "p": a * b}
    if b != 0:
        q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
        expected |= {"q": q, "r": a - b * q}
    assert out == expected


@given(st.floats(-1e6, 1e6, allow_nan=False))
def test_round_floor_ceil(x: float) -> None:
    out = run(f"SELECT round(x) AS r, floor(x) AS f, ceil(x) AS c{FROM}", {"x": x})
    half_away = math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)
    assert out["f"] == math.floor(x) and out["c"] == math.ceil(x)
    assert abs(out["r"] - half_away) <= (1 if abs(abs(x) % 1 - 0.5) < 1e-9 else 0)


@given(
    st.text(st.characters(max_codepoint=0xFFFF), max_size=10),  # one UTF-16 unit each
    st.integers(-12, 12),
    st.integers(-12, 12),
)
def test_substring_clamps(s: str, i: int, j: int) -> None:
    out = run(f"SELECT substring(s, {i}, {j}) AS t{FROM}", {"s": s})
    lo, hi = min(max(i, 0), len(s)), min(max(j, 0), len(s))
    assert out == {"t": s[lo:hi] if lo < hi else ""}


topic_levels = st.lists(st.text("abc$", min_size=0, max_size=2), min_size=1, max_size=5)


@given(topic_levels, st.data())
def test_topic_filter_matching(levels: list[str], data: st.DataObject) -> None:
    topic = "/".join(levels)
    # a filter built from the topic by wildcarding levels always matches ...
    pattern = [("+" if data.draw(st.booleans()) else level) for level in levels]
    if pattern[0] == "+" and topic.startswith("$"):
        pattern[0] = levels[0]
    assert topic_matches("/".join(pattern), topic)
    # ... '#' after k levels matches iff the topic has more than k levels (AWS rule)
    k = data.draw(st.integers(0, len(levels)))
    hash_filter = "/".join([*levels[:k], "#"])
    expected = len(levels) > k and not (k == 0 and topic.startswith("$"))
    assert topic_matches(hash_filter, topic) is expected
    # topic(n) returns level n
    n = data.draw(st.integers(1, len(levels)))
    out = evaluate(parse(f"SELECT topic({n}) AS t FROM '#'"), Message(topic, b"{}"))
    if expected or k != 0:
        assert out is None or out.value == {"t": levels[n - 1]}


ident = st.sampled_from(["a", "b", "m", "s", "x"])
literal = st.one_of(
    st.integers(-100, 100).map(str),
    st.floats(-100, 100, allow_nan=False).map(lambda f: repr(abs(f))),
    st.sampled_from(["'dry'", "'12'", "'true'", "true", "false", "NULL", "[1, 'a']", "{'k': 1}"]),
)
UNARY = ["abs", "round", "floor", "ceil", "lower", "upper", "isUndefined", "isNull"]
BINARY_FN = ["get", "startswith", "concat", "substring"]


def expressions() -> st.SearchStrategy[str]:
    return st.recursive(
        ident | literal | st.just("m.a") | st.just("topic(3)"),
        lambda e: st.one_of(
            st.tuples(
                e, st.sampled_from(["+", "-", "*", "/", "%", "=", "<>", "<", ">=", "AND", "OR"]), e
            ).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(st.sampled_from(UNARY), e).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(st.sampled_from(BINARY_FN), e, e).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
            st.tuples(e, st.sampled_from(["Int", "String", "Decimal", "Bool"])).map(
                lambda t: f"cast({t[0]} AS {t[1]})"
            ),
            e.map(lambda x: f"(NOT ({x}))"),
            e.map(lambda x: f"-({x})"),
            st.tuples(e, e, e, e).map(
                lambda t: f"CASE {t[0]} WHEN {t[1]} THEN {t[2]} ELSE {t[3]} END"
            ),
            st.tuples(e, e).map(lambda t: f"(SELECT VALUE {t[0]} FROM m WHERE {t[1]})"),
            st.tuples(e, e).map(lambda t: f"[{t[0]}, {{'k': {t[1]}}}]"),
        ),
        max_leaves=8,
    )


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(expressions(), expressions(), payloads)
def test_generated_rules_parse_and_evaluate_without_raising(
    select: str, where: str, payload: dict
) -> None:
    statement = parse(f"SELECT {select} AS out{FROM} WHERE {where}")
    out = evaluate(statement, Message(TOPIC, json.dumps(payload).encode()))
    if out is not None:
        assert isinstance(out.value, dict) and set(out.value) <= {"out"}
        json.loads(out.to_bytes())


CASE_FREE_WORDS = KEYWORDS | set(FUNCTIONS) | set(CAST_TYPES) | {"cast", "isundefined"}
CASE_FREE_WORDS |= {"case", "when", "then", "else", "end"}
_WORD_OR_STRING = re.compile(r"'[^']*'|\"[^\"]*\"|\.?[A-Za-z_][A-Za-z0-9_]*")


def recased(sql: str, rnd: random.Random) -> str:
    """*sql* with each keyword, function name and cast type in a random case; string
    literals, field names and names after '.' as they were (those are case sensitive)."""

    def one(m: re.Match[str]) -> str:
        word = m.group()
        if word.lower() not in CASE_FREE_WORDS:
            return word
        return "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in word)

    return _WORD_OR_STRING.sub(one, sql)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
@given(expressions(), expressions(), payloads, st.randoms(use_true_random=False))
def test_keywords_and_function_names_are_case_insensitive(
    select: str, where: str, payload: dict, rnd: random.Random
) -> None:
    """AWS's own examples write ``Round(1.2)``, ``Ltrim``, ``isNull``, ``select ... from``:
    the case of a keyword, function name or cast type never changes what a rule does."""
    sql = f"SELECT {select} AS out{FROM} WHERE {where}"
    other = recased(sql, rnd)
    body = json.dumps(payload).encode()
    outs = [evaluate(parse(s), Message(TOPIC, body, timestamp_ms=5)) for s in (sql, other)]
    first, second = (None if o is None else o.to_bytes() for o in outs)
    assert first == second, other


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(expressions(), st.sampled_from(["IN", "in", "NOT IN", "not In", "CONTAINS", "Contains"]))
def test_in_and_contains_are_refused_by_name_after_any_operand(left: str, op: str) -> None:
    """Operators AWS documents but the local engine does not run: refused in one line that
    names the operator, wherever the operand before them ends."""
    with pytest.raises(RuleSqlError) as info:
        parse(f"SELECT a{FROM} WHERE {left} {op} [1, 'a']")
    message = str(info.value)
    assert f"operator {op.upper()} is not supported" in message and "\n" not in message


PRECEDENCE = {"OR": 1, "AND": 2, "=": 4, "<>": 4, "<": 4, "<=": 4, ">": 4, ">=": 4}
PRECEDENCE.update({"+": 5, "-": 5, "*": 6, "/": 6, "%": 6})
"""Spec §1.5's project rule, lowest first (NOT, at 3, is left out: it is a prefix)."""
COMPARISON_OPS = ["=", "<>", "<", "<=", ">", ">="]


def parenthesised(atoms: list[str], ops: list[str]) -> str:
    """*atoms* joined by *ops* with every operation in parentheses, grouped by
    :data:`PRECEDENCE`, all operators left-associative (shunting-yard)."""
    out: list[str] = [atoms[0]]
    pending: list[str] = []

    def reduce() -> None:
        right, left = out.pop(), out.pop()
        out.append(f"({left} {pending.pop()} {right})")

    for op, atom in zip(ops, atoms[1:], strict=True):
        while pending and PRECEDENCE[pending[-1]] >= PRECEDENCE[op]:
            reduce()
        pending.append(op)
        out.append(atom)
    while pending:
        reduce()
    return out[0]


numbers = st.integers(-9, 9).filter(bool).map(str) | st.sampled_from(["1.5", "x", "-x"])


@st.composite
def arithmetic(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    atoms = draw(st.lists(numbers, min_size=1, max_size=4))
    ops = [draw(st.sampled_from(["+", "-", "*", "/", "%"])) for _ in atoms[1:]]
    return atoms, ops


@st.composite
def operator_chains(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """Boolean items (true, false, or two arithmetic chains compared) joined by AND and OR:
    one flat list of operands and the operators between them, every level of spec §1.5's
    order present and comparisons never chained. Numbers are never 0 and ``x`` is 7, so
    most chains have a value to compare."""
    atoms: list[str] = []
    ops: list[str] = []
    for i in range(draw(st.integers(1, 4))):
        if i:
            ops.append(draw(st.sampled_from(["AND", "OR"])))
        if draw(st.booleans()):
            atoms.append(draw(st.sampled_from(["true", "false"])))
            continue
        (left, left_ops), (right, right_ops) = draw(arithmetic()), draw(arithmetic())
        atoms += left + right
        ops += [*left_ops, draw(st.sampled_from(COMPARISON_OPS)), *right_ops]
    return atoms, ops


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(operator_chains())
def test_operators_group_by_the_spec_precedence(chain: tuple) -> None:
    """An unparenthesised chain evaluates as the same chain with every operation in
    parentheses by spec §1.5's order (OR < AND < comparisons < + - < * / %), left to right
    within a level: ``a OR b AND c`` is ``a OR (b AND c)``, ``a - b - c`` is ``(a - b) - c``."""
    atoms, ops = chain
    flat = " ".join(x for pair in zip(atoms, [*ops, ""], strict=True) for x in pair).strip()
    grouped = parenthesised(atoms, ops)
    outs = [
        evaluate(parse(f"SELECT {e} AS out{FROM}"), Message(TOPIC, b'{"x": 7}', timestamp_ms=5))
        for e in (flat, grouped)
    ]
    first, second = (None if o is None else o.to_bytes() for o in outs)
    assert first == second, (flat, grouped)


name_parts = st.from_regex(r"[a-z][a-z0-9_]{0,3}", fullmatch=True).filter(
    lambda n: n not in KEYWORDS and n != "case"
)
dotted_names = st.lists(
    st.lists(name_parts, min_size=1, max_size=3).map(".".join), min_size=1, max_size=5, unique=True
).filter(
    lambda names: (
        not any(other.startswith(name + ".") for name in names for other in names if other != name)
    )
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(dotted_names, st.lists(st.integers(-5, 5), min_size=5, max_size=5))
def test_dotted_output_names_nest_each_value_at_its_path(
    names: list[str], values: list[int]
) -> None:
    """``v AS a.b.c`` puts v at out["a"]["b"]["c"]; names that start alike share objects, and
    nothing else is in the output."""
    items = ", ".join(f"{values[i]} AS {name}" for i, name in enumerate(names))
    out = evaluate(parse(f"SELECT {items}{FROM}"), Message(TOPIC, b"{}"))
    assert out is not None
    leaves = 0
    for i, name in enumerate(names):
        node = out.value
        for part in name.split("."):
            node = node[part]
        assert node == values[i]
    stack = [out.value]
    while stack:
        node = stack.pop()
        for child in node.values():
            if isinstance(child, dict):
                stack.append(child)
            else:
                leaves += 1
    assert leaves == len(names)
