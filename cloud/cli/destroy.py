"""``plantwatch destroy``: ``cdk destroy`` of the plantwatch stack.

Buckets and the state table are retained (their data outlives the stack); docs/deploy.md
says how to empty and delete them.
"""

from __future__ import annotations

import argparse

from cloud.cli import deploy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    deploy.add_arguments(parser)
    for action in parser._actions:
        if action.dest == "bootstrap":
            action.help = argparse.SUPPRESS
        if action.dest == "yes":
            action.help = "do not ask for confirmation (cdk destroy --force)"


def run(args: argparse.Namespace) -> int:
    args.bootstrap = False
    return deploy.run(args, "destroy")
