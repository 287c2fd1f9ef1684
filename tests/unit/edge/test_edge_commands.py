"""One range per command: the edge agent applies exactly what the cloud catalogue allows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.shadow import commands as cloud_commands
from edge import commands
from edge.agent import Agent, AgentConfig
from edge.clock import ManualClock
from edge.errors import UserError


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    folder: Path = tmp_path_factory.mktemp("agent")
    config = AgentConfig(
        site="s1",
        sender="gw",
        broker_url="mqtt://127.0.0.1:1",
        queue_path=str(folder / "q.db"),
        assets=("pump-01",),
    )
    running = Agent(config, ManualClock())
    yield running
    assert running.shadow is not None
    running.shadow.stop()
    running.buffer.close()


def _apply(agent: Agent, key: str, value: object) -> object:
    assert agent.shadow is not None
    handler = agent.shadow.handler(key)
    assert handler is not None
    return handler("pump-01", value)


def test_the_cloud_uses_the_edge_catalogue() -> None:
    assert cloud_commands.CATALOGUE is commands.CATALOGUE
    assert cloud_commands.parse_value is commands.parse_value


@pytest.mark.parametrize("value", [0.01, 0.05, 3600.5, 86_400, -1, "fast", True, None])
def test_agent_refuses_a_sampling_interval_the_catalogue_refuses(
    agent: Agent, value: object
) -> None:
    before = agent.sampling_interval_s
    with pytest.raises(UserError, match="sampling_interval_s"):
        _apply(agent, "sampling_interval_s", value)
    assert agent.sampling_interval_s == before


@given(st.one_of(st.floats(allow_nan=False), st.integers(-10, 10_000)))
def test_agent_and_catalogue_agree_on_every_sampling_interval(agent: Agent, value: float) -> None:
    try:
        expected = commands.parse_value("sampling_interval_s", value)
    except UserError:
        with pytest.raises(UserError):
            _apply(agent, "sampling_interval_s", value)
        return
    assert _apply(agent, "sampling_interval_s", value) == expected
    assert agent.sampling_interval_s == float(expected)


def test_agent_checks_mode_and_setpoints_against_the_catalogue(agent: Agent) -> None:
    assert _apply(agent, "mode", "safe") == "safe"
    with pytest.raises(UserError, match="mode"):
        _apply(agent, "mode", "turbo")
    assert _apply(agent, "setpoints", {"temp_c": 60}) == {"temp_c": 60}
    with pytest.raises(UserError, match="setpoint name"):
        _apply(agent, "setpoints", {"temp c": 60})
    with pytest.raises(UserError, match="setpoints"):
        _apply(agent, "setpoints", [60])


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=300)
    | st.integers(min_value=10**300, max_value=10**400),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=80), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(key=st.sampled_from(["mode", "sampling_interval_s", "setpoints"]), value=JSON)
def test_any_json_a_delta_can_carry_is_applied_or_refused_with_a_short_reason(
    agent: Agent, key: str, value: object
) -> None:
    """Whatever the shadow carries, a handler answers with a value or a UserError whose
    message is short enough to echo in ``reported.errors`` (the shadow's 8 KB limit)."""
    try:
        _apply(agent, key, value)
    except UserError as exc:
        assert len(str(exc)) <= 400 and "\n" not in str(exc)
