"""Without ``--auth``, a stray client must not take a stack service's client id.

MQTT's session takeover (MQTT-3.1.4-2; IoT Core: "a second connection with the same ID
disconnects the first") lets any client that connects with the id of one of the stack's
own services (the rules runner, the shadow service, the detectors...) disconnect it. With
``--auth`` the client id is the credential's user name, so only the service can use it.
Without it the services present a per-run secret, and a CONNECT with a service's id and
without that secret is refused with CONNACK "identifier rejected"; a device still connects
without credentials.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from mqtt_frames import connect_packet
from raw_mqtt import RawClient

from cloud.runtime.broker import EmbeddedBroker

SERVICE = "plantwatch-rules"
TOPIC = "dt/plantwatch/s1/pump-01/telemetry"
IDENTIFIER_REJECTED = 0x02


@pytest.fixture
def logged() -> list[str]:
    return []


@pytest.fixture
def broker(logged: list[str]) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker("amqtt", service_clients=(SERVICE,), on_log=logged.append) as running:
        yield running


def raw_connect(broker: EmbeddedBroker, packet: bytes) -> bytes:
    """Send the CONNECT *packet* over a raw socket; the broker's answer: the 4 CONNACK
    bytes, or fewer if it closed the connection."""
    with socket.create_connection((broker.host, broker.port), timeout=5) as sock:
        sock.sendall(packet)
        answer = b""
        while len(answer) < 4:
            chunk = sock.recv(4 - len(answer))
            if not chunk:
                break
            answer += chunk
        return answer


def test_a_stray_client_cannot_take_a_services_id(
    broker: EmbeddedBroker, logged: list[str]
) -> None:
    secret = broker.service_secret
    assert secret, "the broker has a per-run secret for the stack's services"
    service = RawClient(
        broker.host, broker.port, client_id=SERVICE, username=SERVICE, password=secret
    )
    try:
        assert service.accepted, service.connect_reason
        assert service.subscribe([TOPIC]) == [True]
        answer = raw_connect(broker, connect_packet(SERVICE))
        assert answer == bytes([0x20, 2, 0, IDENTIFIER_REJECTED]), answer
        wrong = raw_connect(broker, connect_packet(SERVICE, SERVICE, "guess"))
        assert wrong == bytes([0x20, 2, 0, IDENTIFIER_REJECTED]), wrong
        device = RawClient(broker.host, broker.port, client_id="pump-01")
        try:
            assert device.accepted, "a device connects without credentials"
            assert device.publish(TOPIC, b"reading")
        finally:
            device.close()
        assert service.wait_for_message(TOPIC) == b"reading"
        assert service.disconnects == 0, "the service kept its connection"
    finally:
        service.close()
    refusals = [line for line in logged if repr(SERVICE) in line and "stack's own" in line]
    assert refusals, logged
