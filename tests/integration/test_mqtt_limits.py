"""IoT Core's MQTT limits (iot-core-rules-and-limits §2) on the embedded brokers as
``plantwatch up`` starts them: no QoS 2, retained messages only for an exact subscription,
and telemetry on a topic IoT Core would refuse (over 256 bytes) quarantined with a reason."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from mqtt_frames import remaining_length
from raw_mqtt import RawClient
from waiting import wait_for

from cloud.adapters.local import FsObjectStore
from cloud.batcher import Batcher, BatcherConfig
from cloud.rules.runner import RulesRunner, load_rules
from cloud.runtime.broker import EmbeddedBroker
from edge import wire
from edge.clock import ManualClock

T0 = 1652443800
MOSQUITTO = pytest.param("mosquitto", marks=pytest.mark.mosquitto)


@pytest.fixture(params=["amqtt", MOSQUITTO])
def broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(request.param) as running:
        yield running


def test_a_qos2_publish_is_refused(broker: EmbeddedBroker) -> None:
    listener = RawClient(broker.host, broker.port)
    listener.subscribe(["q/#"])
    sender = RawClient(broker.host, broker.port)
    try:
        assert not sender.publish("q/two", b"exactly once", qos=2, timeout=2.0)
        sender.wait(lambda: sender.disconnects >= 1, "the broker closing the connection")
        late = RawClient(broker.host, broker.port)
        assert late.publish("q/one", b"at least once", qos=1)
        assert listener.wait_for_message("q/one") == b"at least once"
        late.close()
        assert listener.received("q/two") == []
    finally:
        sender.client.loop_stop()
        listener.close()


def test_amqtt_refuses_a_qos2_subscription_as_iot_core_does() -> None:
    """iot-core-rules-and-limits §2: IoT Core sends no SUBACK for a QoS 2 SUBSCRIBE; amqtt
    sends none either and closes the connection, so a device tested locally meets the
    refusal here, not a QoS 1 grant it would never get on AWS."""
    with EmbeddedBroker("amqtt") as broker:
        listener = RawClient(broker.host, broker.port)
        sender = RawClient(broker.host, broker.port)
        try:
            _rc, mid = listener.client.subscribe("q/#", 2)
            listener.wait(lambda: listener.disconnects >= 1, "the broker closing the connection")
            listener.client.loop_stop()
            assert mid not in listener._suback
            assert sender.publish("q/one", b"at least once", qos=1)
            listener.quiet(0.3)
            assert listener.messages == []
        finally:
            listener.client.loop_stop()
            sender.close()


@pytest.mark.mosquitto
def test_mosquitto_grants_a_qos2_subscription_qos1() -> None:
    """mosquitto's ``max_qos 1`` downgrades a QoS 2 subscription to QoS 1 and has no option
    to refuse it (docs/protocol.md lists the difference); pinned so a change shows."""
    with EmbeddedBroker("mosquitto") as broker:
        listener = RawClient(broker.host, broker.port)
        try:
            _rc, mid = listener.client.subscribe("q/#", 2)
            listener.wait(lambda: mid in listener._suback, "SUBACK")
            assert [code.value for code in listener._suback[mid]] == [1]
        finally:
            listener.close()


def test_retained_telemetry_goes_only_to_an_exact_subscription() -> None:
    """AWS sends a retained message on SUBSCRIBE only when the filter equals the topic, so
    the rules runner's wildcard subscription never replays retained telemetry; and a client
    gets only its own subscriptions' retained messages (amqtt handed every connecting client
    those of every filter any session held)."""
    topic = "dt/plantwatch/s1/pump/telemetry"
    with EmbeddedBroker("amqtt") as broker:
        holder = RawClient(broker.host, broker.port, client_id="rules")
        holder.subscribe(["dt/plantwatch/+/+/telemetry"])
        device = RawClient(broker.host, broker.port)
        device.client.publish(topic, b"kept", qos=1, retain=True).wait_for_publish(5)
        assert device.publish(topic, b"live", qos=1)
        holder.wait(lambda: len(holder.messages) == 2, "both live deliveries")
        wildcard = RawClient(broker.host, broker.port)
        wildcard.subscribe(["dt/plantwatch/+/+/telemetry", "dt/#"])
        bystander = RawClient(broker.host, broker.port)
        exact = RawClient(broker.host, broker.port)
        exact.subscribe([topic])
        assert exact.wait_for_message(topic) == b"kept"
        for client in (wildcard, bystander):
            client.quiet(0.5)
            assert client.messages == []
        for client in (holder, device, wildcard, bystander, exact):
            client.close()


@pytest.mark.mosquitto
def test_telemetry_on_a_topic_over_256_bytes_is_quarantined_as_bad_topic(
    tmp_path: Path,
) -> None:
    """Two 128-character names are each valid, but together make a 281-byte topic that IoT
    Core would refuse; mosquitto delivers it, so the runner quarantines it."""
    site, asset = "s" * 128, "a" * 128
    long_topic = f"dt/plantwatch/{site}/{asset}/telemetry"
    assert len(long_topic.encode()) == 281
    sample = [wire.Sample((T0 + 1) * 1000, {"x": 1.0})]
    too_long = wire.Telemetry(site, asset, "dev", 0, tuple(sample))
    fine = wire.Telemetry("s1", asset, "dev", 0, tuple(sample))
    store = FsObjectStore(tmp_path / "bucket")
    batcher = Batcher(store, BatcherConfig(), ManualClock(T0), spool_path=str(tmp_path / "s.db"))
    with EmbeddedBroker("mosquitto") as broker:  # amqtt refuses such a publish itself
        runner = RulesRunner(broker.url, load_rules(), batcher, ManualClock(T0), client_id="r")
        runner.start()
        device = RawClient(broker.host, broker.port)
        try:
            assert device.publish(long_topic, wire.encode(too_long))
            assert device.publish(fine.topic, wire.encode(fine))
            wait_for(
                lambda: batcher.stats["accepted"] + sum(batcher.quarantine.counts.values()) == 2
            )
        finally:
            device.close()
            runner.stop()
    assert batcher.quarantine.counts == {"bad_topic": 1}
    (key,) = store.list("quarantine/bad_topic/")
    record = json.loads(store.get(key))
    assert "256 bytes" in record["error"] and record["topic"] == long_topic
    assert batcher.stats["readings"] == 1


def test_a_payload_of_exactly_128_kb_is_taken_and_one_byte_more_is_refused(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """§2: payload ≤ 128 KB. The boundary through the broker as ``plantwatch up`` starts it
    to the rules runner. IoT Core disconnects a client whose payload is larger (CLIENT_ERROR,
    PAYLOAD_LIMIT_EXCEEDED), and so does amqtt, with no PUBACK; mosquitto's packet limit
    leaves room for the topic and headers, so one byte more gets through it and the rules
    runner quarantines it. amqtt used to acknowledge it as mosquitto does."""
    store = FsObjectStore(tmp_path / "bucket")
    batcher = Batcher(store, BatcherConfig(), ManualClock(T0), spool_path=str(tmp_path / "s.db"))
    runner = RulesRunner(broker.url, load_rules(), batcher, ManualClock(T0), client_id="r")
    runner.start()
    device = RawClient(broker.host, broker.port)

    def padded(seq: int, size: int) -> bytes:
        sample = (wire.Sample((T0 + 1 + seq) * 1000, {"x": float(seq)}),)
        body = wire.encode(wire.Telemetry("s1", "pump", "dev", seq, sample))
        return body + b" " * (size - len(body))

    limit = wire.MAX_PAYLOAD_BYTES
    try:
        assert device.publish("dt/plantwatch/s1/pump/telemetry", padded(0, limit))
        wait_for(lambda: batcher.stats["accepted"] == 1)
        acked = device.publish("dt/plantwatch/s1/pump/telemetry", padded(1, limit + 1))
        if broker.kind == "amqtt":
            device.wait(lambda: device.disconnects >= 1, "the broker closing the connection")
            assert not acked
            device.quiet(0.5)
            # not quarantined (nothing was delivered) but logged with the quarantine's reason,
            # once per attempt: the sender still holds it and sends it again on reconnecting
            assert (
                "publish refused: oversize (payload of 131073 bytes" in broker.log_file.read_text()
            )
        else:
            assert acked
            wait_for(lambda: runner.counts["oversize"] == 1)
    finally:
        device.close()
        runner.stop()
    assert batcher.stats["readings"] == 1
    assert batcher.quarantine.counts == ({} if broker.kind == "amqtt" else {"oversize": 1})


def raw_connection(broker: EmbeddedBroker, client_id: bytes) -> socket.socket:
    sock = socket.create_connection((broker.host, broker.port), timeout=5)
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id
    sock.sendall(bytes([0x10, len(body)]) + body)
    assert sock.recv(4) == b"\x20\x02\x00\x00", "CONNACK accepted"
    return sock


def closed_without_answer(sock: socket.socket) -> bool:
    try:
        return sock.recv(16) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("topic", [b"dt/plantwatch/s1/p\xff/telemetry", b"x/\xc3\x28"])
def test_a_topic_that_is_not_utf8_closes_the_connection_and_goes_nowhere(
    broker: EmbeddedBroker, topic: bytes
) -> None:
    """MQTT-1.5.3-1 and IoT Core: topics are UTF-8; a PUBLISH (QoS 1) or SUBSCRIBE with one
    that is not gets no PUBACK or SUBACK, the connection is closed, nothing is routed."""
    listener = RawClient(broker.host, broker.port)
    listener.subscribe(["#"])
    publisher = raw_connection(broker, b"bad-pub")
    body = len(topic).to_bytes(2, "big") + topic + b"\x00\x07" + b"{}"
    publisher.sendall(bytes([0x32, len(body)]) + body)
    assert closed_without_answer(publisher)
    subscriber = raw_connection(broker, b"bad-sub")
    body = b"\x00\x08" + len(topic).to_bytes(2, "big") + topic + b"\x01"
    subscriber.sendall(bytes([0x82, len(body)]) + body)
    assert closed_without_answer(subscriber)
    after = RawClient(broker.host, broker.port)
    assert after.publish("x/after", b"ok")
    assert listener.wait_for_message("x/after") == b"ok"
    assert [t for t, _ in listener.messages] == ["x/after"]
    for client in (after, listener):
        client.close()


@pytest.mark.parametrize(
    "topic_filter", [b"x/\xff", b"x/\xc3\x28", b"x/\x00", b"", b"a/#/b", b"a+/b", b"a/b#"]
)
def test_an_unsubscribe_with_an_ill_formed_filter_closes_the_connection(
    broker: EmbeddedBroker, topic_filter: bytes
) -> None:
    """MQTT-1.5.3-1 (not UTF-8), MQTT-1.5.3-2 (U+0000), section 4.7.3 (empty) and
    MQTT-4.7.1-2/3 (a misplaced wildcard): an UNSUBSCRIBE has no failure code, so such a
    filter closes the connection, as mosquitto does; amqtt answered UNSUBACK and went on
    as if the filter were a real one."""
    sock = raw_connection(broker, b"bad-unsub")
    body = b"\x00\x09" + len(topic_filter).to_bytes(2, "big") + topic_filter
    sock.sendall(bytes([0xA2, len(body)]) + body)
    assert closed_without_answer(sock)
    sock.close()


def test_a_connect_with_a_qos2_will_is_refused(broker: EmbeddedBroker) -> None:
    """IoT Core has no QoS 2 (users report it closing the connection of a CONNECT whose
    will asks for it); mosquitto (``max_qos 1``) closes it. amqtt accepted it and published
    the will."""
    listener = RawClient(broker.host, broker.port)
    listener.subscribe(["w/#"])
    sock = socket.create_connection((broker.host, broker.port), timeout=5)
    flags = 0x02 | 0x04 | 0x10  # clean session, will, will QoS 2
    body = b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x00\x3c\x00\x05dying\x00\x03w/2\x00\x04gone"
    sock.sendall(bytes([0x10, len(body)]) + body)
    assert closed_without_answer(sock)
    sock.close()
    listener.quiet(0.5)
    assert listener.messages == []
    listener.close()


@pytest.mark.parametrize("topic", ["a/" * 8 + "b", "x" * 300, "$SYS/x"])
def test_amqtt_refuses_a_will_on_a_topic_iot_core_refuses(topic: str) -> None:
    """A PUBLISH to a topic over 256 bytes or 7 slashes, or a reserved one, closes the
    connection; the same topic as a will went out to every ``#`` subscriber when the device
    dropped. Such a CONNECT is refused, as one whose will MQTT forbids (mosquitto has no
    option: it delivers the will)."""
    with EmbeddedBroker("amqtt") as broker:
        listener = RawClient(broker.host, broker.port)
        listener.subscribe(["#"])
        sock = socket.create_connection((broker.host, broker.port), timeout=5)
        will = topic.encode()
        body = (
            b"\x00\x04MQTT\x04\x0e\x00\x3c\x00\x05dying"  # clean, will of QoS 1
            + len(will).to_bytes(2, "big")
            + will
            + b"\x00\x04gone"
        )
        sock.sendall(b"\x10" + remaining_length(len(body)) + body)
        assert closed_without_answer(sock)
        sock.close()
        listener.quiet(0.5)
        assert listener.messages == []
        listener.close()


def connack(
    broker: EmbeddedBroker, client_id: bytes, keep_alive: int = 60
) -> tuple[bytes, socket.socket]:
    """A raw MQTT 3.1.1 CONNECT; the broker's first 4 bytes of answer and the socket."""
    sock = socket.create_connection((broker.host, broker.port), timeout=5)
    body = (
        b"\x00\x04MQTT\x04\x02"
        + keep_alive.to_bytes(2, "big")
        + len(client_id).to_bytes(2, "big")
        + client_id
    )
    sock.sendall(b"\x10" + remaining_length(len(body)) + body)
    return sock.recv(4), sock


ACCEPTED, IDENTIFIER_REJECTED = b"\x20\x02\x00\x00", b"\x20\x02\x00\x02"


@pytest.mark.parametrize(
    ("client_id", "answer"),
    [
        ("é" * 64, ACCEPTED),  # 128 bytes of UTF-8
        ("pump-01", ACCEPTED),
        ("é" * 64 + "a", IDENTIFIER_REJECTED),
        ("c" * 129, IDENTIFIER_REJECTED),
        ("$pump-01", IDENTIFIER_REJECTED),
    ],
)
def test_amqtt_refuses_a_client_id_iot_core_refuses(client_id: str, answer: bytes) -> None:
    """§2: client id at most 128 bytes of UTF-8, not starting with '$'. mosquitto has no
    such check (without ``--auth``; with it the client id is the username, a thing name)."""
    with EmbeddedBroker("amqtt") as broker:
        reply, sock = connack(broker, client_id.encode())
        sock.close()
    assert reply == answer


@pytest.mark.mosquitto
@pytest.mark.parametrize("asked", [0, 1500])
def test_mosquitto_tells_an_mqtt5_client_to_use_iot_cores_longest_keep_alive(asked: int) -> None:
    """§2: 0 or over 1200 s become 1200; MQTT 5 says so in the CONNACK's Server Keep Alive."""
    reason, props = _mosquitto_mqtt5_connack(keepalive=asked)
    assert (reason, getattr(props, "ServerKeepAlive", None)) == ("Success", 1200)


def _mosquitto_mqtt5_connack(keepalive: int) -> tuple[str, Any]:
    """The reason and properties of a fresh mosquitto's CONNACK to an MQTT 5 client."""
    answer: list[tuple[str, Any]] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_connect = lambda _c, _u, _f, reason, props: answer.append((str(reason), props))
    with EmbeddedBroker("mosquitto") as broker:
        client.connect(broker.host, broker.port, keepalive=keepalive)
        client.loop_start()
        try:
            wait_for(lambda: answer)
        finally:
            client.disconnect()
            client.loop_stop()
    return answer[0]


def test_reserved_topics_other_than_aws_ones_go_nowhere(broker: EmbeddedBroker) -> None:
    """§2: topics starting with '$' are reserved; only $aws/... ones are usable. amqtt closes
    the publisher's connection and refuses the subscription; mosquitto drops the publish."""
    listener = RawClient(broker.host, broker.port)
    granted = listener.subscribe(["#", "$aws/#", "$foo/#", "$SYS/#"])
    if broker.kind == "amqtt":
        assert granted == [True, True, False, False]
    sender = RawClient(broker.host, broker.port)
    sender.publish("$foo/bar", b"reserved", timeout=2.0)
    after = RawClient(broker.host, broker.port)
    assert after.publish("$aws/things/t/shadow/update", b"{}")
    assert after.publish("x/after", b"ok")
    listener.wait_for_message("x/after")
    listener.quiet(0.3)
    assert sorted(t for t, _ in listener.messages) == ["$aws/things/t/shadow/update", "x/after"]
    for client in (listener, sender, after):
        client.close()


@pytest.mark.parametrize(
    ("topic", "delivered"),
    [
        ("a/b/c/d/e/f/g/h", True),  # 7 slashes
        ("a/b/c/d/e/f/g/h/i", False),
        ("t/" + "x" * 254, True),  # 256 bytes
        ("t/" + "x" * 255, False),
        ("$aws/rules/r/a/b/c/d/e/f/g/h", True),  # the Basic Ingest prefix does not count
        ("$aws/rules/r/t/" + "x" * 254, True),
        ("$aws/rules/r/a/b/c/d/e/f/g/h/i", False),
    ],
)
def test_amqtt_refuses_a_topic_over_iot_cores_size_or_depth(topic: str, delivered: bool) -> None:
    """§2: topics of at most 256 bytes and 7 slashes, a Basic Ingest prefix not counted.
    amqtt closes the connection of a publisher over either and refuses such a subscription;
    mosquitto has no option for either (the rules runner quarantines such telemetry)."""
    with EmbeddedBroker("amqtt") as broker:
        listener = RawClient(broker.host, broker.port)
        assert listener.subscribe(["#", "$aws/rules/r/#", topic]) == [True, True, delivered]
        sender = RawClient(broker.host, broker.port)
        acked = sender.publish(topic, b"x", timeout=2.0)
        after = RawClient(broker.host, broker.port)
        assert after.publish("x/after", b"ok")
        listener.wait_for_message("x/after")
        listener.quiet(0.2)
        assert (acked, bool(listener.received(topic))) == (delivered, delivered)
        if not delivered:
            sender.wait(lambda: sender.disconnects >= 1, "the broker closing the connection")
        for client in (listener, sender, after):
            client.close()


def test_amqtt_keeps_no_retained_message_on_a_reserved_topic() -> None:
    """§2: retained messages are not allowed on reserved topics. amqtt kept one on a
    shadow's delta topic and replayed it to the device each time it subscribed, a stale
    command on every reconnect. The publish itself is served once (a retained shadow
    request is still answered: test_shadow_service_hostile), its retain flag ignored."""
    topic = "$aws/things/t/shadow/update/delta"
    with EmbeddedBroker("amqtt") as broker:
        sender = RawClient(broker.host, broker.port)
        info = sender.client.publish(topic, b'{"state": {"mode": "stop"}, "version": 1}', 1, True)
        info.wait_for_publish(5.0)
        assert info.is_published()
        device = RawClient(broker.host, broker.port)
        assert device.subscribe([topic]) == [True]
        assert sender.publish(topic, b"live")
        assert device.wait_for_message(topic) == b"live"
        device.quiet(0.3)
        assert device.received(topic) == [b"live"]
        assert sender.disconnects == 0
        for client in (sender, device):
            client.close()


def test_amqtt_keeps_no_retained_will_on_a_reserved_topic() -> None:
    """§2 again, through a last will: a device that asked for a retained will on a shadow's
    delta topic and then lost its link left that will kept, replayed as a command to every
    later subscriber of the topic. The will still goes out once, to those subscribed."""
    topic = "$aws/things/t/shadow/update/delta"
    with EmbeddedBroker("amqtt") as broker:
        watcher = RawClient(broker.host, broker.port)
        assert watcher.subscribe([topic]) == [True]
        dying = RawClient(broker.host, broker.port, connect=False)
        dying.client.will_set(topic, b'{"state": {"mode": "stop"}}', qos=1, retain=True)
        assert dying.start().accepted
        dying.client.socket().shutdown(socket.SHUT_RDWR)  # gone without a DISCONNECT
        assert watcher.wait_for_message(topic) == b'{"state": {"mode": "stop"}}'
        dying.client.loop_stop()
        device = RawClient(broker.host, broker.port)
        assert device.subscribe([topic]) == [True]
        device.quiet(0.5)
        assert device.received(topic) == []
        for client in (watcher, device):
            client.close()


def test_amqtt_closes_a_subscribe_with_more_than_8_filters() -> None:
    """iot-core-rules-and-limits §3: at most 8 subscriptions per SUBSCRIBE, not adjustable;
    IoT Core closes the connection of a client that sends a 9th (users see the SUBSCRIBE
    end in a disconnect, no SUBACK). amqtt granted all of them, so a device that subscribed
    to its shadow's 9 topics at once worked locally and never on AWS."""
    filters = [f"cmd/plantwatch/s1/pump-01/{n}" for n in range(9)]
    with EmbeddedBroker("amqtt") as broker:
        eight = RawClient(broker.host, broker.port)
        nine = RawClient(broker.host, broker.port)
        try:
            assert eight.subscribe(filters[:8]) == [True] * 8
            _rc, mid = nine.client.subscribe([(f, 1) for f in filters])
            nine.wait(lambda: nine.disconnects >= 1, "the broker closing the connection")
            nine.client.loop_stop()
            assert mid not in nine._suback
            assert eight.disconnects == 0
        finally:
            nine.client.loop_stop()
            eight.close()


def test_amqtt_refuses_subscriptions_past_50_per_connection() -> None:
    """iot-core-rules-and-limits §3: 50 subscriptions per connection. IoT Core answers a
    filter past the 50th with the SUBACK failure code (devices report the 51st and later
    "rejected" and never receive on them); the connection stays up. Subscribing again to
    a filter the client holds adds none, and an UNSUBSCRIBE frees a place."""
    filters = [f"cmd/plantwatch/s1/pump-{n:02d}/ack" for n in range(56)]
    with EmbeddedBroker("amqtt") as broker:
        client = RawClient(broker.host, broker.port)
        try:
            granted = [ok for i in range(0, 56, 8) for ok in client.subscribe(filters[i : i + 8])]
            assert granted == [True] * 50 + [False] * 6
            assert client.subscribe([filters[0], filters[49]]) == [True, True]
            client.client.unsubscribe(filters[0])
            client.quiet(0.3)
            assert client.subscribe([filters[50]]) == [True]
            assert client.disconnects == 0
            sender = RawClient(broker.host, broker.port)
            assert sender.publish("cmd/plantwatch/s1/pump-50/ack", b"in", qos=1)
            assert sender.publish("cmd/plantwatch/s1/pump-51/ack", b"out", qos=1)
            assert client.wait_for_message("cmd/plantwatch/s1/pump-50/ack") == b"in"
            client.quiet(0.3)
            assert client.received("cmd/plantwatch/s1/pump-51/ack") == []
            sender.close()
        finally:
            client.close()


@pytest.mark.mosquitto
def test_mosquitto_tells_an_mqtt5_client_iot_cores_topic_alias_maximum() -> None:
    """§2: IoT Core takes up to 8 topic aliases from a client and says so in the CONNACK's
    Topic Alias Maximum; mosquitto's default (10) let a device tested locally use aliases 9
    and 10, which IoT Core refuses."""
    reason, props = _mosquitto_mqtt5_connack(keepalive=300)
    assert (reason, getattr(props, "TopicAliasMaximum", None)) == ("Success", 8)


def test_a_retained_empty_payload_deletes_the_retained_message(broker: EmbeddedBroker) -> None:
    """§2: one retained message per topic, kept until replaced or deleted, and a retained
    publish with an empty payload deletes it (MQTT-3.3.1-10): a later exact subscriber
    gets the replacement, then nothing once it is deleted."""
    topic = "cmd/plantwatch/s1/pump-01/mode"
    device = RawClient(broker.host, broker.port)
    try:
        for payload in (b"first", b"second"):
            device.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
        replaced = RawClient(broker.host, broker.port)
        replaced.subscribe([topic])
        assert replaced.wait_for_message(topic) == b"second"
        replaced.quiet(0.3)
        assert replaced.received(topic) == [b"second"]
        replaced.close()
        device.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        deleted = RawClient(broker.host, broker.port)
        deleted.subscribe([topic])
        deleted.quiet(0.5)
        assert deleted.messages == []
        deleted.close()
    finally:
        device.close()


def test_amqtt_lets_a_rules_runner_subscribe_past_iot_cores_client_limits() -> None:
    """IoT Core's rules engine reads its rules' topics without any MQTT subscription; the
    local rules runner stands in for it with two filters a rule, one of them the rule's
    Basic Ingest topic, which IoT Core lets no client subscribe to. A client whose
    SUBSCRIBE holds such a filter is that stand-in (``plantwatch rules run`` too, not only
    ``up``'s ``--durable-subscriber``), so 5 rules (10 filters in one SUBSCRIBE) and 30
    (60 subscriptions) are granted, not closed or refused as a device's would be."""
    rules = [f"rule_{n:02d}" for n in range(30)]
    filters = [f for r in rules for f in (f"dt/plantwatch/+/{r}/telemetry", f"$aws/rules/{r}/#")]
    with EmbeddedBroker("amqtt") as broker:
        runner = RawClient(broker.host, broker.port, client_id="rules-standalone")
        try:
            assert runner.subscribe(filters[:10]) == [True] * 10
            assert runner.subscribe(filters[10:]) == [True] * 50
            assert runner.disconnects == 0
        finally:
            runner.close()
