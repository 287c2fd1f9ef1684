"""BatchPutMessage's ``payload`` is a blob of a REST-JSON API: base64 text on the wire.

Text that does not decode is a malformed request, refused as a whole before any message
runs (Smithy's restJson1 protocol test RestJsonBodyMalformedBlobInvalidBase64: "When a blob
member is not properly base64 encoded, or not encoded at all, the response should be a 400
SerializationException"); bytes that decode but are not a JSON object stay that message's
own error entry.
"""

from __future__ import annotations

import base64
import binascii

import pytest
from detector_models import heartbeat_engine
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.detectors.messages import batch_put_message
from edge.errors import DetectorModelError

GOOD = base64.b64encode(b'{"motorid": "m1", "sensorData": {"pressure": 1}}').decode()


def not_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return True
    return False


@pytest.mark.parametrize("payload", ["not base64!", "e30", "e30=e30=", '{"motorid": "m2"}', "é"])
def test_a_payload_that_is_not_base64_refuses_the_whole_request(payload: str) -> None:
    detectors = heartbeat_engine()
    request = {
        "messages": [
            {"messageId": "a", "inputName": "PressureInput", "payload": GOOD},
            {"messageId": "b", "inputName": "PressureInput", "payload": payload},
        ]
    }
    with pytest.raises(DetectorModelError, match=r"messages\[1\]\.payload: .*base64"):
        batch_put_message([detectors], request)
    assert detectors.key_values() == []  # the good message before it did not run either


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40).filter(not_base64))
def test_any_text_that_does_not_decode_is_a_request_error(payload: str) -> None:
    request = {"messages": [{"messageId": "a", "inputName": "PressureInput", "payload": payload}]}
    with pytest.raises(DetectorModelError, match=r"messages\[0\]\.payload"):
        batch_put_message([heartbeat_engine()], request)


@pytest.mark.parametrize("body", [b"[1]", b"not json", b"", b"\xff\xfe"])
def test_base64_of_something_not_a_json_object_stays_that_messages_entry(body: bytes) -> None:
    detectors = heartbeat_engine()
    request = {
        "messages": [
            {"messageId": "a", "inputName": "PressureInput", "payload": GOOD},
            {
                "messageId": "b",
                "inputName": "PressureInput",
                "payload": base64.b64encode(body).decode(),
            },
        ]
    }
    entries = batch_put_message([detectors], request)["BatchPutMessageErrorEntries"]
    assert [(e["messageId"], e["errorCode"]) for e in entries] == [("b", "InvalidRequestException")]
    assert detectors.key_values() == ["m1"]
