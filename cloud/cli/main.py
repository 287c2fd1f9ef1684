"""``plantwatch``: parse, import the one command asked for, run it, map errors to exit codes.

Commands are imported lazily so ``--help`` stays fast and pulls in no numpy or boto3.
Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``; options
take their ``type=`` validators from :mod:`edge.cliargs`, so a bad number or port is a
one-line usage error (exit 2) before any work starts.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import select
import sys
from collections.abc import Sequence
from importlib import metadata

from cloud.cli import status
from edge.cliargs import Parser, one_line
from edge.errors import NotFoundError, PlantwatchError, UserError

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("cloud.cli.demo", "run the whole story on one machine in accelerated time"),
    "up": ("cloud.cli.up", "run the local stack (broker, rules, batcher, scheduler, detectors)"),
    "dashboard": ("cloud.cli.dashboard", "serve the web dashboard over a data directory"),
    "edge": ("edge.cli", "run or inspect the device agent"),
    "sim": ("simulator.cli", "generate history, run a simulated fleet, replay datasets"),
    "rules": ("cloud.cli.rules", "evaluate and check IoT topic-rule SQL"),
    "model": ("cloud.cli.model", "train and evaluate anomaly-detection models"),
    "schedulers": ("cloud.cli.schedulers", "create, start, stop, list inference schedulers"),
    "executions": ("cloud.cli.executions", "list inference executions"),
    "events": ("cloud.cli.events", "list anomalous inference events"),
    "detectors": (
        "cloud.cli.detectors",
        "validate, try and analyze detector models; list instances",
    ),
    "alarms": (
        "cloud.cli.alarms",
        "alarm models and instances: list, ack, snooze, reset, history, sent, redrive",
    ),
    "shadow": ("cloud.cli.shadow", "get, set, delete and wait on device shadows"),
    "query": ("cloud.cli.query", "SQL over the archive, results, alerts and executions (DuckDB)"),
    "export": (
        "cloud.cli.export",
        "one asset's archived readings for a time range, CSV or Parquet",
    ),
    "archive": ("cloud.cli.archive", "status and compaction of the Parquet archive"),
    "retention": ("cloud.cli.retention", "how long each bucket prefix is kept"),
    "import": (
        "cloud.cli.imports",
        "take in an L4E bucket or IoT Events describe-* JSON (sources are only read)",
    ),
    "auth": ("cloud.cli.auth", "device credentials for the broker of `plantwatch up --auth`"),
    "bench": ("cloud.cli.bench", "benchmarks with machine-readable results"),
    "deploy": ("cloud.cli.deploy", "deploy the stack to AWS with the CDK (docs/deploy.md)"),
    "destroy": ("cloud.cli.destroy", "delete the deployed stack (data buckets are kept)"),
    "provision-device": (
        "cloud.cli.provision",
        "create an IoT thing, certificate and agent config for a device or gateway",
    ),
    "cost": ("cloud.cli.cost", "estimate the monthly AWS cost of a fleet"),
}


def version() -> str:
    try:
        return metadata.version("plantwatch")
    except metadata.PackageNotFoundError:
        return "0.0.0+local"


def build_parser(selected: str | None) -> argparse.ArgumentParser:
    parser = Parser(
        prog="plantwatch",
        description="Edge-to-cloud equipment monitoring. Exit codes: 0 done, 1 failed, 2 bad input.",
    )
    parser.add_argument("--version", action="version", version=f"plantwatch {version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, summary) in COMMANDS.items():
        child = sub.add_parser(name, help=summary, description=summary)
        if name == selected:
            module = importlib.import_module(module_name)
            module.add_arguments(child)
            child.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    if debug:
        args_list.remove("--debug")
    selected = next((a for a in args_list if not a.startswith("-")), None)
    try:
        parser = build_parser(selected if selected in COMMANDS else None)
    except ModuleNotFoundError as exc:
        if debug:
            raise
        print(f"plantwatch: error: {selected}: not available ({exc})", file=sys.stderr)
        return status.FAILED
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else status.BAD_INPUT
    args.debug = debug
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return status.BAD_INPUT
    try:
        code = int(args._run(args))
        sys.stdout.flush()  # inside the try: a reader gone (`| head`) is handled below
        return code
    except KeyboardInterrupt:
        return status.INTERRUPTED
    except BrokenPipeError as exc:
        if stdout_gone():  # the reader stopped early: not an error, say nothing
            silence_stdout()
            return status.BROKEN_PIPE
        if debug:
            raise
        print(f"plantwatch: error: {one_line(describe_os_error(exc))}", file=sys.stderr)
        return status.BAD_INPUT
    except PlantwatchError as exc:
        if debug:
            raise
        print(f"plantwatch: error: {one_line(exc)}", file=sys.stderr)
        bad_input = isinstance(exc, UserError | NotFoundError)
        return status.BAD_INPUT if bad_input else status.FAILED
    except OSError as exc:
        if debug:
            raise
        print(f"plantwatch: error: {one_line(describe_os_error(exc))}", file=sys.stderr)
        return status.BAD_INPUT
    except MemoryError as exc:  # sizes beyond this machine, not a bug
        if debug:
            raise
        detail = f": {one_line(exc)}" if str(exc) else ""
        print(
            f"plantwatch: error: not enough memory{detail}; try smaller sizes "
            "(run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return status.FAILED
    except Exception as exc:  # a bug: one line here, the traceback with --debug
        if debug:
            raise
        print(
            f"plantwatch: error: internal error: {type(exc).__name__}: {one_line(exc)} "
            "(run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return status.FAILED


def stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has gone away (``plantwatch ... | head``)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no real file behind stdout (tests)
        return False


def silence_stdout() -> None:
    """Point stdout at /dev/null so the flush at exit does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass


def describe_os_error(exc: OSError) -> str:
    """One line naming the path and what the operating system said, as pip prints it."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += "; free space on that disk and run the command again"
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


if __name__ == "__main__":
    sys.exit(main())
