"""Files in a data folder the dashboard cannot read: each is named where the figures it
would have fed are shown, so an operator sees why a trace or a drift figure is short,
instead of the page silently leaving the file out."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from dash_data import WALL_NOW, build
from starlette.testclient import TestClient

from cloud.cli.main import main
from cloud.dashboard.api import DashboardApi
from cloud.dashboard.app import create_app
from cloud.dashboard.queries import DataView
from cloud.dashboard.server import LOOPBACK_NAMES

INPUT = "buckets/plantwatch/input"
LATEST = f"{INPUT}/pump-01_20260105080000.csv"
"""pump-01's newest input file: inside both its trace window and its drift window."""


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("unreadable") / "data")


@pytest.fixture
def root(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(pristine, copy)
    return copy


def _serve(root: Path) -> TestClient:
    view = DataView(root, wall=lambda: WALL_NOW)
    app = create_app(DashboardApi(view), allowed_hosts=LOOPBACK_NAMES)
    return TestClient(app, base_url="http://127.0.0.1:8600", raise_server_exceptions=False)


def _not_utf8(path: Path) -> None:
    path.write_bytes(b"Timestamp,bearing_temp\n2026-01-05T07:59:00,\xff\xfe\n")


def _a_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _dangling(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.parent / "gone.csv")


DAMAGE = {"not UTF-8": _not_utf8, "a folder": _a_folder, "a broken link": _dangling}


@pytest.mark.parametrize("damage", DAMAGE)
def test_an_unreadable_input_file_is_named_in_model_health(root: Path, damage: str) -> None:
    DAMAGE[damage](root / LATEST)
    client = _serve(root)
    fleet = {a["key"]: a for a in client.get("/api/v1/model-health").json()["assets"]}
    one = client.get("/api/v1/model-health/pump-01").json()
    for doc in (fleet["pump-01"], one):
        assert [u["file"] for u in doc["unreadable"]] == [LATEST], doc["unreadable"]
        assert doc["unreadable"][0]["error"]
    assert fleet["pump-02"]["unreadable"] == []
    page = client.get("/model-health")
    assert page.status_code == 200 and LATEST in page.text


@pytest.mark.parametrize("damage", DAMAGE)
def test_an_unreadable_input_file_is_named_with_the_traces(root: Path, damage: str) -> None:
    DAMAGE[damage](root / LATEST)
    client = _serve(root)
    traces = client.get("/api/v1/assets/pump-01").json()["traces"]
    assert [u["file"] for u in traces["unreadable"]] == [LATEST], traces["unreadable"]
    assert traces["unreadable"][0]["error"]
    assert any(traces["sensors"].values())  # the other files' readings are still shown
    assert client.get("/api/v1/assets/pump-02").json()["traces"]["unreadable"] == []
    page = client.get("/assets/pump-01")
    assert page.status_code == 200 and LATEST in page.text


@pytest.mark.parametrize("damage", ["a folder", "a broken link"])
def test_an_unreadable_exported_shadow_is_listed_by_its_file(root: Path, damage: str) -> None:
    (root / "shadows.db").unlink()
    (root / "shadows").mkdir()
    (root / "shadows/pump-01.json").write_text('{"state":{"reported":{"mode":"run"}}}')
    bad = root / "shadows/pump-09.json"
    bad.write_text("{}")
    DAMAGE[damage](bad)
    client = _serve(root)
    shadows = {s["thing"]: s for s in client.get("/api/v1/shadows").json()["shadows"]}
    assert shadows["pump-01"]["error"] is None
    assert shadows["pump-09"]["error"].startswith("shadows/pump-09.json: "), shadows["pump-09"]
    assert "shadows/pump-09.json" in client.get("/shadows").text


def test_model_health_on_the_command_line_names_an_unreadable_input_file(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _a_folder(root / LATEST)
    assert main(["model", "health", "--data", str(root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    pump = next(a for a in doc["assets"] if a["key"] == "pump-01")
    [unreadable] = pump["unreadable"]
    assert unreadable["file"] == LATEST and "Is a directory" in unreadable["error"]
    assert main(["model", "health", "--data", str(root)]) == 0
    assert f"unreadable: {LATEST}" in " ".join(capsys.readouterr().out.split())


BIG = "9" * (129 * 1024)
"""A field over the csv module's default limit (128 KiB)."""


@pytest.mark.parametrize("where", ["cell", "header"])
def test_a_csv_field_over_128_kib_is_named_not_a_500(root: Path, where: str) -> None:
    path = root / LATEST
    lines = path.read_text().splitlines()
    if where == "cell":
        cells = lines[1].split(",")
        lines[1] = ",".join([cells[0], BIG, *cells[2:]])
    else:
        lines[0] = f"{lines[0]},x{BIG}"
    path.write_text("\n".join(lines) + "\n")
    client = _serve(root)
    for page in ("/api/v1/assets/pump-01", "/assets/pump-01", "/api/v1/model-health"):
        response = client.get(page)
        assert response.status_code == 200, (page, response.text[:200])
        assert BIG not in response.text
    traces = client.get("/api/v1/assets/pump-01").json()["traces"]
    [unreadable] = traces["unreadable"]
    assert unreadable["file"] == LATEST and "131072" in unreadable["error"], unreadable
    if where == "cell":  # only the line with the field is left out, not the file
        times = {t for points in traces["sensors"].values() for t, _v in points}
        assert "2026-01-05T07:59:50Z" in times and "2026-01-05T07:55:00Z" not in times
    assert LATEST in client.get("/assets/pump-01").text


STATE_PAGES = (
    "/",
    "/schedulers",
    "/alarms",
    "/devices",
    "/model-health",
    "/api/v1/overview",
    "/api/v1/schedulers",
    "/api/v1/executions",
    "/api/v1/alarms",
    "/api/v1/devices",
    "/api/v1/model-health",
    "/api/v1/version",
)
"""Every page that reads the state store (detectors, schedulers, alarms, devices)."""


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a database " * 100)


STATE_DAMAGE = {"not SQLite": _garbage, "a folder": _a_folder, "a broken link": _dangling}


@pytest.mark.parametrize("damage", STATE_DAMAGE)
def test_a_damaged_state_store_is_a_503_naming_it(root: Path, damage: str) -> None:
    """A state.db that is not SQLite, a folder or a broken link read as an empty one: no
    schedulers, no alarms, no devices, as if the stack had never run."""
    STATE_DAMAGE[damage](root / "state.db")
    client = _serve(root)
    for page in STATE_PAGES:
        response = client.get(page)
        assert response.status_code == 503, (page, response.status_code, response.text[:200])
        assert str(root / "state.db") in response.text, page
    assert client.get("/shadows").status_code == 200  # its own store


def test_a_state_store_a_starting_stack_has_only_created_reads_as_empty(root: Path) -> None:
    (root / "state.db").write_bytes(b"")
    client = _serve(root)
    assert client.get("/api/v1/schedulers").json() == {"schedulers": []}
    assert client.get("/api/v1/devices").status_code == 200


def test_file_names_that_are_not_utf8_are_shown_not_a_500(root: Path) -> None:
    """A results folder, input file or exported shadow copied in by hand with a name that is
    not UTF-8 (Python reads it with surrogates, which no response can encode) took down the
    fleet and model-health pages; it is shown with U+FFFD in place of each bad byte."""
    bucket = bytes(root / "buckets/plantwatch")
    results = bucket + b"/output/pump-\xff/2026-01-05T08:00:00Z"
    os.makedirs(results)
    with open(results + b"/results.jsonl", "w") as fh:
        fh.write('{"timestamp":"2026-01-05T07:59:00","prediction":1,"anomaly_score":0.9}\n')
    with open(bucket + b"/input/fan-\xfe_20260105080000.csv", "w") as fh:
        fh.write("Timestamp,flow\n2026-01-05T07:59:00,1\n")
    (root / "shadows.db").unlink()
    os.makedirs(bytes(root / "shadows"))
    with open(bytes(root / "shadows") + b"/pump-\xfd.json", "w") as fh:
        fh.write('{"state":{"reported":{"mode":"run"}}}')
    client = _serve(root)
    for page in ("/", "/api/v1/overview", "/model-health", "/api/v1/model-health", "/shadows"):
        response = client.get(page)
        assert response.status_code == 200, (page, response.text[:200])
    keys = {a["key"] for a in client.get("/api/v1/overview").json()["assets"]}
    assert "pump-\ufffd" in keys  # the input file's name is no L4E input name: not an asset
    assert client.get("/api/v1/assets/pump-%EF%BF%BD").json()["results"]["rows"] == 1
    [shadow] = client.get("/api/v1/shadows").json()["shadows"]
    assert shadow["thing"] == "pump-\ufffd" and shadow["reported"] == {"mode": "run"}


def test_a_lone_surrogate_in_a_stored_document_is_shown_not_a_500(root: Path) -> None:
    """JSON's ``"\\ud800"`` escape reads as a lone surrogate, which has no UTF-8 form: one
    in a hand-edited or damaged state.db took down every page that showed it."""
    with sqlite3.connect(root / "state.db") as db:
        db.execute(
            "INSERT INTO state (ns, key, value, version) VALUES (?, ?, ?, 1)",
            ("schedulers", "odd", '{"status": "RUNNING\\ud800", "config": {"model_name": "m"}}'),
        )
        db.execute(
            "INSERT INTO state (ns, key, value, version) VALUES (?, ?, ?, 1)",
            ("device-status", "s1/gw-z", '{"site": "s1", "sender": "gw-z\\udcff"}'),
        )
    db.close()
    client = _serve(root)
    for page in ("/schedulers", "/api/v1/schedulers", "/devices", "/api/v1/devices"):
        response = client.get(page)
        assert response.status_code == 200, (page, response.text[:200])
    schedulers = client.get("/api/v1/schedulers").json()["schedulers"]
    assert {s["name"]: s["status"] for s in schedulers}["odd"] == "RUNNING\ufffd"


@pytest.mark.parametrize("damage", ["a folder", "a broken link"])
def test_a_shadow_store_that_is_no_file_is_a_503_naming_it(root: Path, damage: str) -> None:
    """It read as no store at all: an empty shadows page for a stack that had shadows."""
    STATE_DAMAGE[damage](root / "shadows.db")
    client = _serve(root)
    for page in ("/shadows", "/api/v1/shadows"):
        response = client.get(page)
        assert response.status_code == 503, (page, response.text[:200])
        assert f"{root / 'shadows.db'}: not a regular file" in response.text
    assert client.get("/api/v1/overview").status_code == 200


def test_a_shadow_store_a_starting_stack_has_only_created_reads_as_empty(root: Path) -> None:
    (root / "shadows.db").write_bytes(b"")
    assert _serve(root).get("/api/v1/shadows").json() == {"shadows": []}


@pytest.mark.parametrize("damage", ["not UTF-8", "a folder", "a broken link"])
def test_an_unreadable_outbox_is_named_with_the_alerts(root: Path, damage: str) -> None:
    """alerts.jsonl that was a folder or a broken link read as no alerts at all."""
    if damage == "not UTF-8":  # one bad line is shown as such, the others as they are
        with open(root / "alerts.jsonl", "ab") as fh:
            fh.write(b'{"sent_at": 1, "channel": "email", "body": "\xff"}\n')
        alerts = _serve(root).get("/api/v1/alarms").json()["alerts"]
        assert alerts[0]["body"] == "\ufffd" and len(alerts) > 1
        return
    DAMAGE[damage](root / "alerts.jsonl")
    client = _serve(root)
    alerts = client.get("/api/v1/alarms").json()["alerts"]
    assert alerts == [{"line": None, "error": alerts[0]["error"]}]
    assert alerts[0]["error"].startswith("alerts.jsonl: ")
    page = client.get("/alarms")
    assert page.status_code == 200 and "alerts.jsonl: " in page.text


def _fifo(path: Path) -> None:
    if path.exists():
        path.unlink()
    os.mkfifo(path)


def _answers_in_time(client: TestClient, page: str, fifo: Path) -> str:
    """The page's text; a page still reading the named pipe after 10 s fails the test (the
    pipe is then opened for writing and closed, so the blocked reader ends)."""
    answer: list[str] = []
    reader = threading.Thread(target=lambda: answer.append(client.get(page).text), daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():
        with open(fifo, "w"):
            pass
        reader.join(10)
        pytest.fail(f"{page} waited on the named pipe {fifo.name}")
    return answer[0]


@pytest.mark.parametrize(
    ("fifo", "page", "named"),
    [
        (LATEST, "/api/v1/assets/pump-01", True),
        (LATEST, "/api/v1/model-health", True),
        ("alerts.jsonl", "/api/v1/alarms", True),
        ("buckets/plantwatch/output/pump-01/2026-01-05T07:55:00Z/results.jsonl", "/", False),
    ],
)
def test_a_named_pipe_in_the_data_folder_does_not_hold_a_page(
    root: Path, fifo: str, page: str, named: bool
) -> None:
    """Reading a named pipe waits for a writer that never comes: each such request held
    one of the server's worker threads for good, and a page that polls used them all up."""
    path = root / fifo
    path.parent.mkdir(parents=True, exist_ok=True)
    _fifo(path)
    text = _answers_in_time(_serve(root), page, path)
    if named:
        assert f"{fifo}: " in text or f'"file":"{fifo}"' in text, text[:300]


def test_a_named_pipe_among_exported_shadows_is_named(root: Path) -> None:
    (root / "shadows.db").unlink()
    (root / "shadows").mkdir()
    _fifo(root / "shadows/pump-09.json")
    text = _answers_in_time(_serve(root), "/api/v1/shadows", root / "shadows/pump-09.json")
    assert "shadows/pump-09.json: " in text


def test_a_named_pipe_as_runtime_json_does_not_hold_the_dashboard_command(root: Path) -> None:
    """``plantwatch dashboard`` reads the default site from runtime.json before it serves;
    a named pipe there held the command before it printed its URL."""
    from cloud.cli.dashboard import _runtime_site
    from cloud.runtime.layout import DataLayout

    layout = DataLayout.existing(root)
    _fifo(layout.runtime_file)
    found: list[str | None] = []
    reader = threading.Thread(target=lambda: found.append(_runtime_site(layout)), daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():
        with open(layout.runtime_file, "w"):
            pass
        pytest.fail("reading runtime.json waited on the named pipe")
    assert found == [None]


RESULTS = "buckets/plantwatch/output/pump-01/2026-01-05T07:55:00Z/results.jsonl"


@pytest.mark.parametrize("damage", ["a broken link", "a named pipe"])
def test_an_unreadable_results_file_is_named_with_the_assets_results(
    root: Path, damage: str
) -> None:
    """A results object that cannot be read left its rows out of the asset page unsaid."""
    path = root / RESULTS
    if damage == "a named pipe":
        _fifo(path)
    else:
        _dangling(path)
    client = _serve(root)
    results = client.get("/api/v1/assets/pump-01").json()["results"]
    assert [u["file"] for u in results["unreadable"]] == [RESULTS]
    assert results["rows"] > 0
    assert client.get("/api/v1/assets/pump-02").json()["results"]["unreadable"] == []
    assert RESULTS in client.get("/assets/pump-01").text
