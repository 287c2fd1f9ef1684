"""``plantwatch alarms run``: try an alarm model offline before it watches a plant.

Replays a messages file (as ``detectors run`` reads it) plus operator lines on a manual clock
and prints every state change with what it would send (alarm actions, notifications, with
their payloads), then the final DescribeAlarm of every instance. Nothing is sent anywhere.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cloud.cli import status
from cloud.cli.detectors_replay import (
    clock_arguments,
    input_arguments,
    replay_steps,
    silenced,
)
from cloud.cli.output import Column, print_json, print_line, print_table, stderr
from edge.errors import UserError


def add_run_arguments(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="replay messages and operator actions through an alarm model offline",
        description="Replay BatchPutMessage-shaped JSONL through an alarm model on a manual"
        " clock, with operator lines shaped after BatchAcknowledgeAlarm, BatchSnoozeAlarm,"
        " BatchResetAlarm, BatchEnableAlarm and BatchDisableAlarm entries. Alarm actions and"
        " notifications are shown with their payloads, never sent. Exit 0 done, 2 bad input.",
    )
    run.add_argument("model", type=Path, metavar="MODEL.json", help="CreateAlarmModel JSON")
    run.add_argument(
        "messages_file",
        nargs="?",
        metavar="MESSAGES.jsonl",
        help='JSONL, one {"inputName", "payload", "messageId"?, "timestamp"?},'
        ' {"messages": [...]}, {"advance": "PT5M"}, {"acknowledge": {"keyValue", "note"?}},'
        ' {"snooze": {"keyValue", "snoozeDuration"}}, {"reset"|"enable"|"disable": {...}} or'
        ' {"<verb>ActionRequests": [...]} per line; - reads stdin',
    )
    run.add_argument("--messages", metavar="FILE", help="the same as MESSAGES.jsonl")
    input_arguments(run)
    clock_arguments(run, "snoozes run out")
    run.add_argument("--json", action="store_true", help="print one JSON document")


def run_replay(args: argparse.Namespace) -> int:
    from cloud.adapters.local import InMemoryStateStore
    from cloud.cli.template_values import parameter_values
    from cloud.detectors.alarms.model import check_alarm_references
    from cloud.detectors.alarms.replay import read_alarm_steps, replay_alarms
    from cloud.detectors.replay import not_read_summary
    from cloud.migrate.iotevents import load_model_and_inputs

    model, inputs = load_model_and_inputs(
        args.model, args.inputs, "alarm", parameter_values(args.parameters)
    )
    if (args.messages_file is None) == (args.messages is None):
        raise UserError("run: give the messages file once, as MESSAGES.jsonl or --messages")
    for warning in check_alarm_references(model, inputs):
        stderr.print(f"warning: {warning}", markup=False, soft_wrap=True)
    start, steps, advance = replay_steps(
        args, args.messages_file or args.messages, read_alarm_steps, model, inputs
    )
    with silenced("cloud.detectors.alarms"):
        result = replay_alarms(
            model, inputs, steps, InMemoryStateStore(), start=start, advance_after=advance
        )
    if args.json:
        print_json(result.document())
        return status.SUCCESS
    print_table(
        [_row(event) for event in result.events],
        [
            Column("time", "time"),
            Column("keyValue", "key"),
            Column("event", "event"),
            Column("state", "state"),
            Column("value", "value", justify="right"),
            Column("threshold", "threshold", justify="right"),
            Column("would send", "sent"),
        ],
        title=f"{result.model} from {result.document()['start']}",
        empty="no state changes (no line reached the model)",
    )
    summary = not_read_summary(result.model, result.not_read)
    if summary:
        print_line(summary)
    print_line()
    print_table(
        [_final(doc["alarm"]) for doc in result.alarms],
        ["keyValue", "state", "value", "lastUpdateTime"],
        title=f"alarms at {result.document()['end']}",
        empty="no alarm instances",
    )
    return status.SUCCESS


def _row(event: dict[str, Any]) -> dict[str, Any]:
    kind = event["type"]
    row = {
        "time": event["time"],
        "key": event.get("keyValue") or "",
        "event": kind,
        "state": "",
        "value": "",
        "threshold": "",
        "sent": "",
    }
    if kind == "change":
        row["event"] = event["event"]
        row["state"] = f"{event['from']} -> {event['to']}"
        row["value"] = _shown(event.get("value"))
        row["threshold"] = _shown(event.get("threshold"))
        sends = [_send(s) for s in event["sent"]]
        if event.get("suppressed"):
            sends.append("notification suppressed (per-asset limit)")
        row["sent"] = "; ".join(sends) or "-"
    elif kind == "created":
        row["state"] = f"-> {event['state']}"
    elif kind == "ignored":
        row["event"] = f"{event['action']} ignored (line {event['line']})"
        row["sent"] = event["reason"]
    elif kind in ("skipped", "error"):
        row["sent"] = event.get("reason") or event.get("message", "")
    return row


def _send(sent: dict[str, Any]) -> str:
    target = sent["target"]
    if sent["action"] == "notification":
        to = ", ".join(target.get("to") or [])
        subject = f" ({target['subject']})" if target.get("subject") else ""
        return f"{target.get('channel')} to {to}{subject}"
    where = next((v for v in target.values() if isinstance(v, str)), "")
    return f"{sent['action']} {where}".strip()


def _shown(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _final(alarm: dict[str, Any]) -> dict[str, Any]:
    from cloud.detectors.replay import iso_time

    rule = alarm["alarmState"].get("ruleEvaluation", {}).get("simpleRuleEvaluation", {})
    return {
        "keyValue": alarm.get("keyValue", "-"),
        "state": alarm["alarmState"]["stateName"],
        "value": rule.get("inputPropertyValue", ""),
        "lastUpdateTime": iso_time(alarm["lastUpdateTime"]),
    }
