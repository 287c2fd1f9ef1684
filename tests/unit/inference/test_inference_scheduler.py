"""Scheduler windows on a ManualClock: on-time, delayed, missing, time zone, multi-file, fleet,
and one asset's alarm carried from window to window."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from conftest import plant_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import FsObjectStore, InMemoryObjectStore, InMemoryStateStore
from cloud.inference import scheduler as scheduler_module
from cloud.inference.episodes import DEFAULT_ALARM
from cloud.inference.model import Model, TrainConfig, train
from cloud.inference.monitor import Monitor
from cloud.inference.registry import ModelRegistry
from cloud.inference.scheduler import (
    EXECUTIONS_NS,
    MONITORS_NS,
    Scheduler,
    SchedulerConfig,
    execution_key,
    list_executions,
)
from cloud.l4e.naming import InputNaming
from edge.clock import ManualClock
from edge.errors import ConfigError

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
HISTORY = plant_frame(rows=3000, start="2025-12-29")
LIVE = plant_frame(rows=120, seed=11, start="2026-01-01")


def at(hhmm: str) -> float:
    h, m = hhmm.split(":")
    return T0 + int(h) * 3600 + int(m) * 60


def csv_body(first: str, last: str, component_prefix: str = "pump\\") -> bytes:
    """Rows of LIVE from *first* to *last* (inclusive), batcher style, plain sensor headers."""
    rows = LIVE.loc[
        pd.Timestamp(f"2026-01-01 {first}", tz="UTC") : pd.Timestamp(f"2026-01-01 {last}", tz="UTC")
    ]
    rows = rows.rename(columns=lambda c: c.removeprefix(component_prefix))
    text = rows.to_csv(date_format="%Y-%m-%dT%H:%M:%S.%f", index_label="Timestamp")
    return text.encode()


@pytest.fixture(scope="module")
def model() -> Model:
    return train(HISTORY)


@pytest.fixture(scope="module")
def counting_model() -> Model:
    """The shipped rules without the inverse-time raise: a marginal fault is raised by the
    count of rows alone, so a window shorter than the count cannot raise it by itself."""
    episodes = replace(DEFAULT_ALARM.episodes, trip_ratio=None)
    return train(HISTORY, TrainConfig(alarm=replace(DEFAULT_ALARM, episodes=episodes)))


def make(model: Model, clock: ManualClock, **kwargs):
    inp, out, state = InMemoryObjectStore(), InMemoryObjectStore(), InMemoryStateStore()
    config = SchedulerConfig(name="pump-sched", model_name="pump", **kwargs)
    return Scheduler(config, model, inp, out, state, clock), inp, out, state


def test_on_time_window_reads_its_file_and_writes_l4e_layout(model: Model) -> None:
    clock = ManualClock(at("00:02"))
    sched, inp, out, _ = make(model, clock)
    assert sched.run_due() == []
    inp.put("input/pump_20260101000500.csv", csv_body("00:00", "00:05"))
    clock.advance(180)
    [execution] = sched.run_due()
    assert execution.status == "SUCCESS"
    assert execution.result_key == "output/2026-01-01T00:00:00Z/results.jsonl"
    assert list(out.list("")) == [execution.result_key]
    lines = out.get(execution.result_key).decode().splitlines()
    docs = [json.loads(line) for line in lines]
    assert [d["timestamp"] for d in docs] == [
        f"2026-01-01T00:0{m}:00.000000" for m in range(1, 6)
    ]  # (S, E]: the row at 00:00 belongs to the previous window
    first = docs[0]
    assert list(first) == [
        "timestamp",
        "prediction",
        "prediction_reason",
        "anomaly_score",
        "diagnostics",
    ]
    assert first["prediction_reason"] == "NO_ANOMALY_DETECTED"
    assert [d["name"] for d in first["diagnostics"]] == list(model.sensors)
    assert sum(d["value"] for d in first["diagnostics"]) == pytest.approx(1, abs=1e-5)
    assert lines[0].startswith('{"timestamp": "2026-01-01T00:01:00.000000", "prediction": 0')
    assert '"name": "pump\\\\motor_current"' in lines[0]
    assert execution.scheduled_start == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    assert sched.run_due() == []  # not run twice


def test_delay_offset_postpones_wake_up_and_catches_late_files(model: Model) -> None:
    clock = ManualClock(at("00:02"))
    sched, inp, _, _ = make(model, clock, delay_offset_min=5)
    clock.advance(180)  # 00:05: window (00:00, 00:05] waits until 00:10
    assert sched.run_due() == []
    inp.put("input/pump_20260101000500.csv", csv_body("00:01", "00:05"))  # late file
    clock.advance(300)
    [execution] = sched.run_due()
    assert execution.status == "SUCCESS"
    assert execution.scheduled_start == datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    assert execution.data_end == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)


def test_missing_file_fails_with_l4e_reason_and_writes_nothing(model: Model) -> None:
    clock = ManualClock(at("00:04"))
    sched, inp, out, state = make(model, clock)
    inp.put("input/pump_20260101001500.csv", csv_body("00:01", "00:05"))  # outside listing
    clock.advance(60)
    [execution] = sched.run_due()
    assert execution.status == "FAILED"
    assert execution.failed_reason == (
        "Could not find data file for sensor pump within expected range of "
        "(2026-01-01T00:00:00Z, 2026-01-01T00:05:00Z]. Please ensure data is present for all "
        "sensors of the machine under prefix 'input/pump_20251231235500' ~ "
        "'input/pump_20260101001000'"
    )
    assert list(out.list("")) == []
    [stored] = list_executions(state, "pump-sched")
    assert (stored.status, stored.failed_components, stored.input_files) == ("FAILED", ("pump",), 0)


def test_time_zone_offset_applies_to_file_names_only(model: Model) -> None:
    naming = InputNaming(delimiter="-", timestamp_format="yyyy-MM-dd-HH-mm-ss", tz_offset="+05:30")
    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(model, clock, naming=naming)
    inp.put("input/pump-2026-01-01-05-35-00.csv", csv_body("00:01", "00:05"))
    clock.advance(240)
    [execution] = sched.run_due()
    assert execution.status == "SUCCESS", execution.failed_reason
    assert len(out.get(execution.result_key).decode().splitlines()) == 5


def test_multi_file_window_merges_and_later_name_wins(model: Model) -> None:
    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(model, clock)
    inp.put("input/pump_20260101000500.csv", csv_body("00:01", "00:03"))
    inp.put("input/pump_20260101001000.csv", csv_body("00:03", "00:07"))
    stale = "Timestamp,motor_current,flow,pressure,temperature\n"
    stale += "2026-01-01T00:02:00.000000,999,999,999,999\n"
    inp.put("input/pump_20260101000000.csv", stale.encode())  # earlier name: loses
    newest = "Timestamp,motor_current,flow,pressure,temperature\n"
    newest += "2026-01-01T00:03:00.000000,1,2,3,4\n"
    inp.put("input/pump_20260101001500.csv", newest.encode())  # beyond E + F: not listed
    frames = sched.read_window(
        datetime.fromtimestamp(at("00:00"), UTC), datetime.fromtimestamp(at("00:05"), UTC)
    )
    rows = frames["pump"]
    assert list(rows.index.strftime("%H:%M")) == ["00:01", "00:02", "00:03", "00:04", "00:05"]
    assert rows.loc["2026-01-01 00:02", "motor_current"] == pytest.approx(LIVE.iloc[2, 0])
    assert rows.loc["2026-01-01 00:03", "flow"] == pytest.approx(LIVE.iloc[3, 1])
    clock.advance(240)
    [execution] = sched.run_due()
    docs = [json.loads(x) for x in out.get(execution.result_key).decode().splitlines()]
    assert [d["timestamp"][11:16] for d in docs] == ["00:01", "00:02", "00:03", "00:04", "00:05"]


def test_catch_up_runs_each_missed_window_once_and_survives_restart(model: Model) -> None:
    clock = ManualClock(at("00:00"))
    sched, inp, _, state = make(model, clock)
    for end in ("00:05", "00:10", "00:15"):
        first = f"00:{int(end[3:]) - 4:02d}"
        inp.put(f"input/pump_202601010{end[1]}{end[3:]}00.csv", csv_body(first, end))
    clock.advance(600)
    assert [e.data_end.minute for e in sched.run_due()] == [5, 10]
    restarted = Scheduler(sched.config, model, inp, sched.output_store, state, clock)
    clock.advance(300)
    assert [e.data_end.minute for e in restarted.run_due()] == [15]
    assert [e.data_end.minute for e in list_executions(state)] == [15, 10, 5]


def test_fleet_scheduler_scores_each_component_of_a_template_model() -> None:
    template = train(HISTORY.rename(columns=lambda c: c.split("\\")[1]))
    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(template, clock)
    inp.put("input/pump-01_20260101000500.csv", csv_body("00:01", "00:05"))
    inp.put("input/pump-02_20260101000500.csv", csv_body("00:02", "00:05"))
    clock.advance(240)
    [execution] = sched.run_due()
    assert execution.result_keys == (
        "output/pump-01/2026-01-01T00:00:00Z/results.jsonl",
        "output/pump-02/2026-01-01T00:00:00Z/results.jsonl",
    )
    line = json.loads(out.get(execution.result_keys[1]).decode().splitlines()[0])
    assert line["diagnostics"][0]["name"] == "pump-02\\motor_current"


def test_frequency_shorter_than_sampling_rate_is_rejected() -> None:
    coarse = train(HISTORY, TrainConfig(sampling_rate="PT10M"))
    with pytest.raises(ConfigError, match="TargetSamplingRate PT10M"):
        make(coarse, ManualClock(at("00:00")))
    with pytest.raises(ConfigError, match="DataDelayOffsetInMinutes"):
        SchedulerConfig(name="s", model_name="m", delay_offset_min=61)


def test_epoch_names_ignore_the_offset_and_empty_delimiter_works(model: Model) -> None:
    naming = InputNaming(delimiter="", timestamp_format="EPOCH", tz_offset="+05:30")
    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(model, clock, naming=naming)
    inp.put(f"input/pump{int(at('00:05'))}.csv", csv_body("00:01", "00:05"))
    clock.advance(240)
    [execution] = sched.run_due()
    assert execution.status == "SUCCESS", execution.failed_reason
    assert list(out.list("")) == ["output/2026-01-01T00:00:00Z/results.jsonl"]


def test_machine_off_rows_are_written_without_score_or_diagnostics() -> None:
    off_model = train(HISTORY, TrainConfig(off_condition="pump\\motor_current < 1"))
    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(off_model, clock)
    body = csv_body("00:01", "00:05").decode().splitlines()
    cells = body[2].split(",")
    cells[1] = "0.0"  # motor_current of the 00:02 row: the machine is off
    body[2] = ",".join(cells)
    inp.put("input/pump_20260101000500.csv", ("\n".join(body) + "\n").encode())
    clock.advance(240)
    [execution] = sched.run_due()
    lines = out.get(execution.result_key).decode().splitlines()
    assert lines[1] == (
        '{"timestamp": "2026-01-01T00:02:00.000000", "prediction": 0, '
        '"prediction_reason": "MACHINE_OFF"}'
    )
    assert "anomaly_score" in lines[0] and "anomaly_score" in lines[2]


def test_fleet_scheduler_skips_components_of_another_kind() -> None:
    template = train(HISTORY.rename(columns=lambda c: c.split("\\")[1]))
    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(template, clock)
    inp.put("input/pump-01_20260101000500.csv", csv_body("00:01", "00:05"))
    assert list(out.list("")) == []
    inp.put("input/fan-01_20260101000500.csv", b"Timestamp,rpm\n2026-01-01T00:02:00,900\n")
    clock.advance(240)
    [execution] = sched.run_due()
    assert execution.status == "SUCCESS"
    assert execution.result_keys == ("output/pump-01/2026-01-01T00:00:00Z/results.jsonl",)
    assert (execution.input_files, execution.failed_components) == (2, ("fan-01",))
    inp.put("input/fan-01_20260101001000.csv", b"Timestamp,rpm\n2026-01-01T00:07:00,900\n")
    clock.advance(300)
    [failed] = sched.run_due()
    assert failed.status == "FAILED"
    assert failed.failed_reason.startswith("no component fits the model: fan-01: sensor")
    assert failed.failed_components == ("fan-01",)


def test_one_unreadable_file_is_skipped_and_the_other_components_are_scored() -> None:
    # GIVEN a fleet window where pump-02's file is corrupt (a header split by a newline)
    template = train(HISTORY.rename(columns=lambda c: c.split("\\")[1]))
    clock = ManualClock(at("00:01"))
    sched, inp, out, state = make(template, clock)
    inp.put("input/pump-01_20260101000500.csv", csv_body("00:01", "00:05"))
    inp.put(
        "input/pump-02_20260101000500.csv",
        b"Timestamp,a\n,flow\n2026-01-01T00:02:00.000000,1,2\n",
    )
    clock.advance(240)

    # WHEN the window runs
    [execution] = sched.run_due()

    # THEN pump-01 is scored, and pump-02's file is named with its reason in the execution
    assert execution.status == "SUCCESS", execution.failed_reason
    assert execution.result_keys == ("output/pump-01/2026-01-01T00:00:00Z/results.jsonl",)
    [skipped] = execution.skipped
    assert skipped["key"] == "input/pump-02_20260101000500.csv"
    assert (execution.input_files, execution.failed_components) == (2, ("pump-02",))
    assert "not a readable CSV" in skipped["reason"]
    assert list(out.list("")) == list(execution.result_keys)
    [stored] = list_executions(state)
    assert stored.skipped == execution.skipped


def test_a_fleet_component_whose_rows_hold_no_reading_is_named_and_not_scored() -> None:
    # GIVEN a fleet window where pump-02's rows in the window hold no reading at all
    template = train(HISTORY.rename(columns=lambda c: c.split("\\")[1]))
    clock = ManualClock(at("00:01"))
    sched, inp, out, _state = make(template, clock)
    inp.put("input/pump-01_20260101000500.csv", csv_body("00:01", "00:05"))
    header = csv_body("00:01", "00:01").decode().splitlines()[0]
    blank = f"{header}\n2026-01-01T00:02:00,,,,\n2026-01-01T00:03:00,nan,,inf,\n"
    inp.put("input/pump-02_20260101000500.csv", blank.encode())
    clock.advance(240)
    # WHEN the window runs
    [execution] = sched.run_due()
    # THEN pump-01 is scored; pump-02 has no data there: not scored on fill values, but
    # named as a component the run could not score, with why
    assert execution.status == "SUCCESS", execution.failed_reason
    assert list(out.list("")) == ["output/pump-01/2026-01-01T00:00:00Z/results.jsonl"]
    assert execution.failed_components == ("pump-02",)
    assert execution.skipped == [
        {
            "key": "pump-02",
            "reason": "no reading in the window: input/pump-02_20260101000500.csv: 2 rows "
            "from 2026-01-01T00:02:00Z to 2026-01-01T00:03:00Z, every cell blank or no "
            "finite number",
        }
    ]


def test_an_input_object_with_an_endless_first_line_is_skipped_unparsed() -> None:
    """A hostile object in the input bucket (one line of 2 MiB) is refused from a bounded
    read, not parsed by pandas into memory; the other component is scored."""
    template = train(HISTORY.rename(columns=lambda c: c.split("\\")[1]))
    clock = ManualClock(at("00:01"))
    sched, inp, _out, _state = make(template, clock)
    inp.put("input/pump-01_20260101000500.csv", csv_body("00:01", "00:05"))
    inp.put("input/pump-02_20260101000500.csv", b"Timestamp" + b",flow" * ((2 << 20) // 5))
    clock.advance(240)
    [execution] = sched.run_due()
    assert execution.status == "SUCCESS", execution.failed_reason
    [skipped] = execution.skipped
    assert skipped["key"] == "input/pump-02_20260101000500.csv"
    assert "line 1: longer than 1 MiB; not a CSV header" in skipped["reason"]


def faulty_live() -> pd.DataFrame:
    frame = LIVE.copy()
    # flow drops from 00:12 on and stays down; a marginal drop (1.4-2.8 thresholds,
    # squared), which the count raises on its raise_rows-th row, and the inverse-time
    # raise on its first or second
    frame.iloc[12:, 1] -= 20
    return frame


def window_file(frame: pd.DataFrame, end_minute: int) -> tuple[str, bytes]:
    """The batcher's file of the window ending *end_minute* past midnight."""
    end = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=end_minute)
    rows = frame.loc[end - pd.Timedelta(minutes=4) : end]
    rows = rows.rename(columns=lambda c: c.removeprefix("pump\\"))
    text = rows.to_csv(date_format="%Y-%m-%dT%H:%M:%S.%f", index_label="Timestamp")
    return f"input/pump_{end:%Y%m%d%H%M%S}.csv", text.encode()


def predictions(out: InMemoryObjectStore) -> list[int]:
    lines = [json.loads(x) for key in sorted(out.list("")) for x in out.get(key).splitlines()]
    return [line["prediction"] for line in lines]


def test_an_alarm_continues_across_windows_as_in_one_series(counting_model: Model) -> None:
    # GIVEN a fault that starts in the third window; each window holds 5 rows, fewer than
    # the rows above threshold that raise an alarm
    frame = faulty_live()
    clock = ManualClock(at("00:00"))
    sched, inp, out, state = make(counting_model, clock)
    for minute in range(5, 35, 5):
        inp.put(*window_file(frame, minute))
    # WHEN the windows run one by one, the scheduler restarted half-way
    clock.advance(15 * 60)
    assert len(sched.run_due()) == 3
    again = Scheduler(sched.config, counting_model, inp, out, state, clock)
    clock.advance(15 * 60)
    assert len(again.run_due()) == 3
    # THEN the alarm is raised and held as when the whole series is scored at once
    whole = Monitor(counting_model).score(frame.iloc[1:31]).result.prediction.tolist()
    assert predictions(out) == whole
    raised = counting_model.config.alarm.episodes.raise_rows
    assert whole == [0] * (10 + raised) + [1] * (20 - raised)
    assert state.get(MONITORS_NS, "pump-sched")["through"] == at("00:30")


def test_a_window_run_again_is_scored_on_its_own_and_leaves_the_state(
    counting_model: Model,
) -> None:
    frame = faulty_live()
    clock = ManualClock(at("00:00"))
    sched, inp, _, state = make(counting_model, clock)
    for minute in range(5, 30, 5):
        inp.put(*window_file(frame, minute))
    clock.advance(25 * 60)
    sched.run_due()
    kept = state.get(MONITORS_NS, "pump-sched")
    rerun = sched.run_window(datetime.fromtimestamp(at("00:20"), UTC))
    assert rerun.status == "SUCCESS" and not rerun.anomalous  # alone: 5 rows, no alarm yet
    assert state.get(MONITORS_NS, "pump-sched") == kept


def test_a_replaced_model_starts_a_new_series(counting_model: Model) -> None:
    frame = faulty_live()
    clock = ManualClock(at("00:00"))
    sched, inp, out, state = make(counting_model, clock)
    for minute in range(5, 35, 5):
        inp.put(*window_file(frame, minute))
    clock.advance(30 * 60)
    assert sched.run_due()[-1].anomalous
    other = train(HISTORY, TrainConfig(threshold_margin=1.6, alarm=counting_model.config.alarm))
    replaced = Scheduler(sched.config, other, inp, out, state, clock)
    inp.put(*window_file(frame, 35))
    clock.advance(5 * 60)
    [execution] = replaced.run_due()
    assert not execution.anomalous  # its first window: 5 rows, not yet an alarm


def test_a_new_version_of_the_same_model_starts_a_new_series(counting_model: Model) -> None:
    # GIVEN an alarm raised under version 1, then version 2 saved from the same artifacts
    # (same threshold, same sensors) and made active, as a retrain on the same data would be
    registry = ModelRegistry(InMemoryObjectStore())
    for _ in range(2):
        registry.save("pump", Model.from_artifacts(counting_model.to_artifacts(), "test"))
    registry.set_active("pump", 1)
    frame = faulty_live()
    clock = ManualClock(at("00:00"))
    sched, inp, out, state = make(registry.load("pump"), clock)
    for minute in range(5, 35, 5):
        inp.put(*window_file(frame, minute))
    clock.advance(30 * 60)
    assert sched.run_due()[-1].anomalous
    # WHEN the scheduler runs on with version 2
    registry.set_active("pump", 2)
    replaced = Scheduler(sched.config, registry.load("pump"), inp, out, state, clock)
    inp.put(*window_file(frame, 35))
    clock.advance(5 * 60)
    [execution] = replaced.run_due()
    # THEN version 2 does not carry on version 1's alarm: its first window is 5 rows, no alarm
    assert execution.model_version == 2
    assert not execution.anomalous


def _row_file(minute: int) -> bytes:
    return (
        "Timestamp,motor_current,flow,pressure,temperature\n"
        f"2026-01-01T00:{minute:02d}:00.000000,{','.join(map(str, LIVE.iloc[minute]))}\n"
    ).encode()


def test_listing_takes_names_from_s_minus_f_to_e_plus_f_inclusive(model: Model) -> None:
    # GIVEN the window (00:00, 00:05] with F = 5 min: names from 23:55 to 00:10 are listed
    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(model, clock)
    inp.put("input/pump_20251231235500.csv", _row_file(1))  # S - F: listed
    inp.put("input/pump_20260101001000.csv", _row_file(2))  # E + F: listed
    inp.put("input/pump_20251231235459.csv", _row_file(3))  # a second early: not listed
    inp.put("input/pump_20260101001001.csv", _row_file(4))  # a second late: not listed
    inp.put("input/Pump_20260101000500.csv", _row_file(5))  # names are case-sensitive
    clock.advance(240)
    [execution] = sched.run_due()
    assert (execution.status, execution.input_files) == ("SUCCESS", 2)
    docs = [json.loads(x) for x in out.get(execution.result_key).decode().splitlines()]
    assert [d["timestamp"][11:16] for d in docs] == ["00:01", "00:02"]


def test_a_name_that_is_no_instant_leaves_the_window_running(model: Model) -> None:
    # GIVEN beside the window's file, names whose timestamps are no real instant
    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(model, clock)
    inp.put("input/pump_20260101000500.csv", csv_body("00:01", "00:05"))
    inp.put("input/pump_20261345000000.csv", _row_file(3))
    inp.put("input/pump_20260230000500.csv", _row_file(3))
    clock.advance(240)
    # WHEN the window runs, THEN they are not input files: the run reads the one real file
    [execution] = sched.run_due()
    assert (execution.status, execution.input_files) == ("SUCCESS", 1), execution.failed_reason
    assert len(out.get(execution.result_key).decode().splitlines()) == 5


def _strict_json(line: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_an_infinite_reading_is_a_gap_and_every_line_stays_json(model: Model) -> None:
    # GIVEN a window whose flow column holds 'inf' and '1e400' (no usable double)
    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(model, clock)
    lines = csv_body("00:01", "00:05").decode().splitlines()
    for row, text in ((2, "inf"), (4, "1e400")):
        cells = lines[row].split(",")
        cells[2] = text
        lines[row] = ",".join(cells)
    inp.put("input/pump_20260101000500.csv", ("\n".join(lines) + "\n").encode())
    clock.advance(240)
    # WHEN the window runs, THEN every line is JSON with a score in [0, 1]
    [execution] = sched.run_due()
    assert execution.status == "SUCCESS", execution.failed_reason
    docs = [_strict_json(x) for x in out.get(execution.result_key).decode().splitlines()]
    assert len(docs) == 5
    assert all(0 <= d["anomaly_score"] <= 1 for d in docs)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_reading_too_large_to_square_still_writes_json_lines(model: Model) -> None:
    # GIVEN a finite flow reading of 1e200, whose square overflows the scoring arithmetic
    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(model, clock)
    lines = csv_body("00:01", "00:05").decode().splitlines()
    cells = lines[3].split(",")
    cells[2] = "1e200"
    lines[3] = ",".join(cells)
    inp.put("input/pump_20260101000500.csv", ("\n".join(lines) + "\n").encode())
    clock.advance(240)
    # WHEN the window runs, THEN the line is JSON: the score at its limit 1, and shares
    # that no sensor's arithmetic could tell apart split evenly (summing to 1)
    [execution] = sched.run_due()
    docs = [_strict_json(x) for x in out.get(execution.result_key).decode().splitlines()]
    assert (docs[2]["prediction"], docs[2]["anomaly_score"]) == (1, 1.0)
    assert [d["value"] for d in docs[2]["diagnostics"]] == [0.25] * 4
    assert all(0 <= d["anomaly_score"] < 1 for d in docs[:2] + docs[3:])


# -- every example of l4e-contracts §3-§5, through the scheduler ---------------------------


@pytest.mark.parametrize(
    ("frequency", "delay", "first_wake"),
    [
        ("PT5M", 0, "09:05"),
        ("PT5M", 5, "09:10"),
        ("PT10M", 0, "09:10"),
        ("PT10M", 5, "09:15"),
        ("PT15M", 0, "09:15"),
        ("PT15M", 5, "09:20"),
        ("PT30M", 0, "09:30"),
        ("PT30M", 5, "09:35"),
        ("PT1H", 0, "10:00"),
        ("PT1H", 5, "10:05"),
        ("PT5M", 60, "10:05"),
    ],
)
def test_first_run_after_nine_wakes_at_each_spec_example(
    model: Model, frequency: str, delay: int, first_wake: str
) -> None:
    # GIVEN a scheduler started at 09:00 (§3 "Run times": first run after 09:00)
    clock = ManualClock(at("09:00"))
    sched, _, _, _ = make(model, clock, upload_frequency=frequency, delay_offset_min=delay)
    # WHEN the clock reaches a second before the spec's wake-up, nothing runs
    clock.advance(at(first_wake) - at("09:00") - 1)
    assert sched.run_due() == []
    # THEN at W + D one run covers (W - F, W] and is scheduled at W + D
    clock.advance(1)
    [execution] = sched.run_due()
    f = sched.config.frequency_s
    assert execution.scheduled_start.timestamp() == at(first_wake)
    assert execution.data_end.timestamp() == at(first_wake) - delay * 60
    assert execution.data_start.timestamp() == execution.data_end.timestamp() - f
    assert sched.run_due() == []  # 60 / F runs per hour: the next one is F later
    clock.advance(f - 1)
    assert sched.run_due() == []
    clock.advance(1)
    assert len(sched.run_due()) == 1


def _minute_file(*minutes: int) -> bytes:
    """LIVE's rows at these minutes after 2026-01-01 00:00, plain sensor headers."""
    rows = LIVE.iloc[list(minutes)].rename(columns=lambda c: c.removeprefix("pump\\"))
    return rows.to_csv(date_format="%Y-%m-%dT%H:%M:%S.%f", index_label="Timestamp").encode()


@pytest.mark.parametrize("frequency", ["PT5M", "PT10M", "PT15M", "PT30M", "PT1H"])
def test_every_frequency_lists_names_from_s_minus_f_to_e_plus_f(
    model: Model, frequency: str
) -> None:
    # GIVEN the window (00:00, 00:00 + F] and names at and a second beyond S - F and E + F
    clock = ManualClock(at("00:00"))
    sched, inp, out, _ = make(model, clock, upload_frequency=frequency)
    f = sched.config.frequency_s
    name = sched.config.naming.format
    start, end = datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + f, UTC)
    step = timedelta(seconds=f)
    inp.put(name("pump", start - step, "input/"), _minute_file(1))
    inp.put(name("pump", end + step, "input/"), _minute_file(2, f // 60))
    inp.put(name("pump", start - step - timedelta(seconds=1), "input/"), _minute_file(3))
    inp.put(name("pump", end + step + timedelta(seconds=1), "input/"), _minute_file(4))
    # WHEN the window runs
    execution = sched.run_window(end)
    # THEN the two bounds are read, rows S < t <= E kept, folder = DataStartTime
    assert (execution.status, execution.input_files) == ("SUCCESS", 2), execution.failed_reason
    assert execution.result_key == "output/2026-01-01T00:00:00Z/results.jsonl"
    docs = [json.loads(x) for x in out.get(execution.result_key).decode().splitlines()]
    assert docs[0]["timestamp"] == "2026-01-01T00:01:00.000000"
    assert docs[-1]["timestamp"] == end.strftime("%Y-%m-%dT%H:%M:%S.%f")
    assert "2026-01-01T00:03:00.000000" not in {d["timestamp"] for d in docs}


@pytest.mark.parametrize(
    ("delimiter", "fmt", "offset", "name"),
    [
        ("_", "yyyyMMddHHmmss", "+00:00", "pump_20260101000500.csv"),
        ("-", "yyyyMMddHHmmss", "-00:00", "pump-20260101000500.csv"),
        (" ", "yyyy-MM-dd-HH-mm-ss", "-08:00", "pump 2025-12-31-16-05-00.csv"),
        ("", "yyyy-MM-dd-HH-mm-ss", "+05:30", "pump2026-01-01-05-35-00.csv"),
        ("_", "EPOCH", "+05:30", "pump_1767225900.csv"),
        ("-", "EPOCH", "-03:00", "pump-1767225900.csv"),
        ("\t", "yyyyMMddHHmmss", "+01:00", "pump\t20260101010500.csv"),  # AWS's `\s`
    ],
)
def test_each_delimiter_format_and_offset_finds_its_file(
    model: Model, delimiter: str, fmt: str, offset: str, name: str
) -> None:
    naming = InputNaming(delimiter=delimiter, timestamp_format=fmt, tz_offset=offset)
    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(model, clock, naming=naming)
    inp.put(f"input/{name}", csv_body("00:01", "00:05"))
    clock.advance(240)
    [execution] = sched.run_due()
    assert (execution.status, execution.input_files) == ("SUCCESS", 1), execution.failed_reason
    assert len(out.get(execution.result_key).decode().splitlines()) == 5


def _results_of(model: Model, body: bytes, key: str = "input/pump_20260101000500.csv") -> bytes:
    """The results.jsonl bytes of the window (00:00, 00:05] holding *body*, fresh state."""
    sched, inp, out, _ = make(model, ManualClock(at("00:05")))
    inp.put(key, body)
    execution = sched.run_window(datetime.fromtimestamp(at("00:05"), UTC))
    assert execution.status == "SUCCESS", (execution.failed_reason, execution.skipped)
    return out.get(execution.result_key)


def _rewrite(body: bytes, change) -> bytes:
    header, *rows = body.decode().splitlines()
    return "\n".join(change(header.split(","), [r.split(",") for r in rows])).encode() + b"\n"


def _quoted(header: list[str], rows: list[list[str]]) -> list[str]:
    return [",".join(f'"{c}"' for c in line) for line in [header, *rows]]


def _reordered_with_a_spare_column(header: list[str], rows: list[list[str]]) -> list[str]:
    order = [0, 4, 2, 1, 3]
    return [
        ",".join([*(line[i] for i in order), x])
        for line, x in zip([header, *rows], ["spare", *"98765"], strict=True)
    ]


def _in_another_zone(header: list[str], rows: list[list[str]]) -> list[str]:
    # 00:01 UTC written as 01:01+01:00
    return [",".join(header)] + [
        ",".join([f"{r[0][:11]}01{r[0][13:19]}+01:00", *r[1:]]) for r in rows
    ]


@pytest.mark.parametrize(
    "variant",
    [
        "bom_and_crlf",
        "quoted_cells",
        "columns_reordered_and_one_the_model_does_not_use",
        "rows_unsorted",
        "row_times_in_another_zone",
        "row_times_with_a_space_and_no_fraction",
        "timestamp_column_named_otherwise",
        "spaces_after_the_commas",
        "a_duplicate_timestamp_before_its_final_row",
    ],
)
def test_csv_laid_out_otherwise_gives_the_same_results_bytes(model: Model, variant: str) -> None:
    # GIVEN the window's rows written in a form §1.1/§1.2 accept
    base = csv_body("00:01", "00:05")
    variants = {
        "bom_and_crlf": b"\xef\xbb\xbf" + base.replace(b"\n", b"\r\n"),
        "quoted_cells": _rewrite(base, _quoted),
        "columns_reordered_and_one_the_model_does_not_use": _rewrite(
            base, _reordered_with_a_spare_column
        ),
        "rows_unsorted": _rewrite(base, lambda h, rows: [",".join(x) for x in [h, *rows[::-1]]]),
        "row_times_in_another_zone": _rewrite(base, _in_another_zone),
        "row_times_with_a_space_and_no_fraction": _rewrite(
            base,
            lambda h, rows: (
                [",".join(h)] + [",".join([r[0][:19].replace("T", " "), *r[1:]]) for r in rows]
            ),
        ),
        "timestamp_column_named_otherwise": base.replace(b"Timestamp,", b"time,", 1),
        "spaces_after_the_commas": base.replace(b",", b", "),
        "a_duplicate_timestamp_before_its_final_row": _rewrite(
            base,
            lambda h, rows: [
                ",".join(x)
                for x in [h, rows[0], rows[1], [rows[2][0], "9", "9", "9", "9"], *rows[2:]]
            ],
        ),
    }
    # WHEN it is scored, THEN results.jsonl is byte for byte that of the plain file
    assert _results_of(model, variants[variant]) == _results_of(model, base)


def test_every_blank_spelling_is_the_same_gap(model: Model) -> None:
    # GIVEN the 00:03 flow reading left empty, or written as nan, NaN, null or NULL
    def blank(text: str) -> bytes:
        def change(header: list[str], rows: list[list[str]]) -> list[str]:
            rows[2][2] = text
            return [",".join(x) for x in [header, *rows]]

        return _rewrite(csv_body("00:01", "00:05"), change)

    empty = _results_of(model, blank(""))
    # THEN every spelling gives the same lines, five of them, each JSON
    for text in ("nan", "NaN", "null", "NULL"):
        assert _results_of(model, blank(text)) == empty
    assert len(empty.decode().splitlines()) == 5
    assert empty != _results_of(model, csv_body("00:01", "00:05"))


def test_a_file_with_the_timestamp_in_another_column_is_named_not_silently_empty(
    model: Model,
) -> None:
    # GIVEN the window's file with the timestamp as the second column (§1.1: it is the first)
    def swap(header: list[str], rows: list[list[str]]) -> list[str]:
        return [",".join([x[1], x[0], *x[2:]]) for x in [header, *rows]]

    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(model, clock)
    inp.put("input/pump_20260101000500.csv", _rewrite(csv_body("00:01", "00:05"), swap))
    clock.advance(240)
    # WHEN the window runs, THEN it fails, and the file is named with what is wrong with it
    [execution] = sched.run_due()
    assert (execution.status, execution.failed_components) == ("FAILED", ("pump",))
    [skipped] = execution.skipped
    assert skipped["key"] == "input/pump_20260101000500.csv"
    assert skipped["reason"].startswith(
        "input/pump_20260101000500.csv: line 2, column 2: 'Timestamp' holds the timestamps "
        "('2026-01-01T00:01:00.000000') and column 1 'motor_current' does not ("
    )
    assert skipped["reason"].endswith("expected the timestamp in the first column")
    assert list(out.list("")) == []


class _FilesOnly(FsObjectStore):
    """A bucket folder whose objects may only be read as files (a whole-object read of a
    5 GB input would need that much memory)."""

    def get(self, key: str) -> bytes:
        raise AssertionError(f"{key}: read whole")


@pytest.mark.parametrize("whole_read_bytes", [0, 16 << 20])
def test_input_files_are_read_from_the_stores_file_not_as_one_bytes_object(
    model: Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_read_bytes: int
) -> None:
    # GIVEN the window's file in a folder store that hands objects over as files, larger
    # (0) or smaller than the size read into memory at once
    monkeypatch.setattr(scheduler_module, "WHOLE_READ_BYTES", whole_read_bytes)
    clock = ManualClock(at("00:05"))
    state, out = InMemoryStateStore(), InMemoryObjectStore()
    config = SchedulerConfig(name="pump-sched", model_name="pump")
    inp = _FilesOnly(tmp_path / "bucket", fsync=False)
    sched = Scheduler(config, model, inp, out, state, clock)
    body = b"\xef\xbb\xbf" + csv_body("00:01", "00:05").replace(b"\n", b"\r\n")
    inp.put("input/pump_20260101000500.csv", body)
    # WHEN the window runs, THEN it reads the file in chunks, with the same results
    execution = sched.run_window(datetime.fromtimestamp(at("00:05"), UTC))
    assert execution.status == "SUCCESS", execution.skipped
    assert out.get(execution.result_key) == _results_of(model, csv_body("00:01", "00:05"))


def test_a_failed_run_names_the_keys_that_almost_match(model: Model) -> None:
    # GIVEN a bucket moved over with names this scheduler does not read (delimiter `_`,
    # yyyyMMddHHmmss): another delimiter, another format, upper-case or gzipped extension,
    # milliseconds since the epoch, and one real name far outside the window
    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(model, clock)
    body = csv_body("00:01", "00:05")
    near = [
        "input/pump-20260101000500.csv",
        "input/pump_2026-01-01-00-05-00.csv",
        "input/pump_20260101000500.CSV",
        "input/pump_20260101000500.csv.gz",
        "input/pump_1767225900000.csv",
    ]
    for key in [*near, "input/pump_20250101000500.csv", "input/fan_x.csv", "input/notes.txt"]:
        inp.put(key, body)
    clock.advance(240)
    # WHEN the window runs, THEN it fails as L4E's does, and then names the near misses
    [execution] = sched.run_due()
    assert execution.status == "FAILED"
    assert execution.failed_reason == (
        "Could not find data file for sensor pump within expected range of "
        "(2026-01-01T00:00:00Z, 2026-01-01T00:05:00Z]. Please ensure data is present for all "
        "sensors of the machine under prefix 'input/pump_20251231235500' ~ "
        "'input/pump_20260101001000'. Under the prefix but not named "
        "input/pump_<yyyyMMddHHmmss>.csv, so not read: 'input/pump-20260101000500.csv', "
        "'input/pump_1767225900000.csv', 'input/pump_2026-01-01-00-05-00.csv' and 2 more"
    )
    assert sched.near_misses("pump") == sorted(near)
    assert list(out.list("")) == []


@pytest.mark.parametrize(
    ("in_prefix", "out_prefix"), [("data/", "data/"), ("", "output/"), ("", "")]
)
def test_a_prefix_that_already_holds_results_keeps_them_and_never_reads_them_as_input(
    model: Model, in_prefix: str, out_prefix: str
) -> None:
    # GIVEN one bucket for input and output, already holding L4E's results of other
    # windows, a results object under the input prefix, and the window's own file
    clock = ManualClock(at("00:01"))
    bucket, state = InMemoryObjectStore(), InMemoryStateStore()
    config = SchedulerConfig(
        name="pump-sched", model_name="pump", input_prefix=in_prefix, output_prefix=out_prefix
    )
    sched = Scheduler(config, model, bucket, bucket, state, clock)
    old = {
        f"{out_prefix}2025-12-31T23:55:00Z/results.jsonl": b'{"timestamp": "old"}\n',
        f"{out_prefix}2025-06-01T00:00:00Z/results.jsonl": b'{"timestamp": "older"}\n',
        f"{in_prefix}pump_20260101000000/results.jsonl": b"not an input\n",
    }
    for key, body in old.items():
        bucket.put(key, body)
    bucket.put(f"{in_prefix}pump_20260101000500.csv", csv_body("00:01", "00:05"))
    clock.advance(240)
    # WHEN the window runs
    [execution] = sched.run_due()
    # THEN it reads only its file, adds its own folder and leaves the others as they were
    assert (execution.status, execution.input_files) == ("SUCCESS", 1), execution.failed_reason
    assert execution.result_key == f"{out_prefix}2026-01-01T00:00:00Z/results.jsonl"
    assert all(bucket.get(key) == body for key, body in old.items())
    assert len(bucket.get(execution.result_key).decode().splitlines()) == 5


def test_a_file_arriving_after_its_run_is_not_scored_by_a_later_run(model: Model) -> None:
    # GIVEN the window (00:00, 00:05] run (and failed) before its file arrived
    clock = ManualClock(at("00:01"))
    sched, inp, out, _ = make(model, clock)
    clock.advance(240)
    [first] = sched.run_due()
    assert first.status == "FAILED"
    inp.put("input/pump_20260101000500.csv", csv_body("00:01", "00:05"))  # late
    inp.put("input/pump_20260101001000.csv", csv_body("00:06", "00:10"))
    clock.advance(300)
    # WHEN the next window runs, THEN it lists the late file (S - F) but keeps only its own
    # rows (§4 rule 4: files arriving after a run are not re-read by that run)
    [second] = sched.run_due()
    assert (second.status, second.input_files) == ("SUCCESS", 2)
    docs = [json.loads(x) for x in out.get(second.result_key).decode().splitlines()]
    assert [d["timestamp"][11:16] for d in docs] == ["00:06", "00:07", "00:08", "00:09", "00:10"]
    assert [k for k in out.list("") if k.endswith("results.jsonl")] == [second.result_key]


def test_a_fleet_window_with_no_input_names_the_keys_that_almost_match() -> None:
    template = train(HISTORY.rename(columns=lambda c: c.split("\\")[1]))
    clock = ManualClock(at("00:01"))
    sched, inp, _, _ = make(template, clock)
    inp.put("input/pump-01-20260101000500.csv", csv_body("00:01", "00:05"))  # `-`, not `_`
    inp.put("input/readme.txt", b"not a CSV")
    clock.advance(240)
    [execution] = sched.run_due()
    assert execution.status == "FAILED"
    assert execution.failed_reason.endswith(
        "under prefix 'input/<component>_20251231235500' ~ 'input/<component>_20260101001000'"
        ". Under the prefix but not named input/<component>_<yyyyMMddHHmmss>.csv, so not "
        "read: 'input/pump-01-20260101000500.csv'"
    )


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(
        st.text(alphabet="ab/-.:Z0", min_size=1, max_size=12), min_size=1, max_size=30, unique=True
    )
)
def test_compacted_result_keys_read_back_as_written(keys: list[str]) -> None:
    from cloud.l4e.result_keys import compact_keys

    compact = compact_keys(keys)
    if compact is not None:
        rebuilt = [f"{compact['prefix']}{m}{compact['suffix']}" for m in compact["middles"]]
        assert rebuilt == keys


@pytest.mark.parametrize(
    ("naming", "key", "reason"),
    [
        (InputNaming(), "input/pump-02_20260101000500.CSV", "'.csv'"),
        (InputNaming(), "input/pump-02_20260101000500.Csv", "'.csv'"),
        (
            InputNaming(timestamp_format="EPOCH"),
            f"input/pump-02_{int(at('00:05')) * 1000}.csv",
            "milliseconds",
        ),
        (
            InputNaming(timestamp_format="EPOCH", delimiter=""),
            f"input/pump-02{int(at('00:05')) * 1000}.csv",
            "milliseconds",
        ),
    ],
)
def test_a_misnamed_file_of_the_window_is_recorded_when_the_run_succeeds(
    naming: InputNaming, key: str, reason: str
) -> None:
    """A fleet run that scores other components used to say nothing of a file meant for
    the window but not named as this scheduler reads (upper-case extension, EPOCH in
    milliseconds): pump-02 was silently never scored."""
    template = train(HISTORY.rename(columns=lambda c: c.split("\\")[1]))
    clock = ManualClock(at("00:01"))
    sched, inp, _out, _ = make(template, clock, naming=naming)
    inp.put(
        naming.format("pump-01", datetime.fromtimestamp(at("00:05"), UTC), "input/"),
        csv_body("00:01", "00:05"),
    )
    inp.put(key, csv_body("00:01", "00:05"))
    far = key.replace("20260101000500", "20250101000500").replace(
        str(int(at("00:05")) * 1000), str(int(at("00:05") - 86400 * 365) * 1000)
    )
    inp.put(far, csv_body("00:01", "00:05"))  # another window's: not this run's business
    clock.advance(240)
    [execution] = sched.run_due()
    assert execution.status == "SUCCESS"
    assert len(execution.result_keys) == 1
    [skipped] = execution.skipped
    assert skipped["key"] == key
    assert "not read" in skipped["reason"] and reason in skipped["reason"]


def test_a_naive_window_end_is_utc_whatever_the_machine_zone(
    model: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names read a naive time as UTC; run_window read it in the machine's zone, so at
    +05:30 a naive 00:05 ran the window ending 18:35 the day before (or was refused)."""
    import time

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        clock = ManualClock(at("00:10"))
        sched, inp, _out, _ = make(model, clock)
        inp.put("input/pump_20260101000500.csv", csv_body("00:01", "00:05"))
        execution = sched.run_window(datetime(2026, 1, 1, 0, 5))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert execution.data_end == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    assert execution.status == "SUCCESS", execution.failed_reason


@settings(max_examples=150, deadline=None)
@given(
    delimiter=st.sampled_from(["_", "-", " ", ""]),
    fmt=st.sampled_from(["yyyyMMddHHmmss", "yyyy-MM-dd-HH-mm-ss", "EPOCH"]),
    offset=st.sampled_from(["+00:00", "-00:00", "+05:30", "-12:00", "+14:00", "+05:45"]),
    frequency=st.sampled_from(["PT5M", "PT10M", "PT15M", "PT30M", "PT1H"]),
    shift_s=st.integers(-3 * 3600, 3 * 3600),
)
def test_a_file_is_listed_for_a_window_exactly_when_its_name_is_within_one_period(
    model: Model, delimiter: str, fmt: str, offset: str, frequency: str, shift_s: int
) -> None:
    """§4 Choice rule 1: window (S, E] lists names with S - F <= ts <= E + F, ts read in
    the offset (EPOCH absolute), both ends included, whatever the name configuration."""
    naming = InputNaming(delimiter=delimiter, timestamp_format=fmt, tz_offset=offset)
    clock = ManualClock(at("00:00"))
    sched, inp, _, _ = make(model, clock, naming=naming, upload_frequency=frequency)
    f = sched.config.frequency_s
    end = datetime(2026, 1, 1, 12, tzinfo=UTC)
    named = end + timedelta(seconds=shift_s)
    key = naming.format("pump", named, "input/")
    inp.put(key, b"")
    files = sched.window_files(end - timedelta(seconds=f), end)
    listed = -2 * f <= shift_s <= f
    assert files == ({"pump": [(named, key)]} if listed else {})


def test_non_finite_readings_are_counted_as_invalid_values_in_the_execution(
    model: Model,
) -> None:
    # GIVEN a window whose flow column holds inf, -inf and Infinity, and one blank cell
    clock = ManualClock(at("00:01"))
    sched, inp, _, state = make(model, clock)
    lines = csv_body("00:01", "00:05").decode().splitlines()
    for row, text in ((1, "inf"), (2, "-inf"), (3, "Infinity"), (4, "")):
        cells = lines[row].split(",")
        cells[2] = text
        lines[row] = ",".join(cells)
    key = "input/pump_20260101000500.csv"
    inp.put(key, ("\n".join(lines) + "\n").encode())
    clock.advance(240)
    # WHEN the window runs
    [execution] = sched.run_due()
    # THEN it is scored, and the three non-finite cells are named as L4E's invalid values
    # (not ordinary missing ones: the blank cell is not counted), file and sensor given
    assert execution.status == "SUCCESS", execution.failed_reason
    flow = lines[0].split(",")[2]
    assert execution.invalid_values == [
        {
            "key": key,
            "reason": f"InvalidValues: 3 cells that are no finite number ({flow}: 3) read as gaps",
        }
    ]
    assert execution.dropped_rows == []
    stored = state.get(EXECUTIONS_NS, execution_key("pump-sched", execution.data_start))
    assert stored is not None and stored["invalid_values"] == execution.invalid_values
