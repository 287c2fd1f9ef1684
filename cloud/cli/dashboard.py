"""``plantwatch dashboard``: the web dashboard over a data directory, without the stack.

For a stopped stack's ``--data`` folder or a demo's ``--out`` folder. It only reads: the
folder is left exactly as it was, unless ``--alarm-actions`` is given and an operator
acknowledges or snoozes an alarm (which a running stack then applies, or, with none,
which is written to its state store).
"""

from __future__ import annotations

import argparse
import json

from cloud.cli import status
from cloud.runtime.layout import DEFAULT_DATA_DIR, DataLayout
from edge.cliargs import port
from edge.signals import stop_event


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="data directory of a stack (plantwatch up --data) or a demo (--out) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="bind address (default 127.0.0.1; others need --auth)"
    )
    parser.add_argument(
        "--port", type=port, default=8600, help="port; 0 picks a free one (default 8600)"
    )
    parser.add_argument(
        "--site",
        help="the stack's default site, whose files have no site folder (default: the one "
        "runtime.json names, else s1)",
    )
    parser.add_argument(
        "--alarm-actions",
        action="store_true",
        help="let the dashboard acknowledge and snooze alarms (read-only otherwise)",
    )
    parser.add_argument(
        "--auth",
        action="store_true",
        help="require HTTP Basic auth as plantwatch-operator with the password in "
        "DIR/auth/services.json (made by plantwatch up --auth); needed off loopback",
    )


def run(args: argparse.Namespace) -> int:
    from cloud.cli.output import stderr
    from cloud.dashboard.actions import StoreActions
    from cloud.dashboard.app import Credentials
    from cloud.dashboard.server import DashboardConfig, DashboardServer
    from cloud.l4e.sites import DEFAULT_SITE
    from cloud.runtime.broker_auth import AuthStore
    from edge.errors import ConfigError

    layout = DataLayout.existing(args.data)
    site = args.site or _runtime_site(layout) or DEFAULT_SITE
    credentials = None
    if args.auth:
        store = AuthStore.in_data(layout.root)
        if not store.exists():
            raise ConfigError(
                f"--auth: {store.services_file} not found; run `plantwatch up --auth --data "
                f"{layout.root}` once to make the credentials"
            )
        credentials = Credentials(
            "plantwatch-operator", store.service_password("plantwatch-operator")
        )
    config = DashboardConfig(
        host=args.host,
        port=args.port,
        alarm_actions=args.alarm_actions,
        credentials=credentials,
        option="--port",
    )
    actions = StoreActions(layout.root) if args.alarm_actions else None
    done = stop_event()  # before the URL is printed: a stop right after it is a clean one
    server = DashboardServer(layout.root, config, default_site=site, actions=actions).start()
    print(f"dashboard: {server.url}", flush=True)
    stderr.print(
        f"data: {layout.root} ({'alarm actions on' if actions else 'read-only'}); Ctrl-C to stop",
        markup=False,
        soft_wrap=True,
    )
    try:
        done.wait()
    finally:
        server.stop()
    return status.SUCCESS


def _runtime_site(layout: DataLayout) -> str | None:
    """The default site a live stack recorded; a stopped one leaves no runtime.json. Read
    without waiting for a writer: a named pipe there reads as nothing."""
    from edge.user_files import read_document_text

    try:
        sites = json.loads(read_document_text(layout.runtime_file)).get("sites")
    except (OSError, ValueError, AttributeError):
        return None
    return sites[0] if isinstance(sites, list) and sites and isinstance(sites[0], str) else None
