"""``plantwatch schedulers create|start|stop|list|describe|delete|run``: local state.

State lives in ``--data DIR``: ``DIR/state.db`` (namespaces ``schedulers``, ``executions``),
models in ``DIR/models/`` and buckets as folders ``DIR/buckets/<bucket>/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cloud.cli.output import print_json, stderr
from cloud.runtime.layout import DEFAULT_DATA_DIR as DEFAULT_DATA
from cloud.runtime.layout import DataLayout


class LocalStack:
    """The local adapters a scheduler command needs, opened lazily from ``--data``."""

    def __init__(self, data: str | Path) -> None:
        from cloud.adapters.local import SqliteStateStore

        self.root = Path(data)
        self.root.mkdir(parents=True, exist_ok=True)
        self.state = SqliteStateStore(DataLayout(self.root).state_db)

    def bucket(self, name: str) -> Any:
        from cloud.adapters.local import FsObjectStore

        return FsObjectStore(self.root / "buckets" / name, fsync=False)

    def scheduler(self, name: str, clock: Any) -> Any:
        from cloud.inference.scheduler import Scheduler, load_config

        config = load_config(self.state, name)
        model = DataLayout(self.root).registry().load(config.model_name)
        return Scheduler(
            config,
            model,
            self.bucket(config.input_bucket),
            self.bucket(config.output_bucket),
            self.state,
            clock,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create (and start) an inference scheduler")
    _common(create)
    create.add_argument("name")
    create.add_argument("--model", required=True, help="model name (its active version runs)")
    create.add_argument("--input-bucket", default="input")
    create.add_argument("--input-prefix", default="input/")
    create.add_argument("--output-bucket", default="output")
    create.add_argument("--output-prefix", default="output/")
    create.add_argument(
        "--frequency", default="PT5M", help="DataUploadFrequency: PT5M PT10M PT15M PT30M PT1H"
    )
    create.add_argument("--delay", type=int, default=0, help="DataDelayOffsetInMinutes 0-60")
    create.add_argument("--delimiter", default="_", help="ComponentTimestampDelimiter: - _ ' ' ''")
    create.add_argument(
        "--timestamp-format",
        default="yyyyMMddHHmmss",
        help="EPOCH, yyyy-MM-dd-HH-mm-ss or yyyyMMddHHmmss",
    )
    create.add_argument("--tz-offset", default="+00:00", help="InputTimeZoneOffset, e.g. +05:30")
    for action in ("start", "stop", "describe", "delete"):
        child = sub.add_parser(action, help=f"{action} a scheduler")
        _common(child)
        child.add_argument("name")
    listing = sub.add_parser("list", help="all schedulers")
    _common(listing)
    run = sub.add_parser("run", help="run due windows now (or one window) on the wall clock")
    _common(run)
    run.add_argument("name")
    run.add_argument("--window-end", help="run exactly this window (its end, UTC)")
    run.add_argument("--follow", action="store_true", help="keep running windows until Ctrl-C")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=DEFAULT_DATA, help="state folder")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def _show(args: argparse.Namespace, document: Any) -> None:
    if args.json:
        print_json(document)
    elif isinstance(document, list):
        for row in document:
            print("\t".join(str(v) for v in row.values()))
    else:
        for key, value in document.items():
            print(f"{key}: {value}")


def run(args: argparse.Namespace) -> int:
    from cloud.inference import scheduler as engine
    from cloud.l4e.naming import InputNaming
    from edge.clock import SystemClock

    stack = LocalStack(args.data)
    clock = SystemClock()
    if args.action == "create":
        config = engine.SchedulerConfig(
            name=args.name,
            model_name=args.model,
            input_prefix=args.input_prefix,
            output_prefix=args.output_prefix,
            upload_frequency=args.frequency,
            delay_offset_min=args.delay,
            naming=InputNaming(args.delimiter, args.timestamp_format, args.tz_offset),
            input_bucket=args.input_bucket,
            output_bucket=args.output_bucket,
        )
        model = DataLayout(stack.root).registry().load(args.model)
        rate = model.config.sampling_rate
        from cloud.inference.model import SAMPLING_SECONDS
        from edge.errors import ConfigError

        if rate is not None and config.frequency_s < SAMPLING_SECONDS[rate]:
            raise ConfigError(
                f"--frequency {args.frequency}: shorter than model {args.model}'s "
                f"TargetSamplingRate {rate}"
            )
        engine.create_scheduler(stack.state, config, clock.now())
        _show(args, engine.describe_scheduler(stack.state, args.name))
    elif args.action == "start":
        engine.start_scheduler(stack.state, args.name, clock.now())
        _show(args, engine.describe_scheduler(stack.state, args.name))
    elif args.action == "stop":
        engine.stop_scheduler(stack.state, args.name)
        _show(args, engine.describe_scheduler(stack.state, args.name))
    elif args.action == "describe":
        _show(args, engine.describe_scheduler(stack.state, args.name))
    elif args.action == "delete":
        engine.delete_scheduler(stack.state, args.name)
        _show(args, {"deleted": args.name})
    elif args.action == "list":
        rows = [
            {
                "InferenceSchedulerName": name,
                "ModelName": doc["config"]["model_name"],
                "Status": doc.get("status"),
                "DataUploadFrequency": doc["config"]["upload_frequency"],
                "LatestInferenceResult": doc.get("latest_inference_result"),
            }
            for name, doc in stack.state.items(engine.SCHEDULERS_NS)
            if "config" in doc
        ]
        _show(args, rows)
    else:
        return _run(args, stack, clock)
    return 0


def _run(args: argparse.Namespace, stack: LocalStack, clock: Any) -> int:
    from cloud.cli.model import _timestamp

    scheduler = stack.scheduler(args.name, clock)
    if args.window_end:
        executions = [
            scheduler.run_window(_timestamp(args.window_end, "window-end").to_pydatetime())
        ]
    else:
        executions = scheduler.run_due()
        while args.follow:
            for execution in executions:
                stderr.print(f"{execution.data_end:%Y-%m-%dT%H:%M:%SZ} {execution.status}")
            clock.sleep(max(1.0, min(30.0, scheduler.next_window() - clock.now())))
            executions = scheduler.run_due()
    _show(args, [e.to_dict() for e in executions])
    return 0 if all(e.status == "SUCCESS" for e in executions) else 1
