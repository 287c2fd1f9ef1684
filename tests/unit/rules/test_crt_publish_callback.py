"""The awscrt transport's publish callback, driven through awscrt's own Python layer (no
broker): it takes the PUBACK under manual control before anything can fail, so a message
it could not queue is never acknowledged, and an exception does not escape into awscrt."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest
from awscrt import mqtt5

from cloud.adapters.local.mqtt_url import parse_broker_url
from cloud.rules.runner import RulesRunner
from cloud.rules.transport import CrtTransport, Delivery
from edge.errors import ConfigError

TOPIC = "dt/plantwatch/s1/pump/telemetry"


def deliver_through_awscrt(transport: CrtTransport, payload: bytes, qos: int, control_id: int):
    """What awscrt's native side calls for one PUBLISH; True means 'the app took the ack'."""
    core = mqtt5._ClientCore(mqtt5.ClientOptions(host_name="x", on_publish_callback_fn=transport._on_publish))  # fmt: skip
    return core._on_publish(payload, qos, False, TOPIC, False, 0, False, 0, False, 0, None, None, None, None, None, control_id)  # fmt: skip


def transport(on_message: Any, counts: Counter[str]) -> CrtTransport:
    address = parse_broker_url("mqtt://127.0.0.1:1")
    return CrtTransport(address, "unit", ["dt/#"], on_message, counts)


def test_a_qos1_message_is_queued_with_its_ack_handle_and_the_ack_is_left_to_the_runner():
    got: list[tuple[int, Delivery]] = []
    crt = transport(lambda generation, message: got.append((generation, message)), Counter())
    assert deliver_through_awscrt(crt, b"{}", qos=1, control_id=7) is True
    ((generation, message),) = got
    assert (generation, message.topic, message.payload) == (0, TOPIC, b"{}")
    assert message.handle._control_id == 7


def test_a_callback_that_fails_leaves_the_message_unacknowledged_and_is_counted(
    caplog: pytest.LogCaptureFixture,
):
    counts: Counter[str] = Counter()

    def full(_generation: int, _message: Delivery) -> None:
        raise RuntimeError("inbox broke")

    crt = transport(full, counts)
    with caplog.at_level(logging.ERROR):
        assert deliver_through_awscrt(crt, b"{}", qos=1, control_id=9) is True
    assert counts["callback_errors"] == 1
    assert "on_publish raised" in caplog.text


class SpyHandle:
    """Records each time the transport reads the control id, i.e. tries to send the ack."""

    def __init__(self) -> None:
        self.reads = 0

    @property
    def _control_id(self) -> int:
        self.reads += 1
        return 1


def test_an_ack_is_sent_only_on_the_connection_the_message_arrived_on():
    crt = transport(lambda *_a: None, Counter())
    crt.generation = 2
    stale, current = SpyHandle(), SpyHandle()
    crt.ack(1, Delivery(TOPIC, b"{}", stale))
    crt.ack(2, Delivery(TOPIC, b"{}", current))
    assert (stale.reads, current.reads) == (0, 1)


def test_an_unknown_client_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="client 'mosq': expected one of auto, paho, crt"):
        RulesRunner("mqtt://127.0.0.1:1", [], None, None, client="mosq")  # type: ignore[arg-type]
