"""A small data directory as ``plantwatch up`` leaves it, made with the real stores and
engines' formats: results and input CSVs for three assets (one faulty, one at another site),
a trained model with its training profile, a scheduler and its executions, detector states,
shadows, alerts and device statuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from cloud.adapters.local import OutboxNotifier, SqliteStateStore
from cloud.devices.health import record
from cloud.inference.model import train
from cloud.inference.scheduler import EXECUTIONS_NS, Execution, SchedulerConfig, create_scheduler
from cloud.ports import Notification
from cloud.runtime.layout import DataLayout
from cloud.shadow.operations import ShadowOperations
from cloud.shadow.store import ShadowStore
from edge.clock import ManualClock
from edge.wire import DeviceStatus

START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC).timestamp()
SENSORS = ("bearing_temp", "flow", "vibration")
STEP_S = 10
WINDOWS = 24  # two hours of 5-minute windows
FAULT = (START + 3600, START + 3600 + 900)  # pump-02's bearing overheats for 15 minutes
WALL_NOW = 1_800_000_000.0


def _readings(asset: str, t: float, rng: np.random.Generator) -> dict[str, float]:
    hot = asset == "pump-02" and FAULT[0] <= t < FAULT[1]
    moved = asset == "fan-01"  # runs at another operating point than the training data
    return {
        "bearing_temp": 40.0 + rng.normal(0, 0.5) + (25.0 if hot else 0.0),
        "flow": 30.0 + rng.normal(0, 1.0) + (4.0 if moved else 0.0),
        "vibration": 1.5 + rng.normal(0, 0.05),
    }


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def build(root: Path) -> Path:
    layout = DataLayout.at(root)
    bucket = layout.bucket
    rng = np.random.default_rng(5)
    history = pd.DataFrame(
        [_readings("pump-01", START - 86400 + i * 60, rng) for i in range(600)],
        index=pd.date_range("2026-01-04", periods=600, freq="1min", tz="UTC"),
    )
    layout.registry().save("pumps", train(history))
    for site, asset in (("s1", "pump-01"), ("s1", "pump-02"), ("s2", "fan-01")):
        sub = "" if site == "s1" else f"{site}/"
        for w in range(WINDOWS):
            w_start = START + w * 300
            lines, rows = [], []
            for i in range(30):
                t = w_start + i * STEP_S
                values = _readings(asset, t, rng)
                rows.append(",".join([_stamp(t), *(f"{values[s]:.3f}" for s in SENSORS)]))
                hot = asset == "pump-02" and FAULT[0] <= t < FAULT[1]
                share = [0.8, 0.1, 0.1] if hot else [0.3, 0.4, 0.3]
                lines.append(
                    {
                        "timestamp": _stamp(t),
                        "prediction": int(hot),
                        "prediction_reason": "ANOMALY_DETECTED" if hot else "NO_ANOMALY_DETECTED",
                        "anomaly_score": 0.7 if hot else 0.1,
                        "diagnostics": [
                            {"name": f"{asset}\\{s}", "value": v}
                            for s, v in zip(SENSORS, share, strict=True)
                        ],
                    }
                )
            folder = (
                bucket
                / "output"
                / sub
                / asset
                / datetime.fromtimestamp(w_start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            )
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
            name = datetime.fromtimestamp(w_start + 300, UTC).strftime("%Y%m%d%H%M%S")
            csv = bucket / "input" / sub / f"{asset}_{name}.csv"
            csv.parent.mkdir(parents=True, exist_ok=True)
            csv.write_text("Timestamp," + ",".join(SENSORS) + "\n" + "\n".join(rows) + "\n")
    with SqliteStateStore(layout.state_db) as store:
        config = SchedulerConfig(
            name="pumps-scheduler",
            model_name="pumps",
            input_bucket="plantwatch",
            output_bucket="plantwatch",
        )
        create_scheduler(store, config, START)
        for w in range(WINDOWS):
            start = datetime.fromtimestamp(START + w * 300, UTC)
            end = datetime.fromtimestamp(START + (w + 1) * 300, UTC)
            failed = w == 3
            execution = Execution(
                scheduler="pumps-scheduler",
                data_start=start,
                data_end=end,
                scheduled_start=end,
                status="FAILED" if failed else "SUCCESS",
                failed_reason="no input files" if failed else None,
                result_key=None,
                model_name="pumps",
                rows=0 if failed else 60,
            )
            store.put(EXECUTIONS_NS, f"pumps-scheduler/{w:03d}", execution.to_dict())
        store.put("detectors", "equipment_anomaly", {"version": "1", "states": ["Normal", "Alarm"]})
        for key, state in (("pump-01", "Normal"), ("pump-02", "Alarm"), ("s2:fan-01", "Normal")):
            store.put(
                "detectors/equipment_anomaly",
                key,
                {"state": state, "updated": FAULT[0] + 30, "variables": {"abnormal_count": 3}},
            )
        for sender, state, age in (
            ("gw-s1", "online", 2.0),
            ("pump-09", "online", 60.0),
            ("pump-08", "offline", 1.0),
        ):
            record(
                store,
                DeviceStatus(
                    site="s1",
                    sender=sender,
                    state=state,
                    interval_s=5.0,
                    assets=("pump-01", "pump-02") if sender == "gw-s1" else (sender,),
                    agent_version="0.1.0",
                    protocol="3.1.1",
                    queue_depth=7,
                    dropped=2,
                    reason="connection lost" if state == "offline" else None,
                ),
                wall_now=WALL_NOW - age,
                clock_now=START,
            )
    shadows = ShadowOperations(ShadowStore(layout.shadow_db), ManualClock(START + 7200))
    shadows.update("pump-02", None, {"state": {"desired": {"mode": "safe"}}})
    shadows.update("pump-02", None, {"state": {"reported": {"mode": "safe"}}})
    shadows.update(
        "pump-01", None, {"state": {"desired": {"mode": "stop"}, "reported": {"mode": "normal"}}}
    )
    shadows.store.close()
    notifier = OutboxNotifier(layout.alerts, clock=ManualClock(FAULT[0] + 30))
    notifier.send(
        Notification(
            "email",
            "ops@example.com",
            "[plantwatch] ALARM pump-02",
            "body <b>",
            {"asset": "pump-02"},
        )
    )
    return root
