"""IoT Core allows 50 subscriptions per connection (iot-core-rules-and-limits §3), and the
agent subscribes to each asset's shadow topics on its one connection: a gateway of more
assets than that allows is refused when its config loads, not left to fail its SUBACKs."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import pytest
from awscrt import mqtt

from edge.agent import AgentConfig
from edge.config import load_config
from edge.errors import ConfigError
from edge.shadow import ShadowSync

IOT_CORE_SUBSCRIPTIONS = 50


class RecordingConnection(mqtt.Connection):
    """Just enough of an awscrt connection for the shadow client (which takes nothing but
    an ``mqtt.Connection``): every SUBSCRIBE and PUBLISH is recorded and acknowledged at
    once, and no socket is opened."""

    def __init__(self) -> None:  # no super().__init__(): nothing native behind it
        self.subscribed: list[str] = []

    def subscribe(self, topic: str, qos: object, callback: object = None) -> tuple[Future, int]:
        self.subscribed.append(topic)
        return _done(), len(self.subscribed)

    def publish(self, topic: str, payload: object, qos: object, retain: bool = False) -> tuple:
        return _done(), 0


def _done() -> Future:
    future: Future = Future()
    future.set_result({"packet_id": 1, "qos": 1})
    return future


def subscriptions_per_asset() -> int:
    """What the agent's shadow client subscribes to, counted on a connection."""
    things = ("pump-01", "pump-02", "fan-01")
    sync = ShadowSync(things)
    connection = RecordingConnection()
    try:
        sync.attach(connection)
    finally:
        sync.stop()
    assert len(set(connection.subscribed)) == len(connection.subscribed)
    assert len(connection.subscribed) % len(things) == 0
    return len(connection.subscribed) // len(things)


def gateway(tmp_path: Path, assets: int, broker: str, shadow: bool = True) -> Path:
    for name in ("device.pem.crt", "private.pem.key"):
        (tmp_path / name).write_text("not read before connecting\n")
    names = ", ".join(f'"a{i}"' for i in range(assets))
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[agent]\nsite = "s1"\nsender = "gw"\nbroker = "{broker}"\nassets = [{names}]\n'
        f'queue = "q.db"\nshadow = {str(shadow).lower()}\n\n'
        '[tls]\ncert = "device.pem.crt"\nkey = "private.pem.key"\n'
    )
    return path


IOT = "mqtts://abc-ats.iot.eu-west-1.amazonaws.com:8883"


def test_the_largest_gateway_iot_core_takes_loads_and_one_more_asset_is_refused(
    tmp_path: Path,
) -> None:
    """GIVEN the agent's subscriptions per asset, counted on a connection (4: get/accepted,
    get/rejected, update/delta, update/rejected)
    THEN a gateway of as many assets as fit in 50 subscriptions loads (12), and one more
    asset is refused at load naming [agent].assets, the limit and the count."""
    per_asset = subscriptions_per_asset()
    largest = IOT_CORE_SUBSCRIPTIONS // per_asset
    assert largest == 12
    config, _sources, _shutdown = load_config(gateway(tmp_path, largest, IOT))
    assert len(config.assets) == largest
    with pytest.raises(ConfigError) as info:
        load_config(gateway(tmp_path, largest + 1, IOT))
    message = str(info.value)
    assert "[agent].assets: " in message
    assert f"{(largest + 1) * per_asset} subscriptions" in message
    assert f"IoT Core allows {IOT_CORE_SUBSCRIPTIONS}" in message


@pytest.mark.parametrize(
    ("broker", "shadow"),
    [(IOT, False), ("mqtt://127.0.0.1:1883", True), ("mqtts://broker.example:8883", True)],
)
def test_a_large_gateway_loads_without_shadows_or_on_another_broker(
    tmp_path: Path, broker: str, shadow: bool
) -> None:
    """Without shadows the agent subscribes to nothing; a local broker may allow more."""
    config, _sources, _shutdown = load_config(gateway(tmp_path, 40, broker, shadow))
    assert len(config.assets) == 40


def test_the_agent_itself_refuses_the_gateway_iot_core_would_not_serve(tmp_path: Path) -> None:
    config = AgentConfig(
        site="s1",
        sender="gw",
        broker_url="abc-ats.iot.eu-west-1.amazonaws.com",
        queue_path=str(tmp_path / "q.db"),
        assets=tuple(f"a{i}" for i in range(13)),
    )
    with pytest.raises(ConfigError, match=r"^assets: 13 assets .*52 subscriptions"):
        config.check()


@pytest.mark.parametrize(
    "host", ["abc-ats.iot.eu-west-1.amazonaws.com", "abc.ats.iot.cn-north-1.amazonaws.com.cn"]
)
def test_iot_core_endpoints_of_every_partition_get_iot_cores_checks(
    tmp_path: Path, host: str
) -> None:
    """AWS IoT Core's China regions answer on ``*.amazonaws.com.cn``: the limits are the
    same there, and so is the need for a device certificate."""
    with pytest.raises(ConfigError, match=r"\[agent\]\.assets: 13 assets"):
        load_config(gateway(tmp_path, 13, f"mqtts://{host}:8883"))
    (tmp_path / "agent.toml").write_text(
        f'[agent]\nsite = "s1"\nsender = "gw"\nbroker = "mqtts://{host}:8883"\n'
        'assets = ["a"]\nqueue = "q.db"\n'
    )
    with pytest.raises(ConfigError, match="needs cert and key"):
        load_config(tmp_path / "agent.toml")
