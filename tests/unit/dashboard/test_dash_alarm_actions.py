"""Acknowledge and snooze from the dashboard: the alarm engine's own entry points, reached
in-process (EngineActions, as in ``plantwatch up``) or through the data directory
(StoreActions, as ``plantwatch dashboard --alarm-actions``), and refused when not enabled,
without the action header, or when the action does not fit the alarm's state."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cloud.adapters.local import OutboxNotifier, SqliteStateStore
from cloud.dashboard.actions import EngineActions, StoreActions
from cloud.dashboard.api import DashboardApi
from cloud.dashboard.app import create_app
from cloud.dashboard.queries import DataView
from cloud.detectors import load_input
from cloud.detectors.actions import LocalActionSink
from cloud.feeder import default_detector_paths
from cloud.runtime.layout import DataLayout
from edge.clock import ManualClock

alarms = pytest.importorskip(
    "cloud.detectors.alarms", reason="this build has no alarm-model engine"
)
alarm_models = importlib.import_module("cloud.detectors.alarms.model")
HEADERS = {"x-plantwatch-action": "1"}


def active_alarm(data: Path) -> tuple[Any, Any]:
    """A data directory whose anomaly_score alarm for pump-02 is ACTIVE; the engine and store."""
    layout = DataLayout.at(data)
    store = SqliteStateStore(layout.state_db)
    clock = ManualClock(1_767_600_000.0)
    notifier = OutboxNotifier(layout.alerts, clock=clock)
    engine = alarms.AlarmEngine(
        alarms.load_alarm_model(alarm_models.default_alarm_path()),
        [load_input(default_detector_paths()[1])],
        store,
        clock,
        LocalActionSink(notifier, None, state=store),
    )
    engine.put_message(
        "AnomalyResults",
        {
            "asset": "pump-02",
            "timestamp": "2026-01-05T07:11:40",
            "prediction": 1,
            "anomaly_score": 0.8,
        },
    )
    assert engine.state_of("pump-02") == "ACTIVE"
    return engine, store


def client(data: Path, actions: Any) -> TestClient:
    api = DashboardApi(DataView(data), actions_enabled=True)
    return TestClient(create_app(api, actions=actions), base_url="http://127.0.0.1")


def test_in_process_acknowledge_then_a_second_one_is_a_conflict(tmp_path: Path) -> None:
    engine, store = active_alarm(tmp_path)
    http = client(tmp_path, EngineActions(lambda: {"anomaly_score": engine}))
    page = http.get("/alarms").text
    assert 'data-action="acknowledge" data-model="anomaly_score" data-key="pump-02"' in page
    assert http.post("/api/v1/alarms/anomaly_score/pump-02/acknowledge").status_code == 403
    done = http.post("/api/v1/alarms/anomaly_score/pump-02/acknowledge", headers=HEADERS, json={})
    assert done.status_code == 200, done.text
    assert done.json()["alarm"]["alarmState"]["stateName"] == "ACKNOWLEDGED"
    assert engine.state_of("pump-02") == "ACKNOWLEDGED"
    again = http.post("/api/v1/alarms/anomaly_score/pump-02/acknowledge", headers=HEADERS)
    assert again.status_code == 409 and "ACKNOWLEDGED" in again.json()["error"]
    [row] = http.get("/api/v1/alarms").json()["alarms"]
    assert (row["state"], row["last_action"]) == ("ACKNOWLEDGED", "ACKNOWLEDGE")
    assert row["last_action_by"].endswith("(dashboard)")
    store.close()


def test_snooze_through_the_data_directory_and_its_refusals(tmp_path: Path) -> None:
    engine, store = active_alarm(tmp_path)
    engine.close()
    store.close()
    http = client(tmp_path, StoreActions(tmp_path))
    path = "/api/v1/alarms/anomaly_score/pump-02/snooze"
    assert http.post(path, headers=HEADERS, json={}).status_code == 400  # no snooze_s
    assert http.post(path, headers=HEADERS, json={"snooze_s": 10**9}).status_code == 400
    foreign = http.post(
        path, headers={**HEADERS, "origin": "http://evil.example"}, json={"snooze_s": 60}
    )
    assert foreign.status_code == 403
    done = http.post(path, headers=HEADERS, json={"snooze_s": 1800, "note": "checking"})
    assert done.status_code == 200, done.text
    assert done.json()["alarm"]["alarmState"]["stateName"] == "SNOOZE_DISABLED"
    assert http.get("/api/v1/alarms").json()["alarms"][0]["state"] == "SNOOZE_DISABLED"
    unknown = http.post(
        "/api/v1/alarms/nothing/pump-02/snooze", headers=HEADERS, json={"snooze_s": 60}
    )
    assert unknown.status_code == 404
    nokey = http.post("/api/v1/alarms/anomaly_score/pump-77/acknowledge", headers=HEADERS)
    assert nokey.status_code == 404
    assert (
        http.post("/api/v1/alarms/anomaly_score/pump-02/reset", headers=HEADERS).status_code == 404
    )


def test_a_snooze_that_ran_out_shows_as_normal_since_it_ended(tmp_path: Path) -> None:
    """SNOOZE_DISABLED: "After the snooze time, the alarm automatically changes to the NORMAL
    state" (AlarmState). A dashboard beside a stopped stack (no timer ran the expiry) shows
    the alarm as DescribeAlarm reports it: NORMAL since the snooze ended."""
    engine, store = active_alarm(tmp_path)
    engine.snooze("pump-02", 60, who="ana")
    engine.close()
    ended = 1_767_600_000.0 + 60
    view = DataView(tmp_path, wall=lambda: ended + 1)
    http = TestClient(create_app(DashboardApi(view)), base_url="http://127.0.0.1")
    [row] = http.get("/api/v1/alarms").json()["alarms"]
    assert (row["state"], row["since"], row["snoozed_until"]) == (
        "NORMAL",
        "2026-01-05T08:01:00Z",
        None,
    )
    assert DataView(tmp_path, wall=lambda: ended - 1).alarm_instances()[0]["state"] == (
        "SNOOZE_DISABLED"
    )
    store.close()
