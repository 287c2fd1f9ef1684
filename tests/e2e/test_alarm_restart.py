"""A restart of `plantwatch up` during an ACTIVE alarm resumes its reminders and a pending
detector timer: each fires once, no alert is sent twice or lost. Run with a real `up`
process, once stopped with SIGTERM and once killed with SIGKILL (both at the same time, so
the minute the detector timer needs is waited once)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cloud.detectors.model import default_detector_paths

pytestmark = pytest.mark.slow

REMINDER_S = 20
TIMER_S = 60  # the shortest timer AWS IoT Events allows

DETECTOR = {
    "detectorModelName": "watch",
    "key": "asset",
    "roleArn": "arn:aws:iam::123456789012:role/r",
    "detectorModelDefinition": {
        "initialStateName": "Watching",
        "states": [
            {
                "stateName": "Watching",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "arm",
                            "condition": "true",
                            "actions": [{"setTimer": {"timerName": "quiet", "seconds": TIMER_S}}],
                        }
                    ]
                },
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "went silent",
                            "condition": 'timeout("quiet")',
                            "nextState": "Silent",
                            "actions": [{"sns": {"targetArn": "arn:aws:sns:us-east-1:1:alerts"}}],
                        }
                    ]
                },
            },
            {
                "stateName": "Silent",
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "results resumed",
                            "condition": 'currentInput("AnomalyResults")',
                            "nextState": "Watching",
                        }
                    ]
                },
            },
        ],
    },
}
RECIPIENT = [{"ssoIdentity": {"identityStoreId": "d-1", "userId": "on-call"}}]
ALARM = {
    "alarmModelName": "score",
    "roleArn": "arn:aws:iam::123456789012:role/r",
    "key": "asset",
    "severity": 2,
    "alarmRule": {
        "simpleRule": {
            "inputProperty": "$input.AnomalyResults.anomaly_score",
            "comparisonOperator": "GREATER",
            "threshold": "0.5",
        }
    },
    "alarmNotification": {
        "notificationActions": [
            {
                "action": {
                    "lambdaAction": {"functionArn": "arn:aws:lambda:us-east-1:1:function:n"}
                },
                "emailConfigurations": [
                    {"from": "plantwatch@example.com", "recipients": {"to": RECIPIENT}}
                ],
                "smsConfigurations": [{"recipients": RECIPIENT}],
            }
        ]
    },
    "alarmCapabilities": {
        "initializationConfiguration": {"disabledOnInitialization": False},
        "acknowledgeFlow": {"enabled": True},
    },
    "tags": [
        {"key": "plantwatch:reminderInterval", "value": f"PT{REMINDER_S}S"},
        {"key": "plantwatch:reminderCap", "value": "2"},
    ],
}


class Up:
    """One `plantwatch up` over a data directory, started and stopped like a user would."""

    def __init__(self, data: Path) -> None:
        self.data = data
        data.mkdir()
        (data / "watch.json").write_text(json.dumps(DETECTOR))
        (data / "score.json").write_text(json.dumps(ALARM))
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        _model, results_input = default_detector_paths()
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "cloud.cli.main", "up", "--port", "0"),
                *("--data", str(self.data), "--detector-model", str(self.data / "watch.json")),
                *("--detector-input", str(results_input)),
                *("--alarm-model", str(self.data / "score.json")),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert first.startswith("broker: "), self._stderr()

    def stop(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.communicate(timeout=60)
        expected = 0 if sig == signal.SIGTERM else -signal.SIGKILL
        assert self.proc.returncode == expected, self._stderr()

    def _stderr(self) -> str:
        return (self.proc.stderr.read() if self.proc and self.proc.stderr else "")[-3000:]

    def results(self) -> None:
        """What the scheduler would write: three anomalous rows for pump-07."""
        folder = self.data / "buckets" / "plantwatch" / "output" / "pump-07"
        folder = folder / "2026-01-01T00:00:00Z"
        folder.mkdir(parents=True)
        rows = [
            {"timestamp": f"2026-01-01T00:0{i}:00.000000", "prediction": 1, "anomaly_score": 0.9}
            for i in range(3)
        ]
        (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def alerts(self) -> list[dict[str, Any]]:
        path = self.data / "alerts.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def kinds(self) -> Counter[tuple[str, str]]:
        return Counter((a["attributes"]["kind"], a["channel"]) for a in self.alerts())


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_reminders_and_detector_timer_resume_after_sigterm_and_sigkill(tmp_path: Path) -> None:
    stacks = {sig: Up(tmp_path / sig.name) for sig in (signal.SIGTERM, signal.SIGKILL)}
    for up in stacks.values():
        up.start()
        up.results()
    for up in stacks.values():
        _wait_for(lambda up=up: up.kinds()[("ALARM_ACTIVE", "sms")] == 1, 30, "ACTIVE alert")
    active_at = time.monotonic()
    for sig, up in stacks.items():
        up.stop(sig)  # ACTIVE, a reminder due in 20 s, the detector timer due in 60 s
    # Down past the first reminder's due time: it is overdue when the stack comes back.
    time.sleep(max(0.0, active_at + REMINDER_S + 3 - time.monotonic()))
    for up in stacks.values():
        assert up.kinds()[("ALARM_REMINDER", "sms")] == 0
        up.start()
    for up in stacks.values():
        _wait_for(
            lambda up=up: (
                up.kinds()[("STALE", "sms")] == 1 and up.kinds()[("ALARM_REMINDER", "sms")] == 2
            ),
            TIMER_S + 30,
            "the detector timer and both reminders",
        )
    time.sleep(2)  # anything that would fire twice has had its chance
    for sig, up in stacks.items():
        up.stop(signal.SIGTERM)
        kinds = up.kinds()
        assert kinds == Counter(
            {
                ("ALARM_ACTIVE", "email"): 1,
                ("ALARM_ACTIVE", "sms"): 1,
                ("ALARM_REMINDER", "email"): 2,
                ("ALARM_REMINDER", "sms"): 2,
                ("STALE", "email"): 1,
                ("STALE", "sms"): 1,
            }
        ), (sig.name, kinds)
        ids = [(a["attributes"]["alert_id"], a["channel"]) for a in up.alerts()]
        assert len(ids) == len(set(ids)), sig.name  # no alert twice
        reminders = [a for a in up.alerts() if a["attributes"]["kind"] == "ALARM_REMINDER"]
        assert [r["body"][:42] for r in reminders if r["channel"] == "sms"] == [
            "PLANTWATCH REMINDER pump-07 still ACTIVE a",
            "PLANTWATCH REMINDER pump-07 still ACTIVE a",
        ]
        assert "(1/2)" in reminders[0]["body"] and "(2/2)" in reminders[-1]["body"]
