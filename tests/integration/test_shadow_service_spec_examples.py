"""Every example of the Device Shadow contract, sent through the local service's MQTT topics
and compared whole: request documents, the exact accepted/rejected/delta/documents messages
(order-independent JSON equality, metadata timestamps, version, clientToken echo), every
error code and message, limits at and over their bounds, classic and named shadows.

The clock is set to the examples' own timestamps, so the answers must equal the documents
printed in the contract (and on AWS's device-shadow-document, -data-flow and -mqtt pages)
exactly, not just carry the right keys.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.service import ShadowService
from edge.clock import ManualClock

T0 = 1_747_329_779


@dataclass(frozen=True, slots=True)
class Message:
    suffix: str
    """What follows the shadow prefix: ``update/accepted``, ``get/rejected``, ..."""
    doc: Any
    qos: int
    retain: bool


class Device:
    """A raw MQTT client that publishes one request and collects every answer to it."""

    def __init__(self, broker: EmbeddedBroker, qos: int = 1) -> None:
        self.messages: list[tuple[str, Message]] = []
        self._arrived = threading.Condition()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        subscribed = threading.Event()
        filters = ["$aws/things/+/shadow/+/+", "$aws/things/+/shadow/name/+/+/+"]
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_a: subscribed.set()
        self._client.on_connect = lambda c, *_a: c.subscribe([(f, qos) for f in filters])
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            doc = json.loads(message.payload)
        except ValueError:
            doc = bytes(message.payload)
        with self._arrived:
            self.messages.append(
                (message.topic, Message("", doc, message.qos, bool(message.retain)))
            )
            self._arrived.notify_all()

    def request(
        self,
        thing: str,
        operation: str,
        payload: bytes | dict[str, Any] = b"",
        shadow: str | None = None,
    ) -> dict[str, Message]:
        """Publish ``operation`` and return its answers by suffix, once the last one is in
        (``update/documents`` after an accepted update, else the accepted/rejected)."""
        prefix = f"$aws/things/{thing}/shadow" + (f"/name/{shadow}" if shadow else "")
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        with self._arrived:
            start = len(self.messages)
        self._client.publish(f"{prefix}/{operation}", body, qos=1).wait_for_publish(10)

        def answers() -> dict[str, Message]:
            out = {}
            for topic, message in self.messages[start:]:
                if topic.startswith(prefix + "/") and topic.count("/") == prefix.count("/") + 2:
                    suffix = topic[len(prefix) + 1 :]
                    out[suffix] = Message(suffix, message.doc, message.qos, message.retain)
            return out

        def done() -> bool:
            got = answers()
            return f"{operation}/rejected" in got or (
                f"{operation}/accepted" in got
                and (operation != "update" or "update/documents" in got)
            )

        with self._arrived:
            assert self._arrived.wait_for(done, 10), f"no answer to {operation} on {prefix}"
            return answers()

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@pytest.fixture(scope="module")
def roomy_broker() -> Iterator[EmbeddedBroker]:
    """Lets 512 KB through, so the service's own 128 KB check is what answers."""
    with EmbeddedBroker("amqtt", max_message_kb=512) as running:
        yield running


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture(scope="module")
def service(
    roomy_broker: EmbeddedBroker, clock: ManualClock, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShadowService]:
    db = tmp_path_factory.mktemp("spec-examples") / "shadows.db"
    with ShadowService(roomy_broker.url, str(db), clock, limits=False, rest_port=0) as running:
        yield running


@pytest.fixture(scope="module")
def device(roomy_broker: EmbeddedBroker, service: ShadowService) -> Iterator[Device]:
    client = Device(roomy_broker)
    yield client
    client.close()


@pytest.fixture
def thing() -> str:
    return f"spec-{uuid.uuid4().hex[:10]}"


Send = Callable[..., dict[str, Message]]


@pytest.fixture
def at(device: Device, clock: ManualClock) -> Send:
    """``at(T, thing, operation, payload, shadow=None)``: the request sent at epoch second T."""

    def send(
        when: int,
        thing: str,
        operation: str,
        payload: bytes | dict[str, Any] = b"",
        shadow: str | None = None,
    ) -> dict[str, Message]:
        clock.set(float(when))
        return device.request(thing, operation, payload, shadow)

    return send


def docs(answers: dict[str, Message]) -> dict[str, Any]:
    return {suffix: message.doc for suffix, message in answers.items()}


def only(answers: dict[str, Message], suffix: str) -> Any:
    assert set(answers) == {suffix}, docs(answers)
    return answers[suffix].doc


def bump(at: Send, thing: str, version: int, when: int = T0 - 100) -> None:
    """Reported-only filler updates that leave the shadow at *version* and its state empty,
    so the next request meets the version an example shows."""
    for i in range(version - 1):
        assert "update/accepted" in at(when, thing, "update", {"state": {"reported": {"n": i}}})
    assert "update/accepted" in at(when, thing, "update", {"state": {"reported": {"n": None}}})


# --- 1. MQTT topics ----------------------------------------------------------------------


def test_1_classic_and_named_shadows_answer_on_their_own_prefix_at_the_subscription_qos(
    roomy_broker: EmbeddedBroker, device: Device, at: Send, service: ShadowService
) -> None:
    thing = "pump-07"
    named = at(T0, thing, "update", {"state": {"desired": {"rate": 5}}}, shadow="config")
    assert set(named) == {"update/accepted", "update/delta", "update/documents"}
    assert all(m.qos == 1 and not m.retain for m in named.values())
    assert only(at(T0, thing, "get"), "get/rejected") == {
        "code": 404,
        "message": "No shadow exists with name: 'pump-07'",
    }, "the classic shadow is a separate document"
    qos0 = Device(roomy_broker, qos=0)
    try:
        got = qos0.request(thing, "get", shadow="config")
        assert got["get/accepted"].qos == 0 and not got["get/accepted"].retain
        assert got["get/accepted"].doc["state"]["desired"] == {"rate": 5}
    finally:
        qos0.close()
    # Answers and unknown topics under the prefix are not requests: a document published
    # there by a client creates nothing.
    fake = json.dumps({"state": {"desired": {"rate": 9}}}).encode()
    for topic in ("update/accepted", "update/documents", "update/delta/x", "sync"):
        device._client.publish(f"$aws/things/{thing}/shadow/{topic}", fake, qos=1)
    assert at(T0, thing, "get")["get/rejected"].doc["code"] == 404
    assert at(T0, thing, "get", shadow="config")["get/accepted"].doc["version"] == 1


# --- 2. Request documents ----------------------------------------------------------------


def test_2_1_the_update_example_is_applied_and_echoed_as_sent(at: Send, thing: str) -> None:
    bump(at, thing, 12)
    request = {
        "state": {"desired": {"light": {"on": True, "level": 40}}, "reported": None},
        "clientToken": "2f1c0a7e-5b1e-4c55-9d0e-2d0b1f0c9a11",
        "version": 12,
        "comment": "other top-level keys are ignored",
    }
    T = T0 + 1
    got = docs(at(T, thing, "update", request))
    assert got["update/accepted"] == {
        "state": {"desired": {"light": {"on": True, "level": 40}}, "reported": None},
        "metadata": {
            "desired": {"light": {"on": {"timestamp": T}, "level": {"timestamp": T}}},
            "reported": {"timestamp": T},
        },
        "version": 13,
        "timestamp": T,
        "clientToken": "2f1c0a7e-5b1e-4c55-9d0e-2d0b1f0c9a11",
    }
    stored = at(T + 1, thing, "get")["get/accepted"].doc
    assert stored == {
        "state": {
            "desired": {"light": {"on": True, "level": 40}},
            "delta": {"light": {"on": True, "level": 40}},
        },
        "metadata": {"desired": {"light": {"on": {"timestamp": T}, "level": {"timestamp": T}}}},
        "version": 13,
        "timestamp": T + 1,
    }
    conflict = at(T + 2, thing, "update", {**request, "clientToken": "c"})
    assert only(conflict, "update/rejected") == {
        "code": 409,
        "message": "Version conflict",
        "clientToken": "c",
    }


@pytest.mark.parametrize(
    ("body", "token"),
    [(b"", None), (b"{}", None), (b'{"clientToken":"t"}', "t"), (b"{not json", None)],
)
def test_2_2_get_and_delete_bodies_read_only_the_client_token(
    at: Send, thing: str, body: bytes, token: str | None
) -> None:
    at(T0, thing, "update", {"state": {"reported": {"a": 1}}})
    got = only(at(T0 + 5, thing, "get", body), "get/accepted")
    assert got.get("clientToken") == token and got["version"] == 1
    deleted = only(at(T0 + 6, thing, "delete", body), "delete/accepted")
    assert deleted == {"version": 1, "timestamp": T0 + 6} | (
        {"clientToken": token} if token else {}
    )


# --- 3. Response documents ---------------------------------------------------------------


def color_shadow_at_version_3(at: Send, thing: str) -> None:
    """desired.color red @1747329945, reported.color green @1747329779, version 3 (3.1, 3.4)."""
    at(1747329779, thing, "update", {"state": {"reported": {"color": "green"}}})
    at(1747329800, thing, "update", {"state": {"desired": {"color": "blue"}}})
    at(1747329945, thing, "update", {"state": {"desired": {"color": "red"}}})


GET_3_1 = {
    "state": {
        "desired": {"color": "red"},
        "reported": {"color": "green"},
        "delta": {"color": "red"},
    },
    "metadata": {
        "desired": {"color": {"timestamp": 1747329945}},
        "reported": {"color": {"timestamp": 1747329779}},
    },
    "version": 3,
    "timestamp": 1747330100,
}
"""Section 3.1's document (without its clientToken), once color_shadow_at_version_3 ran."""
UPDATE_3_2 = {
    "state": {"reported": {"color": "red"}},
    "metadata": {"reported": {"color": {"timestamp": 1747330109}}},
    "version": 4,
    "timestamp": 1747330109,
    "clientToken": "t-2",
}


def test_3_1_get_accepted_example(at: Send, thing: str) -> None:
    color_shadow_at_version_3(at, thing)
    got = at(1747330100, thing, "get", {"clientToken": "t-1"})
    assert only(got, "get/accepted") == GET_3_1 | {"clientToken": "t-1"}


def test_3_2_and_3_4_update_accepted_and_documents_examples_and_no_delta_once_equal(
    at: Send, thing: str
) -> None:
    color_shadow_at_version_3(at, thing)
    request = {"state": {"reported": {"color": "red"}}, "clientToken": "t-2"}
    got = docs(at(1747330109, thing, "update", request))
    assert set(got) == {"update/accepted", "update/documents"}, "an empty delta is not published"
    assert got["update/accepted"] == UPDATE_3_2
    assert got["update/documents"] == {
        "previous": {
            "state": {"desired": {"color": "red"}, "reported": {"color": "green"}},
            "metadata": {
                "desired": {"color": {"timestamp": 1747329945}},
                "reported": {"color": {"timestamp": 1747329779}},
            },
            "version": 3,
        },
        "current": {
            "state": {"desired": {"color": "red"}, "reported": {"color": "red"}},
            "metadata": {
                "desired": {"color": {"timestamp": 1747329945}},
                "reported": {"color": {"timestamp": 1747330109}},
            },
            "version": 4,
        },
        "timestamp": 1747330109,
        "clientToken": "t-2",
    }


def test_3_2_a_deleted_leaf_is_echoed_as_null_with_a_timestamp(at: Send, thing: str) -> None:
    at(T0, thing, "update", {"state": {"desired": {"engine": "on", "mode": "eco"}}})
    got = at(T0 + 9, thing, "update", {"state": {"desired": {"engine": None}}})
    assert got["update/accepted"].doc == {
        "state": {"desired": {"engine": None}},
        "metadata": {"desired": {"engine": {"timestamp": T0 + 9}}},
        "version": 2,
        "timestamp": T0 + 9,
    }
    assert got["update/documents"].doc["current"]["metadata"] == {
        "desired": {"mode": {"timestamp": T0}}
    }


def test_3_3_and_4_5_delta_example_a_reported_only_update_publishes_the_whole_delta(
    at: Send, thing: str
) -> None:
    bump(at, thing, 5)
    at(1747330183, thing, "update", {"state": {"desired": {"Status": "Great"}}})
    token = "17c3e551-afd9-4951-bdba-fc9425e86a08"
    request = {"state": {"reported": {"Status": "Awful"}}, "clientToken": token}
    got = docs(at(1747330244, thing, "update", request))
    assert got["update/delta"] == {
        "version": 7,
        "timestamp": 1747330244,
        "state": {"Status": "Great"},
        "metadata": {"Status": {"timestamp": 1747330183}},
        "clientToken": token,
    }


def test_3_4_previous_is_null_when_the_update_creates_the_shadow(at: Send, thing: str) -> None:
    got = docs(at(T0, thing, "update", {"state": {"reported": {"a": [1, 2]}}}))
    assert got["update/documents"] == {
        "previous": None,
        "current": {
            "state": {"reported": {"a": [1, 2]}},
            "metadata": {"reported": {"a": [{"timestamp": T0}, {"timestamp": T0}]}},
            "version": 1,
        },
        "timestamp": T0,
    }


def test_3_5_delete_accepted_example_keeps_the_version(at: Send, thing: str) -> None:
    bump(at, thing, 9)
    token = "31a0b27a-a4b6-4883-afd5-ce485f309926"
    got = at(1747330344, thing, "delete", {"clientToken": token})
    assert only(got, "delete/accepted") == {
        "version": 9,
        "timestamp": 1747330344,
        "clientToken": token,
    }


def test_3_6_error_examples(at: Send, thing: str) -> None:
    missing = at(1747330400, thing, "update", {"clientToken": "t-3"})
    assert only(missing, "update/rejected") == {
        "code": 400,
        "message": "Missing required node: state",
        "timestamp": 1747330400,
        "clientToken": "t-3",
    }
    assert only(at(T0, thing, "get", shadow="simShadow1"), "get/rejected") == {
        "code": 404,
        "message": "No shadow exists with name: 'simShadow1'",
    }
    # device-shadow-data-flow.html, optimistic locking: at version 10, 9 is refused
    bump(at, thing, 9)
    at(T0, thing, "update", {"state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}}})
    stale = {
        "state": {"desired": {"colors": ["BLUE"]}},
        "version": 9,
        "clientToken": "426bfd96-e720-46d3-95cd-014e3ef12bb6",
    }
    assert only(at(T0, thing, "update", stale), "update/rejected") == {
        "code": 409,
        "message": "Version conflict",
        "clientToken": "426bfd96-e720-46d3-95cd-014e3ef12bb6",
    }
    accepted = at(T0, thing, "update", {**stale, "version": 10})["update/accepted"].doc
    assert accepted["version"] == 11
    final = at(T0, thing, "get")["get/accepted"].doc
    assert final["state"]["desired"] == {"colors": ["BLUE"]} and final["version"] == 11


DEEP_OK = {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}
DEEP_BAD = {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}


@pytest.mark.parametrize(
    ("payload", "message", "echo"),
    [
        (b"[1, 2]", "Invalid JSON", False),
        (b'{"state": {"desired": {"a": 1}}, "clientToken": "t"', "Invalid JSON", False),
        ({"clientToken": "t"}, "Missing required node: state", True),
        ({"state": "on", "clientToken": "t"}, "State node must be an object", True),
        ({"state": [1], "clientToken": "t"}, "State node must be an object", True),
        ({"state": {"desired": 1}, "clientToken": "t"}, "Desired node must be an object", True),
        ({"state": {"reported": []}, "clientToken": "t"}, "Reported node must be an object", True),
        (
            {"state": {"delta": {}}, "clientToken": "t"},
            "State contains an invalid node: 'delta'",
            True,
        ),
        (
            {"state": {"desired": {"a": 1}}, "version": "3", "clientToken": "t"},
            "Invalid version",
            True,
        ),
        (
            {"state": {"desired": {"a": 1}}, "version": -1, "clientToken": "t"},
            "Invalid version",
            True,
        ),
        ({"version": 3, "clientToken": "t"}, "Missing required node: state", True),
        ({"state": {"desired": {"a": 1}}, "clientToken": 7}, "Invalid clientToken", False),
        ({"state": {"desired": {"a": 1}}, "clientToken": "x" * 65}, "Invalid clientToken", False),
        (
            {"state": {"desired": DEEP_BAD}, "clientToken": "t"},
            "JSON contains too many levels of nesting; maximum is 6",
            True,
        ),
        ({"state": {"desired": {"c": [None, "RED"]}}, "clientToken": "t"}, "Invalid JSON", True),
    ],
)
def test_3_6_every_400_text_with_timestamp_and_the_token_from_the_node_checks_on(
    at: Send, thing: str, payload: bytes | dict[str, Any], message: str, echo: bool
) -> None:
    got = only(at(T0 + 3, thing, "update", payload), "update/rejected")
    expected = {"code": 400, "message": message, "timestamp": T0 + 3}
    assert got == expected | ({"clientToken": "t"} if echo else {})
    assert only(at(T0 + 3, thing, "get"), "get/rejected")["code"] == 404, "nothing was stored"


def test_3_6_413_415_and_a_bad_name_are_answered_with_the_aws_texts(at: Send, thing: str) -> None:
    too_big = json.dumps({"state": {"desired": {"a": "x" * 8200}}, "clientToken": "t"})
    assert only(at(T0, thing, "update", too_big.encode()), "update/rejected") == {
        "code": 413,
        "message": "The payload exceeds the maximum size allowed",
        "timestamp": T0,
        "clientToken": "t",
    }
    assert only(
        at(T0, thing, "update", b'{"state":{"desired":{"a":"\xff"}}}'), "update/rejected"
    ) == {
        "code": 415,
        "message": "Unsupported documented encoding; supported encoding is UTF-8",
        "timestamp": T0,
    }
    bad_thing = "has.dot"
    assert only(at(T0, bad_thing, "get", {"clientToken": "n"}), "get/rejected") == {
        "code": 400,
        "message": "Invalid thing name",
        "timestamp": T0,
        "clientToken": "n",
    }


def test_3_6_an_unexpected_failure_is_500_internal_service_failure_and_the_service_lives_on(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    db = tmp_path / "shadows.db"
    with ShadowService(broker.url, str(db), clock, limits=False) as service:
        device = Device(broker)
        try:
            assert "update/accepted" in device.request("p1", "update", {"state": {"desired": {}}})
            with sqlite3.connect(db) as other:
                other.execute("ALTER TABLE shadows RENAME TO gone")
            got = device.request("p1", "get", {"clientToken": "boom"})
            assert only(got, "get/rejected") == {
                "code": 500,
                "message": "Internal service failure",
                "timestamp": T0,
                "clientToken": "boom",
            }
            with sqlite3.connect(db) as other:
                other.execute("ALTER TABLE gone RENAME TO shadows")
            assert device.request("p1", "get")["get/accepted"].doc["version"] == 1
            assert service.counts["rejected_500"] == 1
        finally:
            device.close()


# --- 4. Semantics ------------------------------------------------------------------------


def test_4_1_merge_example(at: Send, thing: str) -> None:
    at(T0, thing, "update", {"state": {"desired": {"color": {"r": 255, "g": 255}, "mode": "eco"}}})
    at(T0 + 1, thing, "update", {"state": {"desired": {"color": {"r": 10}}}})
    got = at(T0 + 2, thing, "get")["get/accepted"].doc
    assert got["state"]["desired"] == {"color": {"r": 10, "g": 255}, "mode": "eco"}
    assert got["metadata"]["desired"] == {
        "color": {"r": {"timestamp": T0 + 1}, "g": {"timestamp": T0}},
        "mode": {"timestamp": T0},
    }, "4.8: each leaf written is re-timed, the others keep their timestamps"


def test_4_2_null_deletes_leaves_sections_and_emptied_objects_but_never_the_shadow(
    at: Send, thing: str
) -> None:
    at(T0, thing, "update", {"state": {"desired": {"fan": {"speed": 2}, "mode": "eco"}}})
    at(T0, thing, "update", {"state": {"reported": {"mode": "eco"}}})
    # the data-flow page's example: report the state and clear desired in one request
    request = {"state": {"reported": {"color": "red"}, "desired": None}}
    at(T0 + 1, thing, "update", request)
    got = at(T0 + 2, thing, "get")["get/accepted"].doc
    assert got["state"] == {"reported": {"mode": "eco", "color": "red"}}
    assert set(got["metadata"]) == {"reported"}
    at(T0 + 3, thing, "update", {"state": {"reported": {"mode": None, "color": None}}})
    assert at(T0 + 4, thing, "get")["get/accepted"].doc == {
        "state": {},
        "metadata": {},
        "version": 4,
        "timestamp": T0 + 4,
    }, "4.9: clearing all state keeps the shadow; an emptied section is removed"
    at(T0 + 5, thing, "update", {"state": {"desired": {"x": {"y": 1}, "z": 1}}})
    at(T0 + 6, thing, "update", {"state": {"desired": {"x": {"y": None}}}})
    assert at(T0, thing, "get")["get/accepted"].doc["state"]["desired"] == {"z": 1}
    accepted = at(T0 + 7, thing, "update", {"state": None})["update/accepted"].doc
    assert accepted["state"] is None and accepted["version"] == 7
    assert at(T0, thing, "get")["get/accepted"].doc["state"] == {}


def test_4_3_arrays_replace_whole_and_time_each_element(at: Send, thing: str) -> None:
    at(T0, thing, "update", {"state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}}})
    at(T0, thing, "update", {"state": {"desired": {"colors": ["RED"]}}})
    assert at(T0, thing, "get")["get/accepted"].doc["state"]["desired"] == {"colors": ["RED"]}
    got = at(1591140517, thing, "update", {"state": {"reported": {"ColorRGB": [255, 0]}}})
    assert got["update/accepted"].doc["metadata"] == {
        "reported": {"ColorRGB": [{"timestamp": 1591140517}, {"timestamp": 1591140517}]}
    }
    nested = at(T0, thing, "update", {"state": {"reported": {"pts": [{"x": 1, "y": 2}, 3]}}})
    assert nested["update/accepted"].doc["metadata"] == {
        "reported": {"pts": [{"x": {"timestamp": T0}, "y": {"timestamp": T0}}, {"timestamp": T0}]}
    }


def test_4_4_delta_examples(at: Send, thing: str) -> None:
    # device-shadow-document.html, "Delta state"
    at(T0, thing, "update", {"state": {"desired": {"color": "RED", "state": "STOP"}}})
    got = at(T0, thing, "update", {"state": {"reported": {"color": "GREEN", "engine": "ON"}}})
    assert got["update/delta"].doc["state"] == {"color": "RED", "state": "STOP"}
    other = f"{thing}-n"
    lights = {
        "desired": {"lights": {"color": {"r": 255, "g": 255, "b": 255}}},
        "reported": {"lights": {"color": {"r": 255, "g": 0, "b": 255}}},
    }
    got = at(T0, other, "update", {"state": lights})
    assert got["update/delta"].doc["state"] == {"lights": {"color": {"g": 255}}}
    assert got["update/delta"].doc["metadata"] == {"lights": {"color": {"g": {"timestamp": T0}}}}, (
        "metadata mirrors the delta with the desired timestamps"
    )
    numbers = f"{thing}-1"
    got = at(T0, numbers, "update", {"state": {"desired": {"n": 1}, "reported": {"n": 1.0}}})
    assert "update/delta" not in got, "numbers compare by value"
    got = at(T0, numbers, "update", {"state": {"desired": {"n": True}}})
    assert got["update/delta"].doc["state"] == {"n": True}, "a boolean is not a number"


def test_4_5_a_leaf_deleted_from_reported_but_still_desired_is_in_the_delta_again(
    at: Send, thing: str
) -> None:
    """device-shadow-mqtt.html, /update/delta: "If an attribute is deleted from the reported
    section but still exists in the desired section, it is included"."""
    at(T0, thing, "update", {"state": {"desired": {"mode": "safe"}, "reported": {"mode": "safe"}}})
    got = at(T0 + 1, thing, "update", {"state": {"reported": {"mode": None}}})
    assert got["update/delta"].doc == {
        "version": 2,
        "timestamp": T0 + 1,
        "state": {"mode": "safe"},
        "metadata": {"mode": {"timestamp": T0}},
    }


def test_4_6_versions_count_every_accepted_update_and_lock_on_request(at: Send, thing: str) -> None:
    assert only(
        at(T0, thing, "update", {"state": {"desired": {"a": 1}}, "version": 1}), "update/rejected"
    ) == {"code": 409, "message": "Version conflict"}
    created = at(T0, thing, "update", {"state": {"desired": {"a": 1}}, "version": 0})
    assert created["update/accepted"].doc["version"] == 1, "version 0 creates a new shadow"
    noop = at(T0, thing, "update", {"state": {"desired": {"a": 1}}})
    assert noop["update/accepted"].doc["version"] == 2, "a no-op update still counts"
    assert "update/delta" in noop, "the delta is still not empty, so it is published again"


def test_4_7_delete_keeps_the_version_for_48_hours_then_starts_again(at: Send, thing: str) -> None:
    bump(at, thing, 9)
    assert at(T0, thing, "delete")["delete/accepted"].doc["version"] == 9
    assert only(at(T0, thing, "get"), "get/rejected")["code"] == 404
    assert only(at(T0, thing, "delete"), "delete/rejected") == {
        "code": 404,
        "message": f"No shadow exists with name: '{thing}'",
    }
    never = {"state": {"reported": {"a": 1}}, "version": 0}
    assert only(at(T0, thing, "update", never), "update/rejected")["code"] == 409, (
        "4.6 Choice: a locked update of a deleted shadow must name its tombstone's version"
    )
    request = {"state": {"reported": {"a": 1}}, "version": 9}
    recreated = at(T0 + 47 * 3600, thing, "update", request)
    assert recreated["update/accepted"].doc["version"] == 10
    assert recreated["update/documents"].doc["previous"] is None
    at(T0 + 47 * 3600, thing, "delete")
    later = at(T0 + 96 * 3600, thing, "update", {"state": {"reported": {"a": 1}}})
    assert later["update/accepted"].doc["version"] == 1


# --- 5. Limits ---------------------------------------------------------------------------


def _state_of_size(size: int) -> dict[str, Any]:
    """A desired section whose compact JSON is exactly *size* bytes."""
    overhead = len(json.dumps({"a": ""}, separators=(",", ":")))
    return {"a": "x" * (size - overhead)}


def test_5_state_size_is_8192_bytes_of_desired_plus_reported(at: Send, thing: str) -> None:
    half = _state_of_size(4096)
    at(T0, thing, "update", {"state": {"desired": half, "reported": half}})
    assert at(T0, thing, "get")["get/accepted"].doc["version"] == 1, "exactly 8192 bytes pass"
    over = at(T0, thing, "update", {"state": {"reported": {"b": 1}}, "clientToken": "big"})
    assert only(over, "update/rejected") == {
        "code": 413,
        "message": "The payload exceeds the maximum size allowed",
        "timestamp": T0,
        "clientToken": "big",
    }
    assert at(T0, thing, "get")["get/accepted"].doc["version"] == 1, "nothing stored"


def test_5_depth_examples(at: Send, thing: str) -> None:
    ok = at(T0, thing, "update", {"state": {"desired": DEEP_OK, "reported": DEEP_OK}})
    assert "update/accepted" in ok
    assert "update/rejected" in at(T0, thing, "update", {"state": {"reported": DEEP_BAD}})
    arrays = {"a": {"b": {"c": {"d": {"e": [[1]]}}}}}
    assert "update/rejected" in at(T0, thing, "update", {"state": {"desired": arrays}})
    empty = {"a": {"b": {"c": {"d": {"e": {"f": {}}}}}}}
    assert "update/accepted" in at(T0, thing, "update", {"state": {"desired": empty}})


@pytest.mark.parametrize(
    ("thing_name", "shadow", "message"),
    [
        ("t" * 128, None, None),
        ("t" * 129, None, "Invalid thing name"),
        ("a:b_c-D9", "$x:y_z-1", None),
        ("pump", "s" * 64, None),
        ("pump", "s" * 65, "Invalid shadow name"),
        ("pump", "bad.name", "Invalid shadow name"),
        ("p\u00fcmp", None, "Invalid thing name"),
        ("pump$", None, "Invalid thing name"),
    ],
)
def test_5_names_at_and_over_their_limits(
    at: Send, thing_name: str, shadow: str | None, message: str | None
) -> None:
    got = at(
        T0, thing_name, "update", {"state": {"reported": {"a": 1}}, "clientToken": "n"}, shadow
    )
    if message is None:
        assert "update/accepted" in got
        at(T0, thing_name, "delete", shadow=shadow)
    else:
        assert only(got, "update/rejected") == {
            "code": 400,
            "message": message,
            "timestamp": T0,
            "clientToken": "n",
        }


def test_5_client_token_is_at_most_64_utf8_bytes(at: Send, thing: str) -> None:
    fits = "\u00e9" * 32  # 64 bytes
    got = at(T0, thing, "update", {"state": {"reported": {"a": 1}}, "clientToken": fits})
    assert got["update/accepted"].doc["clientToken"] == fits
    assert got["update/documents"].doc["clientToken"] == fits
    over = fits + "x"
    refused = at(T0, thing, "update", {"state": {"reported": {"a": 1}}, "clientToken": over})
    assert only(refused, "update/rejected")["message"] == "Invalid clientToken"
    bad_get = at(T0, thing, "get", {"clientToken": over})
    assert only(bad_get, "get/rejected") == {
        "code": 400,
        "message": "Invalid clientToken",
        "timestamp": T0,
    }


def test_5_an_mqtt_payload_of_128_kb_is_read_and_one_byte_more_is_413(at: Send, thing: str) -> None:
    head = b'{"state":{"reported":{"a":1}},"clientToken":"p"}'
    exact = head + b" " * (128 * 1024 - len(head))
    assert "update/accepted" in at(T0, thing, "update", exact)
    assert only(at(T0, thing, "update", exact + b" "), "update/rejected") == {
        "code": 413,
        "message": "The payload exceeds the maximum size allowed",
        "timestamp": T0,
    }


# --- 7. REST API -------------------------------------------------------------------------


def test_7_boto3_iot_data_gets_the_same_documents_as_mqtt(
    service: ShadowService, at: Send, clock: ManualClock, thing: str
) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    data = boto3.client(
        "iot-data",
        endpoint_url=service.rest_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1}),
    )

    def body(response: dict[str, Any]) -> Any:
        return json.loads(response["payload"].read())

    color_shadow_at_version_3(at, thing)
    clock.set(1747330100)
    assert body(data.get_thing_shadow(thingName=thing)) == GET_3_1
    clock.set(1747330109)
    request = {"state": {"reported": {"color": "red"}}, "clientToken": "t-2"}
    assert (
        body(data.update_thing_shadow(thingName=thing, payload=json.dumps(request))) == UPDATE_3_2
    )
    clock.set(1747330344)
    assert body(data.delete_thing_shadow(thingName=thing)) == {
        "version": 4,
        "timestamp": 1747330344,
    }
    with pytest.raises(ClientError) as missing:
        data.get_thing_shadow(thingName=thing, shadowName="simShadow1")
    assert missing.value.response["Error"] == {
        "Code": "ResourceNotFoundException",
        "Message": "No shadow exists with name: 'simShadow1'",
    }
    named = {"state": {"desired": {"rate": 1}}}
    data.update_thing_shadow(thingName=thing, shadowName="config", payload=json.dumps(named))
    listed = data.list_named_shadows_for_thing(thingName=thing)
    assert listed["results"] == ["config"] and "nextToken" not in listed
    assert listed["timestamp"] is not None


# --- 3.3/3.4 against 3.1, for any sequence of updates -----------------------------------

_leaf = st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from(["on", "off"]), st.none())
_value = st.recursive(
    _leaf, lambda inner: st.dictionaries(st.sampled_from("xyz"), inner, max_size=2), max_leaves=4
)
_section = st.one_of(st.none(), st.dictionaries(st.sampled_from("abc"), _value, max_size=3))
_update = st.fixed_dictionaries({}, optional={"desired": _section, "reported": _section})


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(updates=st.lists(_update, min_size=1, max_size=3))
def test_documents_and_delta_always_agree_with_the_get_before_and_after(
    at: Send, updates: list[dict[str, Any]]
) -> None:
    """``previous`` is what a get showed before the update, ``current`` what it shows after
    (without the delta), and ``update/delta`` is exactly the get's delta, or absent."""
    thing = f"prop-{uuid.uuid4().hex[:10]}"
    before: dict[str, Any] | None = None
    for i, state in enumerate(updates):
        got = docs(at(T0 + i, thing, "update", {"state": state}))
        assert "update/accepted" in got, got
        documents = got["update/documents"]
        after = at(T0 + i, thing, "get")["get/accepted"].doc
        delta = after["state"].pop("delta", None)
        assert documents["current"] == {k: after[k] for k in ("state", "metadata", "version")}
        assert documents["previous"] == before
        assert got.get("update/delta", {}).get("state") == delta
        before = documents["current"]
