"""Commands that read a data directory: they change nothing, and piped they print whole lines.

One data directory is populated the way a user gets one (a trained model, a scheduler that
ran a window, detector instances with an alarm and its alerts, a device shadow), with names
longer than a terminal is wide, then:

- every read-only command, human and ``--json``, leaves every file and folder as it was
  (names, sizes and modification times), and a missing ``--data`` is exit 2 that creates
  nothing, not even the default ``./plantwatch-data``;
- with stdout piped and ``COLUMNS=80`` each command prints its long names whole on one
  line: nothing wrapped, no table cell cut to ``…``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cloud.adapters.local import FsObjectStore, InMemoryPublisher, OutboxNotifier, SqliteStateStore
from cloud.cli.main import main
from cloud.detectors import DetectorEngine, default_detector_paths, load_detector_model, load_input
from cloud.detectors.actions import LocalActionSink
from cloud.feeder import ResultsFeeder
from cloud.shadow.client import DirectShadowClient
from edge.clock import ManualClock

ASSET = "equipment_alpha_pump_with_a_rather_long_asset_name_0001"
MODEL = "pump-model-with-a-name-long-enough-to-overflow-a-column"
SCHEDULER = "scheduler-for-the-long-named-pump-model-on-the-night-shift"
SENSORS = ("bearing_temperature_drive_end_c", "discharge_pressure_bar", "flow_m3h", "speed_rpm")
WINDOW_END = "2026-02-01T00:05:00"


def _quietly(argv: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(argv)


def _dataset(root: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    index = pd.date_range("2026-01-01", periods=20 * 144, freq="10min", tz="UTC")
    load = 60 + rng.normal(0, 2, len(index))
    frame = pd.DataFrame(
        {
            SENSORS[0]: 40 + 0.1 * load + rng.normal(0, 0.5, len(index)),
            SENSORS[1]: 0.05 * load + 1.0 + rng.normal(0, 0.05, len(index)),
            SENSORS[2]: 3.0 * load + rng.normal(0, 2.0, len(index)),
            SENSORS[3]: 20 * load + rng.normal(0, 5, len(index)),
        },
        index=index,
    )
    folder = root / "dataset" / ASSET
    folder.mkdir(parents=True)
    frame.to_csv(folder / f"{ASSET}.csv", index_label="Timestamp", date_format="%Y-%m-%dT%H:%M:%S")
    labels = root / "labels.csv"
    labels.write_text("2026-01-10T00:00:00.000000,2026-01-10T02:00:00.000000\n")
    return root / "dataset", labels


def _alarm(data: Path) -> None:
    """Three anomalous results for ASSET through the shipped detector model: an alarm."""
    clock = ManualClock(1_769_904_000.0)  # 2026-02-01T00:00:00Z
    state = SqliteStateStore(data / "state.db")
    model_path, input_path = default_detector_paths()
    engine = DetectorEngine(
        load_detector_model(model_path),
        [load_input(input_path)],
        state,
        clock,
        LocalActionSink(OutboxNotifier(data / "alerts.jsonl"), InMemoryPublisher(), state=state),
    )
    store = FsObjectStore(data / "buckets" / "detector-feed")
    rows = [
        {
            "timestamp": f"2026-02-01T00:0{i}:00.000000",
            "prediction": 1,
            "prediction_reason": "ANOMALY_DETECTED",
            "anomaly_score": 0.9,
            "diagnostics": [{"name": f"{ASSET}\\{SENSORS[0]}", "value": 1.0}],
        }
        for i in range(3)
    ]
    store.put(
        f"out/{ASSET}/2026-02-01T00:00:00Z/results.jsonl",
        "".join(json.dumps(r) + "\n" for r in rows).encode(),
    )
    ResultsFeeder(store, "out/", engine, state).poll()
    state.close()


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("state")
    dataset, _labels = _dataset(root)
    data = root / "data"
    train = ["model", "train", "--data", str(data), "--dataset", str(dataset), "--name", MODEL]
    train.append("--no-alarm-rules")  # the window's every other row is an event of its own
    assert _quietly(train) == 0
    assert _quietly(["schedulers", "create", SCHEDULER, "--model", MODEL, "--data", str(data)]) == 0
    inbox = data / "buckets" / "input" / "input"
    inbox.mkdir(parents=True)
    rows = "".join(
        f"2026-02-01T00:0{m}:00.000000,300,4,180,1200\n" if m % 2 else
        f"2026-02-01T00:0{m}:00.000000,46,4,180,1200\n"
        for m in range(5)
    )  # fmt: skip
    (inbox / f"{ASSET}_20260201000500.csv").write_text(f"Timestamp,{','.join(SENSORS)}\n{rows}")
    run = ["schedulers", "run", SCHEDULER, "--window-end", WINDOW_END, "--data", str(data)]
    assert _quietly(run) == 0
    _alarm(data)
    shadows = DirectShadowClient(data / "shadows.db", ManualClock(0))
    shadows.update(ASSET, desired={"mode": "safe", "setpoints": {"bearing_limit_c": 80}})
    shadows.close()
    return root, data, dataset


def read_only_commands(data: Path, dataset: Path, labels: Path) -> list[list[str]]:
    d = ["--data", str(data)]
    return [
        ["model", "list", *d],
        ["model", "describe", MODEL, *d],
        ["model", "evaluate", "--name", MODEL, "--dataset", str(dataset), "--labels",
         str(labels), *d],
        ["schedulers", "list", *d],
        ["schedulers", "describe", SCHEDULER, *d],
        ["executions", *d],
        ["events", "--scheduler", SCHEDULER, *d],
        ["detectors", "list", *d],
        ["detectors", "describe", ASSET, *d],
        ["alarms", "sent", *d],
        ["alarms", "list", *d],
        ["alarms", "history", *d],
        ["alarms", "dead-letters", *d],
        ["shadow", "get", ASSET, *d],
        ["shadow", "list", ASSET, *d],
        ["query", "SELECT asset, count(*) AS n FROM results GROUP BY asset", *d],
        ["archive", "status", *d],
        ["retention", "show", *d],
    ]  # fmt: skip


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def test_read_only_commands_leave_the_filesystem_unchanged(populated) -> None:
    root, data, dataset = populated
    commands = read_only_commands(data, dataset, root / "labels.csv")
    before = _snapshot(root)
    assert any(name.endswith("state.db") for name in before)
    for argv in commands:
        for extra in ([], ["--json"]):
            assert _quietly([*argv, *extra]) == 0, argv
            assert _snapshot(root) == before, f"{' '.join(argv + extra)} changed files"


def test_read_only_commands_on_a_missing_data_directory_exit_2_and_create_nothing(
    populated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root, _data, dataset = populated
    missing = tmp_path / "missing"
    for argv in read_only_commands(missing, dataset, root / "labels.csv"):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and f"--data {missing}: no such data directory" in err[0], err
    monkeypatch.chdir(tmp_path)
    for argv in read_only_commands(missing, dataset, root / "labels.csv"):
        default = [a for a in argv if a not in ("--data", str(missing))]
        assert main(default) == 2, default
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_missing_state_file_reads_as_empty(tmp_path: Path, capsys) -> None:
    for argv, empty in (
        (["model", "list"], "no models found"),
        (["schedulers", "list"], "no schedulers found"),
        (["executions"], "no executions found"),
        (["detectors", "list"], "no detector instances yet"),
        (["alarms", "list"], "no alarm instances yet"),
        (["alarms", "history"], "no alarm history yet"),
        (["alarms", "dead-letters"], "no dead letters"),
    ):
        assert main([*argv, "--data", str(tmp_path)]) == 0
        assert capsys.readouterr().out.startswith(empty)
    assert list(tmp_path.iterdir()) == []


def test_piped_output_is_never_wrapped_or_cut(populated) -> None:
    root, data, dataset = populated
    commands = [
        *read_only_commands(data, dataset, root / "labels.csv"),
        ["rules", "check", str(Path("cloud/rules/default_rules.json").resolve())],
    ]
    script = (
        "import json, sys\n"
        "from cloud.cli.main import main\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    print('=== ' + ' '.join(argv[:2]), flush=True)\n"
        "    print('=== exit', main(argv), flush=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80", "TERM": "xterm-256color"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    sections = {
        chunk.split("\n", 1)[0]: chunk.split("\n", 1)[1]
        for chunk in proc.stdout.split("=== ")[1:]
        if not chunk.startswith("exit")
    }
    assert "=== exit 1" not in proc.stdout and "=== exit 2" not in proc.stdout, proc.stderr
    assert "…" not in proc.stdout
    expectations = {
        "model list": [MODEL],
        "model describe": [
            MODEL,
            ", ".join(f"{ASSET}\\{s}" for s in SENSORS),
            "no labels: quality not measured",  # trained without labels: no F1 of 0.0
        ],
        "model evaluate": ["events detected     0 of 1", "detection delay     mean -"],
        "schedulers list": [SCHEDULER, MODEL],
        "schedulers describe": [SCHEDULER, MODEL],
        "executions --data": [SCHEDULER, "SUCCESS"],
        "events --scheduler": [f"{ASSET}\\{SENSORS[0]}"],
        "detectors list": [ASSET, "equipment_anomaly", "Alarm"],
        "detectors describe": [ASSET, "Alarm"],
        "alarms sent": [ASSET, f"PLANTWATCH ALARM {ASSET[:37]}"],
        "shadow get": [ASSET, '"safe"', "setpoints.bearing_limit_c"],
        "rules check": ["dt/"],
        "query SELECT asset, count(*) AS n FROM results GROUP BY asset": [ASSET],
    }
    for section, needles in expectations.items():
        text = sections[section]
        for needle in needles:
            assert any(needle in line for line in text.splitlines()), (section, needle, text)
    assert "F1" not in sections["model describe"]
    assert max(len(line) for line in proc.stdout.splitlines()) > 80
