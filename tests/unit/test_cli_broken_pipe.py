"""``plantwatch ... | head``: a reader that stops early is not an error.

``plantwatch export ... | head`` and ``plantwatch query ... --csv | head`` printed
``plantwatch: error: Broken pipe`` and exited 2 (bad input) once head had its lines.
Now the command stops quietly with 141 (128 + SIGPIPE, what a shell reports for Unix
tools stopped the same way), while a broken pipe that is not stdout (a socket) is still
reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _closed_reader(*args: str) -> subprocess.CompletedProcess:
    """Run ``plantwatch ARGS`` with stdout a pipe whose reader is already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "cloud.cli.main", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("size", [10, 50_000], ids=["one-line", "more-than-a-buffer"])
def test_a_reader_that_went_away_stops_the_command_quietly(size: int) -> None:
    payload = json.dumps({"text": "x" * size})
    done = _closed_reader(
        "rules", "eval", "--topic", "a/b", "--sql", "SELECT * FROM 'a/#'", "--payload", payload
    )
    assert done.stderr == ""
    assert done.returncode == 141


def test_stdout_open_is_not_mistaken_for_a_gone_reader() -> None:
    from cloud.cli import main as cli

    assert cli.stdout_gone() is False  # pytest's captured stdout has no broken pipe
