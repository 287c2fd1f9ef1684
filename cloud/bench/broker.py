"""``bench broker``: loopback QoS 1 msgs/s for the embedded broker, and mosquitto if present."""

from __future__ import annotations

import argparse
import statistics

from cloud.cli import status
from edge.cliargs import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=positive_int, default=20_000, help="messages per run")
    parser.add_argument(
        "--payload-bytes", type=positive_int, default=300, help="bytes per message (default 300)"
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=3, help="runs per broker; the median counts"
    )


def run(args: argparse.Namespace) -> int:
    from cloud.bench.mqtt_load import pubsub_rate
    from cloud.cli.output import print_report, stderr
    from cloud.runtime.broker import EmbeddedBroker, mosquitto_path

    kinds = ["amqtt"] + (["mosquitto"] if mosquitto_path() else [])
    report: dict[str, object] = {"messages": args.messages, "payload_bytes": args.payload_bytes}
    brokers: dict[str, dict[str, float]] = {}
    for kind in kinds:
        rates = []
        with EmbeddedBroker(kind) as broker:
            for i in range(args.repeat):
                result = pubsub_rate(broker.url, args.messages, args.payload_bytes, qos=1)
                rates.append(result.msgs_per_s)
                stderr.print(
                    f"{kind} run {i + 1}: {result.msgs_per_s:,.0f} msgs/s "
                    f"({result.received}/{result.sent} received)"
                )
        brokers[kind] = {
            "qos1_msgs_per_s": round(statistics.median(rates), 1),
            "runs_msgs_per_s": [round(r, 1) for r in rates],
        }
    report["brokers"] = brokers
    report["embedded"] = "amqtt"
    if "mosquitto" in brokers:
        report["baseline"] = {"broker": "mosquitto", **brokers["mosquitto"]}
        report["ratio"] = round(
            brokers["amqtt"]["qos1_msgs_per_s"] / brokers["mosquitto"]["qos1_msgs_per_s"], 3
        )
    else:
        report["mosquitto"] = "not on PATH"
    print_report(report, as_json=args.json)
    return status.SUCCESS
