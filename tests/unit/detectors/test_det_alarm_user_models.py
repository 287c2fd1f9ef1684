"""Two alarm models written the way users write them, run through ``plantwatch alarms run``
and the engine, against what the contract says (iotevents-contracts §7):

- ``tank-level-low``: the acknowledge flow off and a threshold read from another field of
  the same input (``$input.TankReadings.minLevel``), so each tank alarms below its own
  minimum. With the flow off an ACTIVE alarm back in range goes straight to NORMAL, an
  acknowledge is refused, and nothing is notified: only the alarm actions run.
- ``motor_vibration_info``: keyed on a nested property (``device.id``), severity 0 (a
  valid severity, not a missing one), an SMS and an email configuration whose recipients
  the model names, resolved through the directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import pytest
from detector_models import RecordingSink
from hypothesis import given
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.cli.main import main
from cloud.detectors import load_input
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from cloud.detectors.alarms.model import Recipient
from edge.clock import ManualClock
from edge.errors import UserError

ROLE = "arn:aws:iam::123456789012:role/iotevents-alarms"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z, the replay's default start

TANK_INPUT = {
    "inputName": "TankReadings",
    "inputDescription": "level telemetry from the tank farm",
    "inputDefinition": {
        "attributes": [{"jsonPath": "tankId"}, {"jsonPath": "level"}, {"jsonPath": "minLevel"}]
    },
}
TANK_LOW = {
    "alarmModelName": "tank-level-low",
    "alarmModelDescription": "level under the tank's own configured minimum",
    "roleArn": ROLE,
    "key": "tankId",
    "severity": 1,
    "alarmRule": {
        "simpleRule": {
            "inputProperty": "$input.TankReadings.level",
            "comparisonOperator": "LESS",
            "threshold": "$input.TankReadings.minLevel",
        }
    },
    "alarmEventActions": {
        "alarmActions": [{"iotTopicPublish": {"mqttTopic": "plant/tanks/alarms"}}]
    },
    "alarmCapabilities": {
        "initializationConfiguration": {"disabledOnInitialization": False},
        "acknowledgeFlow": {"enabled": False},
    },
}

MOTOR_INPUT = {
    "inputName": "MotorTelemetry",
    "inputDefinition": {
        "attributes": [
            {"jsonPath": "device.id"},
            {"jsonPath": "device.site"},
            {"jsonPath": "vibration.rms"},
        ]
    },
}
STORE = "d-9067642ac7"
ONCALL = {"ssoIdentity": {"identityStoreId": STORE, "userId": "a1b2c3d4-oncall"}}
LEAD = {"ssoIdentity": {"identityStoreId": STORE, "userId": "e5f6-maint-lead"}}
NOTIFY = "arn:aws:lambda:eu-west-1:123456789012:function:iotevents-notify"
MOTOR_VIBRATION = {
    "alarmModelName": "motor_vibration_info",
    "roleArn": ROLE,
    "key": "device.id",
    "severity": 0,
    "alarmRule": {
        "simpleRule": {
            "inputProperty": "$input.MotorTelemetry.vibration.rms",
            "comparisonOperator": "GREATER_OR_EQUAL",
            "threshold": "7.1",
        }
    },
    "alarmNotification": {
        "notificationActions": [
            {
                "action": {"lambdaAction": {"functionArn": NOTIFY}},
                "smsConfigurations": [
                    {
                        "senderId": "PLANT",
                        "additionalMessage": "Check motor mounts",
                        "recipients": [ONCALL],
                    }
                ],
                "emailConfigurations": [
                    {
                        "from": "alarms@plant.example.com",
                        "content": {
                            "subject": "Motor vibration",
                            "additionalMessage": "ISO 10816 zone C",
                        },
                        "recipients": {"to": [ONCALL, LEAD]},
                    }
                ],
            }
        ]
    },
    "alarmCapabilities": {"initializationConfiguration": {"disabledOnInitialization": False}},
}


class Directory:
    """IAM Identity Center as a plant has it: the on-call engineer has a phone, the
    maintenance lead reads email only."""

    email_of: Final = MappingProxyType(
        {
            "a1b2c3d4-oncall": "oncall@plant.example.com",
            "e5f6-maint-lead": "lead@plant.example.com",
        }
    )
    phone_of: Final = MappingProxyType({"a1b2c3d4-oncall": "+441632960001"})

    def email(self, recipient: Recipient) -> str | None:
        return self.email_of.get(recipient.user_id or "")

    def phone(self, recipient: Recipient) -> str | None:
        return self.phone_of.get(recipient.user_id or "")


def tank(level: Any, minimum: Any = None, tank_id: str = "T-101") -> dict[str, Any]:
    payload = {"tankId": tank_id, "level": level}
    if minimum is not None:
        payload["minLevel"] = minimum
    return {"inputName": "TankReadings", "payload": payload}


def motor(rms: Any, device: Any = None) -> dict[str, Any]:
    return {
        "inputName": "MotorTelemetry",
        "payload": {
            "device": {"id": "M-7", "site": "north"} if device is None else device,
            "vibration": {"rms": rms},
        },
    }


def replay(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    model: dict[str, Any],
    inp: dict[str, Any],
    lines: list[dict[str, Any]],
) -> dict[str, Any]:
    files = {"model.json": model, "input.json": inp}
    for name, body in files.items():
        (tmp_path / name).write_text(json.dumps(body))
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    args = [str(tmp_path / "model.json"), str(tmp_path / "m.jsonl")]
    code = main(["alarms", "run", *args, "--input", str(tmp_path / "input.json"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def changes(doc: dict[str, Any]) -> list[tuple[str, str, str, str, Any, Any]]:
    return [
        (e["keyValue"], e["from"], e["to"], e["event"], e["value"], e["threshold"])
        for e in doc["events"]
        if e["type"] == "change"
    ]


def engine(model: dict[str, Any], inp: dict[str, Any]) -> tuple[AlarmEngine, RecordingSink]:
    sink = RecordingSink()
    made = AlarmEngine(
        load_alarm_model(model),
        [load_input(inp)],
        InMemoryStateStore(),
        ManualClock(START),
        sink,
        directory=Directory(),
    )
    return made, sink


# ---------------------------------------------------------------- tank-level-low


def test_the_tank_alarm_compares_each_level_with_its_own_minimum_in_alarms_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        tank(42.5, 20),
        {"advance": "PT1M"},
        tank(18.25, 20),
        {"acknowledge": {"keyValue": "T-101", "note": "refill ordered"}},
        {"advance": "PT1M"},
        tank(18.25, 15),  # the minimum was lowered: back in range
        tank(12),  # no minimum in this message: nothing to compare, state kept
        tank(5, 10, "T-202"),
    ]
    doc = replay(tmp_path, capsys, TANK_LOW, TANK_INPUT, lines)
    assert changes(doc) == [
        ("T-101", "NORMAL", "ACTIVE", "rule", 18.25, 20),
        ("T-101", "ACTIVE", "NORMAL", "rule", 18.25, 15),  # never LATCHED: the flow is off
        ("T-202", "NORMAL", "ACTIVE", "rule", 5, 10),
    ]
    [ignored] = [e for e in doc["events"] if e["type"] == "ignored"]
    assert (ignored["action"], ignored["line"]) == ("acknowledge", 4)
    assert "acknowledge flow is off" in ignored["reason"]
    [error] = [e for e in doc["events"] if e["type"] == "error"]
    assert error["line"] == 7 and "state kept" in error["message"]
    sent = [s for e in doc["events"] if e["type"] == "change" for s in e["sent"]]
    assert {s["action"] for s in sent} == {"iotTopicPublish"}  # no notification at all
    first = sent[0]["payload"]
    assert first["severity"] == 1 and first["keyValue"] == "T-101"
    assert first["alarmState"]["ruleEvaluation"] == {
        "simpleRuleEvaluation": {
            "inputPropertyValue": "18.25",
            "operator": "LESS",
            "thresholdValue": "20",
        }
    }
    final = {a["alarm"]["keyValue"]: a["alarm"]["alarmState"]["stateName"] for a in doc["alarms"]}
    assert final == {"T-101": "NORMAL", "T-202": "ACTIVE"}


@given(
    level=st.integers(-1000, 1000) | st.floats(-1e6, 1e6, allow_nan=False),
    minimum=st.integers(-1000, 1000) | st.floats(-1e6, 1e6, allow_nan=False),
)
def test_the_tank_alarm_is_active_exactly_while_the_level_is_under_its_minimum(
    level: float, minimum: float
) -> None:
    made, sink = engine(TANK_LOW, TANK_INPUT)
    made.put_message("TankReadings", {"tankId": "T-1", "level": level, "minLevel": minimum})
    assert made.state_of("T-1") == ("ACTIVE" if level < minimum else "NORMAL")
    made.put_message("TankReadings", {"tankId": "T-1", "level": minimum, "minLevel": minimum})
    assert made.state_of("T-1") == "NORMAL"  # straight back, the acknowledge flow being off
    assert all("#n" not in r.event_name for r in sink.requests)  # alarm actions only


def test_the_tank_alarm_cannot_be_acknowledged_but_can_be_reset() -> None:
    made, sink = engine(TANK_LOW, TANK_INPUT)
    made.put_message("TankReadings", {"tankId": "T-1", "level": 3, "minLevel": 10})
    with pytest.raises(UserError, match="acknowledge flow"):
        made.acknowledge("T-1", note="seen")
    assert made.state_of("T-1") == "ACTIVE"
    made.reset("T-1", note="sensor swapped")
    assert made.state_of("T-1") == "NORMAL"
    assert [r.kind for r in sink.requests] == ["iotTopicPublish", "iotTopicPublish"]


# ---------------------------------------------------------------- motor_vibration_info


def test_the_motor_alarm_runs_keyed_on_a_nested_property_in_alarms_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        motor(2.4),
        motor(7.1),  # GREATER_OR_EQUAL: the threshold itself breaches
        {"acknowledge": {"keyValue": "M-7", "note": "mount bolts loose"}},
        motor(3.0),
        motor(9.0, {"site": "north"}),  # no device.id: the model is skipped
    ]
    doc = replay(tmp_path, capsys, MOTOR_VIBRATION, MOTOR_INPUT, lines)
    assert changes(doc) == [
        ("M-7", "NORMAL", "ACTIVE", "rule", 7.1, 7.1),
        ("M-7", "ACTIVE", "ACKNOWLEDGED", "acknowledge", 7.1, 7.1),
        ("M-7", "ACKNOWLEDGED", "NORMAL", "rule", 3.0, 7.1),
    ]
    [skipped] = [e for e in doc["events"] if e["type"] == "skipped"]
    assert skipped["line"] == 5 and "device.id" in skipped["reason"]
    for change in (e for e in doc["events"] if e["type"] == "change"):
        channels = sorted(s["target"]["channel"] for s in change["sent"])
        assert channels == ["email", "sms"], change
        assert all(s["payload"]["severity"] == 0 for s in change["sent"])
    [described] = doc["alarms"]
    assert described["alarm"]["keyValue"] == "M-7"
    assert described["alarm"]["severity"] == 0


def test_the_motor_alarm_notifies_the_recipients_its_model_names() -> None:
    made, sink = engine(MOTOR_VIBRATION, MOTOR_INPUT)
    made.put_message("MotorTelemetry", {"device": {"id": "M-7"}, "vibration": {"rms": 7.4}})
    assert made.state_of("M-7") == "ACTIVE"
    notices = {r.target["channel"]: r for r in sink.requests if "#n" in r.event_name}
    assert set(notices) == {"email", "sms"}
    email, sms = notices["email"].target, notices["sms"].target
    assert email["to"] == ["oncall@plant.example.com", "lead@plant.example.com"]
    assert (email["subject"], email["additionalMessage"]) == ("Motor vibration", "ISO 10816 zone C")
    assert sms["to"] == ["+441632960001"]  # the lead has no phone: email only
    assert (sms["senderId"], sms["additionalMessage"]) == ("PLANT", "Check motor mounts")
    assert made.describe("M-7")["alarm"]["severity"] == 0


def test_the_motor_alarm_notification_event_carries_severity_zero_and_the_nested_key() -> None:
    made, _ = engine(MOTOR_VIBRATION, MOTOR_INPUT)
    made.put_message("MotorTelemetry", {"device": {"id": "M-7"}, "vibration": {"rms": 8}})
    notice = {"state": "ACTIVE", "value": 8, "threshold": 7.1, "time": START}
    event = made.notification_event("M-7", notice)
    assert json.loads(event["notificationEventPayload"]) == {
        "alarmModelName": "motor_vibration_info",
        "keyValue": "M-7",
        "severity": 0,
        "stateUpdateTime": round(START * 1000),
        "alarmState": {
            "stateName": "ACTIVE",
            "ruleEvaluation": {
                "simpleRule": {
                    "inputProperty": 8.0,
                    "operator": "GREATER_OR_EQUAL",
                    "threshold": 7.1,
                }
            },
        },
    }
    assert event["emailConfigurations"] == [
        {
            "from": "alarms@plant.example.com",
            "to": ["oncall@plant.example.com", "lead@plant.example.com"],
            "cc": [],
            "bcc": [],
            "subject": "Motor vibration",
            "additionalMessage": "ISO 10816 zone C",
        }
    ]
    assert event["smsConfigurations"] == [
        {
            "phoneNumbers": ["+441632960001"],
            "senderId": "PLANT",
            "additionalMessage": "Check motor mounts",
        }
    ]
