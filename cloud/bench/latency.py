"""``plantwatch bench latency``: fault onset in the published stream -> result row.

A real broker (EmbeddedBroker, amqtt unless ``--broker`` says otherwise), a paho publisher
sending one reading per message in the wire format (``edge.wire.encode``) at ``--rate``
readings/s, and a paho subscriber feeding the streaming scorer. A template model is
trained on generated normal data first. The stream holds ``--faults`` episodes: normal
readings, then a step fault on one sensor. Per episode the latency is the wall time from
publishing the first faulty reading to the scorer emitting the first ``prediction = 1``
row of that episode (so it includes any detection delay of the model and debounce).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from cloud.cli.output import print_report, stderr
from edge.cliargs import positive_float, positive_int

SENSORS = ("motor_current", "flow", "pressure", "temperature")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--faults", type=positive_int, default=20, help="fault episodes (samples)")
    parser.add_argument("--rate", type=positive_float, default=50.0, help="readings per second")
    parser.add_argument(
        "--normal-readings", type=positive_int, default=20, help="before each fault"
    )
    parser.add_argument(
        "--fault-readings",
        type=positive_int,
        default=10,
        help="readings in each fault (default 10)",
    )
    parser.add_argument("--debounce", type=positive_int, default=1, help="rows to raise an alarm")
    parser.add_argument("--smoothing", type=positive_int, default=1, help="model moving-mean rows")
    parser.add_argument("--broker", default="amqtt", help="amqtt, mosquitto or auto")
    parser.add_argument("--broker-url", help="use a running broker instead of starting one")


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


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import paho.mqtt.client as mqtt
    import pandas as pd

    from cloud.inference.model import TrainConfig, train
    from cloud.inference.streaming import CallbackSink, StreamingScorer
    from cloud.runtime.broker import EmbeddedBroker, parse_broker_url
    from edge.wire import TELEMETRY_FILTER, Sample, Telemetry, encode

    rng = np.random.default_rng(7)
    history = pd.DataFrame(
        _normal(rng, 5000),
        index=pd.date_range("2026-01-01", periods=5000, freq="1s", tz="UTC"),
        columns=list(SENSORS),
    )
    model = train(history, TrainConfig(smoothing=args.smoothing))
    broker = None
    if args.broker_url:
        address = parse_broker_url(args.broker_url)
    else:
        broker = EmbeddedBroker(args.broker).start()
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

    scorer = StreamingScorer(model, CallbackSink(on_lines), debounce_rows=args.debounce)
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
        period = 1.0 / args.rate
        seq = 0
        base_ms = int(time.time() * 1000)
        next_at = time.perf_counter()
        for _episode in range(args.faults):
            normal = _normal(rng, args.normal_readings)
            faulty = _normal(rng, args.fault_readings)
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
                if i == args.normal_readings:
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
        pub.loop_stop()
        sub.loop_stop()
        pub.disconnect()
        sub.disconnect()
        if broker is not None:
            broker.close()
    latencies = sorted((first_alarm[o] - published[o]) * 1000 for o in onsets if o in first_alarm)
    if not latencies:
        stderr.print("no fault was detected")
    document = {
        "samples": len(latencies),
        "faults": len(onsets),
        "missed": len(onsets) - len(latencies),
        "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "p95_ms": round(float(np.percentile(latencies, 95)), 2) if latencies else None,
        "max_ms": round(latencies[-1], 2) if latencies else None,
        "rate_readings_per_s": args.rate,
        "debounce_rows": args.debounce,
        "smoothing_rows": args.smoothing,
        "broker": args.broker_url or (broker.kind if broker is not None else args.broker),
        "readings_scored": scorer.stats.readings,
        "goal": {"p95_ms": 1000},
    }
    print_report(document, as_json=args.json)
    return 0
