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
