"""The archive writer: the input files' cells, once each, across crashes and compaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from archive_cells import archive_cells, input_cells

from cloud.adapters.local import FsObjectStore
from cloud.archive import ArchivePolicy, ArchiveWriter
from cloud.archive import writer as writer_module
from cloud.archive.layout import committed_files, partitions, parts, read_committed
from cloud.batcher import Batcher, BatcherConfig, ObjectStoreSpool
from cloud.batcher.spool import Spool
from edge import wire
from edge.clock import ManualClock
from edge.errors import ConfigError

T0 = 1_700_006_400  # 2023-11-15T00:00:00Z, a midnight


def _message(seq: int, ts_s: float, values: dict, asset: str = "pump-1", site: str = "s1"):
    return wire.Telemetry(site, asset, "dev", seq, (wire.Sample(int(ts_s * 1000), values),))


class Rig:
    """A batcher with an on-disk spool, its bucket, and an archive writer over them."""

    def __init__(self, root: Path, policy: ArchivePolicy | None = None) -> None:
        self.root = root
        self.clock = ManualClock(T0 + 3600)
        self.bucket = root / "buckets" / "plantwatch"  # DataLayout's, so the CLI finds it
        self.spool_path = root / "batcher-spool.db"
        self.policy = policy or ArchivePolicy(flush_age_s=30, flush_readings=1000)
        self.batcher = Batcher(
            FsObjectStore(self.bucket, fsync=False),
            BatcherConfig(grace_s=0),
            self.clock,
            str(self.spool_path),
            archive=True,
        )
        self.writer = self.new_writer()

    def new_writer(self) -> ArchiveWriter:
        return ArchiveWriter(self.archive, self.batcher.spool, self.clock, self.policy).open()

    @property
    def archive(self) -> Path:
        return self.bucket / "archive"

    def send(self, *messages: wire.Telemetry) -> None:
        for m in messages:
            self.batcher.accept(m.topic, wire.encode(m))

    def restart(self) -> None:
        """As after a SIGKILL: the spool and the files stay, memory goes."""
        self.writer._release()
        self.batcher.close()
        self.batcher = Batcher(
            FsObjectStore(self.bucket, fsync=False),
            BatcherConfig(grace_s=0),
            self.clock,
            str(self.spool_path),
            archive=True,
        )
        self.writer = self.new_writer()


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_written_windows_reach_the_archive_cell_for_cell(rig: Rig) -> None:
    # GIVEN readings in two windows, one sensor sometimes null, across midnight
    rig.send(
        *(_message(i, T0 - 90 + i * 20, {"a": i, "b": None if i % 2 else i / 4}) for i in range(9))
    )
    rig.batcher.flush_due()
    # WHEN the archive flushes
    written = rig.writer.flush()
    # THEN it holds exactly the cells of the input files, in one partition per date
    assert written == len(input_cells(rig.bucket)) == 14
    assert archive_cells(rig.archive) == input_cells(rig.bucket)
    assert sorted(p.date for p in partitions(rig.archive)) == ["2023-11-14", "2023-11-15"]
    assert rig.batcher.spool.archive_backlog() == (0, 0, None)
    assert read_committed(rig.archive) == 2  # two window files were queued


def test_flushes_on_the_time_bound_or_the_size_bound(tmp_path: Path) -> None:
    rig = Rig(tmp_path, ArchivePolicy(flush_age_s=30, flush_readings=10))
    rig.send(_message(1, T0 - 100, {"a": 1.0}))
    rig.batcher.flush_due()
    assert not rig.writer.due()
    assert rig.writer.step() == 0
    rig.clock.advance(30)
    assert rig.writer.due() and rig.writer.step() == 1
    # a backlog of 10 cells is due at once
    rig.send(*(_message(10 + i, T0 - 500 + i, {"a": i, "b": i}) for i in range(5)))
    rig.batcher.flush_due()
    assert rig.writer.due() and rig.writer.step() == 10


def test_close_drains_the_queue(rig: Rig) -> None:
    rig.send(*(_message(i, T0 - 200 + i, {"a": i}) for i in range(5)))
    rig.batcher.flush_all()
    rig.writer.close()
    assert archive_cells(rig.archive) == input_cells(rig.bucket)
    assert rig.batcher.spool.archive_backlog()[0] == 0


def test_a_flush_killed_before_its_mark_is_written_again_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.send(*(_message(i, T0 - 200 + i, {"a": i}) for i in range(5)))
    rig.batcher.flush_due()

    def crash(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt("killed")

    # GIVEN a flush that wrote its parts and died before moving the mark
    monkeypatch.setattr(writer_module, "write_committed", crash)
    with pytest.raises(KeyboardInterrupt):
        rig.writer.flush()
    monkeypatch.undo()
    assert read_committed(rig.archive) == 0
    assert len([p for part in partitions(rig.archive) for p in parts(part.path(rig.archive))]) == 1
    # and more readings arriving before the restart
    rig.send(*(_message(10 + i, T0 - 100 + i, {"a": i}) for i in range(3)))
    rig.batcher.flush_due()
    # WHEN a new writer starts and flushes
    rig.restart()
    assert rig.writer.counts["stray_parts_removed"] == 1
    rig.writer.flush(everything=True)
    # THEN every cell is there once
    assert archive_cells(rig.archive) == input_cells(rig.bucket)


def test_a_flush_killed_after_its_mark_is_not_written_twice(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.send(*(_message(i, T0 - 200 + i, {"a": i}) for i in range(5)))
    rig.batcher.flush_due()
    real_ack = Spool.archive_ack

    def crash(self: Spool, last_id: int) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(Spool, "archive_ack", crash)
    with pytest.raises(KeyboardInterrupt):
        rig.writer.flush()
    monkeypatch.setattr(Spool, "archive_ack", real_ack)
    assert rig.batcher.spool.archive_backlog()[0] == 1  # still queued, but committed
    rig.restart()
    assert rig.batcher.spool.archive_backlog()[0] == 0
    assert rig.writer.flush(everything=True) == 0
    assert archive_cells(rig.archive) == input_cells(rig.bucket)


def test_a_new_spool_never_reuses_committed_queue_ids(rig: Rig) -> None:
    rig.send(*(_message(i, T0 - 200 + i, {"a": i}) for i in range(5)))
    rig.batcher.flush_due()
    rig.writer.flush()
    committed = read_committed(rig.archive)
    # GIVEN the spool file is deleted (a user cleaning up) and the stack starts again
    rig.writer._release()
    rig.batcher.close()
    rig.spool_path.unlink()
    rig.restart()
    rig.send(_message(99, T0 + 100, {"a": 5.5}))  # another window
    rig.batcher.flush_due()
    # THEN the new window is queued above the mark and lands in the archive
    assert rig.batcher.spool.archive_pending(10)[0].id > committed
    rig.writer.flush()
    assert archive_cells(rig.archive) == input_cells(rig.bucket)


def test_a_late_file_adds_new_cells_and_keeps_the_first_value(rig: Rig) -> None:
    rig.send(_message(1, T0 - 200, {"a": 1.0, "b": None}))
    rig.batcher.flush_due()
    rig.writer.flush()
    # a later message for the same timestamp: a new value for a, a first one for b
    rig.send(_message(2, T0 - 200, {"a": 2.0, "b": 3.0}), _message(3, T0 - 199, {"a": 4.0}))
    rig.batcher.flush_due()
    assert len(list(rig.bucket.glob("input/*.csv"))) == 2
    rig.writer.flush()
    cells = archive_cells(rig.archive)
    assert cells == input_cells(rig.bucket)
    ts = (T0 - 200) * 1000
    assert cells[("s1", "pump-1", ts, "a")] == 1.0  # the scheduler reads the first file's
    assert cells[("s1", "pump-1", ts, "b")] == 3.0
    assert rig.writer.counts["late_repeats_dropped"] == 1


def test_late_repeats_within_one_flush_are_dropped_too(rig: Rig) -> None:
    rig.send(_message(1, T0 - 200, {"a": 1.0}))
    rig.batcher.flush_due()
    rig.send(_message(2, T0 - 200, {"a": 2.0}))
    rig.batcher.flush_due()
    rig.writer.flush()  # both files in one flush
    assert archive_cells(rig.archive) == input_cells(rig.bucket)


def test_compaction_merges_parts_and_keeps_every_cell(tmp_path: Path) -> None:
    rig = Rig(tmp_path, ArchivePolicy(flush_age_s=0, compact_parts=3))
    for i in range(4):
        rig.send(_message(i, T0 - 3000 + i * 300, {"a": i, "b": -i}))
        rig.batcher.flush_due()
        rig.writer.flush()
    # the fourth part took the partition over compact_parts: merged into one
    (partition,) = list(partitions(rig.archive))
    assert [n for n, _ in parts(partition.path(rig.archive))] == [4]
    assert rig.writer.counts["compactions"] == 1
    assert archive_cells(rig.archive) == input_cells(rig.bucket)


def test_an_interrupted_compaction_is_finished_by_the_next_writer(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloud.archive import compaction

    for i in range(3):
        rig.send(_message(i, T0 - 3000 + i * 300, {"a": i}))
        rig.batcher.flush_due()
        rig.writer.flush()
    real_finish = compaction._finish

    def crash_after_rename(folder: Path, journal: dict) -> None:
        target = str(journal["target"])
        (folder / f".compact-{target}.tmp").replace(folder / target)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(compaction, "_finish", crash_after_rename)
    with pytest.raises(KeyboardInterrupt):
        rig.writer.compact(wait=True)
    monkeypatch.setattr(compaction, "_finish", real_finish)
    (partition,) = list(partitions(rig.archive))
    assert len(parts(partition.path(rig.archive))) == 3  # the merged part beside two sources
    rig.restart()
    assert [n for n, _ in parts(partition.path(rig.archive))] == [3]
    assert archive_cells(rig.archive) == input_cells(rig.bucket)


def test_readers_never_see_an_interrupted_flush(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig.send(_message(1, T0 - 200, {"a": 1.0}))
    rig.batcher.flush_due()
    monkeypatch.setattr(
        writer_module, "write_committed", lambda *a, **k: (_ for _ in ()).throw(OSError("disk"))
    )
    with pytest.raises(OSError):
        rig.writer.flush()
    assert committed_files(rig.archive) == []
    assert archive_cells(rig.archive) == {}


def test_one_writer_per_archive(rig: Rig) -> None:
    with pytest.raises(ConfigError, match="another process is writing this archive"):
        ArchiveWriter(rig.archive, rig.batcher.spool, rig.clock).open()


def test_the_archive_needs_the_sqlite_spool(tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path, fsync=False)
    with pytest.raises(ConfigError, match="no archive queue"):
        Batcher(
            store, BatcherConfig(), ManualClock(T0), spool=ObjectStoreSpool(store), archive=True
        )


def test_without_the_archive_nothing_is_queued(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    batcher = Batcher(FsObjectStore(tmp_path, fsync=False), BatcherConfig(grace_s=0), clock)
    m = _message(1, T0 - 400, {"a": 1.0})
    batcher.accept(m.topic, wire.encode(m))
    assert batcher.flush_due()
    assert batcher.spool.archive_backlog() == (0, 0, None)


def test_archive_folders_and_files_are_private(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        rig = Rig(tmp_path, ArchivePolicy(flush_age_s=0, compact_parts=1))
        for i in range(2):
            rig.send(_message(i, T0 - 3000 + i * 300, {"a": i}))
            rig.batcher.flush_due()
            rig.writer.flush()
        rig.writer.close()
    finally:
        os.umask(old)
    entries = [rig.archive, *rig.archive.rglob("*")]
    assert any(p.name.startswith("part-") for p in entries)
    loose = {
        str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in entries if p.stat().st_mode & 0o077
    }
    assert loose == {}
