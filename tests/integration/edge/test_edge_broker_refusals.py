"""The broker saying no: a CONNECT it refuses, a publish its policy refuses.

GIVEN a broker with credentials and topic grants (``plantwatch up --auth``'s), the agent
must say in one line why it cannot connect, retry no faster than IoT Core takes CONNECTs
(one a second per client id), and keep a reading whose publish is refused without sending
it again in a loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mini_broker import MiniBroker

from cloud.runtime.broker import EmbeddedBroker
from cloud.runtime.broker_auth import AuthStore
from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.wire import Sample

CASES = [
    pytest.param("amqtt", "3.1.1", id="amqtt-3.1.1"),
    pytest.param("mosquitto", "3.1.1", marks=pytest.mark.mosquitto, id="mosquitto-3.1.1"),
    pytest.param("mosquitto", "5", marks=pytest.mark.mosquitto, id="mosquitto-5"),
]


@pytest.fixture
def secured(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, str]]:
    store = AuthStore(tmp_path / "auth").ensure()
    password = store.add_device("gw-1", "plant1", ["a-1"])
    with EmbeddedBroker(request.param, auth=store) as broker:
        yield broker, password


def agent_for(broker: EmbeddedBroker, tmp_path: Path, protocol: str, password: str) -> Agent:
    return Agent(
        AgentConfig(
            site="plant1",
            sender="gw-1",
            broker_url=f"mqtt://{broker.host}:{broker.port}",
            queue_path=str(tmp_path / "queue.db"),
            assets=("a-1",),
            protocol=protocol,
            shadow=False,
            username="gw-1",
            password=password,
            backoff_min_s=0.05,
            backoff_max_s=0.2,
        ),
        SystemClock(),
    )


@pytest.mark.parametrize(("secured", "protocol"), [c.values for c in CASES], indirect=["secured"])
def test_wrong_credentials_are_one_clear_line_a_try_and_at_most_a_try_a_second(
    secured: tuple[EmbeddedBroker, str],
    protocol: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker, _password = secured
    agent = agent_for(broker, tmp_path, protocol, "not-the-password")
    caplog.set_level(logging.WARNING, logger="edge.agent")
    agent.start()
    try:
        time.sleep(3.5)
        status = agent.status()
    finally:
        agent.stop(flush=False)
    tries = [r.getMessage() for r in caplog.records if "connect to" in r.getMessage()]
    assert status["connects"] == 0
    assert 2 <= len(tries) <= 5, tries  # a try a second at most, though the backoff is 0.2 s
    for line in tries:
        assert "\n" not in line
        assert "the broker refused the connection" in line, line
        assert "credentials" in line, line
    if protocol == "5":  # MQTT 5's CONNACK says why, and the line what to do for that reason
        assert "NOT_AUTHORIZED (135)" in tries[0], tries[0]  # mosquitto's word for it
        assert "[auth]" in tries[0] and "iot:Connect" in tries[0], tries[0]


@pytest.mark.mosquitto
@pytest.mark.parametrize("secured", ["mosquitto"], indirect=True)
def test_a_publish_the_policy_refuses_is_kept_and_retried_with_backoff_not_in_a_loop(
    secured: tuple[EmbeddedBroker, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """GIVEN a gateway configured with an asset its credential has no grant for
    WHEN it publishes that asset's reading
    THEN the broker refuses it with an MQTT 5 PUBACK 'not authorized' (AWS IoT Core's
    reason code 0x87 on PUBLISH), the reading stays queued and is sent again only with
    backoff, not in a loop (IoT Core counts every publish against the connection's 100 a
    second), and the granted asset's readings still go out meanwhile: the refused message,
    oldest of all, had kept them from ever being formed."""
    broker, password = secured
    agent = agent_for(broker, tmp_path, "5", password)
    agent = Agent(AgentConfig(**{**agent.config.__dict__, "assets": ("a-1", "a-2")}), SystemClock())
    caplog.set_level(logging.WARNING, logger="edge.agent")
    now_ms = int(time.time() * 1000)
    agent.start()
    try:
        agent.submit("a-2", [Sample(now_ms, {"x": 1.0})])
        for i in range(5):
            agent.submit("a-1", [Sample(now_ms + i, {"x": float(i)})])
            time.sleep(0.3)
        time.sleep(3)
        status = agent.status()
    finally:
        agent.stop(flush=False)
    assert status["queue_depth"] == 1  # the refused reading, kept; a-1's were acknowledged
    assert status["messages_sent"] <= 15, status
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused, [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("secured", ["amqtt"], indirect=True)
def test_a_publish_that_makes_the_broker_close_the_connection_does_not_starve_the_others(
    secured: tuple[EmbeddedBroker, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """GIVEN a gateway with an asset its credential has no grant for, over MQTT 3.1.1
    WHEN it publishes that asset's reading and the broker closes the connection for it (as
    IoT Core does for a publish the policy does not allow: AUTH_ERROR)
    THEN the reading stays queued and the granted asset's readings still arrive: the
    messages a connection left unacknowledged when it dropped at once, with no PUBACK at
    all, are held back with backoff instead of going first on every new connection."""
    broker, password = secured
    agent = agent_for(broker, tmp_path, "3.1.1", password)
    agent = Agent(AgentConfig(**{**agent.config.__dict__, "assets": ("a-1", "a-2")}), SystemClock())
    caplog.set_level(logging.WARNING, logger="edge.agent")
    now_ms = int(time.time() * 1000)
    agent.start()
    try:
        agent.submit("a-2", [Sample(now_ms, {"x": 1.0})])
        for i in range(5):
            agent.submit("a-1", [Sample(now_ms + i, {"x": float(i)})])
            time.sleep(0.3)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and agent.status()["queue_depth"] > 1:
            time.sleep(0.1)
        status = agent.status()
    finally:
        agent.stop(flush=False)
    assert status["queue_depth"] == 1, status  # the refused reading, kept
    assert status["connects"] <= 12, status  # a connection a second at most


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_a_refused_shadow_subscription_says_the_broker_refused_it_and_keeps_the_readings(
    tmp_path: Path, protocol: str
) -> None:
    """GIVEN a broker that answers every SUBSCRIBE with the SUBACK failure code 0x80 (a
    policy that does not grant the shadow topics)
    WHEN the agent with shadows on connects
    THEN its error says the broker refused the subscription, with the code, and what to
    check or change; it connects again with backoff, and every reading stays queued.
    It said only ``shadow subscribe failed: $aws/things/a-1/shadow/get/accepted``."""
    broker = MiniBroker(refuse_subscriptions=True)
    status = _run_against(broker, tmp_path, readings=3, seconds=3.5, protocol=protocol)
    error = status["last_error"] or ""
    assert "the broker refused" in error and "0x80" in error, error
    assert "'$aws/things/a-1/shadow/get/accepted'" in error, error
    assert "policy" in error and "shadow = false" in error, error
    assert status["queue_depth"] == 3, status
    assert 2 <= broker.accepted <= 5, broker.accepted  # a try a second at most
    assert not broker.telemetry


def test_an_mqtt_3_1_1_refusal_is_not_said_to_give_no_reason(tmp_path: Path) -> None:
    """GIVEN a broker that answers an MQTT 3.1.1 CONNECT with CONNACK return code 5 (not
    authorized) and closes the connection
    WHEN the agent connects over MQTT 3.1.1
    THEN its error says the broker refused, that the CONNACK's return code is not passed on
    by awscrt's 3.1.1 client (MQTT 5 names it), and what to check; every reading stays
    queued. It said "MQTT 3.1.1 gives no reason", which is not so: the CONNACK has one."""
    broker = MiniBroker(connack_311=5)
    status = _run_against(broker, tmp_path, protocol="3.1.1", shadow=False)
    error = status["last_error"] or ""
    assert "the broker refused the connection" in error, error
    assert "gives no reason" not in error, error
    assert "return code" in error and "MQTT 5" in error and "credentials" in error, error
    assert status["queue_depth"] == 1 and status["connects"] == 0, status


@pytest.mark.parametrize(
    ("code", "name", "advice"),
    [
        (0x85, "CLIENT_IDENTIFIER_NOT_VALID (133)", "[agent].sender 'gw-1'"),
        (0x86, "BAD_USERNAME_OR_PASSWORD (134)", "[auth] username and password"),
        (0x88, "SERVER_UNAVAILABLE (136)", "keeps trying"),
        (0x8A, "BANNED (138)", "lift the ban"),
        (0x95, "PACKET_TOO_LARGE (149)", "[agent].assets"),
        (0x97, "QUOTA_EXCEEDED (151)", "quota"),
        (0x9F, "CONNECTION_RATE_EXCEEDED (159)", "one CONNECT a second"),
    ],
)
def test_an_mqtt_5_refusal_says_what_to_do_for_its_reason(
    tmp_path: Path, code: int, name: str, advice: str
) -> None:
    """GIVEN a broker that answers the MQTT 5 CONNECT with a CONNACK refusing it for one
    reason (as IoT Core or another broker may: banned, too large, too many connects)
    WHEN the agent connects
    THEN its error names the reason and says what to do about that reason, and only
    credentials-related reasons send the reader to the credentials: every refusal said
    "check the credentials ([auth], or [tls] cert and key) and the broker's policy",
    wrong for a ban, a CONNECT over the broker's packet size or a connection rate."""
    broker = MiniBroker(connack_5=code)
    status = _run_against(broker, tmp_path, protocol="5", shadow=False, seconds=1.5)
    error = status["last_error"] or ""
    assert f"the broker refused the connection: {name}" in error, error
    assert advice in error, error
    if code not in (0x86, 0x87):
        assert "credentials" not in error, error
    assert status["queue_depth"] == 1 and status["connects"] == 0, status


def test_a_disconnect_from_the_broker_is_named_in_the_line_of_each_drop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """GIVEN a broker that answers each telemetry publish with an MQTT 5 DISCONNECT
    "administrative action" (0x98) and closes the connection
    WHEN the agent publishes a reading
    THEN each drop's line names the broker's reason, the agent reconnects with backoff and
    the reading stays queued. The reason showed only once five drops in a row had made
    the agent suspect another client with its client id."""
    broker = MiniBroker(disconnect_on_telemetry=0x98)
    caplog.set_level(logging.WARNING, logger="edge.agent")
    status = _run_against(broker, tmp_path, protocol="5", shadow=False, max_batch_delay_s=0.05)
    lost = [r.getMessage() for r in caplog.records if "connection lost" in r.getMessage()]
    assert lost, [r.getMessage() for r in caplog.records]
    assert all("ADMINISTRATIVE_ACTION (152)" in line for line in lost), lost
    assert 1 <= len(broker.telemetry) <= 4, broker.telemetry  # a try a second at most
    assert status["queue_depth"] >= 1 and status["sent"] == 0, status


def _run_against(
    broker: MiniBroker,
    tmp_path: Path,
    *,
    readings: int = 1,
    seconds: float = 2.5,
    **config: object,
) -> dict[str, object]:
    """Run an agent of one asset against *broker* for *seconds* with *readings* queued and
    fast backoff; its status once stopped (the broker is closed too)."""
    agent = Agent(
        AgentConfig(
            site="plant1",
            sender="gw-1",
            broker_url=broker.url,
            queue_path=str(tmp_path / "queue.db"),
            assets=("a-1",),
            backoff_min_s=0.05,
            backoff_max_s=0.2,
            **config,  # type: ignore[arg-type]
        ),
        SystemClock(),
    )
    now_ms = int(time.time() * 1000)
    agent.start()
    try:
        agent.submit("a-1", [Sample(now_ms + i, {"x": float(i)}) for i in range(readings)])
        time.sleep(seconds)
        return agent.status()
    finally:
        agent.stop(flush=False)
        broker.close()
