"""`import l4e --input FOLDER` where the folder holds what no bucket can: FIFOs, devices,
symlink loops. Each is discarded with its reason, as L4E's ingestion discards an
unreadable file, and the readable files are imported; before, a FIFO blocked the import
for ever, /dev/zero read until memory ran out and a loop ended it with exit 1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cloud.adapters.local import FsObjectStore
from cloud.cli.main import main
from edge.errors import NotFoundError

CSV = "Timestamp,flow,temp\n2026-01-01T00:00:00,1,2\n2026-01-01T00:05:00,3,4\n"


def _hostile(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        os.symlink("/dev/zero", path)
    else:
        os.symlink(path, path)  # a loop


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("fifo", "not a regular file"), ("dev_zero", "not a regular file"), ("loop", "symlink loop")],
)
def test_the_local_object_store_refuses_what_is_not_an_object(
    kind: str, reason: str, tmp_path: Path
) -> None:
    _hostile(tmp_path / "x.csv", kind)
    with pytest.raises(NotFoundError, match=reason):
        FsObjectStore(tmp_path, fsync=False).get("x.csv")


def test_import_discards_them_and_imports_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    component = tmp_path / "src" / "pump-01"
    component.mkdir(parents=True)
    (component / "a.csv").write_text(CSV)
    for name, kind in (("b.csv", "fifo"), ("c.csv", "dev_zero"), ("d.csv", "loop")):
        _hostile(component / name, kind)
    argv = ["import", "l4e", "--input", str(tmp_path / "src"), "--data", str(tmp_path / "d")]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [d["Key"] for d in report["DiscardedFiles"]] == [
        "pump-01/b.csv",
        "pump-01/c.csv",
        "pump-01/d.csv",
    ]
    assert [(c["ComponentName"], c["Rows"]) for c in report["Components"]] == [("pump-01", 2)]


def test_import_of_only_a_loop_exits_2_naming_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    component = tmp_path / "src" / "pump-01"
    component.mkdir(parents=True)
    _hostile(component / "a.csv", "loop")
    argv = ["import", "l4e", "--input", str(tmp_path / "src"), "--data", str(tmp_path / "d")]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"plantwatch: error: --input {tmp_path / 'src'}: no readable L4E input file: "
        f"{component / 'a.csv'}: no such object (a symlink loop)"
    )
