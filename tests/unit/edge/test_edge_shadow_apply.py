"""ShadowSync._apply on hostile desired documents, without a broker: what is applied, what
is refused with a reason, and that neither the report nor the log line grows with the
document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock


@pytest.fixture
def agent(tmp_path: Path) -> Any:
    made = Agent(
        AgentConfig(
            site="s1",
            sender="gw",
            broker_url="mqtt://127.0.0.1:1",  # never started: _apply is called directly
            queue_path=str(tmp_path / "q.db"),
            assets=("pump-1",),
        ),
        SystemClock(),
    )
    made.reports = []
    made.shadow._report = lambda thing, reported, version: made.reports.append(reported)
    yield made
    made.shadow.stop()
    made.buffer.close()


def test_a_huge_rejected_value_makes_a_short_log_line_and_a_short_report(
    agent: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="edge.shadow")
    wanted = {"mode": "x" * 100_000, "setpoints": ["y" * 50_000], "sampling_interval_s": 5}
    agent.shadow._apply("pump-1", wanted, 3, None)
    assert agent.shadow.applied["pump-1"] == {"sampling_interval_s": 5}
    assert set(agent.shadow.errors["pump-1"]) == {"mode", "setpoints"}
    lines = [r.getMessage() for r in caplog.records if "rejected desired" in r.getMessage()]
    assert len(lines) == 2 and all(len(line) < 600 for line in lines)
    assert len(json.dumps(agent.reports)) < 2000


def test_thousands_of_unknown_keys_and_nulls_neither_crash_nor_grow_the_report(
    agent: Any,
) -> None:
    wanted: dict[str, Any] = {f"k{i}": i for i in range(5000)}
    wanted.update(mode=None, sampling_interval_s=None, setpoints=None, sensors=None)
    agent.shadow._apply("pump-1", wanted, 4, None)
    assert agent.shadow.applied["pump-1"] == {}
    assert set(agent.shadow.errors["pump-1"]) == {
        "mode",
        "sampling_interval_s",
        "setpoints",
        "sensors",
    }
    assert len(agent.reports) == 1 and set(agent.reports[0]) == {"errors"}
    assert len(json.dumps(agent.reports)) < 2000


def test_a_large_applied_value_makes_a_short_log_line(
    agent: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="edge.shadow")
    setpoints = {f"t{i}": float(i) for i in range(3000)}
    agent.shadow._apply("pump-1", {"setpoints": setpoints}, 5, None)
    assert agent.shadow.applied["pump-1"] == {"setpoints": setpoints}
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("applied")]
    assert len(lines) == 1 and len(lines[0]) < 600


def test_desired_keys_without_a_handler_are_named_in_one_short_line(
    agent: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Ignored, not reported (another device's handlers may know them), but not silently:
    one line per document, whatever the number of keys."""
    caplog.set_level("INFO", logger="edge.shadow")
    wanted: dict[str, Any] = {f"k{i}": i for i in range(5000)}
    wanted["mode"] = "safe"
    agent.shadow._apply("pump-1", wanted, 6, None)
    assert agent.shadow.applied["pump-1"] == {"mode": "safe"}
    lines = [r.getMessage() for r in caplog.records if "no handler" in r.getMessage()]
    assert len(lines) == 1 and len(lines[0]) < 300
    assert "5000 desired keys" in lines[0] and "k0, k1, k2" in lines[0]
    assert agent.reports == [{"mode": "safe"}]


def _delta(agent: Any, state: dict[str, Any], version: int) -> None:
    from awsiot import iotshadow

    event = iotshadow.ShadowDeltaUpdatedEvent(state=state, version=version)
    agent.shadow._handle(("delta", "pump-1", event))


def test_a_delta_asks_for_the_document_only_for_values_the_device_runs(agent: Any) -> None:
    """A delta naming a value the device applied as it is means reported lacks it (an app
    cleared it): the device GETs and reconciles. A value it refused, or applied otherwise,
    stays in every delta by design; asking then would repeat after each update forever."""
    gets: list[str] = []
    agent.shadow._client = object()  # attached; _get itself is recorded below
    agent.shadow._get = gets.append
    _delta(agent, {"mode": "safe", "sampling_interval_s": "fast"}, 3)
    assert agent.shadow.applied["pump-1"] == {"mode": "safe"}
    assert gets == []
    for version in (4, 5):  # the refused value comes back with every later delta
        _delta(agent, {"sampling_interval_s": "fast"}, version)
    assert gets == []
    _delta(agent, {"mode": "safe", "sampling_interval_s": "fast"}, 6)
    assert gets == ["pump-1"]
    assert agent.shadow.applied["pump-1"] == {"mode": "safe"}


def _answer(agent: Any, desired: dict[str, Any], version: int, token: str) -> None:
    from awsiot import iotshadow

    state = iotshadow.ShadowStateWithDelta(desired=desired, reported={})
    response = iotshadow.GetShadowResponse(state=state, version=version, client_token=token)
    agent.shadow._handle(("get", "pump-1", response))


def _recorded_gets(agent: Any) -> list[str]:
    """Attach the shadow as if connected, recording each GET's clientToken (no broker)."""
    tokens: list[str] = []

    class Client:
        def publish_get_shadow(self, request: Any, qos: Any) -> None:
            tokens.append(request.client_token)

    agent.shadow._client = Client()
    return tokens


def test_a_get_answer_overtaken_by_a_newer_delta_does_not_undo_it(agent: Any) -> None:
    """IoT Core does not order messages across topics: the answer to a GET sent at connect
    (version 7) may come after the delta of a later update (version 8). Applying it would
    run the older command again over the newer one; the agent asks again instead."""
    tokens = _recorded_gets(agent)
    agent.shadow._get("pump-1")
    _delta(agent, {"mode": "stop"}, 8)
    assert agent.shadow.applied["pump-1"] == {"mode": "stop"}
    _answer(agent, {"mode": "safe"}, 7, tokens[0])
    assert agent.shadow.applied["pump-1"] == {"mode": "stop"}
    assert agent.shadow._version["pump-1"] == 8
    assert {"mode": "safe"} not in agent.reports
    assert len(tokens) == 2  # asked again: the newer answer settles it
    _answer(agent, {"mode": "stop"}, 8, tokens[1])
    assert agent.shadow.applied["pump-1"] == {"mode": "stop"}


def test_a_lower_version_answered_to_a_get_sent_after_it_restarts_the_count(agent: Any) -> None:
    """A shadow deleted and made again counts from 1: the answer to a GET sent while the
    agent already held the higher version is the service's word and is applied."""
    tokens = _recorded_gets(agent)
    _delta(agent, {"mode": "stop"}, 40)
    agent.shadow._get("pump-1")
    _answer(agent, {"mode": "safe"}, 2, tokens[0])
    assert agent.shadow.applied["pump-1"] == {"mode": "safe"}
    assert agent.shadow._version["pump-1"] == 2
    assert len(tokens) == 1
