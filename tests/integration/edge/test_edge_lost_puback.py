"""A PUBACK lost on a link that stays up: the publish is given up after the operation
timeout the config sets (passed to awscrt) and sent again on the same connection, not
left waiting for as long as awscrt would wait by itself."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.wire import Sample, decode


def _remaining_length(data: bytes, at: int) -> tuple[int, int] | None:
    """(length, offset of the body) of the MQTT packet at *at*, or None if incomplete."""
    value, shift = 0, 0
    for i in range(at + 1, min(at + 5, len(data))):
        value |= (data[i] & 0x7F) << shift
        if not data[i] & 0x80:
            return value, i + 1
        shift += 7
    return None


class PubackDropper:
    """A broker for one client at a time (MQTT 3.1.1 or 5): it accepts the CONNECT,
    answers PINGREQs, and acknowledges every QoS 1 PUBLISH but the first telemetry one;
    it records when each telemetry message arrived."""

    def __init__(self) -> None:
        self.telemetry: list[tuple[float, str]] = []
        self.accepted = 0
        self._dropped = False
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"mqtt://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        data, level = b"", 4
        try:
            while chunk := conn.recv(65536):
                data += chunk
                while (parsed := _remaining_length(data, 0)) and len(data) >= sum(parsed):
                    length, body = parsed
                    packet, data = data[: body + length], data[body + length :]
                    level = self._answer(conn, packet[0], packet[body:], level)
        except OSError:
            pass
        finally:
            conn.close()

    def _answer(self, conn: socket.socket, header: int, body: bytes, level: int) -> int:
        kind = header >> 4
        if kind == 1:  # CONNECT: b"\x00\x04MQTT" then the protocol level
            level = body[6]
            conn.sendall(b"\x20\x03\x00\x00\x00" if level == 5 else b"\x20\x02\x00\x00")
        elif kind == 12:  # PINGREQ
            conn.sendall(b"\xd0\x00")
        elif kind == 8:  # SUBSCRIBE: granted QoS 1 for each filter
            conn.sendall(b"\x90\x03" + body[:2] + b"\x01")
        elif kind == 3 and (header >> 1) & 3 == 1:
            topic_len = int.from_bytes(body[:2], "big")
            topic = body[2 : 2 + topic_len].decode()
            packet_id = body[2 + topic_len : 4 + topic_len]
            payload = body[4 + topic_len :]
            if level == 5:
                props = _remaining_length(b"\x00" + payload, 0)
                assert props is not None
                payload = payload[sum(props) - 1 :]
            if topic.endswith("/telemetry"):
                with self._lock:
                    self.telemetry.append((time.monotonic(), decode(payload).msg_id))
                    drop, self._dropped = not self._dropped, True
                if drop:
                    return level
            conn.sendall(b"\x40\x02" + packet_id)
        return level

    def close(self) -> None:
        self._listener.close()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_a_lost_puback_is_sent_again_after_the_configured_operation_timeout(
    tmp_path: Path, protocol: str
) -> None:
    """GIVEN a broker that loses the PUBACK of one publish and keeps the link up (the
    agent's no-PUBACK watchdog set far off, so it does not reconnect)
    WHEN the operation timeout is 2 s
    THEN that message is sent again about 2 s later on the same connection, and acknowledged."""
    broker = PubackDropper()
    agent = Agent(
        AgentConfig(
            site="s",
            sender="gw-lost",
            broker_url=broker.url,
            queue_path=str(tmp_path / "q.db"),
            assets=("d1",),
            protocol=protocol,
            shadow=False,
            max_batch_delay_s=0.05,
            ack_timeout_s=120.0,
            operation_timeout_s=2.0,
        ),
        SystemClock(),
    )
    agent.start()
    try:
        agent.submit("d1", [Sample(1_700_000_000_000, {"x": 1.0})])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and agent.status()["queue_depth"]:
            time.sleep(0.05)
        status = agent.status()
        assert status["queue_depth"] == 0, status
        (first, msg_id), (again, same) = broker.telemetry[:2]
        assert same == msg_id
        assert 1.5 <= again - first <= 6.0, again - first
        assert status["connects"] == 1 and broker.accepted == 1, status
    finally:
        agent.stop(flush=False, timeout=2)
        broker.close()


def test_the_operation_timeout_is_25_s_unless_told_and_reaches_the_transport(
    tmp_path: Path,
) -> None:
    """A lost PUBACK costs 25 s by default, not awscrt's own wait; 50 s at most."""
    config = AgentConfig(
        site="s",
        sender="gw",
        broker_url="mqtt://127.0.0.1:1",
        queue_path=str(tmp_path / "q.db"),
        assets=("d1",),
        shadow=False,
    )
    agent = Agent(config, SystemClock())
    try:
        assert agent.transport.operation_timeout_ms == 25_000
    finally:
        agent.buffer.close()
