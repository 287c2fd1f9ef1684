"""A command whose report cannot fit the shadow.

Desired plus reported state may hold 8 KB (shadow-contracts §5; AWS's Device Shadow limits).
A desired object over 4 KB that the device applies and reports back whole is refused with
413 every time. The agent must not retry it as it was (nothing changes on the service), and
the small values that rode in the same report must still reach the shadow."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_helpers import shadow_agent
from waiting import wait_for

from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.client import ShadowClient
from cloud.shadow.document import MAX_STATE_BYTES
from cloud.shadow.service import ShadowService
from edge.agent import Agent
from edge.clock import SystemClock

THING = "pump-9"
BIG = {f"sp_{i:03d}_padding": 1.5 for i in range(200)}  # about 5 KB: fits once, not twice


@pytest.fixture
def stack(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[tuple[Agent, ShadowClient]]:
    with (
        ShadowService(broker.url, str(tmp_path / "shadows.db"), SystemClock(), limits=False),
        ShadowClient(broker.url, "operator") as operator,
    ):
        agent = shadow_agent(broker.url, tmp_path, THING, sender="gw-9")
        agent.start()
        try:
            wait_for(lambda: agent.status()["connected"], 15)
            wait_for(lambda: "reported" in _state(operator), 15)  # made by the device
            yield agent, operator
        finally:
            agent.stop(flush=False, timeout=2)


def _state(operator: ShadowClient) -> dict[str, Any]:
    try:
        return operator.get(THING)["state"]
    except Exception:
        return {}


def test_a_report_too_large_for_the_shadow_still_records_the_small_commands_beside_it(
    stack: Any,
) -> None:
    agent, operator = stack
    size = len(str(BIG).replace(" ", "").replace("'", '"').encode())
    assert MAX_STATE_BYTES / 2 < size < MAX_STATE_BYTES - 200
    assert agent.shadow is not None
    before = agent.shadow.reports
    operator.update(THING, desired={"mode": "safe", "setpoints": BIG})
    assert agent.shadow.wait_applied(THING, "setpoints", BIG, 10)
    assert agent.applied[THING]["mode"] == "safe"
    wait_for(lambda: _state(operator).get("reported", {}).get("mode") == "safe", 10)
    wait_for(lambda: "setpoints" in _state(operator)["reported"].get("errors", {}), 10)
    error = _state(operator)["reported"]["errors"]["setpoints"]
    assert error["message"].startswith("applied, but the shadow refused to record it: 413")
    assert isinstance(error["desired"], str) and len(error["desired"]) <= 64
    assert "setpoints" not in _state(operator)["reported"]
    # the whole report, then one per key, then the error entry: and no more, ever
    settled = agent.shadow.reports
    assert settled - before == 4
    time.sleep(1.5)
    assert agent.shadow.reports == settled
    # a later small command is applied and recorded, and clears nothing it should not
    operator.update(THING, desired={"mode": "stop"})
    wait_for(lambda: _state(operator)["reported"].get("mode") == "stop", 10)
    assert "setpoints" in _state(operator)["reported"]["errors"]
    # a setpoints command that fits clears the error
    operator.update(THING, desired={"setpoints": None})
    operator.update(THING, desired={"setpoints": {"temp_c": 60}})
    wait_for(lambda: _state(operator)["reported"].get("setpoints") == {"temp_c": 60}, 10)
    wait_for(lambda: "setpoints" not in _state(operator)["reported"].get("errors", {}), 10)


def test_a_too_large_report_of_several_keys_at_start_is_split_once(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Desired set while the device was away arrives whole in its first GET: the report of
    every key together is refused, then one report per key, then the error entry."""
    with (
        ShadowService(broker.url, str(tmp_path / "shadows.db"), SystemClock(), limits=False),
        ShadowClient(broker.url, "operator") as operator,
    ):
        operator.update(THING, desired={"mode": "safe", "setpoints": BIG})
        agent = shadow_agent(broker.url, tmp_path, THING, sender="gw-9")
        agent.start()
        try:
            assert agent.shadow is not None
            assert agent.shadow.wait_applied(THING, "setpoints", BIG, 15)
            wait_for(
                lambda: "setpoints" in _state(operator).get("reported", {}).get("errors", {}), 10
            )
            assert _state(operator)["reported"]["mode"] == "safe"
            settled = agent.shadow.reports
            assert settled == 4  # {mode, setpoints}, {mode}, {setpoints}, the error entry
            time.sleep(1.5)
            assert agent.shadow.reports == settled
        finally:
            agent.stop(flush=False, timeout=2)
