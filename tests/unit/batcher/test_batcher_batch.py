"""A batch of messages is stored in one spool transaction when its block ends: a message
given twice in it is kept once, and a block that fails stores none of its messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.adapters.local import FsObjectStore, InMemoryObjectStore
from cloud.batcher import Batcher, BatcherConfig
from edge import wire
from edge.clock import ManualClock
from edge.errors import StorageError

T0 = 1652443800


def _message(seq: int) -> tuple[str, bytes]:
    m = wire.Telemetry(
        "s1", "pump", "dev", seq, (wire.Sample(T0 * 1000 + 1000 + seq * 100, {"x": seq + 0.5}),)
    )
    return m.topic, wire.encode(m)


def _batcher(store: InMemoryObjectStore, spool: Path, shared: bool = False) -> Batcher:
    return Batcher(store, BatcherConfig(), ManualClock(T0), str(spool), shared_spool=shared)


@pytest.mark.parametrize("shared", [False, True])
def test_a_batch_keeps_a_repeated_message_once_and_survives_a_reopen(
    tmp_path: Path, shared: bool
) -> None:
    store = InMemoryObjectStore()
    batcher = _batcher(store, tmp_path / "spool.db", shared)
    with batcher.batch():
        for seq in (0, 1, 1, 2):
            batcher.accept(*_message(seq))
        assert batcher.stats["accepted"] == 0  # stored when the block ends
    assert batcher.stats["accepted"] == 3
    assert batcher.stats["duplicates"] == 1
    batcher.spool.close()

    again = _batcher(store, tmp_path / "spool.db", shared)
    again.accept(*_message(2))  # a redelivery after a restart
    assert again.stats["duplicates"] == 1
    again.flush_all()
    [key] = list(store.list("input/"))
    assert store.get(key).decode().splitlines()[1:] == [
        "2022-05-13T12:10:01.000000,0.5",
        "2022-05-13T12:10:01.100000,1.5",
        "2022-05-13T12:10:01.200000,2.5",
    ]


def test_a_failed_block_stores_nothing(tmp_path: Path) -> None:
    store = InMemoryObjectStore()
    batcher = _batcher(store, tmp_path / "spool.db")
    with pytest.raises(StorageError), batcher.batch():
        batcher.accept(*_message(0))
        raise StorageError("the commit did not happen")
    assert batcher.spool.pending_windows() == []
    batcher.accept(*_message(0))  # redelivered: not a duplicate of what was never stored
    assert batcher.stats["accepted"] == 1
    assert batcher.stats["duplicates"] == 0


def test_put_many_stores_each_file_and_reports_each_failure(tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path / "objects", fsync=True)
    errors = store.put_many([("a/1.csv", b"one"), ("../escape", b"no"), ("b/2.csv", b"two")])
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], StorageError)
    assert store.get("a/1.csv") == b"one" and store.get("b/2.csv") == b"two"
    assert not [p for p in (tmp_path / "objects").rglob(".tmp-*")]


def _sent(seq: int, offsets_s: list[int], value: float) -> tuple[str, bytes]:
    samples = tuple(wire.Sample((T0 + s) * 1000, {"x": value}) for s in offsets_s)
    m = wire.Telemetry("s1", "pump", "dev", seq, samples)
    return m.topic, wire.encode(m)


@pytest.mark.parametrize("shared", [False, True])
def test_a_batch_counts_as_the_same_messages_taken_one_by_one(tmp_path: Path, shared: bool) -> None:
    """Late readings (a written window, alone or beside an open one in the same message),
    duplicates and id conflicts are counted the same with or without a batch."""
    sequence = [
        _sent(1, [10, 20], 1.5),  # the written window (12:10, 12:15]
        _sent(2, [400], 2.5),  # an open window
        _sent(3, [250, 350], 3.5),  # both: 1 late reading, 1 not
        _sent(2, [400], 2.5),  # a duplicate
        _sent(2, [401], 9.5),  # an id conflict, open window
        _sent(4, [30, 31, 32], 4.5),  # late again
    ]
    stats = []
    for batched in (False, True):
        store = InMemoryObjectStore()
        clock = ManualClock(T0)
        batcher = Batcher(
            store,
            BatcherConfig(grace_s=0),
            clock,
            str(tmp_path / f"spool-{batched}.db"),
            shared_spool=shared,
        )
        batcher.accept(*_sent(0, [5], 0.5))
        clock.set(T0 + 300)
        assert batcher.flush_due() == ["input/pump_20220513121500.csv"]
        if batched:
            with batcher.batch():
                for topic, payload in sequence:
                    batcher.accept(topic, payload)
        else:
            for topic, payload in sequence:
                batcher.accept(topic, payload)
        stats.append(batcher.stats)
        batcher.close()
    unbatched, batched_stats = stats
    assert batched_stats == unbatched
    assert unbatched["late"] == 2 + 1 + 3
    assert unbatched["duplicates"] == 1
    assert unbatched["id_conflicts"] == 1
    assert unbatched["accepted"] == 1 + 5
    assert unbatched["readings"] == 1 + 2 + 1 + 2 + 1 + 3
