"""What a device's shadow topics can carry that it must survive: the agent against the
real shadow service and a hostile peer publishing on its shadow topics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from edge_helpers import shadow_agent
from waiting import wait_for

from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.client import ShadowClient
from cloud.shadow.service import ShadowService
from edge.agent import Agent
from edge.clock import SystemClock
from edge.errors import NotFoundError

THING = "pump-1"
TOPIC = f"$aws/things/{THING}/shadow"


@pytest.fixture
def stack(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[tuple[Agent, ShadowClient, Any]]:
    with (
        ShadowService(broker.url, str(tmp_path / "shadows.db"), SystemClock(), limits=False),
        ShadowClient(broker.url, "operator") as operator,
    ):
        agent = shadow_agent(broker.url, tmp_path, THING, "pump-2")
        peer = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="hostile")
        peer.connect(broker.host, broker.port)
        peer.loop_start()
        agent.start()
        try:
            wait_for(lambda: agent.status()["connected"], 15)
            wait_for(lambda: _made(operator), 15)  # the device creates its shadow at start
            yield agent, operator, peer
        finally:
            agent.stop(flush=False, timeout=2)
            peer.loop_stop()
            peer.disconnect()


def _send(peer: Any, topic: str, payload: bytes | str) -> None:
    peer.publish(topic, payload, qos=1).wait_for_publish(10)


def _made(operator: ShadowClient) -> bool:
    try:
        return "reported" in operator.get(THING)["state"]
    except NotFoundError:
        return False


def _reported(operator: ShadowClient) -> dict[str, Any]:
    return operator.get(THING)["state"].get("reported", {})


def test_hostile_deltas_are_survived_and_valid_commands_still_apply(stack: Any) -> None:
    agent, operator, peer = stack
    operator.update(THING, desired={"mode": "safe"})
    assert agent.shadow is not None and agent.shadow.wait_applied(THING, "mode", "safe", 10)
    for payload in (
        b"not json",
        b"\xff\xfe",
        b"[1, 2, 3]",
        b'"text"',
        b"null",
        b'{"state": [1, 2], "version": 1000}',
        b'{"state": "mode=stop", "version": 1001}',
        b'{"state": {"mode": "stop"}, "version": "1002"}',
        b'{"state": {"mode": "stop"}, "version": null}',
        ("[" * 50_000 + "]" * 50_000).encode(),
        json.dumps({"state": {"setpoints": {"x" * 5000: 1}}, "version": 1003}).encode(),
    ):
        _send(peer, f"{TOPIC}/update/delta", payload)
        _send(peer, f"{TOPIC}/get/accepted", payload)
    # the agent still takes commands from the real service and reports them
    operator.update(THING, desired={"mode": "stop"})
    assert agent.shadow.wait_applied(THING, "mode", "stop", 10)
    wait_for(lambda: _reported(operator).get("mode") == "stop", 10)
    status = agent.status()
    assert status["connected"] and status["sender_state"] == "running"
    assert agent.applied["pump-2"] == {}  # nothing leaked to another thing


def test_a_stale_document_or_an_older_delta_does_not_undo_a_newer_command(stack: Any) -> None:
    agent, operator, peer = stack
    operator.update(THING, desired={"mode": "stop"})
    version = operator.get(THING)["version"]
    assert agent.shadow is not None and agent.shadow.wait_applied(THING, "mode", "stop", 10)
    older = {"state": {"desired": {"mode": "normal"}}, "version": 1, "timestamp": 1}
    _send(peer, f"{TOPIC}/get/accepted", json.dumps(older))
    _send(peer, f"{TOPIC}/update/delta", json.dumps({"state": {"mode": "safe"}, "version": 1}))
    # a later command: the broker delivers it after them, so once it is applied they were seen
    operator.update(THING, desired={"sampling_interval_s": 7})
    assert agent.shadow.wait_applied(THING, "sampling_interval_s", 7, 10)
    assert agent.applied[THING]["mode"] == "stop"
    wait_for(lambda: _reported(operator).get("sampling_interval_s") == 7, 10)
    assert _reported(operator)["mode"] == "stop"
    assert operator.get(THING)["version"] > version


def test_a_rejected_value_of_any_shape_is_reported_beside_the_valid_ones(stack: Any) -> None:
    """The rejected value is echoed in ``reported.errors``; a deep or big one must not make
    the shadow refuse the whole report (depth 6, 8 KB) and lose the values that applied."""
    agent, operator, _peer = stack
    deep = {"a": {"b": {"c": {"d": {"e": 1}}}}}  # desired.mode.a.b.c.d.e: within depth 6
    operator.update(THING, desired={"mode": deep, "sampling_interval_s": 2})
    assert agent.shadow is not None and agent.shadow.wait_applied(
        THING, "sampling_interval_s", 2, 10
    )
    wait_for(lambda: _reported(operator).get("sampling_interval_s") == 2, 10)
    errors = _reported(operator)["errors"]
    assert "mode" in errors and "normal, safe, stop" in errors["mode"]["message"]
    big = "x" * 5000
    operator.update(THING, desired={"mode": big, "sampling_interval_s": 3})
    wait_for(lambda: _reported(operator).get("sampling_interval_s") == 3, 10)
    assert "not allowed" in _reported(operator)["errors"]["mode"]["message"]


class TwoSensors:
    def poll(self, now: float) -> list[tuple[str, Any]]:
        from edge.wire import Sample

        return [(THING, Sample(int(now * 1000), {"flow": 1.0, "temp": 2.0}))]


def test_sensors_enabled_from_the_catalogue_is_applied_reported_and_filters_readings(
    broker: EmbeddedBroker, stack: Any
) -> None:
    """``plantwatch shadow set sensors.enabled=flow`` is a catalogue command: the agent
    applies it, reports it, and sends only the enabled sensors' readings."""
    from edge_helpers import Receiver

    agent, operator, _peer = stack
    receiver = Receiver(broker.host, broker.port, client_id="rx-sensors")
    try:
        assert receiver.wait_subscribed(10)
        operator.update(THING, desired={"sensors": {"enabled": ["flow"]}})
        assert agent.shadow is not None
        assert agent.shadow.wait_applied(THING, "sensors", {"enabled": ["flow"]}, 10)
        wait_for(lambda: _reported(operator).get("sensors") == {"enabled": ["flow"]}, 10)
        agent.add_source(TwoSensors())  # polled from now on
        assert receiver.wait_for(3, 10)
        assert {tuple(sorted(v)) for v in receiver.readings.values()} == {("flow",)}
        operator.update(THING, desired={"sensors": {"enabled": "flow,bad name"}})
        wait_for(lambda: "sensors" in _reported(operator).get("errors", {}), 10)
        assert "not allowed" in _reported(operator)["errors"]["sensors"]["message"]
    finally:
        receiver.close()


def test_a_value_too_deep_to_show_is_refused_and_the_commands_beside_it_apply(
    stack: Any,
) -> None:
    """A forged delta nested hundreds deep (the service refuses past 6 levels), yet short
    of what the JSON parser on the MQTT thread gives up on. Comparing it with the last one,
    or echoing it, ran out of recursion on the shadow worker and abandoned the whole
    document, so the command beside it was never applied and nothing was reported."""
    agent, operator, peer = stack
    assert agent.shadow is not None
    base = 100_000
    for n, depth in enumerate((600, 800, 950, 970)):
        deep = '{"x":' * depth + "1" + "}" * depth
        payload = f'{{"state": {{"setpoints": {deep}, "sampling_interval_s": {n + 1}}}, "version": {base + n}}}'
        _send(peer, f"{TOPIC}/update/delta", payload)
        assert agent.shadow.wait_applied(THING, "sampling_interval_s", n + 1, 10), depth
        error = agent.shadow.errors[THING]["setpoints"]
        assert error["desired"] == "<a value nested deeper than 6 levels>"
        assert "nested deeper than a shadow allows" in str(error["message"])
    wait_for(lambda: _reported(operator).get("sampling_interval_s") == 4, 10)
    assert "nested deeper" in _reported(operator)["errors"]["setpoints"]["message"]
