"""``bench latency`` measures the path users have: a fault injected through the edge agent
crosses the broker, the streaming scorer and the detector, and ends as an alert line in
the outbox, with no alarm while the pump is healthy."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from cloud.bench.latency import measure


@pytest.mark.slow
def test_an_injected_fault_ends_as_an_alert_line_in_the_outbox(tmp_path: Path) -> None:
    args = argparse.Namespace(
        faults=2,
        rate=20.0,
        normal_s=1.5,
        fault_s=5.0,
        step_c=25.0,
        batch_delay_ms=50.0,
        send_when_idle=True,
        history_days=7.0,
        raise_rows=None,
        broker="amqtt",
    )
    measured = measure(tmp_path, args)
    assert measured["faults"] == 2
    assert len(measured["latencies_ms"]) == 2, measured
    # from the first faulty reading's submit: later than the onset, so never longer
    from_reading = measured["from_first_reading_ms"]
    assert len(from_reading) == 2
    assert all(0 < r <= t for r, t in zip(from_reading, measured["latencies_ms"], strict=True))
    assert measured["false_alarms"] == 0
    assert 0 < measured["messages_per_reading"] <= 1  # what the agent's batching cost
    assert measured["world_start_utc"].endswith("+00:00")
    assert measured["alert_lines"] >= 2  # email and SMS of each alarm, read from the file
    outbox = [json.loads(line) for line in (tmp_path / "data" / "alerts.jsonl").open()]
    alarms = [a for a in outbox if "ALARM" in a["subject"].split()[:2]]
    assert {a["channel"] for a in alarms} >= {"email"}
    assert all("pump-01" in a["subject"] for a in alarms)
    stream = list((tmp_path / "data").rglob("stream/pump-01/*/results.jsonl"))
    # scored, then detected (the run may cross a window boundary: any window will do)
    assert any(b'"prediction": 1' in path.read_bytes() for path in stream)
