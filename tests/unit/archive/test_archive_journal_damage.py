"""A damaged ``_compaction.json``: the writer (``plantwatch up``) and ``archive compact``
start anyway, the journal is moved aside as ``_compaction.json.damaged-<UTC time>`` with one
error line, and wherever the merge had got to, every cell is counted once and none is lost.
A reader meanwhile stops with one line naming the file and what to do."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from archive_cells import archive_cells, input_cells
from test_archive_writer import T0, Rig, _message

from cloud.archive import compaction
from cloud.archive.layout import JOURNAL_FILE, partitions, parts, read_committed
from cloud.cli.main import main


def _filled(tmp_path: Path) -> Rig:
    rig = Rig(tmp_path)
    for i in range(3):
        rig.send(_message(i + 1, T0 - 3000 + i * 300, {"a": i, "b": -i / 3}))
        rig.batcher.flush_due()
        rig.writer.flush()
    rig.writer.close()
    return rig


POINTS = ("after-journal", "after-rename", "one-source-gone", "every-source-gone")
DAMAGE = ("garbage", "empty", "not-utf8", "wrong-shape", "truncated", "directory")


def _interrupt(rig: Rig, point: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A merge of the partition's three parts, stopped at *point*; its folder."""
    (partition,) = list(partitions(rig.archive))
    folder = partition.path(rig.archive)

    def crash(folder: Path, journal: dict) -> None:
        target = str(journal["target"])
        if point != "after-journal":
            (folder / f".compact-{target}.tmp").replace(folder / target)
        sources = [n for n in journal["sources"] if n != target]
        gone = {"one-source-gone": sources[:1], "every-source-gone": sources}.get(point, [])
        for name in gone:
            (folder / name).unlink()
        raise KeyboardInterrupt("killed")

    with monkeypatch.context() as patch:
        patch.setattr(compaction, "_finish", crash)
        with pytest.raises(KeyboardInterrupt):
            compaction.compact(folder, read_committed(rig.archive))
    assert (folder / JOURNAL_FILE).is_file()
    return folder


def _damage(folder: Path, how: str) -> None:
    journal = folder / JOURNAL_FILE
    text = journal.read_bytes()
    if how == "directory":  # read_text fails with an OSError (root reads any 0000 file)
        journal.unlink()
        journal.mkdir()
        return
    journal.write_bytes(
        {
            "garbage": b"\x00\x17{{not json",
            "empty": b"",
            "not-utf8": b'{"target": "\xff"}',
            "wrong-shape": json.dumps({"target": 3, "sources": "part-1.parquet"}).encode(),
            "truncated": text[: len(text) // 2],
        }[how]
    )


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("point", POINTS)
def test_the_writer_starts_past_a_damaged_journal_and_counts_each_cell_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    point: str,
    how: str,
) -> None:
    rig = _filled(tmp_path)
    expected = input_cells(rig.bucket)
    folder = _interrupt(rig, point, monkeypatch)
    _damage(folder, how)
    with caplog.at_level(logging.ERROR, logger="cloud.archive"):
        rig.restart()  # as `plantwatch up` opens the archive: this raised before
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert str(folder / JOURNAL_FILE) in errors[0] and "\n" not in errors[0]
    (aside,) = folder.glob(f"{JOURNAL_FILE}.damaged-*")
    assert aside.name.startswith(f"{JOURNAL_FILE}.damaged-2")
    assert str(aside) in errors[0]
    assert not (folder / JOURNAL_FILE).exists()
    assert not list(folder.glob(".*"))  # no temporary file left
    assert archive_cells(rig.archive) == expected  # asserts no cell twice, none lost
    # and it writes and compacts on
    rig.send(_message(50, T0 - 100, {"a": 50}))
    rig.batcher.flush_due()
    rig.writer.flush()
    rig.writer.compact(wait=True)
    rig.writer.close()
    assert len(parts(folder)) == 1
    assert archive_cells(rig.archive) == input_cells(rig.bucket)


@pytest.mark.parametrize("point", POINTS)
def test_a_query_before_the_repair_stops_with_one_line_and_compact_repairs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    point: str,
) -> None:
    rig = _filled(tmp_path)
    expected = input_cells(rig.bucket)
    folder = _interrupt(rig, point, monkeypatch)
    _damage(folder, "garbage")
    capsys.readouterr()
    query = ["query", "SELECT count(*) FROM readings", "--data", str(tmp_path)]
    assert main(query) in (1, 2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(folder / JOURNAL_FILE) in err and "archive compact" in err
    assert main(["archive", "compact", "--data", str(tmp_path), "--json"]) == 0
    capsys.readouterr()
    assert len(list(folder.glob(f"{JOURNAL_FILE}.damaged-*"))) == 1
    assert archive_cells(rig.archive) == expected
    assert len(parts(folder)) == 1


def test_a_source_that_cannot_be_read_is_kept_not_guessed_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the rename, a source that cannot be read cannot be shown to be in the merged
    part: it stays (a reader names it), and the readable ones are removed."""
    rig = _filled(tmp_path)
    folder = _interrupt(rig, "after-rename", monkeypatch)
    _damage(folder, "garbage")
    first = parts(folder)[0][1]
    first.write_bytes(first.read_bytes()[:50])
    rig.restart()
    rig.writer.close()
    assert [p.name for _n, p in parts(folder)] == [first.name, "part-3.parquet"]
