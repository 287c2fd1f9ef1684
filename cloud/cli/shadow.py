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
from pathlib import Path
from typing import Any

from cloud.cli import status
from cloud.runtime.layout import DEFAULT_DATA_DIR, DataLayout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    helps = {
        "get": "show desired, reported and delta",
        "set": "set desired state (KEY=VALUE from the command catalogue; KEY=null removes)",
        "delete": "delete the shadow",
        "wait": "wait until the device reports what was asked (exit 0) or time out (exit 1)",
        "list": "list a thing's named shadows (the store file under --data, or --aws)",
    }
    for action, summary in helps.items():
        child = sub.add_parser(action, help=summary, description=summary)
        child.add_argument("thing", metavar="THING")
        if action in ("set", "wait"):
            child.add_argument(
                "assignments",
                metavar="KEY=VALUE",
                nargs="+" if action == "set" else "*",
                help="mode=normal|safe|stop, sampling_interval_s=N, setpoints.NAME=N, "
                "sensors.enabled=a,b",
            )
        if action == "set":
            child.add_argument("--version", type=int, help="apply only at this shadow version")
        if action == "wait":
            child.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
        if action != "list":
            child.add_argument("--name", help="named shadow (default: the classic shadow)")
        child.add_argument("--json", action="store_true", help="print one JSON document")
        child.add_argument(
            "--data", default=DEFAULT_DATA_DIR, help="data directory (default: %(default)s)"
        )
        child.add_argument(
            "--broker-url",
            help="broker running the shadow service (mqtt://[USER:PASSWORD@]HOST:PORT)",
        )
        child.add_argument("--aws", action="store_true", help="AWS IoT Core via boto3 iot-data")
        child.add_argument("--region", help="AWS region for --aws")


def open_api(args: argparse.Namespace) -> Any:
    """Pick the backend as the module docstring describes (``list`` reads the store file:
    MQTT has no list operation)."""
    from cloud.cli.output import stderr
    from cloud.shadow.client import DirectShadowClient, ShadowClient
    from edge.clock import SystemClock
    from edge.errors import ConfigError, PlantwatchError

    if args.aws:
        from cloud.adapters.aws.iotdata_shadow import IotDataShadowClient

        return IotDataShadowClient(region=args.region)
    if args.action == "list":
        data = Path(args.data)
        if not (DataLayout(data).shadow_db).exists():
            raise ConfigError(
                f"{DataLayout(data).shadow_db}: no shadow store; pass --data DIR or --aws"
            )
        return DirectShadowClient(DataLayout(data).shadow_db, SystemClock())
    if args.broker_url:
        return ShadowClient(args.broker_url, timeout=5.0)
    data = Path(args.data)
    runtime = DataLayout(data).runtime_file
    if runtime.exists():
        try:
            info = json.loads(runtime.read_text())
            broker = str(info["broker"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{runtime}: expected a JSON object with a 'broker' URL") from None
        url = broker
        if info.get("auth"):
            from cloud.adapters.local.mqtt_url import with_credentials
            from cloud.runtime.broker_auth import AuthStore

            operator = "plantwatch-operator"
            url = with_credentials(
                broker, operator, AuthStore.in_data(data).service_password(operator)
            )
        try:
            return ShadowClient(url, timeout=5.0)
        except PlantwatchError as exc:
            stderr.print(f"[yellow]{runtime}: broker {broker} not reachable ({exc})[/]")
    if not data.is_dir():
        raise ConfigError(
            f"{data}: no data directory; start `plantwatch up --data {data}` or pass "
            "--broker-url or --aws"
        )
    stderr.print(
        f"[dim]no broker: using {DataLayout(data).shadow_db} directly; a device sees changes on its next GET[/]"
    )
    return DirectShadowClient(DataLayout(data).shadow_db, SystemClock())


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
                from cloud.cli.output import print_json

                print_json(accepted)
            else:
                show(args, api.get(args.thing, args.name))
        elif args.action == "list":
            names = api.list_named(args.thing)
            if args.json:
                from cloud.cli.output import print_json

                print_json(names)
            else:
                print("\n".join(names) if names else f"{args.thing}: no named shadows")
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
        for key, values in result.pending.items():
            print(f"  pending {key}: desired={values['desired']!r} reported={values['reported']!r}")
    return status.SUCCESS if result.in_sync else status.FAILED


def report(args: argparse.Namespace, document: dict[str, Any], line: str) -> None:
    if args.json:
        from cloud.cli.output import print_json

        print_json(document)
    else:
        print(line)


def show(args: argparse.Namespace, document: dict[str, Any]) -> None:
    if args.json:
        from cloud.cli.output import print_json

        print_json(document)
        return
    from rich.table import Table

    from cloud.cli.output import stdout
    from cloud.shadow.commands import flatten

    state = document.get("state", {})
    columns = {part: flatten(state.get(part)) for part in ("desired", "reported", "delta")}
    keys = sorted({key for values in columns.values() for key in values})
    title = (
        f"{args.thing}{'/' + args.name if args.name else ''} · version {document.get('version')}"
    )
    table = Table(title=title)
    table.add_column("key")
    for part in columns:
        table.add_column(part)
    for key in keys:
        table.add_row(
            key,
            *(json.dumps(columns[part][key]) if key in columns[part] else "" for part in columns),
        )
    stdout.print(table)
