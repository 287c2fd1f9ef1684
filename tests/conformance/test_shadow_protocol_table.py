"""AWS's documented Device Shadow protocol as tables, run over MQTT and REST (boto3
``iot-data``), each on a classic and on a named shadow.

Every row is a request after some setup requests, the answer AWS documents for it (status,
exact message) and the document a GET then returns (state with its delta, metadata,
version), so a row also shows that a rejected request changed nothing. Sources:
device-shadow-document.html (delta, versions, client tokens, empty properties, arrays),
device-shadow-mqtt.html (``/update/delta`` rules), device-shadow-error-messages.html, and
the project's shadow contract where it records a Choice (cited per row).

The ``/update/delta`` and ``/update/documents`` messages are read by an MQTT observer, for
updates made over MQTT and over REST alike.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from shadow_backends import Backend, LocalBackend, Outcome

from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.service import ShadowService
from edge.clock import ManualClock

Doc = dict[str, Any]


@pytest.fixture(params=["local", "rest"])
def face(request: pytest.FixtureRequest) -> Backend:
    """The local service over MQTT (``local``) or over its REST face (``rest``)."""
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture(params=[None, "cfg"], ids=["classic", "named"])
def shadow(request: pytest.FixtureRequest) -> str | None:
    return request.param


@pytest.fixture
def clock(local_service: tuple[ShadowService, ManualClock]) -> ManualClock:
    return local_service[1]


def stamped(value: Any, when: int) -> Any:
    """The metadata AWS keeps for *value* written at *when*: a timestamp per leaf, arrays
    element by element."""
    if isinstance(value, dict):
        return {k: stamped(v, when) for k, v in value.items()}
    if isinstance(value, list):
        return [stamped(v, when) for v in value]
    return {"timestamp": when}


def expect_error(out: Outcome, face: Backend, code: int, message: str) -> None:
    """An error as each face carries it: MQTT ``{code, message, timestamp?, clientToken}``
    (no timestamp on 404 and 409, contract 3.6 Choice), REST the HTTP status and message."""
    assert out.code == code, out
    assert out.doc["message"] == message, out
    if isinstance(face, LocalBackend):
        assert out.doc["code"] == code
        assert ("timestamp" in out.doc) == (code not in (404, 409)), out.doc
        if "timestamp" in out.doc:
            assert isinstance(out.doc["timestamp"], int)


# --- updates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    setup: list[Doc]
    request: Any
    code: int = 200
    message: str = ""
    state: Doc | None = None
    """The ``state`` a GET answers afterwards (delta included); None: the shadow is missing."""
    version: int = 0
    """The version a GET answers afterwards."""
    metadata_of: Doc = field(default_factory=dict)
    """Per section, the state whose leaves all carry the time of their setup or request."""


A = {"desired": {"a": 1, "o": {"x": 1, "y": 2}, "arr": [1, 2, 3]}}
"""The state most rows start from: desired only, so the whole of it is the delta."""
SET_A = {"state": A}

ROWS = [
    Row(
        "update with the matching version is applied",
        [SET_A],
        {"state": {"reported": {"a": 1}}, "version": 1},
        state={**A, "reported": {"a": 1}, "delta": {"o": {"x": 1, "y": 2}, "arr": [1, 2, 3]}},
        version=2,
    ),
    Row(
        "update with another version is 409 Version conflict and changes nothing",
        [SET_A],
        {"state": {"reported": {"a": 1}}, "version": 7},
        409,
        "Version conflict",
        state={**A, "delta": A["desired"]},
        version=1,
    ),
    Row(
        "update with an older version is 409 too",
        [SET_A, {"state": {"desired": {"a": 2}}}],
        {"state": {"desired": {"a": 3}}, "version": 1},
        409,
        "Version conflict",
        state={"desired": {**A["desired"], "a": 2}, "delta": {**A["desired"], "a": 2}},
        version=2,
    ),
    Row(
        "update without a version is unconditional",
        [SET_A, {"state": {"desired": {"a": 2}}}],
        {"state": {"desired": {"a": 3}}},
        state={"desired": {**A["desired"], "a": 3}, "delta": {**A["desired"], "a": 3}},
        version=3,
    ),
    Row(
        "update without state is 400 Missing required node: state",
        [SET_A],
        {"desired": {"a": 2}},
        400,
        "Missing required node: state",
        state={**A, "delta": A["desired"]},
        version=1,
    ),
    Row(
        "state null clears both sections but keeps the shadow (contract 4.2 Choice)",
        [SET_A, {"state": {"reported": {"a": 1}}}],
        {"state": None},
        state={},
        version=3,
    ),
    Row(
        "desired null deletes the desired section, and with it the delta",
        [SET_A, {"state": {"reported": {"a": 5}}}],
        {"state": {"desired": None}},
        state={"reported": {"a": 5}},
        version=3,
    ),
    Row(
        "reported null deletes the reported section; desired comes back whole in the delta",
        [SET_A, {"state": {"reported": {"a": 1, "o": {"x": 1, "y": 2}, "arr": [1, 2, 3]}}}],
        {"state": {"reported": None}},
        state={**A, "delta": A["desired"]},
        version=3,
    ),
    Row(
        "a nested null deletes that key and its metadata, and the rest of the object stays",
        [SET_A],
        {"state": {"desired": {"o": {"x": None}}}},
        state={
            "desired": {**A["desired"], "o": {"y": 2}},
            "delta": {**A["desired"], "o": {"y": 2}},
        },
        version=2,
    ),
    Row(
        "nulls emptying an object remove it (contract 4.2 Choice)",
        [SET_A],
        {"state": {"desired": {"o": {"x": None, "y": None}, "a": None}}},
        state={"desired": {"arr": [1, 2, 3]}, "delta": {"arr": [1, 2, 3]}},
        version=2,
    ),
    Row(
        "a null for a key never set stores nothing",
        [SET_A],
        {"state": {"desired": {"nothing": None, "o": {"nothing": None}}}},
        state={**A, "delta": A["desired"]},
        version=2,
    ),
    Row(
        "an array is replaced whole, never merged",
        [SET_A],
        {"state": {"desired": {"arr": [9]}}},
        state={"desired": {**A["desired"], "arr": [9]}, "delta": {**A["desired"], "arr": [9]}},
        version=2,
    ),
    Row(
        "an array holding null is rejected (contract 4.3 Choice: Invalid JSON)",
        [SET_A],
        {"state": {"desired": {"arr": [None, "RED"]}}},
        400,
        "Invalid JSON",
        state={**A, "delta": A["desired"]},
        version=1,
    ),
    Row(
        'empty desired ("state": {"desired": {}}) is accepted and changes no value',
        [SET_A],
        {"state": {"desired": {}}},
        state={**A, "delta": A["desired"]},
        version=2,
    ),
    Row(
        'an empty state ("state": {}) is accepted and counts a version',
        [SET_A],
        {"state": {}},
        state={**A, "delta": A["desired"]},
        version=2,
    ),
    Row(
        "an empty desired object creates a shadow with no state (contract 4.9)",
        [],
        {"state": {"desired": {}}},
        state={},
        version=1,
    ),
    Row(
        "state that is not an object is 400 State node must be an object",
        [SET_A],
        {"state": ["desired"]},
        400,
        "State node must be an object",
        state={**A, "delta": A["desired"]},
        version=1,
    ),
    Row(
        "state as a string is 400 State node must be an object",
        [],
        {"state": "on"},
        400,
        "State node must be an object",
    ),
    Row(
        "desired that is not an object is 400 Desired node must be an object",
        [SET_A],
        {"state": {"desired": [1]}},
        400,
        "Desired node must be an object",
        state={**A, "delta": A["desired"]},
        version=1,
    ),
    Row(
        "reported that is not an object is 400 Reported node must be an object",
        [SET_A],
        {"state": {"reported": 5}},
        400,
        "Reported node must be an object",
        state={**A, "delta": A["desired"]},
        version=1,
    ),
    Row(
        "another key in state (delta included) is 400 naming it",
        [SET_A],
        {"state": {"reported": {"a": 1}, "delta": {"a": 1}}},
        400,
        "State contains an invalid node: 'delta'",
        state={**A, "delta": A["desired"]},
        version=1,
    ),
    Row(
        "other top-level fields are ignored and never stored",
        [],
        {"state": {"reported": {"a": 1}}, "metadata": {"x": 1}, "timestamp": 5, "extra": [1]},
        state={"reported": {"a": 1}},
        version=1,
    ),
    Row(
        "a version that is not an integer is 400 Invalid version",
        [SET_A],
        {"state": {"reported": {"a": 1}}, "version": "1"},
        400,
        "Invalid version",
        state={**A, "delta": A["desired"]},
        version=1,
    ),
    Row(
        "a negative version is 400 Invalid version",
        [SET_A],
        {"state": {"reported": {"a": 1}}, "version": -1},
        400,
        "Invalid version",
        state={**A, "delta": A["desired"]},
        version=1,
    ),
    Row(
        "a client token over 64 bytes is 400 Invalid clientToken",
        [SET_A],
        {"state": {"reported": {"a": 1}}, "clientToken": "t" * 65},
        400,
        "Invalid clientToken",
        state={**A, "delta": A["desired"]},
        version=1,
    ),
    Row(
        "a client token of 64 bytes is accepted",
        [],
        {"state": {"reported": {"a": 1}}, "clientToken": "t" * 64},
        state={"reported": {"a": 1}},
        version=1,
    ),
    Row(
        "a client token that is not a string is 400 Invalid clientToken",
        [],
        {"state": {"reported": {"a": 1}}, "clientToken": 5},
        400,
        "Invalid clientToken",
    ),
    Row(
        "a null client token is 400 Invalid clientToken, not a token left out",
        [SET_A],
        {"state": {"reported": {"a": 1}}, "clientToken": None},
        400,
        "Invalid clientToken",
        state={**A, "delta": A["desired"]},
        version=1,
    ),
    Row(
        "a null version is 400 Invalid version, not an unconditional update",
        [SET_A],
        {"state": {"reported": {"a": 1}}, "version": None},
        400,
        "Invalid version",
        state={**A, "delta": A["desired"]},
        version=1,
    ),
    Row(
        "nesting past 6 levels is 400",
        [],
        {"state": {"desired": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}},
        400,
        "JSON contains too many levels of nesting; maximum is 6",
    ),
    Row(
        "6 levels pass",
        [],
        {"state": {"reported": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}},
        state={"reported": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}},
        version=1,
    ),
    Row(
        "desired plus reported over 8 KB is 413 and nothing is stored",
        [SET_A],
        {"state": {"reported": {"big": "x" * 8200}}},
        413,
        "The payload exceeds the maximum size allowed",
        state={**A, "delta": A["desired"]},
        version=1,
    ),
    # The delta: desired keys whose value differs from reported, on their path from the root.
    Row(
        "delta holds only the desired leaves reported does not match, on their path",
        [{"state": {"desired": {"l": {"c": {"r": 255, "g": 255, "b": 255}}}}}],
        {"state": {"reported": {"l": {"c": {"r": 255, "g": 0, "b": 255}}, "only": 1}}},
        state={
            "desired": {"l": {"c": {"r": 255, "g": 255, "b": 255}}},
            "reported": {"l": {"c": {"r": 255, "g": 0, "b": 255}}, "only": 1},
            "delta": {"l": {"c": {"g": 255}}},
        },
        version=2,
    ),
    Row(
        "an array differing in one element is in the delta whole",
        [{"state": {"desired": {"arr": [1, 2, 3]}}}],
        {"state": {"reported": {"arr": [1, 2, 4]}}},
        state={
            "desired": {"arr": [1, 2, 3]},
            "reported": {"arr": [1, 2, 4]},
            "delta": {"arr": [1, 2, 3]},
        },
        version=2,
    ),
    Row(
        "an array in another order differs",
        [{"state": {"desired": {"arr": [1, 2]}}}],
        {"state": {"reported": {"arr": [2, 1]}}},
        state={"desired": {"arr": [1, 2]}, "reported": {"arr": [2, 1]}, "delta": {"arr": [1, 2]}},
        version=2,
    ),
    Row(
        "numbers compare by value: 1 matches 1.0 (contract 4.4 Choice)",
        [{"state": {"desired": {"n": 1, "arr": [1, 2]}}}],
        {"state": {"reported": {"n": 1.0, "arr": [1.0, 2.0]}}},
        state={"desired": {"n": 1, "arr": [1, 2]}, "reported": {"n": 1.0, "arr": [1.0, 2.0]}},
        version=2,
    ),
    Row(
        'a string never matches a number: 1 against "1"',
        [{"state": {"desired": {"n": 1}}}],
        {"state": {"reported": {"n": "1"}}},
        state={"desired": {"n": 1}, "reported": {"n": "1"}, "delta": {"n": 1}},
        version=2,
    ),
    Row(
        "a boolean never matches a number: true against 1",
        [{"state": {"desired": {"on": True}}}],
        {"state": {"reported": {"on": 1}}},
        state={"desired": {"on": True}, "reported": {"on": 1}, "delta": {"on": True}},
        version=2,
    ),
    Row(
        "an object against a scalar differs whole",
        [{"state": {"desired": {"o": {"x": 1}}}}],
        {"state": {"reported": {"o": 1}}},
        state={"desired": {"o": {"x": 1}}, "reported": {"o": 1}, "delta": {"o": {"x": 1}}},
        version=2,
    ),
    Row(
        "a key deleted from reported but still desired is in the delta again",
        [{"state": {"desired": {"m": "safe"}, "reported": {"m": "safe"}}}],
        {"state": {"reported": {"m": None}}},
        state={"desired": {"m": "safe"}, "delta": {"m": "safe"}},
        version=2,
    ),
    Row(
        "reported keys that desired lacks never appear in the delta",
        [{"state": {"desired": {"o": {"x": 1}}}}],
        {"state": {"reported": {"o": {"x": 1, "extra": 2}, "r": 3}}},
        state={"desired": {"o": {"x": 1}}, "reported": {"o": {"x": 1, "extra": 2}, "r": 3}},
        version=2,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_update_rows(row: Row, face: Backend, shadow: str | None, clock: ManualClock) -> None:
    thing = face.new_thing()
    for setup in row.setup:
        assert face.update(thing, setup, shadow).code == 200
    out = face.update(thing, row.request, shadow)
    if row.code != 200:
        expect_error(out, face, row.code, row.message)
    else:
        assert out.code == 200, out
        sent = row.request["state"]
        assert out.doc["state"] == sent, "update/accepted echoes the request's state as sent"
        assert out.doc["version"] == row.version
        assert out.doc["timestamp"] == int(clock.now())
    got = face.get(thing, shadow)
    if row.state is None:
        assert got.code == 404, got
        return
    assert got.code == 200, got
    assert got.doc["state"] == row.state
    assert got.doc["version"] == row.version
    assert isinstance(got.doc["timestamp"], int)
    sections = {s: v for s, v in row.state.items() if s != "delta"}
    assert got.doc["metadata"] == {s: stamped(v, int(clock.now())) for s, v in sections.items()}


def test_metadata_keeps_each_leafs_own_time_and_times_array_elements(
    face: Backend, shadow: str | None, clock: ManualClock
) -> None:
    """Every leaf written gets its time; leaves left alone keep theirs; an array has one
    timestamp per element (objects in it: per leaf), and is re-timed whole when replaced."""
    thing = face.new_thing()
    t1 = int(clock.now())
    face.update(
        thing, {"state": {"desired": {"a": 1, "rgb": [1, {"g": 2}], "o": {"x": 1}}}}, shadow
    )
    clock.advance(7)
    t2 = int(clock.now())
    out = face.update(thing, {"state": {"desired": {"o": {"y": 2}, "rgb": [3]}}}, shadow)
    assert out.doc["metadata"] == {
        "desired": {"o": {"y": {"timestamp": t2}}, "rgb": [{"timestamp": t2}]}
    }
    got = face.get(thing, shadow).doc
    assert got["metadata"] == {
        "desired": {
            "a": {"timestamp": t1},
            "rgb": [{"timestamp": t2}],
            "o": {"x": {"timestamp": t1}, "y": {"timestamp": t2}},
        }
    }
    assert got["timestamp"] == t2


# --- get and delete -----------------------------------------------------------------------


def test_get_and_delete_of_a_shadow_that_never_existed_are_404(
    face: Backend, shadow: str | None
) -> None:
    thing = face.new_thing()
    name = shadow or thing
    for out in (face.get(thing, shadow), face.delete(thing, shadow)):
        expect_error(out, face, 404, f"No shadow exists with name: '{name}'")


def test_delete_returns_the_last_version_then_get_and_delete_are_404_and_the_version_continues(
    face: Backend, shadow: str | None, clock: ManualClock
) -> None:
    thing = face.new_thing()
    name = shadow or thing
    for i in range(3):
        face.update(thing, {"state": {"reported": {"n": i}}}, shadow)
    out = face.delete(thing, shadow)
    assert out.code == 200
    assert out.doc["version"] == 3, "delete answers the deleted document's version"
    assert out.doc["timestamp"] == int(clock.now())
    assert "state" not in out.doc
    expect_error(face.get(thing, shadow), face, 404, f"No shadow exists with name: '{name}'")
    expect_error(face.delete(thing, shadow), face, 404, f"No shadow exists with name: '{name}'")
    expect_error(
        face.update(thing, {"state": {"reported": {"n": 9}}, "version": 1}, shadow),
        face,
        409,
        "Version conflict",
    )
    again = face.update(thing, {"state": {"reported": {"n": 9}}, "version": 3}, shadow)
    assert again.code == 200 and again.doc["version"] == 4, "re-created within 48 h: continues"
    got = face.get(thing, shadow).doc
    assert got["state"] == {"reported": {"n": 9}} and got["version"] == 4


def test_a_shadow_recreated_after_48_hours_counts_from_1(
    face: Backend, shadow: str | None, clock: ManualClock
) -> None:
    thing = face.new_thing()
    face.update(thing, {"state": {"reported": {"n": 1}}}, shadow)
    face.update(thing, {"state": {"reported": {"n": 2}}}, shadow)
    assert face.delete(thing, shadow).doc["version"] == 2
    clock.advance(48 * 3600 + 1)
    out = face.update(thing, {"state": {"reported": {"n": 3}}}, shadow)
    assert out.code == 200 and out.doc["version"] == 1


def test_classic_and_named_shadows_of_one_thing_are_separate_documents(face: Backend) -> None:
    thing = face.new_thing()
    face.update(thing, {"state": {"desired": {"a": 1}}})
    face.update(thing, {"state": {"desired": {"b": 2}}}, "cfg")
    face.update(thing, {"state": {"desired": {"b": 3}}}, "cfg")
    assert face.get(thing).doc["state"]["desired"] == {"a": 1}
    assert face.get(thing).doc["version"] == 1
    assert face.get(thing, "cfg").doc["version"] == 2
    face.delete(thing, "cfg")
    assert face.get(thing).code == 200
    assert face.get(thing, "cfg").code == 404


# --- /update/delta and /update/documents ---------------------------------------------------


class Observer:
    """An MQTT client that keeps every ``/update/delta`` and ``/update/documents`` message."""

    FILTERS = (
        "$aws/things/+/shadow/update/delta",
        "$aws/things/+/shadow/update/documents",
        "$aws/things/+/shadow/name/+/update/delta",
        "$aws/things/+/shadow/name/+/update/documents",
    )

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.messages: list[tuple[str, Doc]] = []
        self._arrived = threading.Condition()
        subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_a: subscribed.set()
        self._client.on_connect = lambda c, *_a: c.subscribe([(f, 1) for f in self.FILTERS])
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._arrived:
            self.messages.append((message.topic, json.loads(message.payload)))
            self._arrived.notify_all()

    def wait_for(self, topic: str, count: int = 1) -> list[Doc]:
        def found() -> list[Doc]:
            return [doc for t, doc in self.messages if t == topic]

        with self._arrived:
            assert self._arrived.wait_for(lambda: len(found()) >= count, 10), topic
            return found()

    def seen(self, topic: str) -> list[Doc]:
        with self._arrived:
            return [doc for t, doc in self.messages if t == topic]

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@pytest.fixture(scope="module")
def observer(
    broker: EmbeddedBroker, local_service: tuple[ShadowService, ManualClock]
) -> Iterator[Observer]:
    watching = Observer(broker)
    yield watching
    watching.close()


def topic_of(thing: str, shadow: str | None, suffix: str) -> str:
    prefix = f"$aws/things/{thing}/shadow" + (f"/name/{shadow}" if shadow else "")
    return f"{prefix}/{suffix}"


def test_delta_message_carries_the_whole_delta_its_desired_times_version_and_token(
    face: Backend, shadow: str | None, clock: ManualClock, observer: Observer
) -> None:
    thing = face.new_thing()
    t1 = int(clock.now())
    first = {"state": {"desired": {"m": "safe", "o": {"x": 1, "y": 2}}}, "clientToken": "tok-1"}
    face.update(thing, first, shadow)
    clock.advance(5)
    t2 = int(clock.now())
    out = face.update(
        thing, {"state": {"reported": {"o": {"x": 1, "y": 0}}}, "clientToken": "tok-2"}, shadow
    )
    assert out.code == 200
    deltas = observer.wait_for(topic_of(thing, shadow, "update/delta"), 2)
    assert deltas[-1] == {
        "state": {"m": "safe", "o": {"y": 2}},
        "metadata": {"m": {"timestamp": t1}, "o": {"y": {"timestamp": t1}}},
        "version": 2,
        "timestamp": t2,
        "clientToken": "tok-2",
    }
    assert deltas[0]["clientToken"] == "tok-1" and deltas[0]["version"] == 1


def test_no_delta_message_once_reported_meets_desired(
    face: Backend, shadow: str | None, observer: Observer
) -> None:
    thing = face.new_thing()
    face.update(thing, {"state": {"desired": {"m": "safe"}}}, shadow)
    face.update(thing, {"state": {"reported": {"m": "safe"}}}, shadow)
    face.update(thing, {"state": {"reported": {"other": 1}}}, shadow)
    documents = observer.wait_for(topic_of(thing, shadow, "update/documents"), 3)
    assert [d["current"]["version"] for d in documents] == [1, 2, 3]
    assert len(observer.seen(topic_of(thing, shadow, "update/delta"))) == 1


def test_documents_message_carries_previous_current_timestamp_and_token(
    face: Backend, shadow: str | None, clock: ManualClock, observer: Observer
) -> None:
    thing = face.new_thing()
    t1 = int(clock.now())
    face.update(thing, {"state": {"desired": {"c": "red"}}, "clientToken": "tok-1"}, shadow)
    clock.advance(3)
    t2 = int(clock.now())
    face.update(thing, {"state": {"reported": {"c": "red"}}, "clientToken": "tok-2"}, shadow)
    first, second = observer.wait_for(topic_of(thing, shadow, "update/documents"), 2)
    assert first == {
        "previous": None,
        "current": {
            "state": {"desired": {"c": "red"}},
            "metadata": {"desired": {"c": {"timestamp": t1}}},
            "version": 1,
        },
        "timestamp": t1,
        "clientToken": "tok-1",
    }
    assert second == {
        "previous": first["current"],
        "current": {
            "state": {"desired": {"c": "red"}, "reported": {"c": "red"}},
            "metadata": {
                "desired": {"c": {"timestamp": t1}},
                "reported": {"c": {"timestamp": t2}},
            },
            "version": 2,
        },
        "timestamp": t2,
        "clientToken": "tok-2",
    }


def test_a_rejected_update_publishes_neither_delta_nor_documents(
    face: Backend, shadow: str | None, observer: Observer
) -> None:
    thing = face.new_thing()
    face.update(thing, {"state": {"desired": {"m": "safe"}}}, shadow)
    observer.wait_for(topic_of(thing, shadow, "update/documents"))
    assert face.update(thing, {"state": {"desired": {"m": "x"}}, "version": 9}, shadow).code == 409
    assert face.update(thing, {"state": 5}, shadow).code == 400
    face.update(thing, {"state": {"desired": {"m": "stop"}}}, shadow)  # a marker after them
    documents = observer.wait_for(topic_of(thing, shadow, "update/documents"), 2)
    assert [d["current"]["version"] for d in documents] == [1, 2]
    assert [d["version"] for d in observer.seen(topic_of(thing, shadow, "update/delta"))] == [1, 2]


def test_state_null_is_echoed_as_sent_and_timed_as_one_deleted_leaf(
    face: Backend, shadow: str | None, clock: ManualClock
) -> None:
    """IoT Core answers UpdateThingShadow ``{"state": null}`` with
    ``{"state":null,"metadata":{"timestamp":T},"version":18,"timestamp":T}`` (a real
    response quoted in getmoto/moto#9237): the null is timed where it was sent, as a null
    leaf is (contract 3.2 Choice), not once per section."""
    thing = face.new_thing()
    face.update(thing, {"state": {"desired": {"a": 1}, "reported": {"b": 2}}}, shadow)
    clock.advance(2)
    now = int(clock.now())
    out = face.update(thing, {"state": None}, shadow)
    assert out.code == 200
    assert out.doc["state"] is None
    assert out.doc["metadata"] == {"timestamp": now}
    assert out.doc["version"] == 2 and out.doc["timestamp"] == now
