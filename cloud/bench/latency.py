"""``plantwatch bench latency``: fault onset to the alert line, through the whole stack.

The path is the one ``plantwatch up --streaming`` runs, on the wall clock: the edge agent
(its durable queue and its batching) -> broker -> streaming scorer -> results appended to
``stream/`` -> feeder (told by the sink, no polling) -> detector (the default detector
model: an alarm on the third anomalous result in a row, as its BATCH evaluation reads the
count before that result's own increment) -> notifier outbox line in ``alerts.jsonl``. The
model is the demo's: a template model trained with the default settings on a week of
simulated pump history, so its alarm rules are the shipped ones. The simulated plant
follows the wall clock (weather, day and year cycles of ambient and process temperature),
and the bench's 25 °C step scores 2.6-4.2 thresholds squared depending on when the run's
plant lives (``world_start_utc``). The inverse-time raise alarms on the first row at 3
thresholds or more and on the second below that; with the step curve (before) the same
step waited for the whole raise count at some hours, and p95 was about 0.5 s there.

A simulated pump at full load is sampled ``--rate`` times a second and each reading is
submitted to the agent. ``--faults`` times, after ``--normal-s`` of normal readings, the
drive-end bearing temperature steps up by ``--step-c`` (the demo's fault is about 25 °C)
until the alarm's alert line is written (or ``--fault-s`` passes). Latency is the wall
time from the fault's onset to the outbox line of that episode's alarm. The onset falls
anywhere between two readings, as a real fault does, so the figure includes the wait for
the first faulty reading (up to one period, 50 ms at 20 readings/s); the same latencies
from the submit of that reading are reported next to it (``..._from_first_reading``).
An alarm while no fault is on is a false alarm.

The former figure (publish of a faulty reading to a result row inside the scorer, no agent,
no detector) is under ``scoring_path``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud.cli.output import print_report, stderr
from edge.cliargs import positive_float, positive_int, rate

ASSET = "pump-01"
MODEL_NAME = "latency"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--faults", type=positive_int, default=20, help="fault episodes (samples; default 20)"
    )
    parser.add_argument(
        "--rate",
        type=rate(bare="hz", high_hz=1000.0),
        default=20.0,
        help="readings per second (a bare number: 20, 20/s) or a sample period (50ms); at "
        "most 1000/s, since readings are stamped in whole ms (default 20/s)",
    )
    parser.add_argument(
        "--normal-s",
        type=positive_float,
        default=3.0,
        help="seconds of normal readings before each fault (default 3)",
    )
    parser.add_argument(
        "--fault-s",
        type=positive_float,
        default=3.0,
        help="longest a fault lasts without an alarm (default 3)",
    )
    parser.add_argument(
        "--step-c",
        type=positive_float,
        default=25.0,
        help="bearing temperature step of a fault, degrees C (default 25)",
    )
    parser.add_argument(
        "--batch-delay-ms",
        type=positive_float,
        default=50.0,
        help="the agent's max_batch_delay_s, in ms: a partial message leaves after it (default 50)",
    )
    parser.add_argument(
        "--send-when-idle",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the agent's send_when_idle: a partial message also leaves at once while no "
        "publish awaits its PUBACK (default on: about one message per reading at 20 "
        "readings/s on a local broker, twice the messages of the 50 ms delay alone; the "
        "report's agent_messages_per_reading says what the run sent)",
    )
    parser.add_argument(
        "--raise-rows",
        type=positive_int,
        default=None,
        help="anomalous rows in a row before the model's alarm rules raise a marginal "
        "excursion (default: the shipped rules', as the demo's model; a larger one trips "
        "sooner)",
    )
    parser.add_argument(
        "--history-days",
        type=positive_float,
        default=7.0,
        help="days of simulated history the model is trained on (default 7, as the demo)",
    )
    parser.add_argument("--broker", default="amqtt", help="amqtt, mosquitto or auto")


def run(args: argparse.Namespace) -> int:

    with tempfile.TemporaryDirectory(prefix="plantwatch-bench-latency-") as tmp:
        measured = measure(Path(tmp), args)
    latencies = sorted(measured["latencies_ms"])
    document: dict[str, Any] = {
        "samples": len(latencies),
        "faults": measured["faults"],
        "missed": measured["faults"] - len(latencies),
        "false_alarms": measured["false_alarms"],
        **_percentiles(latencies),
        "max_ms": round(latencies[-1], 2) if latencies else None,
        **_percentiles(measured["from_first_reading_ms"], "_from_first_reading"),
        "alert_lines": measured["alert_lines"],
        "rate_readings_per_s": args.rate,
        "agent_batch_delay_ms": args.batch_delay_ms,
        "agent_send_when_idle": args.send_when_idle,
        "agent_messages_per_reading": measured["messages_per_reading"],
        "agent_samples_per_message": measured["samples_per_message"],
        "raise_rows": measured["raise_rows"],
        "trip_ratio": measured["trip_ratio"],
        "trip_rows": measured["trip_rows"],
        "trip_curve": measured["trip_curve"],
        "broker": measured["broker"],
        "world_start_utc": measured["world_start_utc"],
        "path": "edge agent -> broker -> streaming scorer -> stream/ results -> feeder -> "
        "detector -> outbox",
        "scoring_path": measured["scoring_path"],
        "goal": {"p95_ms": 250, "false_alarms": 0},
    }
    print_report(document, as_json=args.json)
    return 0


def _percentiles(latencies: list[float], suffix: str = "") -> dict[str, float | None]:
    """``p50_ms`` and ``p95_ms`` (with *suffix*) of *latencies*, None for no samples."""
    import numpy as np

    if not latencies:
        return {f"p50_ms{suffix}": None, f"p95_ms{suffix}": None}
    return {
        f"p50_ms{suffix}": round(statistics.median(latencies), 2),
        f"p95_ms{suffix}": round(float(np.percentile(latencies, 95)), 2),
    }


def measure(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run the stack, the agent and the fault episodes under *root*; raw figures."""

    from cloud.feeder import default_detector_paths
    from cloud.runtime.layout import DataLayout
    from cloud.runtime.stack import LocalStack, StackConfig
    from cloud.runtime.training import train_fleet_model
    from edge.agent import Agent, AgentConfig
    from edge.clock import SystemClock
    from simulator.asset import AssetSpec
    from simulator.fleet import FleetSimulator
    from simulator.scenario import parse_scenario

    layout = DataLayout.at(root / "data")
    spec = AssetSpec(ASSET, "pump", seed=1)
    stderr.print("bench latency: training the demo's model on simulated history", markup=False)
    train_fleet_model(
        layout, [spec], MODEL_NAME, time.time(), args.history_days, 10.0, 7,
        config=_fleet_config(args.raise_rows),
    )  # fmt: skip
    alerts: list[tuple[float, str]] = []
    lock = threading.Lock()

    def on_event(kind: str, detail: dict[str, Any]) -> None:
        words = str(detail.get("subject") or detail.get("body") or "").split()
        if kind == "alert" and "ALARM" in words[:2]:  # "[plantwatch] ALARM pump-01: ..."
            with lock:
                alerts.append((time.perf_counter(), str(detail.get("channel"))))

    model_path, input_path = default_detector_paths()
    stack = LocalStack(
        StackConfig(
            data=layout,
            broker_kind=args.broker,
            model_name=MODEL_NAME,
            detector_models=(model_path,),
            detector_inputs=(input_path,),
            shadow_limits=False,
            # every episode must reach the outbox: the per-asset budget (10 an hour by
            # default) would hold back every alarm after the fifth ALARM/RECOVERED pair
            alert_limit=(1_000_000, 3600.0),
            streaming=True,
        ),
        SystemClock(),
        on_event,
    ).start()
    clock = SystemClock()
    config = AgentConfig(
        site="s1",
        sender="gw-latency",
        broker_url=stack.broker_url,
        queue_path=str(root / "edge" / "queue.db"),
        assets=(ASSET,),
        protocol="3.1.1" if stack.broker is not None and stack.broker.kind == "amqtt" else "auto",
        max_batch_delay_s=args.batch_delay_ms / 1000,
        send_when_idle=args.send_when_idle,
        max_publishes_per_s=max(80.0, 2 * args.rate),
    )
    (root / "edge").mkdir()
    agent = Agent(config, clock)
    agent.register_command("mode", lambda _asset, value: value)
    agent.start()
    scenario = parse_scenario(f'[run]\nload = "high"\n\n[[assets]]\nname = "{ASSET}"\nseed = 1\n')
    world_start = time.time()
    fleet = FleetSimulator([spec], scenario, start=world_start, rate_s=1.0 / args.rate, seed=1)
    period = 1.0 / args.rate
    onsets: list[float] = []
    latencies: list[float] = []
    from_reading: list[float] = []
    false_alarms = 0
    status: dict[str, Any] = {}
    try:
        _warm_up(fleet, agent, period, stack)
        with lock:
            false_alarms += len(alerts)  # a healthy pump raised an alarm while warming up
        for episode in range(args.faults):
            with lock:
                seen = len(alerts)
            _stream(fleet, agent, period, args.normal_s, step_c=0.0)
            with lock:
                false_alarms += len(alerts) - seen
                seen = len(alerts)
            onset = time.perf_counter()
            onsets.append(onset)
            end = onset + args.fault_s
            first: float | None = None
            hit = None
            while time.perf_counter() < end:
                submitted = _stream(fleet, agent, period, period, step_c=args.step_c)
                first = first if first is not None else submitted
                with lock:
                    hit = next((t for t, _channel in alerts[seen:]), None)
                if hit is not None:
                    latencies.append((hit - onset) * 1000)
                    if first is not None:
                        from_reading.append((hit - first) * 1000)
                    break
            time.sleep(0.3)  # the other channel's line of the same alarm
            stderr.print(
                f"bench latency: fault {episode + 1}/{args.faults}: "
                + (f"{latencies[-1]:.0f} ms" if hit is not None else "missed"),
                markup=False,
            )
        _stream(fleet, agent, period, args.normal_s, step_c=0.0)  # back to normal
        status = agent.status()
    finally:
        agent.stop(flush=True, timeout=5)
        time.sleep(0.2)
        stack.stop()
    outbox = layout.alerts.read_text().splitlines() if layout.alerts.exists() else []
    episodes = _fleet_config(args.raise_rows).alarm.episodes
    return {
        "faults": len(onsets),
        "latencies_ms": latencies,
        "from_first_reading_ms": from_reading,
        "false_alarms": false_alarms,
        "alert_lines": sum("ALARM" in json.loads(line)["subject"].split()[:2] for line in outbox),
        "samples_per_message": config.samples_per_message,
        "messages_per_reading": (
            round(status["messages_sent"] / status["sent"], 3) if status.get("sent") else None
        ),
        "raise_rows": episodes.raise_rows,
        "trip_ratio": episodes.trip_ratio,
        "trip_rows": episodes.trip_rows if episodes.trip_ratio is not None else None,
        "trip_curve": episodes.trip_curve if episodes.trip_ratio is not None else None,
        "broker": stack.broker.kind if stack.broker is not None else "external",
        "world_start_utc": datetime.fromtimestamp(world_start, UTC).isoformat(timespec="seconds"),
        "scoring_path": scoring_path(args.broker, faults=10),
    }


def _fleet_config(raise_rows: int | None) -> Any:
    """The demo's training settings, with the alarm rules' raise count replaced if given."""
    from dataclasses import replace

    from cloud.runtime.training import FLEET_CONFIG

    alarm = FLEET_CONFIG.alarm
    if raise_rows is None or alarm is None:
        return FLEET_CONFIG
    episodes = replace(alarm.episodes, raise_rows=raise_rows)
    return replace(FLEET_CONFIG, alarm=replace(alarm, episodes=episodes))


def _warm_up(fleet: Any, agent: Any, period: float, stack: Any) -> None:
    """Normal readings until the detector has an instance (its first result arrived)."""
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        _stream(fleet, agent, period, 0.5, step_c=0.0)
        if stack.engine is not None and stack.engine.key_values():
            return


def _stream(
    fleet: Any, agent: Any, period: float, seconds: float, *, step_c: float
) -> float | None:
    """Submit the simulator's readings for *seconds* of wall time, one every *period*;
    when the first of them was submitted (None if none was due)."""
    end = time.perf_counter() + seconds
    first: float | None = None
    while True:
        now = time.time()
        samples = fleet.step(now).get(ASSET, [])
        if step_c:
            samples = [_stepped(s, step_c) for s in samples]
        if samples:
            agent.submit(ASSET, samples)
            first = first if first is not None else time.perf_counter()
        if time.perf_counter() >= end:
            return first
        # wake when the next reading is taken (the simulator's grid), not a period after
        # this pass: a sleep of one period after each submit let readings drift late by
        # the submit's own time, and every reading after a fault's first came late
        due = fleet.now + period - time.time()
        time.sleep(max(0.0, min(due, end - time.perf_counter())))


def _stepped(sample: Any, step_c: float) -> Any:
    from edge.wire import Sample

    values = dict(sample.values)
    if values.get("bearing_temp_c") is not None:
        values["bearing_temp_c"] += step_c
    return Sample(sample.ts_ms, values)


SENSORS = ("motor_current", "flow", "pressure", "temperature")


def _normal(rng, n: int):  # type: ignore[no-untyped-def]
    import numpy as np

    load = 50 + rng.normal(0, 2, n)
    return np.column_stack(
        [
            0.2 * load + rng.normal(0, 0.3, n),
            3.0 * load + rng.normal(0, 2.0, n),
            0.05 * load + 1 + rng.normal(0, 0.05, n),
            45 + rng.normal(0, 0.5, n),
        ]
    )


def scoring_path(broker_kind: str, faults: int, rate: float = 50.0) -> dict[str, Any]:
    """The former figure: publish of the first faulty reading -> the scorer's first
    ``prediction = 1`` row (paho publisher, one reading per message, no agent, no detector,
    smoothing 1 and a model without alarm rules, so a row above threshold is a prediction
    at once, as when this figure was first taken)."""
    import numpy as np
    import paho.mqtt.client as mqtt
    import pandas as pd

    from cloud.adapters.local.mqtt_url import stop_client
    from cloud.inference.model import TrainConfig, train
    from cloud.inference.streaming import CallbackSink, StreamingScorer
    from cloud.runtime.broker import EmbeddedBroker
    from edge.wire import TELEMETRY_FILTER, Sample, Telemetry, encode

    rng = np.random.default_rng(7)
    history = pd.DataFrame(
        _normal(rng, 5000),
        index=pd.date_range("2026-01-01", periods=5000, freq="1s", tz="UTC"),
        columns=list(SENSORS),
    )
    model = train(history, TrainConfig(alarm=None))
    broker = EmbeddedBroker(broker_kind).start()
    address = broker.address
    published: dict[int, float] = {}
    onsets: list[int] = []
    first_alarm: dict[int, float] = {}
    lock = threading.Lock()

    def on_lines(_asset: str, lines: list[dict]) -> None:
        now = time.perf_counter()
        for line in lines:
            if line.get("prediction") != 1:
                continue
            ts = int(pd.Timestamp(line["timestamp"], tz="UTC").value // 1_000_000)
            with lock:
                episode = next((o for o in reversed(onsets) if o <= ts), None)
                if episode is not None and episode not in first_alarm:
                    first_alarm[episode] = now

    scorer = StreamingScorer(model, CallbackSink(on_lines))
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        scorer.handle(message.payload)

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"latency-sub-{time.time_ns()}")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.on_connect = lambda c, *_a: c.subscribe(TELEMETRY_FILTER, qos=1)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"latency-pub-{time.time_ns()}")
    try:
        sub.connect(address.host, address.port, keepalive=30)
        sub.loop_start()
        if not subscribed.wait(20):
            raise RuntimeError(f"{address.url}: subscription not acknowledged")
        pub.connect(address.host, address.port, keepalive=30)
        pub.loop_start()
        period = 1.0 / rate
        seq = 0
        base_ms = int(time.time() * 1000)
        next_at = time.perf_counter()
        for _episode in range(faults):
            normal = _normal(rng, 20)
            faulty = _normal(rng, 10)
            faulty[:, 1] -= 40.0  # flow drops by ~8 sigma of its normal spread
            for i, row in enumerate(np.vstack([normal, faulty])):
                ts_ms = base_ms + seq * int(period * 1000)
                message = Telemetry(
                    "bench",
                    "pump-01",
                    "latency",
                    seq,
                    (Sample(ts_ms, dict(zip(SENSORS, map(float, row), strict=True))),),
                )
                delay = next_at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                next_at += period
                if i == 20:
                    with lock:
                        onsets.append(ts_ms)
                published[ts_ms] = time.perf_counter()
                pub.publish(message.topic, encode(message), qos=1)
                seq += 1
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline:
            with lock:
                if len(first_alarm) >= len(onsets):
                    break
            time.sleep(0.05)
    finally:
        stop_client(pub)
        stop_client(sub)
        broker.close()
    latencies = sorted((first_alarm[o] - published[o]) * 1000 for o in onsets if o in first_alarm)
    return {
        "samples": len(latencies),
        **_percentiles(latencies),
        "rate_readings_per_s": rate,
    }
