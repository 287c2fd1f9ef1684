"""l4e-contracts, section by section, from the spec's own examples and rules (and AWS's
pages where the spec cites them): what a user's existing bucket, label files, scheduler
settings and results readers carry over unchanged. Each table row is one example of the
contract; the data are written here, not read from the spec."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cloud.inference.dataset import label_mask, load_dataset, load_labels, parse_timestamps
from cloud.inference.model import ScoreResult
from cloud.inference.offcondition import OffCondition
from cloud.inference.quality import quality_report
from cloud.inference.results import encode_result_rows, encode_results, result_lines, results_key
from cloud.l4e.naming import InputNaming
from edge.errors import ConfigError, UserError

# -- §1.2 timestamp column formats: the guide's exact list, plus the Choice's additions ----

LISTED = [
    ("yyyy-MM-dd-HH-mm-ss", "2023-01-02-03-04-05", "2023-01-02T03:04:05"),
    ("yyyy-MM-dd'T'HH:mm:ss", "2023-01-02T03:04:05", "2023-01-02T03:04:05"),
    ("yyyy-MM-dd HH:mm:ss", "2023-01-02 03:04:05", "2023-01-02T03:04:05"),
    ("yyyy-MM-dd-HH:mm:ss", "2023-01-02-03:04:05", "2023-01-02T03:04:05"),
    ("yyyy-MM-dd'T'HH:mm", "2023-01-02T03:04", "2023-01-02T03:04:00"),
    ("yyyy-MM-dd HH:mm", "2023-01-02 03:04", "2023-01-02T03:04:00"),
    ("yyyy-MM-dd-HH:mm", "2023-01-02-03:04", "2023-01-02T03:04:00"),
    ("yyyy/MM/dd'T'HH:mm:ss", "2023/01/02T03:04:05", "2023-01-02T03:04:05"),
    ("yyyyMMdd'T'HH:mm", "20230102T03:04", "2023-01-02T03:04:00"),
    ("yyyyMMdd HH:mm", "20230102 03:04", "2023-01-02T03:04:00"),
    ("yyyyMMddHHmm", "202301020304", "2023-01-02T03:04:00"),
    ("yyyy/MM/dd HH:mm:ss", "2023/01/02 03:04:05", "2023-01-02T03:04:05"),
    ("yyyyMMdd'T'HH:mm:ss", "20230102T03:04:05", "2023-01-02T03:04:05"),
    ("yyyyMMdd HH:mm:ss", "20230102 03:04:05", "2023-01-02T03:04:05"),
    ("yyyyMMddHHmmss", "20230102030405", "2023-01-02T03:04:05"),
    ("yyyy/MM/dd'T'HH:mm", "2023/01/02T03:04", "2023-01-02T03:04:00"),
    ("yyyy/MM/dd HH:mm", "2023/01/02 03:04", "2023-01-02T03:04:00"),
    ("yyyy MM dd'T'HH:mm:ss", "2023 01 02T03:04:05", "2023-01-02T03:04:05"),
    ("yyyy MM dd HH:mm:ss", "2023 01 02 03:04:05", "2023-01-02T03:04:05"),
    ("yyyy MM dd'T'HH:mm", "2023 01 02T03:04", "2023-01-02T03:04:00"),
    ("yyyy MM dd HH:mm", "2023 01 02 03:04", "2023-01-02T03:04:00"),
    # the Choice: the guide's own example, AWS samples' fractions, a zone suffix
    ("M/d/yyyy H:mm (guide example)", "1/1/2020 0:00", "2020-01-01T00:00:00"),
    ("AWS samples", "2022-05-13T10:05:00.000000", "2022-05-13T10:05:00"),
    ("fraction, 9 digits", "2022-05-13T10:05:00.123456789", "2022-05-13T10:05:00.123456789"),
    ("Z suffix", "2022-05-13T10:05:00Z", "2022-05-13T10:05:00"),
    ("+HH:MM suffix", "2022-05-13T10:05:00+05:30", "2022-05-13T04:35:00"),
    ("-HH:MM suffix", "2022-05-13T10:05:00-02:00", "2022-05-13T12:05:00"),
]


@pytest.mark.parametrize(("layout", "text", "utc"), LISTED, ids=[row[0] for row in LISTED])
def test_every_listed_timestamp_format_reads_as_that_instant_in_utc(
    layout: str, text: str, utc: str
) -> None:
    assert parse_timestamps([text])[0] == pd.Timestamp(utc, tz="UTC")


# -- §1.6 data-quality categories -----------------------------------------------------


def test_a_blank_cell_is_missing_even_when_an_invalid_cell_was_in_a_duplicate_row(
    tmp_path: Path,
) -> None:
    """The 00:02 row is given twice; the first copy's 'abc' is an invalid value and is
    dropped with its duplicate. The blank at 00:01 is still a missing value: the counts
    of missing cells must not be taken from those of invalid cells in rows that are gone."""
    (tmp_path / "pump").mkdir()
    (tmp_path / "pump" / "pump.csv").write_text(
        "Timestamp,motor_current,flow\n"
        "2023-01-01 00:00:00,1,10\n"
        "2023-01-01 00:01:00,,11\n"
        "2023-01-01 00:02:00,abc,12\n"
        "2023-01-01 00:02:00,2,13\n"
        "2023-01-01 00:03:00,3,14\n"
    )
    report = quality_report(load_dataset(tmp_path))
    stats = {s["SensorName"]: s for s in report["SensorStatistics"]}
    assert stats["motor_current"]["MissingValues"]["Count"] == 1
    summary = report["DataQualitySummary"]
    assert summary["MissingSensorData"] == {
        "AffectedSensorCount": 1,
        "TotalNumberOfMissingValues": 1,
    }
    assert summary["DuplicateTimestamps"]["TotalNumberOfDuplicateTimestamps"] == 1


def test_an_invalid_cell_overridden_by_a_later_file_leaves_no_missing_value(
    tmp_path: Path,
) -> None:
    """Several files of one component are merged, later files winning (§1.1 Choice): a
    reading the later file gives for a time whose earlier cell was invalid is a reading,
    and the time's earlier blank is no missing value either."""
    (tmp_path / "pump").mkdir()
    (tmp_path / "pump" / "a.csv").write_text(
        "Timestamp,flow\n2023-01-01 00:00:00,x\n2023-01-01 00:01:00,\n2023-01-01 00:02:00,3\n"
    )
    (tmp_path / "pump" / "b.csv").write_text(
        "Timestamp,flow\n2023-01-01 00:00:00,1\n2023-01-01 00:01:00,2\n"
    )
    stats = quality_report(load_dataset(tmp_path))["SensorStatistics"][0]
    assert stats["MissingValues"]["Count"] == 0
    assert stats["InvalidValues"]["Count"] == 1  # the cell was read, and it was invalid


# -- §2 labels -----------------------------------------------------------------------


def test_the_guides_label_file_reads_as_two_anomaly_ranges(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "2020-02-01T20:00:00.000000,2020-02-03T00:00:00.000000\n"
        "2020-07-01T20:00:00.000000,2020-07-03T00:01:00.000000\n"
    )
    labels = load_labels(path)
    assert [(str(label.start), str(label.end)) for label in labels] == [
        ("2020-02-01 20:00:00+00:00", "2020-02-03 00:00:00+00:00"),
        ("2020-07-01 20:00:00+00:00", "2020-07-03 00:01:00+00:00"),
    ]


def test_overlapping_labels_cover_their_union(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "2019-01-10 00:00:00,2019-01-10 02:00:00\n2019-01-10 01:00:00,2019-01-10 03:00:00\n"
    )
    index = pd.date_range("2019-01-09 23:00", "2019-01-10 04:00", freq="30min", tz="UTC")
    mask = label_mask(index, load_labels(path))
    assert index[mask].min() == pd.Timestamp("2019-01-10 00:00", tz="UTC")
    assert index[mask].max() == pd.Timestamp("2019-01-10 03:00", tz="UTC")
    assert mask.sum() == 7


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (f"2020-01-01 00:00,2020-01-02 00:00,{'F' * 101}", "fault_code: at most 100"),
        (f"2020-01-01 00:00,2020-01-02 00:00,F1,{'e' * 201}", "equipment: at most 200"),
    ],
)
def test_label_columns_beyond_createlabels_lengths_are_refused(
    tmp_path: Path, row: str, problem: str
) -> None:
    """CreateLabel: FaultCode 1-100 characters, Equipment 1-200 (API reference)."""
    path = tmp_path / "labels.csv"
    path.write_text(row + "\n")
    with pytest.raises(UserError, match=f"line 1, column \\d: {problem}"):
        load_labels(path)


def test_label_columns_at_createlabels_lengths_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(f"2020-01-01 00:00,2020-01-02 00:00,{'F' * 100},{'e' * 200},n\n")
    (label,) = load_labels(path)
    assert (len(label.fault_code), len(label.equipment), label.notes) == (100, 200, "n")


# -- §3-§4 input names: the spec's table and time-zone example -------------------------

END = datetime(2022, 5, 13, 12, 15, tzinfo=UTC)
IST = timezone(timedelta(hours=5, minutes=30))
NAMES = [
    ("_", "yyyyMMddHHmmss", "+00:00", "pump_20220513121500.csv"),
    ("_", "yyyy-MM-dd-HH-mm-ss", "+00:00", "pump_2022-05-13-12-15-00.csv"),
    ("_", "EPOCH", "+00:00", "pump_1652444100.csv"),
    ("-", "yyyyMMddHHmmss", "+00:00", "pump-20220513121500.csv"),
    (" ", "yyyyMMddHHmmss", "+00:00", "pump 20220513121500.csv"),
    ("", "yyyyMMddHHmmss", "+00:00", "pump20220513121500.csv"),
    ("_", "yyyyMMddHHmmss", "-00:00", "pump_20220513121500.csv"),
    ("_", "yyyyMMddHHmmss", "+05:30", "pump_20220513174500.csv"),
    ("_", "yyyyMMddHHmmss", "-07:00", "pump_20220513051500.csv"),
    ("-", "yyyy-MM-dd-HH-mm-ss", "-03:30", "pump-2022-05-13-08-45-00.csv"),
    ("_", "EPOCH", "+05:30", "pump_1652444100.csv"),  # Choice: EPOCH ignores the offset
    ("", "EPOCH", "-11:00", "pump1652444100.csv"),
]


@pytest.mark.parametrize(("delimiter", "layout", "offset", "key"), NAMES)
def test_the_file_for_the_window_ending_1215_utc(
    delimiter: str, layout: str, offset: str, key: str
) -> None:
    naming = InputNaming(delimiter, layout, offset)
    assert naming.format("pump", END) == key
    assert naming.parse(key) == ("pump", END)


def test_the_spec_time_zone_example() -> None:
    """With +05:30 the window ending 13:00 UTC looks for ...20210405183000.csv."""
    naming = InputNaming("_", "yyyyMMddHHmmss", "+05:30")
    assert naming.format("pump", datetime(2021, 4, 5, 13, 0, tzinfo=UTC)) == (
        "pump_20210405183000.csv"
    )


@pytest.mark.parametrize(
    ("delimiter", "component"),
    [
        ("_", "centrifugal-pump"),
        ("_", "pump_01"),
        ("-", "centrifugal-pump"),
        ("-", "line.3-pump_01"),
        (" ", "pump-01"),
        ("", "pump01"),
    ],
)
@pytest.mark.parametrize("layout", ["yyyyMMddHHmmss", "yyyy-MM-dd-HH-mm-ss", "EPOCH"])
def test_a_component_holding_the_delimiter_or_digits_keeps_its_whole_name(
    delimiter: str, component: str, layout: str
) -> None:
    naming = InputNaming(delimiter, layout)
    assert naming.parse(naming.format(component, END, "in/"), "in/") == (component, END)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tz_offset", "+5:30"),
        ("tz_offset", "05:30"),
        ("tz_offset", "+0530"),
        ("tz_offset", "+24:00"),
        ("timestamp_format", "yyyy-MM-dd HH:mm:ss"),
        ("timestamp_format", "epoch"),
        ("delimiter", "."),
        ("delimiter", "__"),
    ],
)
def test_settings_outside_the_api_patterns_are_refused(field: str, value: str) -> None:
    with pytest.raises(ConfigError):
        InputNaming(**{field: value})


# -- §5 results.jsonl: the user guide's example, byte for byte --------------------------

GUIDE_LINES = (
    '{"timestamp": "2021-03-11T22:24:00.000000", "prediction": 0, "prediction_reason": '
    '"MACHINE_OFF"}\n'
    '{"timestamp": "2021-03-11T22:25:00.000000", "prediction": 1, "prediction_reason": '
    '"ANOMALY_DETECTED", "anomaly_score": 0.72385, "diagnostics": [{"name": '
    '"pump\\\\motor_current", "value": 0.61234}, {"name": "pump\\\\flow", "value": 0.38766}]}\n'
    '{"timestamp": "2021-03-11T22:26:00.000000", "prediction": 0, "prediction_reason": '
    '"NO_ANOMALY_DETECTED", "anomaly_score": 0.5, "diagnostics": [{"name": '
    '"pump\\\\motor_current", "value": 0.0}, {"name": "pump\\\\flow", "value": 1.0}]}\n'
)


def _guide_result() -> ScoreResult:
    index = pd.DatetimeIndex(
        ["2021-03-11T22:24:00", "2021-03-11T22:25:00", "2021-03-11T22:26:00"], tz="UTC"
    )
    return ScoreResult(
        index,
        np.array([0.1, 0.723854, 0.500004]),
        np.array([0, 1, 0], dtype=np.int8),
        np.array([True, False, False]),
        np.array([[0.5, 0.5], [0.612341, 0.387659], [0.0, 1.0]]),
    )


@pytest.mark.parametrize(
    "encode",
    [lambda r, n: encode_results(result_lines(r, n)), encode_result_rows],
    ids=["line by line", "fast path"],
)
def test_results_lines_are_the_guides_keys_types_order_and_rounding(encode) -> None:  # type: ignore[no-untyped-def]
    body = encode(_guide_result(), ("pump\\motor_current", "pump\\flow"))
    assert body.decode() == GUIDE_LINES
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert lines[1]["diagnostics"][0]["name"] == "pump\\motor_current"  # one backslash
    for line in lines:
        assert type(line["prediction"]) is int
        if line["prediction_reason"] != "MACHINE_OFF":
            assert (line["anomaly_score"] > 0.5) == (line["prediction"] == 1)


@pytest.mark.parametrize(
    ("prefix", "start", "component", "key"),
    [
        (
            "output/",
            datetime(2021, 4, 13, 14, 15, tzinfo=UTC),
            None,
            "output/2021-04-13T14:15:00Z/results.jsonl",
        ),
        ("", datetime(2021, 4, 13, 14, 15, tzinfo=UTC), None, "2021-04-13T14:15:00Z/results.jsonl"),
        (
            "a/b/",
            datetime(2021, 4, 13, 19, 45, tzinfo=IST),
            None,
            "a/b/2021-04-13T14:15:00Z/results.jsonl",
        ),
        (
            "out/",
            datetime(2022, 5, 13, 12, 10, tzinfo=UTC),
            "pump-01",
            "out/pump-01/2022-05-13T12:10:00Z/results.jsonl",
        ),
    ],
)
def test_output_keys_name_the_data_start_time_in_utc(
    prefix: str, start: datetime, component: str | None, key: str
) -> None:
    assert results_key(prefix, start, component) == key


# -- §7 off condition ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sensor", "op", "value"),
    [
        ("pump\\motor_current<1", "pump\\motor_current", "<", 1.0),
        ("centrifugal-pump\\Sensor13<4000", "centrifugal-pump\\Sensor13", "<", 4000.0),
        ("pump\\motor_current < 1", "pump\\motor_current", "<", 1.0),
        ("pump\\motor_current>1.5e3", "pump\\motor_current", ">", 1500.0),
        ("pump\\flow < -0.5", "pump\\flow", "<", -0.5),
        ("line.3_a\\s-1.x > .25", "line.3_a\\s-1.x", ">", 0.25),
    ],
)
def test_off_condition_forms_aws_tools_write(text: str, sensor: str, op: str, value: float) -> None:
    condition = OffCondition.parse(text)
    assert (condition.sensor, condition.op, condition.value) == (sensor, op, value)


@pytest.mark.parametrize(
    "text",
    [
        "pump\\flow <= 1",
        "pump\\flow = 1",
        "pump\\flow < 1 AND pump\\x > 2",
        "pump\\flow <",
        "< 1",
        "pump\\flow < \u0661",  # an Arabic-Indic one: float() reads it, no number of AWS's
        "pump\\flow < \uff11\uff10",  # fullwidth 10
    ],
)
def test_off_conditions_outside_the_grammar_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="OffCondition"):
        OffCondition.parse(text)


def test_off_condition_marks_rows_strictly_past_the_value_and_not_missing_ones() -> None:
    frame = pd.DataFrame({"pump\\motor_current": [0.5, 1.0, 1.5, np.nan]})
    assert OffCondition.parse("pump\\motor_current<1").mask(frame).tolist() == [
        True,
        False,
        False,
        False,
    ]
    assert OffCondition.parse("pump\\motor_current > 1").mask(frame).tolist() == [
        False,
        False,
        True,
        False,
    ]
