"""Rule actions locally: republish, s3 with substitution templates, errorAction on failure."""

from __future__ import annotations

import base64
import json

import pytest

from cloud.adapters.local import InMemoryObjectStore, InMemoryPublisher
from cloud.batcher import Batcher, BatcherConfig
from cloud.rules.definitions import rules_from_document
from cloud.rules.runner import RulesRunner
from edge.clock import ManualClock
from edge.errors import ConfigError
from tests.rules_runner import offline_runner, topic_rule

T0 = 1652443800


def rule(actions: list[dict], error_action: dict | None = None, sql: str | None = None) -> dict:
    sql = (
        sql
        or "SELECT topic(4) AS thing, moisture FROM 'dt/plantwatch/+/+/telemetry' WHERE moisture < 20"
    )
    return topic_rule("dry", sql, actions, error_action or None)


def runner(
    doc: dict, store: InMemoryObjectStore, publisher: InMemoryPublisher | None = None
) -> RulesRunner:
    return offline_runner(doc, store, ManualClock(T0), publisher=publisher)


def test_republish_and_s3_actions_use_templates_on_the_original_message() -> None:
    store, publisher = InMemoryObjectStore(), InMemoryPublisher()
    doc = rule(
        [
            {"republish": {"topic": "alerts/${topic(3)}/${thing}", "qos": 1}},
            {"s3": {"bucketName": "b", "key": "raw/${topic(4)}/${moisture}.json"}},
        ]
    )
    r = runner(doc, store, publisher)
    r.handle("dt/plantwatch/s1/dev7/telemetry", b'{"moisture": 12, "thing": "x"}')
    r.handle("dt/plantwatch/s1/dev7/telemetry", b'{"moisture": 30}')
    # ${thing} reads the original payload, not the SELECT alias
    assert publisher.published == [("alerts/s1/x", b'{"thing":"dev7","moisture":12}', 1)]
    assert store.get("raw/dev7/12.json") == b'{"thing":"dev7","moisture":12}'


def test_failed_action_goes_to_the_error_action_with_the_original_payload() -> None:
    class Broken(InMemoryPublisher):
        def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
            raise OSError("broker gone")

    store = InMemoryObjectStore()
    doc = rule(
        [{"republish": {"topic": "alerts/x"}}],
        {"s3": {"bucketName": "errors", "key": "errors/${topic(4)}/${timestamp()}"}},
    )
    r = runner(doc, store, Broken())
    r.handle("dt/plantwatch/s1/dev7/telemetry", b'{"moisture": 1}')
    (key,) = store.list("errors/")
    assert key == f"errors/dev7/{T0 * 1000}"
    report = json.loads(store.get(key))
    assert report["ruleName"] == "dry"
    assert base64.b64decode(report["base64OriginalPayload"]) == b'{"moisture": 1}'
    assert report["failures"][0]["failedAction"] == "RepublishAction"
    assert "broker gone" in report["failures"][0]["errorMessage"]


def test_republish_rule_without_a_publisher_is_refused() -> None:
    with pytest.raises(ConfigError, match="republisher"):
        runner(rule([{"republish": {"topic": "a"}}]), InMemoryObjectStore())


def test_disabled_rules_do_not_run() -> None:
    doc = rule([{"s3": {"key": "k"}}])
    doc["rules"][0]["topicRulePayload"]["ruleDisabled"] = True
    store = InMemoryObjectStore()
    runner(doc, store).handle("dt/plantwatch/s1/dev7/telemetry", b'{"moisture": 1}')
    assert list(store.list()) == []


def test_a_republish_error_action_without_a_publisher_is_refused_at_start() -> None:
    """Found at the first failure otherwise: every failed message quarantined with
    'no publisher configured' instead of its report reaching the errorAction."""
    doc = rule([{"s3": {"key": "k"}}], {"republish": {"topic": "errors/${topic(4)}"}})
    with pytest.raises(ConfigError, match=r"errorAction: pass a republisher"):
        runner(doc, InMemoryObjectStore())


@pytest.mark.parametrize(
    ("client_id", "message"),
    [
        ("$rules", r"client id '\$rules' starts with '\$'"),
        ("r" * 129, "client id of 129 bytes; IoT Core takes at most 128"),
        ("", "client id is empty"),
    ],
)
def test_a_client_id_a_broker_would_refuse_is_refused_at_start(
    client_id: str, message: str
) -> None:
    """iot-core-rules-and-limits §2: a client id is at most 128 bytes of UTF-8 and does not
    start with '$'; and the runner's persistent session needs one (MQTT-3.1.3-8). Refused
    before connecting, in one line, not as a broker's bare CONNACK refusal or a paho
    ValueError from inside the client."""
    clock = ManualClock(T0)
    batcher = Batcher(InMemoryObjectStore(), BatcherConfig(), clock)
    doc = rule([{"s3": {"key": "k"}}])
    with pytest.raises(ConfigError, match=message):
        RulesRunner(
            "mqtt://127.0.0.1:1", rules_from_document(doc), batcher, clock, client_id=client_id
        )


@pytest.mark.parametrize(
    ("payload", "problem"),
    [(b"{}", "empty"), (json.dumps({"k": "é" * 513}).encode(), "1,026 bytes")],
    ids=["undefined", "over-1024-bytes"],
)
def test_an_s3_key_s3_would_refuse_fails_the_action_whatever_the_store(
    payload: bytes, problem: str
) -> None:
    """S3 object keys are 1 to 1,024 bytes of UTF-8. A key template that makes another (an
    Undefined ``${k}`` makes an empty one) fails the s3 action, as S3 refuses it, and the
    errorAction gets the report: the in-memory store would take any key."""
    store = InMemoryObjectStore()
    doc = rule(
        [{"s3": {"bucketName": "b", "key": "${k}"}}],
        {"s3": {"bucketName": "e", "key": "errors/${topic(4)}"}},
        sql="SELECT * FROM 'dt/plantwatch/+/+/telemetry'",
    )
    runner(doc, store).handle("dt/plantwatch/s1/dev7/telemetry", payload)
    assert list(store.list()) == ["errors/dev7"]
    [failure] = json.loads(store.get("errors/dev7"))["failures"]
    assert failure["failedAction"] == "S3Action" and problem in failure["errorMessage"]
