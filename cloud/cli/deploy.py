"""``plantwatch deploy``: ``cdk deploy`` of the plantwatch stack (``destroy`` shares this)."""

from __future__ import annotations

import argparse
import shlex
import subprocess

from cloud.cli.output import print_json, print_line, stderr

ACTION = "deploy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="CDK context, e.g. alert_emails=ops@example.com (repeatable; see docs/deploy.md)",
    )
    parser.add_argument("--profile", default=None, help="AWS profile for the CDK CLI")
    parser.add_argument(
        "--bootstrap", action="store_true", help="run `cdk bootstrap` first (once per account)"
    )
    parser.add_argument(
        "--yes", action="store_true", help="do not ask for approval (--require-approval never)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the commands instead of running them"
    )
    parser.add_argument("--json", action="store_true", help="with --dry-run: print JSON")


def commands(args: argparse.Namespace, action: str) -> list[list[str]]:
    from infra.deploy import cdk_command

    out: list[list[str]] = []
    if getattr(args, "bootstrap", False):
        out.append(cdk_command("bootstrap", context=args.context, profile=args.profile))
    extra: list[str] = []
    if args.yes:
        extra = ["--require-approval", "never"] if action == "deploy" else ["--force"]
    out.append(cdk_command(action, context=args.context, profile=args.profile, extra=extra))
    return out


def run(args: argparse.Namespace, action: str = ACTION) -> int:
    planned = commands(args, action)
    if args.dry_run:
        if args.json:
            print_json({"commands": planned})
        else:
            for command in planned:
                print_line(shlex.join(command))
        return 0
    import os

    from infra.deploy import QUIET_JSII, check_prerequisites

    check_prerequisites()
    env = {**QUIET_JSII, **os.environ}
    for command in planned:
        stderr.print(f"$ {shlex.join(command)}")
        code = subprocess.call(command, env=env)
        if code != 0:
            stderr.print(f"{command[3]} exited {code}")
            return 1
    return 0
