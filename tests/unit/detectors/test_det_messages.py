"""BatchPutMessage request handling: base64 payloads, per-message errors, batch limits."""

from __future__ import annotations

import base64
import json

import pytest
from detector_models import heartbeat_engine
from hypothesis import given
from hypothesis import strategies as st

from cloud.detectors import DetectorEngine
from cloud.detectors.messages import batch_put_message
from edge.errors import DetectorModelError

SPEC_PAYLOAD = "eyJtb3RvcmlkIjoiRnVsdG9uLUEzMiIsInNlbnNvckRhdGEiOnsicHJlc3N1cmUiOjgwfX0="


@pytest.fixture
def engine() -> DetectorEngine:
    return heartbeat_engine()


def test_spec_example_message_creates_the_instance(engine: DetectorEngine) -> None:
    request = {
        "messages": [
            {
                "messageId": "00001",
                "inputName": "PressureInput",
                "payload": SPEC_PAYLOAD,
                "timestamp": {"timeInMillis": 1558129816420},
            }
        ]
    }
    assert batch_put_message([engine], request) == {"BatchPutMessageErrorEntries": []}
    variables = engine.describe("Fulton-A32")["detector"]["state"]["variables"]
    assert variables == [{"name": "last", "value": "80"}]


def test_per_message_errors(engine: DetectorEngine) -> None:
    good = base64.b64encode(
        json.dumps({"motorid": "m2", "sensorData": {"pressure": 1}}).encode()
    ).decode()
    result = batch_put_message(
        [engine],
        {
            "messages": [
                {"messageId": "a", "inputName": "Nope", "payload": good},
                {
                    "messageId": "b",
                    "inputName": "PressureInput",
                    "payload": base64.b64encode(b"not json").decode(),
                },
                {
                    "messageId": "c",
                    "inputName": "PressureInput",
                    "payload": base64.b64encode(b"[1]").decode(),
                },
                {"messageId": "d", "inputName": "PressureInput", "payload": good},
                {
                    "messageId": "e",
                    "inputName": "PressureInput",
                    "payload": base64.b64encode(
                        b'{"motorid": "m3", "sensorData": {"pressure": NaN}}'
                    ).decode(),
                },
            ]
        },
    )
    codes = [(e["messageId"], e["errorCode"]) for e in result["BatchPutMessageErrorEntries"]]
    assert codes == [
        ("a", "ResourceNotFoundException"),
        ("b", "InvalidRequestException"),
        ("c", "InvalidRequestException"),
        ("e", "InvalidRequestException"),
    ]
    assert engine.key_values() == ["m2"]


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"messages": []}, "expected 1-10 messages"),
        (
            {
                "messages": [
                    {"messageId": str(i), "inputName": "X", "payload": ""} for i in range(11)
                ]
            },
            "11 messages",
        ),
        (
            {
                "messages": [
                    {"messageId": "a", "inputName": "X"},
                    {"messageId": "a", "inputName": "X"},
                ]
            },
            "duplicate 'a'",
        ),
        ({"messages": [{"messageId": "a b", "inputName": "X"}]}, "messages[0].messageId"),
        # API Message.inputName: 1-128, ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ (a request error, as
        # for messageId, not a per-message "does not exist")
        *[
            ({"messages": [{"messageId": "a", "inputName": name, "payload": ""}]}, "inputName")
            for name in ("", "a b", "_x", "-x", ".x", "x/y", "é", "x" * 129, 7, None)
        ],
        (
            {
                "messages": [
                    {
                        "messageId": "a",
                        "inputName": "X",
                        "payload": base64.b64encode(b"x" * 1025).decode(),
                    }
                ]
            },
            "1025 bytes",
        ),
    ],
)
def test_whole_request_errors(engine: DetectorEngine, request_body: dict, message: str) -> None:
    with pytest.raises(DetectorModelError, match=message.replace("[", r"\[").replace("]", r"\]")):
        batch_put_message([engine], request_body)


def test_input_names_the_api_allows_are_routed(engine: DetectorEngine) -> None:
    """Names the API pattern allows but no input has: a per-message error, not a request one."""
    for name in ("x" * 128, "1x", "a.b-c_d"):
        request = {"messages": [{"messageId": "a", "inputName": name, "payload": ""}]}
        entries = batch_put_message([engine], request)["BatchPutMessageErrorEntries"]
        assert [e["errorCode"] for e in entries] == ["ResourceNotFoundException"]


class Broken:
    """A model whose engine fails every message (its store down, say)."""

    def __init__(self, inputs: dict[str, object]) -> None:
        self.inputs = inputs

    def put_message(self, input_name: str, payload: dict, message_id: str | None = None) -> None:
        raise RuntimeError("state table unavailable")


def test_a_model_that_fails_a_message_does_not_keep_it_from_the_others(
    engine: DetectorEngine,
) -> None:
    """Each model using the input gets the message (§1); one failing is one error entry."""
    request = {
        "messages": [{"messageId": "00001", "inputName": "PressureInput", "payload": SPEC_PAYLOAD}]
    }
    answer = batch_put_message([Broken(dict(engine.inputs)), engine, Broken({})], request)
    assert answer == {
        "BatchPutMessageErrorEntries": [
            {
                "messageId": "00001",
                "errorCode": "InternalFailureException",
                "errorMessage": "state table unavailable",
            }
        ]
    }
    assert engine.key_values() == ["Fulton-A32"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"motorid": "m1", "sensorData": {"pressure": "\\ud800"}}',
        b'{"motorid": "m1", "sensorData": {"pressure": 1, "\\udcff": 2}}',
        b'{"motorid": "m\\ud800", "sensorData": {"pressure": 1}}',
    ],
)
def test_a_payload_holding_a_lone_surrogate_is_an_invalid_request(
    engine: DetectorEngine, body: bytes
) -> None:
    """``\\ud800`` is valid JSON but no Unicode character: the message is refused as the
    sender's error, and the rest of the batch goes through."""
    good = base64.b64encode(b'{"motorid": "m2", "sensorData": {"pressure": 1}}').decode()
    answer = batch_put_message(
        [engine],
        {
            "messages": [
                {
                    "messageId": "bad",
                    "inputName": "PressureInput",
                    "payload": base64.b64encode(body).decode(),
                },
                {"messageId": "good", "inputName": "PressureInput", "payload": good},
            ]
        },
    )
    [entry] = answer["BatchPutMessageErrorEntries"]
    assert (entry["messageId"], entry["errorCode"]) == ("bad", "InvalidRequestException")
    assert "not a Unicode character" in entry["errorMessage"]
    assert engine.key_values() == ["m2"]


@pytest.mark.parametrize("payload", [None, 80, {"motorid": "m1"}, ["e30="]])
def test_a_message_without_a_payload_blob_refuses_the_request(
    engine: DetectorEngine, payload: object
) -> None:
    """Message.payload is required and a blob (iotevents-data API reference): a message
    leaving it out, or giving no text, breaks the request's shape, so no message of it is
    routed, not even the good one before it."""
    bad: dict[str, object] = {"messageId": "bad", "inputName": "PressureInput"}
    if payload is not None:
        bad["payload"] = payload
    request = {
        "messages": [
            {"messageId": "good", "inputName": "PressureInput", "payload": SPEC_PAYLOAD},
            bad,
        ]
    }
    with pytest.raises(DetectorModelError, match=r"messages\[1\]\.payload"):
        batch_put_message([engine], request)
    assert engine.key_values() == []


@given(st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=10))
def test_a_batch_holds_at_most_1024_bytes_of_payload_in_all(sizes: list[int]) -> None:
    """ "Maximum message payload per batch: 1024 Bytes (1 KiB)" (BatchPutMessage API
    reference): the decoded bytes of every payload together, whatever their split; one
    byte more refuses the whole request."""
    messages = [
        {
            "messageId": f"m{i}",
            "inputName": "Other",
            "payload": base64.b64encode(b"x" * size).decode(),
        }
        for i, size in enumerate(sizes)
    ]
    total = sum(sizes)
    if total > 1024:
        with pytest.raises(DetectorModelError, match=f"{total} bytes of payload; at most 1024"):
            batch_put_message([], {"messages": messages})
    else:
        entries = batch_put_message([], {"messages": messages})["BatchPutMessageErrorEntries"]
        assert [e["messageId"] for e in entries] == [m["messageId"] for m in messages]


def test_a_batch_of_exactly_1024_bytes_is_taken(engine: DetectorEngine) -> None:
    payload = {"motorid": "m1", "sensorData": {"pressure": 1}, "pad": ""}
    payload["pad"] = "p" * (1024 - len(json.dumps(payload).encode()))
    body = json.dumps(payload).encode()
    assert len(body) == 1024
    request = {
        "messages": [
            {
                "messageId": "a",
                "inputName": "PressureInput",
                "payload": base64.b64encode(body).decode(),
            }
        ]
    }
    assert batch_put_message([engine], request) == {"BatchPutMessageErrorEntries": []}
    assert engine.key_values() == ["m1"]
