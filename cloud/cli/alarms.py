"""``plantwatch alarms``: the alerts detectors sent, from the local outbox ``DIR/alerts.jsonl``.

One row per alert (its email and SMS share an ``alert_id``), oldest first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cloud.cli import status
from cloud.cli.output import Column, print_json, print_table
from cloud.runtime.layout import DEFAULT_DATA_DIR as DEFAULT_DATA
from cloud.runtime.layout import DataLayout
from edge.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(DEFAULT_DATA),
        metavar="DIR",
        help=f"runtime data directory holding alerts.jsonl (default: {DEFAULT_DATA})",
    )
    parser.add_argument("--asset", help="only alerts for this asset")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def load_alarms(path: Path) -> list[dict[str, Any]]:
    """Group outbox lines into alerts; malformed lines raise UserError naming the line."""
    alarms: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                attributes = record.get("attributes") or {}
                channel = record["channel"]
            except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as exc:
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


def run(args: argparse.Namespace) -> int:
    path = DataLayout.existing(args.data).alerts
    alarms = load_alarms(path) if path.is_file() else []
    if args.asset:
        alarms = [a for a in alarms if a["asset"] == args.asset]
    if args.json:
        print_json(alarms)
        return status.SUCCESS
    from datetime import UTC, datetime

    rows = []
    for alarm in alarms:
        sent = alarm["sent_at"]
        rows.append(
            {
                **alarm,
                "sent": datetime.fromtimestamp(sent, UTC).strftime("%Y-%m-%d %H:%M:%S")
                if isinstance(sent, int | float)
                else "",
            }
        )
    print_table(
        rows,
        [
            Column("sent (UTC)", "sent"),
            Column("kind", "kind"),
            Column("asset", "asset"),
            Column("subject", "subject"),
            Column("SMS", "sms"),
        ],
        title=f"alarms ({path})",
        empty=f"no alarms in {path}",
    )
    return status.SUCCESS
