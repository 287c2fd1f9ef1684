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
