"""Publish topics that no MQTT server may take (MQTT 3.1.1 section 4.7: a topic name has
at least one character, no U+0000, and no wildcard), sent by a careless or hostile device
to the broker as ``plantwatch up`` starts it. IoT Core closes such a connection
("CLIENT_ERROR": the client sent something the protocol does not allow); the broker must
too, answer nothing, route nothing, and keep serving everyone else."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from raw_mqtt import RawClient

from cloud.runtime.broker import EmbeddedBroker

MOSQUITTO = pytest.param("mosquitto", marks=pytest.mark.mosquitto)


@pytest.fixture(scope="module", params=["amqtt", MOSQUITTO])
def broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(request.param) as running:
        yield running


def connected(broker: EmbeddedBroker, client_id: bytes) -> socket.socket:
    sock = socket.create_connection((broker.host, broker.port), timeout=5)
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id
    sock.sendall(bytes([0x10, len(body)]) + body)
    assert sock.recv(4) == b"\x20\x02\x00\x00", "CONNACK accepted"
    return sock


def answer(sock: socket.socket) -> bytes:
    """What the broker sends next: b"" once it closed the connection."""
    try:
        return sock.recv(16)
    except ConnectionResetError:
        return b""
    except TimeoutError:
        return b"(nothing within 5 s, connection still open)"


@pytest.mark.parametrize(
    "topic",
    [
        b"dt/plantwatch/+/pump/telemetry",
        b"dt/plantwatch/s1/pump/#",
        b"+",
        b"",
        b"dt/plantwatch/s1/\x00/telemetry",
    ],
    ids=["plus", "hash", "lone-plus", "empty", "nul"],
)
def test_a_publish_to_a_topic_mqtt_forbids_closes_the_connection(
    broker: EmbeddedBroker, topic: bytes
) -> None:
    listener = RawClient(broker.host, broker.port)
    listener.subscribe(["#"])
    sender = connected(broker, b"careless")
    body = len(topic).to_bytes(2, "big") + topic + b"\x00\x07" + b'{"v":1}'
    sender.sendall(bytes([0x32, len(body)]) + body)
    assert answer(sender) == b"", "no PUBACK, connection closed"
    sender.close()
    after = RawClient(broker.host, broker.port)
    assert after.publish("x/after", b"ok")
    assert listener.wait_for_message("x/after") == b"ok"
    assert [t for t, _p in listener.messages] == ["x/after"], "the bad publish went nowhere"
    after.close()
    listener.close()


@pytest.mark.parametrize(
    "topic_filter", [b"", b"dt/\x00/#", b"dt/#/x", b"dt+/x"], ids=["empty", "nul", "hash", "plus"]
)
def test_a_subscription_to_a_filter_mqtt_forbids_is_refused(
    broker: EmbeddedBroker, topic_filter: bytes
) -> None:
    """MQTT 3.1.1 section 4.7: a SUBACK failure code (amqtt) or a closed connection
    (mosquitto), never a grant."""
    sock = connected(broker, b"careless-sub")
    body = b"\x00\x08" + len(topic_filter).to_bytes(2, "big") + topic_filter + b"\x01"
    sock.sendall(bytes([0x82, len(body)]) + body)
    assert answer(sock) in (b"", b"\x90\x03\x00\x08\x80")
    sock.close()
