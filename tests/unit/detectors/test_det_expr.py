"""The expression language of specs/iotevents-contracts.md §3, case by case."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from cloud.detectors import expr as ex
from edge.errors import DetectorModelError


@dataclass
class Ctx:
    inputs: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    expired: list[str] = field(default_factory=list)
    trigger: str = "Message"
    current: str | None = None

    def input_value(self, input_name: str, path: tuple[str | int, ...]) -> Any:
        if input_name not in self.inputs:
            return ex.UNDEFINED
        return ex.lookup_path(self.inputs[input_name], path)

    def variable(self, name: str) -> Any:
        return self.variables.get(name, ex.UNDEFINED)

    def timeout(self, timer_name: str) -> bool:
        if timer_name in self.expired:
            self.expired.remove(timer_name)
            return True
        return False

    def trigger_type(self) -> str:
        return self.trigger

    def current_input(self) -> str | None:
        return self.current


def ev(text: str, ctx: Ctx | None = None) -> Any:
    return ex.evaluate(ex.parse(text), ctx or Ctx())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("3.5", 3.5),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3),
        ("-7 / 2", -3),
        ("7 / -2", -3),
        ("7.0 / 2", 3.5),
        ("7 / 2.0", 3.5),
        ("1 / 0", ex.UNDEFINED),
        ("13 | 5", 13),
        ("13 & 5", 5),
        ("13 ^ 5", 8),
        ("~13", -14),
        ("bitand(13, 5)", 5),
        ("bitor(13, 5)", 13),
        ("bitxor(13, 5)", 8),
        ("bitnot(13)", -14),
        ("bitand(13, 5.0)", ex.UNDEFINED),
        ("'a' + 'b'", "ab"),
        ('"a" + "b"', "ab"),
        ("'a' + 1", ex.UNDEFINED),
        ("1 + 2 == 3 && 2 < 3", True),
        ("1 < 2 == true", True),
        ("1 | 2 == 2", ex.UNDEFINED),
        ("(1 | 2) == 3", True),
        ("!true || true", True),
        ("-(2 + 3)", -5),
        ("1 == 1.0", True),
        ("'1' == 1", False),
        ("'1' != 1", True),
        ("true == 'true'", False),
        ("startsWith('pump-01', 'pump')", True),
        ("endsWith('pump-01', '01')", True),
        ("contains('pump-01', 'mp-')", True),
        ("contains('pump-01', 1)", ex.UNDEFINED),
        ("convert(String, 15.0)", "15.0"),
        ("convert(String, 15)", "15"),
        ("convert(String, true)", "true"),
        ("convert(Boolean, 'TRUE')", True),
        ("convert(Decimal, '2.5') * 2", 5.0),
        ("convert('Decimal', '2.5')", 2.5),
        ("convert(Decimal, 'abc') > 1 || true", ex.UNDEFINED),
        ("convert(Decimal, 2)", ex.UNDEFINED),
        ("convert(Decimal, ' -1.5e2 ')", -150.0),
        ("convert(Decimal, '.5')", 0.5),
        ("convert(Decimal, '1_000')", ex.UNDEFINED),
        ("convert(Decimal, '\u0661\u0662')", ex.UNDEFINED),
        ("convert(Decimal, 'NaN')", ex.UNDEFINED),
        ("convert(Decimal, 'Infinity')", ex.UNDEFINED),
        ("convert(Decimal, '1e400')", ex.UNDEFINED),
        ("convert(Decimal, '')", ex.UNDEFINED),
        ("convert(String, 'x')", ex.UNDEFINED),
        ("'x is ${1 + 1}'", "x is 2"),
        ('"x is ${1 + 1}"', "x is ${1 + 1}"),
        ("'${true}/${2.0}'", "true/2.0"),
        ("0.1 + 0.2", 0.30000000000000004),
        (f"{ex.MAX_INTEGER} + 0", ex.MAX_INTEGER),
        (f"{ex.MAX_INTEGER} + 1", ex.UNDEFINED),
        (f"-{ex.MAX_INTEGER} - 1", ex.UNDEFINED),
        (f"{10**200} * {10**200}", ex.UNDEFINED),
    ],
)
def test_values(text: str, expected: Any) -> None:
    result = ev(text)
    assert result == expected and type(result) is type(expected)


def test_template_example_from_the_docs() -> None:
    ctx = Ctx(inputs={"G": {"temp": 10.01}})
    assert ev("'${$input.G.temp * 9 / 5 + 32} in Fahrenheit'", ctx) == "50.018 in Fahrenheit"


def test_a_template_inside_a_template_with_its_own_quoted_strings() -> None:
    """AWS: "A substitution template can also contain a combination of literals,
    operators, functions, references, and substitution templates" (expression-usage)."""
    ctx = Ctx(variables={"x": 5})
    assert ev("'a ${'b ${'c'}'} d'", ctx) == "a b c d"
    assert ev("'[${'${$variable.x} is ${'five'}'}]'", ctx) == "[5 is five]"
    assert ev("'a ${'b ${'{'}'} d'", ctx) == "a b { d"
    assert ev("'${'{\"v\": ${'${$variable.x}' + '}'}'}'", ctx) == '{"v": 5}'
    with pytest.raises(ex.ExpressionError, match="unterminated"):
        ex.parse("'a ${'b ${'c'} d'")


def test_decimals_print_with_a_fractional_digit() -> None:
    assert ex.format_decimal(15.0) == "15.0"
    assert ex.format_decimal(1e-5) == "0.00001"
    assert ex.format_decimal(1e20) == "100000000000000000000.0"


def test_references_paths_arrays_and_backticks() -> None:
    ctx = Ctx(
        inputs={"T": {"temps": [1, 2, 3], "motor temp": 7, "_value": 5, "a": {"b": None}}},
        variables={"x": 4},
    )
    assert ev("$input.T.temps[2]", ctx) == 3
    assert ev("$input.T.temps[3]", ctx) is ex.UNDEFINED
    assert ev("$input.T.`motor temp` + $input.T.`_value`", ctx) == 12
    assert ev("$variable.x * 2", ctx) == 8
    assert ev("isNull($input.T.a.b)", ctx) is True
    assert ev("isUndefined($input.T.a.b)", ctx) is False
    assert ev("isUndefined($input.T.a.c)", ctx) is True
    assert ev("isUndefined($input.Other.a)", ctx) is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$variable.t == 1", False),
        ("$variable.t != 1", True),
        ("$variable.t != $variable.t", True),
        ("$variable.t > 1", False),
        ("$variable.t <= 1", False),
        ("$variable.t + 1", ex.UNDEFINED),
        ("$variable.t || true", True),
        ("$variable.t || false", False),
        ("$variable.t && true", False),
        ("!$variable.t", ex.UNDEFINED),
        ("'${$variable.t}'", ex.UNDEFINED),
    ],
)
def test_undefined_rules(text: str, expected: Any) -> None:
    assert ev(text) == expected or (ev(text) is expected)


def test_timeout_is_true_once_then_false() -> None:
    ctx = Ctx(expired=["hb"])
    assert ev('timeout("hb")', ctx) is True
    assert ev('timeout("hb")', ctx) is False


def test_trigger_type_ignores_case_and_current_input_names_the_input() -> None:
    ctx = Ctx(trigger="Timer", current=None)
    assert ev('triggerType("TIMER")', ctx) is True
    assert ev('triggerType("Message")', ctx) is False
    ctx = Ctx(trigger="Message", current="In")
    assert ev('currentInput("In")', ctx) is True
    assert ev('currentInput("Out")', ctx) is False


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("1 +", 3, "unexpected end of expression"),
        ("abs(1)", 0, "unknown function 'abs'"),
        ("$state.x", 0, "unknown reference '$state'"),
        ("(1 + 2", 6, "expected ')'"),
        ("1 % 2", 2, "unexpected character '%'"),
        ("'abc", 0, "unterminated string"),
        ("timeout()", 0, "timeout() takes 1 argument(s), got 0"),
        ("foo", 0, "unexpected identifier 'foo'"),
        ("$input.T", 7, "$input.T needs an attribute path"),
        ("'x ${1 +} y'", 8, "unexpected end of expression"),
        ("1 2", 2, "unexpected 2"),
        ("", 0, "empty expression"),
        ("1 + " + "9" * 400, 4, "number out of range"),
        ("9" * 5000, 0, "number out of range"),
        (
            "convert(Integer, '1')",
            8,
            "convert() converts to String, Boolean, Decimal, not 'Integer'",
        ),
        (
            "convert(decimal, '1')",
            8,
            "convert() converts to String, Boolean, Decimal, not 'decimal'",
        ),
    ],
)
def test_parse_errors_give_position_and_reason(text: str, position: int, reason: str) -> None:
    with pytest.raises(DetectorModelError) as info:
        ex.parse(text)
    err = info.value
    assert isinstance(err, ex.ExpressionError)
    assert err.reason.startswith(reason), err.reason
    assert err.position == position


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("'${:}'", 3, "unexpected character ':'"),
        ("'${0A}'", 3, "malformed number"),
        ("'a ${'b ${1 @}'} c'", 12, "unexpected character '@'"),
        ("'${1 $x}'", 5, "unknown reference '$x'"),
    ],
)
def test_an_error_inside_a_template_names_the_whole_expression(
    text: str, position: int, reason: str
) -> None:
    """The position counts from the start of the expression, so the text the message quotes
    is the whole expression, not the ``${...}`` part the error was found in."""
    with pytest.raises(ex.ExpressionError) as info:
        ex.parse(text)
    err = info.value
    assert err.reason.startswith(reason), err.reason
    assert (err.position, err.text) == (position, text)
    assert str(err) == f"{err.reason} at position {position} in {text!r}"


def test_deep_nesting_is_a_parse_error_not_a_crash() -> None:
    with pytest.raises(ex.ExpressionError, match="nested too deeply"):
        ex.parse("(" * 500 + "1" + ")" * 500)
    with pytest.raises(ex.ExpressionError, match="nested too deeply"):
        ex.parse("1" + " + 1" * 300)
    with pytest.raises(ex.ExpressionError, match="nested too deeply"):
        ex.parse("'${" * 120 + "1" + "}'" * 120)
    assert ex.evaluate(ex.parse("'${" * 20 + "1" + "}'" * 20), None) == "1"  # type: ignore[arg-type]


def test_ast_is_frozen() -> None:
    node = ex.parse("1 + 2")
    with pytest.raises(AttributeError):
        node.op = "-"  # type: ignore[misc, union-attr]


def test_static_types() -> None:
    assert ex.static_type(ex.parse("1 + 2")) == "integer"
    assert ex.static_type(ex.parse("1 + 2.0")) == "decimal"
    assert ex.static_type(ex.parse("'a' + 'b'")) == "string"
    assert ex.static_type(ex.parse("$input.A.b > 2")) == "boolean"
    assert ex.static_type(ex.parse("$input.A.b")) == "unknown"


KINDS: dict[str, tuple[str, Any]] = {
    "integer": ("$input.K.i", 13),
    "decimal": ("$input.K.d", 2.5),
    "string": ("$input.K.s", "offline"),
    "Boolean": ("$input.K.b", True),
    "null": ("$input.K.n", None),
    "undefined": ("$input.K.missing", ex.UNDEFINED),
    "object": ("$input.K.o", {"x": 1}),
}
KIND_CTX = Ctx(
    inputs={"K": {"i": 13, "d": 2.5, "s": "offline", "b": True, "n": None, "o": {"x": 1}}},
    current="K",
)


def _documented(call: str, kind: str) -> Any:
    """What the developer guide's function list says *call* gives for a *kind* argument:
    the string functions take strings and the bitwise ones integers, "else the result of
    the function is undefined. No conversions are performed"; isNull and isUndefined test
    for their one kind; a failed convert() makes the whole expression invalid (undefined
    here, false as a condition); timeout, triggerType and currentInput name things by string."""
    if call in ("startsWith", "endsWith", "contains"):
        return (
            {"startsWith": True, "endsWith": False, "contains": True}[call]
            if kind == "string"
            else ex.UNDEFINED
        )
    if call in ("bitand", "bitor", "bitxor"):
        return {"bitand": 5, "bitor": 13, "bitxor": 8}[call] if kind == "integer" else ex.UNDEFINED
    if call == "bitnot":
        return -14 if kind == "integer" else ex.UNDEFINED
    if call == "isNull":
        return kind == "null"
    if call == "isUndefined":
        return kind == "undefined"
    if call in ("timeout", "triggerType", "currentInput"):
        return False
    if call == "convert(String)":  # Boolean -> String, Decimal -> String (integers count)
        return {"integer": "13", "decimal": "2.5", "Boolean": "true"}.get(kind, ex.UNDEFINED)
    return ex.UNDEFINED  # convert(Boolean)/convert(Decimal) of "offline" and every non-string


CALLS = {
    "startsWith": "startsWith({x}, 'off')",
    "endsWith": "endsWith({x}, 'x')",
    "contains": "contains({x}, 'fli')",
    "bitand": "bitand({x}, 5)",
    "bitor": "bitor({x}, 5)",
    "bitxor": "bitxor({x}, 5)",
    "bitnot": "bitnot({x})",
    "isNull": "isNull({x})",
    "isUndefined": "isUndefined({x})",
    "timeout": "timeout({x})",
    "triggerType": "triggerType({x})",
    "currentInput": "currentInput({x})",
    "convert(String)": "convert(String, {x})",
    "convert(Boolean)": "convert(Boolean, {x})",
    "convert(Decimal)": "convert(Decimal, {x})",
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("call", list(CALLS))
def test_every_function_on_every_kind_of_argument(call: str, kind: str) -> None:
    reference, value = KINDS[kind]
    assert ev(reference, KIND_CTX) == value or value is ex.UNDEFINED
    result = ev(CALLS[call].format(x=reference), KIND_CTX)
    expected = _documented(call, kind)
    assert result == expected and type(result) is type(expected), (result, expected)
    # the second string argument follows the same rule as the first
    if call in ("startsWith", "endsWith", "contains") and kind != "string":
        assert ev(f"{call}('offline', {reference})", KIND_CTX) is ex.UNDEFINED
    if call in ("bitand", "bitor", "bitxor") and kind != "integer":
        assert ev(f"{call}(5, {reference})", KIND_CTX) is ex.UNDEFINED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r'"say \"hi\""', 'say "hi"'),
        (r'"C:\\"', "C:\\"),
        (r'"a\\\"b"', 'a\\"b'),
        (r'"a\nb"', r"a\nb"),  # any other backslash is kept as written
        (r'"it\'s"', r"it\'s"),
        (r"'<${" + r'"x\"}"' + r"}>'", '<x"}>'),  # a template skips the escaped quote
    ],
)
def test_double_quoted_strings_escape_quotes_and_backslashes(text: str, expected: str) -> None:
    assert ev(text) == expected


@pytest.mark.parametrize("text", [r'"abc\"', r'"abc\\\"', r"'${" + r'"a\"' + r"}'"])
def test_an_escaped_quote_does_not_end_the_string(text: str) -> None:
    with pytest.raises(ex.ExpressionError, match="unterminated"):
        ex.parse(text)


@pytest.mark.parametrize("value", ["both ' and \"", "it's C:\\", '\\"', "'${x}\\"])
def test_any_string_prints_as_text_that_reads_back(value: str) -> None:
    assert ex.evaluate(ex.parse(ex.unparse(ex.Literal(value))), Ctx()) == value
