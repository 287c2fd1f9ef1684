"""``plantwatch alarms``: alarm models and what operators do with their alarms.

- ``validate``: CreateAlarmModel JSON, with the detector validator's conventions.
- ``run``: replay messages and operator actions through an alarm model offline
  (:mod:`cloud.cli.alarms_replay`).
- ``list``: alarm instances, their states, since when, the last value, reminders, and the
  notifications the per-asset limit suppressed.
- ``ack|snooze|reset|enable|disable ALARM [KEY]``: operator actions. Beside a running stack
  the request goes to it and this command waits for the result; with no stack running it is
  applied to the stored state directly. An action that does not fit the alarm's state exits 2
  naming the state.
- ``history [ALARM [KEY]]``: every state change and operator action: who, when, the note.
- ``sent``: the alerts sent, from the local outbox ``DIR/alerts.jsonl``.
- ``dead-letters``: the alerts and shadow commands the durable outbox gave up on (refused,
  or 50 failed attempts), with why.
- ``redrive KEY ...|--all``: put dead letters back in the outbox, due now; the running
  ``plantwatch up`` (on AWS the timers function) sends them.
- ``push MODEL.json --aws``: upload an alarm model for the deployed functions
  (``ALARM_MODEL_KEYS``).

``list``, ``history``, ``dead-letters``, ``redrive`` and the operator actions take ``--aws`` (with ``--stack``): they work on
the deployment's state table (:mod:`cloud.cli.aws_target`). An operator action there is
applied by the same engine the Lambdas run, with the same conditional writes, so it is safe
beside them; its notifications go to the deployment's alerts topic.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud.cli import alarms_replay, aws_target, status
from cloud.cli.detectors_replay import input_arguments
from cloud.cli.output import Column, print_fields, print_json, print_line, print_table, stderr
from cloud.runtime.layout import DEFAULT_DATA_DIR as DEFAULT_DATA
from cloud.runtime.layout import DataLayout
from edge.cliargs import add_subcommands
from edge.errors import PlantwatchError, UserError
from edge.user_files import parse_problem

ACTIONS = {
    "ack": "acknowledge an ACTIVE or LATCHED alarm",
    "snooze": "silence an alarm for a while (SNOOZE_DISABLED), then NORMAL",
    "reset": "return an alarm to NORMAL",
    "enable": "enable a DISABLED alarm",
    "disable": "disable an alarm; data is ignored until it is enabled",
}
_HOW = (
    " Beside a running `plantwatch up` the request goes to the stack and this command waits"
    " for its result; with no stack running it is applied to DIR/state.db directly. With"
    " --aws it is applied to the deployment's state table, beside the running functions."
    " Exit 0 done, 2 when the action does not fit the alarm's state (the message names the"
    " state)."
)


def _data(parser: argparse.ArgumentParser, holds: str) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(DEFAULT_DATA),
        metavar="DIR",
        help=f"runtime data directory holding {holds} (default: {DEFAULT_DATA})",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_subcommands(parser, "action")
    validate = sub.add_parser(
        "validate",
        help="validate CreateAlarmModel JSON",
        description="Validate a CreateAlarmModel body (and the CreateInput bodies it reads)"
        " as AWS IoT Events would. Exit 0 valid, 2 with one line naming the JSON path.",
    )
    validate.add_argument("model", type=Path, metavar="MODEL.json", help="CreateAlarmModel JSON")
    input_arguments(validate)
    validate.add_argument("--json", action="store_true", help="print one JSON document")
    alarms_replay.add_run_arguments(sub)

    listing = sub.add_parser(
        "list",
        help="alarm instances: state, since, last value",
        description="Alarm instances of a runtime: state, since when, the last value, "
        "reminders sent, notifications the per-asset limit suppressed, the last operator action.",
    )
    _data(listing, "state.db")
    listing.add_argument("--alarm", help="only this alarm model")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    aws_target.add_arguments(listing, aws_target.STATE)

    for name, summary in ACTIONS.items():
        child = sub.add_parser(name, help=summary, description=summary.capitalize() + "." + _HOW)
        child.add_argument("alarm", metavar="ALARM", help="alarm model name")
        child.add_argument(
            "key", nargs="?", metavar="KEY", help="key value (omit for a model without key)"
        )
        if name == "snooze":
            child.add_argument(
                "--for",
                dest="duration",
                required=True,
                metavar="DURATION",
                help="how long: PT30M, 30m, 2h",
            )
        child.add_argument("--note", default="", help="what you did or why (at most 256 chars)")
        child.add_argument(
            "--who", default=None, help="who acts (default: the login name of this user)"
        )
        _data(child, "state.db")
        child.add_argument("--json", action="store_true", help="print one JSON document")
        aws_target.add_arguments(child, aws_target.STATE, aws_target.ALERTS)

    history = sub.add_parser(
        "history",
        help="state changes and operator actions",
        description="Every state change, reminder and operator action of a runtime's alarms:"
        " when, who and the note, oldest first.",
    )
    history.add_argument("alarm", nargs="?", metavar="ALARM", help="alarm model (default: all)")
    history.add_argument("key", nargs="?", metavar="KEY", help="key value (default: all)")
    _data(history, "state.db")
    history.add_argument("--json", action="store_true", help="print one JSON document")
    aws_target.add_arguments(history, aws_target.STATE)

    sent = sub.add_parser(
        "sent",
        help="alerts sent, from the outbox alerts.jsonl",
        description="The alerts detectors and alarms sent, from the local outbox"
        " DIR/alerts.jsonl: one row per alert (its email and SMS together), oldest first.",
    )
    _data(sent, "alerts.jsonl")
    sent.add_argument("--asset", help="only alerts for this asset")
    sent.add_argument("--json", action="store_true", help="print one JSON document")

    dead = sub.add_parser(
        "dead-letters",
        help="alerts and shadow commands the outbox gave up on",
        description="The alerts (sns) and shadow commands (iotTopicPublish) the durable outbox"
        " stopped retrying: refused by the service, or failed 50 times. One row each: key,"
        " action, attempts, times redriven, why, the last error (clipped in the table, whole"
        " with --json) and when it was last tried. Fix the cause, then `alarms redrive`.",
    )
    _data(dead, "state.db")
    dead.add_argument("--json", action="store_true", help="print one JSON document")
    aws_target.add_arguments(dead, aws_target.STATE)

    redrive = sub.add_parser(
        "redrive",
        help="put dead letters back in the outbox, due now",
        description="Move dead letters back to the outbox, due now with their attempts reset"
        " (each counts how often it was redriven); `plantwatch up` running with detectors"
        " sends them on its next step (on AWS the timers function). Each is claimed with a"
        " conditional"
        " write, so a redrive racing another, or a running stack, cannot send it twice. Exit"
        " 0 done, 2 when a KEY names no dead letter (nothing is redriven then).",
    )
    redrive.add_argument(
        "keys", nargs="*", metavar="KEY", help="dead-letter key, as `alarms dead-letters` shows it"
    )
    redrive.add_argument("--all", action="store_true", help="every dead letter")
    redrive.add_argument(
        "--dry-run", action="store_true", help="say what would be redriven; change nothing"
    )
    _data(redrive, "state.db")
    redrive.add_argument("--json", action="store_true", help="print one JSON document")
    aws_target.add_arguments(redrive, aws_target.STATE)

    push = sub.add_parser(
        "push",
        help="upload an alarm model to the AWS deployment's artifacts bucket",
        description="Validate a CreateAlarmModel body against the results feeder's input (as"
        " the deployed functions load it) and upload it under alarms/ in the artifacts bucket;"
        " prints the key to deploy with -c alarm_model_keys=KEY[,KEY...].",
    )
    push.add_argument("model", type=Path, metavar="MODEL.json", help="CreateAlarmModel JSON")
    push.add_argument("--json", action="store_true", help="print one JSON document")
    aws_target.add_arguments(push, aws_target.ARTIFACTS, required=True)


def run(args: argparse.Namespace) -> int:
    if args.action == "validate":
        return _validate(args)
    if args.action == "push":
        return _push(args)
    if args.action == "run":
        return alarms_replay.run_replay(args)
    if args.action == "sent":
        return _sent(args)
    if args.action == "list":
        return _list(args)
    if args.action == "history":
        return _history(args)
    if args.action == "dead-letters":
        return _dead_letters(args)
    if args.action == "redrive":
        return _redrive(args)
    return _operate(args)


# ---------------------------------------------------------------- validate


def _validate(args: argparse.Namespace) -> int:
    from cloud.cli.template_values import parameter_values
    from cloud.detectors.alarms.model import check_alarm_references
    from cloud.migrate.iotevents import load_model_and_inputs

    model, inputs = load_model_and_inputs(
        args.model, args.inputs, "alarm", parameter_values(args.parameters)
    )
    warnings = check_alarm_references(model, inputs)
    for warning in warnings:
        stderr.print(f"warning: {warning}", markup=False, soft_wrap=True)
    rule = model.rule
    summary = {
        "valid": True,
        "alarmModelName": model.name,
        "key": model.key,
        "severity": model.severity,
        "rule": f"{rule.input_property_text} {rule.operator} {rule.threshold_text}",
        "acknowledgeFlow": model.acknowledge_flow,
        "disabledOnInitialization": model.disabled_on_initialization,
        "notificationActions": len(model.notifications),
        "alarmActions": [a.kind for a in model.actions],
        "reminderInterval_s": model.reminder_interval_s,
        "reminderCap": model.reminder_cap,
        "inputs": [i.name for i in inputs],
        "warnings": warnings,
    }
    if args.json:
        print_json(summary)
        return status.SUCCESS
    reminders = (
        f"reminders every {model.reminder_interval_s:g} s, at most {model.reminder_cap}"
        if model.reminder_interval_s
        else "no reminders"
    )
    print_line(
        f"{args.model.name}: valid alarm model {model.name!r}: {summary['rule']},"
        f" key {model.key or '(none)'}, severity {'-' if model.severity is None else model.severity},"
        f" acknowledge flow {'on' if model.acknowledge_flow else 'off'},"
        f" starts {'DISABLED' if model.disabled_on_initialization else 'NORMAL'}, {reminders};"
        f" inputs {', '.join(i.name for i in inputs)}"
    )
    return status.SUCCESS


# ---------------------------------------------------------------- reading the store


def _open(args: argparse.Namespace) -> Any:
    """The state store a listing reads: the deployment's table (``--aws``), else the local
    runtime's, opened read-only."""
    if args.aws:
        return aws_target.AwsTarget(args).state()
    # only a missing state.db is "no stack ran here": a directory or broken link is named
    if not os.path.lexists(DataLayout.existing(args.data).state_db):
        from cloud.adapters.local.memory import InMemoryStateStore

        return InMemoryStateStore()  # no stack has run here yet: an empty listing, as executions
    return _store(args.data)


def _close(store: Any) -> None:
    close = getattr(store, "close", None)  # the DynamoDB table holds no connection
    if callable(close):
        close()


def _store(data: Path, *, readonly: bool = True) -> Any:
    """The runtime's state store; listings open it read-only and leave the folder as it was."""
    from cloud.adapters.local.sqlite_state_store import SqliteStateStore

    db = DataLayout.existing(data).state_db
    if not os.path.lexists(db):  # anything else there is named by the store
        raise UserError(f"{db}: no such file (run `plantwatch up --data {data}` first)")
    return SqliteStateStore(db, readonly=readonly)


def _models(store: Any, only: str | None) -> dict[str, dict[str, Any]]:
    from cloud.detectors.alarms.engine import REGISTRY_NAMESPACE

    models = dict(store.items(REGISTRY_NAMESPACE))
    if only is not None:
        if only not in models:
            raise UserError(
                f"unknown alarm model {only!r} (known: {', '.join(models) or 'none yet'})"
            )
        return {only: models[only]}
    return models


def _when(epoch: Any) -> str:
    if not isinstance(epoch, int | float) or isinstance(epoch, bool):
        return ""
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, ValueError, OSError):  # past what a date prints: the number
        return f"{epoch:g}"


def _value(doc: dict[str, Any], operator: str) -> str:
    from cloud.detectors import expr as ex

    if doc.get("value") is None:
        return ""
    from cloud.detectors.alarms.model import OPERATORS

    symbol = OPERATORS.get(operator, operator)
    return f"{ex.format_value(doc['value'])} ({symbol} {ex.format_value(doc.get('threshold'))})"


def _list(args: argparse.Namespace) -> int:
    from cloud.detectors.alarms import load_alarm_model, operations
    from cloud.detectors.alarms.engine import REGISTRY_NAMESPACE, STATES, as_of
    from cloud.detectors.alarms.limits import suppressed_counts
    from cloud.detectors.instances import check_alarm_instance
    from edge.clock import SystemClock

    now = SystemClock().now()  # the clock the stack and the operator actions run on
    store = _open(args)
    try:
        models = _models(store, args.alarm)
        suppressed = suppressed_counts(store)
        rows: list[dict[str, Any]] = []
        for name, registered in models.items():
            # a registry entry it cannot read is named in one line, as `alarms ack` does
            definition, _inputs = operations.registered_definition(name, registered)
            model = load_alarm_model(definition, source=f"{REGISTRY_NAMESPACE}/{name}")
            for key, doc in store.items(f"alarms/{name}"):
                check_alarm_instance(name, key, doc, STATES)  # one line naming a bad one
                doc = dict(as_of(doc, now))  # a snooze that has run out: NORMAL (DescribeAlarm)
                action = doc.get("customer_action") or {}
                config = action.get(
                    f"{str(action.get('actionName', '')).lower()}ActionConfiguration"
                )
                rows.append(
                    {
                        "alarm": name,
                        "key": key,
                        "state": doc["state"],
                        "since": _when(doc.get("since")),
                        "since_epoch": doc.get("since"),
                        "value": doc.get("value"),
                        "threshold": doc.get("threshold"),
                        "last_value": _value(doc, model.rule.operator),
                        "reminders": f"{doc.get('reminders_sent', 0)}/{model.reminder_cap}"
                        if model.reminder_interval_s
                        else "",
                        "next_reminder": _when(doc.get("next_reminder")),
                        "snoozed_until": _when(doc.get("snooze_until")),
                        "suppressed": suppressed.get(key, 0),
                        "last_action": f"{action.get('actionName', '')} by {action.get('who') or '?'}"
                        if action
                        else "",
                        "note": config.get("note", "") if isinstance(config, dict) else "",
                    }
                )
    finally:
        _close(store)
    if args.json:
        print_json(rows)
        return status.SUCCESS
    print_table(
        rows,
        [
            Column("alarm", "alarm"),
            Column("key", "key"),
            Column("state", "state"),
            Column("since (UTC)", "since"),
            Column("last value", "last_value"),
            Column("reminders", "reminders"),
            Column("suppressed", "suppressed", justify="right"),
            Column("last action", "last_action"),
        ],
        empty="no alarm instances yet",
    )
    return status.SUCCESS


def _history(args: argparse.Namespace) -> int:
    from cloud.detectors.alarms.engine import HISTORY_PREFIX

    store = _open(args)
    try:
        rows = []
        for name in _models(store, args.alarm):
            for _id, entry in store.items(f"{HISTORY_PREFIX}{name}"):
                if args.key is not None and entry.get("key") != args.key:
                    continue
                rows.append({"alarm": name, **entry, "when": _when(entry.get("time"))})
    finally:
        _close(store)
    rows.sort(key=lambda r: (r.get("time") or 0, r["alarm"], r.get("key", "")))
    if args.json:
        print_json(rows)
        return status.SUCCESS
    print_table(
        rows,
        [
            Column("when (UTC)", "when"),
            Column("alarm", "alarm"),
            Column("key", "key"),
            Column("action", "action"),
            Column("from", "from"),
            Column("to", "to"),
            Column("who", "who"),
            Column("note", "note"),
        ],
        empty="no alarm history yet",
    )
    return status.SUCCESS


# ---------------------------------------------------------------- dead letters

ERROR_CLIP = 120
"""Characters of a dead letter's last error the table shows (``--json`` has it whole)."""


def _clip(text: str, limit: int = ERROR_CLIP) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dead_letters(args: argparse.Namespace) -> int:
    from cloud.detectors.outbox import DEAD_LETTER_NAMESPACE

    store = _open(args)
    try:
        rows = [_dead_row(key, record) for key, record in store.items(DEAD_LETTER_NAMESPACE)]
    finally:
        _close(store)
    if args.json:
        print_json(rows)
        return status.SUCCESS
    print_table(
        [{**r, "last_error": _clip(r["last_error"])} for r in rows],
        [
            Column("key", "key"),
            Column("kind", "kind"),
            Column("target", "target"),
            Column("event", "event"),
            Column("attempts", "attempts", justify="right"),
            Column("redrives", "redrives", justify="right"),
            Column("why", "dead_reason"),
            Column("last error", "last_error"),
            Column("when (UTC)", "when"),
        ],
        empty="no dead letters",
    )
    return status.SUCCESS


def _dead_row(key: str, record: dict[str, Any]) -> dict[str, Any]:
    request = record.get("request") or {}
    target = request.get("target") or {}
    where = target.get("targetArn") or target.get("mqttTopic")
    model, asset = request.get("detector_model", ""), request.get("key_value")
    return {
        "key": key,
        "kind": request.get("kind", ""),
        "target": where if isinstance(where, str) else json.dumps(target, sort_keys=True),
        "event": f"{model}/{asset or '-'} {request.get('event_name', '')}",
        "attempts": record.get("attempts", 0),
        "redrives": record.get("redrives", 0),
        "dead_reason": record.get("dead_reason", ""),
        "last_error": str(record.get("last_error", "")),
        "when": _when(record.get("last_attempt_at")),
        "last_attempt_at": record.get("last_attempt_at"),
    }


def _redrive(args: argparse.Namespace) -> int:
    from cloud.detectors.alarms.operations import stack_alive
    from cloud.detectors.outbox import UnknownDeadLetterError, redrive
    from edge.clock import SystemClock

    if not args.aws:
        DataLayout.existing(args.data)  # a wrong --data is named before anything else
    if args.all and args.keys:
        raise UserError("redrive: give either KEY ... or --all, not both")
    if not args.all and not args.keys:
        raise UserError(
            "redrive: name the dead letters to redrive (KEY ..., from `plantwatch alarms"
            " dead-letters`) or pass --all"
        )
    if args.aws:
        store: Any = aws_target.AwsTarget(args).state()
    else:
        store = _store(args.data, readonly=args.dry_run)
    try:
        try:
            done = redrive(
                store, SystemClock(), None if args.all else args.keys, dry_run=args.dry_run
            )
        except UnknownDeadLetterError as exc:
            raise UserError(f"{exc}; `plantwatch alarms dead-letters` lists them") from None
        running = not args.aws and stack_alive(store, time.time())
    finally:
        _close(store)
    rows = [{"key": r.key, "status": r.status, "redrives": r.redrives} for r in done]
    if args.json:
        print_json(rows)
    elif not rows:
        print_line("no dead letters")
    for r in [] if args.json else done:
        times = f"{r.redrives} time{'s' if r.redrives != 1 else ''}"
        detail = {
            "redriven": f"redriven ({times}); due now",
            "would redrive": f"would redrive ({times}); nothing changed (--dry-run)",
            "taken": "taken by another redrive under way; left to it",
            "already pending": "already back in the outbox (an earlier redrive stopped);"
            " its dead copy removed",
        }[r.status]
        print_line(f"{r.key}: {detail}")
    if any(r.status == "redriven" for r in done):
        if args.aws:
            hint = "the deployment's timers function sends them on its next run"
        elif running:
            hint = "the running `plantwatch up` sends them on its next step"
        else:
            # the outbox runs in an up with detectors; only one with alarm models beats
            hint = (
                f"`plantwatch up --data {args.data}` sends them on its next step while it"
                " runs with detectors (--model or --detector-model)"
            )
        stderr.print(hint, markup=False, soft_wrap=True)
    return status.SUCCESS


# ---------------------------------------------------------------- operator actions


def _operate(args: argparse.Namespace) -> int:
    from cloud.detectors.alarms import operations
    from cloud.detectors.alarms.operations import SNOOZE_DURATION_MAX
    from cloud.detectors.durations import parse_duration

    if not args.aws:
        DataLayout.existing(args.data)  # a wrong --data is named before anything else
    snooze_s = None
    if args.action == "snooze":
        try:
            snooze_s = parse_duration(args.duration)
        except ValueError as exc:
            raise UserError(f"--for: {exc}") from None
        if snooze_s < 1:
            raise UserError(f"--for: a snooze lasts at least 1 s, got {args.duration!r}")
        if not snooze_s.is_integer() or snooze_s > SNOOZE_DURATION_MAX:
            # snoozeDuration is a whole number of seconds, an Integer, in AWS's API
            raise UserError(
                f"--for: a snooze lasts a whole number of seconds up to {SNOOZE_DURATION_MAX}"
                f" (snoozeDuration), got {args.duration!r}"
            )
    request = operations.OperatorRequest(
        action=operations.VERBS[args.action],
        alarm_model=args.alarm,
        key=args.key,
        note=args.note,
        who=args.who or _login(),
        snooze_s=snooze_s,
    )
    if args.aws:
        described = _on_aws(args, request)
    else:
        store = _store(args.data, readonly=False)
        try:
            _models(store, args.alarm)
            if operations.stack_alive(store, time.time()):
                described = _through_stack(store, request)
            else:
                described = _directly(store, args.data, request)
        finally:
            _close(store)
    if args.json:
        print_json(described)
        return status.SUCCESS
    alarm = described["alarm"]
    print_line(
        f"{alarm['alarmModelName']}/{alarm.get('keyValue', '-')}:"
        f" {alarm['alarmState']['stateName']} ({request.action.lower()} by {request.who}"
        + (f": {request.note}" if request.note else "")
        + ")"
    )
    return status.SUCCESS


def _through_stack(store: Any, request: Any) -> dict[str, Any]:
    """The running stack owns the alarm's state: queue the request and wait for its result."""
    from cloud.detectors.alarms import operations

    key = operations.submit(store, request, time.time())
    result = operations.wait(store, key)
    if result is None:
        raise PlantwatchError(
            "the running stack did not apply the request within 15 s; it stays queued"
        )
    if result["status"] == "rejected":
        raise UserError(result["message"])
    if result["status"] != "done":
        raise PlantwatchError(result.get("message", "the stack failed to apply the request"))
    return result["alarm"]


def _directly(store: Any, data: Path, request: Any) -> dict[str, Any]:
    """No stack is running: apply the request to the stored state here."""
    from cloud.adapters.local import OutboxNotifier
    from cloud.detectors.actions import LocalActionSink
    from cloud.detectors.alarms import NotificationLimiter, operations
    from cloud.detectors.outbox import DeliveryOutbox
    from edge.clock import SystemClock

    clock = SystemClock()
    notifier = OutboxNotifier(DataLayout(data).alerts, clock=clock)
    limiter = NotificationLimiter(store)
    sink = LocalActionSink(notifier, None, state=store, limiter=limiter)
    # What fails to send here stays in the outbox, for the next plantwatch up to retry.
    engine = operations.engine_from_store(
        store,
        request.alarm_model,
        clock=clock,
        actions=DeliveryOutbox(sink, store, clock),
        limiter=limiter,
    )
    try:
        return operations.apply(engine, request)
    finally:
        engine.close()  # records the hand-over, so no later run sends the notice again


def _on_aws(args: argparse.Namespace, request: Any) -> dict[str, Any]:
    """Apply the request to the deployment's state table, as the functions' engines would:
    the instance is read with its version and written conditionally, so an action racing a
    Lambda on the same alarm is judged again on the state that won. Its notifications go to
    the alerts topic through the durable outbox (a throttled publish is retried by the timers
    function; one SNS refuses every time is kept as a dead letter), with the ``site``
    attribute the functions would give them."""
    from cloud.adapters.aws import IotDataPublisher, SnsNotifier
    from cloud.detectors.actions import LocalActionSink
    from cloud.detectors.alarms import NotificationLimiter, StaticDirectory, operations
    from cloud.detectors.outbox import DeliveryOutbox
    from cloud.handlers.detection import ObservedNotifier
    from edge.clock import SystemClock

    target = aws_target.AwsTarget(args)
    store = target.state()
    _models(store, args.alarm)
    topic = target.name(aws_target.ALERTS)
    clock = SystemClock()
    limiter = NotificationLimiter(store)
    sites = _site_layout(args, target)
    sink = LocalActionSink(
        ObservedNotifier(SnsNotifier(topic, client=target.client("sns")), None, sites),
        IotDataPublisher(target.client("iot-data")),
        email_target=topic,
        sms_target=topic,
        state=store,
        limiter=limiter,
    )
    engine = operations.engine_from_store(
        store,
        request.alarm_model,
        clock=clock,
        actions=DeliveryOutbox(sink, store, clock),
        directory=StaticDirectory(email_address=topic, phone_number=topic),
        limiter=limiter,
        preload=False,
    )
    try:
        return operations.apply(engine, request)
    finally:
        engine.close()


def _site_layout(args: argparse.Namespace, target: aws_target.AwsTarget) -> Any:
    """The deployment's ``DEFAULT_SITE``: this shell's ``DEFAULT_SITE`` if set, else the
    stack's ``DefaultSite`` output when the stack is read anyway, else ``s1``. Only bare
    (default-site) keys need it: ``<site>:<asset>`` keys name their site."""
    import os

    from cloud.handlers import settings
    from cloud.l4e.sites import DEFAULT_SITE, SiteLayout

    if "DEFAULT_SITE" in os.environ:
        return settings.site_layout(os.environ)
    if args.state_table and args.alerts_topic:
        return SiteLayout(DEFAULT_SITE)
    return SiteLayout(target.deployment().default_site or DEFAULT_SITE)


def _push(args: argparse.Namespace) -> int:
    """The key holds a digest of the body, so a changed model is a new key: deploying it
    changes the functions' ``ALARM_MODEL_KEYS``, and new execution environments load it."""
    import hashlib

    from cloud.detectors.alarms.model import check_alarm_references, load_alarm_model
    from cloud.detectors.model import default_detector_paths, load_input
    from infra.config import ALARMS_PREFIX

    body = args.model.read_bytes()
    model = load_alarm_model(args.model)
    check_alarm_references(model, [load_input(default_detector_paths()[1])])
    key = f"{ALARMS_PREFIX}{model.name}/{hashlib.sha256(body).hexdigest()[:12]}.json"
    target = aws_target.AwsTarget(args)
    bucket = target.name(aws_target.ARTIFACTS)
    target.bucket(bucket).put(key, body)
    deployed = target.deployment().alarm_model_keys if not args.artifacts_bucket else ()
    document = {
        "alarmModelName": model.name,
        "bucket": bucket,
        "key": key,
        "deployed": key in deployed,
    }
    if args.json:
        print_json(document)
    else:
        print_fields({"alarm model": model.name, "uploaded": f"s3://{bucket}/{key}"})
    if key not in deployed:
        keys = ",".join([*(k for k in deployed if f"/{model.name}/" not in k), key])
        stderr.print(
            f"next: plantwatch deploy -c alarm_model_keys={keys} (keep your other -c options)",
            markup=False,
        )
    return status.SUCCESS


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


# ---------------------------------------------------------------- sent alerts


def load_alarms(path: Path) -> list[dict[str, Any]]:
    """Group outbox lines into alerts; malformed lines raise UserError naming the line."""
    alarms: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    with open(path, "rb") as fh:  # decoded line by line, so a bad byte names its line
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"{path}:{number}: not UTF-8 text (byte {exc.start})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                attributes = record.get("attributes") or {}
                channel = record["channel"]
            except (ValueError, RecursionError) as exc:  # JSON errors, 5000 digits, nesting
                raise UserError(
                    f"{path}:{number}: not an outbox record ({parse_problem(exc)})"
                ) from None
            except (KeyError, AttributeError, TypeError) as exc:
                raise UserError(f"{path}:{number}: not an outbox record ({exc})") from None
            alert_id = str(attributes.get("alert_id") or f"line-{number}")
            if alert_id not in alarms:
                order.append(alert_id)
                alarms[alert_id] = {
                    "alert_id": alert_id,
                    "sent_at": record.get("sent_at"),
                    "asset": attributes.get("asset", ""),
                    "kind": attributes.get("kind", ""),
                    "subject": record.get("subject", ""),
                    "email_to": None,
                    "sms_to": None,
                    "sms": None,
                }
            alarm = alarms[alert_id]
            if channel == "email":
                alarm["email_to"] = record.get("target")
                alarm["email_body"] = record.get("body", "")
            elif channel == "sms":
                alarm["sms_to"] = record.get("target")
                alarm["sms"] = record.get("body", "")
    return [alarms[a] for a in order]


def _sent(args: argparse.Namespace) -> int:
    path = DataLayout.existing(args.data).alerts
    alarms = load_alarms(path) if path.is_file() else []
    if args.asset:
        alarms = [a for a in alarms if a["asset"] == args.asset]
    if args.json:
        print_json(alarms)
        return status.SUCCESS
    rows = [{**a, "sent": _when(a["sent_at"]), "sms": a["sms"] or ""} for a in alarms]
    print_table(
        rows,
        [
            Column("sent (UTC)", "sent"),
            Column("kind", "kind"),
            Column("asset", "asset"),
            Column("subject", "subject"),
            Column("SMS", "sms"),
        ],
        title=f"alerts sent ({path})",
        empty=f"no alerts in {path}",
    )
    return status.SUCCESS
