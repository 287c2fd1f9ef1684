"""Hostile data in a data folder: what devices sent and what a damaged file holds must
reach the pages escaped, and no single value may take a page or its JSON down.

Each case writes into a copy of the real-store folder from ``dash_data`` and then reads
every page and endpoint: all answer 200 with strict JSON (no NaN, which JSON has not)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from dash_data import WALL_NOW, build
from starlette.testclient import TestClient

from cloud.adapters.local import SqliteStateStore
from cloud.dashboard.api import DashboardApi
from cloud.dashboard.app import create_app
from cloud.dashboard.queries import DataView
from cloud.dashboard.server import LOOPBACK_NAMES
from cloud.devices.health import record
from cloud.shadow.operations import ShadowOperations
from cloud.shadow.store import ShadowStore
from edge.clock import ManualClock
from edge.wire import DeviceStatus

BASE = "http://127.0.0.1:8600"
RESULTS = (
    "/",
    "/assets/pump-01",
    "/api/v1/overview",
    "/api/v1/assets/pump-01",
    "/api/v1/model-health/pump-01",
)
ALERTS = ("/alarms", "/api/v1/alarms")
SCHEDULERS = ("/schedulers", "/api/v1/schedulers", "/api/v1/executions")
SHADOWS = ("/shadows", "/api/v1/shadows")
DEEP = 4096  # 8 KB of nesting: {"a":{"a":...}}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("hostile") / "data")


def _strict(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in a JSON response")

    return json.loads(text, parse_constant=refuse)


def _serve(root: Path) -> TestClient:
    view = DataView(root, wall=lambda: WALL_NOW)
    app = create_app(DashboardApi(view), allowed_hosts=LOOPBACK_NAMES)
    return TestClient(app, base_url=BASE, raise_server_exceptions=False)


def _results(*lines: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        folder = root / "buckets/plantwatch/output/pump-01/2026-01-05T08:00:00Z"
        folder.mkdir(parents=True)
        (folder / "results.jsonl").write_text("".join(f"{line}\n" for line in lines))

    return write


def _outbox(*lines: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        with open(root / "alerts.jsonl", "a") as fh:
            fh.write("".join(f"{line}\n" for line in lines))

    return write


def _stored_shadow(document: str) -> Callable[[Path], None]:
    """A shadow row the shadow service could never have written (a damaged file)."""

    def write(root: Path) -> None:
        with sqlite3.connect(root / "shadows.db") as db:
            db.execute(
                "INSERT INTO shadows (thing, name, document, version) VALUES (?, '', ?, 1)",
                ("pump-09", document),
            )
        db.close()

    return write


def _exported_shadow(document: str) -> Callable[[Path], None]:
    """A demo folder's ``shadows/<thing>.json``, read when there is no shadow store."""

    def write(root: Path) -> None:
        (root / "shadows.db").unlink()
        (root / "shadows").mkdir()
        (root / "shadows/pump-09.json").write_text(document)

    return write


def _exported_executions(document: str) -> Callable[[Path], None]:
    """A demo folder's ``executions.json``, read when the state store has none."""

    def write(root: Path) -> None:
        (root / "state.db").unlink()
        (root / "executions.json").write_text(document)

    return write


def _stored(*entries: tuple[str, str, object]) -> Callable[[Path], None]:
    """State-store documents the engines would never write (a damaged or edited file)."""

    def write(root: Path) -> None:
        with SqliteStateStore(root / "state.db") as store:
            for namespace, key, doc in entries:
                store.put(namespace, key, doc)

    return write


def _csv(text: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        (root / "buckets/plantwatch/input/pump-01_20260105080500.csv").write_text(text)

    return write


ROW = '{"timestamp":"2026-01-05T08:00:00","prediction":%s,"anomaly_score":%s,"diagnostics":%s}'
CASES: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "NaN score": (_results(ROW % (1, "NaN", "[]")), RESULTS),
    "infinite score": (_results(ROW % (1, "1e999", "[]")), RESULTS),
    "score too large for a float": (_results(ROW % (1, "9" * 400, "[]")), RESULTS),
    "prediction 1e999": (_results(ROW % ("1e999", 0.9, "[]")), RESULTS),
    "NaN diagnostic share": (_results(ROW % (1, 0.9, '[{"name":"x","value":NaN}]')), RESULTS),
    "Infinity diagnostic share": (
        _results(ROW % (1, 0.9, '[{"name":"x","value":Infinity}]')),
        RESULTS,
    ),
    "diagnostic share too large for a float": (
        _results(ROW % (1, 0.9, '[{"name":"x","value":%s}]' % ("9" * 400))),
        RESULTS,
    ),
    "lone surrogates in the reason and a sensor name": (
        _results(
            ROW.replace('"prediction":', '"prediction_reason":"\\ud800","prediction":')
            % (1, 0.9, '[{"name":"x\\udcff","value":0.9}]')
        ),
        RESULTS,
    ),
    "year 1": (_results(ROW.replace("2026-01-05", "0001-01-01") % (1, 0.9, "[]")), RESULTS),
    "year 9999": (
        _results(ROW.replace("2026-01-05T08:00:00", "9999-12-31T23:59:59") % (1, 0.9, "[]")),
        RESULTS,
    ),
    "raw trace nan, inf and 1e999": (
        _csv(
            "Timestamp,bearing_temp,flow,vibration\n"
            "2026-01-05T07:59:00,nan,inf,-inf\n2026-01-05T07:59:10,1e999,1,2\n"
        ),
        RESULTS,
    ),
    "raw trace at the ends of the float range": (
        _csv(
            "Timestamp,bearing_temp,flow,vibration\n"
            "2026-01-05T07:59:00,1.7e308,1,1\n2026-01-05T07:59:10,-1.7e308,1,1\n"
        ),
        RESULTS,
    ),
    "exported execution with a numeric scheduler and odd types": (
        _exported_executions(
            '[{"scheduler": 5, "data_start": 5, "data_end": [1], "status": {"a": 1},'
            ' "skipped": "abc", "rows": "x", "failed_reason": 7, "result_keys": 5}]'
        ),
        SCHEDULERS,
    ),
    "stored scheduler document a list": (
        _stored(("schedulers", "odd", [1, 2]), ("schedulers", "odd2", {"config": [1]})),
        (*SCHEDULERS, "/model-health"),
    ),
    "stored alarm model and instance of the wrong shapes": (
        _stored(
            ("alarm-models", "m", {"definition": [1]}),
            ("alarms/m", "k", {"state": "ACTIVE", "customer_action": [1]}),
            ("alarms/m", "k2", [1]),
        ),
        ALERTS,
    ),
    "stored device status of the wrong types": (
        _stored(("device-status", "s1/gw-x", {"site": "s1", "interval_s": "x"})),
        ("/devices", "/api/v1/devices", "/api/v1/version"),
    ),
    "outbox body a number": (_outbox('{"sent_at":1,"channel":"email","body":5}'), ALERTS),
    "outbox attributes a list": (
        _outbox('{"sent_at":1,"channel":"email","attributes":[1]}'),
        ALERTS,
    ),
    "outbox sent_at a string": (_outbox('{"sent_at":"today","channel":"email"}'), ALERTS),
    "outbox sent_at NaN": (_outbox('{"sent_at":NaN,"channel":"email"}'), ALERTS),
    "outbox subject NaN": (_outbox('{"sent_at":1,"channel":"email","subject":NaN}'), ALERTS),
    "stored shadow 8 KB deep": (
        _stored_shadow(
            '{"state":{"reported":' + '{"a":' * DEEP + "1" + "}" * DEEP + '},"metadata":{},'
            '"version":1}'
        ),
        SHADOWS,
    ),
    "stored shadow NaN": (
        _stored_shadow('{"state":{"reported":{"t":NaN}},"metadata":{},"version":1}'),
        SHADOWS,
    ),
    "stored shadow metadata timestamp 1e300": (
        _stored_shadow(
            '{"state":{"desired":{"m":1}},"metadata":{"desired":{"m":{"timestamp":1e300}}},'
            '"version":1}'
        ),
        SHADOWS,
    ),
    "exported shadow 8 KB deep": (
        _exported_shadow('{"state":{"reported":' + "[" * (2 * DEEP) + "]" * (2 * DEEP) + "}}"),
        SHADOWS,
    ),
    "exported shadow NaN": (_exported_shadow('{"state":{"reported":{"t":NaN}}}'), SHADOWS),
    "exported shadow 900 levels deep": (
        _exported_shadow('{"state":{"reported":' + '{"a":' * 900 + "1" + "}" * 900 + "}}"),
        SHADOWS,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_every_page_answers_with_strict_json(case: str, pristine: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    write, paths = CASES[case]
    write(root)
    client = _serve(root)
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:200])
        if path.startswith("/api/"):
            _strict(response.text)


def test_results_lines_the_feeder_would_quarantine_are_not_shown(
    pristine: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    _results(
        ROW % (1, "NaN", "[]"),
        ROW.replace("08:00:00", "08:00:10") % (7, 0.9, "[]"),
        ROW.replace("08:00:00", "08:00:20") % ("true", 0.9, "[]"),
        ROW.replace("08:00:00", "08:00:30") % (1, 0.9, '[{"name":"pump-01\\\\flow","value":0.9}]'),
    )(root)
    doc = _serve(root).get("/api/v1/assets/pump-01").json()
    assert doc["results"]["rows"] == 24 * 30 + 1
    assert doc["results"]["last"] == "2026-01-05T08:00:30Z"
    assert doc["last_diagnostics"]["top_sensor"] == "pump-01\\flow"


def test_damaged_lines_and_shadows_are_listed_not_hidden(pristine: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    _outbox('{"sent_at":1,"channel":"email","body":5}', "not json")(root)
    _stored_shadow('{"state":{"reported":' + '{"a":' * DEEP + "1" + "}" * DEEP + "}}")(root)
    client = _serve(root)
    alerts = client.get("/api/v1/alarms").json()["alerts"]
    assert alerts[:2] == [
        {"line": 3, "error": "not JSON"},
        {"line": 2, "error": "body: expected a string"},
    ]
    assert "outbox line 2: body: expected a string" in client.get("/alarms").text
    shadows = {s["thing"]: s for s in client.get("/api/v1/shadows").json()["shadows"]}
    assert shadows["pump-09"]["error"].startswith("not a shadow document")
    assert shadows["pump-02"]["error"] is None
    assert "unreadable: not a shadow document" in client.get("/shadows").text


def test_what_a_device_reports_reaches_the_page_escaped(pristine: Path, tmp_path: Path) -> None:
    """A shadow's reported state is the device's own text: markup, a closing script tag,
    a ``javascript:`` URL and a 6 KB string go through the shadow service and stay text."""
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    hostile = {
        "html": "<img src=x onerror=alert(1)>",
        "script": "</script><script>alert(2)</script>",
        "url": "javascript:alert(3)",
        "quote": "\"'><svg onload=alert(4)>",
        "long": "A" * 6000,
    }
    shadows = ShadowOperations(ShadowStore(root / "shadows.db"), ManualClock(1_767_600_000))
    shadows.update("pump-02", None, {"state": {"reported": hostile}})
    shadows.store.close()
    client = _serve(root)
    page = client.get("/shadows").text
    for marker in ("<img", "<script>alert", "<svg"):
        assert marker not in page
    assert 'href="javascript' not in page and "A" * 6000 in page
    reported = client.get("/api/v1/shadows/pump-02").json()["shadows"][0]["reported"]
    assert reported["script"] == hostile["script"]


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]] | None:
    if not root.exists():
        return None
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode)
        for p in sorted(root.rglob("*"))
    }


def _garbage_shadow_store(root: Path) -> None:
    (root / "shadows.db").write_bytes(b"not a database " * 100)


def _deep_executions(root: Path) -> None:
    (root / "state.db").unlink()
    (root / "executions.json").write_text("[" * 5000 + "]" * 5000)


ERROR_PATHS = (
    "/api/v1/assets/nope",
    "/api/v1/assets/%2e%2e",
    "/api/v1/executions?scheduler=nope",
    "/api/v1/executions?limit=0",
    "/api/v1/executions?limit=1&limit=2",
    "/api/v1/shadows/nope",
    "/api/v1/devices/s1/nope",
    "/api/v1/model-health/nope",
    "/api/v1/nothing",
    "/assets/nope",
    "/static/nope",
    "/api/v1/overview?" + "x" * 9000,
)


@pytest.mark.parametrize(
    "damage",
    [None, _garbage_shadow_store, _deep_executions, shutil.rmtree],
    ids=["intact", "garbage shadows.db", "deep executions.json", "no folder"],
)
def test_no_request_writes_to_the_folder_not_even_a_failing_one(
    damage: Callable[[Path], None] | None, pristine: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    if damage is not None:
        damage(root)
    before = _snapshot(root)
    client = _serve(root)
    for path in ERROR_PATHS:
        for method in ("GET", "HEAD", "PUT"):
            assert client.request(method, path).status_code >= 400
    for path in (*ALERTS, *SHADOWS, "/api/v1/overview", "/api/v1/executions", "/api/v1/devices"):
        assert client.get(path).status_code in (200, 503)
    assert _snapshot(root) == before


def test_a_damaged_store_or_export_is_named_not_a_500(pristine: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    _garbage_shadow_store(root)
    _deep_executions(root)
    client = _serve(root)
    shadows = client.get("/api/v1/shadows")
    assert shadows.status_code == 503
    assert shadows.json()["error"].endswith("cannot read shadow store: file is not a database")
    assert client.get("/shadows").status_code == 503
    executions = client.get("/api/v1/executions")
    assert executions.status_code == 200 and executions.json()["executions"] == []


MARKUP = "<img src=x onerror=alert(1)>"


def test_markup_in_names_from_files_and_devices_stays_text(pristine: Path, tmp_path: Path) -> None:
    """Names come from folder and file names, results lines, CSV headers and device
    statuses; markup in any of them must reach the pages as text, links included."""
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    bucket = root / "buckets/plantwatch"
    folder = bucket / "output" / MARKUP / "2026-01-05T06:00:00Z"
    folder.mkdir(parents=True)
    line = {
        "timestamp": "2026-01-05T06:00:10",
        "prediction": 1,
        "anomaly_score": 0.9,
        "prediction_reason": MARKUP,
        "diagnostics": [
            {"name": f"{MARKUP}\\</script><script>alert(2)</script>", "value": 0.9},
            {"name": "javascript:alert(3)", "value": 0.1},
        ],
    }
    (folder / "results.jsonl").write_text(json.dumps(line) + "\n")
    (bucket / "input" / f"{MARKUP}_20260105060500.csv").write_text(
        f"Timestamp,{MARKUP}</script>\n2026-01-05T06:00:10,1\n"
    )
    with SqliteStateStore(root / "state.db") as store:
        status = DeviceStatus(
            site="s1", sender="gw-s9", state="online", interval_s=5.0, last_error=MARKUP
        )
        record(store, status, wall_now=WALL_NOW, clock_now=0.0)
    client = _serve(root)
    key = quote(MARKUP, safe="")
    for path in ("/", f"/assets/{key}", "/model-health", "/devices"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "<img" not in page.text and "<script>alert" not in page.text, path
        assert 'href="javascript' not in page.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text, path  # shown, as text
    assert client.get(f"/api/v1/assets/{key}").json()["asset"] == MARKUP


def test_a_damaged_model_file_is_a_503_naming_it_and_only_model_health_fails(
    pristine: Path, tmp_path: Path
) -> None:
    """Invalid UTF-8 in model.json was a 400, as though the request were wrong."""
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    [model] = root.rglob("model.json")
    model.write_bytes(b'{"info": "\xff\xfe"}')
    client = _serve(root)
    for path in ("/api/v1/model-health", "/api/v1/model-health/pump-01", "/model-health"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert "model.json: " in response.text and "decode byte 0xff" in response.text
    for path in ("/", "/assets/pump-01", "/api/v1/overview"):
        assert client.get(path).status_code == 200


def test_a_long_outbox_costs_only_the_lines_shown(pristine: Path, tmp_path: Path) -> None:
    """The outbox only grows; every refresh of the alarms page parsed and kept every line
    of it before taking the newest 50."""
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    line = json.dumps({"sent_at": 1_767_600_000, "channel": "email", "body": "x" * 200})
    _outbox(*[line] * 20000)(root)
    view = DataView(root, wall=lambda: WALL_NOW)
    tracemalloc.start()
    try:
        alerts = view.alerts(limit=50)
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(alerts) == 50 and alerts[0]["line"] == 20001
    assert peak < 2_000_000, f"{peak / 1e6:.1f} MB to show 50 lines"
