"""The errorAction's message (iot-core-rules-and-limits §1.8, AWS's rule-error-handling page):
one JSON document per failed rule execution, holding every failed action of it, with
exactly ``ruleName``, ``topic``, ``cloudwatchTraceId``, ``clientId``,
``base64OriginalPayload`` and ``failures[]`` (``failedAction``, ``failedResource``,
``errorMessage``)."""

from __future__ import annotations

import base64
import json
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryObjectStore, InMemoryPublisher
from cloud.rules.runner import RulesRunner
from edge.clock import ManualClock
from edge.errors import RefusedError
from tests.rules_runner import offline_runner, topic_rule

T0 = 1_700_000_000
TOPIC = "dt/plantwatch/s1/dev7/telemetry"
REPORT_FIELDS = [
    "ruleName",
    "topic",
    "cloudwatchTraceId",
    "clientId",
    "base64OriginalPayload",
    "failures",
]


class Refusing(InMemoryObjectStore):
    def put(self, key: str, body: bytes) -> None:
        if key.startswith("no/"):
            raise RefusedError(f"object key {key!r}: refused", reason="InvalidKey")
        super().put(key, body)


def make(sql: str) -> tuple[RulesRunner, Refusing]:
    actions = [
        {"s3": {"bucketName": "raw", "key": "no/${topic(4)}"}},
        {"republish": {"topic": "a/+/b", "qos": 1}},
        {"s3": {"bucketName": "raw", "key": "ok/${topic(4)}/${newuuid()}"}},
    ]
    errors = {"s3": {"bucketName": "errors", "key": "errors/${newuuid()}"}}
    store = Refusing()
    doc = topic_rule("three", sql, actions, errors)
    return offline_runner(doc, store, ManualClock(T0), publisher=InMemoryPublisher()), store


@settings(max_examples=40, deadline=None)
@given(
    payloads=st.lists(
        st.binary(max_size=64) | st.sampled_from([b'{"x": 1}', b"80", b""]),
        min_size=1,
        max_size=4,
    )
)
def test_one_report_per_failed_execution_holding_each_failed_action(
    payloads: list[bytes],
) -> None:
    runner, store = make("SELECT * FROM 'dt/plantwatch/+/+/telemetry'")
    for payload in payloads:
        runner.handle(TOPIC, payload)
    reports = [json.loads(store.get(k)) for k in store.list("errors/")]
    assert len(reports) == len(payloads) == len(list(store.list("ok/")))
    assert sorted(base64.b64decode(r["base64OriginalPayload"]) for r in reports) == sorted(payloads)
    for report in reports:
        assert list(report) == REPORT_FIELDS
        assert report["ruleName"] == "three" and report["topic"] == TOPIC
        assert report["clientId"] == "n/a"
        uuid.UUID(report["cloudwatchTraceId"])
        s3, republish = report["failures"]
        assert list(s3) == ["failedAction", "failedResource", "errorMessage"]
        assert (s3["failedAction"], s3["failedResource"]) == ("S3Action", "raw")
        assert "no/dev7" in s3["errorMessage"]
        assert republish["failedAction"] == "RepublishAction"
        assert "wildcard" in republish["errorMessage"]
    assert runner.counts["rule_failed"] == 0


def test_a_binary_payload_is_reported_whole_when_its_where_passes() -> None:
    """Attribute references on a non-JSON payload are Undefined; ``isUndefined`` of one is
    true, so the actions run, and the report carries the raw bytes."""
    runner, store = make(
        "SELECT encode(*, 'base64') AS data FROM 'dt/plantwatch/+/+/telemetry' "
        "WHERE isUndefined(temp)"
    )
    runner.handle(TOPIC, b"\x00\xff\x80raw")
    [key] = store.list("errors/")
    assert base64.b64decode(json.loads(store.get(key))["base64OriginalPayload"]) == (
        b"\x00\xff\x80raw"
    )
    [stored] = store.list("ok/")
    assert json.loads(store.get(stored)) == {"data": "AP+AcmF3"}
