"""A window's input file holds at most L4E's 3,000 sensors (l4e-contracts §1.4: a dataset
has at most 3,000): a message with more distinct sensors is quarantined whole as
``too_many_sensors``; messages that together would push one window's file past the limit
keep their first-come sensors in the file and the readings of the messages that would add
more go to quarantine, also ``too_many_sensors``. Nothing accepted is lost: every reading is
in a file or in the quarantine, and other messages' readings are written as before."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud import wire_decoder
from cloud.adapters.local import InMemoryObjectStore
from cloud.batcher import Batcher, BatcherConfig
from edge import wire
from edge.clock import ManualClock
from edge.errors import ConfigError, StorageError

T0 = 1652443800  # 2022-05-13T12:10:00Z, a window boundary for PT5M
FILE = "input/pump_20220513121500.csv"


def msg(seq: int, ts: float, values: dict[str, float | None]) -> wire.Telemetry:
    return wire.Telemetry("s1", "pump", "dev", seq, (wire.Sample(int(ts * 1000), values),))


def quarantined(store: InMemoryObjectStore, reason: str) -> list[dict]:
    return [json.loads(store.get(k)) for k in store.list(f"quarantine/{reason}/")]


def header(store: InMemoryObjectStore, key: str = FILE) -> list[str]:
    return next(csv.reader(io.StringIO(store.get(key).decode())))


def set_aside_cells(store: InMemoryObjectStore) -> int:
    """Readings in the ``too_many_sensors`` quarantine records, whichever shape each has."""
    cells = 0
    for record in quarantined(store, "too_many_sensors"):
        body = json.loads(record["payload"])
        if "chunks" in body:
            cells += sum(len(v) for c in body["chunks"] for _, v in c["samples"])
        else:
            cells += sum(len(s["values"]) for s in body["samples"])
    return cells


@pytest.mark.parametrize("decode", [wire.decode, wire_decoder.decode_rows], ids=["wire", "fast"])
def test_a_message_with_more_than_3000_sensors_is_quarantined_whole(decode) -> None:
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(), ManualClock(T0 + 60), decode=decode)
    hostile = msg(0, T0 + 10, {f"s{i}": 1.0 for i in range(3001)})
    batcher.accept(hostile.topic, wire.encode(hostile))
    fine = msg(1, T0 + 20, {"flow": 2.5})
    batcher.accept(fine.topic, wire.encode(fine))
    assert batcher.flush_all() == [FILE]
    assert header(store) == ["Timestamp", "flow"]
    (record,) = quarantined(store, "too_many_sensors")
    assert "3001 sensors" in record["error"] and "3,000" in record["error"]
    assert json.loads(record["payload"])["seq"] == 0  # kept whole, replayable
    assert batcher.stats["readings"] == 1


def test_3000_sensors_in_one_message_are_taken() -> None:
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(), ManualClock(T0 + 60))
    full = msg(0, T0 + 10, {f"s{i}": 1.0 for i in range(3000)})
    batcher.accept(full.topic, wire.encode(full))
    assert batcher.flush_all() == [FILE]
    assert len(header(store)) == 3001
    assert batcher.stats["quarantined"] == 0


def test_messages_that_would_push_a_window_past_3000_sensors_are_set_aside() -> None:
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(), ManualClock(T0 + 60))
    for seq in range(5):  # 1,000 new names each: the fourth and fifth do not fit
        names = {f"m{seq}_{i}": float(seq) for i in range(1000)}
        message = msg(seq, T0 + 10 + seq, names)
        batcher.accept(message.topic, wire.encode(message))
    usual = msg(9, T0 + 100, {"m0_0": 7.0, "m1_5": 8.0})  # sensors already in the file
    batcher.accept(usual.topic, wire.encode(usual))
    assert batcher.flush_all() == [FILE]
    columns = header(store)[1:]
    assert len(columns) == 3000
    assert {c.split("_")[0] for c in columns} == {"m0", "m1", "m2"}
    rows = list(csv.reader(io.StringIO(store.get(FILE).decode())))
    assert len(rows) == 1 + 4  # three first messages and the usual one
    (record,) = quarantined(store, "too_many_sensors")
    assert "3,000" in record["error"] and "pump" in record["error"]
    kept = json.loads(record["payload"])
    assert [c["msg_id"] for c in kept["chunks"]] == [
        "dev:00000000000000000003",
        "dev:00000000000000000004",
    ]
    assert sum(len(ts_values[1]) for c in kept["chunks"] for ts_values in c["samples"]) == 2000
    assert batcher.stats["quarantined_by_reason"] == {"too_many_sensors": 1}


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from([f"x{i}" for i in range(12)]), st.just(1.5), min_size=1),
        min_size=1,
        max_size=8,
    ),
    st.integers(1, 6),
)
def test_every_reading_is_in_the_file_or_in_quarantine(
    messages: list[dict[str, float]], limit: int
) -> None:
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(max_sensors=limit), ManualClock(T0 + 60))
    for seq, values in enumerate(messages):
        message = msg(seq, T0 + 1 + seq, values)
        batcher.accept(message.topic, wire.encode(message))
    batcher.flush_all()
    cells = 0
    if FILE in store.list("input/"):
        rows = list(csv.reader(io.StringIO(store.get(FILE).decode())))
        assert len(rows[0]) - 1 <= limit
        cells = sum(1 for row in rows[1:] for value in row[1:] if value)
    cells += set_aside_cells(store)
    assert cells == sum(len(values) for values in messages)


def test_the_limit_is_l4es() -> None:
    assert BatcherConfig().max_sensors == 3000
    for bad in (0, 3001):
        with pytest.raises(ConfigError, match="max_sensors"):
            BatcherConfig(max_sensors=bad)


class _QuarantineDown(InMemoryObjectStore):
    """A store whose quarantine puts fail while *down* is set."""

    down = True

    def put(self, key: str, body: bytes) -> None:
        if self.down and key.startswith("quarantine/too_many_sensors/"):
            raise StorageError("quarantine unavailable")
        super().put(key, body)


def test_a_window_whose_excess_cannot_be_set_aside_stays_pending_and_is_retried() -> None:
    store = _QuarantineDown()
    batcher = Batcher(store, BatcherConfig(max_sensors=2), ManualClock(T0 + 60))
    for seq, values in enumerate([{"a": 1.0, "b": 2.0}, {"c": 3.0}]):
        message = msg(seq, T0 + 10 + seq, values)
        batcher.accept(message.topic, wire.encode(message))
    assert batcher.flush_all() == []  # the excess has nowhere to go: nothing forgotten
    assert batcher.stats["pending_windows"] == 1 and batcher.stats["flush_errors"] == 1
    store.down = False
    assert batcher.flush_all() == [FILE]
    assert header(store) == ["Timestamp", "a", "b"]
    (record,) = quarantined(store, "too_many_sensors")
    assert json.loads(record["payload"])["chunks"][0]["samples"] == [[(T0 + 11) * 1000, {"c": 3}]]
    assert batcher.stats["pending_windows"] == 0


# -- late files: l4e-contracts §1.4 limits sensors per dataset, not per file ---------------
# The scheduler merges a component's files of one window (§4 Choice 2), so the window's first
# file and its late files together are what L4E's "at most 3,000 sensors per dataset" bounds.

LATE_1 = "input/pump_20220513121459.csv"  # E - 1 s: the window's first late file


def _spools(store: InMemoryObjectStore) -> dict[str, object]:
    from cloud.batcher.store_spool import ObjectStoreSpool

    return {"sqlite": None, "object store": ObjectStoreSpool(store)}


def _send(batcher: Batcher, *messages: wire.Telemetry) -> None:
    """Accept *messages*; the object-store spool (the Lambda's) keeps them at its commit."""
    from cloud.batcher.store_spool import ObjectStoreSpool

    for message in messages:
        batcher.accept(message.topic, wire.encode(message))
    if isinstance(batcher.spool, ObjectStoreSpool):
        batcher.spool.commit()


def _columns(store: InMemoryObjectStore, keys: list[str]) -> set[str]:
    return {name for key in keys for name in header(store, key)[1:]}


@pytest.mark.parametrize("spool", ["sqlite", "object store"])
def test_late_files_cannot_take_a_window_past_3000_sensors_together(spool: str) -> None:
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(), ManualClock(T0 + 60), spool=_spools(store)[spool])  # type: ignore[arg-type]
    _send(batcher, msg(0, T0 + 10, {f"a{i}": 1.0 for i in range(2000)}))
    assert batcher.flush_all() == [FILE]
    # a late message that brings the window to exactly 3,000 is written
    _send(batcher, msg(1, T0 + 20, {f"b{i}": 2.0 for i in range(1000)}))
    assert batcher.flush_all() == [LATE_1]
    # one that would add a 3,001st sensor is set aside; one with known sensors is written
    _send(batcher, msg(2, T0 + 30, {"a0": 3.0, "c0": 3.0}), msg(3, T0 + 40, {"a1": 4.0, "b1": 4.0}))
    [late_2] = batcher.flush_all()
    files = sorted(store.list("input/"))
    assert files == sorted([FILE, LATE_1, late_2])
    assert len(_columns(store, files)) == 3000
    assert header(store, late_2) == ["Timestamp", "a1", "b1"]
    (record,) = quarantined(store, "too_many_sensors")
    assert "late files" in record["error"] and "3,000" in record["error"]
    assert [c["msg_id"] for c in json.loads(record["payload"])["chunks"]] == [
        "dev:00000000000000000002"
    ]


@pytest.mark.parametrize("spool", ["sqlite", "object store"])
def test_a_late_flush_whose_messages_all_go_past_the_limit_writes_no_file(spool: str) -> None:
    """No header-only file (the scheduler would skip it as having no sensor column)."""
    store = InMemoryObjectStore()
    batcher = Batcher(
        store, BatcherConfig(max_sensors=2), ManualClock(T0 + 60), spool=_spools(store)[spool]
    )  # type: ignore[arg-type]
    _send(batcher, msg(0, T0 + 10, {"a": 1.0, "b": 1.0}))
    assert batcher.flush_all() == [FILE]
    _send(batcher, msg(1, T0 + 20, {"c": 2.0}))
    assert batcher.flush_all() == []
    assert sorted(store.list("input/")) == [FILE]
    assert batcher.stats["pending_windows"] == 0  # set aside, not left to block the window
    assert batcher.stats["quarantined_by_reason"] == {"too_many_sensors": 1}
    # the next late readings with known sensors still get the next late file name
    _send(batcher, msg(2, T0 + 30, {"a": 5.0}))
    assert batcher.flush_all() == [LATE_1]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.lists(
            st.dictionaries(
                st.sampled_from([f"x{i}" for i in range(10)]), st.just(1.5), min_size=1
            ),
            min_size=1,
            max_size=3,
        ),
        min_size=1,
        max_size=5,
    ),
    st.integers(1, 5),
)
def test_a_windows_files_together_stay_within_the_limit_and_lose_no_reading(
    flushes: list[list[dict[str, float]]], limit: int
) -> None:
    """Each inner list is accepted, then flushed: the first flush writes the window's file,
    each later one a late file."""
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(max_sensors=limit), ManualClock(T0 + 60))
    seq, given_cells = 0, 0
    for messages in flushes:
        for values in messages:
            message = msg(seq, T0 + 1 + seq, values)
            seq += 1
            given_cells += len(values)
            batcher.accept(message.topic, wire.encode(message))
        batcher.flush_all()
    files = sorted(store.list("input/"))
    assert len(_columns(store, files)) <= limit
    cells = 0
    for key in files:
        rows = list(csv.reader(io.StringIO(store.get(key).decode())))
        assert len(rows) > 1  # no header-only file
        cells += sum(1 for row in rows[1:] for value in row[1:] if value)
    cells += set_aside_cells(store)
    assert cells == given_cells
