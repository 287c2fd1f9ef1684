"""``plantwatch auth add-device|remove-device|list``: device credentials for ``up --auth``.

A device credential is a username (the thing name, which is also the client id the broker
gives it) and a random password, printed once as an ``agent.toml`` snippet; only its hash
is kept. A running ``plantwatch up --auth`` on the same data directory is told to re-read
the files (SIGHUP), so the device can connect at once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path
from typing import Any

from cloud.cli import status
from cloud.runtime.layout import DEFAULT_DATA_DIR
from edge.cliargs import CommaList, add_subcommands


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_subcommands(parser, "action")
    add = sub.add_parser(
        "add-device",
        help="make a device credential and print its agent.toml settings",
        description="Make a device credential; the password is shown only once. An existing "
        "credential is refused unless --replace is given.",
    )
    add.add_argument("thing", metavar="THING", help="thing name: the username and client id")
    add.add_argument("--site", required=True, help="the site whose topics the device uses")
    add.add_argument(
        "--asset",
        action="append",
        default=[],
        help="a thing this credential publishes and reads shadows for (repeatable; a "
        "gateway's assets); default: THING itself",
    )
    add.add_argument(
        "--assets",
        dest="asset",
        action=CommaList,
        metavar="A,B",
        help="the same, comma-separated (as provision-device takes them)",
    )
    add.add_argument(
        "--replace",
        action="store_true",
        help="replace an existing credential for THING: a new password, site and assets; "
        "the old password stops working",
    )
    remove = sub.add_parser(
        "remove-device",
        help="delete a device credential",
        description="Delete a device credential; a running broker re-reads the files.",
    )
    remove.add_argument("thing", metavar="THING", help="thing name")
    listing = sub.add_parser(
        "list",
        help="list device credentials (never their passwords)",
        description="List the device credentials: thing, site and assets, never a password.",
    )
    for child in (add, remove, listing):
        child.add_argument(
            "--data",
            default=DEFAULT_DATA_DIR,
            metavar="DIR",
            help="data directory (default: %(default)s)",
        )
        child.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    from cloud.runtime.broker_auth import AuthStore
    from edge.errors import ConfigError

    data = Path(args.data)
    store = AuthStore.in_data(data)
    if args.action == "list":
        if not store.exists():
            raise ConfigError(
                f"{store.root}: no credentials; start `plantwatch up --auth --data {data}` "
                "or add a device"
            )
        _list(args, store)
        return status.SUCCESS
    if args.action == "add-device":
        existed = any(d.thing == args.thing for d in store.devices())
        password = store.add_device(args.thing, args.site, args.asset, replace=args.replace)
        if existed:
            from cloud.cli.output import stderr

            stderr.print(
                f"device credential {args.thing} replaced; its old password no longer works",
                markup=False,
            )
        device = next(d for d in store.devices() if d.thing == args.thing)
        _show_new(args, device.thing, device.site, device.assets, password, _broker_url(data))
    else:
        store.remove_device(args.thing)
        if not args.json:
            from cloud.cli.output import print_line

            print_line(f"removed device credential {args.thing}")
        else:
            from cloud.cli.output import print_json

            print_json({"removed": args.thing})
    _reload_running_broker(data)
    return status.SUCCESS


def _list(args: argparse.Namespace, store: Any) -> None:
    rows = [{"thing": d.thing, "site": d.site, "assets": list(d.assets)} for d in store.devices()]
    if args.json:
        from cloud.cli.output import print_json

        print_json(rows)
        return
    from cloud.cli.output import print_table

    table = [{**row, "assets": ",".join(row["assets"])} for row in rows]
    print_table(table, ["thing", "site", "assets"], empty="no device credentials found")


def _show_new(
    args: argparse.Namespace,
    thing: str,
    site: str,
    assets: tuple[str, ...],
    password: str,
    broker: str,
) -> None:
    if args.json:
        from cloud.cli.output import print_json

        print_json(
            {
                "thing": thing,
                "site": site,
                "assets": list(assets),
                "username": thing,
                "password": password,
                "broker": broker,
            }
        )
        return
    from cloud.cli.output import print_line, stderr

    stderr.print(
        f"device credential {thing} made; the password is shown only now. agent.toml:",
        markup=False,
    )
    print_line("[agent]")
    print_line(f'site = "{site}"')
    print_line(f'sender = "{thing}"')
    print_line(f'broker = "{broker}"')
    print_line(f"assets = {json.dumps(list(assets))}")
    print_line("")
    print_line("[auth]")
    print_line(f'username = "{thing}"')
    print_line(f'password = "{password}"')


def _broker_url(data: Path) -> str:
    from cloud.runtime.layout import DataLayout

    try:
        info = json.loads(DataLayout(data).runtime_file.read_text())
        return str(info["broker"])
    except (OSError, ValueError, KeyError, TypeError):
        return "mqtt://127.0.0.1:1883"


def _reload_running_broker(data: Path) -> None:
    """SIGHUP the broker of a stack running on *data*, if it is one of ours: both brokers
    then re-read the password and ACL files."""
    from cloud.cli.output import stderr
    from cloud.runtime.layout import DataLayout

    try:
        info = json.loads(DataLayout(data).runtime_file.read_text())
    except (OSError, ValueError):
        return
    pid = info.get("broker_pid") if isinstance(info, dict) else None
    if not info.get("auth") or not isinstance(pid, int):
        return
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"mosquitto" not in command and b"amqtt_server" not in command:
        return
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError:
        return
    stderr.print(f"the running broker (pid {pid}) re-read the credentials", markup=False)
