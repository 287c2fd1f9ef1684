"""A kinesis action's partition key is at most 256 characters (Kinesis ``PutRecord``;
iot-core-rules-and-limits §3): a ``partitionKey`` template that makes a longer one fails the
action, whose errorAction gets the report, on the forwarding path as on the evaluated one.
(An empty one, from Undefined parts: AWS does not say whether it fails or gets a random
key; locally the record goes on, as before.)"""

from __future__ import annotations

import json

import pytest

from cloud.adapters.local import InMemoryObjectStore
from cloud.rules.actions import forwards_to_batcher
from cloud.rules.runner import RulesRunner
from edge import wire
from edge.clock import ManualClock
from tests.rules_runner import offline_runner, topic_rule

T0 = 1_700_000_000
TOPIC = "dt/plantwatch/s1/pump-1/telemetry"
ENVELOPE = (
    "SELECT encode(*, 'base64') AS payload, topic() AS topic, clientid() AS clientid "
    "FROM 'dt/plantwatch/+/+/telemetry'"
)
STAR = "SELECT * FROM 'dt/plantwatch/+/+/telemetry'"
PAYLOAD = json.dumps(
    {
        "v": wire.SCHEMA_VERSION,
        "site": "s1",
        "asset": "pump-1",
        "sender": "edge",
        "seq": 1,
        "samples": [{"ts": T0 * 1000, "values": {"flow": 1.5}}],
    }
).encode()


def make(sql: str, key: str) -> tuple[RulesRunner, InMemoryObjectStore]:
    actions = [{"kinesis": {"streamName": "s", "partitionKey": key}}]
    errors = {"s3": {"bucketName": "e", "key": "errors/${newuuid()}"}}
    store = InMemoryObjectStore()
    doc = topic_rule("telemetry", sql, actions, errors)
    return offline_runner(doc, store, ManualClock(T0)), store


def failures(store: InMemoryObjectStore) -> list[dict]:
    return [f for k in store.list("errors/") for f in json.loads(store.get(k))["failures"]]


@pytest.mark.parametrize("sql", [ENVELOPE, STAR], ids=["forwarded", "evaluated"])
@pytest.mark.parametrize(
    ("key", "topic"),
    [
        ("x" * 253 + "${sender}", TOPIC),
        ("${topic(4)}", "dt/plantwatch/s1/" + "a" * 257 + "/telemetry"),
        ("${topic()}", "dt/plantwatch/" + "é" * 240 + "/pump-1/telemetry"),
    ],
    ids=["payload", "topic-level", "whole-topic"],
)
def test_a_partition_key_over_256_characters_fails_the_action(
    sql: str, key: str, topic: str
) -> None:
    """Kinesis refuses it; a local broker may deliver a topic longer than IoT Core's 256
    bytes, so even a key of topic levels can be one."""
    runner, store = make(sql, key)
    assert forwards_to_batcher(runner.rules[0]) == (sql == ENVELOPE)
    runner.handle(topic, PAYLOAD)
    [failure] = failures(store)
    assert failure["failedAction"] == "KinesisAction"
    assert (
        "partition key" in failure["errorMessage"]
        and "Kinesis takes at most 256" in (failure["errorMessage"])
    )
    runner.batcher.flush_all()
    assert not list(store.list("input/"))


@pytest.mark.parametrize("sql", [ENVELOPE, STAR], ids=["forwarded", "evaluated"])
@pytest.mark.parametrize("key", ["${topic(4)}", "x" * 252 + "${sender}", "${seq}"])
def test_a_partition_key_of_1_to_256_characters_is_taken(sql: str, key: str) -> None:
    runner, store = make(sql, key)
    runner.handle(TOPIC, PAYLOAD)
    assert failures(store) == []
    runner.batcher.flush_all()
    assert list(store.list("input/"))
