"""``plantwatch cost``: the monthly AWS bill of the deployment, per service, and the retired
L4E + IoT Events setup for comparison."""

from __future__ import annotations

import argparse

from cloud.cli.output import Column, print_json, print_line, print_table
from edge.cliargs import float_range, positive_int, rate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--assets",
        type=positive_int,
        help="fleet size (default: report 100, 1,000 and 10,000 assets)",
    )
    parser.add_argument(
        "--rate",
        type=rate(bare="hz"),
        default=1.0,
        help="readings per second per asset (a bare number: 1, 1/s) or a sample period (10s) "
        "(default 1/s)",
    )
    parser.add_argument(
        "--readings-per-message",
        type=positive_int,
        default=20,
        help="agent batching (samples_per_message); decides the IoT Core bill (default 20)",
    )
    parser.add_argument(
        "--sensors", type=positive_int, default=10, help="sensors per reading (default 10)"
    )
    parser.add_argument(
        "--anomalous-pct",
        type=float_range(0.0, 100.0, what="a percentage from 0 to 100"),
        default=2.0,
        help="share of result rows flagged anomalous, each one a log line (default 2)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    from infra.cost import DEFAULT_FLEETS, report

    fleets = (args.assets,) if args.assets is not None else DEFAULT_FLEETS
    doc = report(
        fleets,
        rate_per_s=args.rate,
        readings_per_message=args.readings_per_message,
        sensors=args.sensors,
        anomalous_share=args.anomalous_pct / 100,
    )
    if args.json:
        print_json(doc)
        return 0
    keys = [str(n) for n in fleets]
    services = list(doc[keys[0]]["services_usd_per_month"])
    rows = [
        {"item": name, **{k: doc[k]["services_usd_per_month"][name] for k in keys}}
        for name in services
    ]
    rows.append({"item": "total USD/month", **{k: doc[k]["total_usd_per_month"] for k in keys}})
    rows.append(
        {"item": "per asset USD/month", **{k: doc[k]["per_asset_usd_per_month"] for k in keys}}
    )
    rows.append(
        {
            "item": "retired L4E + IoT Events, per asset",
            **{k: doc[k]["retired"]["per_asset_usd_per_month"] for k in keys},
        }
    )
    columns = [Column("service", "item")] + [Column(f"{k} assets", k, "right") for k in keys]
    print_table(rows, columns)
    print_line(
        f"at {args.rate:g} readings/s per asset, {args.readings_per_message} readings per "
        f"message, {args.sensors} sensors, {args.anomalous_pct:g} % of rows anomalous; "
        "us-east-1 list prices (infra/prices.json)"
    )
    return 0
