"""Zone names as the two time functions resolve them, in summer and in winter.

``time_to_epoch`` reads a zone with Java's ``DateTimeFormatter`` (AWS's functions page:
"JDK11 Time Formats"). ``VV`` (and ``zzzz``) take a ``ZoneId``: a region id, where
``CET``, ``EET``, ``MET`` and ``WET`` are regions with summer time and ``EST``, ``MST``,
``HST`` are no ids at all (``ZoneId.of`` needs ``SHORT_IDS`` for them). ``z`` reads a zone's
short name as the formatter's locale names it, and takes its region: ``PST`` is
America/Los_Angeles and ``EST`` America/New_York, summer time included.

``parse_time``'s zone argument is a Joda-Time zone id (AWS re:Post answer: "That argument
should be Joda-time", joda-time.sourceforge.net/timezones.html): ``EST`` is the fixed
-05:00 zone, ``CET`` a region with summer time, and ``PST`` no id (Undefined).

Expected values measured with OpenJDK 17.0.15 (``ZonedDateTime.parse`` with
``DateTimeFormatter.ofPattern(p, Locale.US)``) and Joda-Time 2.1
(``DateTimeFormat.forPattern(p).withZone(DateTimeZone.forID(z))``)."""

from __future__ import annotations

import json

import pytest

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse

UNDEFINED = "<undefined>"


def run(select: str, payload: dict[str, object]) -> object:
    out = evaluate(parse(f"SELECT {select} AS x FROM '#'"), Message("t", json.dumps(payload)))
    assert out is not None
    return json.loads(out.to_bytes()).get("x", UNDEFINED)


def epoch(text: str, pattern: str) -> object:
    return run("time_to_epoch(t, p)", {"t": text, "p": pattern})


SUMMER, WINTER = "2024-07-01 12:00", "2024-01-01 12:00"


@pytest.mark.parametrize(
    ("zone", "summer", "winter"),
    [
        ("PST", 1719860400000, 1704139200000),  # America/Los_Angeles: -07:00, -08:00
        ("PDT", 1719860400000, 1704139200000),  # the region, whichever name was written
        ("EST", 1719849600000, 1704128400000),  # America/New_York: -04:00, -05:00
        ("MST", 1719856800000, 1704135600000),  # America/Denver: -06:00, -07:00
        ("CST", 1719853200000, 1704132000000),  # America/Chicago: -05:00, -06:00
        ("HST", 1719871200000, 1704146400000),  # Pacific/Honolulu: -10:00
        ("JST", 1719802800000, 1704078000000),  # Asia/Tokyo
        ("AEST", 1719799200000, 1704070800000),  # Australia/Sydney: +10:00, +11:00
        ("CET", 1719828000000, 1704106800000),  # Europe/Paris: +02:00, +01:00
        ("America/Los_Angeles", 1719860400000, 1704139200000),
    ],
)
def test_z_reads_a_short_name_as_its_region(zone: str, summer: int, winter: int) -> None:
    pattern = "yyyy-MM-dd HH:mm z"
    assert (epoch(f"{SUMMER} {zone}", pattern), epoch(f"{WINTER} {zone}", pattern)) == (
        summer,
        winter,
    )


@pytest.mark.parametrize(
    ("zone", "summer", "winter"),
    [
        ("CET", 1719828000000, 1704106800000),  # +02:00 in summer, +01:00 in winter
        ("EET", 1719824400000, 1704103200000),
        ("MET", 1719828000000, 1704106800000),
        ("WET", 1719831600000, 1704110400000),
        ("EST5EDT", 1719849600000, 1704128400000),
        ("EST", UNDEFINED, UNDEFINED),  # no ZoneId: Java refuses the text
        ("MST", UNDEFINED, UNDEFINED),
        ("HST", UNDEFINED, UNDEFINED),
        ("PST", UNDEFINED, UNDEFINED),
    ],
)
@pytest.mark.parametrize("letters", ["VV", "zzzz"])
def test_vv_reads_a_zone_id_as_java_has_it(
    zone: str, summer: object, winter: object, letters: str
) -> None:
    pattern = f"yyyy-MM-dd HH:mm {letters}"
    assert (epoch(f"{SUMMER} {zone}", pattern), epoch(f"{WINTER} {zone}", pattern)) == (
        summer,
        winter,
    )


@pytest.mark.parametrize(
    ("zone", "summer", "winter"),
    [
        ("EST", "2024-07-01 07:00 -0500", "2024-01-01 07:00 -0500"),  # fixed in Joda
        ("MST", "2024-07-01 05:00 -0700", "2024-01-01 05:00 -0700"),
        ("HST", "2024-07-01 02:00 -1000", "2024-01-01 02:00 -1000"),
        ("CET", "2024-07-01 14:00 +0200", "2024-01-01 13:00 +0100"),
        ("WET", "2024-07-01 13:00 +0100", "2024-01-01 12:00 +0000"),
        ("EST5EDT", "2024-07-01 08:00 -0400", "2024-01-01 07:00 -0500"),
        ("PST", UNDEFINED, UNDEFINED),  # Joda: "The datetime zone id 'PST' is not recognised"
        ("CST", UNDEFINED, UNDEFINED),
    ],
)
def test_parse_time_takes_a_joda_zone_id(zone: str, summer: object, winter: object) -> None:
    def at(ms: int) -> object:
        return run("parse_time('yyyy-MM-dd HH:mm Z', ms, z)", {"ms": ms, "z": zone})

    assert (at(1719835200000), at(1704110400000)) == (summer, winter)
