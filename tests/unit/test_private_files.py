"""Private by default: under a world-readable umask, what plantwatch creates is 0700/0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.adapters.local import FsObjectStore, OutboxNotifier, SqliteStateStore
from cloud.batcher import Spool
from cloud.ports import Notification
from cloud.runtime.layout import DataLayout
from cloud.shadow.store import ShadowStore
from edge.buffer import SqliteBuffer
from edge.clock import ManualClock
from edge.files import private_dir, private_file, write_private
from edge.wire import Sample


@pytest.fixture(autouse=True)
def world_readable_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_local_store_creates_private_directories_and_files(tmp_path: Path) -> None:
    # GIVEN a data directory that does not exist yet
    layout = DataLayout.at(tmp_path / "data")
    bucket = FsObjectStore(layout.bucket)
    bucket.put("input/pump_20260101000500.csv", b"Timestamp,flow\n")
    state = SqliteStateStore(layout.state_db)
    state.put("ns", "k", {"v": 1})
    spool = Spool(str(layout.spool_db))
    shadows = ShadowStore(layout.shadow_db)
    queue = SqliteBuffer(layout.edge_dir / "queue.db", ManualClock())
    queue.put("pump", [Sample(1_700_000_000_000, {"flow": 1.0})])
    OutboxNotifier(layout.alerts).send(Notification("email", "ops", "s", "b"))
    layout.write_runtime({"broker": "mqtt://127.0.0.1:1883"})

    # THEN no directory or file under it is open to the group or to others
    entries = [layout.root, *layout.root.rglob("*")]
    assert {p.name for p in entries} >= {
        "state.db",
        "state.db-wal",
        "batcher-spool.db",
        "shadows.db",
        "queue.db",
        "alerts.jsonl",
        "runtime.json",
        "pump_20260101000500.csv",
    }
    loose = {str(p.relative_to(tmp_path)): oct(mode(p)) for p in entries if mode(p) & 0o077}
    assert loose == {}
    assert mode(layout.root) == 0o700 and mode(layout.state_db) == 0o600
    for closer in (state, spool, shadows, queue):
        closer.close()


def test_existing_directories_keep_their_mode_and_our_files_are_tightened(
    tmp_path: Path,
) -> None:
    mine = tmp_path / "home"
    mine.mkdir(mode=0o755)
    os.chmod(mine, 0o755)
    private_dir(mine / "a" / "b")
    assert mode(mine) == 0o755
    assert mode(mine / "a") == 0o700 and mode(mine / "a" / "b") == 0o700
    loose = mine / "state.db"
    loose.write_bytes(b"")
    os.chmod(loose, 0o644)
    private_file(loose)
    assert mode(loose) == 0o600
    write_private(mine / "runtime.json", b"{}")
    assert mode(mine / "runtime.json") == 0o600
    assert sorted(p.name for p in mine.iterdir()) == ["a", "runtime.json", "state.db"]
