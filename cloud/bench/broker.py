"""``bench broker``: loopback QoS 1 msgs/s for the embedded broker, and mosquitto if present.

With ``--auth`` each broker also runs with credentials and the topic ACL of ``up --auth``
(a device credential publishes its own telemetry, the rules credential subscribes), and
the report gives that rate beside the open one measured in the same run.
"""

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
    parser.add_argument(
        "--auth",
        action="store_true",
        help="also measure each broker with credentials and topic ACLs (plantwatch up --auth)",
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
        if args.auth:
            secured = _auth_rates(kind, args)
            brokers[kind]["auth_qos1_msgs_per_s"] = round(statistics.median(secured), 1)
            brokers[kind]["auth_runs_msgs_per_s"] = [round(r, 1) for r in secured]
            brokers[kind]["auth_ratio"] = round(
                brokers[kind]["auth_qos1_msgs_per_s"] / brokers[kind]["qos1_msgs_per_s"], 3
            )
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


def _auth_rates(kind: str, args: argparse.Namespace) -> list[float]:
    import tempfile
    from pathlib import Path

    from cloud.adapters.local.mqtt_url import with_credentials
    from cloud.bench.mqtt_load import TOPIC, pubsub_rate
    from cloud.cli.output import stderr
    from cloud.runtime.broker import EmbeddedBroker
    from cloud.runtime.broker_auth import AuthStore

    _dt, _app, site, thing, _kind = TOPIC.split("/")
    rates = []
    with tempfile.TemporaryDirectory(prefix="plantwatch-bench-auth-") as tmp:
        store = AuthStore(Path(tmp) / "auth").ensure()
        device_password = store.add_device(thing, site)
        with EmbeddedBroker(kind, auth=store) as broker:
            device = with_credentials(broker.url, thing, device_password)
            rules = with_credentials(
                broker.url, "plantwatch-rules", store.service_password("plantwatch-rules")
            )
            for i in range(args.repeat):
                result = pubsub_rate(
                    device, args.messages, args.payload_bytes, qos=1, subscriber_url=rules
                )
                rates.append(result.msgs_per_s)
                stderr.print(
                    f"{kind} with auth, run {i + 1}: {result.msgs_per_s:,.0f} msgs/s "
                    f"({result.received}/{result.sent} received)"
                )
    return rates
