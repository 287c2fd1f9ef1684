"""Command-line parsing shared by ``plantwatch`` and ``plantwatch-edge``.

It lives in ``edge`` (stdlib only) because device installs run ``plantwatch-edge`` without
the cloud package, and both CLIs must reject bad input the same way:

- :class:`Parser` reports a usage error as ONE line on stderr and exits 2, so scripts and
  CI logs see ``plantwatch: error: argument --port: ...`` instead of a usage block.
- The ``type=`` validators below check numbers and durations while arguments are parsed,
  so ``--rows -5`` or ``--port 99999`` fails before any work starts (no broker is launched,
  no file is written) and the message names the option and what was expected.
- :func:`add_subcommands` gives every command group the same placeholder name.

Every option gets help text; ``tests/unit/test_cli_conventions.py`` checks all of them.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from typing import NoReturn

SUBCOMMAND = "SUBCOMMAND"
"""The placeholder every command group shows for its subcommands."""

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|min|s|m|h|d)")
DURATION_FORMATS = "'90s', '15m', '2h' or '1d'"


def one_line(message: object) -> str:
    """*message* on one line: a line break inside it (a path or argument holding one) is
    shown escaped, so an error stays the one stderr line scripts and logs expect."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")


def has_shown_default(action: argparse.Action) -> bool:
    """Whether *action*'s default is worth printing: set, not empty, not a flag or hidden."""
    if action.help == argparse.SUPPRESS or not action.option_strings:
        return False
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        return False
    return action.default not in (None, "", [], (), argparse.SUPPRESS)


class HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default X)`` to an option's help unless the help already says its default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if text and "default" not in text and has_shown_default(action):
            return f"{text} (default %(default)s)"
        return text


_NEGATIVE_VALUE = re.compile(r"^-\d+$|^-\d*\.\d+$|^-\d{2}:\d{2}$")
"""Arguments read as values, not options: argparse's negative numbers and ``-HH:MM``."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line naming the option, and whose
    ``--help`` shows every option's default (:class:`HelpFormatter`)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        # A value that starts with '-' is taken for an unknown option unless it looks like a
        # negative number; a UTC offset west of Greenwich (--tz-offset -05:00, L4E's
        # InputTimeZoneOffset) is such a value too. Python 3.13 reads any '-<digit>' so.
        self._negative_number_matcher = _NEGATIVE_VALUE

    def error(self, message: str) -> NoReturn:
        root = self.prog.split()[0] if self.prog else "plantwatch"
        sys.stderr.write(f"{root}: error: {one_line(message)} (see `{self.prog} --help`)\n")
        sys.exit(2)


class CommaList(argparse.Action):
    """``--assets a,b``: each comma-separated item appended to the list *dest* holds, so a
    repeatable ``--asset a --asset b`` can share its dest with it."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[no-untyped-def]
        items = [item.strip() for item in str(values).split(",") if item.strip()]
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), *items])


class JoinedList(argparse.Action):
    """``--asset a`` (repeatable) added to the comma-separated text *dest* holds, so it can
    share its dest with a ``--assets a,b``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[no-untyped-def]
        current = getattr(namespace, self.dest, None) or ""
        setattr(namespace, self.dest, ",".join(p for p in (current, str(values)) if p))


def add_subcommands(parser: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction:
    """A required subcommand group shown as ``SUBCOMMAND`` in usage and help."""
    return parser.add_subparsers(dest=dest, metavar=SUBCOMMAND, required=True)


def parse_duration_text(text: str) -> float:
    """Seconds from ``90s``, ``15m``, ``1min``, ``2h``, ``1d``, ``250ms`` or ``1h30m``.

    Raises ``ValueError`` naming the accepted forms; a unit is required, so ``5`` (seconds?
    minutes?) is refused, and so are negative and non-finite values.
    """
    compact = text.strip().replace(" ", "")
    if compact.startswith("-") and _DURATION_RE.fullmatch(compact[1:]):
        raise ValueError(f"must not be negative, got {text!r}")
    pos, seconds = 0, 0.0
    for match in _DURATION_RE.finditer(compact):
        if match.start() != pos:
            break
        seconds += float(match[1]) * _UNITS[match[2]]
        pos = match.end()
    if pos != len(compact) or not compact:
        raise ValueError(f"expected a duration like {DURATION_FORMATS}, got {text!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, got {text!r}")
    return seconds


def int_range(
    low: int | None = None, high: int | None = None, *, what: str = "an integer"
) -> Callable[[str], int]:
    """A validator for whole numbers in ``[low, high]`` (either bound may be open)."""

    def check(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    check.__name__ = what  # argparse names the type in some of its messages
    return check


def float_range(
    low: float | None = None,
    high: float | None = None,
    *,
    what: str = "a number",
    low_open: bool = False,
) -> Callable[[str], float]:
    """A validator for finite numbers in ``[low, high]``; ``low_open`` excludes ``low``."""

    def check(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        bad = not math.isfinite(value)
        bad = bad or (low is not None and (value <= low if low_open else value < low))
        bad = bad or (high is not None and value > high)
        if bad:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    check.__name__ = what
    return check


_PER_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)/(ms|min|s|m|h|d)")
RATE_FORMATS = "readings per unit ('20/s', '4/min') or a sample period ('50ms', '10s', '1min')"


def rate(
    *,
    bare: str | None,
    low_hz: float | None = None,
    high_hz: float | None = None,
    as_period: bool = False,
) -> Callable[[str], float]:
    """A validator for every ``--rate``: readings per second, or with *as_period* the
    sample period in seconds.

    Why one: the simulator's ``--rate`` has always been a sample period and the benchmarks'
    a frequency, so ``--rate 20`` meant opposite things. Every ``--rate`` now takes both
    spelt out (``20/s`` or ``50ms``); a bare number keeps the meaning it had for that
    command (*bare* ``"hz"``: readings per second; ``"period"``: a period in seconds; None:
    refused, where a unit was always required), so scripts that passed one still work.
    """
    if bare not in ("hz", "period", None):
        raise ValueError(f"bare must be 'hz', 'period' or None, not {bare!r}")

    def check(text: str) -> float:
        compact = text.strip().replace(" ", "")
        try:
            if match := _PER_RE.fullmatch(compact):
                hz = float(match[1]) / _UNITS[match[2]]
            elif bare is not None and not compact[-1:].isalpha():
                number = float(compact)
                hz = number if bare == "hz" else 1.0 / number
            else:
                hz = 1.0 / parse_duration_text(compact)
        except (ValueError, ZeroDivisionError):
            raise argparse.ArgumentTypeError(f"expected {RATE_FORMATS}, got {text!r}") from None
        bad = not math.isfinite(hz) or hz <= 0
        bad = bad or (low_hz is not None and hz < low_hz) or (high_hz is not None and hz > high_hz)
        if bad:
            raise argparse.ArgumentTypeError(
                f"expected a rate {_bounds(low_hz, high_hz)}, got {text!r}"
            )
        return 1.0 / hz if as_period else hz

    check.__name__ = "a rate"
    return check


def _bounds(low_hz: float | None, high_hz: float | None) -> str:
    """The allowed range, both as a frequency and as a period, for the error message."""
    parts = ["above 0"]
    if low_hz is not None:
        parts = [f"of at least {low_hz:g}/s (a period of at most {1 / low_hz:g}s)"]
    if high_hz is not None:
        parts.append(f"at most {high_hz:g}/s (a period of at least {1000 / high_hz:g}ms)")
    return ", ".join(parts)


_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def aws_region(text: str) -> str:
    """An AWS Region name such as ``eu-west-1``: a typo is named here rather than deep in
    botocore, which refuses malformed names only when the first client is made."""
    if not _REGION_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected an AWS Region such as eu-west-1, got {text!r}")
    return text


positive_int = int_range(1, what="a whole number of at least 1")
non_negative_int = int_range(0, what="a whole number of at least 0")
port = int_range(0, 65535, what="a TCP port 0-65535 (0 picks a free one)")
positive_float = float_range(0.0, low_open=True, what="a number greater than 0")
non_negative_float = float_range(0.0, what="a number of at least 0")


def duration(text: str) -> float:
    """Seconds from ``90s``, ``15m``, ``2h``, ``1d`` or ``1h30m``; more than 0."""
    try:
        seconds = parse_duration_text(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration greater than 0, got {text!r}")
    return seconds
