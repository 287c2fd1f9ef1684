"""``plantwatch edge run`` as a real process: CSV replay in, SIGTERM flushes, status reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from edge_helpers import Receiver

from cloud.runtime.broker import EmbeddedBroker

ROOT = Path(__file__).resolve().parents[3]


def test_run_replays_csv_reports_status_and_flushes_on_sigterm(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    data = tmp_path / "data" / "pump-7"
    data.mkdir(parents=True)
    rows = "\n".join(f"2023-01-01 00:{i // 60:02d}:{i % 60:02d},{i}.5,{i}" for i in range(290))
    (data / "pump-7.csv").write_text("Timestamp,current,flow\n" + rows + "\n")
    config = tmp_path / "agent.toml"
    config.write_text(
        f"""
[agent]
site = "plant1"
sender = "gw-cli"
broker = "{broker.url}"
protocol = "3.1.1"
assets = ["pump-7"]
queue = "queue.db"
shadow = false
max_batch_delay_s = 60.0

[[sources]]
type = "csv"
path = "data"
speed = 100000
"""
    )
    receiver = Receiver(broker.host, broker.port, client_id="rx-cli")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloud.cli.main", "edge", "run", "--config", str(config)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        status: dict[str, object] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cloud.cli.main",
                    "edge",
                    "status",
                    "--config",
                    str(config),
                    "--json",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            status = json.loads(out.stdout)
            if status.get("connected") and status.get("sent", 0) >= 280:
                break
            time.sleep(0.2)
        assert status["running"] is True and status["connected"] is True, status
        assert status["sender_state"] == "running" and status["sender_errors"] == 0
        assert status["refused"] == 0 and status["refused_by_reason"] == {}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert receiver.wait_for(290, 10), receiver.count()  # the partial last message was flushed
    receiver.close()
    logs = [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]
    assert any(entry.get("event") == "connected" for entry in logs)
    after = json.loads(
        subprocess.run(
            [sys.executable, "-m", "edge.cli", "status", "--config", str(config), "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert after["running"] is False and after["queue_depth"] == 0 and after["sent"] == 290
    assert after["sender_state"] == "stopped"
