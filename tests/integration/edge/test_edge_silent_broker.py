"""A broker that accepts the TCP connection and then never answers the CONNECT.

GIVEN a listener that takes the agent's connections and says nothing (an overloaded broker,
a proxy with no upstream), the agent must give each CONNECT up after its CONNACK timeout,
try again with backoff and no more than one CONNECT a second (IoT Core's quota per client
id, iot-core-rules-and-limits §3), keep its durable queue, and deliver everything once the
broker answers. An attempt it gave up must leave nothing behind: a client still reconnecting
on its own with the agent's client id takes the id over from the agent's live connection
(§2: a second connection with the same id disconnects the first), again and again.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import pytest
from edge_helpers import Receiver
from tcp_gate import TcpGate

from cloud.runtime.broker import EmbeddedBroker
from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.wire import Sample

pytestmark = pytest.mark.mosquitto

SILENT_S = 8.0
SETTLE_S = 5.0


@pytest.mark.parametrize(
    ("protocol", "ping_timeout_ms"),
    [
        ("3.1.1", 3000),
        ("5", 3000),
        ("auto", 3000),
    ],
)
def test_a_broker_that_never_answers_connect_is_retried_with_backoff_and_loses_nothing(
    protocol: str, ping_timeout_ms: int, tmp_path: Path
) -> None:
    with EmbeddedBroker("mosquitto") as broker:
        receiver = Receiver(broker.host, broker.port, client_id=f"rx-silent-{protocol}")
        gate = TcpGate(broker.host, broker.port)
        gate.hold()  # connections are accepted; not one byte reaches the broker
        agent = Agent(
            AgentConfig(
                site="s",
                sender="gw-silent",
                broker_url=gate.url,
                queue_path=str(tmp_path / "q.db"),
                assets=("d1",),
                protocol=protocol,
                ping_timeout_ms=ping_timeout_ms,
                shadow=False,
                max_batch_delay_s=0.05,
                backoff_min_s=0.05,
                backoff_max_s=1.0,
            ),
            SystemClock(),
        )
        agent.start()
        try:
            agent.submit("d1", [Sample(1_700_000_000_000 + i, {"x": float(i)}) for i in range(50)])
            started = time.monotonic()
            time.sleep(SILENT_S)
            status = agent.status()
            assert status["connects"] == 0
            assert status["queue_depth"] == 50
            assert "no CONNACK within" in str(status["last_error"]), status["last_error"]
            assert 2 <= gate.accepted <= SILENT_S + 1, (
                f"{gate.accepted} connections in {time.monotonic() - started:.1f} s of silence"
            )

            gate.cut_and_close()  # what the silent broker holds goes; it answers from now on
            released = gate.accepted
            gate.open()
            assert receiver.wait_for(50, 20), receiver.count()
            drained = time.monotonic() + 10  # the PUBACKs may come after the subscriber's copy
            while agent.status()["queue_depth"] and time.monotonic() < drained:
                time.sleep(0.05)
            assert agent.status()["queue_depth"] == 0

            connects = agent.status()["connects"]
            time.sleep(SETTLE_S)
            status = agent.status()
            assert status["connected"] and status["connects"] == connects, status
            assert gate.accepted - released == connects, (
                f"{gate.accepted - released} connections since the broker answered, "
                f"{connects} of them the agent's: an abandoned client is still connecting"
            )
        finally:
            agent.stop(flush=False, timeout=2)
            gate.close()


class SlowConnack:
    """A broker that answers each CONNECT (MQTT 3.1.1) with a CONNACK only after
    *delay_s*, then holds the connection open, answering PINGREQs; it counts connections
    and how many are open."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.accepted = 0
        self.open = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"mqtt://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.open += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if not conn.recv(65536):
                return
            time.sleep(self.delay_s)
            conn.sendall(b"\x20\x02\x00\x00")  # CONNACK: accepted, no session
            while data := conn.recv(65536):
                if data[0] == 0xC0:  # PINGREQ
                    conn.sendall(b"\xd0\x00")
        except OSError:
            pass
        finally:
            conn.close()
            with self._lock:
                self.open -= 1

    def close(self) -> None:
        self._listener.close()


def test_a_late_connack_within_the_ping_timeout_is_waited_for_with_one_connection(
    tmp_path: Path,
) -> None:
    """awscrt's MQTT 3.1.1 client waits for a CONNACK as long as for a PINGRESP. An agent
    that gave up sooner left that client connecting: it got its CONNACK, stayed connected
    with the agent's client id beside the agent's next connection, and the agent counted
    as offline."""
    broker = SlowConnack(delay_s=7.0)
    agent = Agent(
        AgentConfig(
            site="s",
            sender="gw-slow",
            broker_url=broker.url,
            queue_path=str(tmp_path / "q.db"),
            assets=("d1",),
            protocol="3.1.1",
            ping_timeout_ms=20_000,
            shadow=False,
            backoff_min_s=0.05,
            backoff_max_s=1.0,
        ),
        SystemClock(),
    )
    agent.start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not agent.status()["connected"]:
            time.sleep(0.1)
        time.sleep(1)
        assert agent.status()["connected"], agent.status()["last_error"]
        assert (broker.accepted, broker.open) == (1, 1)
    finally:
        agent.stop(flush=False, timeout=2)
        broker.close()


def test_a_broker_that_never_acknowledges_is_left_with_backoff_and_not_blamed_on_the_client_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker that takes the CONNECT and every PUBLISH and acknowledges none: the agent
    gives each connection up after ``ack_timeout_s``, connects again with backoff and keeps
    its queue. It dropped those links itself, so it must not say another client holds its
    client id."""
    caplog.set_level(logging.WARNING, logger="edge.agent")
    broker = SlowConnack(delay_s=0.0)
    agent = Agent(
        AgentConfig(
            site="s",
            sender="gw-mute",
            broker_url=broker.url,
            queue_path=str(tmp_path / "q.db"),
            assets=("d1",),
            protocol="3.1.1",
            shadow=False,
            max_batch_delay_s=0.05,
            ack_timeout_s=1.0,
            backoff_min_s=0.05,
            backoff_max_s=0.5,
        ),
        SystemClock(),
    )
    agent.start()
    try:
        agent.submit("d1", [Sample(1_700_000_000_000 + i, {"x": float(i)}) for i in range(20)])
        deadline = time.monotonic() + 20
        while agent.status()["connects"] < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        status = agent.status()
        assert status["connects"] >= 5, status
        assert status["queue_depth"] == 20
        assert not [r for r in caplog.records if getattr(r, "event", "") == "client_id_taken"]
        assert status["link_drops_in_a_row"] == 0
    finally:
        agent.stop(flush=False, timeout=2)
        broker.close()
