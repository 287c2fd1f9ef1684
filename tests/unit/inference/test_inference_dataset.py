"""L4E datasets, timestamps (§1.2 Choice), labels (§2) and the quality report (§1.6)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.inference.dataset import (
    label_mask,
    load_dataset,
    load_labels,
    parse_timestamps,
    read_csv,
)
from cloud.inference.quality import quality_report
from edge.errors import UserError

PATTERNS = {
    "yyyy-MM-dd-HH-mm-ss": "%Y-%m-%d-%H-%M-%S",
    "yyyy-MM-dd'T'HH:mm:ss": "%Y-%m-%dT%H:%M:%S",
    "yyyy-MM-dd HH:mm:ss": "%Y-%m-%d %H:%M:%S",
    "yyyy-MM-dd-HH:mm:ss": "%Y-%m-%d-%H:%M:%S",
    "yyyy-MM-dd'T'HH:mm": "%Y-%m-%dT%H:%M",
    "yyyy-MM-dd HH:mm": "%Y-%m-%d %H:%M",
    "yyyy-MM-dd-HH:mm": "%Y-%m-%d-%H:%M",
    "yyyy/MM/dd'T'HH:mm:ss": "%Y/%m/%dT%H:%M:%S",
    "yyyyMMdd'T'HH:mm": "%Y%m%dT%H:%M",
    "yyyyMMdd HH:mm": "%Y%m%d %H:%M",
    "yyyyMMddHHmm": "%Y%m%d%H%M",
    "yyyy/MM/dd HH:mm:ss": "%Y/%m/%d %H:%M:%S",
    "yyyyMMdd'T'HH:mm:ss": "%Y%m%dT%H:%M:%S",
    "yyyyMMdd HH:mm:ss": "%Y%m%d %H:%M:%S",
    "yyyyMMddHHmmss": "%Y%m%d%H%M%S",
    "yyyy/MM/dd'T'HH:mm": "%Y/%m/%dT%H:%M",
    "yyyy/MM/dd HH:mm": "%Y/%m/%d %H:%M",
    "yyyy MM dd'T'HH:mm:ss": "%Y %m %dT%H:%M:%S",
    "yyyy MM dd HH:mm:ss": "%Y %m %d %H:%M:%S",
    "yyyy MM dd'T'HH:mm": "%Y %m %dT%H:%M",
    "yyyy MM dd HH:mm": "%Y %m %d %H:%M",
}
instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1))


@settings(max_examples=60, deadline=None)
@given(instants, st.sampled_from(sorted(PATTERNS)))
def test_every_listed_pattern_parses_back(at: datetime, pattern: str) -> None:
    fmt = PATTERNS[pattern]
    text = at.strftime(fmt)
    expected = datetime.strptime(text, fmt).replace(tzinfo=UTC)
    assert parse_timestamps([text])[0] == pd.Timestamp(expected)


@settings(max_examples=40, deadline=None)
@given(instants, st.integers(0, 999_999), st.sampled_from(["", "Z", "+05:30", "-02:00"]))
def test_fractions_and_zones(at: datetime, micros: int, zone: str) -> None:
    at = at.replace(microsecond=micros)
    text = at.strftime("%Y-%m-%dT%H:%M:%S.%f") + zone
    offset = {"": 0, "Z": 0, "+05:30": 19800, "-02:00": -7200}[zone]
    expected = pd.Timestamp(at, tz="UTC") - pd.Timedelta(seconds=offset)
    assert parse_timestamps([text])[0] == expected


def test_us_style_and_garbage() -> None:
    parsed = parse_timestamps(["1/2/2020 0:00", "12/31/2020 23:59:59", "yesterday", ""])
    assert parsed[0] == pd.Timestamp("2020-01-02", tz="UTC")
    assert parsed[1] == pd.Timestamp("2020-12-31 23:59:59", tz="UTC")
    assert parsed[2:].isna().all()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_dataset_merges_files_per_component_and_counts_problems(tmp_path: Path) -> None:
    _write(
        tmp_path / "pump" / "a.csv",
        "Timestamp,flow\n2026-01-01 00:00:00,1\n2026-01-01 00:01:00,x\nbad,3\n"
        "2026-01-01 00:02:00,4\n2026-01-01 00:02:00,5\n",
    )
    _write(tmp_path / "pump" / "b.csv", "Timestamp,current\n20260101000100,7\n")
    _write(tmp_path / "gearbox_2026.csv", "Timestamp,oil\n2026-01-01T00:00:00.000000,9\n")
    dataset = load_dataset(tmp_path)
    assert dataset.components == {"gearbox": ["oil"], "pump": ["flow", "current"]}
    assert list(dataset.frame.columns) == ["gearbox\\oil", "pump\\flow", "pump\\current"]
    assert dataset.frame.loc["2026-01-01 00:02", "pump\\flow"] == 5  # later row wins
    report = quality_report(dataset)
    summary = report["DataQualitySummary"]
    assert summary["UnsupportedTimestamps"]["TotalNumberOfUnsupportedTimestamps"] == 1
    assert summary["DuplicateTimestamps"]["TotalNumberOfDuplicateTimestamps"] == 1
    assert summary["InvalidSensorData"]["TotalNumberOfInvalidValues"] == 1
    assert report["Grades"]["pump\\flow"] == "Low"  # far less than 14 days


def test_grades_flatline_drift_and_missing(tmp_path: Path) -> None:
    index = pd.date_range("2026-01-01", periods=30 * 24, freq="1h")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "good": rng.normal(0, 1, len(index)),
            "flat": np.full(len(index), 3.0),
            "drift": np.arange(len(index)) * 0.1 + rng.normal(0, 0.001, len(index)),
            "holey": np.where(np.arange(len(index)) % 3 == 0, rng.normal(0, 1, len(index)), np.nan),
            "gappy": np.where(
                np.arange(len(index)) % 50 == 7, np.nan, rng.normal(0, 1, len(index))
            ),
        },
        index=index,
    )
    (tmp_path / "m").mkdir()
    frame.to_csv(tmp_path / "m" / "m.csv", index_label="Timestamp")
    report = quality_report(load_dataset(tmp_path))
    stats = {s["SensorName"]: s for s in report["SensorStatistics"]}
    assert report["Grades"] == {
        "m\\good": "High",
        "m\\flat": "Medium",
        "m\\drift": "Medium",
        "m\\holey": "Low",
        "m\\gappy": "High",  # 2 % missing: a count, no POTENTIAL_ISSUE_DETECTED status
    }
    assert stats["flat"]["MonotonicValues"] == {
        "Status": "POTENTIAL_ISSUE_DETECTED",
        "Monotonicity": "STATIC",
    }
    assert stats["drift"]["MonotonicValues"]["Monotonicity"] == "INCREASING"
    assert stats["holey"]["MissingValues"]["Percentage"] > 50
    assert stats["gappy"]["MissingValues"]["Count"] == 15


def test_missing_dataset_and_bad_labels_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="dataset folder not found"):
        load_dataset(tmp_path / "nope")
    _write(tmp_path / "labels.csv", "2026-01-01 00:00:00,soon\n")
    with pytest.raises(UserError, match=r"labels.csv: line 1: .*'soon'"):
        load_labels(tmp_path / "labels.csv")


def test_labels_with_extension_columns_and_mask(tmp_path: Path) -> None:
    _write(
        tmp_path / "l" / "a.csv",
        "2026-01-01T01:00:00.000000,2026-01-01T02:00:00.000000,F1,pump-01,valve\n"
        "2026-01-01 05:00:00,2026-01-01 05:30:00\n",
    )
    labels = load_labels(tmp_path / "l")
    assert [lb.fault_code for lb in labels] == ["F1", ""]
    index = pd.date_range("2026-01-01", periods=8, freq="1h", tz="UTC")
    assert label_mask(index, labels).tolist() == [
        False,
        True,
        True,
        False,
        False,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Timestamp,flow,flow", r"x.csv: line 1, column 3: sensor name 'flow' repeats column 2"),
        ("Timestamp,,flow", r"x.csv: line 1, column 2: sensor name '': expected 1 to 200"),
        ("Timestamp,flow rate", r"column 2: sensor name 'flow rate': expected .* A-Z a-z"),
        ("Timestamp,flow/1", r"column 2: sensor name 'flow/1'"),
        (f"Timestamp,{'s' * 201}", r"column 2: sensor name 's{201}': expected 1 to 200"),
    ],
)
def test_a_header_the_schema_cannot_hold_is_named_not_renamed(header: str, expected: str) -> None:
    # Without the check the reader renames ('flow.1', 'Unnamed: 1') and files readings
    # under sensors that do not exist.
    with pytest.raises(UserError, match=expected):
        read_csv(f"{header}\n2026-01-01 00:00:00,1,2\n".encode(), "x.csv")


def test_header_names_with_every_allowed_character_are_kept() -> None:
    body = b"Timestamp, pump\\Sensor-1.a_b ,S2\n2026-01-01 00:00:00,1,2\n"
    assert list(read_csv(body, "x.csv").frame.columns) == ["pump\\Sensor-1.a_b", "S2"]


def test_infinite_readings_are_invalid_values_not_numbers() -> None:
    body = (
        b"Timestamp,a,b\n2026-01-01 00:00:00,inf,1\n2026-01-01 00:01:00,1e400,-Infinity\n"
        b"2026-01-01 00:02:00,3,4\n"
    )
    parsed = read_csv(body, "x.csv")
    assert parsed.invalid_values == {"a": 2, "b": 1}
    assert np.isnan(parsed.frame.to_numpy()[:2, 0]).all()
    assert parsed.frame.iloc[2].tolist() == [3.0, 4.0]


def test_a_ragged_row_is_one_line_naming_the_line() -> None:
    with pytest.raises(UserError) as raised:
        read_csv(b"Timestamp,a\n2026-01-01 00:00:00,1\n2026-01-01 00:01:00,1,2\n", "x.csv")
    assert "\n" not in str(raised.value)
    assert "x.csv: not a readable CSV" in str(raised.value) and "line 3" in str(raised.value)


@pytest.mark.parametrize(
    ("rows", "line"),
    [
        ("2026-01-01 00:00:00,1,\n2026-01-01 00:01:00,2,\n", 2),  # a trailing comma each row
        ("2026-01-01 00:00:00,1,2\n2026-01-01 00:01:00,3\n", 2),  # only the first row wider
        ("2026-01-01 00:00:00,1,2,3\r\n", 2),
        ("\n2026-01-01 00:00:00,1,2\n", 3),  # after a blank line
    ],
)
def test_a_first_row_wider_than_the_header_is_one_line_naming_it(rows: str, line: int) -> None:
    # GIVEN a first data row with more cells than the header: the CSV reader would take
    # its first cell as a row label and every timestamp from the sensor column, so the
    # whole file would read as unsupported timestamps and no rows
    with pytest.raises(UserError) as raised:
        read_csv(f"Timestamp,a\n{rows}".encode(), "x.csv")
    # THEN it is refused with one line naming the line and the counts
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"x.csv: line {line}:") and "header has 2" in message, message


def test_label_rows_each_have_their_own_width(tmp_path: Path) -> None:
    # GIVEN a plain two-column L4E row first, then rows with the optional columns (§2 Choice)
    path = tmp_path / "labels.csv"
    path.write_bytes(
        b"\xef\xbb\xbf2026-01-01T01:00:00.000000,2026-01-01T02:00:00.000000\r\n"
        b"\r\n"
        b'2026-01-02 00:00:00,2026-01-02 01:00:00,F7,pump-01,"valve, stuck"\r\n'
        b"2026-01-03 00:00:00,2026-01-03 01:00:00,F8\r\n"
    )
    labels = load_labels(path)
    assert [(lb.fault_code, lb.equipment, lb.notes) for lb in labels] == [
        ("", "", ""),
        ("F7", "pump-01", "valve, stuck"),
        ("F8", "", ""),
    ]
    assert labels[0].start == pd.Timestamp("2026-01-01 01:00", tz="UTC")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\n\n2026-01-01 00:00:00,later\n", r"labels.csv: line 3: start/end .*'later'"),
        (
            "2026-01-01 00:00:00,2026-01-01 01:00:00\n\na,b,c,d,e,f\n",
            r"labels.csv: line 3: expected 2 to 5 columns .* found 6",
        ),
        ("2026-01-01 00:00:00\n", r"line 1: expected 2 to 5 columns .* found 1"),
        ("2026-01-02 00:00:00,2026-01-01 00:00:00\n", r"line 1: end is before start"),
    ],
)
def test_a_bad_label_row_names_its_own_line(tmp_path: Path, text: str, expected: str) -> None:
    _write(tmp_path / "labels.csv", text)
    with pytest.raises(UserError, match=expected):
        load_labels(tmp_path / "labels.csv")


def test_a_label_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_bytes(b"2026-01-01 00:00:00,2026-01-02 00:00:00,F\xe9\n")
    with pytest.raises(UserError, match=r"labels.csv: not a readable label CSV \(not UTF-8"):
        load_labels(tmp_path / "labels.csv")


def test_flat_names_with_a_space_and_unusable_names_are_listed(tmp_path: Path) -> None:
    # GIVEN flat files delimited by '_' and ' ' (§1.1), and files no component can own
    _write(tmp_path / "pump_2026.csv", "Timestamp,flow\n2026-01-01 00:00:00,1\n")
    _write(tmp_path / "fan 2026-01.csv", "Timestamp,rpm\n2026-01-01 00:00:00,2\n")
    _write(tmp_path / "my pump" / "a.csv", "Timestamp,flow\n2026-01-01 00:00:00,3\n")
    _write(tmp_path / "#x.csv", "Timestamp,flow\n2026-01-01 00:00:00,4\n")
    dataset = load_dataset(tmp_path)
    assert dataset.components == {"fan": ["rpm"], "pump": ["flow"]}
    # THEN nothing is left out silently: the others are discarded files in the report
    files = quality_report(dataset)["IngestedFilesSummary"]
    assert sorted(Path(f["Key"]).name for f in files["DiscardedFiles"]) == ["#x.csv", "a.csv"]
    assert (files["TotalNumberOfFiles"], files["IngestedNumberOfFiles"]) == (4, 2)


SECONDS_PATTERNS = sorted(p for p in PATTERNS if p.endswith("ss"))


@settings(max_examples=60, deadline=None)
@given(
    instants,
    st.sampled_from(SECONDS_PATTERNS),
    st.integers(1, 9),
    st.integers(0, 999_999_999),
    st.sampled_from(["", "Z", "+05:30", "-00:00", "-11:45"]),
)
def test_fraction_of_1_to_9_digits_and_a_zone_on_every_pattern_with_seconds(
    at: datetime, pattern: str, digits: int, nanos: int, zone: str
) -> None:
    # §1.2 Choice, through the CSV reader (the first row decides its fast path)
    fraction = f"{nanos:09d}"[:digits]
    text = at.strftime(PATTERNS[pattern]) + "." + fraction + zone
    parsed = read_csv(f"Timestamp,a\n{text},1\n".encode(), "x.csv")
    sign, hours, minutes = (zone[0], zone[1:3], zone[4:6]) if len(zone) == 6 else ("+", 0, 0)
    offset = pd.Timedelta(hours=int(hours), minutes=int(minutes)) * (-1 if sign == "-" else 1)
    base = pd.Timestamp(datetime.strptime(at.strftime(PATTERNS[pattern]), PATTERNS[pattern]))
    expected = base.tz_localize("UTC") + pd.Timedelta(int(fraction.ljust(9, "0")), "ns") - offset
    assert parsed.frame.index[0] == expected
    assert parsed.unsupported_timestamps == 0


def test_a_component_folder_holds_the_csvs_of_its_subfolders(tmp_path: Path) -> None:
    # §1.1: the key pattern {prefix}/{component}/* matches every object under the folder
    _write(tmp_path / "pump" / "2026" / "01.csv", "Timestamp,flow\n2026-01-01 00:00:00,1\n")
    _write(tmp_path / "pump" / "2026" / "02.csv", "Timestamp,flow\n2026-02-01 00:00:00,2\n")
    dataset = load_dataset(tmp_path)
    assert dataset.frame["pump\\flow"].tolist() == [1.0, 2.0]


def test_a_dataset_with_no_readable_file_says_why(tmp_path: Path) -> None:
    _write(tmp_path / "pump" / "a.csv", "Timestamp,flow,flow\n2026-01-01 00:00:00,1,2\n")
    _write(tmp_path / "pump" / "b.csv", "")
    with pytest.raises(UserError) as raised:
        load_dataset(tmp_path)
    assert str(raised.value) == (
        f"{tmp_path}: no readable CSV: {tmp_path}/pump/a.csv: line 1, column 3: sensor name "
        "'flow' repeats column 2 (and 1 more discarded)"
    )


def test_rows_laid_out_unlike_the_first_are_read_by_the_listed_formats_only() -> None:
    # The first row takes the one-call ISO path; later rows in another listed layout are
    # read by theirs, and ISO 8601 forms the guide does not list stay unsupported.
    stamps = [
        "2026-01-01T00:00:00",
        "2026-01-01 00:01:00.5",
        "2026/01/01 00:02:00",
        "1/1/2026 0:03",
        "2026-01-02",  # a date alone
        "2026-01-01T00:04:00.1234567891",  # ten fraction digits
        "2026-01-01T05",  # an hour alone
    ]
    parsed = parse_timestamps(stamps)
    assert list(parsed[:4]) == [
        pd.Timestamp(t, tz="UTC")
        for t in (
            "2026-01-01 00:00",
            "2026-01-01 00:01:00.5",
            "2026-01-01 00:02",
            "2026-01-01 00:03",
        )
    ]
    assert parsed[4:].isna().all()


def test_iso_8601_forms_the_guide_does_not_list_stay_unsupported_after_an_iso_row() -> None:
    parsed = parse_timestamps(
        [
            "2026-01-01T00:00:00",
            "2026-01-01T00:01:00.5",
            "2026-01-02",  # a date alone
            "2026-01-01T00:04:00.1234567891",  # ten fraction digits
            "2026-01-01T05",  # an hour alone
        ]
    )
    assert list(parsed[:2]) == [
        pd.Timestamp("2026-01-01 00:00", tz="UTC"),
        pd.Timestamp("2026-01-01 00:01:00.5", tz="UTC"),
    ]
    assert parsed[2:].isna().all()


def test_a_historical_file_with_the_timestamp_not_first_is_discarded_with_its_reason(
    tmp_path: Path,
) -> None:
    # GIVEN a component whose second file has its timestamp in column 3 (§1.1: column 1)
    _write(tmp_path / "pump" / "a.csv", "Timestamp,flow,rpm\n2026-01-01 00:00:00,1,7\n")
    _write(tmp_path / "pump" / "b.csv", "flow,rpm,Timestamp\n2,8,2026-01-01 00:01:00\n")
    # WHEN the dataset is read, THEN that file is discarded, not read as a "Timestamp" sensor
    dataset = load_dataset(tmp_path)
    assert dataset.discarded == [str(tmp_path / "pump" / "b.csv")]
    assert dataset.components == {"pump": ["flow", "rpm"]}
    with pytest.raises(UserError) as raised:
        read_csv(tmp_path / "pump" / "b.csv", "b.csv")
    assert str(raised.value) == (
        "b.csv: line 2, column 3: 'Timestamp' holds the timestamps ('2026-01-01 00:01:00') "
        "and column 1 'flow' does not ('2'); expected the timestamp in the first column"
    )


def test_a_first_column_of_unsupported_times_is_still_counted_not_refused() -> None:
    # §1.2 Choice: rows whose timestamp cannot be parsed are dropped and counted
    parsed = read_csv(b"Timestamp,flow\n13/45/2026 0:00,1\n2026-01-01 00:01:00,2\n", "x.csv")
    assert (parsed.unsupported_timestamps, parsed.frame["flow"].tolist()) == (1, [2.0])


label_cells = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=12
).map(str.strip)


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            instants.map(lambda t: t.replace(second=0, microsecond=0)),
            st.integers(0, 90 * 24 * 60),
            st.sampled_from(sorted(PATTERNS)),
            st.lists(label_cells, max_size=3),
        ),
        min_size=1,
        max_size=8,
    ),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
)
def test_label_csv_rows_in_any_listed_format_read_back(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[datetime, int, str, list[str]]],
    newline: str,
    bom: bool,
) -> None:
    # GIVEN a label CSV (§2): no header, start,end in any §1.2 pattern, optionally our
    # fault_code,equipment,notes, with either line ending and perhaps a BOM
    lines, expected = [], []
    for start, minutes, pattern, extra in rows:
        end = start + pd.Timedelta(minutes=minutes)
        fmt = PATTERNS[pattern]
        cells = [start.strftime(fmt), end.strftime(fmt), *extra]
        text = io.StringIO()
        csv.writer(text, lineterminator="").writerow(cells)  # quotes a cell as CSV does
        lines.append(text.getvalue())
        expected.append(
            (pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC"), *[*extra, "", "", ""][:3])
        )
    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    path.write_bytes(("\ufeff" if bom else "").encode() + newline.join(lines).encode() + b"\n")
    # THEN every row reads back, sorted by start, as an ANOMALY label
    got = [(x.start, x.end, x.fault_code, x.equipment, x.notes) for x in load_labels(path)]
    assert got == sorted(expected, key=lambda row: row[0])


def test_files_in_a_dataset_that_are_not_csv_are_discarded_not_ignored(tmp_path: Path) -> None:
    # GIVEN a component folder holding its CSV, a CSV spelt .CSV, and files of another
    # format; and a flat file of another format beside the folders
    _write(tmp_path / "pump" / "a.csv", "Timestamp,flow\n2026-01-01 00:00:00,1\n")
    _write(tmp_path / "pump" / "b.CSV", "Timestamp,flow\n2026-01-01 00:01:00,2\n")
    _write(tmp_path / "pump" / "c.csv.gz", "not gzip")
    _write(tmp_path / "pump" / "d" / "notes.pdf", "%PDF")
    _write(tmp_path / "readme.txt", "hello")
    dataset = load_dataset(tmp_path)
    # THEN the CSVs are read, whatever the case of the extension, and every other file is a
    # discarded file in the report (L4E: "discarded because its format is invalid (for
    # example, a jpg or pdf) or not readable"), so none is left out silently
    assert dataset.frame["pump\\flow"].tolist() == [1.0, 2.0]
    files = quality_report(dataset)["IngestedFilesSummary"]
    discarded = sorted(Path(f["Key"]).name for f in files["DiscardedFiles"])
    assert discarded == ["c.csv.gz", "notes.pdf", "readme.txt"]
    assert (files["TotalNumberOfFiles"], files["IngestedNumberOfFiles"]) == (5, 2)


def test_a_label_folder_reads_its_csvs_whatever_the_case_of_the_extension(
    tmp_path: Path,
) -> None:
    # GIVEN a label prefix (§2: all CSVs under it are read) holding a .csv and a .CSV
    _write(tmp_path / "labels" / "a.csv", "2020-02-01 00:00:00,2020-02-02 00:00:00\n")
    _write(tmp_path / "labels" / "old" / "B.CSV", "2020-03-01 00:00:00,2020-03-02 00:00:00\n")
    # THEN both are labels
    starts = [str(label.start.date()) for label in load_labels(tmp_path / "labels")]
    assert starts == ["2020-02-01", "2020-03-01"]


@pytest.mark.parametrize(
    ("delimiter", "gear"),
    [
        ("-", None),  # gear_2026.csv does not match {component_name}-*: discarded
        (".", "gear_2026"),  # every flat CSV matches {component_name}.* at its extension
    ],
)
def test_flat_names_split_at_a_hyphen_or_dot_when_that_is_the_datasets_delimiter(
    tmp_path: Path, delimiter: str, gear: str | None
) -> None:
    # GIVEN flat files named {component_name}[DELIMITER]* with L4E's '-' or '.' (§1.1)
    for name, text in (
        (f"pump{delimiter}2026{delimiter}01.csv", "Timestamp,flow\n2026-01-01 00:00:00,1\n"),
        (f"pump{delimiter}2026{delimiter}02.csv", "Timestamp,flow\n2026-02-01 00:00:00,2\n"),
        (f"fan{delimiter}a.csv", "Timestamp,rpm\n2026-01-01 00:00:00,3\n"),
        ("gear_2026.csv", "Timestamp,temp\n2026-01-01 00:00:00,4\n"),
    ):
        _write(tmp_path / name, text)
    # WHEN read with that delimiter THEN each file is its component's, as L4E's ingestion
    dataset = load_dataset(tmp_path, delimiter=delimiter)
    expected = {"fan": ["rpm"], "pump": ["flow"]}
    if gear is not None:
        expected[gear] = ["temp"]
    assert dataset.components == expected
    assert len(dataset.files["pump"]) == 2
    # and a flat file the pattern does not match is listed as discarded, not left out
    assert [Path(p).name for p in dataset.discarded] == ([] if gear else ["gear_2026.csv"])
    # without the delimiter the default rule (the first '_' or space) reads them otherwise
    assert "pump" not in load_dataset(tmp_path).components
