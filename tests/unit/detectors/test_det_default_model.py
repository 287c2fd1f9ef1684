"""The shipped equipment_anomaly model end to end: results -> alarm, alerts, shadow command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.local import FsObjectStore, InMemoryPublisher, OutboxNotifier, SqliteStateStore
from cloud.cli.main import main
from cloud.detectors import DetectorEngine, default_detector_paths, load_detector_model, load_input
from cloud.detectors.actions import LocalActionSink
from cloud.feeder import ResultsFeeder
from edge.clock import ManualClock
from edge.wire import shadow_topic

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Stack:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.clock = ManualClock(T0)
        self.state = SqliteStateStore(data / "state.db")
        self.publisher = InMemoryPublisher()
        self.sink = LocalActionSink(
            OutboxNotifier(data / "alerts.jsonl"),
            self.publisher,
            state=self.state,
            outbox=data / "actions-outbox.jsonl",
        )
        model_path, input_path = default_detector_paths()
        self.engine = DetectorEngine(
            load_detector_model(model_path),
            [load_input(input_path)],
            self.state,
            self.clock,
            self.sink,
        )
        self.store = FsObjectStore(data / "bucket")
        self.feeder = ResultsFeeder(self.store, "out/", self.engine, self.state)
        self.window = 0

    def window_of(self, *predictions: int, asset: str = "pump-01", site: str = "") -> int:
        """One 5-minute results object with one row per minute, fed as the scheduler would."""
        start = T0 + self.window * 300
        rows = []
        for i, p in enumerate(predictions):
            ts = start + i * 60
            stamp = _iso(ts)
            rows.append(
                json.dumps(
                    {
                        "timestamp": stamp + ".000000",
                        "prediction": p,
                        "prediction_reason": "ANOMALY_DETECTED" if p else "NO_ANOMALY_DETECTED",
                        "anomaly_score": 0.91 if p else 0.12,
                        "diagnostics": [
                            {"name": f"{asset}\\bearing_vibration_x", "value": 0.61},
                            {"name": f"{asset}\\motor_current", "value": 0.39},
                        ],
                    }
                )
            )
        folder = f"{site}/" if site else ""
        self.store.put(
            f"out/{folder}{asset}/{_iso(start)}Z/results.jsonl",
            ("\n".join(rows) + "\n").encode(),
        )
        self.window += 1
        self.clock.advance(300)
        self.engine.tick()
        return self.feeder.poll()

    def state_name(self, asset: str = "pump-01") -> str:
        return self.engine.describe(asset)["detector"]["state"]["stateName"]

    def alerts(self) -> list[dict[str, Any]]:
        path = self.data / "alerts.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return Stack(tmp_path)


def test_three_anomalous_results_alarm_and_command_safe_mode(stack: Stack) -> None:
    stack.window_of(0, 0, 1, 1, 0)
    assert stack.state_name() == "Normal"  # two in a row is not enough
    stack.window_of(1, 1)
    assert stack.state_name() == "Normal"
    stack.window_of(1)
    assert stack.state_name() == "Alarm"
    email, sms = stack.alerts()
    assert email["subject"] == "[plantwatch] ALARM pump-01: anomaly score 0.91"
    assert "bearing_vibration_x: 61%" in email["body"]
    assert sms["attributes"]["AWS.SNS.SMS.SMSType"] == "Transactional"
    assert len(sms["body"]) <= 160
    assert stack.publisher.published == [
        (shadow_topic("pump-01", "update"), b'{"state":{"desired":{"mode":"safe"}}}', 1)
    ]
    stack.window_of(1, 1, 1, 1, 1)
    assert len(stack.alerts()) == 2  # staying in Alarm does not re-alert


def test_three_normal_results_recover_and_leave_safe_mode_to_the_operator(stack: Stack) -> None:
    stack.window_of(1, 1, 1)
    stack.window_of(0, 0, 1, 0, 0)
    assert stack.state_name() == "Alarm"
    stack.window_of(0)
    assert stack.state_name() == "Normal"
    kinds = [a["attributes"]["kind"] for a in stack.alerts()]
    assert kinds == ["ALARM", "ALARM", "RECOVERED", "RECOVERED"]
    # Recovery only notifies: restoring normal mode would bring the fault's symptoms back
    # and flap the alarm, so an operator decides when.
    assert [p[1] for p in stack.publisher.published] == [b'{"state":{"desired":{"mode":"safe"}}}']


def test_silence_for_twice_the_upload_frequency_alerts_once_and_results_resuming_notify(
    stack: Stack,
) -> None:
    stack.window_of(0, 0, 0, 0, 0)
    # The feeder says stale_after_s = 600 (2 x PT5M); the last feed armed the heartbeat.
    stack.clock.advance(599)
    assert stack.engine.tick() == 0  # 599 s of silence: not yet
    stack.clock.advance(1)
    assert stack.engine.tick() == 1
    assert stack.state_name() == "Stale"
    stack.clock.advance(3600)
    assert stack.engine.tick() == 0  # silent for longer: still the one alert
    kinds = [a["attributes"]["kind"] for a in stack.alerts()]
    assert kinds == ["STALE", "STALE"]  # its email and its SMS
    email, sms = stack.alerts()
    assert email["subject"] == "[plantwatch] STALE pump-01: went silent"
    assert "no anomaly results since 2026-01-01T00:04:00Z" in email["body"]
    assert sms["body"].startswith("PLANTWATCH STALE pump-01 went silent: no results since")
    assert stack.publisher.published == []
    stack.window = 14
    stack.window_of(0)
    assert stack.state_name() == "Normal"
    kinds = [a["attributes"]["kind"] for a in stack.alerts()]
    assert kinds == ["STALE", "STALE", "RESUMED", "RESUMED"]
    assert stack.alerts()[2]["subject"] == "[plantwatch] RESUMED pump-01: results are back"
    severities = [a["attributes"]["severity"] for a in stack.alerts()]
    assert severities == ["warning", "warning", "info", "info"]


def test_the_event_driven_feed_sends_the_feeders_silence_too(stack: Stack) -> None:
    # GIVEN a feeder told that results go stale after 30 minutes (the detector Lambda's path:
    # one S3 event, one object, fed by key rather than by polling)
    feeder = ResultsFeeder(stack.store, "out/", stack.engine, stack.state, stale_after_s=1800)
    stack.feeder = feeder
    stack.store.put(
        f"out/pump-01/{_iso(T0)}Z/results.jsonl",
        (json.dumps({"timestamp": _iso(T0) + ".000000", "prediction": 0}) + "\n").encode(),
    )
    assert feeder.feed(f"out/pump-01/{_iso(T0)}Z/results.jsonl") == 1
    # THEN the heartbeat is 30 minutes, not the model's 600 s fallback
    stack.clock.advance(1799)
    assert stack.engine.tick() == 0
    stack.clock.advance(1)
    assert stack.engine.tick() == 1 and stack.state_name() == "Stale"


def test_a_result_without_stale_after_s_still_arms_a_600_s_heartbeat(stack: Stack) -> None:
    # An older producer, or a replayed message, that does not say when results go stale
    # must not leave the asset unwatched: the model falls back to 600 s.
    stack.engine.put_message(
        "AnomalyResults",
        {"asset": "pump-01", "thing": "pump-01", "timestamp": _iso(T0), "prediction": 0},
    )
    stack.clock.advance(599)
    assert stack.engine.tick() == 0
    stack.clock.advance(1)
    assert stack.engine.tick() == 1 and stack.state_name() == "Stale"


def test_an_alarm_that_goes_silent_does_not_claim_recovery_when_results_resume(
    stack: Stack,
) -> None:
    stack.window_of(1, 1, 1)
    stack.clock.advance(600)
    assert stack.engine.tick() == 1
    assert stack.state_name() == "Stale"
    stack.window = 5
    stack.window_of(1)
    kinds = [a["attributes"]["kind"] for a in stack.alerts()][::2]
    assert kinds == ["ALARM", "STALE", "RESUMED"]  # no RECOVERED: nothing proved it recovered


def test_cli_lists_alarms_and_detector_instances(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.window_of(1, 1, 1)
    stack.window_of(0, asset="fan-02")
    assert main(["alarms", "sent", "--data", str(stack.data), "--json"]) == 0
    [alarm] = json.loads(capsys.readouterr().out)
    assert alarm["asset"] == "pump-01" and alarm["kind"] == "ALARM"
    assert alarm["sms"].startswith("PLANTWATCH ALARM pump-01")
    assert main(["detectors", "list", "--data", str(stack.data), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["keyValue"], r["state"]["stateName"]) for r in rows] == [
        ("fan-02", "Normal"),
        ("pump-01", "Alarm"),
    ]
    assert main(["detectors", "describe", "--data", str(stack.data), "pump-01", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described == stack.engine.describe("pump-01")
    assert main(["detectors", "describe", "--data", str(stack.data), "nope"]) == 2
    assert main(["alarms", "sent", "--data", str(stack.data)]) == 0
    assert "pump-01" in capsys.readouterr().out


def test_the_same_asset_at_two_sites_is_two_detectors_commanding_its_thing(stack: Stack) -> None:
    # GIVEN pump-01 at the default site is normal while pump-01 at site s2 turns anomalous
    stack.window_of(0, 0, 0)
    stack.window = 0
    stack.window_of(1, 1, 1, site="s2")

    # THEN they are two detector instances, and only the s2 one is in Alarm
    assert stack.state_name("pump-01") == "Normal"
    assert stack.state_name("s2:pump-01") == "Alarm"
    email, _sms = stack.alerts()
    assert email["subject"] == "[plantwatch] ALARM s2:pump-01: anomaly score 0.91"
    # AND the command goes to the thing (thing names are unique per account, not per site)
    assert stack.publisher.published == [
        (shadow_topic("pump-01", "update"), b'{"state":{"desired":{"mode":"safe"}}}', 1)
    ]
