"""What the ingest-path tests share: a subscriber the test loops itself (the rules runner's
MQTT side: persistent session, manual acks), and ``plantwatch up`` run as a process that a
test can SIGKILL and start again.

Used by tests/integration/test_amqtt_durable_ack.py, test_amqtt_redelivery.py,
tests/chaos/test_up_kill_acked.py and tests/e2e/test_archive_crash.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt

from cloud.adapters.local.mqtt_url import BrokerAddress
from cloud.runtime.broker import EmbeddedBroker

TREE = Path(__file__).resolve().parent.parent
"""The checkout under test, which a started ``plantwatch up`` must import."""


class LoopedSubscriber:
    """A paho client with a persistent session and manual acks whose network loop runs on
    the test thread (``loop_until``/``loop_for``), so the test decides when it acks and when
    it dies."""

    def __init__(
        self,
        broker: EmbeddedBroker | BrokerAddress,
        client_id: str,
        *,
        subscribe: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.received: list[mqtt.MQTTMessage] = []
        self.session_present: bool | None = None
        self.subscribed = False
        self.timeout = timeout
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            manual_ack=True,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_a: setattr(self, "subscribed", True)
        self.client.on_message = lambda _c, _u, msg: self.received.append(msg)
        self.client.connect(broker.host, broker.port, keepalive=60)
        assert self.loop_until(lambda: self.session_present is not None)
        if subscribe is not None:
            self.subscribe(subscribe)

    def _on_connect(
        self, _c: mqtt.Client, _u: object, flags: mqtt.ConnectFlags, *_a: object
    ) -> None:
        self.session_present = flags.session_present

    def loop_until(self, done: Callable[[], bool], timeout: float | None = None) -> bool:
        """Run the network loop until ``done()``; False on timeout, so callers can show more."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not done():
            if time.monotonic() >= deadline:
                return False
            self.client.loop(0.05)
        return True

    def loop_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.client.loop(0.05)

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, 1)
        assert self.loop_until(lambda: self.subscribed)

    def payloads(self) -> list[bytes]:
        return [m.payload for m in self.received]

    def ack_all(self) -> None:
        for msg in self.received:
            self.client.ack(msg.mid, 1)
        self.loop_for(0.2)

    def kill(self) -> None:
        """Drop the TCP connection without DISCONNECT, as the kernel does for a killed
        process, and give the broker time to notice, so later messages are kept for the
        session."""
        sock = self.client.socket()
        assert sock is not None
        sock.close()
        time.sleep(0.5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop(0.05)


def start_up(data: Path, *options: str) -> subprocess.Popen[str]:
    """``plantwatch up --data DATA OPTIONS...`` as a child process of this checkout, once it
    has printed its ``broker: URL`` line; stderr is dropped, stdout is a pipe."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloud.cli.main", "up", "--data", str(data), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(TREE)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("broker: "), "up did not start"
    return proc
