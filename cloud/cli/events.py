"""``plantwatch events``: ``ListInferenceEvents`` (maximal runs of prediction = 1)."""

from __future__ import annotations

import argparse

from cloud.cli.output import print_json
from cloud.runtime.layout import DEFAULT_DATA_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", required=True, help="InferenceSchedulerName")
    parser.add_argument("--start", help="IntervalStartTime (events ending at or after it)")
    parser.add_argument("--end", help="IntervalEndTime (events starting before it)")
    parser.add_argument("--data", default=DEFAULT_DATA_DIR, help="state folder")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    from cloud.cli.model import _timestamp
    from cloud.cli.schedulers import LocalStack
    from cloud.inference.events import list_events
    from cloud.inference.scheduler import list_executions, load_config

    stack = LocalStack(args.data)
    config = load_config(stack.state, args.scheduler)
    start = _timestamp(args.start, "start")
    end = _timestamp(args.end, "end")
    events = list_events(
        list_executions(stack.state, args.scheduler),
        stack.bucket(config.output_bucket),
        config.output_prefix,
        start.to_pydatetime() if start is not None else None,
        end.to_pydatetime() if end is not None else None,
    )
    rows = [event.to_summary() for event in events]
    if args.json:
        print_json(rows)
    else:
        for event in events:
            top = max(event.diagnostics, key=lambda d: d["value"], default=None)
            where = f"{event.component}\t" if event.component else ""
            print(
                f"{where}{event.start:%Y-%m-%dT%H:%M:%SZ}\t{event.end:%Y-%m-%dT%H:%M:%SZ}\t"
                f"{event.duration_s} s\ttop: {top['name'] if top else '-'}"
            )
    return 0
