"""A window's files are written without the spool's lock: the rules worker's commits go on
meanwhile, and what they add to that window stays pending for a late file; the archive
rows the writer queues commit with the window, or not at all."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cloud.batcher.spool import Chunk, Spool, WindowJob

WINDOW = ("pump-1", 300)


def _add(spool: Spool, seq: int) -> str:
    body = f"Timestamp,a\n2000-01-01T00:0{seq}:00.000000,{seq}"
    return spool.add(
        f"s/pump-1/e:{seq}", f"d{seq}", seq, [Chunk(*WINDOW, f"e:{seq}", [], body=body)]
    )


def test_an_add_during_the_write_is_not_blocked_and_stays_pending(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "spool.db"))
    _add(spool, 1)
    during: list[str] = []

    def write(jobs: list[WindowJob]) -> list[tuple[str | None, int]]:
        worker = threading.Thread(target=lambda: during.append(_add(spool, 2)))
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "the add waited for the window's write"
        return [("key-0", 0) for _ in jobs]

    spool.write_windows([WINDOW], write)
    assert during == ["added"]
    assert spool.is_flushed(*WINDOW)
    assert spool.pending_windows() == [WINDOW]
    seen: list[WindowJob] = []

    def write_late(jobs: list[WindowJob]) -> list[tuple[str | None, int]]:
        seen.extend(jobs)
        return [("key-1", 1) for _ in jobs]

    spool.write_windows([WINDOW], write_late)
    assert [c.msg_id for job in seen for c in job.chunks] == ["e:2"]
    assert seen[0].late_files == 0
    assert spool.pending_windows() == []
    spool.close()


def test_archive_rows_commit_with_the_window_or_not_at_all(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "spool.db"))
    _add(spool, 1)

    def failing(jobs: list[WindowJob]) -> list[tuple[str | None, int]]:
        spool.archive_add("s", "pump-1", 300, 0, 1, b"body", 0.0)
        raise RuntimeError("the store went away")

    with pytest.raises(RuntimeError):
        spool.write_windows([WINDOW], failing)
    assert spool.archive_backlog()[0] == 0
    assert spool.pending_windows() == [WINDOW]
    assert not spool.is_flushed(*WINDOW)

    def writing(jobs: list[WindowJob]) -> list[tuple[str | None, int]]:
        spool.archive_add("s", "pump-1", 300, 0, 1, b"body", 0.0)
        assert spool.archive_backlog()[0] == 0, "queued before the window is written"
        return [("key-0", 0) for _ in jobs]

    spool.write_windows([WINDOW], writing)
    assert spool.archive_backlog()[0] == 1
    assert [q.body for q in spool.archive_pending(10)] == [b"body"]
    assert spool.pending_windows() == []
    spool.close()
