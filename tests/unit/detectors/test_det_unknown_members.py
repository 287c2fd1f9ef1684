"""Members a data-plane request's shapes do not define are ignored, in every request alike.

The IoT Events data plane is a REST-JSON API. Adding an optional member to a structure is
a backward-compatible change (Smithy, "Evolving Models"), so a service reading a structure
passes over members it does not model; only an SDK's client-side validation (boto3's
"Unknown parameter in input") refuses them. BatchUpdateDetector, BatchPutMessage and the
alarm batch requests therefore all take such an entry as if the member were left out.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from detector_models import RecordingSink, heartbeat_engine
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import load_input
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from cloud.detectors.alarms.operations import BATCH_VERBS, batch_alarm_action
from cloud.detectors.messages import batch_put_message, batch_update_detector
from edge.clock import ManualClock

DATA = Path(__file__).with_name("data")
ALARMS = DATA / "alarms"
KNOWN = {"requestId", "alarmModelName", "keyValue", "note", "snoozeDuration"}
UNKNOWN_NAMES = st.text(min_size=1, max_size=12).filter(lambda n: n not in KNOWN)
JSON_VALUES = st.none() | st.booleans() | st.integers() | st.text(max_size=8)


def boiler() -> AlarmEngine:
    engine = AlarmEngine(
        load_alarm_model(ALARMS / "boiler_high.json"),
        [load_input(ALARMS / "boiler_input.json")],
        InMemoryStateStore(),
        ManualClock(1_000.0),
        RecordingSink(),
    )
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    assert engine.state_of("b7") == "ACTIVE"
    return engine


@settings(max_examples=40, deadline=None)
@given(name=UNKNOWN_NAMES, value=JSON_VALUES)
def test_an_alarm_request_entry_with_an_unknown_member_applies(name: str, value: Any) -> None:
    engine = boiler()
    item = {"requestId": "r1", "alarmModelName": "boilerHigh", "keyValue": "b7", name: value}
    body = {"acknowledgeActionRequests": [item]}
    assert batch_alarm_action({"boilerHigh": engine}, "acknowledge", body) == {"errorEntries": []}
    assert engine.state_of("b7") == "ACKNOWLEDGED"


@pytest.mark.parametrize("verb", [v for v in BATCH_VERBS if v != "snooze"])
def test_snooze_duration_outside_a_snooze_is_an_unknown_member_too(verb: str) -> None:
    """ResetAlarmActionRequest and the others have no snoozeDuration: it is passed over."""
    engine = boiler()
    if verb == "enable":
        batch_alarm_action(
            {"boilerHigh": engine},
            "disable",
            {
                "disableActionRequests": [
                    {"requestId": "d", "alarmModelName": "boilerHigh", "keyValue": "b7"}
                ]
            },
        )
    item = {
        "requestId": "r1",
        "alarmModelName": "boilerHigh",
        "keyValue": "b7",
        "snoozeDuration": 60,
    }
    body = {f"{verb}ActionRequests": [item]}
    assert batch_alarm_action({"boilerHigh": engine}, verb, body) == {"errorEntries": []}
    assert engine.state_of("b7") != "SNOOZE_DISABLED"


@pytest.mark.parametrize(
    "timestamp",
    [
        {"timeInMillis": 1558129816420, "timeInSeconds": 1558129816},
        {"timeInSeconds": 1558129816},
        {"offsetInNanos": None},
    ],
)
def test_a_message_timestamp_with_an_unknown_member_is_taken(timestamp: dict[str, Any]) -> None:
    engine = heartbeat_engine()
    payload = base64.b64encode(b'{"motorid": "m1", "sensorData": {"pressure": 7}}').decode()
    message = {"messageId": "a", "inputName": "PressureInput", "payload": payload}
    request = {"messages": [{**message, "timestamp": timestamp, "colour": "red"}]}
    assert batch_put_message([engine], request) == {"BatchPutMessageErrorEntries": []}
    assert engine.key_values() == ["m1"]


def test_a_detector_update_with_an_unknown_member_applies() -> None:
    """The behaviour the alarm requests now share: BatchUpdateDetector passes over them."""
    engine = heartbeat_engine()
    payload = base64.b64encode(b'{"motorid": "m1", "sensorData": {"pressure": 7}}').decode()
    batch_put_message(
        [engine],
        {"messages": [{"messageId": "a", "inputName": "PressureInput", "payload": payload}]},
    )
    update = {
        "messageId": "u1",
        "detectorModelName": "motorHeartbeat",
        "keyValue": "m1",
        "colour": "red",
        "state": {"stateName": "Offline", "variables": [], "timers": [], "extra": 1},
    }
    result = batch_update_detector([engine], {"detectors": [update]})
    assert result == {"batchUpdateDetectorErrorEntries": []}
    assert engine.describe("m1")["detector"]["state"]["stateName"] == "Offline"
