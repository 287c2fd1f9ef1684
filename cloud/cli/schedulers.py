"""``plantwatch schedulers create|start|stop|list|describe|delete|run``: local or on AWS.

Locally, state lives in ``--data DIR``: ``DIR/state.db`` (namespaces ``schedulers``,
``executions``), models in ``DIR/models/`` and buckets as folders ``DIR/buckets/<bucket>/``.
With ``--aws`` the same engine calls go to the deployment: the state table the inference
function reads, models in the artifacts bucket, S3 buckets (:mod:`cloud.cli.aws_target`).
A scheduler created there must match an EventBridge schedule of the stack (its name,
frequency and delay offset), or the inference function is never invoked for it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from cloud.cli import aws_target
from cloud.cli.output import Column, print_fields, print_json, print_line, print_table, stderr
from cloud.cli.times import TIMESTAMP_FORMATS
from cloud.l4e.naming import DELIMITERS
from cloud.runtime.layout import DEFAULT_DATA_DIR as DEFAULT_DATA
from cloud.runtime.layout import DataLayout
from edge.cliargs import add_subcommands, int_range

UPLOAD_FREQUENCIES = ("PT5M", "PT10M", "PT15M", "PT30M", "PT1H")


class LocalStack:
    """The local adapters a scheduler command needs, opened from ``--data``.

    *readonly* (listing and describing) needs an existing data directory and creates
    nothing in it; a missing ``state.db`` reads as no schedulers and no executions.
    """

    def __init__(self, data: str | Path, *, readonly: bool = False, create: bool = False) -> None:
        from cloud.adapters.local import SqliteStateStore
        from cloud.adapters.local.memory import InMemoryStateStore

        layout = DataLayout.at(data) if create else DataLayout.existing(data)
        self.root = layout.root
        self.where = str(layout.root)
        self.readonly = readonly
        self.state: Any
        if readonly and not os.path.lexists(layout.state_db):  # a directory is not "none"
            self.state = InMemoryStateStore()
        else:
            self.state = SqliteStateStore(layout.state_db, readonly=readonly)

    def close(self) -> None:
        close = getattr(self.state, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def bucket(self, name: str) -> Any:
        from cloud.adapters.local import FsObjectStore
        from cloud.adapters.local.memory import InMemoryObjectStore

        folder = self.root / "buckets" / name
        if self.readonly and not folder.is_dir():
            return InMemoryObjectStore()
        return FsObjectStore(folder, fsync=False)

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


class AwsStack:
    """The deployment's adapters a scheduler command needs (``--aws``): the same interface
    as :class:`LocalStack` over the state table, the artifacts bucket and S3 buckets."""

    def __init__(self, target: aws_target.AwsTarget) -> None:
        self.target = target
        self.state = target.state()
        self.where = f"{self.state.table} ({target.region})"

    def close(self) -> None:
        return None

    def __enter__(self) -> AwsStack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def bucket(self, name: str) -> Any:
        return self.target.bucket(name)

    def scheduler(self, name: str, clock: Any) -> Any:
        from cloud.inference.scheduler import Scheduler, load_config

        config = load_config(self.state, name)
        return Scheduler(
            config,
            self.target.registry().load(config.model_name),
            self.bucket(config.input_bucket),
            self.bucket(config.output_bucket),
            self.state,
            clock,
            arns=self.target.arn_scope(),
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_subcommands(parser, "action")
    create = sub.add_parser(
        "create",
        help="create (and start) an inference scheduler",
        description="Create an inference scheduler (CreateInferenceScheduler) and start it.",
    )
    _common(create)
    create.add_argument("name", help="InferenceSchedulerName")
    create.add_argument("--model", required=True, help="model name (its active version runs)")
    create.add_argument(
        "--input-bucket",
        help="bucket to read: a folder under DIR/buckets/ (default input); with --aws an S3 "
        "bucket (default: the stack's InputBucket)",
    )
    create.add_argument(
        "--input-prefix", default="input/", help="S3InputConfiguration Prefix (default input/)"
    )
    create.add_argument(
        "--output-bucket",
        help="bucket to write: a folder under DIR/buckets/ (default output); with --aws an S3 "
        "bucket (default: the stack's OutputBucket)",
    )
    create.add_argument(
        "--output-prefix",
        default="output/",
        help="S3OutputConfiguration Prefix (default output/)",
    )
    create.add_argument(
        "--frequency",
        "--upload-frequency",
        choices=UPLOAD_FREQUENCIES,
        help="DataUploadFrequency (default PT5M; with --aws the stack's schedule's)",
    )
    create.add_argument(
        "--delay",
        "--delay-offset",
        type=int_range(0, 60, what="a whole number of minutes 0-60"),
        help="DataDelayOffsetInMinutes, 0-60 (default 0; with --aws the stack's schedule's)",
    )
    create.add_argument(
        "--delimiter",
        default="_",
        choices=DELIMITERS,
        metavar="DELIMITER",  # the choices hold a line feed: not for a usage line
        help="ComponentTimestampDelimiter: - _ '' or one whitespace character (default _)",
    )
    create.add_argument(
        "--timestamp-format",
        default="yyyyMMddHHmmss",
        help="EPOCH, yyyy-MM-dd-HH-mm-ss or yyyyMMddHHmmss",
    )
    create.add_argument("--tz-offset", default="+00:00", help="InputTimeZoneOffset, e.g. +05:30")
    for action, summary in (
        ("start", "start a stopped scheduler"),
        ("stop", "stop a scheduler (it keeps its configuration)"),
        ("describe", "show one scheduler (DescribeInferenceScheduler)"),
        ("delete", "delete a scheduler"),
    ):
        child = sub.add_parser(action, help=summary, description=summary)
        _common(child)
        child.add_argument("name", help="InferenceSchedulerName")
    listing = sub.add_parser("list", help="all schedulers", description="List all schedulers.")
    _common(listing)
    run = sub.add_parser(
        "run",
        help="run due windows now (or one window) on the wall clock",
        description="Run the scheduler's due windows now (or one window) on the wall clock.",
    )
    _common(run)
    run.add_argument("name", help="InferenceSchedulerName")
    run.add_argument(
        "--window-end",
        help="run exactly the window ending at this time (a multiple of the frequency): "
        f"{TIMESTAMP_FORMATS}",
    )
    run.add_argument("--follow", action="store_true", help="keep running windows until Ctrl-C")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA,
        metavar="DIR",
        help="data directory holding state.db, models/ and buckets/ (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    aws_target.add_arguments(parser, aws_target.STATE, aws_target.ARTIFACTS)


_LIST_COLUMNS = [
    Column("scheduler", "InferenceSchedulerName"),
    Column("model", "ModelName"),
    Column("status", "Status"),
    Column("frequency", "DataUploadFrequency"),
    Column("latest result", "LatestInferenceResult"),
]
_RUN_COLUMNS = [
    Column("data start", "data_start"),
    Column("data end", "data_end"),
    Column("status", "status"),
    Column("rows", "rows", "right"),
    Column("anomalous", "anomalous"),
    Column("failed reason", "failed_reason"),
]


def run(args: argparse.Namespace) -> int:
    from cloud.inference import scheduler as engine
    from edge.clock import SystemClock

    readonly = args.action in ("list", "describe")
    model = None
    stack: LocalStack | AwsStack
    if args.aws:
        target = aws_target.AwsTarget(args)
        if args.action == "create":
            model = target.registry().load(args.model)
            _aws_create_defaults(args, target)
        stack = AwsStack(target)
    else:
        if args.action == "create":  # check the model before creating anything
            model = DataLayout.planned(args.data).registry().load(args.model)
            args.input_bucket = args.input_bucket or "input"
            args.output_bucket = args.output_bucket or "output"
            args.frequency = args.frequency or "PT5M"
            args.delay = args.delay if args.delay is not None else 0
        stack = LocalStack(args.data, readonly=readonly, create=args.action == "create")
    with stack:
        clock = SystemClock()
        if args.action == "create":
            _create(args, model, stack, clock)
            _describe(args, engine.describe_scheduler(stack.state, args.name))
        elif args.action == "start":
            engine.start_scheduler(stack.state, args.name, clock.now())
            _describe(args, engine.describe_scheduler(stack.state, args.name))
        elif args.action == "stop":
            engine.stop_scheduler(stack.state, args.name)
            _describe(args, engine.describe_scheduler(stack.state, args.name))
        elif args.action == "describe":
            _describe(args, engine.describe_scheduler(stack.state, args.name))
        elif args.action == "delete":
            engine.delete_scheduler(stack.state, args.name)
            if args.json:
                print_json({"deleted": args.name})
            else:
                print_line(f"deleted scheduler {args.name}")
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
            if args.json:
                print_json(rows)
            else:
                print_table(rows, _LIST_COLUMNS, empty=f"no schedulers found in {stack.where}")
        else:
            return _run(args, stack, clock)
    return 0


def _aws_create_defaults(args: argparse.Namespace, target: aws_target.AwsTarget) -> None:
    """Fill the buckets from the stack, and check the scheduler against the stack's
    EventBridge schedules: only a deployed schedule invokes the inference function with
    this name, at its frequency and delay offset. Without a stack (every name given) the
    local defaults apply."""
    from edge.errors import ConfigError

    names_given = all(
        getattr(args, name, None)
        for name in ("state_table", "artifacts_bucket", "input_bucket", "output_bucket")
    )
    args.input_bucket = target.name(aws_target.INPUT)
    args.output_bucket = target.name(aws_target.OUTPUT)
    deployed = {} if names_given else target.deployment().schedulers()
    spec = deployed.get(args.name)
    if deployed and spec is None:
        raise ConfigError(
            f"scheduler {args.name!r}: stack {target.stack!r} has no schedule for it "
            f"(deployed: {', '.join(sorted(deployed))}); name one of those, or add it to the "
            "`schedulers` context and deploy again"
        )
    if spec is None:
        args.frequency = args.frequency or "PT5M"
        args.delay = args.delay if args.delay is not None else 0
        return
    for option, given, wanted in (
        ("--frequency", args.frequency, spec.upload_frequency),
        ("--delay", args.delay, spec.delay_offset_min),
    ):
        if given is not None and given != wanted:
            raise ConfigError(
                f"{option} {given}: the stack's schedule {spec.name!r} fires with "
                f"{spec.upload_frequency} and a {spec.delay_offset_min}-minute offset; "
                "leave the option out, or change the `schedulers` context and deploy again"
            )
    args.frequency, args.delay = spec.upload_frequency, spec.delay_offset_min


def _create(args: argparse.Namespace, model: Any, stack: Any, clock: Any) -> None:
    from cloud.inference import scheduler as engine
    from cloud.l4e.naming import InputNaming
    from edge.errors import ConfigError

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
    problem = engine.frequency_problem(config.frequency_s, model.config.sampling_rate)
    if problem:
        raise ConfigError(f"--frequency {args.frequency}: {problem} (model {args.model})")
    engine.create_scheduler(stack.state, config, clock.now())


def _describe(args: argparse.Namespace, document: dict[str, Any]) -> None:
    if args.json:
        print_json(document)
    else:
        print_fields(document)


def _run(args: argparse.Namespace, stack: Any, clock: Any) -> int:
    """Due windows are run in this process, which no function timeout stops while its
    claims lapse after CLAIM_S, as an invocation's do: each run of due windows keeps
    within that time, and windows left over run on the next (``--follow``: a second on)."""
    from cloud.cli.times import parse_time_option
    from cloud.inference.scheduler import CLAIM_S

    scheduler = stack.scheduler(args.name, clock)
    if args.window_end:
        end = parse_time_option(args.window_end, "window-end").to_pydatetime()
        executions = [scheduler.run_window(end)]
    else:
        executions = scheduler.run_due(budget_s=CLAIM_S)
        while args.follow:
            for execution in executions:
                stderr.print(f"{execution.data_end:%Y-%m-%dT%H:%M:%SZ} {execution.status}")
            clock.sleep(max(1.0, min(30.0, scheduler.next_window() - clock.now())))
            executions = scheduler.run_due(budget_s=CLAIM_S)
    rows = [e.to_dict() for e in executions]
    if args.json:
        print_json(rows)
    else:
        print_table(rows, _RUN_COLUMNS, empty=f"{args.name}: no window due yet")
    return 0 if all(e.status == "SUCCESS" for e in executions) else 1
