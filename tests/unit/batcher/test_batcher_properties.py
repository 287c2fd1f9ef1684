"""Whatever the arrival order, redeliveries and flush timing: each reading lands once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryObjectStore
from cloud.batcher import Batcher, BatcherConfig
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


@settings(max_examples=60, deadline=None)
@given(deliveries())
def test_each_reading_is_written_exactly_once(case: tuple) -> None:
    messages, sequence, advances = case
    clock = ManualClock(T0)
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(grace_s=10), clock)
    for index, advance in zip(sequence, advances, strict=True):
        m = messages[index]
        batcher.accept(m.topic, wire.encode(m))
        clock.advance(advance)
        batcher.flush_due()
    batcher.flush_all()

    rows: list[tuple[str, str]] = []
    for key in store.list("input/"):
        lines = store.get(key).decode().splitlines()
        assert lines[0] == "Timestamp,x,y"
        rows.extend((line.split(",")[0], line) for line in lines[1:])
    stamps = [stamp for stamp, _ in rows]
    assert len(stamps) == len(set(stamps)) == sum(len(m.samples) for m in messages)
    assert batcher.stats["duplicates"] == len(sequence) - len(messages)
    assert batcher.stats["quarantined"] == 0
