"""``--parameter NAME=VALUE``: the values a CloudFormation stack was deployed with, for every
command that reads IoT Events resources from a template (``import iotevents``, ``detectors
validate``/``run``/``analyze``, ``alarms validate``/``run``), so a ``Ref`` to a parameter
without a ``Default`` resolves the same way in each."""

from __future__ import annotations

import argparse

from edge.errors import UserError


def add_parameter_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--parameter",
        dest="parameters",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a CloudFormation template's parameter value, or a pseudo parameter's such as "
        "AWS::StackName=NAME, as the stack was deployed with (repeatable)",
    )


def parameter_values(items: list[str]) -> dict[str, str]:
    """``--parameter`` items by name (a name given twice: the last, as the CLI of
    ``aws cloudformation deploy --parameter-overrides`` takes it)."""
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UserError(f"--parameter {item}: expected NAME=VALUE")
        values[name] = value
    return values
