"""A message whose rules raise is quarantined with its reason and acknowledged: left
unacknowledged it would come back after every reconnect and fail the same way, forever.
A storage failure is different: the batch stays unacknowledged, to be redelivered."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from cloud.adapters.local import InMemoryObjectStore
from cloud.batcher import Batcher
from cloud.rules.runner import RulesRunner
from edge import wire
from edge.clock import ManualClock
from edge.errors import PlantwatchError
from tests.rules_runner import offline_runner, topic_rule

T0 = 1_700_000_000
TOPIC = "dt/plantwatch/s1/pump-1/telemetry"


ENVELOPE = (
    "SELECT encode(*, 'base64') AS payload, topic() AS topic FROM 'dt/plantwatch/+/+/telemetry'"
)
SQL = [ENVELOPE, ENVELOPE + " WHERE true"]
"""The project's rule (handed to the batcher directly) and one the evaluator runs."""


def rules(sql: str) -> dict:
    return topic_rule("t", sql, [{"kinesis": {"streamName": "s", "partitionKey": "${topic(4)}"}}])


def message(seq: int) -> SimpleNamespace:
    sample = {"ts": T0 * 1000, "values": {"flow": 1.5}}
    doc = {"v": wire.SCHEMA_VERSION, "site": "s1", "asset": "pump-1", "sender": "e", "seq": seq}
    body = json.dumps({**doc, "samples": [sample]}).encode()
    return SimpleNamespace(topic=TOPIC, payload=body)


class Broken(Batcher):
    """Raises what a bug in the rules path would, on the message with seq 2."""

    def accept(self, topic: str, payload: bytes, *, client_id: str = "n/a") -> None:
        if b'"seq": 2' in payload:
            raise KeyError("a bug")
        super().accept(topic, payload, client_id=client_id)


def runner(
    sql: str, batcher_type: type[Batcher] = Broken
) -> tuple[RulesRunner, InMemoryObjectStore]:
    store = InMemoryObjectStore()
    return offline_runner(rules(sql), store, ManualClock(T0), batcher_type=batcher_type), store


@pytest.mark.parametrize("sql", SQL)
def test_a_message_whose_rules_raise_is_quarantined_and_acknowledged(sql: str) -> None:
    rules_runner, store = runner(sql)
    batch = [(1, message(1)), (1, message(2)), (1, message(3))]
    assert rules_runner.process(batch) == batch
    assert rules_runner.counts["rule_failed"] == 1
    (key,) = [k for k in store.list("quarantine/")]
    assert key.startswith("quarantine/rule_failed/")
    kept = json.loads(store.get(key))
    assert "KeyError" in kept["error"]
    assert '"seq": 2' in kept["payload"]
    assert rules_runner.batcher.stats["accepted"] == 2


class Full(Batcher):
    def accept(self, topic: str, payload: bytes, *, client_id: str = "n/a") -> None:
        raise PlantwatchError("disk full")


@pytest.mark.parametrize("sql", SQL)
def test_a_storage_failure_leaves_the_batch_unacknowledged(sql: str) -> None:
    rules_runner, store = runner(sql, Full)
    with pytest.raises(PlantwatchError):
        rules_runner.handle(TOPIC, message(1).payload)
    assert rules_runner.process([(1, message(1))]) == []
    assert rules_runner.counts["rule_failed"] == 0
    assert not list(store.list("quarantine/"))
