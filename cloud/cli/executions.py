"""``plantwatch executions``: ``ListInferenceExecutions``, newest first (read-only)."""

from __future__ import annotations

import argparse
from typing import Any

from cloud.cli.output import Column, print_json, print_table
from cloud.cli.times import TIMESTAMP_FORMATS
from cloud.runtime.layout import DEFAULT_DATA_DIR
from edge.cliargs import positive_int

COLUMNS = [
    Column("scheduler", "InferenceSchedulerName"),
    Column("model version", "version"),
    Column("data start", "DataStartTime"),
    Column("data end", "DataEndTime"),
    Column("status", "Status"),
    Column("failed reason", "FailedReason"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", help="InferenceSchedulerName (all if omitted)")
    parser.add_argument(
        "--status", choices=("IN_PROGRESS", "SUCCESS", "FAILED"), help="only this status"
    )
    parser.add_argument(
        "--data-start-after",
        metavar="TIME",
        help=f"only executions with DataStartTime at or after TIME: {TIMESTAMP_FORMATS}",
    )
    parser.add_argument(
        "--data-end-before",
        metavar="TIME",
        help="only executions with DataEndTime at or before TIME (same forms)",
    )
    parser.add_argument(
        "--limit", type=positive_int, default=50, help="at most this many (default 50)"
    )
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="data directory holding state.db (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    from cloud.cli.schedulers import LocalStack
    from cloud.cli.times import parse_time_option
    from cloud.inference.scheduler import (
        SCHEDULERS_NS,
        SchedulerConfig,
        list_executions,
        scheduler_doc,
    )
    from edge.errors import ConfigError

    after = parse_time_option(args.data_start_after, "data-start-after")
    before = parse_time_option(args.data_end_before, "data-end-before")
    with LocalStack(args.data, readonly=True) as stack:
        if args.scheduler:
            scheduler_doc(stack.state, args.scheduler)
        executions = list_executions(stack.state, args.scheduler, args.status)
        configs: dict[str, Any] = {}
        for name, doc in stack.state.items(SCHEDULERS_NS):
            try:
                configs[name] = SchedulerConfig.from_dict(doc["config"])
            except (ConfigError, KeyError, TypeError):  # a damaged record: listed without
                configs[name] = None
    if after is not None:
        executions = [e for e in executions if e.data_start >= after]
    if before is not None:
        executions = [e for e in executions if e.data_end <= before]
    rows = [_summary(e, configs.get(e.scheduler)) for e in executions[: args.limit]]
    if args.json:
        print_json(rows)
    else:
        shown = [{**row, "version": row.get("ModelVersion", "-")} for row in rows]
        print_table(shown, COLUMNS, empty="no executions found")
    return 0


def _summary(execution: Any, config: Any) -> dict[str, Any]:
    """``InferenceExecutionSummary`` field names (l4e-contracts §6). ``CustomerResultObject``
    is the S3Object ``{Bucket, Key}`` of the results (the first one for a fleet scheduler,
    whose ``CustomerResultObjects`` lists one per component: plantwatch's extension).
    *config* is the scheduler's (its input and output configuration and output bucket),
    None once the scheduler is deleted: those fields are then left out. ``ModelVersion``
    and the ARNs are left out where the record has none (an older record; ARNs are only
    made where the run knew its Region and account)."""
    from cloud.inference.scheduler import data_configuration, iso

    named = {
        "ModelArn": execution.model_arn,
        "InferenceSchedulerArn": execution.scheduler_arn,
        "ModelVersion": execution.model_version,
        "ModelVersionArn": execution.model_version_arn,
    }
    doc: dict[str, Any] = {
        "InferenceSchedulerName": execution.scheduler,
        "ModelName": execution.model_name,
        **{k: v for k, v in named.items() if v is not None},
        "ScheduledStartTime": iso(execution.scheduled_start),
        "DataStartTime": iso(execution.data_start),
        "DataEndTime": iso(execution.data_end),
        **(data_configuration(config) if config is not None else {}),
        "Status": execution.status,
    }
    bucket = config.output_bucket if config is not None else None
    if execution.failed_reason:
        doc["FailedReason"] = execution.failed_reason
    objects = [
        {"Bucket": bucket, "Key": key} if bucket else {"Key": key} for key in execution.result_keys
    ]
    if objects:
        doc["CustomerResultObject"] = objects[0]
    if len(objects) > 1:
        doc["CustomerResultObjects"] = objects
    return doc
