"""Stopping a paho client does not wait out paho's select timeout.

Stopping the network thread before disconnecting left it blocked in select() for up to
paho's 1 s timeout whenever it got back into select first: every cloud-side client's close
could take a second, and ``bench ingest``'s raw-broker baseline, which timed it, swung
between two modes 2.7x apart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from cloud.adapters.local.mqtt_url import stop_client
from cloud.runtime.broker import EmbeddedBroker, parse_broker_url

TOPIC = "dt/plantwatch/bench/stop/telemetry"


def _connected(url: str, name: str, on_message: Callable[..., None] | None = None) -> mqtt.Client:
    address = parse_broker_url(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_a: subscribed.set()
    if on_message is not None:
        client.on_message = on_message
        client.on_connect = lambda c, *_a: c.subscribe(TOPIC, 1)
    else:
        client.on_connect = lambda *_a: subscribed.set()
    client.connect(address.host, address.port, keepalive=30)
    client.loop_start()
    assert subscribed.wait(10)
    return client


def test_stopping_right_after_a_message_does_not_wait_for_the_select_timeout(
    broker: EmbeddedBroker,
) -> None:
    """The bench's pattern: the last message wakes the main thread, which stops at once.

    With the old order about half the stops took up to a second, so ten fast stops
    in a row do not happen by luck."""
    publisher = _connected(broker.url, "t-stop-pub")
    try:
        for attempt in range(10):
            got = threading.Event()
            subscriber = _connected(
                broker.url, f"t-stop-sub-{attempt}", lambda *_a, done=got: done.set()
            )
            publisher.publish(TOPIC, b"x", qos=1).wait_for_publish(10)
            assert got.wait(10)
            began = time.perf_counter()
            stop_client(subscriber)
            assert time.perf_counter() - began < 0.5
            assert not subscriber.is_connected()
    finally:
        stop_client(publisher)
