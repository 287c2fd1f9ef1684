"""Which files a scheduled run reads and which rows it keeps (l4e-contracts §3-§4), for
any upload frequency, delay offset, input naming and file timestamps.

The names are written here with the contract's own rules (strftime in the
``InputTimeZoneOffset``, EPOCH seconds in UTC), not with the code under test, and each
run is driven by the clock alone: ``run_due`` at ``W + D``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from conftest import plant_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryObjectStore, InMemoryStateStore
from cloud.inference.model import TrainConfig, train
from cloud.inference.scheduler import Scheduler, SchedulerConfig
from cloud.l4e.naming import DELIMITERS, UPLOAD_FREQUENCIES, InputNaming
from edge.clock import ManualClock
from edge.errors import ConfigError, UserError

MODEL = train(plant_frame(rows=1500, start="2025-12-30"))
SENSORS = [s.removeprefix("pump\\") for s in MODEL.sensors]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
STRFTIME = {"yyyyMMddHHmmss": "%Y%m%d%H%M%S", "yyyy-MM-dd-HH-mm-ss": "%Y-%m-%d-%H-%M-%S"}

offsets = st.builds(
    lambda sign, minutes: f"{sign}{minutes // 60:02d}:{minutes % 60:02d}",
    st.sampled_from("+-"),
    st.integers(0, 14 * 60),
)
namings = st.builds(
    InputNaming,
    delimiter=st.sampled_from(DELIMITERS[:4]),
    timestamp_format=st.sampled_from(["yyyyMMddHHmmss", "yyyy-MM-dd-HH-mm-ss", "EPOCH"]),
    tz_offset=offsets,
)


def name(naming: InputNaming, at: datetime) -> str:
    """``input/pump<delimiter><timestamp>.csv`` as §3-§4 spell it."""
    if naming.timestamp_format == "EPOCH":
        stamp = str(int(at.timestamp()))
    else:
        sign = -1 if naming.tz_offset[0] == "-" else 1
        hours, minutes = int(naming.tz_offset[1:3]), int(naming.tz_offset[4:6])
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
        stamp = at.astimezone(zone).strftime(STRFTIME[naming.timestamp_format])
    return f"input/pump{naming.delimiter}{stamp}.csv"


def body(*rows: datetime) -> bytes:
    """One row per time, every model sensor at a normal value."""
    lines = ["Timestamp," + ",".join(SENSORS)]
    lines += [t.strftime("%Y-%m-%dT%H:%M:%S.%f") + ",8,120,3,44" for t in rows]
    return ("\n".join(lines) + "\n").encode()


@settings(max_examples=40, deadline=None)
@given(
    frequency=st.sampled_from(sorted(UPLOAD_FREQUENCIES)),
    delay=st.integers(0, 60),
    naming=namings,
    started=st.integers(0, 3600 - 1),
    windows_later=st.integers(0, 2),
    name_offsets=st.lists(
        st.integers(-3 * 3600, 3 * 3600)
        | st.sampled_from([-7200, -3600, -1800, -600, -300, 0, 300, 600, 1800, 3600, 7200]),
        min_size=1,
        max_size=6,
    ),
)
def test_a_run_at_w_plus_d_lists_names_from_s_minus_f_to_e_plus_f(
    frequency: str,
    delay: int,
    naming: InputNaming,
    started: int,
    windows_later: int,
    name_offsets: list[int],
) -> None:
    # GIVEN a scheduler started at some second of an hour
    f = UPLOAD_FREQUENCIES[frequency]
    clock = ManualClock((T0 + timedelta(seconds=started)).timestamp())
    config = SchedulerConfig(
        name="s",
        model_name="pump",
        upload_frequency=frequency,
        delay_offset_min=delay,
        naming=naming,
    )
    inp, out = InMemoryObjectStore(), InMemoryObjectStore()
    sched = Scheduler(config, MODEL, inp, out, InMemoryStateStore(), clock)
    # its windows end on multiples of F (UTC, whatever the names' offset): the first one
    # ending after the start, and a later one W
    first = (started // f + 1) * f
    end = T0 + timedelta(seconds=first + windows_later * f)
    start = end - timedelta(seconds=f)
    # AND files named at times around that window, each holding rows at S and just after
    # it and at E and just after it
    stamps = {end + timedelta(seconds=k) for k in name_offsets}
    for at in stamps:
        step = timedelta(microseconds=1)
        inp.put(name(naming, at), body(start, start + step, end, end + timedelta(seconds=1)))
    selected = {
        at for at in stamps if start - timedelta(seconds=f) <= at <= end + timedelta(seconds=f)
    }
    # WHEN the clock reaches a second before W + D, W has not run
    wake = end + timedelta(minutes=delay)
    clock.advance(wake.timestamp() - clock.now() - 1)
    ran = sched.run_due()
    assert all(e.data_end < end for e in ran)
    # THEN at W + D it runs (W - F, W], scheduled at W + D, reading exactly the names with
    # S - F <= ts <= E + F (§4 Choice 1) and keeping rows S < t <= E (Choice 2)
    clock.advance(1)
    [execution] = [e for e in sched.run_due() if e.data_end == end]
    assert (execution.data_start, execution.scheduled_start) == (start, wake)
    assert execution.input_files == len(selected)
    if not selected:
        assert execution.status == "FAILED"
        assert execution.failed_reason.startswith("Could not find data file for sensor pump")
        return
    assert execution.status == "SUCCESS", execution.failed_reason
    assert execution.result_key == f"output/{start:%Y-%m-%dT%H:%M:%SZ}/results.jsonl"
    docs = [json.loads(x) for x in out.get(execution.result_key).decode().splitlines()]
    times = [pd.Timestamp(d["timestamp"], tz="UTC") for d in docs]
    assert times == [pd.Timestamp(start + timedelta(microseconds=1)), pd.Timestamp(end)]


GOOD = [T0 + timedelta(minutes=m) for m in range(1, 6)]
HEADER = "Timestamp," + ",".join(SENSORS)
READ = {
    "bom_and_crlf": ("\ufeff" + HEADER + "\r\n2026-01-01T00:03:30Z,8,120,3,44\r\n").encode(),
    "header_only": (HEADER + "\n").encode(),
    "row_times_in_mixed_zones": (
        HEADER + "\n2026-01-01T01:03:30+01:00,8,120,3,44\n2026-01-01 00:04:30,8,120,3,44\n"
    ).encode(),
    "non_finite_and_blank_values": (HEADER + "\n2026-01-01T00:03:30,inf,nan,,-Infinity\n").encode(),
    "a_duplicate_timestamp": (
        HEADER + "\n2026-01-01T00:03:30,8,120,3,44\n2026-01-01T00:03:30,8,121,3,44\n"
    ).encode(),
}
REFUSED = {
    "empty": (b"", "not a readable CSV"),
    "a_trailing_comma_on_each_row": (
        (HEADER + "\n2026-01-01T00:03:30,8,120,3,44,\n").encode(),
        "line 2: 6 cells and the header has 5",
    ),
    "not_utf8": (HEADER.encode() + b"\n2026-01-01T00:03:30,8\xe9,120,3,44\n", "utf-8"),
    "utf16": ((HEADER + "\n2026-01-01T00:03:30,8,120,3,44\n").encode("utf-16"), "utf-8"),
    "a_first_line_past_a_mebibyte": (b"Timestamp," + b"a" * (1 << 20) + b"\n", "1 MiB"),
    "timestamps_in_the_second_column": (
        b"flow,Timestamp\n1,2026-01-01T00:03:30\n",
        "expected the timestamp in the first column",
    ),
    "a_sensor_name_the_schema_cannot_hold": (
        b"Timestamp,flow rate\n2026-01-01T00:03:30,1\n",
        "sensor name 'flow rate'",
    ),
}


@pytest.mark.parametrize("case", sorted(READ) + sorted(REFUSED))
def test_a_hostile_file_beside_a_good_one_never_costs_the_good_rows(case: str) -> None:
    # GIVEN the window (00:00, 00:05] with a good file named at E and another at E + F
    clock = ManualClock(T0.timestamp())
    config = SchedulerConfig(name="s", model_name="pump")
    inp, out = InMemoryObjectStore(), InMemoryObjectStore()
    sched = Scheduler(config, MODEL, inp, out, InMemoryStateStore(), clock)
    inp.put("input/pump_20260101000500.csv", body(*GOOD))
    hostile = "input/pump_20260101001000.csv"
    inp.put(hostile, READ[case] if case in READ else REFUSED[case][0])
    # WHEN the window runs
    clock.advance(300)
    [execution] = sched.run_due()
    # THEN the good rows are all scored; a file that cannot be read is named with a
    # one-line reason in the execution, and one that can adds only its own rows
    assert execution.status == "SUCCESS", execution.failed_reason
    assert execution.input_files == 2
    docs = [json.loads(x) for x in out.get(execution.result_key).decode().splitlines()]
    times = {pd.Timestamp(d["timestamp"], tz="UTC") for d in docs}
    assert {pd.Timestamp(t) for t in GOOD} <= times
    if case in READ:
        assert execution.skipped == []
        return
    [skipped] = execution.skipped
    assert skipped["key"] == hostile
    assert REFUSED[case][1] in skipped["reason"] and "\n" not in skipped["reason"], skipped


@settings(max_examples=30, deadline=None)
@given(
    frequency=st.sampled_from(sorted(UPLOAD_FREQUENCIES)),
    off_grid=st.integers(1, 3600 - 1),
)
def test_a_window_run_by_hand_must_end_on_the_schedulers_grid(
    frequency: str, off_grid: int
) -> None:
    # GIVEN a window end that no run of this scheduler has (§3: runs at each multiple of F
    # past the hour), as `schedulers run --window-end` takes it
    f = UPLOAD_FREQUENCIES[frequency]
    end = T0 + timedelta(seconds=off_grid)
    state = InMemoryStateStore()
    config = SchedulerConfig(name="s", model_name="pump", upload_frequency=frequency)
    sched = Scheduler(
        config, MODEL, InMemoryObjectStore(), InMemoryObjectStore(), state, ManualClock(0)
    )
    if off_grid % f == 0:
        assert sched.run_window(end).data_end == end
        return
    # THEN it is refused in one line naming the windows around it, and nothing is recorded
    # (an off-grid DataStartTime folder would overlap the real windows' rows and events)
    with pytest.raises(UserError) as raised:
        sched.run_window(end)
    message = str(raised.value)
    before = T0 + timedelta(seconds=off_grid // f * f)
    assert "\n" not in message and f"{before:%Y-%m-%dT%H:%M:%SZ}" in message, message
    assert list(state.items("executions")) == []


def test_a_failed_run_names_a_file_whose_component_differs_only_in_case() -> None:
    # GIVEN files meant for `pump` but named `Pump` and `PUMP` (§4: the name part must
    # equal a schema ComponentName, case-sensitive), and one in a folder under the prefix
    clock = ManualClock(T0.timestamp())
    config = SchedulerConfig(name="s", model_name="pump")
    inp = InMemoryObjectStore()
    sched = Scheduler(config, MODEL, inp, InMemoryObjectStore(), InMemoryStateStore(), clock)
    near = [
        "input/PUMP_20260101000500.csv",
        "input/Pump_20260101000500.csv",
        "input/pump/pump_20260101000500.csv",
    ]
    for key in near:
        inp.put(key, body(*GOOD))
    clock.advance(300)
    # WHEN the window runs, THEN it is not read (as L4E), and the failure names each one
    [execution] = sched.run_due()
    assert (execution.status, execution.input_files) == ("FAILED", 0)
    assert all(repr(key) in execution.failed_reason for key in near), execution.failed_reason


CELLS = ["1", "0", "-1", "1e308", "-1e308", "1.7e308", "inf", "nan", "", "abc", " 2 ", "TRUE"]
moments = st.integers(-400, 700).map(lambda s: T0 + timedelta(seconds=s))
stamps = st.builds(
    lambda at, form, zone: at.strftime(form) + (zone if form.endswith("%S") else ""),
    moments,
    st.sampled_from(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S", "%m/%d/%Y %H:%M"]),
    st.sampled_from(["", "Z", "+01:00"]),
)


@st.composite
def hostile_files(draw: st.DrawFn) -> bytes:
    columns = draw(st.lists(st.sampled_from([*SENSORS, "extra"]), min_size=1, unique=True))
    rows = draw(
        st.lists(
            st.tuples(
                stamps,
                st.lists(st.sampled_from(CELLS), min_size=len(columns), max_size=len(columns)),
            ),
            max_size=8,
        )
    )
    lines = [",".join(["Timestamp", *columns])] + [",".join([t, *c]) for t, c in rows]
    return ("\n".join(lines) + draw(st.sampled_from(["\n", "\r\n", ""]))).encode()


@settings(max_examples=60, deadline=None)
@given(
    files=st.lists(
        st.tuples(st.sampled_from([-300, 0, 300, 600]), hostile_files()), min_size=1, max_size=3
    )
)
def test_any_window_of_hostile_files_ends_in_an_execution_and_consistent_lines(
    files: list[tuple[int, bytes]],
) -> None:
    # GIVEN files of odd time forms, zones, duplicates, text, blanks and overflowing numbers
    state = InMemoryStateStore()
    inp, out = InMemoryObjectStore(), InMemoryObjectStore()
    config = SchedulerConfig(name="s", model_name="pump")
    sched = Scheduler(config, MODEL, inp, out, state, ManualClock(T0.timestamp()))
    for offset, data in files:
        inp.put(name(config.naming, T0 + timedelta(seconds=300 + offset)), data)
    # WHEN the window runs, THEN it ends in SUCCESS or a FAILED with a user's reason, never
    # an exception or an internal error, and every line keeps §5's rules
    with np.errstate(all="ignore"):
        execution = sched.run_window(T0 + timedelta(seconds=300))
    assert execution.status in ("SUCCESS", "FAILED")
    assert not (execution.failed_reason or "").startswith("Internal error"), execution
    if execution.status == "FAILED":
        assert list(out.list("")) == []
        return
    for line in out.get(execution.result_key).decode().splitlines():
        doc = json.loads(line)
        if doc["prediction_reason"] != "MACHINE_OFF":
            assert doc["prediction"] == int(doc["anomaly_score"] > 0.5), doc
            assert sum(d["value"] for d in doc["diagnostics"]) == pytest.approx(1, abs=1e-4)


@pytest.mark.parametrize(
    ("rate", "frequency", "fits"),
    [
        ("PT10M", "PT15M", False),  # a window would end inside a bin
        ("PT10M", "PT5M", False),  # shorter (§1.5 Choice)
        ("PT30M", "PT1H", True),
        ("PT30M", "PT30M", True),
        ("PT10M", "PT30M", True),
        ("PT15M", "PT1H", True),
        ("PT1M", "PT15M", True),
    ],
)
def test_a_scheduler_s_windows_hold_whole_bins_of_the_models_sampling_rate(
    rate: str, frequency: str, fits: bool
) -> None:
    # GIVEN a model resampled to *rate* (§1.5: bins (t - rate, t] labelled t). A window
    # (S, E] that ends inside a bin would write a line past E, and the next window the
    # same timestamp again from the rest of the bin (§5: lines are the window's)
    model = train(plant_frame(rows=3000, start="2025-12-29"), TrainConfig(sampling_rate=rate))
    config = SchedulerConfig(name="s", model_name="pump", upload_frequency=frequency)
    stores = (InMemoryObjectStore(), InMemoryObjectStore(), InMemoryStateStore())
    if fits:
        Scheduler(config, model, *stores, ManualClock(T0.timestamp()))
        return
    # THEN only frequencies that are whole multiples of the rate are accepted
    with pytest.raises(ConfigError, match=f"DataUploadFrequency {frequency}: .*{rate}"):
        Scheduler(config, model, *stores, ManualClock(T0.timestamp()))


def test_rows_whose_time_cannot_be_read_are_named_in_the_execution_not_dropped_silently() -> None:
    # GIVEN a window file with two good rows and two whose timestamps are in no supported
    # format (§1.2 Choice: dropped and counted)
    clock = ManualClock(T0.timestamp())
    config = SchedulerConfig(name="s", model_name="pump")
    inp, out = InMemoryObjectStore(), InMemoryObjectStore()
    sched = Scheduler(config, MODEL, inp, out, InMemoryStateStore(), clock)
    good = body(*GOOD[:2]).decode()
    inp.put(
        "input/pump_20260101000500.csv",
        (good + "13/45/2026 00:03,8,120,3,44\n2026-01-01,8,120,3,44\n").encode(),
    )
    clock.advance(300)
    # WHEN the window runs, THEN the good rows are scored, and the execution says how many
    # rows of which file were left out and why
    [execution] = sched.run_due()
    assert (execution.status, execution.rows, execution.skipped) == ("SUCCESS", 2, [])
    assert execution.dropped_rows == [
        {
            "key": "input/pump_20260101000500.csv",
            "reason": "2 rows whose timestamp is in no supported format left out",
        }
    ]
    assert execution.to_dict()["dropped_rows"] == execution.dropped_rows


def test_a_window_whose_only_rows_have_unreadable_times_says_so_in_its_failed_reason() -> None:
    # GIVEN the window's file, every row's time written in a form §1.2 does not list
    clock = ManualClock(T0.timestamp())
    config = SchedulerConfig(name="s", model_name="pump")
    inp = InMemoryObjectStore()
    sched = Scheduler(config, MODEL, inp, InMemoryObjectStore(), InMemoryStateStore(), clock)
    header = "Timestamp," + ",".join(SENSORS)
    inp.put("input/pump_20260101000500.csv", f"{header}\n01.01.2026 00:01,8,120,3,44\n".encode())
    clock.advance(300)
    # WHEN the window runs, THEN it fails as L4E's does, and then says why the file gave
    # no row (a user otherwise reads 'Could not find data file' beside the file)
    [execution] = sched.run_due()
    assert execution.status == "FAILED"
    assert execution.failed_reason.startswith("Could not find data file for sensor pump")
    assert execution.failed_reason.endswith(
        ". Rows left out: input/pump_20260101000500.csv: 1 row whose timestamp is in no "
        "supported format left out"
    )


def test_a_window_whose_files_hold_rows_outside_it_only_names_them_in_its_failed_reason() -> None:
    # GIVEN the window's file named in the scheduler's +05:30 (§3: the offset applies to the
    # name only) but its rows stamped in that local time too, so none falls in (S, E]
    clock = ManualClock(T0.timestamp())
    naming = InputNaming(tz_offset="+05:30")
    config = SchedulerConfig(name="s", model_name="pump", naming=naming)
    inp = InMemoryObjectStore()
    sched = Scheduler(config, MODEL, inp, InMemoryObjectStore(), InMemoryStateStore(), clock)
    local = T0 + timedelta(hours=5, minutes=30)
    inp.put(
        "input/pump_20260101053500.csv",
        body(local + timedelta(minutes=1), local + timedelta(minutes=5)),
    )
    clock.advance(300)
    # WHEN the window runs, THEN it fails as L4E's does, and says the file was read and
    # where its rows are (a user otherwise reads 'Could not find data file' beside it)
    [execution] = sched.run_due()
    assert execution.status == "FAILED"
    assert execution.failed_reason.startswith(
        "Could not find data file for sensor pump within expected range of "
        "(2026-01-01T00:00:00Z, 2026-01-01T00:05:00Z]."
    )
    assert execution.failed_reason.endswith(
        ". Read, but no row in that range: input/pump_20260101053500.csv: 2 rows from "
        "2026-01-01T05:31:00Z to 2026-01-01T05:35:00Z (row times are UTC unless they name "
        "a zone)"
    )


@pytest.mark.parametrize("rate", [None, "PT1M"])
@pytest.mark.parametrize("cells", [",,,", "nan,NaN,null,", "inf,abc,-Infinity,1e400"])
def test_a_window_whose_rows_hold_no_reading_fails_and_writes_nothing(
    rate: str | None, cells: str
) -> None:
    """§4 Choice 3: a required component with no row in the window fails the execution and
    nothing is written. Rows whose every cell is blank or no finite number are no data:
    scored, they were lines made up from the model's fill values (or, resampled, a
    SUCCESS with an empty results.jsonl)."""
    # GIVEN the window's file, its rows in the window without a single reading
    model = (
        MODEL
        if rate is None
        else train(plant_frame(rows=1500, start="2025-12-30"), TrainConfig(sampling_rate=rate))
    )
    clock = ManualClock(T0.timestamp())
    config = SchedulerConfig(name="s", model_name="pump")
    inp, out = InMemoryObjectStore(), InMemoryObjectStore()
    sched = Scheduler(config, model, inp, out, InMemoryStateStore(), clock)
    rows = [f"2026-01-01T00:0{m}:00,{cells}" for m in (1, 2, 3)]
    inp.put("input/pump_20260101000500.csv", "\n".join([HEADER, *rows, ""]).encode())
    clock.advance(300)
    # WHEN the window runs, THEN it fails as for a missing file, saying the rows hold no
    # reading, and writes nothing to the output prefix
    [execution] = sched.run_due()
    assert execution.status == "FAILED"
    assert execution.failed_reason.startswith("Could not find data file for sensor pump")
    assert (
        ". Read, but no reading in that range: input/pump_20260101000500.csv: 3 rows from "
        "2026-01-01T00:01:00Z to 2026-01-01T00:03:00Z, every cell blank or no finite number"
    ) in execution.failed_reason
    assert execution.failed_components == ("pump",)
    assert list(out.list("")) == []


@settings(max_examples=40, deadline=None)
@given(
    nanoseconds=st.lists(
        st.integers(-2_000, 2_000) | st.integers(-(10**9), 301 * 10**9),
        min_size=1,
        max_size=8,
    )
)
def test_row_times_finer_than_a_microsecond_give_one_line_per_written_timestamp(
    nanoseconds: list[int],
) -> None:
    """§1.2 Choice: fractions of 1 to 9 digits; §5: one line per timestamp in the window,
    written to the microsecond. A row is at the instant its line names (the fraction cut
    to microseconds), so two rows a few nanoseconds apart are one timestamp (the later
    row wins, as for any duplicate) and a row a few nanoseconds past E is E's, never a
    line that repeats E in the next window's output."""
    # GIVEN rows near the window (00:00, 00:05], some of them nanoseconds apart, in 9-digit
    # fractions, in the file named for the window
    clock = ManualClock(T0.timestamp())
    config = SchedulerConfig(name="s", model_name="pump")
    inp, out = InMemoryObjectStore(), InMemoryObjectStore()
    sched = Scheduler(config, MODEL, inp, out, InMemoryStateStore(), clock)
    end = T0 + timedelta(minutes=5)
    stamps = [pd.Timestamp(end) + pd.Timedelta(nanoseconds=k) for k in nanoseconds]
    stamps += [pd.Timestamp(end) - pd.Timedelta(minutes=2)]  # a row every window has
    text = [f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond:06d}{t.nanosecond:03d}" for t in stamps]
    lines = [HEADER, *(f"{t},8,120,3,44" for t in text)]
    inp.put("input/pump_20260101000500.csv", ("\n".join(lines) + "\n").encode())
    # WHEN the window runs
    clock.advance(300)
    [execution] = sched.run_due()
    # THEN each microsecond of (S, E] that a row falls in is one line, in time order
    assert execution.status == "SUCCESS", execution.failed_reason
    docs = [json.loads(x) for x in out.get(execution.result_key).decode().splitlines()]
    written = [d["timestamp"] for d in docs]
    start = pd.Timestamp(end - timedelta(minutes=5))
    expected = sorted({t.floor("us") for t in stamps if start < t.floor("us") <= end})
    assert written == [t.strftime("%Y-%m-%dT%H:%M:%S.%f") for t in expected]
