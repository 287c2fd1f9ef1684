"""`sim replay --dataset` with hostile CSVs: one line naming the file, never a hang.

Before, bytes that were not UTF-8 escaped as UnicodeDecodeError (an internal error), the
C reader's message for a ragged row spilled onto a second line, a FIFO among the CSVs
blocked in open, and a gigabyte first line was read whole.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cloud.cli.main import main
from edge.errors import UserError
from simulator.replay import MAX_HEADER_CHARS, load_dataset

RAGGED = b"Timestamp,a,b\n2026-01-01T00:00:00,1,2\n2026-01-01T00:01:00,1,2,3,4\n"


def _write(path: Path, kind: str) -> None:
    if kind == "not_utf8":
        path.write_bytes(b"\xff\xfeTimestamp,a\n\xa5\x00,1\n")
    elif kind == "ragged":
        path.write_bytes(RAGGED)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        os.symlink("/dev/zero", path)
    elif kind == "long_line":
        with path.open("wb") as fh:
            fh.write(b"T" * (MAX_HEADER_CHARS + 10))


KINDS = ["not_utf8", "ragged", "fifo", "dev_zero", "long_line"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_csv_in_a_dataset_folder_is_a_user_error(kind: str, tmp_path: Path) -> None:
    folder = tmp_path / "ds" / "pump-01"
    folder.mkdir(parents=True)
    _write(folder / "pump-01.csv", kind)
    with pytest.raises(UserError, match=r"pump-01\.csv: ") as caught:
        load_dataset(tmp_path / "ds")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kind", ["not_utf8", "ragged", "long_line"])
def test_sim_replay_exits_2_with_one_line(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pump-01.csv"
    _write(path, kind)
    code = main(["sim", "replay", "--dataset", str(path), "--broker", "mqtt://127.0.0.1:1"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("plantwatch: error: ") and "pump-01.csv" in err[0]
    assert "internal error" not in err[0]
