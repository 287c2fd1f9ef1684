"""``protocol = "auto"``: MQTT 5 unless the broker shows it speaks only 3.1.1.

Evidence is a refusal of MQTT 5 (an MQTT 5 CONNACK UNSUPPORTED_PROTOCOL_VERSION, or a
3.1.1 CONNACK "unacceptable protocol level" as MQTT-3.1.2-2 asks of a 3.1.1 broker), or
an MQTT 5 CONNECT left unanswered by a broker that then takes an MQTT 3.1.1 one (amqtt).
A broker silent to both says nothing about protocols, and must not make the agent use
3.1.1 for good. What is learnt is remembered with its time and checked again after
``PROTOCOL_RECHECK_S``, so a broker upgraded to MQTT 5 gets it within the hour.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mini_broker import MiniBroker

from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.transport import CrtTransport, close_connection


def agent_for(broker: MiniBroker, tmp_path: Path) -> Agent:
    return Agent(
        AgentConfig(
            site="s",
            sender="gw-auto",
            broker_url=broker.url,
            queue_path=str(tmp_path / "q.db"),
            assets=("d1",),
            protocol="auto",
            shadow=False,
            ping_timeout_ms=1000,
            backoff_min_s=0.05,
            backoff_max_s=0.5,
        ),
        SystemClock(),
    )


def connected(agent: Agent, timeout: float = 20.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not agent.status()["connected"]:
        time.sleep(0.05)
    status = agent.status()
    assert status["connected"], status["last_error"]
    return status


def remembered(tmp_path: Path) -> str | None:
    path = tmp_path / "q.db.protocol"
    return path.read_text() if path.exists() else None


def test_a_broker_silent_at_first_does_not_make_the_agent_use_mqtt_3_1_1(tmp_path: Path) -> None:
    """GIVEN a broker that answers no CONNECT at first (MQTT 5 nor 3.1.1), then speaks MQTT 5
    THEN the agent connects with MQTT 5 and remembers no 3.1.1: silence is no evidence."""
    broker = MiniBroker(v5="accept")
    broker.mute = True
    agent = agent_for(broker, tmp_path)
    agent.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and 4 not in broker.levels:
            time.sleep(0.05)
        assert broker.levels[:1] == [5], broker.levels
        broker.mute = False
        status = connected(agent)
        assert status["protocol"] == "5", broker.levels
        assert not (remembered(tmp_path) or "").startswith("3.1.1"), remembered(tmp_path)
    finally:
        agent.stop(flush=False, timeout=2)
        broker.close()


@pytest.mark.parametrize("refusal", ["refuse", "refuse_as_311", "silent"])
def test_a_broker_that_refuses_mqtt_5_gets_3_1_1_at_once_and_it_is_remembered_with_its_time(
    tmp_path: Path, refusal: str
) -> None:
    """GIVEN a broker that refuses MQTT 5 (in MQTT 5's words, in 3.1.1's, or by leaving the
    MQTT 5 CONNECT unanswered while it takes a 3.1.1 one)
    THEN the agent connects with 3.1.1 on that same attempt, remembers it with the time,
    and a restart connects with 3.1.1 without probing again."""
    broker = MiniBroker(v5=refusal)
    agent = agent_for(broker, tmp_path)
    before = time.time()
    agent.start()
    try:
        assert connected(agent)["protocol"] == "3.1.1"
        assert broker.levels == [5, 4]
    finally:
        agent.stop(flush=False, timeout=2)
    try:
        text = remembered(tmp_path)
        assert text is not None
        protocol, where, stamp = text.split()
        assert (protocol, where) == ("3.1.1", f"127.0.0.1:{broker.port}")
        assert before - 1 <= float(stamp) <= time.time() + 1
        again = agent_for(broker, tmp_path)
        again.start()
        try:
            assert connected(again)["protocol"] == "3.1.1"
            assert broker.levels == [5, 4, 4]
        finally:
            again.stop(flush=False, timeout=2)
    finally:
        broker.close()


@pytest.mark.parametrize(
    ("age_s", "first_level"),
    [(None, 5), (2 * 3600, 5), (60, 4)],
    ids=["no-time", "older-than-the-recheck", "fresh"],
)
def test_a_remembered_3_1_1_is_trusted_only_until_the_recheck(
    tmp_path: Path, age_s: float | None, first_level: int
) -> None:
    """A remembered answer without its time (written before it was kept) or older than
    ``PROTOCOL_RECHECK_S`` (an hour) is checked again; a fresh one saves the probe."""
    broker = MiniBroker(v5="accept")
    where = f"127.0.0.1:{broker.port}"
    stamp = "" if age_s is None else f" {time.time() - age_s:.3f}"
    (tmp_path / "q.db.protocol").write_text(f"3.1.1 {where}{stamp}\n")
    agent = agent_for(broker, tmp_path)
    agent.start()
    try:
        status = connected(agent)
        assert broker.levels[0] == first_level
        assert status["protocol"] == ("5" if first_level == 5 else "3.1.1")
    finally:
        agent.stop(flush=False, timeout=2)
        broker.close()


def test_a_running_agent_checks_again_after_the_recheck_interval(tmp_path: Path) -> None:
    """GIVEN a broker that refused MQTT 5, then is upgraded
    THEN a connection within the recheck interval uses 3.1.1 unprobed, and the first one
    after it probes and gets MQTT 5 (and forgets the remembered 3.1.1)."""
    broker = MiniBroker(v5="refuse")
    remember = tmp_path / "q.db.protocol"
    transport = CrtTransport(
        broker.url, "gw-recheck", remember=remember, protocol_recheck_s=1.5, ping_timeout_ms=1000
    )
    try:
        close_connection(transport.connect(lambda _error: None))
        assert (transport.negotiated, broker.levels) == ("3.1.1", [5, 4])
        broker.v5 = "accept"
        close_connection(transport.connect(lambda _error: None))
        assert (transport.negotiated, broker.levels) == ("3.1.1", [5, 4, 4])
        time.sleep(1.6)
        close_connection(transport.connect(lambda _error: None))
        assert (transport.negotiated, broker.levels) == ("5", [5, 4, 4, 5])
        assert not remember.exists() or not remember.read_text().startswith("3.1.1")
    finally:
        broker.close()
