"""A careless or hostile device against the local stack as ``plantwatch up`` starts it
(default broker): every telemetry message the rules refuse is quarantined with its reason,
every shadow request refused is answered on ``/rejected`` with AWS's code, and the stack
keeps serving. One stack for the module; each case looks only at what it changed."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from raw_mqtt import RawClient
from waiting import wait_for

from cloud.runtime.layout import DataLayout
from cloud.runtime.stack import LocalStack, StackConfig
from edge.clock import ManualClock

NOW = time.time()
T0 = NOW - NOW % 300
MS = int((T0 + 1) * 1000)
TOPIC = "dt/plantwatch/s1/pump/telemetry"


def telemetry(site: str = "s1", asset: str = "pump", ts: int = MS, seq: int = 1) -> bytes:
    doc = {"v": 1, "site": site, "asset": asset, "sender": "dev", "seq": seq}
    return json.dumps({**doc, "samples": [{"ts": ts, "values": {"x": 1.0}}]}).encode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    data = DataLayout.at(tmp_path_factory.mktemp("proto") / "data")
    running = LocalStack(StackConfig(data=data), ManualClock(T0 + 1)).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def device(stack: LocalStack) -> Iterator[RawClient]:
    assert stack.broker is not None
    client = RawClient(stack.broker.host, stack.broker.port)
    client.subscribe(["$aws/things/+/shadow/+/+", "$aws/things/+/shadow/name/+/+/+"])
    yield client
    client.close()


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("dt/plantwatch//pump/telemetry", telemetry(), "bad_topic"),
        ("dt/plantwatch/s1/p\u00fcmp/telemetry", telemetry(asset="p\u00fcmp"), "bad_schema"),
        (TOPIC, b"", "bad_json"),
        (TOPIC, b'{"v":1,"site":"s1\xff"}', "bad_json"),
        (TOPIC, b"[" * 10_000 + b"]" * 10_000, "bad_json"),
        (TOPIC, b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "bad_json"),
        (TOPIC, telemetry(asset="other"), "topic_mismatch"),
        (TOPIC, telemetry(site="s2"), "topic_mismatch"),
        (TOPIC, telemetry(ts=MS + 400 * 86_400_000), "timestamp_out_of_range"),
        (TOPIC, telemetry(ts=1000), "out_of_range"),
    ],
    ids=[
        "empty-level",
        "non-ascii-asset",
        "zero-bytes",
        "not-utf8",
        "deep-array",
        "deep-object",
        "asset-differs",
        "site-differs",
        "400-days-ahead",
        "1970",
    ],
)
def test_refused_telemetry_is_quarantined_with_its_reason(
    stack: LocalStack, device: RawClient, topic: str, payload: bytes, reason: str
) -> None:
    counts = stack.batcher.quarantine.counts
    before, total = counts[reason], sum(counts.values())
    assert device.publish(topic, payload)
    wait_for(lambda: sum(counts.values()) > total)
    assert counts[reason] == before + 1, dict(counts)


def test_a_retained_empty_payload_clears_the_retained_reading_and_is_quarantined(
    stack: LocalStack, device: RawClient
) -> None:
    """IoT Core: a retained message of zero bytes deletes the topic's retained message. The
    rules still see an empty message: quarantined as not JSON, never taken as a reading."""
    assert stack.broker is not None
    counts = stack.batcher.quarantine.counts
    before, readings = counts["bad_json"], stack.batcher.stats["readings"]
    device.client.publish(TOPIC, telemetry(seq=7), qos=1, retain=True).wait_for_publish(5)
    wait_for(lambda: stack.batcher.stats["readings"] == readings + 1)
    device.client.publish(TOPIC, b"", qos=1, retain=True).wait_for_publish(5)
    wait_for(lambda: counts["bad_json"] == before + 1)
    late = RawClient(stack.broker.host, stack.broker.port)
    late.subscribe([TOPIC])
    late.quiet(0.3)
    assert late.messages == [], "the retained reading is gone"
    late.close()


@pytest.mark.parametrize(
    ("topic", "request_doc", "answer"),
    [
        (
            "$aws/things/pump/shadow/update",
            {"state": {"desired": {"a": "x" * 9000}}, "clientToken": "big"},
            {"code": 413, "clientToken": "big"},
        ),
        (
            "$aws/things/pump/shadow/update",
            {"state": {"desired": {"a": 1}}, "clientToken": "t" * 65},
            {"code": 400, "message": "Invalid clientToken"},
        ),
        (
            "$aws/things/pump/shadow/name/bad name!/get",
            {"clientToken": "g1"},
            {"code": 400, "message": "Invalid shadow name", "clientToken": "g1"},
        ),
        (
            "$aws/things/pump/shadow/name/" + "n" * 65 + "/get",
            {"clientToken": "g2"},
            {"code": 400, "message": "Invalid shadow name", "clientToken": "g2"},
        ),
    ],
    ids=["9-kb-update", "65-byte-token", "bad-shadow-name", "65-byte-shadow-name"],
)
def test_refused_shadow_requests_are_answered_on_rejected(
    device: RawClient, topic: str, request_doc: dict[str, object], answer: dict[str, object]
) -> None:
    replies = len(device.received(f"{topic}/rejected"))
    assert device.publish(topic, json.dumps(request_doc).encode())
    device.wait(lambda: len(device.received(f"{topic}/rejected")) > replies, "the answer")
    reply = json.loads(device.received(f"{topic}/rejected")[-1])
    assert {key: reply.get(key) for key in answer} == answer
    if "clientToken" not in answer:
        assert "clientToken" not in reply


def test_an_update_with_a_null_state_then_a_delete_and_update_race(device: RawClient) -> None:
    """``"state": null`` clears both sections (spec 4.2 Choice); a delete followed at once by
    an update with a stale version gets 409, one without a version re-creates the shadow
    with the next version (spec 4.6, 4.7)."""
    base = "$aws/things/racer/shadow"
    assert device.publish(f"{base}/update", b'{"state":{"desired":{"a":1}},"clientToken":"c"}')
    device.wait_for_message(f"{base}/update/accepted")
    assert device.publish(f"{base}/update", b'{"state":null,"clientToken":"n"}')
    device.wait(lambda: len(device.received(f"{base}/update/accepted")) == 2, "null accepted")
    cleared = json.loads(device.received(f"{base}/update/accepted")[1])
    assert cleared["state"] is None and cleared["version"] == 2
    for body in (
        b'{"clientToken":"d"}',
        b'{"state":{"reported":{"z":1}},"clientToken":"u1","version":1}',
        b'{"state":{"reported":{"z":2}},"clientToken":"u2"}',
    ):
        device.client.publish(f"{base}/{'delete' if b'state' not in body else 'update'}", body, 1)
    device.wait(lambda: len(device.received(f"{base}/update/accepted")) == 3, "u2 accepted")
    assert json.loads(device.received(f"{base}/delete/accepted")[0])["version"] == 2
    rejected = json.loads(device.received(f"{base}/update/rejected")[0])
    assert rejected == {"code": 409, "message": "Version conflict", "clientToken": "u1"}
    recreated = json.loads(device.received(f"{base}/update/accepted")[2])
    assert recreated["version"] == 3 and recreated["clientToken"] == "u2"


def test_a_will_on_a_shadow_update_topic_reaches_subscribers_but_not_the_shadow(
    stack: LocalStack, device: RawClient
) -> None:
    """AWS's Device Shadow guide: a will sent to a reserved topic is ignored by the Device
    Shadow service, while subscribers (and rules) get it; it advises a will on a topic of
    your own, republished to the shadow by a rule. The local shadow service applied it,
    so a device relying on it looked offline locally and never on AWS."""
    assert stack.broker is not None
    topic = "$aws/things/will-thing/shadow/update"
    watcher = RawClient(stack.broker.host, stack.broker.port)
    watcher.subscribe([topic])
    will = b'{"state":{"reported":{"connected":false}}}'
    flags = bytes([4, 0x0E])  # will (QoS 1), clean session
    body = b"\x00\x04MQTT" + flags + b"\x00\x3c" + b"\x00\x0awill-thing"
    body += len(topic).to_bytes(2, "big") + topic.encode() + len(will).to_bytes(2, "big") + will
    try:
        with socket.create_connection((stack.broker.host, stack.broker.port)) as sock:
            sock.sendall(bytes([0x10, len(body)]) + body)
            assert sock.recv(4) == b"\x20\x02\x00\x00"
        assert watcher.wait_for_message(topic) == will  # closed without a DISCONNECT
        device.quiet(1.0)
        answers = [t for t, _p in device.messages if t.startswith("$aws/things/will-thing/")]
        assert answers == [], "the shadow service took the will as an update"
    finally:
        watcher.close()


def test_the_stack_still_takes_a_good_reading(stack: LocalStack, device: RawClient) -> None:
    readings = stack.batcher.stats["readings"]
    assert device.publish(TOPIC, telemetry(ts=MS + 5000, seq=99))
    wait_for(lambda: stack.batcher.stats["readings"] == readings + 1)
    assert stack.rules.counts["callback_errors"] == 0
    assert stack.shadow_service.counts["callback_errors"] == 0
