"""A rule whose output is only the message's envelope hands the message to the batcher
directly; what the batcher, the quarantine and errorAction see must not change."""

from __future__ import annotations

import json

import pytest

from cloud.adapters.local import InMemoryObjectStore
from cloud.batcher import Batcher, BatcherConfig
from cloud.rules.actions import forwards_to_batcher
from cloud.rules.definitions import rules_from_document
from cloud.rules.runner import RulesRunner, load_rules
from edge import wire
from edge.clock import ManualClock

T0 = 1_700_000_000
TOPIC = "dt/plantwatch/s1/pump-1/telemetry"
ENVELOPE = (
    "SELECT encode(*, 'base64') AS payload, topic() AS topic, clientid() AS clientid, "
    "timestamp() AS received_ms FROM 'dt/plantwatch/+/+/telemetry'"
)
KINESIS = {"kinesis": {"streamName": "s", "partitionKey": "${topic(4)}"}}
ERRORS = {"s3": {"bucketName": "e", "key": "errors/${topic(4)}/${timestamp()}"}}


def doc(sql: str, actions: list[dict] | None = None) -> dict:
    payload = {
        "sql": sql,
        "awsIotSqlVersion": "2016-03-23",
        "actions": actions or [KINESIS],
        "errorAction": ERRORS,
    }
    return {"rules": [{"ruleName": "telemetry", "topicRulePayload": payload}]}


def payload(seq: int, value: float = 1.5) -> bytes:
    sample = {"ts": T0 * 1000, "values": {"flow": value, "temp": None}}
    message = {"site": "s1", "asset": "pump-1", "sender": "edge", "seq": seq, "samples": [sample]}
    return json.dumps({"v": wire.SCHEMA_VERSION, **message}).encode()


def test_the_project_rule_forwards() -> None:
    assert [forwards_to_batcher(rule) for rule in load_rules()] == [True]


@pytest.mark.parametrize(
    "sql",
    [
        ENVELOPE + " WHERE true",
        ENVELOPE.replace("clientid() AS clientid", "'x' AS clientid"),
        ENVELOPE.replace("encode(*, 'base64')", "encode(*, 'base32')"),
        ENVELOPE.replace("topic() AS topic", "topic(3) AS topic"),
        ENVELOPE.replace("timestamp() AS received_ms", "temp AS t"),
        "SELECT * FROM 'dt/plantwatch/+/+/telemetry'",
    ],
)
def test_rules_that_compute_something_are_evaluated(sql: str) -> None:
    (rule,) = rules_from_document(doc(sql))
    assert not forwards_to_batcher(rule)


def test_a_second_action_is_evaluated() -> None:
    (rule,) = rules_from_document(doc(ENVELOPE, [KINESIS, {"s3": {"key": "k"}}]))
    assert not forwards_to_batcher(rule)


class FailingBatcher(Batcher):
    def accept(self, topic: str, payload: bytes, *, client_id: str = "n/a") -> None:
        if payload.startswith(b"!"):
            raise OSError("stream gone")
        super().accept(topic, payload, client_id=client_id)


def run(sql: str) -> tuple[dict, InMemoryObjectStore, RulesRunner]:
    store = InMemoryObjectStore()
    clock = ManualClock(T0)
    batcher = FailingBatcher(store, BatcherConfig(), clock)
    runner = RulesRunner("mqtt://127.0.0.1:1", rules_from_document(doc(sql)), batcher, clock)
    runner.handle(TOPIC, payload(1), client_id="c1")
    runner.handle(TOPIC, payload(1), client_id="c1")  # a redelivery
    runner.handle(TOPIC, payload(2, value=1e16))  # quarantined
    runner.handle("dt/plantwatch/s1/pump-2/telemetry", payload(3))  # topic mismatch
    runner.handle(TOPIC, b"!" + payload(4), client_id="c4")  # the action fails
    batcher.flush_all()
    return batcher.stats, store, runner


def test_forwarding_keeps_counts_quarantine_files_and_error_reports() -> None:
    forwarded = run(ENVELOPE)
    evaluated = run(ENVELOPE + " WHERE true")
    assert forwarded[2]._compiled[0][2] and not evaluated[2]._compiled[0][2]
    assert forwarded[0] == evaluated[0]
    assert forwarded[0]["duplicates"] == 1
    assert forwarded[0]["quarantined_by_reason"] == {"out_of_range": 1, "topic_mismatch": 1}
    assert forwarded[2].actions.errors == evaluated[2].actions.errors == 1
    (files, _), (others, _) = ((sorted(s.list("")), s) for s in (forwarded[1], evaluated[1]))
    assert [k for k in files if not k.startswith("quarantine/")] == [
        k for k in others if not k.startswith("quarantine/")
    ]
    key = f"errors/pump-1/{T0 * 1000}"
    reports = [json.loads(s.get(key)) for s in (forwarded[1], evaluated[1])]
    for report in reports:
        del report["cloudwatchTraceId"]  # a fresh uuid per message
    assert reports[0] == reports[1]
    assert reports[0]["clientId"] == "c4"
    assert reports[0]["failures"][0]["failedAction"] == "KinesisAction"
    assert "stream gone" in reports[0]["failures"][0]["errorMessage"]
