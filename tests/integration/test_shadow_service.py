"""The shadow service over a real amqtt broker: protocol, persistence, limits, concurrency."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.client import ShadowClient, ShadowRejectedError
from cloud.shadow.service import ShadowService
from edge.clock import ManualClock
from edge.errors import ConflictError, NotFoundError, PlantwatchError

START = 1_750_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def service(broker: EmbeddedBroker, tmp_path: Path, clock: ManualClock) -> Iterator[ShadowService]:
    with ShadowService(broker.url, str(tmp_path / "shadows.db"), clock, limits=False) as running:
        yield running


@pytest.fixture
def client(broker: EmbeddedBroker, service: ShadowService) -> Iterator[ShadowClient]:
    with ShadowClient(broker.url, "test-client") as c:
        yield c


class Listener:
    """A raw paho subscriber that records every message on the given filters."""

    def __init__(self, url: str, filters: list[str]) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.arrived = threading.Condition()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        subscribed = threading.Event()
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_a: subscribed.set()
        self._client.on_connect = lambda c, *_a: c.subscribe([(f, 1) for f in filters])
        self._client.connect(host, int(port))
        self._client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self.arrived:
            self.messages.append((message.topic, json.loads(message.payload), message.retain))
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[str, dict[str, Any], bool]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)

    def publish(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def test_update_publishes_accepted_delta_documents_in_order(broker, service, client):
    listener = Listener(broker.url, ["$aws/things/pump-1/shadow/update/+"])
    try:
        accepted = client.update("pump-1", desired={"mode": "safe"})
        assert accepted["version"] == 1
        assert accepted["metadata"] == {"desired": {"mode": {"timestamp": int(START)}}}
        messages = listener.wait_for(3)
        topics = [m[0].rsplit("/", 1)[1] for m in messages]
        assert topics == ["accepted", "delta", "documents"]
        assert not any(retained for _t, _d, retained in messages)
        delta = messages[1][1]
        assert delta["state"] == {"mode": "safe"} and delta["version"] == 1
        assert delta["clientToken"] == accepted["clientToken"]
        assert messages[2][1]["previous"] is None
        assert messages[2][1]["current"]["state"] == {"desired": {"mode": "safe"}}
    finally:
        listener.close()


def test_get_shows_delta_until_reported_matches(client, service):
    client.update("pump-2", desired={"mode": "stop", "setpoints": {"t": 60}})
    assert client.get("pump-2")["state"]["delta"] == {"mode": "stop", "setpoints": {"t": 60}}
    client.update("pump-2", reported={"mode": "stop", "setpoints": {"t": 60.0}})
    doc = client.get("pump-2")
    assert "delta" not in doc["state"] and doc["version"] == 2
    assert service.get_document("pump-2") == {
        "state": {
            "desired": {"mode": "stop", "setpoints": {"t": 60}},
            "reported": {"mode": "stop", "setpoints": {"t": 60.0}},
        },
        "metadata": {
            "desired": {
                "mode": {"timestamp": int(START)},
                "setpoints": {"t": {"timestamp": int(START)}},
            },
            "reported": {
                "mode": {"timestamp": int(START)},
                "setpoints": {"t": {"timestamp": int(START)}},
            },
        },
        "version": 2,
    }


def test_named_shadows_are_separate_documents(client, service):
    client.update("pump-3", desired={"a": 1})
    named = client.update("pump-3", desired={"b": 2}, name="config")
    assert named["version"] == 1
    assert client.get("pump-3", name="config")["state"]["desired"] == {"b": 2}
    assert client.get("pump-3")["state"]["desired"] == {"a": 1}
    with pytest.raises(NotFoundError, match="'other'"):
        client.get("pump-3", name="other")


def test_delete_then_recreate_continues_the_version_and_survives_restart(
    broker, tmp_path, clock, client, service
):
    for i in range(3):
        client.update("pump-4", desired={"i": i})
    assert client.delete("pump-4")["version"] == 3
    with pytest.raises(NotFoundError, match="No shadow exists with name: 'pump-4'"):
        client.get("pump-4")
    with pytest.raises(NotFoundError):
        client.delete("pump-4")
    service.stop()
    with ShadowService(broker.url, str(tmp_path / "shadows.db"), clock, limits=False):
        assert client.update("pump-4", desired={"i": 9}, version=3)["version"] == 4
        assert client.get("pump-4")["state"]["desired"] == {"i": 9}
        clock.advance(48 * 3600 + 1)
        client.delete("pump-4")
        clock.advance(48 * 3600 + 1)
        assert client.update("pump-4", desired={"i": 0})["version"] == 1


def test_version_conflict_is_409_and_changes_nothing(client, service):
    client.update("pump-5", desired={"a": 1})
    with pytest.raises(ConflictError, match="Version conflict"):
        client.update("pump-5", desired={"a": 2}, version=0)
    assert service.get_document("pump-5")["state"] == {"desired": {"a": 1}}


def test_oversize_and_too_deep_are_rejected_and_the_stored_shadow_is_unchanged(
    broker, client, service
):
    client.update("pump-6", reported={"blob": "x" * 5000})
    before = service.get_document("pump-6")
    listener = Listener(broker.url, ["$aws/things/pump-6/shadow/update/rejected"])
    try:
        with pytest.raises(ShadowRejectedError) as too_big:
            client.update("pump-6", desired={"blob": "y" * 4000})
        assert (too_big.value.code, too_big.value.message) == (
            413,
            "The payload exceeds the maximum size allowed",
        )
        deep: dict[str, Any] = {"g": 1}
        for key in "fedcba":
            deep = {key: deep}
        with pytest.raises(ShadowRejectedError) as too_deep:
            client.update("pump-6", desired=deep)
        assert too_deep.value.code == 400
        assert "too many levels of nesting" in too_deep.value.message
        docs = [doc for _t, doc, _r in listener.wait_for(2)]
        assert set(docs[0]) == {"code", "message", "timestamp", "clientToken"}
        assert docs[0]["code"] == 413 and docs[1]["code"] == 400
    finally:
        listener.close()
    assert service.get_document("pump-6") == before


def test_answers_over_128_kb_never_cost_the_service_its_broker_connection(broker, client, service):
    """A state within 8 KB can carry 4,000 array elements, each timed in the metadata
    (about 100 KB): update/documents holds the metadata twice (previous and current),
    216 KB, past the broker's 128 KB. Publishing it made the broker cut the service's
    connection, and paho sent it again on every reconnection: one device's second report
    left every shadow unanswered for good. The notification too large to deliver is
    dropped and counted; an update whose own answer would be too large is refused (413)."""
    listener = Listener(broker.url, ["$aws/things/pump-9/shadow/update/documents"])
    try:
        array = [0] * 4_000
        assert client.update("pump-9", desired={"a": array})["version"] == 1
        assert client.update("pump-9", desired={"a": array})["version"] == 2
        nulls = {f"k{i}": None for i in range(10_000)}
        request = {"state": {"desired": nulls}, "clientToken": "n"}
        body = json.dumps(request, separators=(",", ":")).encode()
        assert len(body) < 128 * 1024
        with pytest.raises(ShadowRejectedError) as refused:
            client.request("pump-9", None, "update", body, token="n")
        assert refused.value.code == 413
        assert client.get("pump-9")["version"] == 2, "the service still answers"
        assert [doc["current"]["version"] for _t, doc, _r in listener.wait_for(1)] == [1]
        assert service.counts["answers_too_large"] == 1
    finally:
        listener.close()


def test_malformed_bodies_get_aws_errors(client, service):
    with pytest.raises(ShadowRejectedError) as bad_json:
        client.request("pump-7", None, "update", b"{not json")
    assert (bad_json.value.code, bad_json.value.message) == (400, "Invalid JSON")
    with pytest.raises(ShadowRejectedError) as bad_encoding:
        client.request("pump-7", None, "update", b'{"state":{"desired":{"a":"\xff"}}}')
    assert bad_encoding.value.code == 415
    with pytest.raises(ShadowRejectedError) as no_state:
        client.request("pump-7", None, "update", b'{"clientToken":"abc"}', token="abc")
    assert no_state.value.message == "Missing required node: state"
    with pytest.raises(NotFoundError):
        client.request("pump-7", None, "get", b"garbage")
    with pytest.raises(ShadowRejectedError, match="Invalid thing name"):
        client.update("pump.7", desired={"a": 1})
    with pytest.raises(ShadowRejectedError, match="Invalid shadow name"):
        client.update("pump-7", desired={"a": 1}, name="a.b")
    long_token = json.dumps({"clientToken": "x" * 65}).encode()
    with pytest.raises(ShadowRejectedError, match="Invalid clientToken"):
        client.request("pump-7", None, "get", long_token)


@pytest.mark.parametrize(
    ("thing", "name", "message"),
    [
        ("pump+7", None, "Invalid thing name"),
        ("pump#", None, "Invalid thing name"),
        ("pump/7", None, "Invalid thing name"),
        ("pump-7", "cfg/x", "Invalid shadow name"),
        ("pump-7", "cfg+", "Invalid shadow name"),
        ("pump-7", "#", "Invalid shadow name"),
    ],
)
def test_names_that_would_break_the_topic_are_400_at_once_for_every_operation(
    client, service, thing, name, message
):
    """Shadow contract 5 Choice: a name breaking the rules is 400 ``Invalid thing name`` or
    ``Invalid shadow name``. A wildcard in it made paho raise ValueError (the CLI printed an
    internal error) and a ``/`` sent the request to a topic nobody serves, so the caller
    waited its whole timeout and was told the service might not be running."""
    calls = {
        "get": lambda: client.get(thing, name),
        "update": lambda: client.update(thing, desired={"a": 1}, name=name),
        "delete": lambda: client.delete(thing, name),
    }
    for operation, call in calls.items():
        started = time.monotonic()
        with pytest.raises(ShadowRejectedError) as refused:
            call()
        assert (refused.value.code, refused.value.message) == (400, message), operation
        assert time.monotonic() - started < 1.0, operation


def test_any_client_publish_on_the_update_topic_is_served(broker, client, service):
    """Detector actions publish plain desired-state documents without a token."""
    listener = Listener(broker.url, ["$aws/things/pump-8/shadow/update/delta"])
    try:
        listener.publish(
            "$aws/things/pump-8/shadow/update", b'{"state":{"desired":{"mode":"safe"}}}'
        )
        (_topic, delta, _r), *_ = listener.wait_for(1)
        assert delta["state"] == {"mode": "safe"} and "clientToken" not in delta
    finally:
        listener.close()


def test_two_writers_with_versions_exactly_one_wins_each_version(broker, client, service):
    client.update("pump-9", desired={"setpoint": 0}, reported={"setpoint": 0})
    wins: dict[str, list[int]] = {"a": [], "b": []}
    conflicts: dict[str, int] = {"a": 0, "b": 0}

    def writer(label: str) -> None:
        with ShadowClient(broker.url, f"writer-{label}") as mine:
            while len(wins["a"]) + len(wins["b"]) < 30:
                version = mine.get("pump-9")["version"]
                try:
                    mine.update(
                        "pump-9", desired={"setpoint": version, "by": label}, version=version
                    )
                    wins[label].append(version)
                except ConflictError:
                    conflicts[label] += 1

    threads = [threading.Thread(target=writer, args=(label,)) for label in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    won = sorted(wins["a"] + wins["b"])
    assert len(won) == len(set(won)), "a version was won twice"
    assert won == list(range(1, 1 + len(won)))
    final = client.get("pump-9")
    assert final["version"] == won[-1] + 1
    client.update("pump-9", reported=final["state"]["desired"])
    converged = client.get("pump-9")
    assert "delta" not in converged["state"]
    assert converged["state"]["reported"] == converged["state"]["desired"]


def test_offline_command_is_pending_as_delta_until_the_device_reports(client, service):
    client.update("pump-10", reported={"mode": "normal"})
    client.update("pump-10", desired={"mode": "safe"})
    assert client.get("pump-10")["state"]["delta"] == {"mode": "safe"}
    client.update("pump-10", reported={"mode": "safe"})
    assert "delta" not in client.get("pump-10")["state"]


def test_limits_answer_429_for_a_burst_from_one_thing(broker, tmp_path):
    clock = ManualClock(START)
    with ShadowService(broker.url, str(tmp_path / "limited.db"), clock):
        listener = Listener(
            broker.url,
            [
                "$aws/things/burst/shadow/update/accepted",
                "$aws/things/burst/shadow/update/rejected",
            ],
        )
        try:
            for i in range(25):
                listener.publish(
                    "$aws/things/burst/shadow/update",
                    json.dumps({"state": {"reported": {"i": i}}, "clientToken": f"c{i}"}).encode(),
                )
            messages = listener.wait_for(25)
            codes = [doc.get("code") for _t, doc, _r in messages]
            assert len(messages) == 25
            assert codes.count(429) >= 5
            refused = next(doc for _t, doc, _r in messages if doc.get("code") == 429)
            assert refused["message"] == "Too Many Requests" and refused["clientToken"].startswith(
                "c"
            )
            clock.advance(2)
            count = len(messages)
            listener.publish("$aws/things/burst/shadow/update", b'{"state":{"reported":{"i":1}}}')
            time.sleep(0.2)
            assert "code" not in listener.wait_for(count + 1)[count][1]
        finally:
            listener.close()


def test_cli_finds_the_broker_in_runtime_json_and_wait_sees_the_device_apply(
    broker, service, client, tmp_path, capsys
):
    from cloud.cli.main import main

    data = tmp_path / "data"
    data.mkdir()
    (data / "runtime.json").write_text(json.dumps({"broker": broker.url}))
    assert main(["shadow", "set", "pump-11", "mode=stop", "--data", str(data), "--json"]) == 0
    accepted = json.loads(capsys.readouterr().out)
    assert accepted["state"] == {"desired": {"mode": "stop"}}
    assert not (data / "shadows.db").exists(), "went to the broker, not the file"

    def device() -> None:
        time.sleep(0.3)
        delta = client.get("pump-11")["state"]["delta"]
        client.update("pump-11", reported=delta)

    applier = threading.Thread(target=device)
    applier.start()
    code = main(["shadow", "wait", "pump-11", "mode=stop", "--timeout", "10", "--data", str(data)])
    applier.join()
    assert code == 0
    assert "in sync" in capsys.readouterr().out


def test_cli_falls_back_to_the_store_when_runtime_json_is_stale(tmp_path, capsys):
    from cloud.cli.main import main
    from cloud.runtime.broker import free_port

    data = tmp_path / "data"
    data.mkdir()
    (data / "runtime.json").write_text(json.dumps({"broker": f"mqtt://127.0.0.1:{free_port()}"}))
    assert main(["shadow", "set", "pump-12", "mode=safe", "--data", str(data)]) == 0
    err = capsys.readouterr().err
    assert "not reachable" in err
    assert (data / "shadows.db").exists()


def test_command_for_an_offline_device_is_applied_when_it_returns(broker, tmp_path, clock):
    """The CLI writes the store while nothing runs; the device GETs on reconnect and applies."""
    from cloud.shadow.client import DirectShadowClient

    db = tmp_path / "offline.db"
    operator = DirectShadowClient(db, clock)
    operator.update("pump-13", desired={"mode": "safe", "sampling_interval_s": 10})
    operator.close()
    with (
        ShadowService(broker.url, str(db), clock, limits=False),
        ShadowClient(broker.url) as device,
    ):
        pending = device.get("pump-13")["state"]["delta"]
        assert pending == {"mode": "safe", "sampling_interval_s": 10}
        device.update("pump-13", reported=pending)
        assert "delta" not in device.get("pump-13")["state"]


def test_bench_shadow_reports_updates_per_s(capsys):
    from cloud.cli.main import main

    argv = ["bench", "shadow", "--json", "--updates", "40", "--things", "2"]
    assert main([*argv, "--baseline-messages", "200"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["updates"] == 40 and result["rejected"] == 0
    assert result["updates_per_s"] > 0 and result["p95_ms"] >= result["p50_ms"] > 0
    assert result["baseline"]["msgs_per_s"] > 0 and result["ratio"] > 0


def test_service_and_client_recover_from_a_broker_restart(tmp_path, clock):
    own = EmbeddedBroker("amqtt").start()
    try:
        with (
            ShadowService(own.url, str(tmp_path / "restart.db"), clock, limits=False),
            ShadowClient(own.url, timeout=2.0) as operator,
        ):
            operator.update("pump-14", desired={"mode": "safe"})
            own.kill()
            own.start()
            deadline = time.monotonic() + 15
            while True:
                try:
                    assert operator.update("pump-14", reported={"mode": "safe"})["version"] == 2
                    break
                except PlantwatchError:
                    assert time.monotonic() < deadline, "no recovery after the broker restart"
                    time.sleep(0.2)
            assert "delta" not in operator.get("pump-14")["state"]
    finally:
        own.close()
