"""The shared argument validators and the one-line usage error."""

from __future__ import annotations

import argparse
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.cliargs import (
    Parser,
    add_subcommands,
    duration,
    non_negative_float,
    parse_duration_text,
    port,
    positive_float,
    positive_int,
    rate,
)


@given(st.integers())
def test_positive_int_accepts_exactly_the_positive_integers(value: int) -> None:
    if value >= 1:
        assert positive_int(str(value)) == value
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
            positive_int(str(value))


@given(st.integers(-100_000, 200_000))
def test_port_range(value: int) -> None:
    if 0 <= value <= 65535:
        assert port(str(value)) == value
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="0-65535"):
            port(str(value))


@given(st.text(max_size=12))
def test_numeric_validators_return_a_value_or_raise_argument_type_error(text: str) -> None:
    for check in (positive_int, port, positive_float, non_negative_float, duration):
        try:
            value = check(text)
        except argparse.ArgumentTypeError as exc:
            assert repr(text) in str(exc)
        else:
            assert math.isfinite(value)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "0", "-0.5", "abc", ""])
def test_positive_float_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        positive_float(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("15m", 900.0), ("1min", 60.0), ("2h", 7200.0), ("1h30m", 5400.0),
     ("250ms", 0.25), ("1d", 86400.0)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds
    assert parse_duration_text(text) == seconds


@pytest.mark.parametrize("text", ["5", "-5m", "0s", "m5", "5 parsecs", "1h-5m", ""])
def test_bad_durations_name_the_forms(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"duration|negative"):
        duration(text)


def _parser() -> Parser:
    parser = Parser(prog="plantwatch")
    sub = add_subcommands(parser, "command")
    child = sub.add_parser("up", help="run")
    child.add_argument("--port", type=port, default=1883, help="broker port")
    return parser


def test_usage_error_is_one_line_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["up", "--port", "99999"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("plantwatch: error: argument --port: expected a TCP port 0-65535")
    assert "'99999'" in err and "plantwatch up --help" in err


def test_subcommand_placeholder(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    assert "SUBCOMMAND" in capsys.readouterr().out


@given(st.floats(0.001, 1000.0))
def test_a_rate_reads_the_same_as_a_frequency_or_as_the_matching_period(hz: float) -> None:
    check = rate(bare="hz", high_hz=1000.0)
    assert check(f"{hz}/s") == pytest.approx(hz)
    assert check(f"{hz * 60}/min") == pytest.approx(hz)
    assert check(f"{1000.0 / hz}ms") == pytest.approx(hz)
    assert check(repr(hz)) == pytest.approx(hz)


@given(st.floats(0.001, 3600.0))
def test_a_bare_number_keeps_the_meaning_its_command_gave_it(seconds: float) -> None:
    assert rate(bare="period", as_period=True)(repr(seconds)) == pytest.approx(seconds)
    assert rate(bare="hz")(repr(seconds)) == pytest.approx(seconds)
    with pytest.raises(argparse.ArgumentTypeError, match="or a sample period"):
        rate(bare=None)(repr(seconds))


@pytest.mark.parametrize("text", ["0", "0/s", "-1", "2000/s", "0.5ms", "1e9", "fast", "1us", ""])
def test_a_rate_out_of_range_or_unreadable_is_refused_naming_what_is_expected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        rate(bare="hz", high_hz=1000.0)(text)
    message = str(caught.value)
    assert repr(text) in message and "\n" not in message
    assert "at most 1000/s" in message or "20/s" in message
