"""Request shapes of CreateInput, CreateDetectorModel and CreateAlarmModel as the API
reference constrains them (lengths, list sizes, tags), beyond the spec's own examples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cloud.detectors import load_detector_model, load_input
from cloud.detectors.alarms import load_alarm_model
from edge.errors import DetectorModelError

DATA = Path(__file__).with_name("data")
HEARTBEAT = json.loads((DATA / "motor_heartbeat.json").read_text())
BOILER = json.loads((DATA / "alarms" / "boiler_high.json").read_text())


def an_input(**extra: Any) -> dict[str, Any]:
    return {"inputName": "X", "inputDefinition": {"attributes": [{"jsonPath": "a"}]}, **extra}


def test_an_empty_event_name_is_taken_as_aws_takes_it() -> None:
    """Event.eventName has a maximum length of 128 and no minimum."""
    body = copy.deepcopy(HEARTBEAT)
    body["detectorModelDefinition"]["states"][0]["onEnter"]["events"][0]["eventName"] = ""
    model = load_detector_model(body)
    assert model.states["Online"].on_enter[0].name == ""
    body["detectorModelDefinition"]["states"][0]["onEnter"]["events"][0]["eventName"] = "e" * 129
    with pytest.raises(DetectorModelError, match=r"onEnter\.events\[0\]\.eventName: 129 char"):
        load_detector_model(body)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (an_input(inputDescription="d" * 1025), r"\$\.inputDescription: 1025 characters"),
        (an_input(inputDescription=5), r"\$\.inputDescription: expected a string"),
        (
            {
                "inputName": "X",
                "inputDefinition": {"attributes": [{"jsonPath": f"a{i}"} for i in range(201)]},
            },
            r"\$\.inputDefinition\.attributes: 201 attributes; at most 200",
        ),
        (an_input(tags=[{"key": "", "value": "v"}]), r"\$\.tags\[0\]\.key: must not be empty"),
        (an_input(tags=[{"key": "k", "value": "v" * 257}]), r"\$\.tags\[0\]\.value: 257 char"),
        (an_input(tags={"k": "v"}), r"\$\.tags: expected an array"),
    ],
)
def test_input_shapes(body: dict[str, Any], error: str) -> None:
    with pytest.raises(DetectorModelError, match=error):
        load_input(body)


def test_input_limits_hold_at_their_edges() -> None:
    loaded = load_input(
        {
            "inputName": "X",
            "inputDescription": "d" * 1024,
            "inputDefinition": {"attributes": [{"jsonPath": f"a{i}"} for i in range(200)]},
            "tags": [{"key": "k" * 128, "value": ""}],
        }
    )
    assert len(loaded.attributes) == 200


@pytest.mark.parametrize(
    ("tags", "error"),
    [
        ([{"key": "owner"}], r"\$\.tags\[0\]: missing required field 'value'"),
        ([{"key": "k" * 129, "value": "v"}], r"\$\.tags\[0\]\.key: 129 characters"),
        ([{"key": "k", "value": "v", "extra": 1}], r"\$\.tags\[0\]\.extra: unknown field"),
        ("owner=ops", r"\$\.tags: expected an array"),
    ],
)
def test_detector_model_tags(tags: Any, error: str) -> None:
    with pytest.raises(DetectorModelError, match=error):
        load_detector_model({**HEARTBEAT, "tags": tags})
    assert load_detector_model({**HEARTBEAT, "tags": [{"key": "owner", "value": "ops"}]})


@pytest.mark.parametrize("name", ["emailConfigurations", "smsConfigurations"])
def test_alarm_notification_configurations_are_absent_or_not_empty(name: str) -> None:
    """NotificationAction.emailConfigurations / smsConfigurations: lists of at least one."""
    body = copy.deepcopy(BOILER)
    body["alarmNotification"]["notificationActions"][0][name] = []
    with pytest.raises(
        DetectorModelError,
        match=rf"notificationActions\[0\]\.{name}: at least one configuration is required",
    ):
        load_alarm_model(body)
    body["alarmNotification"]["notificationActions"][0].pop(name)
    assert load_alarm_model(body)


def test_alarm_tag_values_are_at_most_256_characters() -> None:
    body = {**BOILER, "tags": [{"key": "owner", "value": "v" * 257}]}
    with pytest.raises(DetectorModelError, match=r"\$\.tags\[0\]\.value: 257 characters"):
        load_alarm_model(body)


@pytest.mark.parametrize(
    ("timestamp", "error"),
    [
        (1558129816420, r"messages\[0\]\.timestamp: expected an object"),
        ({"timeInMillis": 0}, r"messages\[0\]\.timestamp\.timeInMillis: expected epoch milli"),
        ({"timeInMillis": 2**63}, r"timestamp\.timeInMillis: expected epoch milliseconds"),
        ({"timeInMillis": "1558129816420"}, r"timestamp\.timeInMillis: expected epoch milli"),
        ({"timeInMillis": 1.5}, r"timestamp\.timeInMillis: expected epoch milliseconds"),
    ],
)
def test_batch_put_message_timestamp_is_a_timestamp_value(timestamp: Any, error: str) -> None:
    """Message.timestamp is a TimestampValue: {timeInMillis: 1..2**63-1} (iotevents-data API)."""
    from cloud.detectors import batch_put_message

    message = {"messageId": "00001", "inputName": "PressureInput", "payload": "e30="}
    with pytest.raises(DetectorModelError, match=error):
        batch_put_message([], {"messages": [{**message, "timestamp": timestamp}]})
    for fine in (None, {}, {"timeInMillis": 1558129816420}):
        body = {**message, "timestamp": fine} if fine is not None else message
        assert (
            batch_put_message([], {"messages": [body]})["BatchPutMessageErrorEntries"][0][
                "errorCode"
            ]
            == "ResourceNotFoundException"
        )
