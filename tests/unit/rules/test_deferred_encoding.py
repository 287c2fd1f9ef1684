"""A SELECT item ``encode(..., 'base64')`` may be handed to actions as its bytes: whatever
serialises the output still writes the same text, and the kinesis action reads the bytes."""

from __future__ import annotations

import base64
import json

import pytest

from cloud.adapters.local import InMemoryObjectStore, InMemoryPublisher
from cloud.rules import Message, evaluate, parse
from cloud.rules.evaluate import Encoded, plain
from cloud.rules.runner import RulesRunner
from edge import wire
from edge.clock import ManualClock
from tests.rules_runner import offline_runner

T0 = 1652443800
TOPIC = "dt/plantwatch/s1/pump/telemetry"
PAYLOAD = wire.encode(wire.Telemetry("s1", "pump", "dev", 0, (wire.Sample(T0 * 1000, {"x": 1.5}),)))

STATEMENTS = [
    "SELECT encode(*, 'base64') AS payload, topic() AS topic, clientid() AS clientid FROM '#'",
    "SELECT VALUE encode(*, 'base64') FROM '#'",
    "SELECT encode(*, 'base64') AS p, concat(encode(*, 'base64'), '!') AS q FROM '#'",
    "SELECT encode(site, 'base64') AS s, seq FROM '#'",
    "SELECT encode(*, 'hex') AS p FROM '#'",
]


@pytest.mark.parametrize("sql", STATEMENTS)
def test_deferred_output_serialises_as_the_plain_one(sql: str) -> None:
    statement = parse(sql)
    message = Message(topic=TOPIC, payload=PAYLOAD, client_id="dev")
    deferred = evaluate(statement, message, defer_encoding=True)
    eager = evaluate(statement, message)
    assert deferred is not None and eager is not None
    assert deferred.to_bytes() == eager.to_bytes()
    assert plain(deferred.value) == eager.value


def test_only_a_select_items_own_encode_is_deferred() -> None:
    statement = parse(STATEMENTS[2])
    out = evaluate(statement, Message(topic=TOPIC, payload=PAYLOAD), defer_encoding=True)
    assert out is not None
    assert out.value["p"] == Encoded(PAYLOAD)
    assert out.value["q"] == base64.b64encode(PAYLOAD).decode() + "!"


def _runner(doc: dict, store: InMemoryObjectStore, publisher: InMemoryPublisher) -> RulesRunner:
    return offline_runner(doc, store, ManualClock(T0), publisher=publisher)


def test_kinesis_takes_the_bytes_and_republish_the_text() -> None:
    sql = STATEMENTS[0]
    doc = {
        "rules": [
            {
                "ruleName": "ingest",
                "topicRulePayload": {
                    "sql": sql,
                    "awsIotSqlVersion": "2016-03-23",
                    "actions": [
                        {"kinesis": {"streamName": "telemetry"}},
                        {"republish": {"topic": "copy"}},
                    ],
                },
            }
        ]
    }
    store, publisher = InMemoryObjectStore(), InMemoryPublisher()
    runner = _runner(doc, store, publisher)
    runner.handle(TOPIC, PAYLOAD, client_id="dev")
    assert runner.batcher.stats["accepted"] == 1
    [(_topic, body, _qos)] = publisher.published
    assert json.loads(body) == {
        "payload": base64.b64encode(PAYLOAD).decode(),
        "topic": TOPIC,
        "clientid": "dev",
    }
    runner.batcher.flush_all()
    [key] = list(store.list("input/"))
    assert store.get(key).decode().splitlines() == ["Timestamp,x", "2022-05-13T12:10:00.000000,1.5"]
