"""The local stack with ``auth``: every service connects with its own credential, the real
edge agent connects with a device credential from its config, readings land, a shadow
command reaches the device, and a device cannot act as another (issue 13, item 10)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from raw_mqtt import RawClient
from waiting import wait_for

from cloud.adapters.local.mqtt_url import parse_broker_url, with_credentials
from cloud.runtime.layout import DataLayout
from cloud.runtime.stack import LocalStack, StackConfig
from cloud.shadow.client import ShadowClient
from edge.agent import Agent
from edge.clock import SystemClock
from edge.config import load_config
from edge.errors import ConfigError, NotFoundError
from edge.wire import Sample

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("kind", "rules_client"),
    [("amqtt", "paho"), pytest.param("mosquitto", "crt", marks=pytest.mark.mosquitto)],
)
def test_services_and_a_configured_agent_work_under_auth_and_a_device_cannot_impersonate(
    tmp_path: Path, kind: str, rules_client: str
) -> None:
    data = DataLayout.at(tmp_path / "data")
    stack = LocalStack(
        StackConfig(data=data, auth=True, grace_s=0.0, broker_kind=kind), SystemClock()
    ).start()
    agent: Agent | None = None
    try:
        assert stack.rules is not None and stack.rules.client_kind == rules_client
        runtime = json.loads(data.runtime_file.read_text())
        assert runtime["auth"] is True and runtime["broker"] == stack.broker_url
        assert "@" not in runtime["broker"], "no credentials in runtime.json"
        address = parse_broker_url(stack.broker_url)
        assert stack.auth is not None
        password = stack.auth.add_device("gw-1", "plant1", ["pump-1", "pump-2"])
        intruder_password = stack.auth.add_device("pump-9", "plant1")
        assert stack.broker is not None
        stack.broker.reload()

        (tmp_path / "agent.toml").write_text(
            f'[agent]\nsite = "plant1"\nsender = "gw-1"\nbroker = "{stack.broker_url}"\n'
            'assets = ["pump-1", "pump-2"]\nqueue = "queue.db"\nprotocol = "3.1.1"\n'
            f'max_batch_delay_s = 0.2\n\n[auth]\npassword = "{password}"\n'
        )
        config, _sources, _shutdown = load_config(tmp_path / "agent.toml")
        assert config.username == "gw-1" and "password" not in repr(config)
        agent = Agent(config, SystemClock())
        agent.start()
        now_ms = int(time.time() * 1000) - 600_000
        agent.submit("pump-1", [Sample(now_ms + i, {"flow": float(i)}) for i in range(20)])
        wait_for(lambda: stack.batcher.stats["readings"] == 20)

        intruder = RawClient(
            address.host, address.port, username="pump-9", password=intruder_password
        )
        assert intruder.accepted
        forged = b'{"v":1,"site":"plant1","asset":"pump-1","sender":"x","seq":1,"samples":[]}'
        intruder.publish("dt/plantwatch/plant1/pump-1/telemetry", forged)
        intruder.publish(
            "$aws/things/pump-1/shadow/update", b'{"state":{"desired":{"mode":"stop"}}}'
        )
        intruder.close()

        operator = with_credentials(
            stack.broker_url,
            "plantwatch-operator",
            stack.auth.service_password("plantwatch-operator"),
        )
        with ShadowClient(operator) as shadows:
            shadows.update("pump-2", desired={"mode": "safe"})
            wait_for(lambda: agent.applied.get("pump-2", {}).get("mode") == "safe")
            try:
                desired = shadows.get("pump-1")["state"].get("desired", {})
            except NotFoundError:
                desired = {}
        assert desired.get("mode") != "stop", "the forged command never reached the shadow"
        assert stack.batcher.stats["quarantined"] == 0, "the forged message never arrived"
        assert stack.batcher.stats["readings"] == 20
        assert stack.shadow_service.counts["callback_errors"] == 0
    finally:
        if agent is not None:
            agent.stop(timeout=2)
        stack.stop()


def test_auth_with_an_external_broker_url_is_a_usage_error(tmp_path: Path) -> None:
    config = StackConfig(data=DataLayout.at(tmp_path), auth=True, broker_url="mqtt://127.0.0.1:1")
    with pytest.raises(ConfigError, match="--auth configures the embedded broker"):
        LocalStack(config, SystemClock()).start()


def test_a_non_loopback_bind_needs_auth(tmp_path: Path) -> None:
    config = StackConfig(data=DataLayout.at(tmp_path), host="0.0.0.0")
    with pytest.raises(ConfigError, match=r"--host 0.0.0.0: .* needs --auth"):
        LocalStack(config, SystemClock()).start()
