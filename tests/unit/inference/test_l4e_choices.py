"""l4e-contracts' marked rules (Choice, Decision, plantwatch rule) and the numbers and
field names beside them that test_l4e_conformance.py does not pin: data-quality grade
edges (§1.6), the discarded files' ``{Bucket, Key}`` (§1.6), which components a run
requires (§4 Choice), ``ListInferenceEvents``' interval edges (§6) and the name
configuration's defaults (§3 Choice). The data are written here, not read from the spec."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cloud.adapters.local import (
    FsObjectStore,
    InMemoryObjectStore,
    InMemoryStateStore,
    SqliteStateStore,
)
from cloud.inference.dataset import load_dataset
from cloud.inference.events import list_events
from cloud.inference.model import TrainConfig, train
from cloud.inference.quality import quality_report
from cloud.inference.registry import ModelRegistry
from cloud.inference.results import encode_results
from cloud.inference.scheduler import Execution, Scheduler, SchedulerConfig
from cloud.l4e.naming import InputNaming
from cloud.migrate import l4e
from edge.clock import ManualClock
from edge.errors import ConfigError

T0 = datetime(2026, 1, 1, tzinfo=UTC)

# -- §1.6 Choice: Low = no data, < 14 days, or > 50 % missing/invalid --------------------


def _grades(tmp_path: Path, rows: int, step: str, holes: int) -> dict[str, str]:
    """Grades of ``m\\base`` (always read) and ``m\\holey`` (*holes* cells blank, spread
    evenly), both random readings with no other issue, over *rows* timestamps *step* apart."""
    index = pd.date_range("2026-01-01", periods=rows, freq=step)
    rng = np.random.default_rng(3)
    holey = rng.normal(0, 1, rows)
    holey[np.arange(holes) * rows // max(holes, 1) + 1] = np.nan
    frame = pd.DataFrame({"base": rng.normal(0, 1, rows), "holey": holey}, index=index)
    (tmp_path / "m").mkdir()
    frame.to_csv(tmp_path / "m" / "m.csv", index_label="Timestamp")
    return quality_report(load_dataset(tmp_path))["Grades"]


@pytest.mark.parametrize(
    ("rows", "step", "holes", "grade"),
    [
        (20_000, "2min", 10_000, "High"),  # exactly half missing: not more than 50 %
        (20_001, "2min", 10_001, "Low"),  # 50.0025 %: more than half, shown as 50.0 %
        (20_001, "2min", 9_999, "High"),
        (14 * 24 + 1, "1h", 0, "High"),  # exactly 14 days of data: not short
        (14 * 24, "1h", 0, "Low"),  # an hour short of 14 days
    ],
)
def test_grade_edges(tmp_path: Path, rows: int, step: str, holes: int, grade: str) -> None:
    """§1.6 Choice: Low for more than 50 % missing or under 14 days; the share is the
    counts', not the two-decimal Percentage's (50.0025 % is more than half)."""
    grades = _grades(tmp_path, rows, step, holes)
    assert grades["m\\holey"] == grade
    assert grades["m\\base"] == ("Low" if grade == "Low" and not holes else "High")


# -- §1.6: IngestedFilesSummary.DiscardedFiles [{Bucket, Key}] -------------------------


def _importer(tmp_path: Path) -> l4e.L4EImporter:
    return l4e.L4EImporter(
        FsObjectStore(tmp_path / "bucket", fsync=False),
        SqliteStateStore(tmp_path / "state.db"),
        ModelRegistry(FsObjectStore(tmp_path / "models", fsync=False)),
        now=0.0,
    )


@pytest.mark.parametrize(
    ("where", "bucket"), [("s3://old-bucket/train/", "old-bucket"), ("/srv/train", None)]
)
def test_a_discarded_file_of_a_bucket_names_its_bucket_and_key(
    tmp_path: Path, where: str, bucket: str | None
) -> None:
    """§1.6: discarded files are listed as ``{Bucket, Key}`` (a folder has no bucket)."""
    store = InMemoryObjectStore()
    store.put("train/pump/a.csv", b"Timestamp,flow\n2026-01-01T00:00:00,1\n")
    store.put("train/pump/b.csv", b"no,header,row\n" + b"\xff\xfe\n")
    report = _importer(tmp_path).run(l4e.L4EOptions(name="imp"), l4e.Source(store, "train/", where))
    [discarded] = report["DiscardedFiles"]
    assert discarded["Key"] == "train/pump/b.csv"
    assert discarded.get("Bucket") == bucket
    assert list(discarded)[: 2 if bucket else 1] == (["Bucket", "Key"] if bucket else ["Key"])


# -- §4 Choice: required = components of the model's sensors and of the off condition ---

_IDX = pd.date_range("2025-12-29", periods=3000, freq="60s", tz="UTC")
_RNG = np.random.default_rng(0)
_HISTORY = pd.DataFrame(
    {
        "pump\\flow": _RNG.normal(10, 1, 3000),
        "pump\\amps": _RNG.normal(5, 1, 3000),
        "gear\\oil": _RNG.normal(50, 1, 3000),
        "fan\\rpm": _RNG.normal(900, 10, 3000),
    },
    index=_IDX,
)
PUMP = b"Timestamp,flow,amps\n2026-01-01T00:02:00,10,5\n2026-01-01T00:03:00,10.2,5.1\n"
GEAR = b"Timestamp,oil\n2026-01-01T00:02:00,0\n2026-01-01T00:03:00,50\n"


@pytest.mark.parametrize(
    ("files", "status", "missing"),
    [
        ({"pump": PUMP, "gear": GEAR}, "SUCCESS", None),  # no fan: not required
        ({"pump": PUMP}, "FAILED", "gear"),  # the off condition's component is
        ({"gear": GEAR}, "FAILED", "pump"),
    ],
)
def test_a_run_requires_the_model_and_off_condition_components_only(
    files: dict[str, bytes], status: str, missing: str | None
) -> None:
    """§4 Choice: only the components holding the model's sensors or the off-condition
    sensor must have rows; the off-condition sensor need not be one of the model's (§7)."""
    model = train(
        _HISTORY, TrainConfig(sensors=["pump\\flow", "pump\\amps"], off_condition="gear\\oil < 1")
    )
    clock = ManualClock(T0.timestamp() + 60)
    inp, out = InMemoryObjectStore(), InMemoryObjectStore()
    sched = Scheduler(
        SchedulerConfig(name="s", model_name="m"), model, inp, out, InMemoryStateStore(), clock
    )
    for component, body in files.items():
        inp.put(f"input/{component}_20260101000500.csv", body)
    clock.advance(240)
    [execution] = sched.run_due()
    assert execution.status == status
    if missing:
        assert execution.failed_reason.startswith(
            f"Could not find data file for sensor {missing} within expected range of "
            "(2026-01-01T00:00:00Z, 2026-01-01T00:05:00Z]. Please ensure data is present "
            f"for all sensors of the machine under prefix 'input/{missing}_20251231235500' ~ "
            f"'input/{missing}_20260101001000'"
        )
        assert list(out.list("")) == []
        return
    lines = out.get(execution.result_key).decode().splitlines()
    assert lines[0] == (
        '{"timestamp": "2026-01-01T00:02:00.000000", "prediction": 0, '
        '"prediction_reason": "MACHINE_OFF"}'
    )
    assert '"prediction_reason": "MACHINE_OFF"' not in lines[1]


# -- §6: ListInferenceEvents' interval ------------------------------------------------


def _run(store: InMemoryObjectStore, start_min: int, flagged: list[int]) -> Execution:
    start = T0 + timedelta(minutes=start_min)
    key = f"out/{start:%Y-%m-%dT%H:%M:%SZ}/results.jsonl"
    lines = [
        {
            "timestamp": (start + timedelta(minutes=k + 1)).strftime("%Y-%m-%dT%H:%M:%S.%f"),
            "prediction": p,
            "diagnostics": [{"name": "p\\flow", "value": 1.0}],
        }
        for k, p in enumerate(flagged)
    ]
    store.put(key, encode_results(lines))
    end = start + timedelta(minutes=5)
    return Execution("s", start, end, end, "SUCCESS", None, key, (key,))


@pytest.mark.parametrize(
    ("interval", "starts"),
    [
        ((2, 13), [1, 12]),  # 00:01-00:02 ends at IntervalStartTime; 00:12 starts before 00:13
        ((3, 13), [12]),  # 00:01-00:02 ends before 00:03
        ((0, 12), [1]),  # 00:12-00:14 does not start before IntervalEndTime 00:12
        ((14, 20), [12]),  # 00:12-00:14 ends at IntervalStartTime
        ((15, 20), []),
    ],
)
def test_events_ending_at_or_after_the_interval_start_and_starting_before_its_end(
    interval: tuple[int, int], starts: list[int]
) -> None:
    """§6: ``ListInferenceEvents`` returns events ending at or after IntervalStartTime and
    starting before IntervalEndTime; the events here are 00:01-00:02 and 00:12-00:14."""
    store = InMemoryObjectStore()
    runs = [_run(store, 0, [1, 1, 0, 0, 0]), _run(store, 10, [0, 1, 1, 1, 0])]
    assert [(e.start.minute, e.end.minute) for e in list_events(runs, store, "out/")] == [
        (1, 2),
        (12, 14),
    ]
    lo, hi = (T0 + timedelta(minutes=m) for m in interval)
    assert [e.start.minute for e in list_events(runs, store, "out/", lo, hi)] == starts


# -- §3 Choice: no InferenceInputNameConfiguration -> '_' and yyyyMMddHHmmss ------------


@pytest.mark.parametrize(
    "argv",
    [["schedulers", "create", "s", "--model", "m"], ["import", "l4e", "--input", "s3://b/in/"]],
)
def test_the_cli_s_name_configuration_defaults_are_aws_sample_defaults(argv: list[str]) -> None:
    from cloud.cli.main import build_parser

    args = build_parser(argv[0]).parse_args(argv)
    assert (args.delimiter, args.timestamp_format, args.tz_offset) == (
        "_",
        "yyyyMMddHHmmss",
        "+00:00",
    )


@pytest.mark.parametrize("offset", ["-05:00", "-00:00", "-03:30", "+05:30"])
@pytest.mark.parametrize(
    "argv",
    [
        ["schedulers", "create", "s", "--model", "m"],
        ["import", "l4e", "--input", "s3://b/in/"],
        ["rules", "run", "--broker", "mqtt://localhost:1883", "--store", "bucket"],
    ],
)
def test_the_cli_takes_a_west_of_utc_offset_as_its_own_argument(
    argv: list[str], offset: str
) -> None:
    """§3: InputTimeZoneOffset is ``^(\\+|\\-)[0-9]{2}\\:[0-9]{2}$``, ``-00:00`` among the
    examples: ``--tz-offset -05:00`` is the offset, not a missing value and an unknown
    option ``-05:00``."""
    from cloud.cli.main import build_parser

    args = build_parser(argv[0]).parse_args([*argv, "--tz-offset", offset])
    assert args.tz_offset == offset


def test_an_import_with_a_west_of_utc_offset_reads_names_in_that_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloud.cli.main import main

    # GIVEN an input file named for the window ending 12:15 UTC, at -05:00 (07:15)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "pump_20220513071500.csv").write_text(
        "Timestamp,flow\n2022-05-13T12:11:00.000000,1\n"
    )
    data = tmp_path / "data"
    argv = ["import", "l4e", "--input", str(tmp_path / "in"), "--name", "p", "--data", str(data)]
    # WHEN imported with --tz-offset -05:00 as two arguments
    assert main([*argv, "--tz-offset", "-05:00", "--json"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    # THEN the scheduler registered keeps that offset
    assert main(["schedulers", "describe", "p", "--data", str(data), "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["DataInputConfiguration"]["InputTimeZoneOffset"] == "-05:00"


def test_a_scheduler_without_a_name_configuration_takes_aws_sample_defaults() -> None:
    for naming in (
        InputNaming(),
        SchedulerConfig.from_dict({"name": "s", "model_name": "m"}).naming,
    ):
        assert (naming.delimiter, naming.timestamp_format, naming.tz_offset) == (
            "_",
            "yyyyMMddHHmmss",
            "+00:00",
        )
        assert naming.format("pump", datetime(2022, 5, 13, 12, 15, tzinfo=UTC)) == (
            "pump_20220513121500.csv"
        )


# -- §2 Choice: label CSV rows are Rating=ANOMALY; optional fault_code,equipment,notes ---


def test_imported_label_rows_are_anomaly_labels_with_the_optional_columns(
    tmp_path: Path,
) -> None:
    store = InMemoryObjectStore()
    store.put("in/pump/a.csv", b"Timestamp,flow\n2026-01-01T00:00:00,1\n")
    store.put(
        "labels/l.csv",
        b"2020-02-01T20:00:00.000000,2020-02-03T00:00:00.000000\n"
        b"2020/07/01 20:00,20200703 00:01:00,F7,pump-01,bearing noise\n",
    )
    importer = _importer(tmp_path)
    importer.run(
        l4e.L4EOptions(name="imp"),
        l4e.Source(store, "in/", "s3://old/in/"),
        labels=l4e.Source(store, "labels/", "s3://old/labels/"),
    )
    doc = importer.state.get(l4e.LABELS_NS, "imp")
    assert doc["labels"] == [
        {
            "StartTime": "2020-02-01T20:00:00Z",
            "EndTime": "2020-02-03T00:00:00Z",
            "FaultCode": "",
            "Equipment": "",
            "Notes": "",
            "Rating": "ANOMALY",
        },
        {
            "StartTime": "2020-07-01T20:00:00Z",
            "EndTime": "2020-07-03T00:01:00Z",
            "FaultCode": "F7",
            "Equipment": "pump-01",
            "Notes": "bearing noise",
            "Rating": "ANOMALY",
        },
    ]


# -- §1.5: TargetSamplingRate values; Choice: no scheduler F shorter than the rate -------

RATES = ["PT1S", "PT5S", "PT10S", "PT15S", "PT30S", "PT1M", "PT5M", "PT10M", "PT15M"]
RATES += ["PT30M", "PT1H"]


@pytest.mark.parametrize("rate", [*RATES, "PT2M", "PT20M", "PT2H", "PT1D", "pt5m", "5min"])
def test_target_sampling_rates_are_l4e_s_list(rate: str) -> None:
    if rate in RATES:
        assert TrainConfig(sampling_rate=rate).sampling_rate == rate
    else:
        with pytest.raises(ConfigError, match=f"TargetSamplingRate '{rate}': expected one of "):
            TrainConfig(sampling_rate=rate)


@pytest.mark.parametrize(
    ("frequency", "rate", "problem"),
    [
        ("PT5M", "PT10M", "shorter than the model's TargetSamplingRate PT10M"),
        ("PT30M", "PT1H", "shorter than the model's TargetSamplingRate PT1H"),
        ("PT10M", "PT10M", None),
        ("PT1H", "PT30M", None),
        ("PT5M", "PT1S", None),
    ],
)
def test_a_scheduler_frequency_shorter_than_the_sampling_rate_is_refused(
    frequency: str, rate: str, problem: str | None
) -> None:
    """§1.5 Choice, where the model is given to the scheduler."""
    model = train(_HISTORY, TrainConfig(sampling_rate=rate, max_modes=1))
    config = SchedulerConfig(name="s", model_name="m", upload_frequency=frequency)
    args = (InMemoryObjectStore(), InMemoryObjectStore(), InMemoryStateStore())
    if problem is None:
        Scheduler(config, model, *args, ManualClock(T0.timestamp()))
        return
    with pytest.raises(ConfigError) as info:
        Scheduler(config, model, *args, ManualClock(T0.timestamp()))
    assert str(info.value) == f"DataUploadFrequency {frequency}: {problem}"


# -- §7 Choice: the off-condition sensor must be in the dataset ------------------------


def test_an_off_condition_on_a_sensor_outside_the_dataset_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"OffCondition gear\\nope < 1: sensor 'gear\\\\nope'"):
        train(_HISTORY, TrainConfig(sensors=["pump\\flow"], off_condition="gear\\nope < 1"))


# -- §6: InferenceExecutionSummary fields; Choice: ScheduledStartTime = DataEndTime + D --


def test_listed_executions_carry_the_summary_fields_and_the_delayed_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloud.cli.main import main
    from cloud.cli.schedulers import LocalStack
    from cloud.inference.scheduler import EXECUTIONS_NS, create_scheduler, execution_key

    config = SchedulerConfig(
        name="s",
        model_name="m",
        input_prefix="in/",
        output_prefix="out/",
        upload_frequency="PT10M",
        delay_offset_min=5,
        naming=InputNaming("-", "EPOCH", "+05:30"),
    )
    start, end = T0, T0 + timedelta(minutes=10)
    key = "out/2026-01-01T00:00:00Z/results.jsonl"
    ran = Execution("s", start, end, end + timedelta(minutes=5), "SUCCESS", None, key, (key,))
    ran.model_name = "m"
    with LocalStack(tmp_path / "d", create=True) as stack:
        create_scheduler(stack.state, config, T0.timestamp())
        stack.state.put(EXECUTIONS_NS, execution_key("s", start), ran.to_record())
    assert main(["executions", "--data", str(tmp_path / "d"), "--json"]) == 0
    [summary] = json.loads(capsys.readouterr().out)
    assert summary == {
        "InferenceSchedulerName": "s",
        "ModelName": "m",
        "ScheduledStartTime": "2026-01-01T00:15:00Z",
        "DataStartTime": "2026-01-01T00:00:00Z",
        "DataEndTime": "2026-01-01T00:10:00Z",
        "DataInputConfiguration": {
            "S3InputConfiguration": {"Bucket": "input", "Prefix": "in/"},
            "InputTimeZoneOffset": "+05:30",
            "InferenceInputNameConfiguration": {
                "TimestampFormat": "EPOCH",
                "ComponentTimestampDelimiter": "-",
            },
        },
        "DataOutputConfiguration": {
            "S3OutputConfiguration": {"Bucket": "output", "Prefix": "out/"}
        },
        "Status": "SUCCESS",
        "CustomerResultObject": {"Bucket": "output", "Key": key},
    }


def test_a_sensor_with_no_reading_or_mostly_invalid_ones_is_low(tmp_path: Path) -> None:
    """§1.6 Choice: Low for no data and for more than half invalid; the dataset summary
    counts the sensor with no data under its L4E field names."""
    index = pd.date_range("2026-01-01", periods=20 * 24, freq="1h")
    rng = np.random.default_rng(5)
    good = rng.normal(0, 1, len(index))
    text = np.where(np.arange(len(index)) % 4 == 0, rng.normal(0, 1, len(index)).astype(str), "x")
    frame = pd.DataFrame({"good": good, "dead": np.nan, "text": text}, index=index)
    (tmp_path / "m").mkdir()
    frame.to_csv(tmp_path / "m" / "m.csv", index_label="Timestamp")
    report = quality_report(load_dataset(tmp_path))
    assert report["Grades"] == {"m\\good": "High", "m\\dead": "Low", "m\\text": "Low"}
    stats = {s["SensorName"]: s for s in report["SensorStatistics"]}
    assert (stats["dead"]["DataExists"], stats["dead"]["DataStartTime"]) == (False, None)
    assert stats["text"]["InvalidValues"] == {"Count": 360, "Percentage": 75.0}
    summary = report["DataQualitySummary"]
    assert summary["InsufficientSensorData"]["MissingCompleteSensorData"] == {
        "AffectedSensorCount": 1
    }
    assert summary["InvalidSensorData"] == {
        "AffectedSensorCount": 1,
        "TotalNumberOfInvalidValues": 360,
    }
