"""``time_to_epoch(timestamp, pattern)``: a timestamp string read with a Java
``DateTimeFormatter`` pattern (AWS: "JDK11 Time Formats"), as epoch milliseconds.

Why a pattern compiler rather than ``strptime``: the rules engine's patterns are Java's
(``yyyy-MM-dd HH:mm:ss VV``), whose letters and zone forms ``strptime`` does not read.
The common letters are covered: ``y u M L d H h k K m s S a E`` and the zone forms ``VV z
X x Z``, quoted text and literal punctuation. A date needs a year, a month and a day (as
Java's resolver does); time fields default to midnight and the zone to UTC. Anything else
(another letter, optional sections ``[...]``, a string that does not match, an unknown
zone) is Undefined, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_ZONE = r"[A-Za-z][A-Za-z0-9_/+\-:]*|[+-]\d{2}(?::?\d{2}){0,2}"
_OFFSET = r"Z|[+-]\d{2}(?::?\d{2}){0,2}"
_LETTERS = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*")

Field = tuple[str, Callable[[str], Any]]


class _Unsupported(Exception):
    """A pattern with a letter or section this module does not read."""


def _number(width: int, exact: bool = False) -> str:
    return rf"(\d{{{width}}})" if exact or width > 1 else r"(\d{1,2})"


def _token(run: str) -> tuple[str, Field | None]:
    """The regex of one pattern-letter run, and the field it fills (None: matched only)."""
    letter, width = run[0], len(run)
    if letter in "yu":
        if width == 2:
            return r"(\d{2})", ("year", lambda t: 2000 + int(t))
        if width > 9:  # at least 10 digits: no year Java (or datetime) holds
            raise _Unsupported(run)
        return rf"(\d{{{max(width, 4) if width != 1 else 1},9}})", ("year", int)
    if letter in "ML":
        if width >= 4:
            return "(" + "|".join(MONTHS) + ")", ("month", lambda t: MONTHS.index(t) + 1)
        if width == 3:
            short = [m[:3] for m in MONTHS]
            return "(" + "|".join(short) + ")", ("month", lambda t: short.index(t) + 1)
        return _number(width), ("month", int)
    simple = {"d": "day", "H": "hour", "k": "hour24", "h": "hour12", "K": "hour11"}
    simple |= {"m": "minute", "s": "second"}
    if letter in simple:
        if width > 2:
            raise _Unsupported(run)
        return _number(width), (simple[letter], int)
    if letter == "S":
        return rf"(\d{{{width}}})", ("millis", lambda t: int(t.ljust(9, "0")[:3]))
    if letter == "a":
        return "(AM|PM)", ("pm", lambda t: t == "PM")
    if letter == "E":
        names = DAYS if width >= 4 else [d[:3] for d in DAYS]
        return "(?:" + "|".join(names) + ")", None
    if letter in "Vz":
        if letter == "V" and width != 2:
            raise _Unsupported(run)
        return f"({_ZONE})", ("zone", _zone)
    if letter in "XxZ":
        return f"({_OFFSET})", ("zone", _zone)
    raise _Unsupported(run)


@lru_cache(maxsize=128)
def _compile(pattern: str) -> tuple[re.Pattern[str], tuple[Field, ...]] | None:
    """The pattern as one regular expression that never backtracks more than a field's
    width (the pattern and the string may both be a device's, and adjacent variable-width
    fields such as ``dHdH...`` or ``VVzVV`` would otherwise backtrack exponentially).

    As Java's ``DateTimeFormatter`` parses, with no backtracking from one field into
    another: each zone or offset is read once, greedily; a variable-width number (``y``,
    ``d``, ...) and the fixed-width numbers right after it (``yyyyMMdd``) form one atomic
    group, so the variable one leaves the fixed ones their digits (Java's "adjacent value
    parsing") and nothing outside the group re-enters it."""
    parts: list[str] = []
    chain: list[str] = []  # a variable-width number and the fixed-width ones after it
    fields: list[Field] = []

    def close_chain() -> None:
        if chain:
            parts.append("(?>" + "".join(chain) + ")")
            chain.clear()

    pos = 0
    try:
        for m in _LETTERS.finditer(pattern):
            literal = _literal(pattern[pos : m.start()])
            if literal:
                close_chain()
                parts.append(literal)
            pos = m.end()
            run = m.group()
            if run.startswith("'"):
                close_chain()
                parts.append(re.escape(run[1:-1].replace("''", "'") if run != "''" else "'"))
                continue
            regex, field = _token(run)
            if field is not None:
                fields.append(field)
            if _FIXED_DIGITS.fullmatch(regex):
                (chain if chain else parts).append(regex)
            elif _VARIABLE_DIGITS.fullmatch(regex):
                close_chain()
                chain.append(regex)
            else:  # a name, zone or offset: read once, greedily
                close_chain()
                parts.append("(?>" + regex + ")")
        close_chain()
        parts.append(_literal(pattern[pos:]))
    except _Unsupported:
        return None
    return re.compile("".join(parts)), tuple(fields)


_FIXED_DIGITS = re.compile(r"\(\\d\{\d+\}\)")
_VARIABLE_DIGITS = re.compile(r"\(\\d\{\d+,\d+\}\)")


def _literal(text: str) -> str:
    if "[" in text or "]" in text or "{" in text or "}" in text or "#" in text:
        raise _Unsupported(text)  # optional sections and reserved characters
    if "'" in text:  # a quote left open: Java refuses the pattern
        raise _Unsupported(text)
    return re.escape(text)


def _zone(text: str) -> tzinfo:
    """A zone as Java's ``ZoneId.of`` reads it: a region (``America/Los_Angeles``), ``Z``,
    an offset (``+01:00``), or ``UTC``/``GMT``/``UT`` with or without an offset."""
    if text == "Z":
        return UTC
    for prefix in ("UTC", "GMT", "UT"):
        if text.startswith(prefix) and text[len(prefix) : len(prefix) + 1] in "+-":
            return _offset(text[len(prefix) :])
    if text[0] in "+-":
        return _offset(text)
    return ZoneInfo(text)


def _offset(text: str) -> tzinfo:
    digits = text[1:].replace(":", "")
    if not digits.isdigit() or len(digits) not in (1, 2, 4, 6):
        raise ValueError(text)
    hours = int(digits[:2] if len(digits) != 1 else digits)
    minutes = int(digits[2:4] or 0)
    seconds = int(digits[4:6] or 0)
    delta = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if delta > timedelta(hours=18):
        raise ValueError(text)
    return timezone(-delta if text[0] == "-" else delta)


def epoch_ms(timestamp: str, pattern: str) -> int | None:
    """Epoch milliseconds of *timestamp* read with *pattern*; None when they do not fit."""
    compiled = _compile(pattern)
    if compiled is None:
        return None
    regex, fields = compiled
    match = regex.fullmatch(timestamp)
    if match is None:
        return None
    try:
        values = {
            name: read(text) for (name, read), text in zip(fields, match.groups(), strict=True)
        }
        return _epoch_ms(values)
    except (ValueError, KeyError, OverflowError, ZoneInfoNotFoundError):
        return None


def _epoch_ms(values: dict[str, Any]) -> int:
    hour = values.get("hour", 0)
    if "hour24" in values:
        hour = values["hour24"] % 24
    if "hour12" in values or "hour11" in values:
        if "pm" not in values:
            raise ValueError("a 12-hour clock needs AM or PM")
        base = values["hour12"] % 12 if "hour12" in values else values["hour11"]
        hour = base + (12 if values["pm"] else 0)
    at = datetime(
        values["year"],
        values["month"],
        values["day"],
        hour,
        values.get("minute", 0),
        values.get("second", 0),
        values.get("millis", 0) * 1000,
        tzinfo=values.get("zone", UTC),
    )
    delta = at - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
