"""The queue's folder read-only at start (an SD card remounted ro after errors): a clear
refusal naming the file, for the queue kept there and for a new one.

Needs a real read-only file system (root's chmod bypass makes a mode bit useless), made
with a read-only bind mount; skipped where the test cannot mount. The kernel will not
remount read-only while the queue is open for writing, so going read-only mid-run is not
simulated here."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.buffer import SqliteBuffer
from edge.clock import ManualClock
from edge.errors import StorageError
from edge.wire import Sample

T = 1_700_000_000_000


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, timeout=10).returncode == 0


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[tuple[Path, object]]:
    here = tmp_path / "queue"
    here.mkdir()
    if os.geteuid() != 0 or not _mount("--bind", str(here), str(here)):
        pytest.skip("needs root and mount to make a read-only file system")

    def read_only() -> None:
        assert _mount("-o", "remount,bind,ro", str(here))

    try:
        yield here, read_only
    finally:
        subprocess.run(["umount", str(here)], capture_output=True, timeout=10)


def test_a_read_only_folder_refuses_the_queue_at_start_with_one_clear_error(
    folder: tuple[Path, object],
) -> None:
    here, read_only = folder
    buf = SqliteBuffer(here / "q.db", ManualClock())
    buf.put("a1", [Sample(T, {"x": 1.0})])
    buf.close()
    read_only()  # type: ignore[operator]
    for name in ("q.db", "new.db"):
        with pytest.raises(StorageError, match=r"cannot open .*Read-only file system"):
            SqliteBuffer(here / name, ManualClock())
