"""What a publisher's PUBACK confirmed reaches the subscribers, even when it disconnects at once.

amqtt 0.12.1 reads a connection's PUBLISHes into the session's queue and acknowledges them
there; its client loop then routes them one per turn. On a DISCONNECT the loop ended and
what was still queued was never routed: acknowledged QoS 1 messages lost without a word.
The simulator's fleet publisher (flush, then close) lost up to 27 of 30 messages on Python
3.12 and 3.13, whose event loops let the reader run ahead of the routing.
"""

from __future__ import annotations

import socket

from raw_mqtt import RawClient
from test_amqtt_slow_subscriber import remaining_length
from waiting import wait_for

from cloud.runtime.broker import EmbeddedBroker

TOPIC = "dt/plantwatch/s1/leaver/telemetry"
MESSAGES = 200


def _packet(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + remaining_length(len(body)) + body


def _connect(client_id: str) -> bytes:
    name = client_id.encode()
    return _packet(0x10, b"\x00\x04MQTT\x04\x02\x00\x3c" + len(name).to_bytes(2, "big") + name)


def _publish_qos1(packet_id: int, payload: bytes) -> bytes:
    topic = TOPIC.encode()
    return _packet(
        0x32, len(topic).to_bytes(2, "big") + topic + packet_id.to_bytes(2, "big") + payload
    )


def _read_until_closed(sock: socket.socket) -> bytes:
    got = b""
    while chunk := sock.recv(65536):
        got += chunk
    return got


def test_every_acknowledged_message_is_routed_when_the_publisher_disconnects_at_once() -> None:
    with EmbeddedBroker("amqtt") as broker:
        subscriber = RawClient(broker.host, broker.port)
        try:
            assert subscriber.subscribe([TOPIC]) == [True]
            data = _connect("leaver")
            data += b"".join(_publish_qos1(i, b'{"n":%d}' % i) for i in range(1, MESSAGES + 1))
            data += b"\xe0\x00"  # DISCONNECT, in the same write
            with socket.create_connection((broker.host, broker.port), timeout=10) as sock:
                sock.sendall(data)
                replies = _read_until_closed(sock)
            pubacks = replies.count(b"\x40\x02")
            assert pubacks == MESSAGES, f"{pubacks} PUBACKs of {MESSAGES}"
            wait_for(lambda: len(subscriber.received(TOPIC)) >= MESSAGES, 10)
            got = subscriber.received(TOPIC)
            assert [int(p[5:-1]) for p in got] == list(range(1, MESSAGES + 1))
        finally:
            subscriber.close()
