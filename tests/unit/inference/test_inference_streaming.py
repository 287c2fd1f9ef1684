"""Streaming scorer: same scores as batch, per-asset state, dedup, late readings, quarantine."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import plant_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryObjectStore
from cloud.inference.episodes import DEFAULT_ALARM
from cloud.inference.model import TrainConfig, train
from cloud.inference.monitor import Monitor
from cloud.inference.results import decode_results
from cloud.inference.streaming import CallbackSink, StreamingScorer, WindowedObjectSink
from edge.clock import ManualClock
from edge.errors import ConfigError, StorageError
from edge.wire import Sample, Telemetry, encode

PLAIN = plant_frame(rows=1500).rename(columns=lambda c: c.split("\\")[1])
MODEL = train(PLAIN, TrainConfig(smoothing=5, difference="auto", difference_above=0.0))
LIVE = plant_frame(rows=60, seed=4, start="2026-02-01").rename(columns=lambda c: c.split("\\")[1])


def message(asset: str, seq: int, rows: pd.DataFrame, sender: str = "gw1") -> Telemetry:
    samples = tuple(
        Sample(int(ts.value // 1_000_000), {k: float(v) for k, v in row.items()})
        for ts, row in rows.iterrows()
    )
    return Telemetry("s1", asset, sender, seq, samples)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=12))
def test_scoring_in_pieces_equals_scoring_at_once(sizes: list[int]) -> None:
    whole = Monitor(MODEL).score(LIVE).result
    got: list[dict] = []
    scorer = StreamingScorer(MODEL, CallbackSink(lambda _a, lines: got.extend(lines)))
    start = 0
    for seq, size in enumerate(sizes):
        if start >= len(LIVE):
            break
        scorer.handle(encode(message("pump-01", seq, LIVE.iloc[start : start + size])))
        start += size
    scores = [line["anomaly_score"] for line in got]
    np.testing.assert_allclose(scores, np.round(whole.score[: len(scores)], 5), atol=1e-5)
    assert [line["prediction"] for line in got] == whole.prediction[: len(got)].tolist()
    assert got[0]["diagnostics"][0]["name"] == "pump-01\\motor_current"


def test_assets_have_separate_state_and_faults_are_attributed() -> None:
    got: dict[str, list[dict]] = {}
    scorer = StreamingScorer(
        MODEL, CallbackSink(lambda a, lines: got.setdefault(a, []).extend(lines))
    )
    faulty = LIVE.copy()
    faulty.iloc[30:, 1] -= 60  # flow drops on pump-02 only
    for i in range(len(LIVE)):
        scorer.handle(encode(message("pump-01", i, LIVE.iloc[i : i + 1])))
        scorer.handle(encode(message("pump-02", i, faulty.iloc[i : i + 1], sender="gw2")))
    assert not any(line["prediction"] for line in got["pump-01"])
    late = got["pump-02"][40]
    assert late["prediction"] == 1
    top = max(late["diagnostics"], key=lambda d: d["value"])
    assert top["name"] == "pump-02\\flow"


def test_duplicates_late_readings_and_bad_payloads() -> None:
    quarantined: list[tuple[bytes, str, str]] = []
    scorer = StreamingScorer(
        MODEL, CallbackSink(lambda *_: None), quarantine=lambda *q: quarantined.append(q)
    )
    first = encode(message("pump-01", 0, LIVE.iloc[5:10]))
    assert len(scorer.handle(first)) == 5
    assert scorer.handle(first) == []  # redelivery of the same sender:seq
    assert scorer.handle(encode(message("pump-01", 1, LIVE.iloc[0:6]))) == []  # all late
    assert scorer.handle(b"{not json") == []
    assert scorer.stats.duplicates == 1 and scorer.stats.late == 6
    assert [q[1] for q in quarantined] == ["bad_json"]


def test_missing_sensor_value_uses_the_previous_reading() -> None:
    scorer = StreamingScorer(MODEL, CallbackSink(lambda *_: None))
    scorer.handle(encode(message("pump-01", 0, LIVE.iloc[:3])))
    gap = Telemetry(
        "s1",
        "pump-01",
        "gw1",
        1,
        (Sample(int(LIVE.index[3].value // 10**6), {"flow": None, "motor_current": 9.0}),),
    )
    [line] = scorer.handle(encode(gap))
    assert 0 <= line["anomaly_score"] < 1


def test_debounced_alarm_needs_consecutive_rows() -> None:
    base = train(PLAIN, TrainConfig(alarm=None))  # no alarm rules: the row-by-row threshold
    got: list[dict] = []
    scorer = StreamingScorer(
        base, CallbackSink(lambda _a, lines: got.extend(lines)), debounce_rows=3
    )
    rows = LIVE.iloc[:10].copy()
    rows.iloc[4, 1] -= 80  # a single spike: never an alarm
    rows.iloc[6:, 1] -= 80  # sustained: an alarm from the third row on
    for i in range(10):
        scorer.handle(encode(message("p", i, rows.iloc[i : i + 1])))
    assert [line["prediction"] for line in got] == [0] * 8 + [1, 1]


def test_windowed_sink_writes_scheduler_layout() -> None:
    store = InMemoryObjectStore()
    sink = WindowedObjectSink(store, "stream/", 300)
    scorer = StreamingScorer(MODEL, sink)
    scorer.handle(encode(message("pump-01", 0, LIVE.iloc[:7])))
    keys = list(store.list("stream/"))
    assert keys == [
        "stream/pump-01/2026-01-31T23:55:00Z/results.jsonl",
        "stream/pump-01/2026-02-01T00:00:00Z/results.jsonl",
        "stream/pump-01/2026-02-01T00:05:00Z/results.jsonl",
    ]
    assert len(decode_results(store.get(keys[1]))) == 5
    with pytest.raises(ValueError):
        StreamingScorer(MODEL, sink, debounce_rows=0)
    raised = DEFAULT_ALARM.episodes.raise_rows
    with pytest.raises(ConfigError, match=f"alarm rules raise after {raised} rows"):
        StreamingScorer(MODEL, sink, debounce_rows=3)


def test_a_future_dated_message_is_refused_and_does_not_blind_the_asset() -> None:
    # GIVEN a scorer on a clock at the live data's time, and one message dated 2199
    clock = ManualClock(LIVE.index[0].timestamp())
    got: list[dict] = []
    refused: list[tuple[bytes, str, str]] = []
    scorer = StreamingScorer(
        MODEL,
        CallbackSink(lambda _a, lines: got.extend(lines)),
        clock=clock,
        quarantine=lambda *q: refused.append(q),
    )
    future_ms = int(datetime(2199, 6, 1, tzinfo=UTC).timestamp() * 1000)
    future = Telemetry("s1", "pump-01", "gw9", 0, (Sample(future_ms, {"flow": 1.0}),))
    assert scorer.handle(encode(future)) == []

    # WHEN the real readings of that asset follow
    for i in range(10):
        scorer.handle(encode(message("pump-01", i, LIVE.iloc[i : i + 1])))
        clock.advance(60)

    # THEN every one is scored (none counted late), and the future one was refused
    assert len(got) == 10 and scorer.stats.late == 0
    assert [r[1] for r in refused] == ["timestamp_out_of_range"]
    assert "from now" in refused[0][2]
    assert scorer.stats.quarantine_reasons == {"timestamp_out_of_range": 1}


def test_the_same_asset_at_two_sites_has_two_states_and_two_result_folders() -> None:
    store = InMemoryObjectStore()
    scorer = StreamingScorer(MODEL, WindowedObjectSink(store, "stream/", 300))
    for i in range(1, 6):
        for site in ("s1", "s2"):
            one = message("pump-01", i, LIVE.iloc[i : i + 1])
            scorer.handle(encode(Telemetry(site, one.asset, f"gw-{site}", i, one.samples)))
    assert scorer.stats.readings == 10 and scorer.stats.late == 0
    keys = list(store.list("stream/"))
    assert keys == [
        "stream/pump-01/2026-02-01T00:00:00Z/results.jsonl",
        "stream/s2/pump-01/2026-02-01T00:00:00Z/results.jsonl",
    ]
    assert decode_results(store.get(keys[0])) == decode_results(store.get(keys[1]))


def test_a_restarted_sink_keeps_the_lines_already_in_the_window() -> None:
    store = InMemoryObjectStore()
    StreamingScorer(MODEL, WindowedObjectSink(store, "stream/", 300)).handle(
        encode(message("pump-01", 0, LIVE.iloc[1:3]))
    )
    StreamingScorer(MODEL, WindowedObjectSink(store, "stream/", 300)).handle(
        encode(message("pump-01", 1, LIVE.iloc[3:5]))
    )
    [key] = list(store.list("stream/"))
    stamps = [line["timestamp"][11:16] for line in decode_results(store.get(key))]
    assert stamps == ["00:01", "00:02", "00:03", "00:04"]


class RefusingSink:
    def __init__(self) -> None:
        self.fail = True
        self.lines: list[dict] = []

    def write(self, _asset: str, lines: list[dict]) -> None:
        if self.fail:
            raise StorageError("results store unavailable")
        self.lines.extend(lines)


def test_a_message_whose_lines_were_not_stored_is_scored_again_when_redelivered() -> None:
    sink = RefusingSink()
    scorer = StreamingScorer(MODEL, sink)
    payload = encode(message("pump-01", 0, LIVE.iloc[:4]))
    with pytest.raises(StorageError):
        scorer.handle(payload)
    sink.fail = False
    assert len(scorer.handle(payload)) == 4  # not a duplicate, not late
    assert len(sink.lines) == 4 and scorer.stats.readings == 4


def test_the_alarm_streams_as_the_whole_series_scores_even_across_a_failed_store() -> None:
    # GIVEN a fault from row 30 on, one reading per message, and a store that refuses once
    faulty = LIVE.copy()
    faulty.iloc[30:, 1] -= 60
    whole = Monitor(MODEL).score(faulty).result.prediction.tolist()
    sink = RefusingSink()
    sink.fail = False
    scorer = StreamingScorer(MODEL, sink)
    for i in range(len(faulty)):
        payload = encode(message("pump-01", i, faulty.iloc[i : i + 1]))
        if i == 36:  # rows above threshold are being counted: no row may count twice
            sink.fail = True
            with pytest.raises(StorageError):
                scorer.handle(payload)
            sink.fail = False
        scorer.handle(payload)
    # THEN the alarm is raised on the same row as when the series is scored at once
    assert [line["prediction"] for line in sink.lines] == whole
    assert whole[:30] == [0] * 30 and 1 in whole[35:]


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_a_timestamp_repeated_in_a_message_is_scored_once_as_the_batcher_merges_it(
    data: st.DataObject,
) -> None:
    # GIVEN live readings split into partial samples, some timestamps given more than once
    # (the same sensors twice, or the sensors spread over several samples), in any order
    rows = LIVE.iloc[:8]
    samples: list[Sample] = []
    for ts, row in rows.iterrows():
        ts_ms = int(ts.value // 1_000_000)
        values = {k: float(v) for k, v in row.items()}
        names = list(values)
        cut = data.draw(st.integers(0, len(names)), label="cut")
        parts = (
            [dict(values)]
            if cut in (0, len(names))
            else [
                {n: values[n] for n in names[:cut]},
                {n: values[n] for n in names[cut:]},
            ]
        )
        if data.draw(st.booleans(), label="repeat"):
            parts.append(dict(values))
        samples.extend(Sample(ts_ms, p) for p in parts)
    order = data.draw(st.permutations(samples), label="order")
    got: list[dict] = []
    scorer = StreamingScorer(MODEL, CallbackSink(lambda _a, lines: got.extend(lines)))

    # WHEN they arrive in one message
    scorer.handle(encode(Telemetry("s1", "pump-01", "gw1", 0, tuple(order))))

    # THEN there is one result line per timestamp, as scoring the merged rows gives
    whole = Monitor(MODEL).score(rows).result
    assert [line["timestamp"] for line in got] == sorted({line["timestamp"] for line in got})
    assert len(got) == len(rows) and scorer.stats.readings == len(rows)
    np.testing.assert_allclose(
        [line["anomaly_score"] for line in got], np.round(whole.score, 5), atol=1e-5
    )


def test_a_reused_message_id_with_new_readings_is_scored_not_taken_for_a_redelivery() -> None:
    # GIVEN a device whose readings were scored, then whose queue was reset: it numbers its
    # messages from 0 again; and a gateway that numbered two assets' messages alike
    got: dict[str, list[dict]] = {}
    scorer = StreamingScorer(
        MODEL, CallbackSink(lambda a, lines: got.setdefault(a, []).extend(lines))
    )
    for i in range(5):
        scorer.handle(encode(message("pump-01", i, LIVE.iloc[i : i + 1])))
    # WHEN it sends new readings under ids it used before, and a redelivery
    for i in range(5):
        scorer.handle(encode(message("pump-01", i, LIVE.iloc[10 + i : 11 + i])))
    scorer.handle(encode(message("pump-02", 0, LIVE.iloc[0:3])))
    scorer.handle(encode(message("pump-02", 0, LIVE.iloc[0:3])))  # a real redelivery

    # THEN every new reading is scored, and only the redelivery counts as a duplicate
    assert len(got["pump-01"]) == 10 and len(got["pump-02"]) == 3
    assert scorer.stats.duplicates == 1 and scorer.stats.late == 0


class _FailingOnce:
    """A store that fails one write to keys holding *marker*: after writing half the
    body when it appends (a torn append, as a crash or a full disk leaves it)."""

    def __init__(self, inner: object, marker: str) -> None:
        self.inner, self.marker, self.armed = inner, marker, False

    def put(self, key: str, body: bytes) -> None:
        self._trip(key)
        self.inner.put(key, body)  # type: ignore[attr-defined]

    def get(self, key: str) -> bytes:
        return self.inner.get(key)  # type: ignore[attr-defined]

    def list(self, prefix: str = "") -> object:
        return self.inner.list(prefix)  # type: ignore[attr-defined]

    def delete(self, key: str) -> None:
        self.inner.delete(key)  # type: ignore[attr-defined]

    def _trip(self, key: str, torn: bytes = b"") -> None:
        if self.armed and self.marker in key:
            self.armed = False
            if torn:
                self.inner.append(key, torn)  # type: ignore[attr-defined]
            raise StorageError(f"{key}: store unavailable")


class _AppendingFailingOnce(_FailingOnce):
    def append(self, key: str, body: bytes) -> None:
        self._trip(key, body[: len(body) // 2])
        self.inner.append(key, body)  # type: ignore[attr-defined]


@pytest.mark.parametrize("appends", [False, True], ids=["rewrites", "appends"])
def test_a_window_write_that_failed_leaves_no_line_twice_once_redelivered(
    tmp_path: Path, appends: bool
) -> None:
    from cloud.adapters.local import FsObjectStore

    # GIVEN a sink whose store fails once, on the second window of a message spanning two
    # (rewrites), or half-way through appending to the window (appends)
    if appends:
        store = _AppendingFailingOnce(FsObjectStore(tmp_path), "T00:05:00Z")
    else:
        store = _FailingOnce(InMemoryObjectStore(), "T00:10:00Z")
    scorer = StreamingScorer(MODEL, WindowedObjectSink(store, "stream/", 300))
    scorer.handle(encode(message("pump-01", 0, LIVE.iloc[1:3])))
    scorer.handle(encode(message("pump-01", 1, LIVE.iloc[5:7])))  # opens the 00:05 window
    payload = encode(message("pump-01", 2, LIVE.iloc[7:12]))  # 00:07 ... 00:11
    store.armed = True

    # WHEN its message fails, then is delivered again
    with pytest.raises(StorageError):
        scorer.handle(payload)
    assert len(scorer.handle(payload)) == 5

    # THEN every window holds each reading once, every line whole, in time order
    stamps = []
    for key in sorted(store.list("stream/")):
        stamps += [line["timestamp"][11:16] for line in decode_results(store.get(key))]
    assert stamps == ["00:01", "00:02", "00:05", "00:06", *[f"00:{m:02d}" for m in range(7, 12)]]


def test_a_reading_with_none_of_the_models_sensors_is_skipped_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The scheduler scores no file that lacks the model's sensors (the component fails,
    with the reason); a streamed reading that carries none of them is likewise not scored
    as though it were a normal row of training means: it is skipped, counted and logged,
    and does not make the asset's later readings late."""
    got: list[dict] = []
    scorer = StreamingScorer(MODEL, CallbackSink(lambda _a, lines: got.extend(lines)))
    ts = [int(t.value // 1_000_000) for t in LIVE.index[:4]]
    real = {k: float(v) for k, v in LIVE.iloc[0].items()}
    foreign = Telemetry(
        "s1",
        "pump-01",
        "gw1",
        0,
        (Sample(ts[1], {"vibration_x": 1.0}), Sample(ts[2], {"bearing_temp": None})),
    )
    with caplog.at_level("WARNING", logger="cloud.inference.streaming"):
        assert scorer.handle(encode(foreign)) == []
    assert got == [] and scorer.stats.readings == 0
    assert scorer.stats.no_model_sensors == 2
    assert any("none of the model's sensors" in r.getMessage() for r in caplog.records)
    # an earlier reading of the model's sensors is not late behind the skipped ones
    mixed = Telemetry(
        "s1", "pump-01", "gw1", 1, (Sample(ts[0], real), Sample(ts[3], {"vibration_x": 2.0}))
    )
    lines = scorer.handle(encode(mixed))
    assert [line["timestamp"][:19] for line in lines] == [LIVE.index[0].isoformat()[:19]]
    assert scorer.stats.readings == 1 and scorer.stats.late == 0
    assert scorer.stats.no_model_sensors == 3
