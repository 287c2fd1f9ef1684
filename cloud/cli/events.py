"""``plantwatch events``: ``ListInferenceEvents`` (maximal runs of prediction = 1), read-only."""

from __future__ import annotations

import argparse

from cloud.cli.output import Column, print_json, print_table
from cloud.cli.times import TIMESTAMP_FORMATS
from cloud.runtime.layout import DEFAULT_DATA_DIR

COLUMNS = [
    Column("component", "component"),
    Column("start", "start"),
    Column("end", "end"),
    Column("duration s", "duration_s", "right"),
    Column("top sensor", "top"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", required=True, help="InferenceSchedulerName")
    parser.add_argument(
        "--start",
        "--from",
        dest="start",
        metavar="TIME",
        help=f"IntervalStartTime: events ending at or after TIME; {TIMESTAMP_FORMATS}",
    )
    parser.add_argument(
        "--end",
        "--to",
        dest="end",
        metavar="TIME",
        help="IntervalEndTime: events starting before TIME (same forms)",
    )
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="data directory holding state.db and buckets/ (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    from cloud.cli.schedulers import LocalStack
    from cloud.cli.times import parse_time_option
    from cloud.inference.events import list_events
    from cloud.inference.scheduler import list_executions, load_config

    start = parse_time_option(args.start, "start")
    end = parse_time_option(args.end, "end")
    with LocalStack(args.data, readonly=True) as stack:
        config = load_config(stack.state, args.scheduler)
        events = list_events(
            list_executions(stack.state, args.scheduler),
            stack.bucket(config.output_bucket),
            config.output_prefix,
            start.to_pydatetime() if start is not None else None,
            end.to_pydatetime() if end is not None else None,
        )
    if args.json:
        print_json([event.to_summary() for event in events])
        return 0
    rows = []
    for event in events:
        top = max(event.diagnostics, key=lambda d: d["value"], default=None)
        rows.append(
            {
                "component": event.component or "",
                "start": f"{event.start:%Y-%m-%dT%H:%M:%SZ}",
                "end": f"{event.end:%Y-%m-%dT%H:%M:%SZ}",
                "duration_s": event.duration_s,
                "top": f"{top['name']} ({top['value']:.0%})" if top else "",
            }
        )
    columns = COLUMNS if any(r["component"] for r in rows) else COLUMNS[1:]
    print_table(rows, columns, empty=f"no anomalous events for scheduler {args.scheduler}")
    return 0
