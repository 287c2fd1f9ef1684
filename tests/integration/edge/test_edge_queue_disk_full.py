"""The outbox on a disk that really fills (ENOSPC from the file system, not a page limit).

Each case runs in a child process with its own small tmpfs, mounted in a user and mount
namespace (``unshare -Urm``), so no root is needed and nothing outside the test sees it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge.buffer import MIN_RESERVE_BYTES, RESERVE_BYTES

ROOT = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent(
    """
    import sqlite3, sys
    from edge.buffer import SqliteBuffer
    from edge.clock import ManualClock
    from edge.errors import StorageError
    from edge.wire import Sample

    path = sys.argv[1] + "/q.db"
    buf = SqliteBuffer(path, ManualClock(), reserve_bytes=int(sys.argv[2]))
    accepted = 0
    try:
        for batch in range(100_000):
            buf.put("a1", [
                Sample(1_700_000_000_000 + accepted + i, {"t": 1.5, "flow": 2.25})
                for i in range(200)
            ])
            accepted += 200
        sys.exit("the disk never filled")
    except StorageError as exc:
        print("REFUSED", exc)
    sent = 0
    while (message := buf.form("s1", "gw", "a1", max_samples=1000)) is not None:
        sent += buf.ack([message.seq])
    assert sent == accepted, (sent, accepted)
    buf.put("a1", [Sample(1_800_000_000_000, {"t": 1.0})])
    buf.close()
    again = SqliteBuffer(path, ManualClock())
    assert again.stats().depth == 1
    assert again._db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    print("OK", accepted)
    """
)


def _run_on_small_disk(
    tmp_path: Path, size: str, reserve: int = RESERVE_BYTES
) -> subprocess.CompletedProcess[str]:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) for a private tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    mount = f"mount -t tmpfs -o size={size} tmpfs {disk} || exit 77; exec {sys.executable} {script} {disk} {reserve}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", mount],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    if done.returncode == 77:
        pytest.skip(f"cannot mount a tmpfs in a user namespace: {done.stderr.strip()}")
    return done


@pytest.mark.parametrize("reserve", [RESERVE_BYTES, MIN_RESERVE_BYTES], ids=["default", "least"])
def test_a_queue_that_fills_its_disk_still_drains_and_then_takes_readings(
    tmp_path: Path, reserve: int
) -> None:
    """A device whose queue bound is larger than its free disk: the queue grows until the
    disk is full. Readings are then refused with a clear error, but forming and
    acknowledging messages must still work, or a connected agent could never send again
    and the disk would never free itself; also with the least ``[queue].reserve_bytes``
    the agent takes."""
    done = _run_on_small_disk(tmp_path, "24m", reserve)
    assert done.returncode == 0, done.stderr[-3000:]
    refused = next(line for line in done.stdout.splitlines() if line.startswith("REFUSED"))
    assert "q.db" in refused and "disk" in refused
    assert "OK" in done.stdout
