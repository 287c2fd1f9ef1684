"""``plantwatch rules``: evaluate one rule's SQL, check a rules file, run the rules engine."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cloud.cli import status
from cloud.cli.output import Column, print_json, print_line, print_table, stderr
from edge.cliargs import add_subcommands, non_negative_float
from edge.errors import PlantwatchError, UserError
from edge.signals import stop_event


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_subcommands(parser, "rules_command")

    ev = sub.add_parser(
        "eval",
        help="run one rule's SQL on one message, like the AWS console's SQL test",
        description="Print the message the rule's actions would receive, as JSON; print "
        "nothing when the topic does not match FROM or WHERE is not true.",
    )
    ev.add_argument("--sql", required=True, help="SELECT ... FROM 'filter' [WHERE ...]")
    ev.add_argument("--topic", required=True, help="the MQTT topic the message arrived on")
    ev.add_argument("--payload", required=True, help="the message payload (JSON or any text)")
    ev.add_argument(
        "--clientid", "--client-id", default="n/a", help="publisher's client id for clientid()"
    )
    ev.set_defaults(_action=_eval)

    check = sub.add_parser(
        "check",
        help="validate a rules file (TopicRulePayload JSON)",
        description="Validate a rules file and list its rules.",
    )
    check.add_argument("file", help='rules JSON: {"rules": [{ruleName, topicRulePayload}]}')
    check.add_argument("--json", action="store_true", help="print one JSON document")
    check.set_defaults(_action=_check)

    run = sub.add_parser(
        "run",
        help="run the local rules engine and batcher until SIGINT",
        description="Subscribe to the rules' topics and write L4E input CSVs per window "
        "until SIGINT or SIGTERM.",
    )
    run.add_argument(
        "--broker", "--broker-url", required=True, help="mqtt://[USER:PASSWORD@]HOST:PORT"
    )
    run.add_argument("--store", required=True, help="directory of the input bucket")
    run.add_argument("--spool", help="batcher spool SQLite file (default: STORE.spool.db)")
    run.add_argument("--rules", help="rules file (default: the project's default rules)")
    run.add_argument(
        "--upload-frequency",
        default="PT5M",
        choices=("PT5M", "PT10M", "PT15M", "PT30M", "PT1H"),
        help="DataUploadFrequency (default PT5M)",
    )
    run.add_argument(
        "--grace",
        type=non_negative_float,
        default=30.0,
        help="seconds after a window closes before its file is written (default 30)",
    )
    run.add_argument("--prefix", default="input/", help="input prefix in the store")
    run.add_argument("--delimiter", default="_", help="ComponentTimestampDelimiter")
    run.add_argument("--timestamp-format", default="yyyyMMddHHmmss", help="TimestampFormat")
    run.add_argument("--tz-offset", default="+00:00", help="InputTimeZoneOffset")
    run.add_argument("--known-assets", help="comma-separated allow-list of asset names")
    run.add_argument(
        "--client-id", default="plantwatch-rules", help="MQTT client id (default %(default)s)"
    )
    run.add_argument(
        "--shared-group",
        help="subscribe as $share/GROUP/... (mosquitto) so runners split the load; runners "
        "of a group must use the same --store and --spool",
    )
    run.add_argument(
        "--protocol",
        choices=("3.1.1", "5"),
        default="3.1.1",
        help="MQTT version of the paho client (default 3.1.1)",
    )
    run.add_argument(
        "--client",
        choices=("auto", "paho", "crt"),
        default="auto",
        help="MQTT client: crt (awscrt, MQTT 5, faster), paho, or auto: crt when the broker "
        "accepts MQTT 5, else paho (default auto)",
    )
    run.set_defaults(_action=_run)


def run(args: argparse.Namespace) -> int:
    return int(args._action(args))


def _eval(args: argparse.Namespace) -> int:
    from cloud.rules.evaluate import Message, RuleCostLimitError, evaluate
    from cloud.rules.sql import parse
    from edge.clock import SystemClock
    from edge.wire import split_basic_ingest

    statement = parse(args.sql)
    topic = os.fsencode(args.topic)
    try:
        topic.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"--topic {args.topic!r}: an MQTT topic is UTF-8 text") from None
    if "+" in args.topic or "#" in args.topic:
        raise UserError(f"--topic {args.topic!r}: a message's topic has no wildcards")
    # a Basic Ingest topic runs the rule as the rules runner does: on the topic after the
    # prefix, FROM not checked (and a rule without FROM runs only there)
    ingest = split_basic_ingest(args.topic)
    message = Message(
        topic=args.topic if ingest is None else ingest[1],
        payload=os.fsencode(args.payload),  # the argument's bytes: JSON or any binary
        client_id=args.clientid,
        timestamp_ms=int(SystemClock().now() * 1000),
    )
    try:
        output = evaluate(statement, message, match_from=ingest is None)
    except RuleCostLimitError as exc:  # the runner would quarantine this message
        raise PlantwatchError(str(exc)) from None
    if output is None:
        return status.SUCCESS
    # the action's message as a republish or S3 action receives it: its exact bytes, so
    # Decimals print with all their digits rather than as floats
    sys.stdout.buffer.write(output.to_bytes() + b"\n")
    sys.stdout.flush()
    return status.SUCCESS


def _check(args: argparse.Namespace) -> int:
    from cloud.rules.definitions import load_rules

    rules = load_rules(Path(args.file))
    summary = [
        {
            "ruleName": r.name,
            "from": r.statement.topic_filter,
            "actions": [a.kind for a in r.actions],
            "errorAction": r.error_action.kind if r.error_action else None,
            "disabled": r.disabled,
        }
        for r in rules
    ]
    if args.json:
        print_json(summary)
    else:
        print_table(
            [
                {
                    **item,
                    "from": "(Basic Ingest only)" if item["from"] is None else item["from"],
                    "actions": ", ".join(item["actions"]),
                    "disabled": "yes" if item["disabled"] else "no",
                }
                for item in summary
            ],
            [
                Column("rule", "ruleName"),
                Column("FROM", "from"),
                Column("actions", "actions"),
                Column("error action", "errorAction"),
                Column("disabled", "disabled"),
            ],
            empty=f"{args.file}: no rules",
        )
        print_line(f"{args.file}: {len(rules)} rule(s) OK")
    return status.SUCCESS


def _run(args: argparse.Namespace) -> int:
    from cloud.adapters.local import FsObjectStore
    from cloud.adapters.local.mqtt_url import redact
    from cloud.batcher import Batcher, BatcherConfig
    from cloud.l4e.naming import InputNaming, upload_frequency_seconds
    from cloud.rules.runner import RulesRunner, load_rules
    from edge.clock import SystemClock

    rules = load_rules(args.rules)  # a bad rules file is refused before anything is created
    naming = InputNaming(args.delimiter, args.timestamp_format, args.tz_offset)
    known = None
    if args.known_assets:
        known = frozenset(a.strip() for a in args.known_assets.split(",") if a.strip())
    config = BatcherConfig(
        prefix=args.prefix,
        upload_frequency_s=upload_frequency_seconds(args.upload_frequency),
        grace_s=args.grace,
        naming=naming,
        known_assets=known,
    )
    from cloud import wire_decoder

    clock = SystemClock()
    store_dir = Path(args.store)
    spool = args.spool or f"{store_dir.resolve()}.spool.db"
    # runners of one $share group split messages, so they must share one spool file
    batcher = Batcher(
        FsObjectStore(store_dir),
        config,
        clock,
        spool_path=spool,
        shared_spool=bool(args.shared_group),
        decode=wire_decoder.decode_rows,
        dumps=wire_decoder.dumps,
    )
    runner = RulesRunner(
        args.broker,
        rules,
        batcher,
        clock,
        client_id=args.client_id,
        shared_group=args.shared_group,
        protocol=args.protocol,
        client=args.client,
    )
    done = stop_event()
    runner.start()
    stderr.print(
        f"rules: subscribed to {', '.join(runner.subscriptions())} on {redact(args.broker)}"
        f" ({runner.client_kind} client)",
        markup=False,
        soft_wrap=True,
    )
    try:
        done.wait()
    finally:
        runner.stop()
        stderr.print(f"rules: stopped; {json.dumps(batcher.stats)}", markup=False, soft_wrap=True)
        batcher.close()
    return status.SUCCESS
