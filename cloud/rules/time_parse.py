"""IoT SQL's time patterns. ``time_to_epoch(timestamp, pattern)``: a timestamp string read
with a Java ``DateTimeFormatter`` pattern (AWS: "JDK11 Time Formats"), as epoch
milliseconds. ``parse_time(pattern, ms)``: epoch milliseconds written with a Joda-Time
pattern (:func:`joda_format`). Both patterns may be payload fields, so each is read run by
run, at most :data:`MAX_PATTERN_RUNS` of them.

Why a pattern compiler rather than ``strptime``: the rules engine's patterns are Java's
(``yyyy-MM-dd HH:mm:ss VV``), whose letters and zone forms ``strptime`` does not read.
The common letters are covered: ``y u M L d H h k K m s S a E`` and the zone forms ``VV z
X x Z``, quoted text and literal punctuation. A date needs a year, a month and a day (as
Java's resolver does); time fields default to midnight and the zone to UTC. Anything else
(another letter, optional sections ``[...]``, a string that does not match, an unknown
zone) is Undefined, never a guess.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cloud.rules.java_zone_names import SHORT_NAMES

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
_ZONE = r"[A-Za-z][A-Za-z0-9_/+\-:]*|[+-][0-9]{2}(?::?[0-9]{2}){0,2}"
_OFFSET = r"Z|[+-][0-9]{2}(?::?[0-9]{2}){0,2}"
MAX_PATTERN_RUNS = 100
"""Project rule (Java and Joda set no bound): a pattern of more runs is Undefined. A run is
one pattern letter repeated (``yyyy``), one quoted text (``'T'``) or a stretch of other
characters (``-``). The pattern may be a payload field, and each run costs a step when the
pattern is read; ``yyyy-MM-dd'T'HH:mm:ss.SSSXXX`` has 14."""
_RUN = re.compile(r"([A-Za-z])\1*|[^A-Za-z'\[\]{}#]+")
"""A letter run, or plain text up to the next letter, quote or reserved character."""

Field = tuple[str, Callable[[str], Any]]
Step = str | tuple[re.Pattern[str], tuple[Field, ...]]
"""Text to match as it is, or a regular expression read at that point and the fields its
groups fill."""


class _Unsupported(Exception):
    """A pattern with a letter or section this module does not read."""


def _number(width: int, exact: bool = False) -> str:
    return rf"([0-9]{{{width}}})" if exact or width > 1 else r"([0-9]{1,2})"


def _token(run: str) -> tuple[str, Field | None]:
    """The regex of one pattern-letter run, and the field it fills (None: matched only).
    Digits are ASCII only, as Java's (``\\d`` and int() take every script's)."""
    letter, width = run[0], len(run)
    if letter in "yu":
        if width == 2:
            return r"([0-9]{2})", ("year", lambda t: 2000 + int(t))
        if width > 9:  # at least 10 digits: no year Java (or datetime) holds
            raise _Unsupported(run)
        return rf"([0-9]{{{max(width, 4) if width != 1 else 1},9}})", ("year", int)
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
        if width > 9:  # Java: "Minimum width must be from 0 to 9 inclusive"
            raise _Unsupported(run)
        return rf"([0-9]{{{width}}})", ("millis", lambda t: int(t.ljust(9, "0")[:3]))
    if letter == "a":
        return "(AM|PM)", ("pm", lambda t: t == "PM")
    if letter == "E":
        names = DAYS if width >= 4 else [d[:3] for d in DAYS]
        return "(" + "|".join(names) + ")", ("weekday", names.index)
    if letter in "Vz":
        if letter == "V" and width != 2:
            raise _Unsupported(run)
        return f"({_ZONE})", ("zone", _zone_name if letter == "z" and width < 4 else _zone)
    if letter in "XxZ":
        return f"({_OFFSET})", ("zone", _zone)
    raise _Unsupported(run)


def pattern_runs(pattern: str) -> list[str] | None:
    """*pattern* split into its runs, each quoted text unquoted (``'it''s'`` is ``it's``,
    ``''`` is ``'``) and marked by a leading quote; None when Java refuses the pattern (a
    quote left open, an optional section ``[...]``, a reserved character) or it has more
    than :data:`MAX_PATTERN_RUNS` runs. One step per run, each as long as its run: linear
    in the pattern, and never past the limit."""
    runs: list[str] = []
    pos, end = 0, len(pattern)
    while pos < end:
        if len(runs) == MAX_PATTERN_RUNS:
            return None
        if pattern[pos] == "'":
            close = pos
            while True:
                close = pattern.find("'", close + 1)
                if close < 0:
                    return None  # Java: "Pattern ends with an incomplete string literal"
                if not pattern.startswith("''", close):
                    break
                close += 1  # '' inside quotes: one quote
            text = pattern[pos + 1 : close]
            runs.append("'" + (text.replace("''", "'") if text else "'"))
            pos = close + 1
            continue
        m = _RUN.match(pattern, pos)
        if m is None:
            return None  # [ ] { } #: optional sections and reserved characters
        runs.append(m.group() if m.group(1) else "'" + m.group())
        pos = m.end()
    return runs


@lru_cache(maxsize=128)
def _compile(pattern: str) -> tuple[Step, ...] | None:
    """The pattern as steps read one after the other, never going back into an earlier
    one (the pattern and the string may both be a device's, and adjacent variable-width
    fields such as ``dHdH...`` or ``VVzVV`` would otherwise backtrack exponentially).

    As Java's ``DateTimeFormatter`` parses: each zone or offset is read once, greedily; a
    variable-width number (``y``, ``d``, ...) and the fixed-width numbers right after it
    (``yyyyMMdd``) are one step, so the variable one leaves the fixed ones their digits
    (Java's "adjacent value parsing"); text is compared as it is."""
    runs = pattern_runs(pattern)
    if runs is None:
        return None
    steps: list[Step] = []
    chain: list[str] = []  # a variable-width number and the fixed-width ones after it
    chain_fields: list[Field] = []

    def add(regex: str, fields: list[Field]) -> None:
        steps.append((_regex(regex), tuple(fields)))

    def close_chain() -> None:
        if chain:
            add("".join(chain), chain_fields)
            chain.clear()
            chain_fields.clear()

    try:
        for run in runs:
            if run.startswith("'"):
                close_chain()
                if steps and isinstance(steps[-1], str):
                    steps[-1] += run[1:]
                else:
                    steps.append(run[1:])
                continue
            regex, field = _token(run)
            fields = [] if field is None else [field]
            if _FIXED_DIGITS.fullmatch(regex) and chain:
                chain.append(regex)
                chain_fields.extend(fields)
            elif _VARIABLE_DIGITS.fullmatch(regex):
                close_chain()
                chain.append(regex)
                chain_fields.extend(fields)
            else:  # a fixed-width number alone, a name, a zone or an offset
                close_chain()
                add(regex, fields)
        close_chain()
    except _Unsupported:
        return None
    return tuple(steps)


@lru_cache(maxsize=256)
def _regex(text: str) -> re.Pattern[str]:
    return re.compile(text)


_FIXED_DIGITS = re.compile(r"\(\[0-9\]\{\d+\}\)")
_VARIABLE_DIGITS = re.compile(r"\(\[0-9\]\{\d+,\d+\}\)")


def _zone(text: str) -> tzinfo:
    """A zone as Java's ``ZoneId.of`` reads it: a region (``America/Los_Angeles``), ``Z``,
    an offset (``+01:00``), or ``UTC``/``GMT``/``UT`` with or without an offset."""
    if text in ("Z", "UTC", "GMT", "UT"):  # Java's zones of offset zero (UT is no tz key)
        return UTC
    for prefix in ("UTC", "GMT", "UT"):
        if text.startswith(prefix) and text[len(prefix) : len(prefix) + 1] in ("+", "-"):
            return _offset(text[len(prefix) :])
    if text[0] in "+-":
        return _offset(text)
    zone = None if text in _NOT_JAVA_IDS else zone_by_id(text)
    if zone is None:
        raise ZoneInfoNotFoundError(text)
    return zone


_NOT_JAVA_IDS = frozenset({"EST", "MST", "HST", "Factory", "ROC", "localtime"})
"""tz database keys that are no ``ZoneId`` in Java (OpenJDK 17's ``getAvailableZoneIds``):
``ZoneId.of("EST")`` fails unless ``SHORT_IDS`` is passed, which ``DateTimeFormatter`` does
not, so ``VV`` refuses them; ``localtime`` is the host's own zone."""


def _zone_name(text: str) -> tzinfo:
    """A zone as Java's ``z`` parser reads it: a short name (``PST``) as its region
    (:data:`SHORT_NAMES`), else as :func:`_zone` reads an id or offset."""
    region = SHORT_NAMES.get(text)
    if region is None:
        return _zone(text)
    zone = zone_by_id(region)
    if zone is None:
        raise ZoneInfoNotFoundError(region)
    return zone


def zone_by_id(key: str) -> ZoneInfo | None:
    """The tz database zone *key* names (``America/New_York``), None for one it does not
    hold. Why not ``ZoneInfo(key)`` alone: a key it does not know costs a search of every
    zone directory (about 0.1 ms), and a known one it no longer keeps (it keeps 8) is read
    from its file again, and a payload can name 14,000 zones. So a key is looked up in the
    known ones (listed once), and each zone is kept once read (some 600 at most)."""
    if key not in _known_zones():
        return None
    return _zone_file(key)


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@cache
def _zone_file(key: str) -> ZoneInfo:
    return ZoneInfo(key)


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
    steps = _compile(pattern)
    if steps is None:
        return None
    values: dict[str, Any] = {}
    pos = 0
    try:
        for step in steps:
            if isinstance(step, str):
                if not timestamp.startswith(step, pos):
                    return None
                pos += len(step)
                continue
            regex, fields = step
            match = regex.match(timestamp, pos)
            if match is None:
                return None
            for (name, read), text in zip(fields, match.groups(), strict=True):
                values[name] = read(text)
            pos = match.end()
        if pos != len(timestamp):
            return None
        return _epoch_ms(values)
    except (ValueError, KeyError, OverflowError, ZoneInfoNotFoundError):
        return None


def _epoch_ms(values: dict[str, Any]) -> int:
    """The fields read, resolved as Java's ``DateTimeFormatter.ofPattern`` resolves them
    (SMART, its default): a day-of-month past the month's end, up to 31, is the month's last
    day (``2024-02-30`` is ``2024-02-29``), and hour 24 with nothing after it on the clock is
    midnight of the next day; a day-of-week read must be the date's; anything else out of
    range is an error (None above)."""
    hour = values.get("hour", 0)
    if "hour24" in values:
        hour = values["hour24"] % 24
    if "hour12" in values or "hour11" in values:
        if "pm" not in values:
            raise ValueError("a 12-hour clock needs AM or PM")
        base = values["hour12"] % 12 if "hour12" in values else values["hour11"]
        hour = base + (12 if values["pm"] else 0)
    year, month, day = values["year"], values["month"], values["day"]
    if 1 <= month <= 12 and 28 < day <= 31:  # SMART: the month's last day
        day = min(day, calendar.monthrange(year, month)[1])
    minute, second, millis = (
        values.get("minute", 0),
        values.get("second", 0),
        values.get("millis", 0),
    )
    if "weekday" in values and date(year, month, day).weekday() != values["weekday"]:
        raise ValueError("the day-of-week is not the date's")
    next_day = hour == 24 and minute == second == millis == 0  # SMART: 24:00 ends the day
    at = datetime(
        year,
        month,
        day,
        0 if next_day else hour,
        minute,
        second,
        millis * 1000,
        tzinfo=values.get("zone", UTC),
    )
    if next_day:
        at += timedelta(days=1)
    delta = at - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def joda_runs(pattern: str) -> list[str] | None:
    """*pattern* split into runs as Joda-Time's ``DateTimeFormat`` reads it: a letter
    repeated, or text marked by a leading quote. ``''`` is a quote, in quoted text or out
    of it, and a quote left open runs to the end (Joda refuses neither); every other
    character is text (Joda has no optional sections). None past
    :data:`MAX_PATTERN_RUNS` runs, one step per run as in :func:`pattern_runs`."""
    runs: list[str] = []
    pos, end = 0, len(pattern)
    while pos < end:
        if len(runs) == MAX_PATTERN_RUNS:
            return None
        m = _JODA_RUN.match(pattern, pos)
        if m is not None:
            runs.append(m.group() if m.group(1) else "'" + m.group())
            pos = m.end()
        elif pattern.startswith("''", pos):
            runs.append("''")
            pos += 2
        else:  # a quote opening text
            close = pos
            while True:
                close = pattern.find("'", close + 1)
                if close < 0 or not pattern.startswith("''", close):
                    break
                close += 1
            stop = end if close < 0 else close
            runs.append("'" + pattern[pos + 1 : stop].replace("''", "'"))
            pos = stop + 1
    return runs


_JODA_RUN = re.compile(r"([A-Za-z])\1*|[^A-Za-z']+")
_JODA_LETTERS = set("yMdHhmsSaZEGz")
"""The Joda letters :func:`joda_format` writes; Joda refuses unknown ones, and the others
it knows (``C Y x w e D K k``) are Undefined here rather than guessed."""


def joda_format(pattern: str, at: datetime, millis: int) -> str | None:
    """*at* (epoch *millis*, in its zone) written with a Joda-Time pattern; None for a
    pattern this module does not write."""
    plan = _joda_plan(pattern)
    if plan is None:
        return None
    return "".join(run[1:] if run[0] == "'" else _joda_field(run, at, millis) for run in plan)


@lru_cache(maxsize=128)
def _joda_plan(pattern: str) -> tuple[str, ...] | None:
    """The pattern's runs, read once for every message and element that uses it (a nested
    SELECT formats once per element: 65,000 of them in a 128 KiB payload); None for a
    letter :func:`joda_format` does not write."""
    runs = joda_runs(pattern)
    if runs is None:
        return None
    for run in runs:
        if run[0] != "'" and (run[0] not in _JODA_LETTERS or (run[0] == "z" and len(run) > 3)):
            return None  # the zone's long name is not one this formatter knows
    return tuple(runs)


def _joda_field(token: str, at: datetime, millis: int) -> str:
    width = len(token)
    kind = token[0]
    if kind == "y":
        return f"{at.year % 100:02d}" if width == 2 else f"{at.year:0{width}d}"
    if kind == "M":
        if width >= 4:
            return at.strftime("%B")
        return at.strftime("%b") if width == 3 else f"{at.month:0{width}d}"
    if kind == "E":
        return at.strftime("%A") if width >= 4 else at.strftime("%a")
    if kind == "a":
        return "AM" if at.hour < 12 else "PM"
    if kind == "G":
        return "AD"  # datetime has no years before 1
    if kind == "z":
        return (at.tzname() or "") if width < 4 else at.tzinfo.key  # type: ignore[union-attr]
    if kind == "Z":  # Joda: Z is +HHmm, ZZ +HH:mm (an offset's seconds cut off), ZZZ the id
        if width >= 3:
            return at.tzinfo.key  # type: ignore[union-attr]
        seconds = int(at.utcoffset().total_seconds())  # type: ignore[union-attr]
        sign = "-" if seconds < 0 else "+"
        hours, minutes = divmod(abs(seconds) // 60, 60)
        return f"{sign}{hours:02d}{':' if width == 2 else ''}{minutes:02d}"
    if kind == "S":
        return f"{millis % 1000:03d}"[:width].ljust(width, "0")
    value = {
        "d": at.day,
        "H": at.hour,
        "h": (at.hour % 12) or 12,
        "m": at.minute,
        "s": at.second,
    }[kind]
    return f"{value:0{width}d}"
