"""``time_to_epoch`` resolves the date it read as Java's ``DateTimeFormatter.ofPattern``
does, with its default SMART resolver: a day-of-month past the month's end (up to 31) is
the month's last day, and hour 24 ('HH' = 24 with nothing after it on the clock) is
midnight of the next day; a day 32, a month 13 or 24:01 stay Undefined.

Source: https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html
(``time_to_epoch``: "JDK11 Time Formats", the DateTimeFormatter patterns; its
``ofPattern`` formatters resolve SMART, and SMART's ISO chronology clamps the day-of-month
to the month's length and takes 24:00 as the end of the day).
"""

from __future__ import annotations

import calendar
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse


def epoch(text: str, pattern: str) -> object:
    out = evaluate(
        parse("SELECT time_to_epoch(t, p) AS x FROM '#'"),
        Message("t", json.dumps({"t": text, "p": pattern})),
    )
    assert out is not None
    return json.loads(out.to_bytes()).get("x", "<undefined>")


def ms(*fields: int) -> int:
    return int(datetime(*fields, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "pattern", "want"),
    [
        ("2024-02-30 10:00", "yyyy-MM-dd HH:mm", ms(2024, 2, 29, 10)),
        ("2023-02-29 10:00", "yyyy-MM-dd HH:mm", ms(2023, 2, 28, 10)),
        ("2024-04-31", "yyyy-MM-dd", ms(2024, 4, 30)),
        ("2024-02-30 10:00 AM", "yyyy-MM-dd hh:mm a", ms(2024, 2, 29, 10)),
        ("2024-02-29 24:00", "yyyy-MM-dd HH:mm", ms(2024, 3, 1)),
        ("2024-12-31 24:00", "yyyy-MM-dd HH:mm", ms(2025, 1, 1)),
        ("2024-02-29 24:00:00.000", "yyyy-MM-dd HH:mm:ss.SSS", ms(2024, 3, 1)),
        ("2024-01-05 24", "yyyy-MM-dd HH", ms(2024, 1, 6)),
        ("2024-01-05 24 00", "yyyy-MM-dd kk mm", ms(2024, 1, 5)),  # clock hour 24 is 0
        ("2024-04-32", "yyyy-MM-dd", "<undefined>"),
        ("2024-13-05", "yyyy-MM-dd", "<undefined>"),
        ("2024-02-29 24:01", "yyyy-MM-dd HH:mm", "<undefined>"),
        ("2024-02-29 25:00", "yyyy-MM-dd HH:mm", "<undefined>"),
    ],
)
def test_dates_resolve_as_javas_smart_resolver(text: str, pattern: str, want: object) -> None:
    assert epoch(text, pattern) == want


@settings(max_examples=60, deadline=None)
@given(st.integers(1970, 2100), st.integers(1, 12), st.integers(1, 31))
def test_a_day_past_the_month_is_its_last_day(year: int, month: int, day: int) -> None:
    last = calendar.monthrange(year, month)[1]
    text = f"{year:04d}-{month:02d}-{day:02d}"
    assert epoch(text, "yyyy-MM-dd") == ms(year, month, min(day, last))


@pytest.mark.parametrize("zone", ["UTC", "GMT", "UT", "Z", "UTC+00:00"])
@pytest.mark.parametrize("letters", ["VV", "z"])
def test_a_zone_named_utc_gmt_or_ut_alone_is_utc(zone: str, letters: str) -> None:
    """Java's ZoneId.of reads 'UTC', 'GMT' and 'UT' alone as zones of offset zero; JDK 17's
    'z' reads 'Z' too (ZonedDateTime.parse of '2006-02-24 09:46:52 Z' is 1140774412000)."""
    text = f"2006-02-24 09:46:52 {zone}"
    assert epoch(text, f"yyyy-MM-dd HH:mm:ss {letters}") == ms(2006, 2, 24, 9, 46, 52)


@pytest.mark.parametrize(
    ("text", "pattern", "want"),
    [
        ("Thu, 30 Jun 2016 13:28:26 +0000", "EEE, dd MMM yyyy HH:mm:ss Z", 1467293306000),
        ("Tue, 30 Jun 2016 13:28:26 +0000", "EEE, dd MMM yyyy HH:mm:ss Z", "<undefined>"),
        ("Thursday 2016-06-30", "EEEE yyyy-MM-dd", ms(2016, 6, 30)),
        ("Friday 2016-06-30", "EEEE yyyy-MM-dd", "<undefined>"),
        ("Thu 2016-06-31", "EEE yyyy-MM-dd", ms(2016, 6, 30)),  # the day the date resolves to
        ("Fri 2016-06-31", "EEE yyyy-MM-dd", "<undefined>"),
    ],
)
def test_a_day_of_week_must_be_the_dates(text: str, pattern: str, want: object) -> None:
    """Java's resolver checks a day-of-week it read against the date it resolved."""
    assert epoch(text, pattern) == want
