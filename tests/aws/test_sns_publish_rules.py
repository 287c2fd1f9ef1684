"""Every alert the sink formats reaches SNS as a publish SNS takes: arbitrary unicode asset,
sensor, alarm, operator and configuration texts through ``LocalActionSink`` and
``SnsNotifier`` (iot-core-rules-and-limits §6). moto accepts what SNS refuses, so a strict
client checks each publish against SNS's rules instead."""

from __future__ import annotations

import re
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.adapters.aws import SnsNotifier
from cloud.alerts import SMS_MAX_SEPTETS, SUBJECT_MAX, gsm7_septets, valid_sender_id
from cloud.detectors.actions import LocalActionSink
from cloud.detectors.engine import ActionRequest

ARN = "arn:aws:sns:us-east-1:123456789012:plantwatch-alerts"
ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_\-.]{1,256}")
SMS_ATTRIBUTES = {"AWS.SNS.SMS.SMSType", "AWS.SNS.SMS.SenderID"}


class StrictSns:
    """Publish as SNS checks it; keeps what it accepted."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, **request: Any) -> dict[str, str]:
        message = request["Message"]
        assert request["TopicArn"] == ARN and "MessageStructure" not in request
        assert message.strip(), "SNS: Empty message"
        attributes = request.get("MessageAttributes", {})
        assert len(attributes) <= 10  # SQS raw delivery drops more
        size = len(message.encode())
        for name, value in attributes.items():
            assert ATTRIBUTE_NAME.fullmatch(name), name
            assert not name.startswith((".",)) and ".." not in name and not name.endswith(".")
            assert not name.lower().startswith(("aws.", "amazon.")) or name in SMS_ATTRIBUTES
            assert value["DataType"] == "String" and value["StringValue"], name
            size += len(name.encode()) + len(b"String") + len(value["StringValue"].encode())
        assert size <= 262_144
        if "Subject" in request:
            subject = request["Subject"]
            assert 0 < len(subject) <= SUBJECT_MAX
            assert all(32 <= ord(c) < 127 for c in subject), subject
            assert subject[0] in string.ascii_letters + string.digits + string.punctuation
        if attributes["channel"]["StringValue"] == "sms":
            assert "Subject" not in request
            septets = gsm7_septets(message)
            assert septets is not None and septets <= SMS_MAX_SEPTETS, message
            assert attributes["AWS.SNS.SMS.SMSType"]["StringValue"] == "Transactional"
            if "AWS.SNS.SMS.SenderID" in attributes:
                assert valid_sender_id(attributes["AWS.SNS.SMS.SenderID"]["StringValue"])
        self.published.append(request)
        return {"MessageId": str(len(self.published))}


def sink(client: StrictSns, sender_id: str | None = None) -> LocalActionSink:
    return LocalActionSink(
        SnsNotifier(ARN, client, site="plant-a"),
        None,
        email_target=ARN,
        sms_target=ARN,
        sender_id=sender_id,
    )


text = st.text(max_size=300)
numbers = st.one_of(st.none(), st.floats(), st.integers(), st.text(max_size=20))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    asset=text,
    sensor=text,
    share=numbers,
    score=numbers,
    state=st.text(max_size=40),
    event=st.text(max_size=40),
    when=text,
    reason=text,
)
def test_any_detector_alert_is_a_publish_sns_takes(
    asset: str,
    sensor: str,
    share: object,
    score: object,
    state: str,
    event: str,
    when: str,
    reason: str,
) -> None:
    client = StrictSns()
    request = ActionRequest(
        kind="sns",
        target={"targetArn": ARN},
        payload={
            "eventTime": 1_767_225_780_000,
            "eventName": event,
            "payload": {
                "detector": {"detectorModelName": "equipment_anomaly", "keyValue": asset},
                "state": {
                    "stateName": state,
                    "variables": {
                        "last_score": score,
                        "top_sensors": f"{sensor}={share}",
                        "last_timestamp": when,
                        "last_reason": reason,
                    },
                },
            },
        },
        payload_type="DEFAULT",
        detector_model="equipment_anomaly",
        key_value=asset,
        event_name=event,
        state_name=state,
        state_entry=1,
        event_time_ms=1_767_225_780_000,
    )
    sink(client, "PLANTWATCH").execute(request)
    assert [p["MessageAttributes"]["channel"]["StringValue"] for p in client.published] == [
        "email",
        "sms",
    ]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    channel=st.sampled_from(["email", "sms"]),
    kind=st.sampled_from(["ACTIVE", "ACKNOWLEDGED", "LATCHED", "NORMAL", "REMINDER"]),
    model=text,
    key=st.none() | text,
    who=st.none() | text,
    note=st.none() | text,
    subject=st.none() | text,
    additional=st.none() | text,
    sender=st.none() | st.text(max_size=15),
    value=numbers,
)
def test_any_alarm_notification_is_a_publish_sns_takes(
    channel: str,
    kind: str,
    model: str,
    key: str | None,
    who: str | None,
    note: str | None,
    subject: str | None,
    additional: str | None,
    sender: str | None,
    value: object,
) -> None:
    client = StrictSns()
    target: dict[str, Any] = {"channel": channel, "to": [ARN], "subject": subject}
    target.update(additionalMessage=additional, senderId=sender)
    request = ActionRequest(
        kind="sns",
        target=target,
        payload={
            "alarmModelName": model,
            "keyValue": key,
            "severity": 3,
            "stateUpdateTime": 1_767_225_780_000,
            "alarmState": {
                "stateName": kind,
                "ruleEvaluation": {
                    "simpleRuleEvaluation": {
                        "inputPropertyValue": value,
                        "operator": "GREATER",
                        "thresholdValue": 80,
                    }
                },
            },
            "notice": {"kind": kind, "who": who, "note": note, "reminder": 1, "reminderCap": 3},
        },
        payload_type="DEFAULT",
        detector_model=model,
        key_value=key,
        event_name=f"{kind}#1#n0",
        state_name=kind,
        state_entry=0,
        event_time_ms=1_767_225_780_000,
    )
    sink(client).execute(request)
    [published] = client.published
    assert published["MessageAttributes"]["channel"]["StringValue"] == channel
