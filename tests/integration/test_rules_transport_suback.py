"""The paho transport's ``connect`` returns only once the broker has acknowledged the
subscription: a message another client publishes right after ``RulesRunner.start`` would
otherwise reach the broker before the SUBSCRIBE and go to no one (seen on a loaded CI
machine). A one-connection MQTT 3.1.1 stand-in holds the SUBACK back to show the order."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from cloud.adapters.local.mqtt_url import parse_broker_url
from cloud.rules.transport import PahoTransport
from edge.errors import PlantwatchError


class HeldSubackBroker:
    """Accepts one client, answers CONNECT at once and SUBSCRIBE after *delay_s*."""

    def __init__(self, delay_s: float, return_code: int = 0x01) -> None:
        self.delay_s = delay_s
        self.return_code = return_code
        self.suback_sent = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._conn: socket.socket | None = None

    def _read_packet(self, conn: socket.socket) -> tuple[int, bytes]:
        header = conn.recv(1)[0]
        length, shift = 0, 0
        while True:
            byte = conn.recv(1)[0]
            length += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        body = b""
        while len(body) < length:
            body += conn.recv(length - len(body))
        return header, body

    def _serve(self) -> None:
        conn, _ = self._server.accept()
        self._conn = conn
        header, _ = self._read_packet(conn)
        assert header >> 4 == 1  # CONNECT
        conn.sendall(bytes([0x20, 0x02, 0x00, 0x00]))
        header, body = self._read_packet(conn)
        assert header >> 4 == 8  # SUBSCRIBE
        time.sleep(self.delay_s)
        self.suback_sent.set()
        conn.sendall(bytes([0x90, 0x03]) + body[:2] + bytes([self.return_code]))
        try:
            while conn.recv(1024):
                pass
        except OSError:
            pass

    def __enter__(self) -> HeldSubackBroker:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
        self._server.close()


@pytest.fixture
def counts() -> Iterator[Counter[str]]:
    yield Counter()


def transport_to(port: int, counts: Counter[str]) -> PahoTransport:
    address = parse_broker_url(f"mqtt://127.0.0.1:{port}")
    return PahoTransport(address, "rules-held", ["dt/#"], lambda *_a: None, counts)


def test_connect_returns_only_after_the_suback(counts: Counter[str]) -> None:
    with HeldSubackBroker(delay_s=0.5) as broker:
        transport = transport_to(broker.port, counts)
        try:
            transport.connect(5)
            assert broker.suback_sent.is_set(), "connect returned before the SUBACK"
            assert transport.ready
        finally:
            transport.close()


def test_a_refused_subscription_fails_the_connect(counts: Counter[str]) -> None:
    with HeldSubackBroker(delay_s=0.0, return_code=0x80) as broker:
        transport = transport_to(broker.port, counts)
        with pytest.raises(PlantwatchError, match="refused the rules' subscriptions"):
            transport.connect(1)
        assert not transport.ready
