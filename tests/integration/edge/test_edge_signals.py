"""``plantwatch-edge run`` stopped by SIGTERM while its flush cannot finish (no broker).

A stop ends in exit 0 and one line that says how many readings stay queued, and they do
stay queued; a second SIGTERM ends a long flush at once instead of after
``shutdown_timeout_s``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.readonly_sqlite import connect_readonly

ROOT = Path(__file__).resolve().parents[3]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(tmp_path: Path, shutdown_s: float) -> tuple[subprocess.Popen[str], Path]:
    data = tmp_path / "data" / "pump-7"
    data.mkdir(parents=True)
    rows = "\n".join(f"2023-01-01 00:{i // 60:02d}:{i % 60:02d},{i}.5,{i}" for i in range(50))
    (data / "pump-7.csv").write_text("Timestamp,current,flow\n" + rows + "\n")
    config = tmp_path / "agent.toml"
    config.write_text(
        f"""
[agent]
site = "plant1"
sender = "gw-sig"
broker = "mqtt://127.0.0.1:{_closed_port()}"
protocol = "3.1.1"
assets = ["pump-7"]
queue = "queue.db"
shadow = false
shutdown_timeout_s = {shutdown_s}

[[sources]]
type = "csv"
path = "data"
speed = 100000
"""
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    queue = tmp_path / "queue.db"
    deadline = time.monotonic() + 15
    while _depth(queue) < 50:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    return proc, queue


def _depth(queue: Path) -> int:
    if not queue.exists():
        return 0
    try:
        db = connect_readonly(queue)
        try:
            return int(db.execute("SELECT COUNT(*) FROM readings").fetchone()[0])
        finally:
            db.close()
    except Exception:
        return 0


def _stop_lines(stderr: str) -> list[dict[str, object]]:
    logs = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [entry for entry in logs if entry.get("event") == "stop"]


@pytest.mark.timeout(40, method="thread")
def test_sigterm_during_a_flush_that_cannot_finish_exits_0_and_keeps_the_queue(
    tmp_path: Path,
) -> None:
    proc, queue = _start(tmp_path, shutdown_s=1.0)
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    stops = _stop_lines(proc.stderr.read())  # type: ignore[union-attr]
    assert len(stops) == 1 and stops[0]["queued"] == 50
    assert "50 readings stay queued" in str(stops[0]["msg"])
    assert _depth(queue) == 50


@pytest.mark.timeout(40, method="thread")
def test_a_second_sigterm_ends_a_long_flush_at_once(tmp_path: Path) -> None:
    proc, queue = _start(tmp_path, shutdown_s=600.0)
    try:
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert proc.poll() is None  # flushing, up to 600 s
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert time.monotonic() - began < 8
    finally:
        if proc.poll() is None:
            proc.kill()
    stops = _stop_lines(proc.stderr.read())  # type: ignore[union-attr]
    assert len(stops) == 1 and stops[0]["queued"] == 50
    assert _depth(queue) == 50
