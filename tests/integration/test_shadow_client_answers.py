"""ShadowClient against answers no shadow service should send: a caller gets a plantwatch
error or its real answer, never a Python error from reading a malformed one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.client import ShadowClient, ShadowRejectedError
from edge.errors import PlantwatchError

THING = "pump-answers"
REQUEST = f"$aws/things/{THING}/shadow/get"


class FakeService:
    """Answers each get on the classic shadow of THING with the queued raw payloads."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.answers: list[tuple[str, bytes]] = []
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        subscribed = threading.Event()
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_a: subscribed.set()
        self._client.on_connect = lambda c, *_a: c.subscribe(REQUEST, 1)
        self._client.connect(host, int(port))
        self._client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, client: mqtt.Client, _u: Any, _m: mqtt.MQTTMessage) -> None:
        for suffix, payload in self.answers:
            client.publish(f"{REQUEST}/{suffix}", payload, qos=1)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@pytest.fixture
def fake(broker: EmbeddedBroker) -> Iterator[FakeService]:
    running = FakeService(broker.url)
    yield running
    running.close()


def _get(client: ShadowClient) -> Future[Any]:
    """An untokened get (a raw body), which any answer on the get topics completes."""
    outcome: Future[Any] = Future()

    def run() -> None:
        try:
            outcome.set_result(client.request(THING, None, "get", b"{}"))
        except BaseException as exc:
            outcome.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return outcome


@pytest.mark.parametrize("code", [b'"400"', b"null", b"4.5e1", b"true", b"[404]"])
def test_a_rejection_whose_code_is_no_integer_is_a_plantwatch_error(broker, fake, code):
    fake.answers = [("rejected", b'{"code":' + code + b',"message":"bad"}')]
    with (
        ShadowClient(broker.url, timeout=5.0) as client,
        pytest.raises(ShadowRejectedError) as caught,
    ):
        _get(client).result(10)
    assert (caught.value.code, caught.value.message) == (500, "bad")


@pytest.mark.parametrize(
    "unreadable", [b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"[" * 5000 + b"]" * 5000]
)
def test_an_unreadable_answer_is_logged_and_dropped_and_the_real_one_still_answers(
    broker, fake, unreadable, caplog
):
    fake.answers = [("accepted", unreadable), ("accepted", b'{"version": 3, "state": {}}')]
    with ShadowClient(broker.url, timeout=5.0) as client, caplog.at_level(logging.WARNING):
        assert _get(client).result(10)["version"] == 3
        assert client.counts["unreadable_answers"] == 1
        assert client.counts["callback_errors"] == 0
    assert any(
        f"{REQUEST}/accepted" in r.getMessage() and "unreadable" in r.getMessage()
        for r in caplog.records
    )


def test_a_request_answered_only_unreadably_says_so_when_it_times_out(broker, fake):
    fake.answers = [("accepted", b"not json")]
    with (
        ShadowClient(broker.url, timeout=1.0) as client,
        pytest.raises(PlantwatchError) as caught,
    ):
        _get(client).result(10)
    assert "unreadable" in str(caught.value)
    assert "is the shadow service running" not in str(caught.value)
