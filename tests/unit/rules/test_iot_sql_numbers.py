"""IoT SQL numbers are the spec's Int (34 digits) and Decimal (34-digit precision, magnitudes
1E-999 to 9.999...E999), not binary floats (iot-core-rules-and-limits §1.4, §1.5, §1.6).

Each case reads the rule's output as its actions receive it: the JSON bytes."""

from __future__ import annotations

import json

import pytest

from cloud.cli.main import main
from cloud.rules.evaluate import Message, evaluate, plain
from cloud.rules.sql import parse
from edge.errors import RuleSqlError


def output(select: str, payload: bytes = b"{}", where: str = "") -> bytes | None:
    sql = f"SELECT {select} FROM 'a/#'" + (f" WHERE {where}" if where else "")
    out = evaluate(parse(sql), Message("a/b", payload, timestamp_ms=1652443860123))
    return None if out is None else out.to_bytes()


@pytest.mark.parametrize(
    ("select", "payload", "expected"),
    [
        # Decimal arithmetic in 34 digits, not binary floats
        ("0.1 + 0.2 AS x", b"{}", b'{"x":0.3}'),
        ("v + 0.2 AS x", b'{"v": 0.1}', b'{"x":0.3}'),
        ("v * 3 AS x", b'{"v": 1.1}', b'{"x":3.3}'),
        ("1 - 0.9 AS x", b"{}", b'{"x":0.1}'),
        # payload numbers keep every digit they have, up to 34
        ("v", b'{"v": 12345678901234567890.5}', b'{"v":12345678901234567890.5}'),
        ("v - 0.5 AS x", b'{"v": 12345678901234567890.5}', b'{"x":12345678901234567890}'),
        ("v", b'{"v": 0.1000000000000000055511151231257827}', b'{"v":0.1000000000000000055511151231257827}'),
        # beyond 34 digits a number is a Decimal rounded to 34 (half even)
        (
            "v",
            b'{"v": 123456789012345678901234567890123456789}',
            b'{"v":1.234567890123456789012345678901235E+38}',
        ),
        ("v", b'{"v": 9999999999999999999999999999999999}', b'{"v":9999999999999999999999999999999999}'),
        ("v + 1 AS x", b'{"v": 9999999999999999999999999999999999}', b'{"x":1.000000000000000000000000000000000E+34}'),
        ("v * v AS x", b'{"v": 99999999999999999999}', b'{"x":9.999999999999999999800000000000000E+39}'),
        # 2016-03-23: whole numbers are Ints
        ("v", b'{"v": 10.0}', b'{"v":10}'),
        ("10.0 AS x", b"{}", b'{"x":10}'),
        ("'4' - 2 AS x", b"{}", b'{"x":2}'),
        ("v", b'{"v": 1.5E+3}', b'{"v":1500}'),
        ("v", b'{"v": -0.0}', b'{"v":0}'),
        ("v", b'{"v": -0}', b'{"v":0}'),
        ("v", b'{"v": 0E-100}', b'{"v":0}'),
        # ... unless more than 34 digits long
        ("v", b'{"v": 1E+40}', b'{"v":1E+40}'),
        ("1E+40 AS x", b"{}", b'{"x":1E+40}'),
        ("v / 1E+40 AS x", b'{"v": 1E+40}', b'{"x":1}'),
        ("v", b'{"v": 1.5e-7}', b'{"v":1.5E-7}'),
        # division: Ints truncate (project rule), Decimals keep 34 digits
        ("7 / 2 AS a, -7 / 2 AS b, 7.5 / 2 AS c, 7.0 / 2 AS d", b"{}", b'{"a":3,"b":-3,"c":3.75,"d":3}'),
        ("0.1 / 0.3 AS x", b"{}", b'{"x":0.3333333333333333333333333333333333}'),
        ("0.2 / 0.3 AS x", b"{}", b'{"x":0.6666666666666666666666666666666667}'),
        ("1 / 0 AS a, 1.5 / 0 AS b, 1 / 0.0 AS c", b"{}", b"{}"),
        # %: the dividend's sign; exact on Decimals
        ("11 % 0.055 AS a, -7.5 % 2 AS b, 7.5 % -2 AS c, -7 % 2 AS d", b"{}", b'{"a":0,"b":-1.5,"c":1.5,"d":-1}'),
        ("1E+40 % 3 AS x, 5 % 0.0 AS y", b"{}", b"{}"),
        # strings converted to numbers are Decimals
        ("'0.1' * 3 AS x", b"{}", b'{"x":0.3}'),
        ("'12345678901234567890.5' - 0.5 AS x", b"{}", b'{"x":12345678901234567890}'),
        ("' 5' * 1 AS a, '5 ' * 1 AS b, '\u0661\u0662' * 1 AS c, '+5' * 1 AS d", b"{}", b"{}"),
        ("'1e999999' * 1 AS a, '1e-1000' * 1 AS b", b"{}", b"{}"),
        # unary minus and abs keep every digit
        ("-v AS a, abs(v) AS b", b'{"v": -12345678901234567890.25}', b'{"a":12345678901234567890.25,"b":12345678901234567890.25}'),
        # casts
        ("cast('0.1' AS Decimal) + 0.2 AS x", b"{}", b'{"x":0.3}'),
        # 2016-03-23: a whole number cast to Decimal is an Int (AWS's cast table)
        ("cast(7 AS Decimal) / 2 AS x, cast(7.5 AS Decimal) / 2 AS y", b"{}", b'{"x":3,"y":3.75}'),
        ("cast(v AS Int) AS x", b'{"v": 12345678901234567890.9}', b'{"x":12345678901234567890}'),
        ("cast(v AS Int) AS x", b'{"v": -12.7}', b'{"x":-12}'),
        ("cast(1E+40 AS Int) AS x", b"{}", b'{"x":1E+40}'),
        ("cast(v AS String) AS x", b'{"v": 12345678901234567890.5}', b'{"x":"12345678901234567890.5"}'),
        ("cast(0.1 + 0.2 AS String) AS x", b"{}", b'{"x":"0.3"}'),
        ("cast(true AS Decimal) AS x", b"{}", b'{"x":1}'),
        # AWS's cast table: Double "casts value to Decimal (with double precision)"
        (
            "cast(0.1 / 0.3 AS Double) AS a, cast(0.1 / 0.3 AS Decimal) AS b",
            b"{}",
            b'{"a":0.3333333333333333,"b":0.3333333333333333333333333333333333}',
        ),
        ("cast(v AS Double) AS x", b'{"v": 12345678901234567890.5}', b'{"x":12345678901234567000}'),
        ("cast(v AS double) AS x", b'{"v": "0.1"}', b'{"x":0.1}'),
        ("cast(7 AS Double) / 2 AS x, cast(true AS Double) / 2 AS y", b"{}", b'{"x":3,"y":0}'),
        ("cast(7.5 AS Double) / 2 AS x", b"{}", b'{"x":3.75}'),
        ("cast(1E+400 AS Double) AS x, cast(v AS Double) AS y", b'{"v": [1]}', b"{}"),
        ("'v=' + v AS x", b'{"v": 0.3}', b'{"x":"v=0.3"}'),
        # round/floor/ceil are exact
        (
            "round(v) AS r, floor(v) AS f, ceil(v) AS c",
            b'{"v": 12345678901234567890.5}',
            b'{"r":12345678901234567891,"f":12345678901234567890,"c":12345678901234567891}',
        ),
        ("round(-2.5) AS r, floor(-0.5) AS f, ceil(-0.5) AS c", b"{}", b'{"r":-3,"f":-1,"c":0}'),
        ("round(1E+40) AS r", b"{}", b'{"r":1E+40}'),
        # results outside the Decimal range are Undefined (project rule), never Infinity
        ("v * v AS a, v * 10 AS b, 1E-999 / 10 AS c, 1E-999 * 1E-999 AS d", b'{"v": 9.9E+999}', b"{}"),
        ("9.9E+999 AS x", b"{}", b'{"x":9.9E+999}'),
    ],
)  # fmt: skip
def test_numbers_follow_the_spec(select: str, payload: bytes, expected: bytes) -> None:
    assert output(select, payload) == expected


@pytest.mark.parametrize(
    ("where", "passes"),
    [
        ("12345678901234567890123456789012 < 12345678901234567890123456789012.5", True),
        ("v > 12345678901234567890", True),
        ("v = 12345678901234567890.5", True),
        ("v = 12345678901234567890", False),
        ("0.1 + 0.2 = 0.3", True),
        ("0.1 + 0.2 <= 0.3", True),
        ("10 = 10.0", True),
        ("1 = '1'", False),
        ("'0.30' < 0.3", False),
        ("'0.30' >= 0.3", True),
        ("9999999999999999999999999999999999 + 1 > 9999999999999999999999999999999999", True),
    ],
)
def test_comparisons_between_int_and_decimal_are_exact(where: str, passes: bool) -> None:
    assert (output("1 AS one", b'{"v": 12345678901234567890.5}', where) is not None) is passes


@pytest.mark.parametrize("literal", ["1e1000", "1E-1000", "9" * 30 + "e999", "0.1e-999"])
def test_a_literal_outside_the_decimal_range_is_refused_with_its_position(literal: str) -> None:
    with pytest.raises(RuleSqlError, match="outside the Decimal range") as info:
        parse(f"SELECT {literal} AS x FROM 'a/#'")
    assert info.value.position == 8


def test_a_long_int_literal_is_a_decimal() -> None:
    assert output("1" * 40 + " AS x") == b'{"x":1.111111111111111111111111111111111E+39}'
    assert output("1" * 34 + " AS x") == b'{"x":' + b"1" * 34 + b"}"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v": 1e999999, "w": 1}',
        b'{"v": 1e-999999, "w": 1}',
        b'{"v": 1E1000, "w": 1}',
        b'{"v": ' + b"7" * 10_000 + b', "w": 1}',
        b'{"v": 0.' + b"7" * 10_000 + b"e999999999999999999999, " + b'"w": 1}',
    ],
)
def test_a_number_outside_the_decimal_range_makes_the_payload_unreadable(payload: bytes) -> None:
    """Project rule: such a payload is not JSON the rules engine can read: its fields are
    Undefined and ``*`` passes its bytes through (§1.7), never a crash or an infinity."""
    assert output("v, w") == b"{}"
    assert output("v, w", payload) == b"{}"
    out = evaluate(parse("SELECT * FROM 'a/#'"), Message("a/b", payload))
    assert out is not None and out.to_bytes() == payload


def test_a_long_number_within_the_range_is_rounded_to_34_digits() -> None:
    digits = b"3" * 500
    assert (
        output("v", b'{"v": ' + digits + b"}") == b'{"v":3.333333333333333333333333333333333E+499}'
    )
    assert output("v", b'{"v": 0.' + b"3" * 10_000 + b"}") == b'{"v":0.' + b"3" * 34 + b"}"


@pytest.mark.timeout(60)
def test_hostile_numbers_never_hang_or_raise() -> None:
    """Decimal arithmetic on huge exponents or 10,000-digit operands can take seconds; the
    34-digit context with a 999 exponent keeps each of these to microseconds."""
    for select in [
        "v * v * v * v AS a, v % 7 AS b, round(v) AS c, cast(v AS Int) AS d, cast(v AS String) AS e",
        "v / 7 AS a, v - 1E-999 AS b, 1E-999 % v AS c, get('abc', v) AS d, topic(v) AS e",
        "substring('abc', v) AS a, parse_time('yyyy', v) AS b, v + '1' AS c, -v AS d",
    ]:
        for payload in (
            b'{"v": 9.999E+999}',
            b'{"v": ' + b"9" * 4000 + b"}",
            b'{"v": "' + b"9" * 9000 + b'"}',
        ):
            out = output(select, payload)
            assert out is not None and b"Infinity" not in out and b"NaN" not in out


def test_cli_eval_prints_decimals_with_every_digit(capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT 0.1 + 0.2 AS x, v FROM 'a/#'"
    payload = '{"v": 12345678901234567890.5}'
    assert main(["rules", "eval", "--sql", sql, "--topic", "a/b", "--payload", payload]) == 0
    out = capsys.readouterr().out
    assert out == '{"x":0.3,"v":12345678901234567890.5}\n'
    assert json.loads(out) == {"x": 0.3, "v": 12345678901234567890.5}


def test_the_local_batcher_reads_a_rule_output_as_its_json() -> None:
    """The kinesis action hands the local batcher what the Lambda batcher reads from the
    record: the output's JSON through ``json.loads``, Decimals as floats or ints."""
    out = evaluate(
        parse("SELECT v, w, 0.1 + 0.2 AS x, [10.0, 1E+40] AS y FROM 'a/#'"),
        Message("a/b", b'{"v": 85.25, "w": {"n": 12345678901234567890.5}}'),
    )
    assert out is not None
    native = plain(out.value)
    assert native == json.loads(out.to_bytes())
    assert native == {"v": 85.25, "w": {"n": 1.2345678901234567e19}, "x": 0.3, "y": [10, 1e40]}
    assert type(native["y"][0]) is int


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        # written as Java's BigDecimal.remainder(y, MathContext.DECIMAL128).toString() gives
        # them (JDK 17), where the scale of the remainder follows the integral quotient's
        ("1.5 % 2.25", b"1.5"),  # the dividend is smaller: Java gives it back as it is
        ("21.6 % 2.15", b"0.1"),  # the quotient 10 has a zero to spare: 0.1, not 0.10
        ("-21.6 % 2.15", b"-0.1"),
        ("mod(21.6, 2.15)", b"0.1"),
        ("remainder(1.5, 0.149)", b"0.01"),
        ("249558.3 % -434630.40", b"249558.3"),
        ("-326038 % 3.7165E-7", b"-1.255E-7"),
        # where Python's and Java's digits were already alike
        ("7.500 % 2", b"1.500"),
        ("5.5 % 2", b"1.5"),
        ("1000.5 % 0.333", b"0.168"),
        ("7.25 % 0.5", b"0.25"),
        ("1001 % 0.25", b"0"),
        ("7 % 3", b"1"),
    ],
)
def test_a_decimal_remainder_has_the_digits_java_gives_it(select: str, expected: bytes) -> None:
    assert output(f"{select} AS r") == b'{"r":' + expected + b"}"
