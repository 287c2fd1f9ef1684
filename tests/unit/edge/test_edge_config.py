"""agent.toml: a good file builds the config; each kind of mistake is one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge import cli
from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.config import load_config
from edge.errors import ConfigError, StorageError
from edge.wire import Sample

GOOD = """
[agent]
site = "plant1"
sender = "gw-01"
broker = "mqtt://127.0.0.1:1883"
assets = ["pump-01", "pump-02"]
queue = "state/queue.db"
samples_per_message = 50

[queue]
max_bytes = 1000000
full_policy = "refuse"
synchronous = "NORMAL"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_good_config_resolves_paths_relative_to_the_file(tmp_path: Path) -> None:
    config, sources, shutdown = load_config(write(tmp_path, GOOD))
    assert config.queue_path == str(tmp_path / "state" / "queue.db")
    assert config.assets == ("pump-01", "pump-02")
    assert (config.samples_per_message, config.max_queue_bytes) == (50, 1_000_000)
    assert (config.full_policy, config.synchronous) == ("refuse", "NORMAL")
    assert sources == [] and shutdown == 10.0
    assert config.send_when_idle is False


def test_send_when_idle_is_read_from_the_agent_table(tmp_path: Path) -> None:
    text = GOOD.replace(
        "samples_per_message = 50\n", "samples_per_message = 50\nsend_when_idle = true\n"
    )
    config, _sources, _shutdown = load_config(write(tmp_path, text))
    assert config.send_when_idle is True


@pytest.mark.parametrize(
    ("extra", "replace", "message"),
    [
        ('[tls]\ncert = "missing.pem"\nkey = "k.pem"\n', None, r"\[tls\]\.cert: no such file"),
        ("", ('broker = "mqtt://127.0.0.1:1883"', 'broker = "http://x"'), r"\[agent\]\.broker"),
        (
            "",
            ('broker = "mqtt://127.0.0.1:1883"', 'broker = "mqtt://h:port"'),
            "port is not a number",
        ),
        (
            '[[sources]]\ntype = "modbus"\n',
            None,
            r"\[\[sources\]\]\[0\]\.type: unknown source 'modbus'",
        ),
        ('[[sources]]\ntype = "csv"\npath = "nowhere"\n', None, r"\.path: no such file or folder"),
        ('[[sources]]\ntype = "plugin"\nfactory = "no_such_mod:make"\n', None, None),
        ("", ('assets = ["pump-01", "pump-02"]', 'assets = ["bad name"]'), r"\[agent\]\.assets"),
        ("", ('full_policy = "refuse"', 'full_policy = "panic"'), r"\[queue\]\.full_policy"),
        ("", ("samples_per_message = 50", "colour = 1"), r"\[agent\]\.colour: unknown key"),
        ("", ("[agent]", "[agentt]"), r"\[agent\]: missing table"),
        (
            "",
            ('broker = "mqtt://127.0.0.1:1883"', 'broker = "abc-ats.iot.eu-west-1.amazonaws.com"'),
            "needs cert and key",
        ),
    ],
)
def test_bad_config_is_one_line_naming_the_problem(
    tmp_path: Path, extra: str, replace: tuple[str, str] | None, message: str | None
) -> None:
    text = GOOD + extra
    if replace:
        text = text.replace(*replace)
    path = write(tmp_path, text)
    if message is None:  # plugins load when the agent starts; the error is as specific
        _config, sources, _ = load_config(path)
        with pytest.raises(ConfigError, match="no_such_mod:make"):
            sources[0]()
        return
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[agent\n"))
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")


def test_cli_prints_one_line_and_exits_2_on_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD + '[tls]\ncert = "missing.pem"\nkey = "k.pem"\n')
    assert cli.main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.pem" in err and "Traceback" not in err


def test_status_without_a_running_agent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD)
    assert cli.main(["status", "--config", str(path), "--json"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert doc["running"] is False and doc["connected"] is False
    assert doc["queue_depth"] == 0 and doc["dropped"] == 0


def test_auth_takes_the_sender_as_username_and_a_password_or_a_password_file(
    tmp_path: Path,
) -> None:
    config, _s, _t = load_config(write(tmp_path, GOOD + '\n[auth]\npassword = "pw-1"\n'))
    assert (config.username, config.password) == ("gw-01", "pw-1")
    assert "pw-1" not in repr(config)
    (tmp_path / "secret").write_text("pw-2\n")
    text = GOOD + '\n[auth]\nusername = "other"\npassword_file = "secret"\n'
    config, _s, _t = load_config(write(tmp_path, text))
    assert (config.username, config.password) == ("other", "pw-2")
    config, _s, _t = load_config(write(tmp_path, GOOD))
    assert (config.username, config.password) == (None, None)


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ('password = "a"\npassword_file = "b"\n', r"\[auth\]: give exactly one of"),
        ('username = "u"\n', r"\[auth\]: give exactly one of"),
        ('password = "a"\ntoken = "x"\n', r"\[auth\]\.token: unknown key"),
        ('password_file = "missing"\n', r"\[auth\]\.password_file: cannot read"),
        ("password = 5\n", r"\[auth\]\.password: expected a string"),
    ],
)
def test_auth_mistakes_are_one_line_naming_the_key(tmp_path: Path, auth: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, GOOD + "\n[auth]\n" + auth))


def test_an_agent_whose_telemetry_topic_iot_core_would_refuse_does_not_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Names of up to 128 characters are each valid, but a telemetry topic over 256 bytes
    is refused by IoT Core on every publish (iot-core-rules-and-limits §2)."""
    long_names = GOOD.replace('"plant1"', f'"{"s" * 120}"').replace('"pump-02"', f'"{"p" * 128}"')
    path = write(tmp_path, long_names)
    assert cli.main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "273 bytes" in err and "at most 256" in err


def test_an_agent_whose_status_topic_iot_core_would_refuse_does_not_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN a long site and a long sender (client id) with short asset names
    WHEN the agent starts
    THEN it refuses in one line: its status topic, also its MQTT last will, would pass the
    256 bytes IoT Core takes (iot-core-rules-and-limits §2), so every status publish
    would be refused and the will would make IoT Core refuse the CONNECT itself."""
    long_names = GOOD.replace('"plant1"', f'"{"s" * 120}"').replace('"gw-01"', f'"{"g" * 128}"')
    path = write(tmp_path, long_names)
    assert cli.main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sender" in err and "270 bytes" in err
    assert "at most 256" in err


WRONG_OPTIONS = [
    (
        "[agent]",
        'samples_per_message = "abc"',
        r"\[agent\]\.samples_per_message: expected an integer",
    ),
    (
        "[agent]",
        "samples_per_message = 2.5",
        r"\[agent\]\.samples_per_message: expected an integer",
    ),
    (
        "[agent]",
        "samples_per_message = true",
        r"\[agent\]\.samples_per_message: expected an integer",
    ),
    ("[agent]", "max_publishes_per_s = 0", r"\[agent\]\.max_publishes_per_s: 0 out of range"),
    ("[agent]", "max_publishes_per_s = nan", r"\[agent\]\.max_publishes_per_s: expected a number"),
    ("[agent]", "max_inflight = 0", r"\[agent\]\.max_inflight: 0 out of range"),
    ("[agent]", 'max_batch_delay_s = "1s"', r"\[agent\]\.max_batch_delay_s: expected a number"),
    ("[agent]", "ack_timeout_s = inf", r"\[agent\]\.ack_timeout_s: expected a number"),
    ("[agent]", "backoff_min_s = -1", r"\[agent\]\.backoff_min_s: -1 out of range"),
    ("[agent]", "backoff_max_s = 0.01", r"\[agent\]\.backoff_max_s: must be at least"),
    ("[agent]", "sampling_interval_s = 0", r"\[agent\]\.sampling_interval_s: 0 out of range"),
    ("[agent]", 'status_interval_s = "5"', r"\[agent\]\.status_interval_s: expected a number"),
    ("[agent]", 'shutdown_timeout_s = "x"', r"\[agent\]\.shutdown_timeout_s: expected a number"),
    ("[agent]", 'shadow = "no"', r"\[agent\]\.shadow: expected true or false"),
    ("[agent]", "send_when_idle = 1", r"\[agent\]\.send_when_idle: expected true or false"),
    ("[agent]", "status_path = 5", r"\[agent\]\.status_path: expected a string"),
    ("[agent]", "keep_alive_s = 70000", r"\[agent\]\.keep_alive_s: 70000 out of range"),
    ("[queue]", 'max_age_s = "7d"', r"\[queue\]\.max_age_s: expected a number"),
    ("[queue]", "max_age_s = -5", r"\[queue\]\.max_age_s: -5 out of range"),
    ("[queue]", "max_bytes = 1e9", r"\[queue\]\.max_bytes: expected an integer"),
    ("[queue]", 'reserve_bytes = "8M"', r"\[queue\]\.reserve_bytes: expected an integer"),
    ("[queue]", "reserve_bytes = 8.0e6", r"\[queue\]\.reserve_bytes: expected an integer"),
    ("[queue]", "reserve_bytes = 0", r"\[queue\]\.reserve_bytes: 0: expected at least 6291456"),
    (
        "[queue]",
        "reserve_bytes = 4194304",
        r"\[queue\]\.reserve_bytes: 4194304: expected at least 6291456 .*never send",
    ),
    ("[tls]", 'alpn = "x-amzn-mqtt-ca"', r"\[tls\]\.alpn: expected an array"),
    ("[agent]", "basic_ingest_rule = 7", r"\[agent\]\.basic_ingest_rule: expected a string"),
    (
        "[agent]",
        'basic_ingest_rule = "my-rule"',
        r"\[agent\]\.basic_ingest_rule: 'my-rule' is not an IoT rule name",
    ),
    (
        "[agent]",
        'basic_ingest_rule = "r/x"',
        r"\[agent\]\.basic_ingest_rule: 'r/x' is not an IoT rule name",
    ),
]


@pytest.mark.parametrize(("table", "line", "message"), WRONG_OPTIONS)
def test_an_option_of_the_wrong_type_or_range_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, line: str, message: str
) -> None:
    """Checked when the file loads, not later inside the agent's threads."""
    key = line.split(" = ")[0]
    text = "\n".join(x for x in GOOD.splitlines() if not x.startswith(f"{key} = ")) + "\n"
    text = text.replace(f"{table}\n", f"{table}\n{line}\n") if table in text else text
    if table not in text:
        text += f"\n{table}\n{line}\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert "\n" not in str(info.value)
    assert cli.main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "state").exists()  # refused before the queue is created


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('speed = "fast"', r"\.speed: expected a number"),
        ('loop = "yes"', r"\.loop: expected true or false"),
        ('asset_map = ["a"]', r"\.asset_map: expected a table"),
        ('exclude = "col"', r"\.exclude: expected an array"),
    ],
)
def test_a_csv_source_option_of_the_wrong_type_is_one_line(
    tmp_path: Path, source: str, message: str
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "p.csv").write_text("Timestamp,t\n2024-01-01T00:00:00,1\n")
    path = write(tmp_path, GOOD + f'\n[[sources]]\ntype = "csv"\npath = "data"\n{source}\n')
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_sources_must_be_an_array_of_tables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sources: expected an array of tables"):
        load_config(write(tmp_path, "sources = 5\n" + GOOD))


def test_protocol_may_be_written_as_the_number_5(tmp_path: Path) -> None:
    text = GOOD.replace("samples_per_message = 50", "samples_per_message = 50\nprotocol = 5")
    config, _s, _t = load_config(write(tmp_path, text))
    assert config.protocol == "5"


@pytest.mark.parametrize("kind", ["directory", "under_a_file"])
def test_a_queue_the_agent_cannot_open_is_one_line_naming_the_field_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # run sets up JSON logs on this test's captured stderr; later tests must keep theirs
    monkeypatch.setattr("edge.logs.setup", lambda level="info": None)
    state = tmp_path / "state"
    if kind == "directory":
        (state / "queue.db").mkdir(parents=True)
    else:
        state.write_text("a file where the queue's folder should be")
    path = write(tmp_path, GOOD)
    assert cli.main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "[agent].queue" in err and "queue.db" in err


@pytest.mark.parametrize(
    ("broker", "message"),
    [
        ("mqtt://127.0.0.1:0", "port is not a number from 1 to 65535"),
        ("mqtt://127.0.0.1:99999", "port is not a number from 1 to 65535"),
        ("mqtt://127.0.0.1:1883/plant1", "expected no path after HOST:PORT"),
    ],
)
def test_a_broker_url_the_agent_cannot_use_is_refused_naming_the_field(
    tmp_path: Path, broker: str, message: str
) -> None:
    text = GOOD.replace("mqtt://127.0.0.1:1883", broker)
    with pytest.raises(ConfigError, match=rf"\[agent\]\.broker: .*{message}"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize("content", ["[1, 2]", '{"pid": ', '"text"', "null"])
def test_status_survives_a_status_file_that_is_not_the_agents_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    path = write(tmp_path, GOOD)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "queue.db.status.json").write_text(content)
    assert cli.main(["status", "--config", str(path), "--json"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert doc["sender"] == "gw-01" and doc["running"] is False


def test_basic_ingest_rule_is_read_from_the_agent_table(
    tmp_path: Path,
) -> None:
    text = GOOD.replace(
        "samples_per_message = 50",
        'samples_per_message = 50\nbasic_ingest_rule = "plantwatch_telemetry_to_batcher"',
    )
    config, _s, _t = load_config(write(tmp_path, text))
    assert config.basic_ingest_rule == "plantwatch_telemetry_to_batcher"
    assert load_config(write(tmp_path, GOOD))[0].basic_ingest_rule is None


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("max_publishes_per_s", 150.0, "max_publishes_per_s: 150 is over IoT Core's 100"),
        ("max_inflight", 120, "max_inflight: 120 is over IoT Core's 100"),
        ("keep_alive_s", 3600, "keep_alive_s: 3600 is over IoT Core's 1200"),
        ("keep_alive_s", 0, "keep_alive_s: 0 .no keep-alive. is IoT Core's 1200"),
    ],
)
def test_settings_past_iot_cores_connection_limits_are_refused_for_an_iot_core_endpoint(
    tmp_path: Path, option: str, value: float, words: str
) -> None:
    """GIVEN an IoT Core endpoint and a setting past its per-connection limits (100
    publishes a second in and out, the excess dropped; 100 unacknowledged publishes;
    keep-alive at most 1200 s, so a client asking more is dropped after 1800 s of quiet
    while it waits longer to ping, and one asking 0 (none) is given 1200 s and dropped the
    same way, never pinging: iot-core-rules-and-limits §2-§3)
    THEN the agent refuses to start, naming the option; another broker takes the value,
    but for no keep-alive, which the MQTT client itself refuses on any broker."""
    settings = {
        "site": "s1",
        "sender": "gw",
        "queue_path": str(tmp_path / "q.db"),
        "assets": ("pump-1",),
        option: value,
    }
    iot = AgentConfig(broker_url="xxxx-ats.iot.eu-west-1.amazonaws.com", **settings)
    with pytest.raises(ConfigError, match=words):
        iot.check()
    other = AgentConfig(broker_url="mqtt://127.0.0.1:1883", **settings)
    if option == "keep_alive_s" and value == 0:  # no broker: awscrt needs a keep-alive
        with pytest.raises(ConfigError, match="not longer than ping_timeout_ms"):
            other.check()
        return
    other.check()


def test_devices_keep_alive_300_s_unless_told_otherwise(tmp_path: Path) -> None:
    """iot-core-rules-and-limits §2's project rule: devices use a 300 s keep-alive (IoT
    Core takes 30-1200 s). While data flows a dead link is caught by the PUBACK timeout,
    so a longer keep-alive only costs time on an idle one, and saves pings."""
    from edge.transport import CrtTransport

    config, _sources, _shutdown = load_config(write(tmp_path, GOOD))
    assert config.keep_alive_s == 300
    assert CrtTransport("mqtt://127.0.0.1:1883", "gw-01").keep_alive_s == 300
    told = load_config(write(tmp_path, GOOD.replace("[queue]", "keep_alive_s = 60\n\n[queue]")))
    assert told[0].keep_alive_s == 60


def test_the_agent_connects_as_its_thing_with_the_devices_keep_alive(tmp_path: Path) -> None:
    """iot-core-rules-and-limits §2's project rules: client id = thing name (the agent's
    ``sender``, which IoT Core's thing policy variables need) and a 300 s keep-alive."""
    from edge.agent import Agent
    from edge.clock import SystemClock

    config = AgentConfig(
        site="s1",
        sender="gw-07",
        broker_url="mqtt://127.0.0.1:1",  # nothing listens: the agent is never started
        queue_path=str(tmp_path / "q.db"),
        assets=("pump-1",),
        shadow=False,
    )
    agent = Agent(config, SystemClock())
    try:
        assert (agent.transport.client_id, agent.transport.keep_alive_s) == ("gw-07", 300)
    finally:
        agent.buffer.close()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2", r"\[agent\]\.qos: 2: AWS IoT Core takes QoS 0 and 1 only"),
        ('"2"', r"\[agent\]\.qos: '2': AWS IoT Core takes QoS 0 and 1 only"),
        ("0", r"\[agent\]\.qos: 0: .*no PUBACK"),
        ("true", r"\[agent\]\.qos: True: AWS IoT Core takes QoS 0 and 1 only"),
    ],
)
def test_a_qos_the_agent_cannot_use_is_refused_at_start_saying_why(
    tmp_path: Path, value: str, message: str
) -> None:
    """iot-core-rules-and-limits §2: QoS 2 gets no PUBACK or SUBACK from IoT Core, so a
    device asking for it would wait forever; the agent publishes at QoS 1, and QoS 0 would
    let a reading leave the queue with nothing to say it arrived."""
    path = write(tmp_path, GOOD.replace("samples_per_message = 50", f"qos = {value}"))
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_qos_1_is_what_the_agent_uses_and_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("samples_per_message = 50", "qos = 1"))
    config, _sources, _shutdown = load_config(path)
    assert config.sender == "gw-01"


def test_the_disk_reserve_is_a_queue_setting_the_agent_keeps(tmp_path: Path) -> None:
    """GIVEN ``[queue].reserve_bytes`` larger than any disk
    WHEN the agent built from the file is handed a reading
    THEN it refuses it, naming the reserve the file set, while the same file without the
    key takes the reading (the default, 8 MiB, is left on the disk). The reserve was fixed
    in the code (``RESERVE_BYTES``) and the key refused as unknown."""
    reading = [Sample(1_700_000_000_000, {"flow": 1.0})]
    config, _sources, _shutdown = load_config(write(tmp_path, f"{GOOD}reserve_bytes = {2**50}\n"))
    agent = Agent(config, SystemClock())
    try:
        with pytest.raises(StorageError, match=f"{2**50} kept for sending"):
            agent.submit("pump-01", reading)
    finally:
        agent.buffer.close()
    config, _sources, _shutdown = load_config(write(tmp_path, GOOD))
    agent = Agent(config, SystemClock())
    try:
        agent.submit("pump-01", reading)
        assert agent.status()["queue_depth"] == 1
    finally:
        agent.buffer.close()
