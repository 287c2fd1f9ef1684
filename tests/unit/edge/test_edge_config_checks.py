"""agent.toml is checked at load with the agent's own checks, so a mistake is one line
naming the file and the key (not a bare message from inside ``Agent``), and a misspelt
table or key is refused with the name it most likely meant."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import load_config
from edge.errors import ConfigError

GOOD = """
[agent]
site = "plant1"
sender = "gw-01"
broker = "mqtt://127.0.0.1:1883"
assets = ["pump-01", "pump-02"]
queue = "state/queue.db"

[queue]
max_bytes = 1000000
"""

IOT_CORE = """
[agent]
site = "plant1"
sender = "gw-01"
broker = "mqtts://abc-ats.iot.eu-west-1.amazonaws.com:8883"
assets = ["pump-01", "pump-02"]
queue = "state/queue.db"

[tls]
cert = "device.pem.crt"
key = "private.pem.key"
"""


def write(tmp_path: Path, text: str) -> Path:
    for name in ("device.pem.crt", "private.pem.key"):
        (tmp_path / name).write_text("not checked before connecting\n")
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        (
            IOT_CORE.replace('queue = "', 'keep_alive_s = 0\nqueue = "'),
            "[agent].keep_alive_s",
            "no keep-alive",
        ),
        (
            IOT_CORE.replace('queue = "', 'keep_alive_s = 3600\nqueue = "'),
            "[agent].keep_alive_s",
            "over IoT Core's 1200",
        ),
        (
            IOT_CORE.replace('queue = "', 'max_inflight = 120\nqueue = "'),
            "[agent].max_inflight",
            "over IoT Core's 100",
        ),
        (GOOD.replace('"pump-02"', '"pump-01"'), "[agent].assets", "unique"),
        (
            GOOD.replace('"plant1"', f'"{"s" * 120}"').replace('"gw-01"', f'"{"g" * 128}"'),
            "[agent].sender",
            "at most 256",
        ),
        (
            GOOD.replace('"plant1"', f'"{"s" * 120}"').replace('"pump-02"', f'"{"p" * 128}"'),
            "[agent].assets",
            "at most 256",
        ),
    ],
)
def test_the_agents_own_checks_run_at_load_naming_the_file_and_key(
    tmp_path: Path, text: str, where: str, words: str
) -> None:
    """GIVEN a file every value of which has the right type and range alone, but which the
    agent refuses as a whole (a limit of IoT Core, names that repeat, a topic too long)
    THEN ``load_config`` refuses it, in one line naming the file and ``[table].key``."""
    message = refused(tmp_path, text)
    assert message.startswith(f"{where}: ") and words in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD + "\n[queu]\nmax_age_s = 60\n", "[queu]: unknown table; did you mean [queue]?"),
        (GOOD + '\n[tsl]\nca = "ca.pem"\n', "[tsl]: unknown table; did you mean [tls]?"),
        (
            GOOD + '\n[[source]]\ntype = "csv"\n',
            "[[source]]: unknown table; did you mean [[sources]]?",
        ),
        (
            GOOD.replace("[agent]", "[agnet]"),
            "[agent]: missing table; did you mean [agent] instead of [agnet]?",
        ),
        (
            GOOD.replace('queue = "', 'max_inflght = 10\nqueue = "'),
            "[agent].max_inflght: unknown key; did you mean max_inflight?",
        ),
        (
            GOOD.replace("max_bytes", "max_byte"),
            "[queue].max_byte: unknown key; did you mean max_bytes?",
        ),
        (
            IOT_CORE.replace("cert =", "cer ="),
            "[tls].cer: unknown key; did you mean cert?",
        ),
        (GOOD + '\n[auth]\npasword = "x"\n', "[auth].pasword: unknown key; did you mean password?"),
        (
            "keep_alive_s = 60\n" + GOOD,
            "keep_alive_s: outside any table; did you mean [agent].keep_alive_s?",
        ),
    ],
)
def test_a_misspelt_table_or_key_is_refused_with_a_suggestion(
    tmp_path: Path, text: str, message: str
) -> None:
    """A misspelt table was ignored whole (its settings silently left at their defaults),
    and a misspelt key was refused without saying which key was meant."""
    assert refused(tmp_path, text) == message


def test_a_misspelt_source_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "p.csv").write_text("Timestamp,t\n2024-01-01T00:00:00,1\n")
    text = GOOD + '\n[[sources]]\ntype = "csv"\npath = "data"\nsped = 10\n'
    assert refused(tmp_path, text) == ("[[sources]][0].sped: unknown key; did you mean speed?")


AGENT_KEYS = [
    "samples_per_message",
    "max_batch_delay_s",
    "send_when_idle",
    "max_publishes_per_s",
    "max_inflight",
    "keep_alive_s",
    "ping_timeout_ms",
    "ack_timeout_s",
    "backoff_min_s",
    "backoff_max_s",
    "sampling_interval_s",
    "status_interval_s",
    "shutdown_timeout_s",
    "basic_ingest_rule",
]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(AGENT_KEYS), data=st.data())
def test_any_one_letter_slip_in_an_agent_key_suggests_that_key(
    tmp_path: Path, key: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(key) - 1))
    slip = key[:at] + key[at + 1 :]
    if slip in AGENT_KEYS or not re.fullmatch(r"[A-Za-z0-9_-]+", slip):
        return
    text = GOOD.replace('queue = "', f'{slip} = 1\nqueue = "')
    assert refused(tmp_path, text) == f"[agent].{slip}: unknown key; did you mean {key}?"


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ("keep_alive_s = 2", "2 s is not longer than ping_timeout_ms (3000 ms)"),
        ("keep_alive_s = 10\nping_timeout_ms = 10000", "10 s is not longer than ping_timeout_ms"),
        ("keep_alive_s = 0", "0 (no keep-alive)"),
    ],
)
def test_a_keep_alive_the_mqtt_client_cannot_run_with_is_refused_at_load(
    tmp_path: Path, settings: str, words: str
) -> None:
    """awscrt's client refuses a keep-alive not longer than the ping timeout, and so no
    keep-alive at all (0), on every broker: such a config loaded, and then every connect
    failed inside the link thread with a traceback, for as long as the agent ran."""
    text = GOOD.replace('queue = "', f'{settings}\nqueue = "')
    message = refused(tmp_path, text)
    assert message.startswith("[agent].keep_alive_s: ") and words in message


def test_the_agent_itself_refuses_a_keep_alive_its_client_cannot_run_with(tmp_path: Path) -> None:
    from edge.agent import Agent, AgentConfig
    from edge.clock import SystemClock

    config = AgentConfig(
        site="s1",
        sender="gw",
        broker_url="mqtt://127.0.0.1:1883",
        queue_path=str(tmp_path / "q.db"),
        assets=("a",),
        keep_alive_s=3,
        ping_timeout_ms=3000,
    )
    with pytest.raises(ConfigError, match=r"^keep_alive_s: 3 s is not longer than"):
        Agent(config, SystemClock())
    assert not (tmp_path / "q.db").exists()


@pytest.mark.parametrize(
    ("line", "where", "other"),
    [
        ('queue = "agent.toml"', "[agent].queue", "the config file itself"),
        ('queue = "./private.pem.key"', "[agent].queue", "[tls].key"),
        ('queue = "device.pem.crt"', "[agent].queue", "[tls].cert"),
        ('queue = "secret"', "[agent].queue", "[auth].password_file"),
        (
            'queue = "state/queue.db"\nstatus_path = "state/queue.db"',
            "[agent].status_path",
            "[agent].queue",
        ),
        (
            'queue = "state/queue.db"\nstatus_path = "state/queue.db-wal"',
            "[agent].status_path",
            "[agent].queue",
        ),
        (
            'queue = "state/queue.db"\nstatus_path = "state/queue.db.protocol"',
            "[agent].status_path",
            "[agent].queue",
        ),
        (
            'queue = "state/queue.db"\nstatus_path = "agent.toml"',
            "[agent].status_path",
            "the config file itself",
        ),
        (
            'queue = "state/queue.db"\nstatus_path = "private.pem.key"',
            "[agent].status_path",
            "[tls].key",
        ),
    ],
)
def test_a_queue_or_status_file_that_is_another_of_the_agents_files_is_refused(
    tmp_path: Path, line: str, where: str, other: str
) -> None:
    """The queue opens as SQLite, and a file that is not one is moved aside as damaged and
    replaced by an empty queue; the status file is rewritten every second. Pointed (a slip
    of the pen) at the config file, a key, the password file or the queue, the agent moved
    away or overwrote that file, and did not start again."""
    (tmp_path / "secret").write_text("pw\n")
    text = (
        IOT_CORE.replace('queue = "state/queue.db"', line) + '\n[auth]\npassword_file = "secret"\n'
    )
    path = write(tmp_path, text)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    message = refused(tmp_path, text)
    assert message.startswith(f"{where}: ") and other in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert path.exists()


@pytest.mark.parametrize(
    "broker",
    [
        "mqtt://gw-01:s3cret@127.0.0.1:1883",
        "mqtt://gw-01@127.0.0.1:1883",
        "gw-01:s3cret@abc-ats.iot.eu-west-1.amazonaws.com",
    ],
)
def test_credentials_in_the_broker_url_are_refused_pointing_at_auth_without_echoing_them(
    tmp_path: Path, broker: str
) -> None:
    """The agent connects with [auth] alone: credentials written into the broker URL were
    silently dropped (the broker then refused the agent as a stranger), and the password
    stayed in the config's broker_url for anyone printing it."""
    message = refused(tmp_path, GOOD.replace("mqtt://127.0.0.1:1883", broker))
    assert message.startswith("[agent].broker: ") and "[auth]" in message
    assert "s3cret" not in message


@pytest.mark.parametrize(
    ("settings", "refused_too"),
    [
        ("max_publishes_per_s = 100", True),
        ("max_publishes_per_s = 98\nstatus_interval_s = 0.5", True),
        ("max_publishes_per_s = 98", False),
        ("max_publishes_per_s = 90\nstatus_interval_s = 0.5", False),
    ],
)
def test_telemetry_and_status_together_stay_within_iot_cores_publishes_per_second(
    tmp_path: Path, settings: str, refused_too: bool
) -> None:
    """IoT Core takes 100 publishes a second per connection, in and out together, and drops
    the excess (iot-core-rules-and-limits §3). The agent's pace lets rate + 1 telemetry
    publishes into any one second, and its status adds one per status_interval_s: 100 a
    second of telemetry alone was accepted, and publishes were dropped."""
    text = IOT_CORE.replace('queue = "', f'{settings}\nqueue = "')
    if not refused_too:
        load_config(write(tmp_path, text))
        return
    message = refused(tmp_path, text)
    assert message.startswith("[agent].max_publishes_per_s: ") and "IoT Core" in message
    assert "status" in message


@pytest.mark.parametrize("max_bytes", [1, 1000, 131_071])
def test_a_queue_smaller_than_one_message_is_refused_at_load(
    tmp_path: Path, max_bytes: int
) -> None:
    """A queue that cannot hold what one publish carries (128 KiB) dropped readings as they
    came, under drop_oldest (a reading larger than the queue, every one with max_bytes = 1),
    or refused every one, and the agent ran on sending nothing."""
    text = GOOD.replace("max_bytes = 1000000", f"max_bytes = {max_bytes}")
    message = refused(tmp_path, text)
    assert message.startswith("[queue].max_bytes: ") and "131072" in message
    load_config(write(tmp_path, GOOD.replace("max_bytes = 1000000", "max_bytes = 131072")))


@pytest.mark.parametrize("value", ["0.001", "0.2", "0.999"])
def test_an_ack_timeout_under_a_second_is_refused_at_load(tmp_path: Path, value: str) -> None:
    """A link that must acknowledge within a few milliseconds counts as dead under any delay
    (a broker busy for a moment, a slow network), and the agent reconnected without end."""
    text = GOOD.replace('queue = "', f'ack_timeout_s = {value}\nqueue = "')
    message = refused(tmp_path, text)
    assert message.startswith(f"[agent].ack_timeout_s: {value} out of range; expected 1 to ")


def test_an_ack_timeout_of_one_second_loads(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('queue = "', 'ack_timeout_s = 1\nqueue = "'))
    config, _sources, _shutdown = load_config(path)
    assert config.ack_timeout_s == 1


def test_the_agent_itself_refuses_an_ack_timeout_under_a_second(tmp_path: Path) -> None:
    from edge.agent import Agent, AgentConfig
    from edge.clock import SystemClock

    config = AgentConfig(
        site="s1",
        sender="gw",
        broker_url="mqtt://127.0.0.1:1883",
        queue_path=str(tmp_path / "q.db"),
        assets=("a",),
        ack_timeout_s=0.01,
    )
    with pytest.raises(ConfigError, match=r"^ack_timeout_s: expected seconds from 1 to "):
        Agent(config, SystemClock())
    assert not (tmp_path / "q.db").exists()
