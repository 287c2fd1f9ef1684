"""The agent keeping in step with its shadow. A shadow deleted and re-created after its
48-hour tombstone starts again at version 1 (shadow-contracts 4.7), a forged delta can carry
any version, a GET can be refused for a passing reason (429, 5xx), and JSON `true` is not
`1`: none of these may leave the device deaf to, or wrong about, later commands."""

from __future__ import annotations

import json
import sqlite3
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
from edge.clock import ManualClock, SystemClock
from edge.errors import NotFoundError

THING = "pump-1"


def _agent(broker: EmbeddedBroker, tmp_path: Path) -> Agent:
    return shadow_agent(broker.url, tmp_path, THING)


@pytest.fixture
def stack(
    broker: EmbeddedBroker, tmp_path: Path
) -> Iterator[tuple[Agent, ShadowClient, ManualClock, Any]]:
    clock = ManualClock(1_750_000_000.0)
    with (
        ShadowService(broker.url, str(tmp_path / "shadows.db"), clock, limits=False),
        ShadowClient(broker.url, "operator") as operator,
    ):
        agent = _agent(broker, tmp_path)
        peer = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="forger")
        peer.connect(broker.host, broker.port)
        peer.loop_start()
        agent.start()
        try:
            wait_for(lambda: agent.status()["connected"], 15)
            wait_for(lambda: _made(operator), 15)  # the device creates its shadow at start
            yield agent, operator, clock, peer
        finally:
            agent.stop(flush=False, timeout=2)
            peer.loop_stop()
            peer.disconnect()


def _made(operator: ShadowClient) -> bool:
    try:
        return "reported" in operator.get(THING)["state"]
    except NotFoundError:
        return False


def _reported(operator: ShadowClient) -> dict[str, Any]:
    return operator.get(THING)["state"].get("reported", {})


def test_a_shadow_recreated_after_its_tombstone_expired_is_obeyed_from_version_1(
    stack: Any,
) -> None:
    agent, operator, clock, _peer = stack
    for interval in (2, 3, 4, 5):
        operator.update(THING, desired={"sampling_interval_s": interval})
    assert agent.shadow is not None
    assert agent.shadow.wait_applied(THING, "sampling_interval_s", 5, 10)
    wait_for(lambda: _reported(operator).get("sampling_interval_s") == 5, 10)
    assert operator.get(THING)["version"] >= 5
    operator.delete(THING)
    clock.advance(49 * 3600)
    operator.update(THING, desired={"mode": "stop"})
    assert operator.get(THING)["version"] == 1
    assert agent.shadow.wait_applied(THING, "mode", "stop", 10)
    wait_for(lambda: _reported(operator).get("mode") == "stop", 10)


def test_a_forged_delta_with_a_huge_version_does_not_make_the_device_deaf(stack: Any) -> None:
    agent, operator, _clock, peer = stack
    operator.update(THING, desired={"mode": "safe"})
    assert agent.shadow is not None and agent.shadow.wait_applied(THING, "mode", "safe", 10)
    forged = {"state": {"nobody_handles_this": 1}, "version": 10**9, "timestamp": 1}
    peer.publish(
        f"$aws/things/{THING}/shadow/update/delta", json.dumps(forged), qos=1
    ).wait_for_publish(10)
    operator.update(THING, desired={"mode": "stop"})
    assert agent.shadow.wait_applied(THING, "mode", "stop", 10)
    wait_for(lambda: _reported(operator).get("mode") == "stop", 10)


def test_a_boolean_after_an_equal_number_is_a_new_value_and_is_refused_not_skipped(
    stack: Any,
) -> None:
    """JSON ``true`` is not ``1`` (shadow-contracts 4.4): the service keeps it in the delta,
    so the agent must judge it rather than take it for the value it already applied."""
    agent, operator, _clock, _peer = stack
    assert agent.shadow is not None
    # the device reported its own 1.0 when it made the shadow: a 1 then makes no delta
    operator.update(THING, desired={"sampling_interval_s": 3})
    assert agent.shadow.wait_applied(THING, "sampling_interval_s", 3, 10)
    operator.update(THING, desired={"sampling_interval_s": 1})
    assert agent.shadow.wait_applied(THING, "sampling_interval_s", 1, 10)
    operator.update(THING, desired={"sampling_interval_s": True})
    wait_for(lambda: "sampling_interval_s" in _reported(operator).get("errors", {}), 10)
    error = _reported(operator)["errors"]["sampling_interval_s"]
    assert error["desired"] is True and "expected a number" in error["message"]


def test_a_get_refused_by_a_passing_failure_is_asked_again(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """A 500 (or 429) answer to the agent's GET is not an answer about the shadow: the GET is
    retried, so desired state set while the device was away still reaches it."""
    db = tmp_path / "shadows.db"
    with (
        ShadowService(broker.url, str(db), SystemClock(), limits=False),
        ShadowClient(broker.url, "operator") as operator,
    ):
        operator.update(THING, desired={"mode": "stop"})
        with sqlite3.connect(db) as store:
            store.execute("ALTER TABLE shadows RENAME TO away")  # every request is now a 500
        agent = _agent(broker, tmp_path)
        assert agent.shadow is not None
        agent.shadow._get_retry_s = 1.0  # the same retry, sooner than the default 5 s
        agent.start()
        try:
            wait_for(lambda: agent.status()["connected"], 15)
            wait_for(lambda: "500" in (agent.status()["last_error"] or ""), 10)
            with sqlite3.connect(db) as store:
                store.execute("ALTER TABLE away RENAME TO shadows")
            assert agent.shadow is not None
            assert agent.shadow.wait_applied(THING, "mode", "stop", 15)
        finally:
            agent.stop(flush=False, timeout=2)


def test_a_report_refused_by_a_passing_failure_is_made_again(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The device applied the command but its report got a 500: the shadow would show the
    old reported state (and a delta) for good. The agent resyncs a little later instead."""
    db = tmp_path / "shadows.db"
    with (
        ShadowService(broker.url, str(db), SystemClock(), limits=False),
        ShadowClient(broker.url, "operator") as operator,
    ):
        agent = _agent(broker, tmp_path)
        assert agent.shadow is not None
        agent.shadow._get_retry_s = 1.0  # the same retry, sooner than the default 5 s
        agent.start()
        try:
            wait_for(lambda: agent.status()["connected"], 15)
            with sqlite3.connect(db) as store:  # the next write of a reported mode fails
                store.execute(
                    "CREATE TRIGGER refuse BEFORE INSERT ON shadows"
                    " WHEN json_extract(NEW.document, '$.state.reported.mode') IS NOT NULL"
                    " BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
                )
            operator.update(THING, desired={"mode": "stop"})
            assert agent.shadow is not None
            assert agent.shadow.wait_applied(THING, "mode", "stop", 10)
            wait_for(lambda: "500" in (agent.status()["last_error"] or ""), 10)
            with sqlite3.connect(db) as store:
                store.execute("DROP TRIGGER refuse")
            wait_for(lambda: _reported(operator).get("mode") == "stop", 15)
        finally:
            agent.stop(flush=False, timeout=2)


def test_another_clients_rejected_update_is_not_taken_for_the_devices_own(stack: Any) -> None:
    """``update/rejected`` goes to every subscriber of the shadow; AWS's clientToken is how
    a client tells its own answers. An app's malformed update (400) and a 429 refusing an
    app's request were shown as the device's last error, and a refused app request made
    the device resync as if its own report had been lost."""
    agent, operator, _clock, peer = stack
    assert agent.status()["last_error"] is None
    for body in (
        {"state": 5, "clientToken": "app-1"},  # answered 400 by the service
        {"code": 429, "message": "Too Many Requests", "clientToken": "app-2", "timestamp": 1},
    ):
        topic = "update" if "state" in body else "update/rejected"
        peer.publish(
            f"$aws/things/{THING}/shadow/{topic}", json.dumps(body), qos=1
        ).wait_for_publish(10)
    operator.update(THING, desired={"mode": "stop"})  # handled after both rejections
    assert agent.shadow is not None and agent.shadow.wait_applied(THING, "mode", "stop", 10)
    wait_for(lambda: _reported(operator).get("mode") == "stop", 10)
    assert agent.status()["last_error"] is None
    assert THING not in agent.shadow._pending_get


def test_a_delta_naming_part_of_an_object_applies_the_whole_desired_object(stack: Any) -> None:
    """AWS: "When nested objects differ, the delta contains the path all the way to the
    root" and only the leaves that differ. ``shadow set setpoints.b=3`` on a device running
    setpoints {a: 1, b: 2} makes the delta {"setpoints": {"b": 3}}; the handler was given
    that part as the whole value, so the device dropped setpoint a."""
    agent, operator, _clock, _peer = stack
    assert agent.shadow is not None
    operator.update(THING, desired={"setpoints": {"a": 1, "b": 2}})
    assert agent.shadow.wait_applied(THING, "setpoints", {"a": 1, "b": 2}, 10)
    wait_for(lambda: _reported(operator).get("setpoints") == {"a": 1, "b": 2}, 10)
    operator.update(THING, desired={"setpoints": {"b": 3}})
    assert agent.shadow.wait_applied(THING, "setpoints", {"a": 1, "b": 3}, 10), agent.applied
    wait_for(lambda: "delta" not in operator.get(THING)["state"], 10)


@pytest.mark.parametrize(
    ("key", "value"),
    [("mode", "safe"), ("setpoints", {"a": 1.5, "b": 2})],
    ids=["scalar", "object"],
)
def test_a_reported_key_deleted_while_still_desired_is_reported_again(
    stack: Any, key: str, value: Any
) -> None:
    """AWS (device-shadow-mqtt, /update/delta): "If an attribute is deleted from the
    reported section but still exists in the desired section, it is included" in the delta.
    The device still runs that value, so it is out of step with its shadow only in what the
    shadow shows; it must say so again ("Using shadows in devices": publish /get when the
    device might not be synchronized, /update with its current state), else the delta
    never empties. It skipped the delta as a value it had already applied."""
    agent, operator, _clock, _peer = stack
    assert agent.shadow is not None
    operator.update(THING, desired={key: value})
    assert agent.shadow.wait_applied(THING, key, value, 10)
    wait_for(lambda: "delta" not in operator.get(THING)["state"], 10)
    operator.update(THING, reported={key: None})  # an app clears the reported value
    wait_for(lambda: _reported(operator).get(key) == value, 10)
    wait_for(lambda: "delta" not in operator.get(THING)["state"], 10)
    assert agent.applied[THING][key] == value
    assert agent.status()["last_error"] is None
