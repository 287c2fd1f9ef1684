"""``plantwatch provision-device THING --site S``: thing, certificate, policies, agent config."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

from cloud.cli.output import print_fields, print_json, stderr
from edge.cliargs import JoinedList, aws_region
from edge.errors import ConfigError
from edge.user_files import read_document_bytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("thing", metavar="THING", help="thing name = MQTT client id = sender")
    parser.add_argument("--site", required=True, help="site the device belongs to (topic level)")
    parser.add_argument(
        "--assets",
        default="",
        help="gateway mode: comma-separated asset things this gateway publishes for (max 12)",
    )
    parser.add_argument(
        "--asset",
        dest="assets",
        action=JoinedList,
        help="one asset of --assets (repeatable, as auth add-device takes them)",
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
    from infra.provision import check_names, provision

    assets = tuple(a.strip() for a in args.assets.split(",") if a.strip())
    check_names(args.thing, args.site, assets)
    out = Path(args.out) if args.out else Path(args.thing)
    if args.ca:  # the files are checked before AWS is called: a bad one leaves nothing there
        check_ca_file(Path(args.ca))
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


MAX_CA_BYTES = 1 << 20
"""A trust bundle of every public root CA is about 200 KB; AmazonRootCA1.pem is 1.2 KB."""


def check_ca_file(ca: Path) -> None:
    """Refuse a ``--ca`` that holds no PEM certificate before anything is created in AWS.

    The agent hands the file to its TLS client as the root of trust for the ATS endpoint
    (AWS IoT Core server authentication: a PEM file such as ``AmazonRootCA1.pem``); a
    wrong file only showed when the device first failed to connect, after the thing and
    its certificate were made. The file is loaded as a TLS client loads a CA file
    (OpenSSL, through :mod:`ssl`), so what passes here is what the agent can use.
    """
    where = f"--ca {ca}"
    try:
        body = read_document_bytes(ca, limit=MAX_CA_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"--ca: no such file {str(ca)!r}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read ({exc.strerror or exc})") from None
    hint = "expected a PEM certificate file such as AmazonRootCA1.pem"
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not a PEM file (binary or non-ASCII data); {hint}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"{where}: no '-----BEGIN CERTIFICATE-----' block; {hint}")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or "not a readable certificate"
        raise ConfigError(f"{where}: not a usable PEM certificate ({reason}); {hint}") from None
