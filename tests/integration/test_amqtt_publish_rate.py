"""IoT Core's publish rate per connection on the embedded amqtt broker.

iot-core-rules-and-limits §3: 100 publish requests per second per connection, not
adjustable, the excess dropped. IoT Core keeps the connection open; a QoS 0 publish past
the limit is lost and a QoS 1 one gets no PUBACK, so its client sends it again. The stack's
own services stand in for AWS's and are not limited. ``plantwatch up`` sets the limit (its
``--max-publishes-per-s``, 100 by default); here the broker is given it. Each connection here writes its burst
in one go, far faster than 100 a second, so what gets through is about one second's worth.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from mqtt_frames import connect_packet, remaining_length, split_packets
from raw_mqtt import RawClient

from cloud.runtime.broker import EmbeddedBroker

TOPIC = "dt/plantwatch/s1/pump-01/telemetry"
SERVICE = "plantwatch-shadow"
BURST = 1_000
LIMIT = 100
SLACK = 50
"""Tokens a burst may regain while it is read: it takes milliseconds, not half a second."""


@pytest.fixture
def logged() -> list[str]:
    return []


@pytest.fixture
def broker(logged: list[str]) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(
        "amqtt", service_clients=(SERVICE,), on_log=logged.append, max_publishes_per_s=LIMIT
    ) as running:
        yield running


def connected(broker: EmbeddedBroker, packet: bytes) -> socket.socket:
    sock = socket.create_connection((broker.host, broker.port), timeout=5)
    sock.sendall(packet)
    assert sock.recv(4) == b"\x20\x02\x00\x00", "CONNACK accepted"
    return sock


def publish_packet(number: int, qos: int) -> bytes:
    topic = TOPIC.encode()
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += (number + 1).to_bytes(2, "big")
    body += number.to_bytes(4, "big")
    return bytes([0x30 | qos << 1]) + remaining_length(len(body)) + body


def marker(broker: EmbeddedBroker, reader: RawClient, name: bytes) -> None:
    """Publish *name* from a fresh client and wait for *reader* to get it: what was
    routed before it has arrived."""
    sender = RawClient(broker.host, broker.port)
    try:
        assert sender.publish(TOPIC, name)
        reader.wait(lambda: (TOPIC, name) in reader.messages, name.decode(), 30)
    finally:
        sender.close()
    reader.quiet(0.5)


def pingresp_after(sock: socket.socket) -> list[int]:
    """Send PINGREQ and read until PINGRESP: the first bytes of the packets before it. The
    connection is still open if it comes."""
    sock.sendall(b"\xc0\x00")
    data, firsts = b"", []
    while 0xD0 not in firsts:
        chunk = sock.recv(65536)
        assert chunk, "the broker closed the connection"
        packets, data = split_packets(data + chunk)
        firsts += [first for first, _body in packets]
    return firsts


def flood_numbers(reader: RawClient) -> list[int]:
    return [int.from_bytes(p, "big") for t, p in reader.messages if t == TOPIC and len(p) == 4]


def test_a_device_past_100_publishes_a_second_has_the_excess_dropped(
    broker: EmbeddedBroker, logged: list[str]
) -> None:
    reader = RawClient(broker.host, broker.port, client_id="reader")
    assert reader.subscribe([TOPIC], qos=0) == [True]
    flooder = connected(broker, connect_packet("pump-01"))
    try:
        flooder.sendall(b"".join(publish_packet(n, 0) for n in range(BURST)))
        marker(broker, reader, b"after-qos0")
        through = flood_numbers(reader)
        assert LIMIT // 2 <= len(through) <= LIMIT + SLACK, len(through)
        assert pingresp_after(flooder)[-1] == 0xD0, "the connection stays open"
    finally:
        flooder.close()
        reader.close()
    lines = [line for line in logged if "'pump-01'" in line and "100 a second" in line]
    assert lines, logged


def test_a_qos1_publish_past_the_limit_gets_no_puback(broker: EmbeddedBroker) -> None:
    reader = RawClient(broker.host, broker.port, client_id="reader")
    assert reader.subscribe([TOPIC], qos=0) == [True]
    flooder = connected(broker, connect_packet("pump-02"))
    try:
        flooder.sendall(b"".join(publish_packet(n, 1) for n in range(BURST // 4)))
        marker(broker, reader, b"after-qos1")
        pubacks = pingresp_after(flooder).count(0x40)
        assert LIMIT // 2 <= pubacks <= LIMIT + SLACK, pubacks
    finally:
        flooder.close()
        reader.close()


def test_the_stacks_services_are_not_limited(broker: EmbeddedBroker) -> None:
    reader = RawClient(broker.host, broker.port, client_id="reader")
    assert reader.subscribe([TOPIC], qos=0) == [True]
    assert broker.service_secret
    service = connected(broker, connect_packet(SERVICE, SERVICE, broker.service_secret))
    try:
        service.sendall(b"".join(publish_packet(n, 0) for n in range(BURST)))
        reader.wait(lambda: len(flood_numbers(reader)) >= BURST, f"{BURST} messages", 60)
    finally:
        service.close()
        reader.close()
