"""The embedded broker is a real MQTT broker: QoS 1 round trip, kill and restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from waiting import wait_for

from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.runtime.broker import EmbeddedBroker, parse_broker_url
from edge.errors import ConfigError, PlantwatchError


def _subscribe(url: str, topic: str, received: list, event: threading.Event) -> mqtt.Client:
    address = parse_broker_url(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-sub")
    subscribed = threading.Event()
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_connect = lambda c, *_: c.subscribe(topic, 1)

    def on_message(_c, _u, msg):
        received.append((msg.topic, msg.payload))
        event.set()

    client.on_message = on_message
    client.connect(address.host, address.port)
    client.loop_start()
    assert subscribed.wait(10)
    return client


def test_qos1_round_trip(broker: EmbeddedBroker) -> None:
    received: list = []
    got = threading.Event()
    sub = _subscribe(broker.url, "dt/plantwatch/+/+/telemetry", received, got)
    pub = MqttPublisher(broker.url, "t-pub")
    pub.publish("dt/plantwatch/s1/a1/telemetry", b'{"x":1}')
    assert got.wait(10)
    assert received == [("dt/plantwatch/s1/a1/telemetry", b'{"x":1}')]
    pub.close()
    sub.loop_stop()


def test_kill_and_restart_keeps_the_port() -> None:
    broker = EmbeddedBroker("amqtt").start()
    try:
        port = broker.port
        broker.kill()
        assert not broker.running
        broker.start()
        assert broker.running and broker.port == port
        MqttPublisher(broker.url, "t-after-restart").close()
    finally:
        broker.close()


@pytest.mark.parametrize("kind", ["amqtt", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def test_broker_stops_when_its_starter_is_killed(kind: str) -> None:
    """A SIGKILLed ``plantwatch up`` cannot stop its broker; the broker must not outlive it."""
    starter = _starter(kind, "broker._proc.pid, broker._workdir")
    workdir = ""
    try:
        pid, workdir = starter.stdout.readline().split(maxsplit=1)
        broker_pid = int(pid)
        assert _alive(broker_pid)
        starter.kill()
        starter.wait(10)
        deadline = time.monotonic() + 15
        while _alive(broker_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(broker_pid), "the broker outlived the process that started it"
    finally:
        starter.kill()
        if workdir.strip():
            shutil.rmtree(workdir.strip(), ignore_errors=True)


@pytest.mark.parametrize("kind", ["amqtt", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def test_a_broker_whose_starter_is_killed_acknowledges_nothing_more(kind: str) -> None:
    """The broker holds what it acknowledged in memory only, for subscribers (the rules
    runner) that died with a SIGKILLed ``plantwatch up``: every PUBACK it sends after that is
    a reading the device deletes and nobody keeps. It used to notice its starter's death by
    polling every 0.5 s and then shut down gracefully, acknowledging all the while (130
    readings lost in a kill -9 probe); now the starter's end of a pipe closing stops it."""
    starter = _starter(kind, "broker.port, broker._proc.pid")
    acks: list[float] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev", protocol=mqtt.MQTTv311)
    client.on_publish = lambda *_a: acks.append(time.monotonic())
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            client.publish("dt/plantwatch/s1/pump/telemetry", b"{}", qos=1)
            time.sleep(0.0005)

    try:
        port, broker_pid = (int(x) for x in starter.stdout.readline().split())
        client.connect("127.0.0.1", port)
        client.loop_start()
        sender = threading.Thread(target=publish, daemon=True)
        sender.start()
        wait_for(lambda: len(acks) > 200, 10)
        starter.kill()
        starter.wait(10)
        killed = time.monotonic()
        wait_for(lambda: not _alive(broker_pid), 15)
        gone = time.monotonic() - killed
        stop.set()
        sender.join(5)
        late = [t - killed for t in acks if t > killed]
    finally:
        stop.set()
        client.loop_stop()
        starter.kill()
    assert max(late, default=0.0) < 0.1, f"{len(late)} PUBACKs up to {max(late):.3f} s after"
    assert gone < 1.0, gone


def _starter(kind: str, fields: str) -> subprocess.Popen[str]:
    """A stand-in for ``plantwatch up``: a child that starts a *kind* broker, prints
    *fields* (expressions of ``broker``) on one line and sleeps, for a test to kill."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from cloud.runtime.broker import EmbeddedBroker\n"
            f"broker = EmbeddedBroker({kind!r}).start()\n"
            f"print({fields}, flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone for our purpose
        return stat.read().split(") ", 1)[1][0] != "Z"


def test_a_gone_starters_workdir_is_removed_by_the_next_broker(tmp_path: Path) -> None:
    """What a SIGKILLed ``plantwatch up`` leaves in the temp folder goes at the next start;
    a live starter's folder and one this code did not make stay."""
    from cloud.runtime.broker import OWNER_FILE, WORKDIR_PREFIX

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    temp = Path(tempfile.gettempdir())
    stale = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=temp))
    (stale / OWNER_FILE).write_text(f"{dead.pid}\n")
    (stale / "broker.log").write_text("old\n")
    live = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=temp))
    (live / OWNER_FILE).write_text(f"{os.getpid()}\n")
    foreign = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=temp))
    try:
        broker = EmbeddedBroker("amqtt")
        broker.close()
        assert not stale.exists()
        assert live.exists() and foreign.exists()
        assert not broker._workdir.exists()
    finally:
        for folder in (stale, live, foreign):
            shutil.rmtree(folder, ignore_errors=True)


def test_publishes_before_the_stack_is_ready_wait_for_its_subscribers() -> None:
    """``plantwatch up`` starts its broker before the rules runner subscribes; a device that
    connected the moment the port opened had its first second of readings acknowledged
    and routed to nobody (16 lost on amqtt in a probe). With ``hold_publishes`` the broker
    acknowledges and routes a publish only once ``open()`` says the stack is subscribed."""
    with EmbeddedBroker("amqtt", hold_publishes=True) as broker:
        device = connected_device(broker)
        info = device.publish("dt/plantwatch/s1/pump/telemetry", b"early", qos=1)
        time.sleep(0.5)
        assert not info.is_published(), "held: not acknowledged before the stack is ready"
        got: list[bytes] = []
        runner = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="runner")
        runner.on_message = lambda _c, _u, m: got.append(m.payload)
        runner.connect(broker.host, broker.port)
        runner.loop_start()
        runner.subscribe("dt/plantwatch/+/+/telemetry", 1)
        time.sleep(0.5)
        broker.open()
        info.wait_for_publish(5)
        wait_for(lambda: got == [b"early"], 5)
        runner.loop_stop()
        device.loop_stop()


def connected_device(broker: EmbeddedBroker) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="device")
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def persistent_subscriber(broker: EmbeddedBroker, client_id: str, got: list[bytes]) -> mqtt.Client:
    """A client resuming *client_id*'s persistent MQTT 5 session without subscribing."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    client.on_message = lambda _c, _u, m: got.append(m.payload)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    client.connect(broker.host, broker.port, clean_start=False, properties=properties)
    client.loop_start()
    return client


@pytest.mark.mosquitto
def test_mosquitto_with_a_state_dir_queues_for_the_durable_subscriber_from_the_first_moment(
    tmp_path: Path,
) -> None:
    """mosquitto has no publish hold: with a state dir its durable subscriber's session is
    subscribed (over a unix socket, before the public listener opens), so what a device
    publishes before the subscriber connects waits for it, across a restart too; filters
    left out on the next start (a rule removed) are taken out of the session."""
    first = EmbeddedBroker(
        "mosquitto",
        state_dir=tmp_path,
        durable_subscriber="runner",
        durable_filters=["dt/#", "old/#"],
    )
    with first:
        device = connected_device(first)
        device.publish("dt/x", b"early", qos=1).wait_for_publish(5)
        device.loop_stop()
    assert (tmp_path / "mosquitto.db").exists()
    again = EmbeddedBroker(
        "mosquitto", state_dir=tmp_path, durable_subscriber="runner", durable_filters=["dt/#"]
    )
    with again:
        device = connected_device(again)
        device.publish("old/x", b"removed rule", qos=1).wait_for_publish(5)
        device.publish("dt/x", b"late", qos=1).wait_for_publish(5)
        got: list[bytes] = []
        runner = persistent_subscriber(again, "runner", got)
        wait_for(lambda: got == [b"early", b"late"], 5)
        time.sleep(0.3)
        assert got == [b"early", b"late"]
        runner.loop_stop()
        device.loop_stop()


@pytest.mark.mosquitto
def test_an_unreadable_state_file_is_named_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "mosquitto.db").write_bytes(b"not a mosquitto database")
    broker = EmbeddedBroker(
        "mosquitto", state_dir=tmp_path, durable_subscriber="runner", durable_filters=["dt/#"]
    )
    try:
        with pytest.raises(PlantwatchError, match=r"mosquitto\.db.*move it aside") as error:
            broker.start()
        assert "\n" not in str(error.value)
    finally:
        broker.close()


@pytest.mark.mosquitto
@pytest.mark.parametrize("brk", ["\n", "\r"], ids=["LF", "CR"])
def test_a_state_dir_with_a_line_break_is_refused_not_written_into_the_config(
    tmp_path: Path, brk: str
) -> None:
    """The data folder's path goes into mosquitto.conf: a line break in it ended the line
    and made the rest a setting of its own (``allow_anonymous true``, another listener),
    or left mosquitto refusing its config with a line of the file nobody wrote."""
    state = tmp_path / f"data{brk}allow_anonymous true{brk}#"
    state.mkdir()
    broker = EmbeddedBroker("mosquitto", state_dir=state)
    try:
        with pytest.raises(ConfigError, match="line break") as error:
            broker.start()
        assert "\n" not in str(error.value) and "\r" not in str(error.value)
        assert not broker.running
    finally:
        broker.close()


@pytest.mark.mosquitto
def test_a_state_dir_serves_one_broker_at_a_time(tmp_path: Path) -> None:
    """Two mosquittos on one state file would each overwrite the other's sessions."""
    first = EmbeddedBroker("mosquitto", state_dir=tmp_path).start()
    try:
        second = EmbeddedBroker("mosquitto", state_dir=tmp_path)
        with pytest.raises(ConfigError, match=rf"in use by .*pid {os.getpid()}"):
            second.start()
        second.close()
    finally:
        first.close()
    EmbeddedBroker("mosquitto", state_dir=tmp_path).start().close()  # free again


@pytest.mark.mosquitto
def test_a_new_broker_waits_for_a_gone_starters_broker_to_write_its_state(
    tmp_path: Path,
) -> None:
    """After a kill -9 of ``up`` its guard has mosquitto write the state file, which takes
    as long as the queue is big; a broker started meanwhile on another port would load the
    old file and never deliver what the dying one writes. The lock stays with the guard
    until its broker is gone (here: a process holding it 1 s, its starter dead)."""
    (tmp_path / "lock").write_text("999999999\n")  # a starter that is gone
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(tmp_path / 'lock')!r}, os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print(flush=True)\n"
            "time.sleep(1)\n",
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None
    holder.stdout.readline()
    started = time.monotonic()
    broker = EmbeddedBroker("mosquitto", state_dir=tmp_path).start()
    waited = time.monotonic() - started
    broker.close()
    holder.wait(5)
    assert waited > 0.5, f"started after {waited:.2f} s, while the old broker held the state"


@pytest.mark.mosquitto
def test_stop_gives_mosquitto_time_to_write_a_long_state_file(tmp_path: Path) -> None:
    """A stop that SIGKILLs mosquitto after 10 s would throw away a queue that takes
    longer to write (here mosquitto is paused for 11 s, as a slow write would)."""
    import signal

    broker = EmbeddedBroker("mosquitto", state_dir=tmp_path).start()
    try:
        proc = broker._proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        threading.Timer(11, os.kill, (proc.pid, signal.SIGCONT)).start()
        broker.stop()
        assert proc.returncode == 0, "SIGKILLed before it could write its state file"
    finally:
        broker.close()
