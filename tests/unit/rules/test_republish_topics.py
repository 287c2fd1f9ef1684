"""The republish action never sends to a topic IoT Core would refuse (iot-core-rules-and-
limits §2, AWS's republish action page): NUL, empty, a ``+`` or ``#`` wildcard, over 256
bytes of UTF-8 or over 7 slashes, or a reserved ``$`` topic a rule may not publish to
(only a shadow's request topics and Basic Ingest; AWS does not support jobs topics). A
substitution template makes the topic from the message, so a device can make any of
these: the action fails, the errorAction gets the report, and nothing is sent."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryObjectStore, InMemoryPublisher
from cloud.rules.actions import republish_topic_problem
from cloud.rules.runner import RulesRunner
from edge.clock import ManualClock
from tests.rules_runner import offline_runner, topic_rule

T0 = 1_700_000_000
TOPIC = "dt/plantwatch/s1/dev7/telemetry"


def make(
    topic_template: str,
    sql: str = "SELECT * FROM 'dt/plantwatch/+/+/telemetry'",
    **options: int,
) -> tuple[RulesRunner, InMemoryPublisher, InMemoryObjectStore]:
    actions = [{"republish": {"topic": topic_template, "qos": 1}}]
    errors = {"s3": {"bucketName": "b", "key": "errors/${topic(4)}/${newuuid()}"}}
    store, publisher = InMemoryObjectStore(), InMemoryPublisher()
    doc = topic_rule("out", sql, actions, errors)
    runner = offline_runner(doc, store, ManualClock(T0), publisher=publisher, **options)
    return runner, publisher, store


def reports(store: InMemoryObjectStore) -> list[dict]:
    return [json.loads(store.get(k)) for k in store.list("errors/")]


REFUSED = {
    "nul": ("a\x00b", "NUL"),
    "empty": ("", "empty"),
    "plus": ("a/+/b", "wildcard"),
    "hash": ("a/#", "wildcard"),
    "bare hash": ("#", "wildcard"),
    "257 bytes": ("a" * 257, "257 bytes"),
    "257 bytes of é": ("x" + "é" * 128, "257 bytes"),
    "8 slashes": ("/".join("abcdefghi"), "8 slashes"),
    "leading slash": ("/a/b/c/d/e/f/g/h", "8 slashes"),
    "lone surrogate": ("a/\ud800", "UTF-8"),
    # MQTT: a topic SHOULD NOT hold these, and mosquitto disconnects the publisher
    "newline": ("a/b\nc", "control character"),
    "U+001F": ("a/\x1f", "control character"),
    "DEL": ("a/\x7f", "control character"),
    "U+009F": ("a/\x9f", "control character"),
    "U+FFFF": ("a/\uffff", "non-character"),
    "U+FDD0": ("\ufdd0", "non-character"),
    "U+1FFFE": ("a/\U0001fffe", "non-character"),
    "$SYS": ("$SYS/broker/uptime", "reserved"),
    "$share": ("$share/g/a", "reserved"),
    "$ alone": ("$", "reserved"),
    "$$ from the payload": ("$$aws/things/t/shadow/update", "reserved"),
    "jobs": ("$aws/things/t/jobs/get", "reserved"),
    "jobs notify": ("$aws/things/t/jobs/notify", "reserved"),
    "events": ("$aws/events/presence/connected/t", "reserved"),
    "shadow reply": ("$aws/things/t/shadow/update/accepted", "reserved"),
    "shadow delta": ("$aws/things/t/shadow/update/delta", "reserved"),
    "shadow unknown": ("$aws/things/t/shadow/bogus", "reserved"),
    "basic ingest, no topic": ("$aws/rules/r", "reserved"),
    "basic ingest, bad rule name": ("$aws/rules/no-such!/a", "reserved"),
    "basic ingest, 8 slashes after the prefix": (
        "$aws/rules/r/" + "/".join("abcdefghi"),
        "8 slashes",
    ),
}


@pytest.mark.parametrize(("topic", "why"), REFUSED.values(), ids=REFUSED.keys())
def test_a_topic_iot_core_refuses_is_never_sent_and_goes_to_the_error_action(
    topic: str, why: str
) -> None:
    runner, publisher, store = make("${t}")
    body = json.dumps({"t": topic}).encode()
    batch = [(1, SimpleNamespace(topic=TOPIC, payload=body))]
    assert runner.process(batch) == batch  # acknowledged
    assert publisher.published == []
    [report] = reports(store)
    assert base64.b64decode(report["base64OriginalPayload"]) == body
    [failure] = report["failures"]
    assert failure["failedAction"] == "RepublishAction"
    assert "RefusedError" in failure["errorMessage"] and why in failure["errorMessage"]
    assert "not sent" in failure["errorMessage"]
    assert runner.counts["rule_failed"] == 0


ACCEPTED = {
    "7 slashes": ("/".join("abcdefgh"), "/".join("abcdefgh")),
    "256 bytes": ("a" * 256, "a" * 256),
    "empty levels": ("a//b/", "a//b/"),
    "shadow update": ("$aws/things/t-1/shadow/update", "$aws/things/t-1/shadow/update"),
    "named shadow get": ("$aws/things/t/shadow/name/cfg/get", "$aws/things/t/shadow/name/cfg/get"),
    "basic ingest": (
        "$aws/rules/r_1/" + "/".join("abcdefgh"),
        "$aws/rules/r_1/" + "/".join("abcdefgh"),
    ),
    "dollar inside": ("a/$b", "a/$b"),
    "space, NBSP, U+FDCF, U+FFF0": ("a b/\xa0/\ufdcf/\ufff0", "a b/\xa0/\ufdcf/\ufff0"),
}


@pytest.mark.parametrize(("topic", "sent"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_a_topic_iot_core_takes_is_sent(topic: str, sent: str) -> None:
    runner, publisher, store = make("${t}")
    runner.handle(TOPIC, json.dumps({"t": topic}).encode())
    assert [t for t, _, _ in publisher.published] == [sent]
    assert reports(store) == []


def test_a_literal_double_dollar_reaches_the_shadow_topic() -> None:
    runner, publisher, store = make("$$aws/things/${topic(4)}/shadow/update")
    runner.handle(TOPIC, b'{"state": {"reported": {"x": 1}}}')
    assert [t for t, _, _ in publisher.published] == ["$aws/things/dev7/shadow/update"]
    assert reports(store) == []


def _refused_by_iot_core(topic: str) -> bool:
    """An independent reading of the limits, for the property below."""
    try:
        size = len(topic.encode("utf-8"))
    except UnicodeEncodeError:
        return True
    if not topic or "\x00" in topic or "+" in topic or "#" in topic:
        return True
    for ch in topic:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return True
        if 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE:
            return True
    inner = topic
    if topic.startswith("$"):
        parts = topic.split("/")
        shadow = (
            parts[:2] == ["$aws", "things"]
            and len(parts) in (5, 7)
            and parts[3] == "shadow"
            and (len(parts) == 5 or parts[4] == "name")
            and parts[-1] in ("get", "update", "delete")
            and all(parts[2:])
        )
        ingest = (
            parts[:2] == ["$aws", "rules"]
            and len(parts) >= 4
            and bool(parts[2])
            and all(c.isascii() and (c.isalnum() or c == "_") for c in parts[2])
        )
        if not (shadow or ingest):
            return True
        if ingest:
            inner = "/".join(parts[3:])
            size = len(inner.encode("utf-8"))
            if not inner:
                return True
    return size > 256 or inner.count("/") > 7


LEVEL = st.sampled_from(
    ["", "a", "$aws", "things", "rules", "shadow", "name", "update", "+", "#", "é" * 40, "\n"]
)
TOPICS = st.lists(LEVEL | st.text(max_size=40), min_size=1, max_size=10).map("/".join) | st.text(
    max_size=300
)


@settings(max_examples=300, deadline=None)
@given(topic=TOPICS)
def test_a_topic_is_sent_if_and_only_if_iot_core_takes_it(topic: str) -> None:
    runner, publisher, store = make("${t}")
    runner.handle(TOPIC, json.dumps({"t": topic}).encode())
    refused = _refused_by_iot_core(topic)
    assert (republish_topic_problem(topic) is not None) == refused
    if refused:
        assert publisher.published == [] and len(reports(store)) == 1
    else:
        assert [t for t, _, _ in publisher.published] == [topic] and reports(store) == []


def test_an_output_over_128_kb_is_never_sent_and_goes_to_the_error_action() -> None:
    """A device's payload within the limit can make an output beyond it (``SELECT *,
    encode(*, 'base64') AS copy``); IoT Core refuses a publish over 128 KB, and a local
    broker disconnects the publisher that sends one."""
    sql = "SELECT *, encode(*, 'base64') AS copy FROM 'dt/plantwatch/+/+/telemetry'"
    runner, publisher, store = make("out/${topic(4)}", sql)
    body = json.dumps({"f": "x" * 100_000}).encode()
    batch = [(1, SimpleNamespace(topic=TOPIC, payload=body))]
    assert runner.process(batch) == batch
    assert publisher.published == []
    [report] = reports(store)
    message = report["failures"][0]["errorMessage"]
    assert "RefusedError" in message and "131,072" in message and "not sent" in message


@pytest.mark.parametrize("size", [128 * 1024, 128 * 1024 + 1])
def test_an_output_of_128_kb_is_sent_and_one_byte_more_is_not(size: int) -> None:
    sql = "SELECT VALUE f FROM 'dt/plantwatch/+/+/telemetry'"  # the JSON string: 2 quotes
    runner, publisher, store = make("out/${topic(4)}", sql, max_message_bytes=256 * 1024)
    runner.handle(TOPIC, json.dumps({"f": "x" * (size - 2)}).encode())
    assert [len(p) for _, p, _ in publisher.published] == ([size] if size <= 131072 else [])
    assert len(reports(store)) == (0 if size <= 131072 else 1)
