"""IoT SQL arithmetic, comparisons and casts on numbers of up to 40 digits, against a
reference written from iot-core-rules-and-limits §1.4-§1.6 and AWS's data-types page:

- Int: up to 34 digits; a whole number beyond that is a Decimal.
- Decimal: 34 significant digits, magnitudes 1E-999 to 9.999...E999; a value outside is
  Undefined (project rule).
- A payload number with a fraction or exponent is a Decimal, a whole one an Int
  (2016-03-23); a numeric string converts to a Decimal.
- Int op Int is an Int (``/`` truncating toward zero, ``%`` with the dividend's sign);
  with a Decimal operand the result is a Decimal; division by zero is Undefined.

The reference computes each result exactly (or to 200 digits for a quotient) and rounds it
once to 34 digits, half even: it shares nothing with the evaluator's code. Outputs are
read from the JSON bytes the rule's actions receive.
"""

from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import Message, RuleOutput, evaluate
from cloud.rules.sql import parse

EXACT = Context(prec=200, Emax=10**6, Emin=-(10**6))
LARGEST = Decimal("9." + "9" * 33 + "E999")
SMALLEST = Decimal("1E-999")
UNDEFINED = object()
NUMERIC = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE]-?[0-9]+)?")


def to_34_digits(exact: Decimal) -> Any:
    """The Decimal the spec's type holds for an exact value, or UNDEFINED out of range."""
    if exact.is_zero():
        return Decimal(0)
    rounded = Context(prec=34, rounding=ROUND_HALF_EVEN, Emax=10**6, Emin=-(10**6)).plus(exact)
    if rounded.copy_abs() > LARGEST or rounded.copy_abs() < SMALLEST:
        return UNDEFINED
    return rounded


def int_result(n: int) -> Any:
    return n if abs(n) < 10**34 else to_34_digits(Decimal(n))


def payload_number(text: str) -> Any:
    """A JSON number in a payload as the rules engine reads it."""
    if NUMERIC.fullmatch(text) and "." not in text and "e" not in text.lower():
        return int_result(int(text))
    value = to_34_digits(EXACT.plus(Decimal(text)))
    if value is UNDEFINED:
        return UNDEFINED
    if value == value.to_integral_value() and value.copy_abs() < 10**34:
        return int(value)
    return value


def string_number(text: str) -> Any:
    return to_34_digits(EXACT.plus(Decimal(text)))


def is_int(v: Any) -> bool:
    return isinstance(v, int)


def arithmetic(op: str, x: Any, y: Any) -> Any:
    if op in ("/", "%") and y == 0:
        return UNDEFINED
    if is_int(x) and is_int(y):
        if op == "+":
            return int_result(x + y)
        if op == "-":
            return int_result(x - y)
        if op == "*":
            return int_result(x * y)
        quotient = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
        return int_result(quotient if op == "/" else x - y * quotient)
    a, b = Decimal(x), Decimal(y)
    if op == "+":
        exact = EXACT.add(a, b)
    elif op == "-":
        exact = EXACT.subtract(a, b)
    elif op == "*":
        exact = EXACT.multiply(a, b)
    elif op == "/":
        exact = EXACT.divide(a, b)
    else:
        quotient = EXACT.divide_int(a, b)
        if quotient.copy_abs() >= 10**34:  # the quotient of % must fit 34 digits
            return UNDEFINED
        exact = EXACT.subtract(a, EXACT.multiply(b, quotient))
    return to_34_digits(exact)


def int_digits(n: int) -> str:
    return str(n)


ints = st.one_of(
    st.integers(-(10**6), 10**6),
    st.integers(-(10**40), 10**40),
    st.sampled_from([10**34 - 1, -(10**34) + 1, 10**34, 0]),
)
coefficients = st.one_of(st.integers(-999, 999), st.integers(-(10**40), 10**40))
decimal_texts = st.one_of(
    st.tuples(coefficients, st.integers(-40, 40)).map(lambda t: f"{t[0]}e{t[1]}"),
    st.tuples(coefficients, st.integers(0, 40)).map(lambda t: str(Decimal(t[0]).scaleb(-t[1]))),
    st.sampled_from(["0.1", "0.2", "0.3", "10.0", "-0.0", "0E-100", "1E+40", "0.055", "1.5e-7"]),
)
json_numbers = st.one_of(ints.map(int_digits), decimal_texts)
numeric_strings = st.one_of(
    ints.map(str),
    st.tuples(st.integers(-(10**20), 10**20), st.integers(0, 10**20)).map(
        lambda t: f"{t[0]}.{t[1]}"
    ),
    st.tuples(st.integers(-999, 999), st.integers(-40, 40)).map(lambda t: f"{t[0]}E{t[1]}"),
)
operands = st.one_of(
    json_numbers.map(lambda t: ("number", t)), numeric_strings.map(lambda t: ("string", t))
)


def operand_value(kind: str, text: str) -> Any:
    return payload_number(text) if kind == "number" else string_number(text)


def payload(a: tuple[str, str], b: tuple[str, str]) -> bytes:
    def field(kind: str, text: str) -> str:
        return text if kind == "number" else f'"{text}"'

    return f'{{"a": {field(*a)}, "b": {field(*b)}}}'.encode()


def decode(body: bytes) -> Any:
    return json.loads(body, parse_float=Decimal)


def assert_number(got: Any, want: Any, context: Any) -> None:
    assert not isinstance(got, bool) and isinstance(got, int | Decimal), context
    assert got == want, context
    if isinstance(want, int) or (want == want.to_integral_value() and want.copy_abs() < 10**34):
        assert isinstance(got, int), ("a whole value within 34 digits is an Int", context)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["+", "-", "*", "/", "%"]), operands, operands)
@example("%", ("number", "9" * 34), ("string", "1"))
@example("%", ("number", "1E+40"), ("number", "3"))
@example("+", ("number", "0.1"), ("number", "0.2"))
def test_arithmetic_is_34_digit_decimal(op: str, a: tuple[str, str], b: tuple[str, str]) -> None:
    body = payload(a, b)
    out = evaluate(parse(f"SELECT a {op} b AS r FROM 't/#'"), Message("t/x", body))
    assert out is not None
    got = decode(out.to_bytes())
    x, y = operand_value(*a), operand_value(*b)
    if op == "+" and "string" in (a[0], b[0]):
        return  # concatenation: the spelling of a Decimal as text is not in the spec
    if x is UNDEFINED or y is UNDEFINED:
        assert got == {}, (body, got)
        return
    want = arithmetic(op, x, y)
    if want is UNDEFINED:
        assert got == {}, (body, op, got)
        return
    assert "r" in got, (body, op, want)
    assert_number(got["r"], want, (body, op, want))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), operands, operands)
@example("=", ("number", "12345678901234567890.5"), ("number", "12345678901234567890"))
@example(">", ("string", "12345678901234567890.5"), ("number", "12345678901234567890"))
@example("<", ("number", "0.30000000000000001"), ("string", "0.3"))
def test_comparisons_convert_both_sides_to_decimal(
    op: str, a: tuple[str, str], b: tuple[str, str]
) -> None:
    body = payload(a, b)
    out = evaluate(parse(f"SELECT a {op} b AS r FROM 't/#'"), Message("t/x", body))
    assert out is not None
    got = decode(out.to_bytes())
    x, y = operand_value(*a), operand_value(*b)
    if x is UNDEFINED or y is UNDEFINED:
        assert got == {}, (body, got)
        return
    if op in ("=", "<>"):
        if a[0] != b[0]:
            want = op == "<>"  # a String and a number: different types
        elif a[0] == "string":
            want = (a[1] == b[1]) is (op == "=")
        else:
            want = (x == y) is (op == "=")
    else:
        want = {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]
    assert got == {"r": want}, (body, op, x, y)


@settings(max_examples=300, deadline=None)
@given(operands)
def test_casts_to_int_and_decimal(a: tuple[str, str]) -> None:
    body = payload(a, a)
    sql = "SELECT cast(a AS Int) AS i, cast(a AS Decimal) AS d, -a AS n FROM 't/#'"
    out = evaluate(parse(sql), Message("t/x", body))
    assert out is not None
    got = decode(out.to_bytes())
    x = operand_value(*a)
    if x is UNDEFINED:
        assert got == {}, (body, got)
        return
    truncated = x if is_int(x) or x.copy_abs() >= 10**34 else int(x)  # toward zero (project rule)
    assert_number(got["i"], truncated, (body, "i"))
    assert_number(got["d"], x, (body, "d"))
    assert_number(got["n"], -x if is_int(x) else x.copy_negate(), (body, "n"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**40), 10**40) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=15,
)


TEXTS = {"0.3": "0.3", "1.50": "1.50", "1E+40": "1E+40", "-0.0": "0", "10.0": "10"}
TEXTS["1.5E-7"] = "1.5E-7"


@settings(max_examples=200, deadline=None)
@given(json_values, st.sampled_from(sorted(TEXTS)))
def test_output_with_decimals_is_the_json_of_everything_else(value: Any, number: str) -> None:
    """A rule's output holding Decimals is written by the evaluator's own writer: whatever
    else it holds (text of any script, nesting, big Ints) comes out byte for byte as
    ``json.dumps`` writes it, and the Decimal as its own digits (whole ones as Ints)."""
    decimal, text = Decimal(number), TEXTS[number]
    dumped = json.dumps(value, separators=(",", ":"))
    assert RuleOutput({"a": value, "d": decimal}).to_bytes().decode() == (
        f'{{"a":{dumped},"d":{text}}}'
    )
    assert RuleOutput([decimal, value]).to_bytes().decode() == f"[{text},{dumped}]"
    assert RuleOutput({"n": {"d": decimal, "a": value}}).to_bytes().decode() == (
        f'{{"n":{{"d":{text},"a":{dumped}}}}}'
    )
