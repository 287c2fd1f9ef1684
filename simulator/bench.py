"""``bench sim``: readings/s the simulator generates, and generates *and* publishes.

A reading is one sample of one asset (one row of all its sensors). Three figures:

* ``generate_readings_per_s``: fleet stepping into wire ``Sample`` objects (what a sink gets);
* ``generate_array_readings_per_s``: the vectorised core alone (rows as numpy arrays);
* ``readings_per_s``: generation + encoding + QoS 1 publishing to a real broker, all acked.

Each figure is the median of ``--repeat`` runs.

The same-run ``baseline`` publishes pre-encoded payloads of the same size with the same
client and no generation (``ratio`` = ours / that). ``broker_limit`` is the broker's own
publish->subscribe rate for those payloads (as ``bench broker`` measures it): the rate an
ingest pipeline behind the broker can see at most. ``ratio_to_broker_limit`` >= 1 means the
simulator publishes faster than the broker can deliver.
"""

from __future__ import annotations

import argparse
import statistics
import time

from cloud.cli import status
from edge.cliargs import non_negative_int, positive_float, positive_int, rate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--assets", type=positive_int, default=100, help="simulated pumps (default 100)"
    )
    parser.add_argument(
        "--rate",
        type=rate(bare="period", as_period=True),
        default=1.0,
        help="sample period (a bare number is seconds: 1, 1s) or readings per unit (1/s) "
        "(default 1s)",
    )
    parser.add_argument(
        "--seconds", type=positive_float, default=1.0, help="wall time per generation run"
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=3, help="runs of each; the median counts"
    )
    parser.add_argument(
        "--publish-readings", type=non_negative_int, default=50_000, help="0 = skip publishing"
    )
    parser.add_argument(
        "--per-message", type=positive_int, default=20, help="samples per MQTT message"
    )
    parser.add_argument(
        "--limit-messages",
        type=positive_int,
        default=5_000,
        help="messages of the broker-limit run",
    )
    parser.add_argument(
        "--broker", default="auto", choices=("auto", "amqtt", "mosquitto"), help="embedded broker"
    )


def _generation(assets: int, rate: float, seconds: float, arrays: bool) -> tuple[int, float, int]:
    from simulator.fleet import AssetSpec, FleetSimulator

    specs = [AssetSpec(f"pump-{i:04d}", "pump", i) for i in range(assets)]
    fleet = FleetSimulator(specs, None, start=1_767_225_600.0, rate_s=rate, seed=1)
    chunk = 60.0 * rate
    readings = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        until = fleet.now + chunk
        if arrays:
            readings += sum(len(b.t) for b in fleet.step_blocks(until).values())
        else:
            readings += sum(len(s) for s in fleet.step(until).values())
    return readings, time.perf_counter() - began, len(fleet.sensors("pump"))


def _publish(url: str, assets: int, rate: float, target: int, per_message: int) -> dict[str, float]:
    from simulator.fleet import AssetSpec, FleetSimulator
    from simulator.runner import DirectPublisher

    specs = [AssetSpec(f"pump-{i:04d}", "pump", i) for i in range(assets)]
    fleet = FleetSimulator(specs, None, start=1_767_225_600.0, rate_s=rate, seed=1)
    sender = f"bench-sim-{time.time_ns()}"
    pub = DirectPublisher(url, site="bench", sender=sender, samples_per_message=per_message)
    readings = 0
    began = time.perf_counter()
    while readings < target:
        for asset, samples in fleet.step(fleet.now + per_message * rate).items():
            pub(asset, samples)
            readings += len(samples)
    pub.flush(timeout=300)
    elapsed = time.perf_counter() - began
    messages = pub.messages
    pub.close()
    return {"readings": readings, "messages": messages, "seconds": elapsed}


def _baseline(url: str, messages: int, payload: bytes) -> float:
    import paho.mqtt.client as mqtt

    from cloud.adapters.local.mqtt_url import parse_broker_url

    address = parse_broker_url(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sim-baseline")
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect(address.host, address.port, keepalive=30)
    client.loop_start()
    began = time.perf_counter()
    last = None
    for _ in range(messages):
        last = client.publish("dt/plantwatch/bench/pump-0000/telemetry", payload, qos=1)
    if last is not None:
        last.wait_for_publish(300)
    elapsed = time.perf_counter() - began
    client.disconnect()  # first: it wakes the network thread, which loop_stop waits for
    client.loop_stop()
    return messages / elapsed


def run(args: argparse.Namespace) -> int:
    from cloud.bench.mqtt_load import pubsub_rate
    from cloud.cli.output import print_report, stderr
    from cloud.runtime.broker import EmbeddedBroker
    from edge.wire import Telemetry, encode
    from simulator.fleet import AssetSpec, FleetSimulator

    repeat = max(1, args.repeat)
    runs = [_generation(args.assets, args.rate, args.seconds, arrays=False) for _ in range(repeat)]
    sensors = runs[0][2]
    rate = statistics.median(r / s for r, s, _ in runs)
    array_rate = statistics.median(
        r / s
        for r, s, _ in (
            _generation(args.assets, args.rate, args.seconds, arrays=True) for _ in range(repeat)
        )
    )
    report: dict[str, object] = {
        "assets": args.assets,
        "sensors_per_asset": sensors,
        "generate_readings_per_s": round(rate, 1),
        "generate_sensor_values_per_s": round(rate * sensors, 1),
        "generate_array_readings_per_s": round(array_rate, 1),
        "generate_array_sensor_values_per_s": round(array_rate * sensors, 1),
        "repeat": repeat,
    }
    stderr.print(
        f"generation: {report['generate_readings_per_s']:,.0f} readings/s as samples, "
        f"{report['generate_array_readings_per_s']:,.0f} as arrays"
    )
    if args.publish_readings > 0:
        with EmbeddedBroker(args.broker) as broker:
            pubs = [
                _publish(
                    broker.url, args.assets, args.rate, args.publish_readings, args.per_message
                )
                for _ in range(repeat)
            ]
            pub = sorted(pubs, key=lambda p: p["readings"] / p["seconds"])[len(pubs) // 2]
            fleet = FleetSimulator(
                [AssetSpec("pump-0000", "pump", 0)], None, start=1_767_225_600.0, rate_s=args.rate
            )
            samples = fleet.step(fleet.now + args.per_message * args.rate)["pump-0000"]
            payload = encode(Telemetry("bench", "pump-0000", "bench-sim", 0, tuple(samples)))
            base = _baseline(broker.url, int(pub["messages"]), payload)
            limit = pubsub_rate(broker.url, args.limit_messages, len(payload), qos=1)
            report["broker"] = broker.kind
        msgs_per_s = pub["messages"] / pub["seconds"]
        report.update(
            {
                "readings_per_s": round(pub["readings"] / pub["seconds"], 1),
                "sensor_values_per_s": round(pub["readings"] * sensors / pub["seconds"], 1),
                "messages_per_s": round(msgs_per_s, 1),
                "samples_per_message": args.per_message,
                "payload_bytes": len(payload),
                "published_readings": int(pub["readings"]),
                "baseline": {"msgs_per_s": round(base, 1), "what": "pre-encoded, same client"},
                "ratio": round(msgs_per_s / base, 3),
                "broker_limit": {
                    "msgs_per_s": round(limit.msgs_per_s, 1),
                    "readings_per_s": round(limit.msgs_per_s * args.per_message, 1),
                    "what": "same payloads published and received by a subscriber (bench broker)",
                },
                "ratio_to_broker_limit": round(msgs_per_s / limit.msgs_per_s, 3),
            }
        )
        stderr.print(
            f"publish ({report['broker']}): {report['readings_per_s']:,.0f} readings/s, "
            f"{msgs_per_s:,.0f} msgs/s; baseline {base:,.0f} msgs/s; "
            f"broker pub->sub limit {limit.msgs_per_s:,.0f} msgs/s"
        )
    print_report(report, as_json=args.json)
    return status.SUCCESS
