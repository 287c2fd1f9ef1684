"""``plantwatch dashboard --data DIR`` over a stopped stack's folder, and the demo's
``--keep-open`` server: each prints its URL, serves the API, stops on SIGTERM with exit 0
and leaves the folder exactly as it was."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def folder(root: Path) -> Path:
    results = root / "buckets" / "plantwatch" / "output" / "pump-01" / "2026-01-05T06:00:00Z"
    results.mkdir(parents=True)
    line = {
        "timestamp": "2026-01-05T06:00:10.000000",
        "prediction": 1,
        "anomaly_score": 0.9,
        "diagnostics": [
            {"name": "pump-01\\flow", "value": 0.9},
            {"name": "pump-01\\temp", "value": 0.1},
        ],
    }
    (results / "results.jsonl").write_text(json.dumps(line) + "\n")
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def serve(argv: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("dashboard: http://127.0.0.1:"):
        proc.kill()
        pytest.fail(f"{line!r} {proc.stderr.read()}")
    return proc, line.removeprefix("dashboard: ")


def test_dashboard_command_serves_a_folder_read_only(tmp_path: Path) -> None:
    data = folder(tmp_path / "data")
    before = snapshot(data)
    proc, url = serve(
        [sys.executable, "-m", "cloud.cli.main", "dashboard", "--data", str(data), "--port", "0"]
    )
    try:
        with urllib.request.urlopen(f"{url}/api/v1/assets/pump-01", timeout=10) as response:
            doc = json.load(response)
        assert doc["last_diagnostics"]["top_sensor"] == "pump-01\\flow"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(
                urllib.request.Request(
                    f"{url}/api/v1/alarms/m/k/acknowledge",
                    method="POST",
                    headers={"x-plantwatch-action": "1"},
                ),
                timeout=10,
            )
        assert refused.value.code == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert snapshot(data) == before


def test_a_missing_folder_or_an_open_host_without_auth_is_refused(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "cloud.cli.main", "dashboard", "--port", "0"]
    missing = subprocess.run(
        [*base, "--data", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "no such data directory" in missing.stderr
    assert not (tmp_path / "nope").exists()
    open_host = subprocess.run(
        [*base, "--data", str(folder(tmp_path / "d")), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
    )
    assert open_host.returncode == 2
    assert open_host.stderr.strip().splitlines() == [
        "plantwatch: error: dashboard host 0.0.0.0: a dashboard reachable from other machines"
        " needs credentials (--auth); keep the default 127.0.0.1 otherwise"
    ]


def test_keep_open_serves_the_finished_demo_folder_until_sigterm(tmp_path: Path) -> None:
    data = folder(tmp_path / "demo")
    code = (
        "import sys; from pathlib import Path; from cloud.cli.demo import _keep_open;"
        " from cloud.dashboard.server import DashboardConfig;"
        " _keep_open(Path(sys.argv[1]), DashboardConfig(port=0), None)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stderr.readline()
        assert "dashboard: still serving http://127.0.0.1:" in line, line
        url = line.split("serving ", 1)[1].split(" ", 1)[0]
        with urllib.request.urlopen(f"{url}/api/v1/overview", timeout=10) as response:
            assert [a["key"] for a in json.load(response)["assets"]] == ["pump-01"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_a_busy_default_port_gives_way_and_a_busy_chosen_port_is_refused(tmp_path: Path) -> None:
    import socket

    from cloud.dashboard.server import DashboardConfig, DashboardServer
    from edge.errors import ConfigError

    data = folder(tmp_path / "data")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        server = DashboardServer(data, DashboardConfig(port=taken, any_port_if_busy=True)).start()
        try:
            assert server.port not in (0, taken)
            with urllib.request.urlopen(f"{server.url}/api/v1/version", timeout=10) as response:
                assert json.load(response)["api"] == "v1"
        finally:
            server.stop()
        with pytest.raises(ConfigError, match=f"--dashboard-port {taken}: cannot listen"):
            DashboardServer(data, DashboardConfig(port=taken)).start()
