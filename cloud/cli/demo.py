"""``plantwatch demo``: the whole story on one machine, in accelerated simulated time."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cloud.cli import status
from edge.cliargs import non_negative_int, positive_float
from edge.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        "--data",
        dest="out",
        type=Path,
        metavar="DIR",
        help="data directory: keep everything the demo produced here, for `query`, "
        "`dashboard` and the rest to read with --data (default: a temporary folder, removed "
        "at the end)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folder too (its path is printed)",
    )
    parser.add_argument("--fast", action="store_true", help="shorter run for CI (under 60 s)")
    parser.add_argument(
        "--speed",
        type=positive_float,
        help="simulated seconds per wall second (default 120, or 240 with --fast)",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=7,
        help="seed of the simulated pumps and their history (default 7)",
    )
    parser.add_argument(
        "--broker",
        choices=("amqtt", "mosquitto", "auto"),
        default="amqtt",
        help="embedded broker: amqtt (pip), mosquitto (on PATH) or auto (default amqtt)",
    )
    parser.add_argument(
        "--streaming",
        action="store_true",
        help="score each reading as it arrives: detection in plant seconds, not windows",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as one JSON document"
    )
    from cloud.cli.up import add_dashboard_arguments

    add_dashboard_arguments(parser, free_port=True)
    parser.add_argument(
        "--keep-open",
        action="store_true",
        help="after the story, keep serving the dashboard over its files until Ctrl-C",
    )


def run(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from cloud.cli.output import print_json
    from cloud.cli.up import dashboard_config
    from cloud.runtime.demo import DemoOptions, run_demo

    dashboard = dashboard_config(args)
    if args.keep_open and dashboard is None:
        raise UserError("--keep-open serves the dashboard; it cannot go with --no-dashboard")
    temporary = args.out is None
    out = args.out or Path(tempfile.mkdtemp(prefix="plantwatch-demo-"))
    options = DemoOptions(
        out=out,
        fast=args.fast,
        speed=args.speed,
        seed=args.seed,
        broker_kind=args.broker,
        quiet=args.json,
        streaming=args.streaming,
        keep_files=not temporary or args.keep,
        dashboard=dashboard,
    )
    try:
        summary = run_demo(options)
        if args.keep_open:
            _keep_open(out, dashboard, summary.get("dashboard"))
    finally:
        if temporary and not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    if args.json:
        print_json(summary)
    return status.SUCCESS if summary["story_complete"] else status.FAILED


def _keep_open(out: Path, config: Any, url: str | None) -> None:
    """Serve the finished demo's folder on the same address until SIGINT or SIGTERM."""
    import dataclasses
    from urllib.parse import urlparse

    from cloud.cli.output import stderr
    from cloud.dashboard.server import DashboardServer
    from edge.signals import stop_event

    port = urlparse(url).port if url else config.port
    done = stop_event()  # before the URL is printed: a stop right after it is a clean one
    server = DashboardServer(out, dataclasses.replace(config, port=port or 0)).start()
    stderr.print(
        f"dashboard: still serving {server.url} over {out}; Ctrl-C to stop",
        markup=False,
        soft_wrap=True,
    )
    try:
        done.wait()
    finally:
        server.stop()
