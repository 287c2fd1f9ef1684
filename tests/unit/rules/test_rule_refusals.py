"""An action the service refuses for good (``RefusedError``: the store refuses the key)
is a failed action, as on AWS: the rule's errorAction gets the report and the message is
acknowledged. Retried, it would fail the same way forever and hold up every message of
its batch. When the errorAction is refused too, or the rule has none, the message is
quarantined as ``rule_failed`` and acknowledged. A transient storage failure still leaves
the batch unacknowledged, to be redelivered."""

from __future__ import annotations

import base64
import json
import re
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.adapters.local import FsObjectStore, InMemoryObjectStore
from cloud.batcher import Batcher, BatcherConfig
from cloud.rules.definitions import rules_from_document
from cloud.rules.runner import RulesRunner
from edge.clock import ManualClock
from edge.errors import RefusedError, StorageError
from tests.rules_runner import offline_runner, topic_rule

T0 = 1_700_000_000
TOPIC = "dt/plantwatch/s1/dev7/telemetry"
ERRORS = {"s3": {"bucketName": "b", "key": "errors/${topic(4)}/${timestamp()}-${newuuid()}"}}


def doc(actions: list[dict], error_action: dict | None = ERRORS) -> dict:
    return topic_rule("raw", "SELECT * FROM 'dt/plantwatch/+/+/telemetry'", actions, error_action)


class Refusing(InMemoryObjectStore):
    """Refuses keys under ``no/`` for good, and fails keys under ``down/`` for now."""

    def put(self, key: str, body: bytes) -> None:
        if key.startswith("no/"):
            raise RefusedError(f"object key {key!r}: refused", reason="InvalidKey")
        if key.startswith("down/"):
            raise StorageError(f"{key}: disk unplugged")
        super().put(key, body)


def make(document: dict, store: InMemoryObjectStore | FsObjectStore) -> RulesRunner:
    return offline_runner(document, store, ManualClock(T0))


def msg(payload: bytes, topic: str = TOPIC) -> SimpleNamespace:
    return SimpleNamespace(topic=topic, payload=payload)


def test_a_refused_action_goes_to_the_error_action_and_the_batch_is_acknowledged() -> None:
    store = Refusing()
    runner = make(doc([{"s3": {"key": "${dest}/${n}.json"}}]), store)
    batch = [(1, msg(b'{"dest": "ok", "n": 1}')), (1, msg(b'{"dest": "no", "n": 2}'))]
    batch.append((1, msg(b'{"dest": "ok", "n": 3}')))
    assert runner.process(batch) == batch  # all acknowledged, none stalled
    assert store.get("ok/1.json") and store.get("ok/3.json")
    [key] = store.list("errors/")
    assert key.startswith("errors/dev7/")
    report = json.loads(store.get(key))
    assert base64.b64decode(report["base64OriginalPayload"]) == b'{"dest": "no", "n": 2}'
    [failure] = report["failures"]
    assert failure["failedAction"] == "S3Action"
    assert "RefusedError" in failure["errorMessage"] and "no/2.json" in failure["errorMessage"]
    assert not list(store.list("quarantine/"))
    assert runner.actions.errors == 1


@pytest.mark.parametrize(
    "error_action", [None, {"s3": {"key": "no/${topic(4)}"}}], ids=["none", "refused"]
)
def test_without_a_working_error_action_the_message_is_quarantined_as_rule_failed(
    error_action: dict | None,
) -> None:
    store = Refusing()
    runner = make(doc([{"s3": {"key": "no/${n}"}}], error_action), store)
    batch = [(1, msg(b'{"n": 1}')), (1, msg(b'{"n": 2}'))]
    assert runner.process(batch) == batch
    assert runner.counts["rule_failed"] == 2
    keys = list(store.list("quarantine/rule_failed/"))
    assert len(keys) == 2 and list(store.list()) == keys
    record = json.loads(store.get(keys[0]))
    assert "no/1" in record["error"] and "raw" in record["error"]
    if error_action is not None:
        assert "errorAction" in record["error"]
    assert json.loads(record["payload"]) == {"n": 1}


@pytest.mark.parametrize("where", ["action", "errorAction"])
def test_a_transient_storage_failure_still_leaves_the_batch_unacknowledged(where: str) -> None:
    store = Refusing()
    if where == "action":
        document = doc([{"s3": {"key": "down/${n}"}}])
    else:
        document = doc([{"s3": {"key": "no/${n}"}}], {"s3": {"key": "down/${n}"}})
    runner = make(document, store)
    assert runner.process([(1, msg(b'{"n": 1}'))]) == []
    assert runner.counts["rule_failed"] == 0
    assert not list(store.list())


def test_a_refused_forwarded_message_goes_to_the_error_action() -> None:
    """The project's telemetry rule hands the message to the batcher directly."""

    class RefusingBatcher(Batcher):
        def accept(self, topic: str, payload: bytes, *, client_id: str = "n/a") -> None:
            raise RefusedError("the batcher refuses it", reason="Test")

    sql = (
        "SELECT encode(*, 'base64') AS payload, topic() AS topic FROM 'dt/plantwatch/+/+/telemetry'"
    )
    document = doc([{"kinesis": {"streamName": "s", "partitionKey": "${topic(4)}"}}])
    document["rules"][0]["topicRulePayload"]["sql"] = sql
    store, clock = InMemoryObjectStore(), ManualClock(T0)
    runner = RulesRunner(
        "mqtt://127.0.0.1:1",
        rules_from_document(document),
        RefusingBatcher(store, BatcherConfig(), clock),
        clock,
    )
    batch = [(1, msg(b"{}"))]
    assert runner.process(batch) == batch
    [key] = store.list("errors/")
    assert "the batcher refuses it" in store.get(key).decode()


KEY_PARTS = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=0, max_size=300
) | st.sampled_from(["", ".", "..", "a/../b", "x" * 256, "é" * 128, "obj/x", "dir"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(KEY_PARTS, min_size=1, max_size=6))
def test_hostile_s3_keys_on_the_folder_store_never_stall_the_batch(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str]
) -> None:
    """Whatever key a payload makes of ``raw/${k}``, each message is stored, or reported to
    the errorAction, and every message of the batch is acknowledged."""
    store = FsObjectStore(tmp_path_factory.mktemp("bucket"), fsync=False)
    store.put("raw/obj", b"x")
    store.put("raw/dir/y", b"y")
    runner = make(doc([{"s3": {"key": "raw/${k}"}}]), store)
    batch = [(1, msg(json.dumps({"k": k, "i": i}).encode())) for i, k in enumerate(parts)]
    assert runner.process(batch) == batch
    stored = set(store.list("raw/"))
    reported = [json.loads(store.get(key)) for key in store.list("errors/")]
    payloads = {base64.b64decode(report["base64OriginalPayload"]) for report in reported}
    for _, m in batch:
        key = re.sub("/+", "/", f"raw/{json.loads(m.payload)['k']}")  # listed so
        assert key in stored or m.payload in payloads
    for report in reported:
        assert "RefusedError" in report["failures"][0]["errorMessage"]
    assert runner.counts["rule_failed"] == 0


@pytest.mark.parametrize("first", ["broken", "fine"])
def test_a_rule_that_fails_for_good_does_not_keep_the_other_rules_from_the_message(
    first: str,
) -> None:
    """IoT Core runs each matching rule on its own: one rule whose action and errorAction
    both fail does not stop another rule from acting on the same message. The failed rule
    alone is quarantined (``rule_failed``, naming it), and the message is acknowledged."""
    rules = {
        "broken": doc([{"s3": {"key": "no/${n}"}}], None)["rules"][0],
        "fine": doc([{"s3": {"key": "ok/${n}"}}])["rules"][0],
    }
    rules["broken"]["ruleName"], rules["fine"]["ruleName"] = "broken", "fine"
    order = [rules[first], rules["fine" if first == "broken" else "broken"]]
    store = Refusing()
    runner = make({"rules": order}, store)
    batch = [(1, msg(b'{"n": 1}')), (1, msg(b'{"n": 2}'))]
    assert runner.process(batch) == batch
    assert store.get("ok/1") and store.get("ok/2")
    assert runner.counts["rule_failed"] == 2
    records = [json.loads(store.get(k)) for k in store.list("quarantine/rule_failed/")]
    assert len(records) == 2
    assert all("rule broken:" in r["error"] and "fine" not in r["error"] for r in records)
