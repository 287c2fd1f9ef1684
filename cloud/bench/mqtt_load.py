"""Raw broker pub->sub throughput with paho, publisher and subscriber in separate processes.

Used by ``bench broker`` and as the same-run baseline of ``bench ingest``, which also runs
the subscriber on the rules runner's own client (paho or awscrt) for its floor: what that
client costs per message when the only work is the acknowledgement.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from cloud.adapters.local.mqtt_url import parse_broker_url, stop_client

TOPIC = "dt/plantwatch/bench/a1/telemetry"


@dataclass(frozen=True, slots=True)
class LoadResult:
    sent: int
    received: int
    seconds: float
    subscriber_cpu_s: float = 0.0
    """The subscriber process's CPU from its SUBACK until the last message arrived."""

    @property
    def msgs_per_s(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0

    @property
    def subscriber_cpu_us_per_message(self) -> float:
        return 1e6 * self.subscriber_cpu_s / self.received if self.received else 0.0


class _Arrivals:
    """Counts what a subscriber receives, with the first and last arrival times and its
    process CPU from the moment it may receive (:meth:`start`) to the last arrival."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.first = self.last = 0.0
        self.cpu = 0.0
        self.done = threading.Event()

    def start(self, ready: mp.Event) -> None:
        self.cpu = time.process_time()
        ready.set()  # only then may the publisher start

    def arrived(self) -> None:
        now = time.perf_counter()
        if self.count == 0:
            self.first = now
        self.count += 1
        self.last = now
        if self.count >= self.expected:
            self.done.set()

    def report(self, out: mp.Queue) -> None:
        self.done.wait(timeout=max(60.0, self.expected / 200))
        out.put((self.count, self.last - self.first, time.process_time() - self.cpu))


def _subscriber(
    url: str, n: int, qos: int, ready: mp.Event, out: mp.Queue, client: str = "paho"
) -> None:
    arrivals = _Arrivals(n)
    if client == "paho":
        _paho_subscriber(url, qos, ready, out, arrivals)
    else:
        _crt_subscriber(url, ready, out, arrivals)


def _crt_subscriber(url: str, ready: mp.Event, out: mp.Queue, arrivals: _Arrivals) -> None:
    """awscrt's MQTT 5 client as the rules runner builds it, acknowledging each message as
    it arrives: the runner's network thread with none of the runner's work."""
    from cloud.rules.transport import CrtTransport

    transport: CrtTransport | None = None

    def on_message(generation: int, message: Any) -> None:
        arrivals.arrived()
        transport.ack(generation, message)  # type: ignore[union-attr]

    transport = CrtTransport(
        parse_broker_url(url), f"bench-sub-{time.time_ns()}", [TOPIC], on_message, Counter()
    )
    transport.connect(30)
    arrivals.start(ready)
    arrivals.report(out)
    transport.close()


def _paho_subscriber(
    url: str, qos: int, ready: mp.Event, out: mp.Queue, arrivals: _Arrivals
) -> None:
    address = parse_broker_url(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{time.time_ns()}")
    address.apply(client)
    client.on_message = lambda *_: arrivals.arrived()
    client.on_connect = lambda c, *_: c.subscribe(TOPIC, qos)
    client.on_subscribe = lambda *_: arrivals.start(ready)
    client.connect(address.host, address.port, keepalive=60)
    client.loop_start()
    arrivals.report(out)
    stop_client(client)


def pubsub_rate(
    url: str,
    messages: int = 20_000,
    payload_bytes: int = 300,
    qos: int = 1,
    *,
    subscriber_url: str | None = None,
    subscriber_client: str = "paho",
) -> LoadResult:
    """Publish *messages* as fast as the broker acknowledges them; time until all arrive.

    *subscriber_url* lets the subscriber use another credential than the publisher;
    *subscriber_client* ``"crt"`` subscribes with awscrt's MQTT 5 client (QoS 1)."""
    ctx = mp.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    sub = ctx.Process(
        target=_subscriber,
        args=(subscriber_url or url, messages, qos, ready, out, subscriber_client),
        daemon=True,
    )
    sub.start()
    if not ready.wait(30):
        sub.kill()
        raise RuntimeError(f"{url}: subscriber did not connect and subscribe")
    address = parse_broker_url(url)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{time.time_ns()}")
    address.apply(pub)
    pub.max_inflight_messages_set(100)
    pub.max_queued_messages_set(0)
    pub.connect(address.host, address.port, keepalive=60)
    pub.loop_start()
    payload = b"x" * payload_bytes
    start = time.perf_counter()
    last = None
    for _ in range(messages):
        last = pub.publish(TOPIC, payload, qos=qos)
    if last is not None and qos:
        last.wait_for_publish(timeout=120)
    received, _span, cpu_s = out.get(timeout=max(120.0, messages / 200))
    elapsed = time.perf_counter() - start
    sub.join(5)
    stop_client(pub)
    return LoadResult(sent=messages, received=received, seconds=elapsed, subscriber_cpu_s=cpu_s)
