"""Properties of the IoT Events expression language: total parser, arithmetic as specified."""

from __future__ import annotations

import math
import operator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.detectors import expr as ex
from edge.errors import DetectorModelError

EXPR_ALPHABET = st.sampled_from(
    [*"0123456789.+-*/()!~&|^<>=,'\"`$ {}[]abcdeTtrufls_", "$input.", "$variable.", "${"]
)


class Ctx:
    def input_value(self, input_name: str, path: tuple[str | int, ...]) -> Any:
        return ex.UNDEFINED

    def variable(self, name: str) -> Any:
        return {"a": 3, "b": 2.5, "s": "x"}.get(name, ex.UNDEFINED)

    def timeout(self, timer_name: str) -> bool:
        return False

    def trigger_type(self) -> str:
        return "Message"

    def current_input(self) -> str | None:
        return None


def _check_total(text: str) -> None:
    try:
        tree = ex.parse(text)
    except DetectorModelError as err:
        assert isinstance(err, ex.ExpressionError)
        assert 0 <= err.position <= len(text)
        return
    ex.evaluate(tree, Ctx())
    ex.static_type(tree)


@settings(max_examples=400)
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_detector_model_error(text: str) -> None:
    _check_total(text)


@settings(max_examples=600)
@given(st.lists(EXPR_ALPHABET, max_size=40).map("".join))
def test_expression_like_text_parses_or_raises(text: str) -> None:
    _check_total(text)


LINE_BREAKS = "\n\r\x0b\x0c\x1c\x85\u2028"
HOSTILE_TEXT = st.lists(
    st.sampled_from([*LINE_BREAKS, "`", "'${", "}", "\u00e9", "\\", "$input.In.", "1e", "."])
    | EXPR_ALPHABET,
    max_size=40,
).map("".join)


@settings(max_examples=600)
@given(st.one_of(st.text(max_size=80), HOSTILE_TEXT))
def test_any_text_gives_a_value_or_a_one_line_error_saying_where(text: str) -> None:
    """What a user's model holds: a value of the language or one line naming the position."""
    try:
        tree = ex.parse(text)
    except ex.ExpressionError as err:
        message = str(err)
        assert len(message.splitlines()) == 1, message
        assert message.endswith(f" at position {err.position} in {text!r}")
        assert 0 <= err.position <= len(text)
        return
    value = ex.evaluate(tree, Ctx())
    assert value is ex.UNDEFINED or isinstance(value, bool | int | float | str), value
    assert not isinstance(value, float) or math.isfinite(value)


ints = st.integers(min_value=-(10**12), max_value=10**12)
decs = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


def _lit(v: int | float) -> str:
    return str(v) if isinstance(v, int) else ex.format_decimal(v)


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


@given(ints, ints, st.sampled_from(["+", "-", "*", "/"]))
def test_integer_arithmetic_matches_python_with_truncating_division(
    a: int, b: int, op: str
) -> None:
    result = ex.evaluate(ex.parse(f"({_lit(a)}) {op} ({_lit(b)})"), Ctx())
    if op == "/":
        expected: Any = ex.UNDEFINED if b == 0 else _trunc_div(a, b)
    else:
        expected = {"+": operator.add, "-": operator.sub, "*": operator.mul}[op](a, b)
    assert result == expected or result is expected
    assert type(result) is type(expected)


@given(st.one_of(ints, decs), decs, st.sampled_from(["+", "-", "*", "/"]))
def test_a_decimal_operand_gives_a_decimal(a: int | float, b: float, op: str) -> None:
    result = ex.evaluate(ex.parse(f"({_lit(a)}) {op} ({_lit(b)})"), Ctx())
    if op == "/" and b == 0:
        assert result is ex.UNDEFINED
        return
    expected = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}[op](
        float(a), b
    )
    if not math.isfinite(expected):
        assert result is ex.UNDEFINED  # overflow is undefined, never inf
        return
    assert isinstance(result, float)
    assert math.isclose(result, expected, rel_tol=1e-12, abs_tol=1e-12)


@given(
    st.one_of(ints, decs),
    st.one_of(ints, decs),
    st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
)
def test_comparisons_match_python(a: int | float, b: int | float, op: str) -> None:
    result = ex.evaluate(ex.parse(f"{_lit(a)} {op} {_lit(b)}"), Ctx())
    fn = {
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
        "==": operator.eq,
        "!=": operator.ne,
    }[op]
    assert result is fn(a, b)


@given(ints, ints, ints)
def test_precedence_is_c_style(a: int, b: int, c: int) -> None:
    assert ex.evaluate(ex.parse(f"{_lit(a)} + {_lit(b)} * {_lit(c)}"), Ctx()) == a + b * c
    # Bitwise operands as non-negative literals; abs() rather than assume() keeps
    # hypothesis from discarding seven draws in eight.
    a, b, c = abs(a), abs(b), abs(c)
    assert ex.evaluate(ex.parse(f"{a} | {b} & {c}"), Ctx()) == a | (b & c)
    assert ex.evaluate(ex.parse(f"{a} ^ {b} & {c}"), Ctx()) == a ^ (b & c)


@given(decs)
def test_decimal_printing_round_trips(value: float) -> None:
    text = ex.format_decimal(value)
    assert "." in text and "e" not in text
    assert float(text) == value
    assert ex.evaluate(ex.parse(f"convert(Decimal, '{text}')"), Ctx()) == value


class _Variables(Ctx):
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def variable(self, name: str) -> Any:
        return self.values.get(name, ex.UNDEFINED)


TEMPLATE_VALUES = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.text(alphabet="abc 01", max_size=4),
    st.none(),
)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.tuples(st.text(alphabet="xyz :", max_size=3), st.sampled_from("pqr"))),
    values=st.dictionaries(st.sampled_from("pqr"), TEMPLATE_VALUES),
)
def test_a_template_is_undefined_exactly_when_one_of_its_values_is(
    parts: list[tuple[str, str]], values: dict[str, Any]
) -> None:
    """AWS documents ``${...}`` templates with defined values only; a template holding an
    undefined one is undefined as a whole (docs/detectors.md), never text with a gap."""
    text = "'" + "".join(f"{lit}${{$variable.{name}}}" for lit, name in parts) + "!'"
    result = ex.evaluate(ex.parse(text), _Variables(values))
    if any(name not in values for _, name in parts):
        assert result is ex.UNDEFINED
    else:
        assert result == "".join(lit + ex.format_value(values[n]) for lit, n in parts) + "!"
