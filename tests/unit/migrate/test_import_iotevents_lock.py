"""Two ``plantwatch import iotevents`` into one data directory at once: the second waits
for the first (and says so), then registers on top of it, so neither import is lost."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloud.migrate import iotevents

DATA = Path(__file__).with_name("data") / "iotevents"
ROOT = Path(__file__).resolve().parents[3]

CHILD = """
import sys, time
from pathlib import Path
from cloud.cli.main import main
from cloud.migrate import iotevents

folder, data, marks = sys.argv[1], sys.argv[2], Path(sys.argv[3])
real = iotevents._commit

def held(*args, **kwargs):
    # the registry has been read; stay here until the test lets this import go on
    (marks / "in-commit").touch()
    deadline = time.monotonic() + 60
    while not (marks / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return real(*args, **kwargs)

iotevents._commit = held
sys.exit(main(["import", "iotevents", folder, "--data", data]))
"""


def _half(tmp_path: Path, name: str, model: str) -> Path:
    """DATA with only one of its two detector models (and both inputs)."""
    folder = tmp_path / name
    shutil.copytree(DATA, folder)
    for path in folder.glob("describe-detector-model-*.json"):
        if model not in path.name:
            path.unlink()
    return folder


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """The imports a test starts; any still running at its end (a failed test) are killed."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _start(
    started: list[subprocess.Popen[str]], folder: Path, data: Path, marks: Path
) -> subprocess.Popen[str]:
    marks.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started.append(
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(folder), str(data), str(marks)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    )
    return started[-1]


def _until(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_two_imports_at_once_both_stay_registered(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    data = tmp_path / "d"
    first_marks, second_marks = tmp_path / "m1", tmp_path / "m2"
    # GIVEN a first import that has read the registry and is about to write it
    first = _start(started, _half(tmp_path, "a", "valveWatch"), data, first_marks)
    _until(lambda: (first_marks / "in-commit").exists(), "the first import")
    # WHEN a second import of another model starts meanwhile
    second = _start(started, _half(tmp_path, "b", "motorHeartbeat"), data, second_marks)
    detectors = data / "detectors"
    _until(
        lambda: (second_marks / "in-commit").exists() or _holds_lock_waiter(detectors),
        "the second import to wait or to commit",
    )
    (first_marks / "go").touch()
    (second_marks / "go").touch()
    _, err1 = first.communicate(timeout=120)
    _, err2 = second.communicate(timeout=120)
    # THEN both succeed, the second said it waited, and the registry holds both models
    assert (first.returncode, second.returncode) == (0, 0), (err1, err2)
    registry = json.loads((detectors / iotevents.REGISTRY_FILE).read_text())
    assert sorted(registry["models"]) == ["motorHeartbeat", "valveWatch"]
    for name in ("motorHeartbeat", "valveWatch"):
        assert iotevents.registered(detectors, name) is not None
    assert "waiting for another import into" in err2 and str(detectors) in err2
    assert err2.count("\n") == 1, err2


def _holds_lock_waiter(detectors: Path) -> bool:
    """Whether another process blocks on the registry's lock now (a lock is held on the
    folder and a second one asked for it: /proc/locks lists the waiter with '->')."""
    try:
        inode = detectors.stat().st_ino
        locks = Path("/proc/locks").read_text()
    except OSError:
        return False
    return any("->" in line and f":{inode} " in line for line in locks.splitlines())
