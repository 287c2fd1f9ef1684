"""``plantwatch bench NAME``: benchmarks that report, and never fail on a slow machine.

Each benchmark module exposes ``add_arguments(parser)`` and ``run(args) -> int``, keeps
heavy imports inside ``run`` (its module is imported to build ``--help``), and prints
one JSON document with ``--json`` (snake_case keys with a unit suffix; a same-run baseline
sits under ``baseline`` with a ``ratio``).
"""

from __future__ import annotations

import argparse
import importlib

from edge.cliargs import add_subcommands
from edge.errors import PlantwatchError

BENCHES: dict[str, tuple[str, str]] = {
    "broker": (
        "cloud.bench.broker",
        "loopback QoS 1 msgs/s of the embedded broker (and mosquitto)",
    ),
    "edge": ("edge.bench", "agent RSS and CPU at 100 readings/s; backlog replay rate"),
    "sim": ("simulator.bench", "readings/s the simulator generates and publishes"),
    "ingest": ("cloud.bench.ingest", "end-to-end readings/s: publisher -> broker -> rules -> CSV"),
    "latency": ("cloud.bench.latency", "fault onset to result row, streaming mode"),
    "skab": ("cloud.bench.skab", "SKAB protocol: F1, FAR, MAR and NAB scores"),
    "train": ("cloud.bench.train", "model training time and scoring rows/s"),
    "detectors": ("cloud.bench.detectors", "detector engine inputs/s"),
    "shadow": ("cloud.bench.shadow", "local shadow service updates/s"),
    "dashboard": ("cloud.bench.dashboard", "CPU the web dashboard adds to an idle plantwatch up"),
    "archive": (
        "cloud.bench.archive",
        "archive writes/s, a query over 10M readings, ingest with the archive on and off",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_subcommands(parser, "bench")
    for name, (module_name, summary) in BENCHES.items():
        child = sub.add_parser(name, help=summary, description=summary)
        child.set_defaults(_bench_module=module_name)
        child.add_argument("--json", action="store_true", help="print one JSON document")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            child.description = f"{summary} (not available in this build)"
            continue
        module.add_arguments(child)


def run(args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module(args._bench_module)
    except ModuleNotFoundError as exc:
        raise PlantwatchError(f"bench {args.bench}: not available in this build ({exc})") from exc
    return int(module.run(args))
