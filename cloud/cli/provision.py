"""``plantwatch provision-device THING --site S``: thing, certificate, policies, agent config."""

from __future__ import annotations

import argparse
from pathlib import Path

from cloud.cli.output import print_fields, print_json, stderr
from edge.cliargs import aws_region


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("thing", metavar="THING", help="thing name = MQTT client id = sender")
    parser.add_argument("--site", required=True, help="site the device belongs to (topic level)")
    parser.add_argument(
        "--assets",
        default="",
        help="gateway mode: comma-separated asset things this gateway publishes for (max 12)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="folder for agent.toml, device.pem.crt and private.pem.key (default: ./THING)",
    )
    parser.add_argument(
        "--ca",
        default=None,
        help="Amazon Root CA file to copy next to the config (default: the system trust store)",
    )
    parser.add_argument(
        "--region", type=aws_region, default=None, help="AWS Region (default: the AWS profile's)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing agent.toml")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import NoRegionError

    from cloud.runtime.layout import check_creatable_dir
    from edge.errors import ConfigError
    from infra.provision import provision

    assets = tuple(a.strip() for a in args.assets.split(",") if a.strip())
    out = Path(args.out) if args.out else Path(args.thing)
    # the private key exists only in this run: a bad folder must fail before AWS is called
    check_creatable_dir(out, "--out")
    try:
        client = boto3.client("iot", region_name=args.region)
    except NoRegionError:
        raise ConfigError(
            "--region: no AWS Region given or configured (pass --region or set AWS_REGION)"
        ) from None
    stderr.print(f"provisioning {args.thing} at site {args.site} ...")
    result = provision(
        args.thing,
        args.site,
        out,
        assets=assets,
        ca=Path(args.ca) if args.ca else None,
        client=client,
        force=args.force,
    )
    doc = {
        "thing": result.thing,
        "certificate_arn": result.certificate_arn,
        "policies": list(result.policies),
        "endpoint": result.endpoint,
        "config": str(result.config),
        "files": [str(f) for f in result.files],
    }
    if args.json:
        print_json(doc)
    else:
        print_fields(doc)
        stderr.print(f"run the agent: plantwatch-edge run --config {result.config}")
    return 0
