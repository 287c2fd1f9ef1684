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


def _subscriber(
    url: str, n: int, qos: int, ready: mp.Event, out: mp.Queue, client: str = "paho"
) -> None:
    if client == "paho":
        _paho_subscriber(url, n, qos, ready, out)
    else:
        _crt_subscriber(url, n, ready, out)


def _crt_subscriber(url: str, n: int, ready: mp.Event, out: mp.Queue) -> None:
    """awscrt's MQTT 5 client as the rules runner builds it, acknowledging each message as
    it arrives: the runner's network thread with none of the runner's work."""
    from cloud.rules.transport import CrtTransport

    count = 0
    first = last = 0.0
    done = threading.Event()
    transport: CrtTransport | None = None

    def on_message(generation: int, message: Any) -> None:
        nonlocal count, first, last
        now = time.perf_counter()
        if count == 0:
            first = now
        count += 1
        last = now
        transport.ack(generation, message)  # type: ignore[union-attr]
        if count >= n:
            done.set()

    transport = CrtTransport(
        parse_broker_url(url), f"bench-sub-{time.time_ns()}", [TOPIC], on_message, Counter()
    )
    transport.connect(30)
    cpu = time.process_time()
    ready.set()
    done.wait(timeout=max(60.0, n / 200))
    out.put((count, last - first, time.process_time() - cpu))
    transport.close()


def _paho_subscriber(url: str, n: int, qos: int, ready: mp.Event, out: mp.Queue) -> None:
    address = parse_broker_url(url)
    count = 0
    first = last = 0.0
    done = threading.Event()
    cpu = 0.0

    def on_subscribe(*_args: object) -> None:
        nonlocal cpu
        cpu = time.process_time()
        ready.set()  # only then may the publisher start

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        nonlocal count, first, last
        now = time.perf_counter()
        if count == 0:
            first = now
        count += 1
        last = now
        if count >= n:
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{time.time_ns()}")
    address.apply(client)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(TOPIC, qos)
    client.on_subscribe = on_subscribe
    client.connect(address.host, address.port, keepalive=60)
    client.loop_start()
    done.wait(timeout=max(60.0, n / 200))
    out.put((count, last - first, time.process_time() - cpu))
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
