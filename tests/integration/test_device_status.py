"""Agent status over a real broker: published on connect and every interval, recorded by
the stack's listener; the last will marks a killed agent offline, a clean stop says
``stopped``, a hung one turns silent within one interval, a malformed status is quarantined."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.local import FsObjectStore, SqliteStateStore
from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.devices.health import STATUS_NS, devices, judge
from cloud.runtime.broker import EmbeddedBroker
from cloud.runtime.device_status import DeviceStatusListener
from edge.clock import SystemClock

pytestmark = pytest.mark.slow
INTERVAL_S = 1.0


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def listener(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[DeviceStatusListener]:
    store = SqliteStateStore(tmp_path / "state.db")
    running = DeviceStatusListener(
        broker.url, store, FsObjectStore(tmp_path / "bucket"), SystemClock()
    )
    running.start()
    yield running
    running.stop()
    store.close()


def start_agent(broker: EmbeddedBroker, tmp_path: Path, sender: str) -> subprocess.Popen[str]:
    config = tmp_path / f"{sender}.toml"
    config.write_text(
        "[agent]\n"
        f'site = "s1"\nsender = "{sender}"\nbroker = "{broker.url}"\n'
        f'assets = ["{sender}"]\nqueue = "{sender}.db"\nprotocol = "3.1.1"\n'
        f"status_interval_s = {INTERVAL_S}\nshadow = false\n"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def health(listener: DeviceStatusListener, sender: str) -> dict[str, Any] | None:
    store = listener._state
    found = [d for d in devices(store, time.time()) if d["sender"] == sender]
    return found[0] if found else None


def test_status_will_stop_and_silence(
    broker: EmbeddedBroker, listener: DeviceStatusListener, tmp_path: Path
) -> None:
    agent = start_agent(broker, tmp_path, "dev-a")
    try:
        doc = wait_for(
            "online", lambda: (d := health(listener, "dev-a")) and d["messages"] >= 2 and d
        )
        assert doc["health"] == "online" and doc["assets"] == ["dev-a"]
        assert doc["protocol"] == "3.1.1" and doc["interval_s"] == INTERVAL_S
        assert doc["agent_version"]

        os.kill(agent.pid, signal.SIGSTOP)  # hung: the connection stays open, nothing is said
        silent = wait_for(
            "silent", lambda: (d := health(listener, "dev-a")) and d["health"] == "silent" and d
        )
        # silent half an interval after the status it missed, by the listener's own receive
        # time: not the time the test took to look, which a loaded machine stretches
        missed_by = silent["last_seen"] + silent["silent_after_s"]
        assert silent["silent_after_s"] == 1.5 * INTERVAL_S
        assert judge(silent, missed_by)["health"] == "online"
        assert judge(silent, missed_by + 0.01)["health"] == "silent"
        assert silent["state"] == "online"  # no one said offline: it is judged silent
        os.kill(agent.pid, signal.SIGCONT)
        wait_for(
            "online again", lambda: (d := health(listener, "dev-a")) and d["health"] == "online"
        )

        agent.kill()  # no DISCONNECT: the broker publishes the last will
        agent.wait(10)
        doc = wait_for(
            "will", lambda: (d := health(listener, "dev-a")) and d["health"] == "offline" and d
        )
        assert doc["reason"] == "connection lost"
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)

    agent = start_agent(broker, tmp_path, "dev-a")
    try:
        wait_for("online", lambda: (d := health(listener, "dev-a")) and d["health"] == "online")
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(20) == 0, agent.stderr.read() if agent.stderr else ""
        doc = wait_for(
            "stopped", lambda: (d := health(listener, "dev-a")) and d["health"] == "offline" and d
        )
        assert doc["reason"] == "stopped"
    finally:
        if agent.poll() is None:
            agent.kill()


def test_a_malformed_status_is_quarantined_not_recorded(
    broker: EmbeddedBroker, listener: DeviceStatusListener, tmp_path: Path
) -> None:
    publisher = MqttPublisher(broker.url, "bad-status")
    publisher.publish("dt/plantwatch/s1/liar/status", b'{"v": 1, "site": "s1", "sender": "other"}')
    publisher.close()
    quarantine = tmp_path / "bucket" / "quarantine" / "status_bad_topic"
    kept = wait_for("quarantine", lambda: list(quarantine.rglob("*.json")))
    assert b'"sender": "other"' in kept[0].read_bytes() or b"other" in kept[0].read_bytes()
    assert listener.counts["rejected"] == 1
    assert listener._state.get(STATUS_NS, "s1/other") is None
    assert listener._state.get(STATUS_NS, "s1/liar") is None
