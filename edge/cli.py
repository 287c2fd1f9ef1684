"""``plantwatch edge run|status`` and the stand-alone ``plantwatch-edge`` script.

Device installs may lack the cloud package, so ``main`` is a complete CLI of its own with
the same exit codes (0 done, 1 failed, 2 bad input) and one-line errors.
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from edge.cliargs import Parser, add_subcommands, one_line
from edge.errors import ConfigError, NotFoundError, PlantwatchError, StorageError, UserError
from edge.readonly_sqlite import connect_readonly
from edge.signals import process_alive

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_subcommands(parser, "edge_command")
    run_p = sub.add_parser(
        "run",
        help="run the agent until SIGINT/SIGTERM, then flush and stop",
        description="Run the device agent until SIGINT or SIGTERM, then flush and stop.",
    )
    run_p.add_argument("--config", required=True, help="agent configuration (agent.toml)")
    run_p.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log detail on stderr (default info)",
    )
    run_p.set_defaults(_edge=_run)
    status_p = sub.add_parser(
        "status",
        help="connected, queue depth, oldest age, sent, dropped",
        description="Show the agent's status file, corrected by its queue and process.",
    )
    status_p.add_argument("--config", required=True, help="agent configuration (agent.toml)")
    status_p.add_argument("--json", action="store_true", help="print one JSON document")
    status_p.set_defaults(_edge=_status)


def run(args: argparse.Namespace) -> int:
    return int(args._edge(args))


def _run(args: argparse.Namespace) -> int:
    from edge import logs
    from edge.agent import Agent
    from edge.clock import SystemClock
    from edge.config import load_config

    config, sources, shutdown_s = load_config(args.config)
    logs.setup(args.log_level)
    try:
        agent = Agent(config, SystemClock())
    except StorageError as exc:  # a corrupt queue file, or a path that is not a file
        raise ConfigError(f"{args.config}: [agent].queue: {exc}") from None
    for build in sources:
        agent.add_source(build())
    stop = threading.Event()

    def on_signal(*_args: object) -> None:
        # the first signal stops and flushes; another one during the flush ends it at once
        if stop.is_set():
            agent.cut_flush()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    agent.start()
    while not stop.wait(0.5):
        pass
    agent.stop(flush=True, timeout=shutdown_s)
    return EXIT_OK


def read_status(config_path: str) -> dict[str, object]:
    """The agent's last status file, corrected by the queue itself and the pid's liveness."""
    from edge.config import load_config

    config, _sources, _ = load_config(config_path)
    try:
        doc = json.loads(config.status_file.read_text())
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict):  # missing, torn or not the agent's document
        doc = {"sender": config.sender, "connected": False, "last_error": None}
    pid = doc.get("pid")
    running = isinstance(pid, int) and process_alive(pid)
    doc["running"] = running
    updated = doc.get("updated")
    # the agent rewrites the file every second; an older one means a hung or dead agent
    doc["stale"] = (
        not running or not isinstance(updated, int | float) or (time.time() - updated > 5)
    )
    if not running:
        doc["connected"] = False
        if "sender_state" in doc:
            doc["sender_state"] = "stopped"
    queue = Path(config.queue_path)
    if queue.exists():
        try:
            db = connect_readonly(queue)
            depth, oldest = db.execute("SELECT COUNT(*), MIN(enq) FROM readings").fetchone()
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            db.close()
            doc["queue_depth"] = depth
            doc["oldest_age_s"] = round(time.time() - oldest, 3) if oldest is not None else None
            doc["sent"] = meta.get("sent", 0)
            doc["dropped"] = meta.get("dropped", 0)
        except sqlite3.Error as exc:
            doc["last_error"] = f"queue {queue}: {exc}"
    else:
        doc.update(queue_depth=0, oldest_age_s=None, sent=0, dropped=0)
    return doc


def _status(args: argparse.Namespace) -> int:
    doc = read_status(args.config)
    if args.json:
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    else:
        print_fields({key: doc.get(key) for key in STATUS_FIELDS})
    return EXIT_OK


STATUS_FIELDS = (
    "sender",
    "running",
    "stale",
    "connected",
    "protocol",
    "queue_depth",
    "oldest_age_s",
    "sent",
    "dropped",
    "inflight",
    "connects",
    "last_error",
    "sender_state",
    "sender_errors",
    "refused",
    "refused_by_reason",
)


def print_fields(fields: dict[str, object]) -> None:
    """``key  value`` lines, as ``plantwatch`` prints them (this package stands alone)."""
    width = max((len(key) for key in fields), default=0)
    for key, value in fields.items():
        print(f"{key.ljust(width)}  {'-' if value is None else value}")


def main(argv: Sequence[str] | None = None) -> int:
    """``plantwatch-edge run --config agent.toml`` on a device without the cloud package."""
    parser = Parser(
        prog="plantwatch-edge",
        description="plantwatch device agent. Exit codes: 0 done, 1 failed, 2 bad input.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except PlantwatchError as exc:
        if args.debug:
            raise
        print(f"plantwatch-edge: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(exc, UserError | NotFoundError) else EXIT_FAILED
    except OSError as exc:
        if args.debug:
            raise
        paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
        reason = exc.strerror or str(exc) or type(exc).__name__
        text = one_line(f"{paths + ': ' if paths else ''}{reason}")
        print(f"plantwatch-edge: error: {text}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug: one line here, the traceback with --debug (as plantwatch)
        if args.debug:
            raise
        print(
            f"plantwatch-edge: error: internal error: {type(exc).__name__}: {one_line(exc)} "
            "(run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
