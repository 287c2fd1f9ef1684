"""Non-JSON payloads through actions (iot-core-rules-and-limits §1.7): ``SELECT *`` passes the
raw bytes to republish and s3, ``encode(*, 'base64')`` wraps them in JSON, an attribute
reference is Undefined (left out of the output; a comparison on it skips the actions)."""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryObjectStore, InMemoryPublisher
from cloud.rules.runner import RulesRunner
from edge.clock import ManualClock
from tests.rules_runner import offline_runner, topic_rule

T0 = 1_700_000_000
TOPIC = "dt/plantwatch/s1/dev7/telemetry"
NOT_JSON = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from([b"\x00", b"\xff", b"x"]),
    st.binary(max_size=200),
)


def make(
    select: str, where: str = ""
) -> tuple[RulesRunner, InMemoryPublisher, InMemoryObjectStore]:
    sql = f"SELECT {select} FROM 'dt/plantwatch/+/+/telemetry' {where}".strip()
    actions = [
        {"republish": {"topic": "out/${topic(4)}", "qos": 1}},
        {"s3": {"bucketName": "b", "key": "raw/${topic(4)}"}},
    ]
    errors = {"s3": {"bucketName": "e", "key": "errors/${topic(4)}"}}
    store, publisher = InMemoryObjectStore(), InMemoryPublisher()
    doc = topic_rule("bin", sql, actions, errors)
    return offline_runner(doc, store, ManualClock(T0), publisher=publisher), publisher, store


@settings(max_examples=60, deadline=None)
@given(payload=NOT_JSON)
def test_select_star_passes_the_raw_bytes_to_each_action(payload: bytes) -> None:
    runner, publisher, store = make("*")
    runner.handle(TOPIC, payload)
    assert publisher.published == [("out/dev7", payload, 1)]
    assert store.get("raw/dev7") == payload
    assert not list(store.list("errors/"))


@settings(max_examples=60, deadline=None)
@given(payload=NOT_JSON)
def test_encode_star_wraps_the_bytes_and_attributes_are_left_out(payload: bytes) -> None:
    runner, publisher, _ = make("encode(*, 'base64') AS data, temp, timestamp() AS ts")
    runner.handle(TOPIC, payload)
    [(_, body, _)] = publisher.published
    assert json.loads(body) == {"data": base64.b64encode(payload).decode(), "ts": T0 * 1000}


@settings(max_examples=30, deadline=None)
@given(payload=NOT_JSON)
def test_a_condition_on_an_attribute_of_a_binary_payload_skips_the_actions(
    payload: bytes,
) -> None:
    runner, publisher, store = make("*", "WHERE temp > 1 OR temp <= 1")
    runner.handle(TOPIC, payload)
    assert publisher.published == [] and list(store.list()) == []
