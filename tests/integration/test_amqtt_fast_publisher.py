"""A publisher faster than the amqtt broker can route must not take the broker's memory.

The flooder is a raw client that writes 200 MB of 4 KB QoS 0 PUBLISHes to a topic with one
subscriber as fast as its sockets take them, as a runaway or hostile device would, on four
connections: amqtt reads one packet of a connection per turn of its event loop and routes
one per turn, so a single connection happens to be read in step with routing, and two or
more outrun it (150 MB of growth measured for these four). What the broker has read and
not yet routed is bounded per connection (docs/protocol.md: a connection past 100 messages
or 512 KiB of payload unrouted is not read from until the broker has routed half of them),
and what it holds for the reading subscriber is bounded as in
test_amqtt_slow_subscriber (2,000 messages or 8 MiB, about 12 MB measured there), so the
broker's RSS may grow by at most 48 MB: those two bounds, the socket buffers and room for
the allocator. Unbounded, it grew with what was queued. Another client's QoS 1 publish,
a device's and a service client's (``--service-client``), is acknowledged within 2 s all
through the flood.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from raw_mqtt import RawClient
from test_amqtt_slow_subscriber import PeakRss, remaining_length

from cloud.runtime.broker import EmbeddedBroker

TOPIC = "dt/plantwatch/s1/flood/telemetry"
PAYLOAD_BYTES = 4096
FLOOD_BYTES = 200 * 1024 * 1024
FLOOD_CONNECTIONS = 4
SERVICE = "plantwatch-streaming"
PACKETS_PER_WRITE = 64
RSS_GROWTH_BOUND_MB = 48
PUBACK_BOUND_S = 2.0
pytestmark = pytest.mark.slow


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker("amqtt", service_clients=(SERVICE,)) as running:
        yield running


def raw_connect(broker: EmbeddedBroker, client_id: str) -> socket.socket:
    sock = socket.create_connection((broker.host, broker.port), timeout=5)
    name = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x01\x2c" + len(name).to_bytes(2, "big") + name
    sock.sendall(b"\x10" + remaining_length(len(body)) + body)
    assert sock.recv(4) == b"\x20\x02\x00\x00", "CONNACK accepted"
    return sock


def qos0_publishes(count: int) -> bytes:
    topic = TOPIC.encode()
    body = len(topic).to_bytes(2, "big") + topic + bytes(PAYLOAD_BYTES)
    return (b"\x30" + remaining_length(len(body)) + body) * count


class Drain:
    """A subscriber that reads everything it is sent, as fast as it can."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.received = sock, 0
        sock.settimeout(None)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while chunk := self.sock.recv(1 << 20):
                self.received += len(chunk)
        except OSError:
            return


class Flood:
    """Writes *size* bytes of QoS 0 PUBLISHes as fast as the socket takes them."""

    def __init__(self, sock: socket.socket, size: int) -> None:
        self.sock, self.size, self.sent, self.error = sock, size, 0, None
        sock.settimeout(None)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        chunk = qos0_publishes(PACKETS_PER_WRITE)
        try:
            while self.sent < self.size:
                self.sock.sendall(chunk)
                self.sent += len(chunk)
        except OSError as exc:
            self.error = exc

    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, seconds: float) -> bool:
        self._thread.join(seconds)
        return not self._thread.is_alive()


def test_a_publisher_faster_than_the_broker_routes_holds_a_bounded_share_of_it(
    broker: EmbeddedBroker,
) -> None:
    """GIVEN a topic with one subscriber that reads
    WHEN a raw client writes 200 MB of QoS 0 publishes to it on four connections, as fast
    as its sockets go
    THEN the broker's RSS grows by less than the bound, nothing closes the flooder, and a
    well-behaved device and a service client on connections of their own have each QoS 1
    publish acknowledged within 2 s."""
    subscriber = raw_connect(broker, "flood-reader")
    topic = TOPIC.encode()
    body = b"\x00\x01" + len(topic).to_bytes(2, "big") + topic + b"\x00"
    subscriber.sendall(b"\x82" + remaining_length(len(body)) + body)
    assert subscriber.recv(5) == bytes([0x90, 3, 0, 1, 0]), "SUBACK granted"
    drain = Drain(subscriber)
    steady = [
        RawClient(broker.host, broker.port, client_id="steady-device"),
        RawClient(
            broker.host,
            broker.port,
            client_id=SERVICE,
            username=SERVICE,
            password=broker.service_secret,
        ),
    ]
    assert broker.pid is not None
    rss = PeakRss(broker.pid)
    floods = [
        Flood(raw_connect(broker, f"flooder-{n}"), FLOOD_BYTES // FLOOD_CONNECTIONS)
        for n in range(FLOOD_CONNECTIONS)
    ]
    latencies: list[float] = []
    try:
        while any(flood.running() for flood in floods) and len(latencies) < 800:
            for client in steady:
                started = time.monotonic()
                acked = client.publish("dt/plantwatch/s1/steady/telemetry", b"{}", timeout=10)
                latencies.append(time.monotonic() - started if acked else float("inf"))
            time.sleep(0.2)
        sent = sum(flood.sent for flood in floods)
        assert all(flood.join(300) for flood in floods), f"flood running: {sent >> 20} MB sent"
        growth = rss.growth()
    finally:
        for client in steady:
            client.close()
        for flood in floods:
            flood.sock.close()
        subscriber.close()
    errors = [flood.error for flood in floods if flood.error is not None]
    assert not errors, f"flooder cut off: {errors}"
    assert drain.received > 0, "the subscriber got the flood"
    assert latencies, "the flood ended before the steady client published"
    assert max(latencies) < PUBACK_BOUND_S, (
        f"a QoS 1 PUBACK took {max(latencies):.1f} s during the flood "
        f"({len(latencies)} publishes; bound {PUBACK_BOUND_S} s)"
    )
    assert growth < RSS_GROWTH_BOUND_MB, (
        f"broker RSS grew {growth:.0f} MB under a {FLOOD_BYTES >> 20} MB flood "
        f"(bound {RSS_GROWTH_BOUND_MB} MB)"
    )
