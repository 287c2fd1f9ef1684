"""A thing with no shadow gets one from its device.

AWS's device guide ("Using shadows in devices", initializing the device on first connection):
a device GETs each shadow it supports and, on ``/get/rejected``, creates it by publishing an
``/update`` with its current state. A shadow an operator deleted is made again the same way
when the device next connects, so the cloud side sees what the device is doing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from edge_helpers import shadow_agent
from tcp_gate import TcpGate
from waiting import wait_for

from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.client import ShadowClient
from cloud.shadow.service import ShadowService
from edge.agent import Agent
from edge.clock import SystemClock
from edge.errors import NotFoundError

THING = "pump-7"


def _agent(url: str, tmp_path: Path) -> Agent:
    return shadow_agent(
        url, tmp_path, THING, sender="gw-7", sampling_interval_s=2.5, backoff_max_s=0.3
    )


@pytest.fixture
def service(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[ShadowClient]:
    with (
        ShadowService(broker.url, str(tmp_path / "shadows.db"), SystemClock(), limits=False),
        ShadowClient(broker.url, "operator") as operator,
    ):
        yield operator


def _shadow(operator: ShadowClient) -> dict[str, Any] | None:
    try:
        return operator.get(THING)
    except NotFoundError:
        return None


def _reported(operator: ShadowClient) -> dict[str, Any]:
    shadow = _shadow(operator)
    return (shadow or {}).get("state", {}).get("reported", {})


def test_a_device_without_a_shadow_creates_it_with_its_current_state(
    broker: EmbeddedBroker, tmp_path: Path, service: ShadowClient
) -> None:
    assert _shadow(service) is None
    agent = _agent(broker.url, tmp_path)
    agent.start()
    try:
        wait_for(lambda: _shadow(service) is not None, 15)
        shadow = _shadow(service)
        assert shadow is not None
        assert shadow["state"] == {"reported": {"sampling_interval_s": 2.5}}
        assert shadow["version"] == 1
        # the shadow now carries commands to the device as usual
        service.update(THING, desired={"mode": "safe"})
        assert agent.shadow is not None and agent.shadow.wait_applied(THING, "mode", "safe", 10)
        wait_for(lambda: _reported(service).get("mode") == "safe", 10)
    finally:
        agent.stop(flush=False, timeout=2)


def test_a_shadow_deleted_by_an_operator_is_made_again_with_what_the_device_applied(
    broker: EmbeddedBroker, tmp_path: Path, service: ShadowClient
) -> None:
    gate = TcpGate(broker.host, broker.port)
    agent = _agent(gate.url, tmp_path)
    agent.start()
    try:
        service.update(THING, desired={"mode": "stop", "sampling_interval_s": 4})
        wait_for(lambda: _shadow(service) is not None, 15)
        wait_for(lambda: _reported(service).get("mode") == "stop", 15)
        service.delete(THING)
        gate.cut_and_close()
        wait_for(lambda: not agent.status()["connected"], 10)
        gate.open()
        wait_for(lambda: _shadow(service) is not None, 15)
        shadow = _shadow(service)
        assert shadow is not None
        assert shadow["state"] == {"reported": {"mode": "stop", "sampling_interval_s": 4}}
    finally:
        agent.stop(flush=False, timeout=2)
        gate.close()


def test_a_404_that_answers_no_get_of_the_agent_creates_nothing(
    broker: EmbeddedBroker, tmp_path: Path, service: ShadowClient
) -> None:
    """Only the answer to the agent's own GET (its clientToken) says the shadow is missing; a
    stale or forged 404 is not a reason to write."""
    agent = _agent(broker.url, tmp_path)
    agent.start()
    peer = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="forger")
    peer.connect(broker.host, broker.port)
    peer.loop_start()
    try:
        wait_for(lambda: _shadow(service) is not None, 15)
        assert agent.shadow is not None
        reports = agent.shadow.reports
        service.delete(THING)
        forged = {"code": 404, "message": f"No shadow exists with name: '{THING}'"}
        for body in (forged, {**forged, "clientToken": "not-a-token-of-the-agent"}):
            peer.publish(
                f"$aws/things/{THING}/shadow/get/rejected", json.dumps(body), qos=1
            ).wait_for_publish(10)
        service.update(THING, desired={"mode": "safe"})  # a delta after the forged answers
        assert agent.shadow.wait_applied(THING, "mode", "safe", 10)
        wait_for(lambda: _reported(service) == {"mode": "safe"}, 10)
        assert agent.shadow.reports == reports + 1
    finally:
        peer.loop_stop()
        peer.disconnect()
        agent.stop(flush=False, timeout=2)
