"""``plantwatch up`` runs every detector model the import's next step names: a message one
imported model's ``iotEvents`` action sends reaches the other imported model reading its
input."""

from __future__ import annotations

import json
import shlex
import signal
from pathlib import Path

import pytest
from detector_models import relay_chain_files
from ingest_helpers import start_up
from waiting import wait_until

from cloud.adapters.local.sqlite_state_store import SqliteStateStore
from cloud.cli.main import main
from cloud.runtime.layout import DataLayout


def _detector(data: Path, model: str, key: str) -> object:
    with SqliteStateStore(DataLayout(data).state_db, readonly=True) as store:
        return store.get(f"detectors/{model}", key)


def test_an_iotevents_action_reaches_the_other_imported_model_under_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN spotter (on the scoring results) and relayed (on Relay, which spotter's
    # iotEvents action feeds) imported, and up started as the import's next step says
    data = tmp_path / "data"
    folder = relay_chain_files(tmp_path / "iot")
    assert main(["import", "iotevents", str(folder), "--data", str(data)]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("next: ")]
    options = shlex.split(line.removeprefix("next: "))[4:]  # after plantwatch up --data DIR
    up = start_up(data, *options, "--port", "0", "--no-dashboard", "--no-archive")
    try:
        # WHEN a results row of pump-07 is written
        row = {"timestamp": "2026-01-01T00:00:00.000000", "prediction": 1, "anomaly_score": 0.9}
        results = DataLayout(data).bucket / "output/pump-07/2026-01-01T00:00:00Z/results.jsonl"
        results.parent.mkdir(parents=True)
        staged = results.with_name(".results.jsonl.tmp")
        staged.write_text(json.dumps(row) + "\n")
        staged.rename(results)
        # THEN relayed has a detector for pump-07: spotter's message reached it
        assert wait_until(lambda: _detector(data, "relayed", "pump-07") is not None, 30), (
            f"relayed never heard of pump-07 (spotter: {_detector(data, 'spotter', 'pump-07')})"
        )
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
