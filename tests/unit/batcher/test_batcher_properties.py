"""Whatever the arrival order, redeliveries and flush timing: each reading lands once."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryObjectStore, InMemoryStateStore
from cloud.batcher import Batcher, BatcherConfig
from cloud.inference.model import train
from cloud.inference.scheduler import Scheduler, SchedulerConfig
from cloud.l4e.naming import UPLOAD_FREQUENCIES, InputNaming, window_end
from edge import wire
from edge.clock import ManualClock

T0 = 1652443800


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[wire.Telemetry], list[int], list[float]]:
    offsets = draw(st.lists(st.integers(1, 900_000), min_size=1, max_size=60, unique=True))
    per_message = draw(st.integers(1, 5))
    samples = [
        wire.Sample(T0 * 1000 + o, {"x": o % 97, "y": None if o % 5 else 1.5}) for o in offsets
    ]
    messages = wire.batch_samples("s1", "pump", "dev", 0, samples, per_message)
    order = draw(st.permutations(list(range(len(messages)))))
    redelivered = draw(st.lists(st.sampled_from(range(len(messages))), max_size=10))
    sequence = list(order) + redelivered
    sequence = draw(st.permutations(sequence))
    advances = draw(st.lists(st.floats(0, 400), min_size=len(sequence), max_size=len(sequence)))
    return messages, sequence, advances


def _deliver(
    case: tuple, store: InMemoryObjectStore, config: BatcherConfig, clock: ManualClock
) -> Batcher:
    """Each message of *case* in its order, the clock advanced and due windows flushed
    after each, then everything flushed."""
    messages, sequence, advances = case
    batcher = Batcher(store, config, clock)
    for index, advance in zip(sequence, advances, strict=True):
        m = messages[index]
        batcher.accept(m.topic, wire.encode(m))
        clock.advance(advance)
        batcher.flush_due()
    batcher.flush_all()
    return batcher


@settings(max_examples=60, deadline=None)
@given(deliveries())
def test_each_reading_is_written_exactly_once(case: tuple) -> None:
    messages, sequence, _ = case
    store = InMemoryObjectStore()
    batcher = _deliver(case, store, BatcherConfig(grace_s=10), ManualClock(T0))

    rows: list[tuple[str, str]] = []
    for key in store.list("input/"):
        lines = store.get(key).decode().splitlines()
        assert lines[0] == "Timestamp,x,y"
        rows.extend((line.split(",")[0], line) for line in lines[1:])
    stamps = [stamp for stamp, _ in rows]
    assert len(stamps) == len(set(stamps)) == sum(len(m.samples) for m in messages)
    assert batcher.stats["duplicates"] == len(sequence) - len(messages)
    assert batcher.stats["quarantined"] == 0


FREQUENCIES = sorted(UPLOAD_FREQUENCIES.values())
TEMPLATE = train(
    pd.DataFrame(
        {"x": np.arange(200.0) % 97, "y": np.linspace(0, 3, 200) ** 2},
        index=pd.date_range("2022-01-01", periods=200, freq="60s", tz="UTC"),
    )
)
"""Any model on the batcher's sensors: the scheduler only needs one to be built."""


@settings(max_examples=40, deadline=None)
@given(
    deliveries(),
    st.sampled_from(FREQUENCIES),
    st.builds(
        InputNaming,
        delimiter=st.sampled_from(["_", "-", " ", ""]),
        timestamp_format=st.sampled_from(["yyyyMMddHHmmss", "yyyy-MM-dd-HH-mm-ss", "EPOCH"]),
        tz_offset=st.sampled_from(["+00:00", "+05:30", "-08:00", "-00:00", "+14:00"]),
    ),
)
def test_every_reading_is_read_by_the_run_of_its_own_window(
    case: tuple, frequency_s: int, naming: InputNaming
) -> None:
    # GIVEN readings delivered in any order, late or redelivered, to a batcher writing
    # for a scheduler with this frequency and naming (l4e-contracts §3-§4)
    messages = case[0]
    clock = ManualClock(T0)
    store = InMemoryObjectStore()
    config = BatcherConfig(grace_s=10, upload_frequency_s=frequency_s, naming=naming)
    _deliver(case, store, config, clock)
    # WHEN the scheduler reads each window (E - F, E] by the §4 listing rule
    frequency = next(k for k, v in UPLOAD_FREQUENCIES.items() if v == frequency_s)
    scheduler = Scheduler(
        SchedulerConfig(name="s", model_name="m", upload_frequency=frequency, naming=naming),
        TEMPLATE,
        store,
        InMemoryObjectStore(),
        InMemoryStateStore(),
        clock,
    )
    stamps = [s.ts_ms for m in messages for s in m.samples]
    first = window_end(min(stamps) / 1000, frequency_s)
    last = window_end(max(stamps) / 1000, frequency_s)
    seen: list[int] = []
    for end in np.arange(first, last + frequency_s, frequency_s):
        start = datetime.fromtimestamp(end - frequency_s, UTC)
        frames = scheduler.read_window(start, datetime.fromtimestamp(end, UTC))
        seen += [t.value // 1_000_000 for frame in frames.values() for t in frame.index]
    # THEN every reading is read by exactly one window's run: its own
    assert sorted(seen) == sorted(stamps)
