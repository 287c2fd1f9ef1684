"""Input file names round-trip for every format, delimiter and offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.l4e.naming import (
    DELIMITERS,
    KEY_PATTERN_DELIMITERS,
    TIMESTAMP_FORMATS,
    InputNaming,
    flat_component,
    format_row_timestamp,
    window_end,
)
from edge.errors import ConfigError

components = st.from_regex(r"[0-9a-zA-Z._\-]{1,40}", fullmatch=True)
offsets = st.builds(
    lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
    st.sampled_from("+-"),
    st.integers(0, 14),
    st.sampled_from([0, 15, 30, 45]),
)
times = st.datetimes(
    min_value=datetime(2001, 9, 10), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@given(components, times, st.sampled_from(DELIMITERS), st.sampled_from(TIMESTAMP_FORMATS), offsets)
def test_name_round_trips(
    component: str, at: datetime, delimiter: str, fmt: str, offset: str
) -> None:
    naming = InputNaming(delimiter=delimiter, timestamp_format=fmt, tz_offset=offset)
    key = naming.format(component, at, prefix="input/")
    parsed = naming.parse(key, prefix="input/")
    assert parsed is not None
    name, when = parsed
    assert when == at
    assert naming.format(name, when, prefix="input/") == key
    if delimiter:
        assert name == component


def test_aws_examples() -> None:
    end = datetime(2022, 5, 13, 12, 15, tzinfo=UTC)
    assert InputNaming().format("pump", end) == "pump_20220513121500.csv"
    assert (
        InputNaming(timestamp_format="yyyy-MM-dd-HH-mm-ss").format("pump", end)
        == "pump_2022-05-13-12-15-00.csv"
    )
    assert InputNaming(timestamp_format="EPOCH").format("pump", end) == "pump_1652444100.csv"
    # The time zone offset applies to the name only: 13:00 UTC at +05:30 is 18:30 local.
    naming = InputNaming(tz_offset="+05:30")
    assert (
        naming.format("pump", datetime(2021, 4, 5, 13, 0, tzinfo=UTC)) == "pump_20210405183000.csv"
    )


@pytest.mark.parametrize("delimiter", [" ", "\t", "\n", "\x0b", "\f", "\r", "-", "_", ""])
def test_every_delimiter_aws_pattern_allows_is_accepted(delimiter: str) -> None:
    # ComponentTimestampDelimiter pattern ^(\-|\_|\s)?$ (InferenceInputNameConfiguration)
    end = datetime(2022, 5, 13, 12, 15, tzinfo=UTC)
    name = InputNaming(delimiter=delimiter).format("pump", end)
    assert name == f"pump{delimiter}20220513121500.csv"


@pytest.mark.parametrize("delimiter", ["__", ".", "/", "\u00a0", "\u2003", "x"])
def test_a_delimiter_outside_aws_pattern_is_refused(delimiter: str) -> None:
    with pytest.raises(ConfigError, match="ComponentTimestampDelimiter"):
        InputNaming(delimiter=delimiter)


def test_an_epoch_before_2001_without_a_delimiter_is_named_so_it_parses_back() -> None:
    """Found by the round-trip property below: epoch 0 was named ``00.csv`` for component
    ``0``, which parse (exactly 10 digits without a delimiter) does not read."""
    naming = InputNaming(delimiter="", timestamp_format="EPOCH")
    at = datetime(1970, 1, 1, tzinfo=UTC)
    assert naming.format("0", at, "input/") == "input/00000000000.csv"
    assert naming.parse("input/00000000000.csv", "input/") == ("0", at)


def test_parse_rejects_other_files() -> None:
    naming = InputNaming()
    assert naming.parse("input/pump_2022.csv", "input/") is None
    assert naming.parse("input/sub/pump_20220513121500.csv", "input/") is None
    assert naming.parse("input/pump_20220513121500.json", "input/") is None


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("yyyyMMddHHmmss", "pump_20221345000000.csv"),  # month 13
        ("yyyyMMddHHmmss", "pump_20220230000000.csv"),  # 30 February
        ("yyyyMMddHHmmss", "pump_20220513246000.csv"),  # 24:60
        ("yyyy-MM-dd-HH-mm-ss", "pump_2022-00-13-12-15-00.csv"),
        ("EPOCH", "pump_999999999999.csv"),  # after year 9999
    ],
)
def test_a_name_whose_timestamp_is_no_instant_is_not_an_input_file(fmt: str, name: str) -> None:
    assert InputNaming(timestamp_format=fmt).parse(name) is None


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"delimiter": "/"}, "ComponentTimestampDelimiter"),
        ({"timestamp_format": "yyyy"}, "TimestampFormat"),
        ({"tz_offset": "0530"}, "InputTimeZoneOffset"),
    ],
)
def test_bad_configuration_is_named(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        InputNaming(**kwargs)


def test_window_end_and_row_format() -> None:
    assert window_end(600, 300) == 600
    assert window_end(601, 300) == 900
    at = datetime(2022, 5, 13, 12, 11, tzinfo=UTC) + timedelta(microseconds=5)
    assert format_row_timestamp(at) == "2022-05-13T12:11:00.000005"


SHAPED = {
    "yyyyMMddHHmmss": r"\d{14}",
    "yyyy-MM-dd-HH-mm-ss": r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}",
    "EPOCH": r"\d{1,12}",
}
"""Names shaped like each format, with any digits: most are no real instant."""


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(DELIMITERS), st.sampled_from(TIMESTAMP_FORMATS), st.data())
def test_any_key_parses_to_an_input_file_or_none_never_an_error(
    delimiter: str, fmt: str, data: st.DataObject
) -> None:
    naming = InputNaming(delimiter=delimiter, timestamp_format=fmt)
    shaped = data.draw(st.from_regex(SHAPED[fmt], fullmatch=True))
    noise = data.draw(st.text(alphabet=st.sampled_from(list("pump_- 019./\\é")), max_size=12))
    for name in (f"pump{delimiter}{shaped}", noise, f"{noise}{delimiter}{shaped}"):
        parsed = naming.parse(f"input/{name}.csv", "input/")
        if parsed is not None:
            component, at = parsed
            assert at.tzinfo is not None
            assert naming.parse(naming.format(component, at, "input/"), "input/") == parsed


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("EPOCH", "pump_\uff11\uff16\uff15\uff12\uff14\uff14\uff14\uff11\uff10\uff10.csv"),
        ("EPOCH", "pump_\u0661\u0666\u0665\u0662\u0664\u0664\u0664\u0661\u0660\u0660.csv"),
        (
            "yyyyMMddHHmmss",
            "pump_\u0662\u0660\u0662\u0662\u0660\u0665\u0661\u0663\u0661\u0662\u0661\u0665\u0660\u0660.csv",
        ),
    ],
)
def test_a_timestamp_in_other_scripts_digits_is_not_an_input_file(fmt: str, name: str) -> None:
    """The name's digits are ASCII 0-9 (the timestamp a scheduler writes); fullwidth or
    Arabic-Indic digits are another file, not a second name for the same window."""
    assert InputNaming(timestamp_format=fmt).parse(name) is None


@pytest.mark.parametrize("offset", ["+\u0660\u0665:\u0663\u0660", "+\uff10\uff15:30"])
def test_an_offset_in_other_scripts_digits_is_refused(offset: str) -> None:
    # InputTimeZoneOffset pattern ^(\+|\-)[0-9]{2}\:[0-9]{2}$
    with pytest.raises(ConfigError, match="InputTimeZoneOffset"):
        InputNaming(tz_offset=offset)


@pytest.mark.parametrize("offset", [None, 530, b"+05:30", ["+05:30"]])
def test_an_offset_that_is_no_string_is_refused_by_name(offset: object) -> None:
    with pytest.raises(ConfigError, match="InputTimeZoneOffset"):
        InputNaming(tz_offset=offset)  # type: ignore[arg-type]


@pytest.mark.parametrize("offset", ["+24:00", "-24:00", "+05:60", "+99:99"])
def test_an_offset_past_a_day_or_an_hour_names_the_allowed_range(offset: str) -> None:
    with pytest.raises(ConfigError, match=r"InputTimeZoneOffset .*00 to 23.*00 to 59"):
        InputNaming(tz_offset=offset)


@pytest.mark.parametrize(
    "at",
    [
        datetime(2286, 11, 20, 17, 46, 40, tzinfo=UTC),  # epoch 10**10: 11 digits
        datetime(2300, 1, 1, tzinfo=UTC),
    ],
)
def test_an_epoch_past_ten_digits_without_a_delimiter_is_refused_not_misnamed(
    at: datetime,
) -> None:
    """``pump`` at epoch 10413792000 was named ``pump10413792000.csv``, which parses back
    as component ``pump1`` at 1983: another component, another window."""
    naming = InputNaming(delimiter="", timestamp_format="EPOCH")
    with pytest.raises(ConfigError, match="EPOCH"):
        naming.format("pump", at)


def test_an_epoch_before_1970_is_refused_not_named_unreadably() -> None:
    """It was named ``pump_-315619200.csv``, a name parse never reads back."""
    with pytest.raises(ConfigError, match="EPOCH"):
        InputNaming(timestamp_format="EPOCH").format("pump", datetime(1960, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("fmt", ["yyyyMMddHHmmss", "yyyy-MM-dd-HH-mm-ss"])
def test_a_year_before_1000_is_named_with_four_digits_and_parses_back(fmt: str) -> None:
    naming = InputNaming(timestamp_format=fmt)
    at = datetime(999, 1, 1, 12, tzinfo=UTC)
    assert naming.parse(naming.format("pump", at)) == ("pump", at)


@pytest.mark.parametrize(
    ("offset", "at"),
    [
        ("+14:00", datetime(9999, 12, 31, 23, tzinfo=UTC)),
        ("-12:00", datetime(1, 1, 1, 1, tzinfo=UTC)),
    ],
)
def test_an_instant_whose_local_time_is_past_the_calendar_is_refused_by_name(
    offset: str, at: datetime
) -> None:
    with pytest.raises(ConfigError, match="InputTimeZoneOffset"):
        InputNaming(tz_offset=offset).format("pump", at)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DELIMITERS), st.sampled_from(TIMESTAMP_FORMATS), offsets, st.text())
def test_parse_of_any_text_is_none_or_an_input_file_that_names_back(
    delimiter: str, fmt: str, offset: str, name: str
) -> None:
    naming = InputNaming(delimiter=delimiter, timestamp_format=fmt, tz_offset=offset)
    for key in (name, f"input/{name}", f"input/{name}.csv"):
        parsed = naming.parse(key, "input/")
        if parsed is not None:
            component, at = parsed
            assert at.tzinfo is not None
            assert naming.parse(naming.format(component, at, "input/"), "input/") == parsed


far_times = st.datetimes(
    min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@settings(max_examples=300, deadline=None)
@given(
    components, far_times, st.sampled_from(DELIMITERS), st.sampled_from(TIMESTAMP_FORMATS), offsets
)
def test_any_instant_is_named_so_it_parses_back_or_refused(
    component: str, at: datetime, delimiter: str, fmt: str, offset: str
) -> None:
    """Years 1000 to 9999: a name is never written that reads back as another instant or,
    without a delimiter, as another component's."""
    naming = InputNaming(delimiter=delimiter, timestamp_format=fmt, tz_offset=offset)
    try:
        key = naming.format(component, at, prefix="input/")
    except ConfigError as exc:
        assert fmt == "EPOCH"
        assert "EPOCH" in str(exc)
        return
    parsed = naming.parse(key, prefix="input/")
    assert parsed is not None
    assert parsed[1] == at
    assert naming.format(parsed[0], parsed[1], prefix="input/") == key
    if delimiter or fmt != "EPOCH":
        assert parsed[0] == component


# -- historical (training) files flat under the prefix: l4e-contracts §1.1 -----------------
# IngestionS3InputConfiguration.KeyPattern: {prefix}/{component_name}/*, or flat
# {prefix}/{component_name}_* | {prefix}/{component_name}[DELIMITER]* with DELIMITER a space,
# dot, underscore or hyphen, one chosen per dataset.


def test_the_key_pattern_delimiters_are_l4es() -> None:
    assert sorted(KEY_PATTERN_DELIMITERS) == sorted([" ", ".", "_", "-"])


@given(
    st.sampled_from(KEY_PATTERN_DELIMITERS).flatmap(
        lambda d: st.tuples(
            st.just(d),
            components.filter(lambda c, d=d: d not in c),
            st.from_regex(r"[0-9a-zA-Z._\- ]{0,30}", fullmatch=True),
        )
    )
)
def test_a_flat_historical_name_is_its_component_up_to_the_chosen_delimiter(
    case: tuple[str, str, str],
) -> None:
    delimiter, component, rest = case
    assert flat_component(f"{component}{delimiter}{rest}.csv", delimiter) == component


@pytest.mark.parametrize(
    ("name", "delimiter", "component"),
    [
        ("centrifugal-pump-2023-01.csv", "-", "centrifugal"),  # the first one: as chosen
        ("pump-2023.csv", "-", "pump"),
        ("pump.2023.csv", ".", "pump"),
        ("pump.csv", ".", "pump"),  # {component_name}.* matches the extension's dot too
        ("pump 2023.csv", " ", "pump"),
        ("pump_a_2023.csv", "_", "pump"),
        ("pump2023.csv", "-", None),  # the pattern does not match: no component
        ("-2023.csv", "-", None),  # an empty component
        ("pump#1-2023.csv", "-", None),  # no component name (§1.1 pattern)
        # no delimiter chosen: plantwatch's default, the first '_' or space of the stem
        ("pump-01_2023.csv", None, "pump-01"),
        ("fan 2026-01.csv", None, "fan"),
        ("pump.2023.csv", None, "pump.2023"),
        ("pump.csv", None, "pump"),
        ("pump.CSV", None, "pump"),
    ],
)
def test_flat_component_examples(name: str, delimiter: str | None, component: str | None) -> None:
    assert flat_component(name, delimiter) == component


@pytest.mark.parametrize("delimiter", ["", "/", "__", "\t", ","])
def test_a_delimiter_outside_the_key_pattern_is_refused(delimiter: str) -> None:
    with pytest.raises(ConfigError, match="KeyPattern"):
        flat_component("pump_2023.csv", delimiter)
