"""``plantwatch shadow get|set|delete|wait THING``: device commands through Device Shadows.

Where the request goes, in order: ``--aws`` (boto3 iot-data); ``--broker-url``; the broker
named in ``DIR/runtime.json`` (written by ``plantwatch up --data DIR``); and when no broker
answers, the shadow store file ``DIR/shadows.db`` itself, which an offline device then
picks up as a delta when it next GETs its shadow.

Credentials: ``--broker-url mqtt://USER:PASSWORD@HOST:PORT``, or, for a stack started with
``--auth``, the operator credential in ``DIR/auth/services.json``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from cloud.cli import status
from cloud.cli.output import Column, print_json, print_line, print_table, stderr
from cloud.runtime.layout import DEFAULT_DATA_DIR, DataLayout
from edge.cliargs import add_subcommands, aws_region, non_negative_int, positive_float

READS = ("get", "list", "wait")
"""Actions that only look: against a missing store file they fail instead of creating one."""
ONE_SHOT_READS = ("get", "list")
"""...and these leave the store's folder untouched (``wait`` must see later writes)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_subcommands(parser, "action")
    helps = {
        "get": "show desired, reported and delta",
        "set": "set desired state (KEY=VALUE from the command catalogue; KEY=null removes)",
        "delete": "delete the shadow",
        "wait": "wait until the device reports what was asked (exit 0) or time out (exit 1)",
        "list": "list a thing's named shadows (the store file under --data, or --aws)",
    }
    for action, summary in helps.items():
        child = sub.add_parser(action, help=summary, description=summary)
        child.add_argument("thing", metavar="THING", help="thing (device) name")
        if action in ("set", "wait"):
            child.add_argument(
                "assignments",
                metavar="KEY=VALUE",
                nargs="+" if action == "set" else "*",
                help="mode=normal|safe|stop, sampling_interval_s=N, setpoints.NAME=N, "
                "sensors.enabled=a,b",
            )
        if action == "set":
            child.add_argument(
                "--version",
                type=non_negative_int,
                help="apply only at this shadow version (0: only if the shadow never existed)",
            )
        if action == "wait":
            child.add_argument(
                "--timeout", type=positive_float, default=60.0, help="seconds (default 60)"
            )
        if action != "list":
            child.add_argument("--name", help="named shadow (default: the classic shadow)")
        child.add_argument("--json", action="store_true", help="print one JSON document")
        child.add_argument(
            "--data",
            default=DEFAULT_DATA_DIR,
            metavar="DIR",
            help="data directory (default: %(default)s)",
        )
        child.add_argument(
            "--broker-url",
            help="broker running the shadow service (mqtt://[USER:PASSWORD@]HOST:PORT)",
        )
        child.add_argument("--aws", action="store_true", help="AWS IoT Core via boto3 iot-data")
        child.add_argument("--region", type=aws_region, help="AWS region for --aws")


def open_api(args: argparse.Namespace) -> Any:
    """Pick the backend as the module docstring describes (``list`` reads the store file:
    MQTT has no list operation)."""
    from cloud.shadow.client import DirectShadowClient, ShadowClient
    from edge.clock import SystemClock
    from edge.errors import ConfigError, NotFoundError, PlantwatchError

    if args.aws:
        from cloud.adapters.aws.iotdata_shadow import IotDataShadowClient

        return IotDataShadowClient(region=args.region)
    if args.broker_url and args.action != "list":
        return ShadowClient(args.broker_url, timeout=5.0)
    layout = DataLayout.existing(
        args.data, hint=f"start `plantwatch up --data {args.data}`, pass --broker-url or --aws,"
    )
    if args.action != "list" and layout.runtime_file.exists():
        try:
            info = json.loads(layout.runtime_file.read_text())
            broker = str(info["broker"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"{layout.runtime_file}: expected a JSON object with a 'broker' URL"
            ) from None
        url = broker
        if info.get("auth"):
            from cloud.adapters.local.mqtt_url import with_credentials
            from cloud.runtime.broker_auth import AuthStore

            operator = "plantwatch-operator"
            url = with_credentials(
                broker, operator, AuthStore.in_data(layout.root).service_password(operator)
            )
        try:
            return ShadowClient(url, timeout=5.0)
        except PlantwatchError as exc:
            stderr.print(
                f"broker {broker} (from {layout.runtime_file}) not reachable: {exc}",
                markup=False,
                soft_wrap=True,
            )
    if args.action in READS and not layout.shadow_db.is_file():
        raise NotFoundError(f"{args.thing}: no shadow ({layout.shadow_db} does not exist)")
    if args.action != "list":
        stderr.print(
            f"no broker: using {layout.shadow_db} directly; a device sees changes on its next GET",
            markup=False,
            soft_wrap=True,
        )
    readonly = args.action in ONE_SHOT_READS
    return DirectShadowClient(layout.shadow_db, SystemClock(), readonly=readonly)


def run(args: argparse.Namespace) -> int:
    from cloud.shadow.commands import parse_assignments

    desired = parse_assignments(getattr(args, "assignments", []) or [])
    api = open_api(args)
    try:
        if args.action == "get":
            document = api.get(args.thing, args.name)
            show(args, document)
        elif args.action == "set":
            accepted = api.update(args.thing, desired=desired, version=args.version, name=args.name)
            if args.json:
                print_json(accepted)
            else:
                show(args, api.get(args.thing, args.name))
        elif args.action == "list":
            names = api.list_named(args.thing)
            if args.json:
                print_json(names)
            else:
                print_table(
                    [{"name": n} for n in names],
                    [Column("named shadow", "name")],
                    empty=f"{args.thing}: no named shadows",
                )
        elif args.action == "delete":
            deleted = api.delete(args.thing, args.name)
            report(
                args, deleted, f"deleted {args.thing} shadow at version {deleted.get('version')}"
            )
        else:
            return wait(args, api, desired)
    finally:
        api.close()
    return status.SUCCESS


def wait(args: argparse.Namespace, api: Any, expected: dict[str, Any]) -> int:
    from cloud.shadow.wait import wait_in_sync
    from edge.clock import SystemClock

    result = wait_in_sync(
        api, args.thing, expected or None, args.timeout, SystemClock(), name=args.name
    )
    summary = {
        "thing": args.thing,
        "shadow": args.name,
        "in_sync": result.in_sync,
        "waited_s": round(result.waited_s, 3),
        "pending": result.pending,
        "version": (result.document or {}).get("version"),
    }
    verdict = "in sync" if result.in_sync else f"timed out after {args.timeout:g} s"
    report(args, summary, f"{args.thing}: {verdict}")
    if not result.in_sync and not args.json:
        print_table(
            [
                {
                    "key": key,
                    "desired": json.dumps(v["desired"]),
                    "reported": json.dumps(v["reported"]),
                }
                for key, v in result.pending.items()
            ],
            [
                Column("pending", "key"),
                Column("desired", "desired"),
                Column("reported", "reported"),
            ],
        )
    return status.SUCCESS if result.in_sync else status.FAILED


def report(args: argparse.Namespace, document: dict[str, Any], line: str) -> None:
    if args.json:
        print_json(document)
    else:
        print_line(line)


def show(args: argparse.Namespace, document: dict[str, Any]) -> None:
    if args.json:
        print_json(document)
        return
    from cloud.shadow.commands import flatten

    state = document.get("state", {})
    parts = ("desired", "reported", "delta")
    columns = {part: flatten(state.get(part)) for part in parts}
    keys = sorted({key for values in columns.values() for key in values})
    title = (
        f"{args.thing}{'/' + args.name if args.name else ''} · version {document.get('version')}"
    )
    rows = [
        {
            "key": key,
            **{p: json.dumps(columns[p][key]) if key in columns[p] else "" for p in parts},
        }
        for key in keys
    ]
    print_table(
        rows,
        [Column("key", "key"), *(Column(p, p) for p in parts)],
        title=title,
        empty=f"{title}: empty state",
    )
