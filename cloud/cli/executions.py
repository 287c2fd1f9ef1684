"""``plantwatch executions``: ``ListInferenceExecutions``, newest first."""

from __future__ import annotations

import argparse

from cloud.cli.output import print_json
from cloud.runtime.layout import DEFAULT_DATA_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", help="InferenceSchedulerName (all if omitted)")
    parser.add_argument("--status", choices=("IN_PROGRESS", "SUCCESS", "FAILED"))
    parser.add_argument("--data-start-after", help="only executions with DataStartTime >= this")
    parser.add_argument("--data-end-before", help="only executions with DataEndTime <= this")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--data", default=DEFAULT_DATA_DIR, help="state folder")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    from cloud.cli.model import _timestamp
    from cloud.cli.schedulers import LocalStack
    from cloud.inference.scheduler import list_executions, scheduler_doc

    stack = LocalStack(args.data)
    if args.scheduler:
        scheduler_doc(stack.state, args.scheduler)
    executions = list_executions(stack.state, args.scheduler, args.status)
    after = _timestamp(args.data_start_after, "data-start-after")
    before = _timestamp(args.data_end_before, "data-end-before")
    if after is not None:
        executions = [e for e in executions if e.data_start >= after]
    if before is not None:
        executions = [e for e in executions if e.data_end <= before]
    rows = [_summary(e) for e in executions[: args.limit]]
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            reason = f"  {row['FailedReason']}" if row.get("FailedReason") else ""
            print(
                f"{row['InferenceSchedulerName']}\t{row['DataStartTime']}\t"
                f"{row['DataEndTime']}\t{row['Status']}{reason}"
            )
    return 0


def _summary(execution) -> dict:  # type: ignore[no-untyped-def]
    """``InferenceExecutionSummary`` field names."""
    from cloud.inference.scheduler import iso

    doc = {
        "InferenceSchedulerName": execution.scheduler,
        "ModelName": execution.model_name,
        "ScheduledStartTime": iso(execution.scheduled_start),
        "DataStartTime": iso(execution.data_start),
        "DataEndTime": iso(execution.data_end),
        "Status": execution.status,
    }
    if execution.failed_reason:
        doc["FailedReason"] = execution.failed_reason
    if execution.result_keys:
        doc["CustomerResultObject"] = [{"Key": key} for key in execution.result_keys]
    return doc
