"""A message whose result the state store cannot save leaves no trace in the engine.

The engine changes its cached instance in place while it evaluates; if the save then fails,
BatchPutMessage answers InternalFailureException for the message, so the next message and
DescribeDetector must see the stored instance, not the half-applied one, and the failed
message's service actions must not be sent.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import pytest

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import ActionRequest, DetectorEngine, load_detector_model, load_input
from cloud.detectors.messages import batch_put_message
from edge.clock import ManualClock
from edge.errors import NotFoundError, StorageError

INPUT = {"inputName": "In", "inputDefinition": {"attributes": [{"jsonPath": "id"}]}}
MODEL = {
    "detectorModelName": "counter",
    "roleArn": "arn:aws:iam::1:role/r",
    "key": "id",
    "detectorModelDefinition": {
        "initialStateName": "S",
        "states": [
            {
                "stateName": "S",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "init",
                            "actions": [{"setVariable": {"variableName": "n", "value": "0"}}],
                        }
                    ]
                },
                "onInput": {
                    "events": [
                        {
                            "eventName": "count",
                            "condition": "currentInput('In')",
                            "actions": [
                                {"setVariable": {"variableName": "n", "value": "$variable.n + 1"}},
                                {"iotTopicPublish": {"mqttTopic": "counted"}},
                            ],
                        }
                    ]
                },
            }
        ],
    },
}


class FailingStore(InMemoryStateStore):
    """The local store, with saves that fail while ``failing`` is set (a full disk)."""

    failing = False

    def put_if_version(
        self, namespace: str, key: str, value: Mapping[str, Any], version: int | None
    ) -> int:
        if self.failing:
            raise StorageError("disk full")
        return super().put_if_version(namespace, key, value, version)


class Sent:
    def __init__(self) -> None:
        self.requests: list[ActionRequest] = []

    def execute(self, request: ActionRequest) -> None:
        self.requests.append(request)


def _put(engine: DetectorEngine) -> dict[str, Any]:
    payload = base64.b64encode(json.dumps({"id": "k"}).encode()).decode()
    body = {"messages": [{"messageId": "m1", "inputName": "In", "payload": payload}]}
    return batch_put_message([engine], body)


def _n(engine: DetectorEngine) -> str:
    variables = engine.describe("k")["detector"]["state"]["variables"]
    return {v["name"]: v["value"] for v in variables}["n"]


@pytest.fixture()
def setup() -> tuple[DetectorEngine, FailingStore, Sent]:
    store, sent = FailingStore(), Sent()
    engine = DetectorEngine(
        load_detector_model(MODEL),
        [load_input(INPUT)],
        store,
        ManualClock(1_700_000_000.0),
        sent,
    )
    return engine, store, sent


def test_a_message_that_cannot_be_saved_changes_nothing(
    setup: tuple[DetectorEngine, FailingStore, Sent],
) -> None:
    engine, store, sent = setup
    assert _put(engine) == {"BatchPutMessageErrorEntries": []}
    assert _n(engine) == "1"
    store.failing = True
    answer = _put(engine)
    assert [e["errorCode"] for e in answer["BatchPutMessageErrorEntries"]] == [
        "InternalFailureException"
    ]
    assert _n(engine) == "1"
    assert len(sent.requests) == 1
    store.failing = False
    assert _put(engine) == {"BatchPutMessageErrorEntries": []}
    assert _n(engine) == "2"
    assert len(sent.requests) == 2


def test_a_new_instance_that_cannot_be_saved_does_not_exist(
    setup: tuple[DetectorEngine, FailingStore, Sent],
) -> None:
    engine, store, sent = setup
    store.failing = True
    assert _put(engine)["BatchPutMessageErrorEntries"][0]["errorCode"] == (
        "InternalFailureException"
    )
    with pytest.raises(NotFoundError):
        engine.describe("k")
    assert engine.key_values() == []
    assert sent.requests == []
