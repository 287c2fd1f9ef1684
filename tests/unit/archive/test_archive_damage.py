"""The archive after a crash or damage: readers count every cell once, nothing unreadable
is deleted, and each problem is named on one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from archive_cells import archive_cells, input_cells
from test_archive_writer import T0, Rig, _message

from cloud.archive import compaction
from cloud.archive.layout import partitions, parts
from cloud.cli.main import main


def _filled(tmp_path: Path, assets: tuple[str, ...] = ("pump-1",)) -> Rig:
    """Three flushes, so each asset's partition holds three parts."""
    rig = Rig(tmp_path)
    seq = 0
    for i in range(3):
        for asset in assets:
            seq += 1
            rig.send(_message(seq, T0 - 3000 + i * 300, {"a": i, "b": -i}, asset=asset))
        rig.batcher.flush_due()
        rig.writer.flush()
    return rig


def _crash_after_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(folder: Path, journal: dict) -> None:
        target = str(journal["target"])
        (folder / f".compact-{target}.tmp").replace(folder / target)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(compaction, "_finish", crash)


def test_a_query_after_a_killed_compact_counts_each_cell_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`archive compact` killed between the rename and the deletes, no `up` running: the
    merged part lies beside its sources until something finishes the merge."""
    rig = _filled(tmp_path)
    rig.writer.close()
    expected = input_cells(rig.bucket)
    real_finish = compaction._finish
    _crash_after_rename(monkeypatch)
    assert main(["archive", "compact", "--data", str(tmp_path)]) == 130
    monkeypatch.setattr(compaction, "_finish", real_finish)
    (partition,) = list(partitions(rig.archive))
    assert len(parts(partition.path(rig.archive))) == 3  # merged part and two sources
    assert archive_cells(rig.archive) == expected  # asserts no cell twice
    capsys.readouterr()
    assert main(["archive", "compact", "--data", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parts_after"] == 1
    assert archive_cells(rig.archive) == expected


def test_a_query_after_a_compact_killed_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = _filled(tmp_path)
    rig.writer.close()
    expected = input_cells(rig.bucket)

    def crash(folder: Path, journal: dict) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(compaction, "_finish", crash)
    assert main(["archive", "compact", "--data", str(tmp_path)]) == 130
    assert archive_cells(rig.archive) == expected


def test_a_late_file_beside_a_damaged_part_is_still_archived(tmp_path: Path) -> None:
    """The writer reads committed parts to drop a late file's repeats; a damaged one
    must not fail that flush on every retry (the archive would stop for good)."""
    rig = _filled(tmp_path)
    (partition,) = list(partitions(rig.archive))
    damaged = parts(partition.path(rig.archive))[0][1]
    _truncate(damaged)
    rig.send(_message(50, T0 - 3000, {"a": 1, "c": 5}))  # late: its window has a file
    rig.batcher.flush_due()
    assert rig.writer.flush() >= 1
    assert rig.writer.counts["unreadable_parts"] == 1
    assert damaged.exists()
    damaged.unlink()  # what a user does with it; the rest reads
    rig.writer.close()
    cells = archive_cells(rig.archive)
    assert cells[("s1", "pump-1", (T0 - 3000) * 1000, "c")] == 5


def _truncate(path: Path, size: int = 100) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:size])


@pytest.mark.parametrize("which", [0, 2])
@pytest.mark.parametrize("size", [0, 100, -8])
def test_a_damaged_part_is_named_by_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], size: int, which: int
) -> None:
    rig = _filled(tmp_path)
    rig.writer.close()
    (partition,) = list(partitions(rig.archive))
    damaged = parts(partition.path(rig.archive))[which][1]
    data = damaged.read_bytes()
    damaged.write_bytes(data[:size] if size >= 0 else data[:size] + b"XXXXXXXX")
    assert main(["query", "SELECT count(*) FROM readings", "--data", str(tmp_path)]) in (1, 2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" not in err, err
    assert str(damaged) in err


def test_compact_leaves_a_partition_it_cannot_read_and_merges_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rig = _filled(tmp_path, assets=("pump-1", "pump-2"))
    rig.writer.close()
    damaged_partition, good_partition = sorted(partitions(rig.archive))
    folder = damaged_partition.path(rig.archive)
    damaged = parts(folder)[0][1]
    _truncate(damaged)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert main(["archive", "compact", "--data", str(tmp_path), "--json"]) == 1
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["partitions_merged"] == 1
    assert report["unreadable"] == [str(damaged)]
    assert str(damaged) in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # untouched
    assert len(parts(good_partition.path(rig.archive))) == 1


def test_the_writer_compacting_past_a_damaged_part_keeps_flushing(tmp_path: Path) -> None:
    from cloud.archive import ArchivePolicy

    rig = Rig(tmp_path, ArchivePolicy(flush_age_s=0, compact_parts=2))
    for i in range(2):
        rig.send(_message(i, T0 - 3000 + i * 300, {"a": i}))
        rig.batcher.flush_due()
        rig.writer.flush()
    (partition,) = list(partitions(rig.archive))
    damaged = parts(partition.path(rig.archive))[0][1]
    _truncate(damaged)
    rig.send(_message(7, T0 - 2000, {"a": 7}))
    rig.batcher.flush_due()
    assert rig.writer.flush() == 1  # written; the merge it would trigger is skipped
    assert damaged.exists() and len(parts(partition.path(rig.archive))) == 3
    assert rig.writer.counts["compactions_failed"] == 1


_KILLER = """
import os, signal, sys
from pathlib import Path
from cloud.archive import compaction
from cloud.cli.main import main

point, data = sys.argv[1], sys.argv[2]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
real_write, real_finish = compaction.write_private, compaction._finish

def write(path, body, **kw):
    if point == "before-journal":
        die()
    real_write(path, body, **kw)
    if point == "after-journal":
        die()

def finish(folder, journal):
    target = journal["target"]
    (folder / f".compact-{target}.tmp").replace(folder / target)
    if point == "one-source-gone":
        (folder / next(n for n in journal["sources"] if n != target)).unlink()
    die()

compaction.write_private = write
if point in ("after-rename", "one-source-gone"):
    compaction._finish = finish
sys.exit(main(["archive", "compact", "--data", data]))
"""


@pytest.mark.parametrize(
    "point", ["before-journal", "after-journal", "after-rename", "one-source-gone"]
)
def test_compact_sigkilled_at_each_step_loses_and_doubles_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], point: str
) -> None:
    import os
    import subprocess
    import sys

    rig = _filled(tmp_path, assets=("pump-1", "pump-2"))
    rig.writer.close()
    expected = input_cells(rig.bucket)
    repo = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", _KILLER, point, str(tmp_path)],
        env=dict(os.environ, PYTHONPATH=str(repo)),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr
    assert archive_cells(rig.archive) == expected  # a reader before anything recovers
    assert main(["archive", "compact", "--data", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parts_after"] == 2
    assert archive_cells(rig.archive) == expected
    leftovers = [p.name for p in rig.archive.rglob("*") if p.name.startswith((".", "_compaction"))]
    assert leftovers == []
    # and the writer, started after, recovers nothing more and writes on
    rig.restart()
    rig.send(_message(99, T0 - 100, {"a": 99}))
    rig.batcher.flush_due()
    rig.writer.close()
    assert archive_cells(rig.archive) == input_cells(rig.bucket)


_LOOP = """
import sys
from cloud.cli.main import main

command, data, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
argv = {"compact": ["archive", "compact"], "retention": ["retention", "apply"],
        "query": ["query", "SELECT count(*) FROM readings"]}[command]
for _ in range(rounds):
    code = main([*argv, "--data", data])
    if code != 0:
        sys.exit(code)
"""


def test_compact_retention_and_queries_beside_a_writing_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three other processes loop over the archive while this one keeps flushing: each
    waits for the locks it needs; no cell is lost or doubled."""
    import os
    import subprocess
    import sys

    from cloud.archive import ArchivePolicy

    rig = Rig(tmp_path, ArchivePolicy(flush_age_s=0, compact_parts=2))
    assert main(["retention", "set", "archive/", "36500", "--data", str(tmp_path)]) == 0
    repo = Path(__file__).resolve().parents[3]
    env = dict(os.environ, PYTHONPATH=str(repo))
    others = [
        subprocess.Popen(
            [sys.executable, "-c", _LOOP, command, str(tmp_path), "15"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for command in ("compact", "retention", "query")
    ]
    try:
        seq = 0
        while any(p.poll() is None for p in others):
            for asset in ("pump-1", "pump-2"):
                seq += 1
                rig.send(_message(seq, T0 - 7000 + seq * 30, {"a": seq, "b": -seq}, asset=asset))
            rig.clock.advance(60)
            rig.batcher.flush_due()
            rig.writer.flush()
            assert seq < 20_000
    finally:
        for p in others:
            if p.poll() is None:
                p.kill()
            p.wait()
    assert [p.returncode for p in others] == [0, 0, 0], [p.stderr.read() for p in others]
    rig.batcher.flush_all()
    rig.writer.close()
    assert rig.writer.counts["flush_errors"] == 0
    assert archive_cells(rig.archive) == input_cells(rig.bucket)
    capsys.readouterr()


def test_the_writer_reads_parts_for_late_repeats_under_the_readers_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic twin of the test above: while the writer reads committed parts to
    drop a late file's repeats, `archive compact` (exclusive lock) cannot start."""
    from cloud.archive import writer as writer_module
    from edge.files import directory_lock

    rig = _filled(tmp_path)
    real = writer_module._archived_cells
    compact_could_start = []

    def probe(folder: Path, committed: int, lo: int, hi: int, unreadable: list) -> set:
        with directory_lock(rig.archive, exclusive=True, wait=False) as locked:
            compact_could_start.append(locked)
        return real(folder, committed, lo, hi, unreadable)

    monkeypatch.setattr(writer_module, "_archived_cells", probe)
    rig.send(_message(50, T0 - 3000, {"a": 1, "c": 5}))  # late: its window has a file
    rig.batcher.flush_due()
    rig.writer.flush()
    assert compact_could_start and not any(compact_could_start)


@pytest.mark.parametrize("command", [["archive", "compact"], ["retention", "apply"]])
def test_compact_and_retention_say_they_wait_for_a_running_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    import os
    import subprocess
    import sys
    import threading
    import time

    from edge.files import directory_lock

    rig = _filled(tmp_path)
    rig.writer.close()
    assert main(["retention", "set", "archive/", "1", "--data", str(tmp_path)]) == 0
    capsys.readouterr()
    repo = Path(__file__).resolve().parents[3]
    with directory_lock(rig.archive, exclusive=False):  # a query is running
        proc = subprocess.Popen(
            [sys.executable, "-m", "cloud.cli.main", *command, "--data", str(tmp_path)],
            env=dict(os.environ, PYTHONPATH=str(repo)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            lines: list[str] = []
            reader = threading.Thread(target=lambda: lines.append(proc.stderr.readline()))
            reader.start()
            reader.join(20)
            assert lines, "said nothing while it waited"
            assert "waiting for" in lines[0] and "Ctrl-C" in lines[0], lines
            time.sleep(0.5)
            assert proc.poll() is None  # still waiting
        except BaseException:
            proc.kill()
            raise
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


_KILL_WRITER = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
import pyarrow.parquet as pq
from cloud.archive import writer as writer_module
from test_archive_writer import Rig

point, root = sys.argv[1], Path(sys.argv[2])
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
real_create, real_mark, real_write = (
    writer_module.create_private, writer_module.write_committed, pq.write_table)
created = []

def create(path):
    created.append(path)
    if point == "between-parts" and len(created) == 2:
        die()
    return real_create(path)

def half_written(table, fh, **kw):
    fh.write(b"PAR1 half a part")
    fh.flush()
    die()

def mark(root, last, **kw):
    if point == "before-mark":
        die()
    real_mark(root, last, **kw)
    die()  # after-mark: the queue is not told

writer_module.create_private = create
writer_module.write_committed = mark
if point == "half-tmp":
    pq.write_table = half_written
rig = Rig(root)
rig.writer.flush(everything=True)
"""


@pytest.mark.parametrize("point", ["half-tmp", "between-parts", "before-mark", "after-mark"])
def test_writer_sigkilled_at_each_step_writes_every_cell_once(tmp_path: Path, point: str) -> None:
    import os
    import subprocess
    import sys

    rig = Rig(tmp_path)
    for seq in range(6):  # windows on both sides of midnight: two partitions per flush
        rig.send(_message(seq, T0 - 600 + seq * 200, {"a": seq, "b": -seq}))
    rig.batcher.flush_due()
    rig.writer._release()
    rig.batcher.close()
    here = Path(__file__).resolve().parent
    done = subprocess.run(
        [sys.executable, "-c", _KILL_WRITER, point, str(tmp_path), str(here)],
        env=dict(os.environ, PYTHONPATH=f"{here.parents[2]}{os.pathsep}{here.parents[1]}"),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    expected = input_cells(rig.bucket)
    seen = archive_cells(rig.archive)  # before any recovery: complete parts only, once
    assert seen.items() <= expected.items()
    assert (seen == expected) == (point == "after-mark")
    rig = Rig(tmp_path)  # restart: recovery, then the queue again
    rig.writer.close()
    rig.batcher.close()
    assert archive_cells(rig.archive) == expected
    assert not [p for p in rig.archive.rglob("*") if p.name.startswith(".")]


_KILL_RETENTION = """
import os, signal, sys
from pathlib import Path
from cloud.archive import retention
from cloud.cli.main import main

def killed(path, *args, **kwargs):
    sorted(Path(path).iterdir())[0].unlink()
    os.kill(os.getpid(), signal.SIGKILL)

retention.shutil.rmtree = killed
sys.exit(main(["retention", "apply", "--data", sys.argv[1]]))
"""


def test_retention_sigkilled_while_deleting_a_partition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import subprocess
    import sys

    from cloud.archive.layout import partitions

    rig = _filled(tmp_path)  # a partition of 2023-11-14, long expired
    rig.writer.close()
    assert main(["retention", "set", "archive/", "30", "--data", str(tmp_path)]) == 0
    capsys.readouterr()
    repo = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", _KILL_RETENTION, str(tmp_path)],
        env=dict(os.environ, PYTHONPATH=str(repo)),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    assert list(partitions(rig.archive)) == []
    assert archive_cells(rig.archive) == {}  # the day went whole, not part by part
    assert main(["retention", "apply", "--data", str(tmp_path)]) == 0
    assert [p.name for p in rig.archive.iterdir()] != [] and not list(rig.archive.rglob(".exp*"))
