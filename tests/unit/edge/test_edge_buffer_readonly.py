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


def test_a_read_only_file_system_is_named_with_what_to_do(
    folder: tuple[Path, object],
) -> None:
    here, read_only = folder
    read_only()  # type: ignore[operator]
    with pytest.raises(StorageError) as info:
        SqliteBuffer(here / "q.db", ManualClock())
    assert "q.db" in str(info.value)
    assert "remount it read-write or choose another queue path" in str(info.value)


OPEN_AS_NOBODY = """
import sys
from edge.buffer import SqliteBuffer
from edge.clock import ManualClock
from edge.errors import StorageError
try:
    SqliteBuffer(sys.argv[1], ManualClock())
except StorageError as exc:
    print(exc)
"""


def test_a_queue_file_the_agent_may_not_write_is_named_with_what_to_do() -> None:
    """A queue left by a run as another user (root, then a service account): the refusal
    says whose rights are missing, not only errno 13."""
    import shutil
    import sys
    import tempfile

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to leave a queue another user cannot write")
    with tempfile.TemporaryDirectory() as made:  # under /tmp: pytest's root is 0700
        here = Path(made)
        buf = SqliteBuffer(here / "q.db", ManualClock())
        buf.put("a1", [Sample(T, {"x": 1.0})])
        buf.close()
        os.chmod(here, 0o755)
        os.chmod(here / "q.db", 0o644)
        nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"]
        root = Path(__file__).resolve().parents[3]
        done = subprocess.run(
            ["setpriv", *nobody, sys.executable, "-c", OPEN_AS_NOBODY, str(here / "q.db")],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
    assert "q.db: cannot open" in done.stdout, done.stderr
    assert "the user running the agent may not write it" in done.stdout
