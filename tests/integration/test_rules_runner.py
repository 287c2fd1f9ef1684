"""Rules runner on a real broker: messages land as L4E files; a killed runner loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from raw_mqtt import RawClient
from waiting import wait_for

from cloud.adapters.local import FsObjectStore
from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.batcher import Batcher, BatcherConfig
from cloud.rules.runner import RulesRunner, load_rules
from cloud.rules.transport import PahoTransport
from cloud.runtime.broker import EmbeddedBroker
from edge import wire
from edge.agent import Agent, AgentConfig
from edge.clock import ManualClock, SystemClock

T0 = 1652443800


def messages(first_seq: int, n_samples: int, start_s: int = 1) -> list[wire.Telemetry]:
    samples = [wire.Sample((T0 + start_s + i) * 1000, {"x": i * 0.25}) for i in range(n_samples)]
    return wire.batch_samples("s1", "pump", "dev", first_seq, samples, per_message=10)


def test_runner_lands_rows_and_quarantines(broker: EmbeddedBroker, tmp_path: Path) -> None:
    clock = ManualClock(T0)
    store = FsObjectStore(tmp_path / "bucket")
    batcher = Batcher(store, BatcherConfig(), clock, spool_path=str(tmp_path / "spool.db"))
    runner = RulesRunner(broker.url, load_rules(), batcher, clock, client_id="rules-it-1")
    runner.start()
    pub = MqttPublisher(broker.url, "it-pub-1")
    try:
        for m in messages(0, 100):
            pub.publish(m.topic, wire.encode(m))
        pub.publish("dt/plantwatch/s1/pump/telemetry", b"\xffnot json")
        pub.publish("dt/plantwatch/s1/pump/other", b"ignored: no rule matches")
        wait_for(lambda: batcher.stats["accepted"] == 10 and batcher.stats["quarantined"] == 1)
    finally:
        pub.close()
        runner.stop()
    body = store.get("input/pump_20220513121500.csv").decode()
    assert body.splitlines()[0] == "Timestamp,x"
    assert len(body.splitlines()) == 101
    assert batcher.stats["quarantined_by_reason"] == {"bad_json": 1}


def test_killed_runner_loses_no_acknowledged_data(broker: EmbeddedBroker, tmp_path: Path) -> None:
    # GIVEN a runner that accepted half the messages and then died without flushing
    clock = ManualClock(T0)
    store = FsObjectStore(tmp_path / "bucket")
    spool = str(tmp_path / "spool.db")
    first = Batcher(store, BatcherConfig(), clock, spool_path=spool)
    runner = RulesRunner(broker.url, load_rules(), first, clock, client_id="rules-it-2")
    runner.start()
    pub = MqttPublisher(broker.url, "it-pub-2")
    batch = messages(0, 200)
    for m in batch[:10]:
        pub.publish(m.topic, wire.encode(m))
    wait_for(lambda: first.stats["accepted"] == 10)
    assert runner.client_kind == "paho"  # amqtt speaks MQTT 3.1.1 only
    runner.transport.client.loop_stop()  # the process "dies": no disconnect, no flush
    runner.transport.client.socket().close()
    # WHEN the rest, with redeliveries, is published while it is down (the broker keeps
    # them for its persistent session) and a new runner starts on the same spool
    for m in batch[10:]:
        pub.publish(m.topic, wire.encode(m))
    for m in batch[5:8]:
        pub.publish(m.topic, wire.encode(m))
    second = Batcher(store, BatcherConfig(), clock, spool_path=spool)
    restarted = RulesRunner(broker.url, load_rules(), second, clock, client_id="rules-it-2")
    restarted.start()
    try:
        wait_for(lambda: second.stats["accepted"] + second.stats["duplicates"] >= 13)
    finally:
        pub.close()
        restarted.stop()
    # THEN every reading is written exactly once
    rows = [
        line for key in store.list("input/") for line in store.get(key).decode().splitlines()[1:]
    ]
    assert len(rows) == 200
    assert len(set(rows)) == 200
    assert second.stats["duplicates"] == 3


def _start_runner(
    url: str, store: Path, spool: Path, client: str = "auto"
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloud.cli.main",
            "rules",
            "run",
            "--broker",
            url,
            "--store",
            str(store),
            "--spool",
            str(spool),
            "--grace",
            "0",
            "--client-id",
            "rules-sigkill",
            "--client",
            client,
        ],
        env=env,
        stderr=subprocess.PIPE,
    )


def _wait_subscribed(proc: subprocess.Popen[bytes], client: str) -> None:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert b"subscribed" in line, line
    assert f"({client} client)".encode() in line, line


def _wait_until_stable(count: Callable[[], int], target: int, quiet_s: float = 15.0) -> None:
    """Until *count* reaches *target*, or stops growing for *quiet_s* seconds.

    Rows appear only when the pump writes a window; at load 5-7 on two cores a restarted
    runner took more than 3 s between two writes, and the test then stopped it with the
    broker still holding messages for it (unacknowledged, not lost): the wait must outlast
    a slow machine, not decide what was lost."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = count()
        if now >= target:
            return
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > quiet_s:
            return
        time.sleep(0.1)


def _rows(store: Path) -> list[tuple[str, str]]:
    out = []
    for path in sorted((store / "input").glob("*.csv")):
        asset = path.name.rsplit("_", 1)[0]
        out.extend((asset, line.split(",")[0]) for line in path.read_text().splitlines()[1:])
    return out


@pytest.fixture(
    params=[
        pytest.param(("amqtt", "auto", "paho"), id="amqtt-auto-paho"),
        pytest.param(
            ("mosquitto", "auto", "crt"), id="mosquitto-auto-crt", marks=pytest.mark.mosquitto
        ),
        pytest.param(
            ("mosquitto", "paho", "paho"), id="mosquitto-paho", marks=pytest.mark.mosquitto
        ),
    ]
)
def broker_and_client(request: pytest.FixtureRequest) -> Iterator[tuple[EmbeddedBroker, str, str]]:
    """A broker, the ``--client`` asked for, and the client that should be in use."""
    kind, asked, used = request.param
    with EmbeddedBroker(kind) as running:
        yield running, asked, used


def test_sigkilled_runner_process_loses_nothing(
    broker_and_client: tuple[EmbeddedBroker, str, str], tmp_path: Path
) -> None:
    broker, asked, used = broker_and_client
    # GIVEN a rules runner process and a stream of 3,000 readings in 300 messages
    store, spool = tmp_path / "bucket", tmp_path / "spool.db"
    now_s = int(time.time())
    # windows that closed minutes ago, so the runner writes them as soon as they fill
    samples = [wire.Sample((now_s - 3600 + i) * 1000, {"x": i}) for i in range(3000)]
    batch = wire.batch_samples("s1", "pump", "dev", 0, samples, per_message=10)
    proc = _start_runner(broker.url, store, spool, asked)
    _wait_subscribed(proc, used)
    pub = MqttPublisher(broker.url, "it-pub-kill")
    try:
        # WHEN it is SIGKILLed mid-stream, the rest is published while it is down
        for m in batch[:150]:
            pub.publish(m.topic, wire.encode(m))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        for m in batch[150:]:
            pub.publish(m.topic, wire.encode(m))
        # AND a new process starts on the same spool and session, then shuts down cleanly
        proc = _start_runner(broker.url, store, spool, asked)
        _wait_subscribed(proc, used)
        _wait_until_stable(lambda: len(_rows(store)), target=3000)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        pub.close()
        if proc.poll() is None:
            proc.kill()
    # THEN every reading is in the input files exactly once
    rows = _rows(store)
    missing = sorted({s.ts_ms for s in samples} - {_ms(ts) for _a, ts in rows})
    assert missing == []
    assert len(set(rows)) == 3000
    assert len(rows) == 3000


def test_a_redelivery_stored_before_connect_returns_is_acknowledged(
    broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a persistent session holding one message received but never acknowledged
    message = messages(0, 10)[0]
    dead, received = _session_client(broker, "rules-it-early", subscribe=message.topic)
    pub = MqttPublisher(broker.url, "it-pub-early")
    try:
        pub.publish(message.topic, wire.encode(message))
    finally:
        pub.close()
    wait_for(lambda: len(received) == 1)
    dead.loop_stop()
    dead.socket().close()  # dies without DISCONNECT or PUBACK
    time.sleep(0.5)  # the broker notices, and keeps the message in flight for the session
    # AND a runner on that session whose worker stores the resent message before its
    # transport's connect() has returned (certain here: connect is held back until then)
    clock = ManualClock(T0)
    spool = str(tmp_path / "spool.db")
    batcher = Batcher(FsObjectStore(tmp_path / "bucket"), BatcherConfig(), clock, spool_path=spool)
    connect = PahoTransport.connect

    def connect_then_let_the_worker_run(self: PahoTransport, timeout_s: float) -> None:
        connect(self, timeout_s)
        wait_for(lambda: batcher.stats["accepted"] == 1)
        time.sleep(0.2)  # the worker acknowledges right after storing

    monkeypatch.setattr(PahoTransport, "connect", connect_then_let_the_worker_run)
    runner = RulesRunner(
        broker.url, load_rules(), batcher, clock, client_id="rules-it-early", client="paho"
    )
    # WHEN it starts and then leaves cleanly
    runner.start()
    runner.stop()
    # THEN it acknowledged the message: the session has nothing left to resend
    again, resent = _session_client(broker, "rules-it-early")
    time.sleep(1.0)
    again.loop_stop()
    again.disconnect()
    assert resent == []


def _session_client(
    broker: EmbeddedBroker, client_id: str, subscribe: str | None = None
) -> tuple[mqtt.Client, list[bytes]]:
    """A paho client on a persistent session that never acknowledges what it receives;
    with *subscribe*, returned once the broker has acknowledged that subscription (a
    message published sooner could reach the broker first and go to no one)."""
    received: list[bytes] = []
    subscribed = threading.Event()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, manual_ack=True
    )
    client.on_message = lambda _c, _u, msg: received.append(msg.payload)
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    if subscribe is not None:
        client.subscribe(subscribe, qos=1)
        assert subscribed.wait(20), "no SUBACK"
    return client, received


def _ms(stamp: str) -> int:
    from datetime import UTC, datetime

    return int(
        datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC).timestamp() * 1000
    )


@pytest.mark.mosquitto
def test_shared_subscription_splits_load_between_runners(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    store = FsObjectStore(tmp_path / "bucket")
    spool = str(tmp_path / "spool.db")
    with EmbeddedBroker("mosquitto") as broker:
        runners = [
            RulesRunner(
                broker.url,
                load_rules(),
                Batcher(store, BatcherConfig(), clock, spool_path=spool, shared_spool=True),
                clock,
                client_id=f"rules-share-{i}",
                shared_group="rules",
                client=client,
            )
            for i, client in enumerate(("crt", "paho"))
        ]
        for runner in runners:
            runner.start()
        assert runners[0].subscriptions() == [
            "$share/rules/dt/plantwatch/+/+/telemetry",
            "$share/rules/$aws/rules/plantwatch_telemetry_to_batcher/#",
        ]
        pub = MqttPublisher(broker.url, "it-pub-share")
        try:
            for m in messages(0, 2000):
                pub.publish(m.topic, wire.encode(m))
            wait_for(lambda: sum(r.batcher.stats["accepted"] for r in runners) == 200)
        finally:
            pub.close()
            for runner in runners:
                runner.stop()
    assert all(r.messages > 0 for r in runners)
    assert sum(r.messages for r in runners) == 200
    rows = [
        line.split(",")[0]
        for key in store.list("input/")
        for line in store.get(key).decode().splitlines()[1:]
    ]
    assert len(rows) == 2000 and len(set(rows)) == 2000


@pytest.mark.parametrize("kind", ["amqtt", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def test_runner_reconnects_after_the_broker_restarts(tmp_path: Path, kind: str) -> None:
    clock = ManualClock(T0)
    store = FsObjectStore(tmp_path / "bucket")
    batcher = Batcher(store, BatcherConfig(), clock, spool_path=str(tmp_path / "spool.db"))
    with EmbeddedBroker(kind) as broker:
        runner = RulesRunner(broker.url, load_rules(), batcher, clock, client_id="rules-restart")
        runner.start()
        batch = messages(0, 200)
        try:
            pub = MqttPublisher(broker.url, "it-pub-restart-1")
            for m in batch[:10]:
                pub.publish(m.topic, wire.encode(m))
            wait_for(lambda: batcher.stats["accepted"] == 10)
            pub.close()
            broker.kill()
            broker.start()
            wait_for(lambda: runner.transport.generation == 2 and runner.transport.ready)
            pub = MqttPublisher(broker.url, "it-pub-restart-2")
            for m in batch[10:]:
                pub.publish(m.topic, wire.encode(m))
            wait_for(lambda: batcher.stats["accepted"] == 20)
            pub.close()
        finally:
            runner.stop()
    rows = [
        line for key in store.list("input/") for line in store.get(key).decode().splitlines()[1:]
    ]
    assert len(rows) == len(set(rows)) == 200


@pytest.mark.parametrize("kind", ["amqtt", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def test_an_agent_publishing_through_basic_ingest_reaches_the_rule_and_no_subscriber(
    kind: str, tmp_path: Path
) -> None:
    """IoT Core Basic Ingest (iot-core-rules-and-limits §2, §5): the agent's telemetry on
    ``$aws/rules/<rule>/dt/...`` lands as rows through that rule, with the plain topic,
    while a client subscribed to the telemetry filter or to ``#`` gets none of it."""
    clock = ManualClock(T0)
    store = FsObjectStore(tmp_path / "bucket")
    batcher = Batcher(store, BatcherConfig(), clock, spool_path=str(tmp_path / "spool.db"))
    with EmbeddedBroker(kind) as broker:
        runner = RulesRunner(broker.url, load_rules(), batcher, clock, client_id="rules-bi")
        runner.start()
        bystander = RawClient(broker.host, broker.port, client_id="bystander")
        bystander.subscribe(["#", wire.TELEMETRY_FILTER])
        agent = Agent(
            AgentConfig(
                site="s1",
                sender="dev",
                broker_url=broker.url,
                queue_path=str(tmp_path / "queue.db"),
                assets=("pump",),
                shadow=False,
                max_batch_delay_s=0.1,
                basic_ingest_rule="plantwatch_telemetry_to_batcher",
            ),
            SystemClock(),
        )
        agent.start()
        try:
            agent.submit(
                "pump", [wire.Sample((T0 + 1 + i) * 1000, {"x": i * 0.5}) for i in range(30)]
            )
            wait_for(lambda: batcher.stats["readings"] == 30)
            wait_for(lambda: agent.status()["queue_depth"] == 0)
        finally:
            agent.stop()
            runner.stop()
        bystander.quiet(0.3)
        telemetry = [t for t, _ in bystander.messages if not t.endswith("/status")]
        bystander.close()
    assert telemetry == []
    body = store.get("input/pump_20220513121500.csv").decode()
    assert len(body.splitlines()) == 31
    assert batcher.stats["quarantined_by_reason"] == {}


@pytest.mark.parametrize("kind", ["amqtt", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def test_refused_actions_go_to_the_error_action_and_never_hold_up_the_runner(
    kind: str, tmp_path: Path
) -> None:
    """A key the folder store refuses and republish topics IoT Core would refuse (or a
    broker: mosquitto disconnects a publisher whose topic holds a control character),
    all made from the payload: each message's errorAction gets the report, the messages
    around them land, and nothing is redelivered (all acknowledged); the refused topics
    reach no subscriber."""
    from cloud.rules.definitions import rules_from_document

    payload = {
        "sql": "SELECT * FROM 'lab/+'",
        "awsIotSqlVersion": "2016-03-23",
        "actions": [
            {"s3": {"bucketName": "b", "key": "raw/${k}"}},
            {"republish": {"topic": "${t}", "qos": 1}},
        ],
        "errorAction": {"s3": {"bucketName": "b", "key": "errors/${topic(2)}"}},
    }
    rules = rules_from_document({"rules": [{"ruleName": "lab", "topicRulePayload": payload}]})
    clock = ManualClock(T0)
    store = FsObjectStore(tmp_path / "bucket")
    batcher = Batcher(store, BatcherConfig(), clock, spool_path=str(tmp_path / "spool.db"))
    sends = {
        "ok1": {"k": "ok1.json", "t": "out/ok1"},
        "longkey": {"k": "k" * 300, "t": "out/longkey"},
        "sys": {"k": "sys.json", "t": "$SYS/broker/x"},
        "deep": {"k": "deep.json", "t": "/".join("abcdefghij")},
        "ctrl": {"k": "ctrl.json", "t": "out/a\nb"},  # mosquitto disconnects its publisher
        "ok2": {"k": "ok2.json", "t": "out/ok2"},
    }
    with EmbeddedBroker(kind) as broker:
        republisher = MqttPublisher(broker.url, "lab-republisher")
        runner = RulesRunner(
            broker.url, rules, batcher, clock, client_id="rules-refusals", republisher=republisher
        )
        runner.start()
        watcher = RawClient(broker.host, broker.port, client_id="watcher")
        watcher.subscribe(["#"])
        pub = MqttPublisher(broker.url, "lab-pub")
        try:
            for name, body in sends.items():
                pub.publish(f"lab/{name}", json.dumps(body).encode())
            wait_for(lambda: runner.messages == len(sends))
            wait_for(lambda: len(list(store.list("errors/"))) == 4)
            watcher.quiet(0.5)
        finally:
            pub.close()
            runner.stop()
            republisher.close()
        seen = sorted(t for t, _ in watcher.messages if not t.startswith("lab/"))
        watcher.close()
    assert sorted(store.list("raw/")) == [
        "raw/ctrl.json",
        "raw/deep.json",
        "raw/ok1.json",
        "raw/ok2.json",
        "raw/sys.json",
    ]
    assert sorted(store.list("errors/")) == [
        "errors/ctrl",
        "errors/deep",
        "errors/longkey",
        "errors/sys",
    ]
    assert seen == ["out/longkey", "out/ok1", "out/ok2"]
    assert runner.messages == len(sends) and runner.failures == 0
    assert runner.counts["rule_failed"] == 0
