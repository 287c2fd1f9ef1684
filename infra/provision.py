"""Provision one device or gateway in AWS IoT Core and write its agent config.

Creates the thing (type ``plantwatch-device``, or ``plantwatch-gateway`` for a gateway,
attribute ``site``; a gateway also gets its assets in ``asset1``..``asset12``, each a
``plantwatch-device`` thing) in its site's thing group ``plantwatch-<site>``, a key
pair and an active certificate, attaches the deployed policies to the certificate and the
certificate to the thing, and writes ``agent.toml``, the certificate and the private key
(mode 0600) into a folder. The config is checked with the agent's own loader before the
command reports success.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from edge.errors import ConfigError, PlantwatchError, StorageError
from edge.shadow import SUBSCRIPTIONS_PER_THING
from edge.wire import MAX_SUBSCRIPTIONS, topic_name_problem, topic_size_problem
from infra.policies import (
    DEVICE_POLICY,
    DEVICE_THING_TYPE,
    GATEWAY_INGEST_POLICY,
    GATEWAY_POLICY,
    GATEWAY_SLOTS,
    GATEWAY_THING_TYPE,
    SLOTS_PER_GATEWAY_POLICY,
    SLOTS_PER_INGEST_POLICY,
    slot_attribute,
)

if TYPE_CHECKING:
    from mypy_boto3_iot import IoTClient


@dataclass(frozen=True, slots=True)
class Provisioned:
    thing: str
    certificate_arn: str
    policies: tuple[str, ...]
    endpoint: str
    config: Path
    files: tuple[Path, ...]


def policies_for(assets: tuple[str, ...]) -> tuple[str, ...]:
    """The device policy, plus the gateway and Basic Ingest policies whose slots the assets
    fill."""
    if not assets:
        return (DEVICE_POLICY,)
    slots = -(-len(assets) // SLOTS_PER_GATEWAY_POLICY)
    ingest = -(-len(assets) // SLOTS_PER_INGEST_POLICY)
    return (
        DEVICE_POLICY,
        *(f"{GATEWAY_POLICY}-{n}" for n in range(1, slots + 1)),
        *(f"{GATEWAY_INGEST_POLICY}-{n}" for n in range(1, ingest + 1)),
    )


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)


def agent_toml(
    thing: str, site: str, endpoint: str, assets: tuple[str, ...], ca: str | None
) -> str:
    lines = [
        "# written by plantwatch provision-device",
        "[agent]",
        f'site = "{site}"',
        f'sender = "{thing}"',
        f'broker = "mqtts://{endpoint}:8883"',
        f"assets = {json.dumps(list(assets or (thing,)))}",
        'queue = "state/queue.db"',
        "",
        "[tls]",
        'cert = "device.pem.crt"',
        'key = "private.pem.key"',
    ]
    if ca:
        lines.append(f'ca = "{ca}"')
    return "\n".join(lines) + "\n"


SITE_GROUP_PREFIX = "plantwatch-"
"""Each site's fleet is the thing group ``plantwatch-<site>`` (iot-core-rules-and-limits §4
multi-tenancy): its things listed, or given a job, as one."""
MAX_GROUP_NAME = 128
"""CreateThingGroup's limit on a thing group name."""


def site_group(site: str) -> str:
    return f"{SITE_GROUP_PREFIX}{site}"


def check_names(thing: str, site: str, assets: tuple[str, ...] = ()) -> None:
    """Refuse names that cannot be topic levels (iot-core-rules-and-limits §5), whose
    telemetry topic passes IoT Core's 256 bytes or whose site's thing group name would be
    too long, naming the option and the rule."""
    named = (("THING:", thing), *(("--assets:", a) for a in assets))
    for what, name in (("--site:", site), *named):
        problem = topic_name_problem(name, what)
        if problem is not None:
            raise ConfigError(problem)
    longest = MAX_GROUP_NAME - len(SITE_GROUP_PREFIX)
    if len(site) > longest:
        raise ConfigError(
            f"--site: {site[:40]!r}...: {len(site)} characters; the site's thing group "
            f"{SITE_GROUP_PREFIX}<site> takes at most {MAX_GROUP_NAME}, so a site name at "
            f"most {longest}"
        )
    for what, name in named:  # the agent would refuse to start, after AWS made the thing
        problem = topic_size_problem(site, name, what)
        if problem is not None:
            raise ConfigError(problem)


def provision(
    thing: str,
    site: str,
    out_dir: Path,
    *,
    assets: tuple[str, ...] = (),
    ca: Path | None = None,
    client: IoTClient | None = None,
    force: bool = False,
) -> Provisioned:
    check_names(thing, site, assets)
    if len(assets) > GATEWAY_SLOTS:
        raise ConfigError(
            f"--assets: {len(assets)} assets; one gateway connection serves at most "
            f"{GATEWAY_SLOTS} (IoT Core allows {MAX_SUBSCRIPTIONS} subscriptions per "
            f"connection, the agent uses {SUBSCRIPTIONS_PER_THING} per asset)"
        )
    if ca is not None and not ca.is_file():
        raise ConfigError(f"--ca: no such file {str(ca)!r}")
    config_path = out_dir / "agent.toml"
    if config_path.exists() and not force:
        raise ConfigError(f"{config_path}: exists; pass --force to overwrite")
    if client is None:
        import boto3

        client = boto3.client("iot")
    try:
        return _provision(thing, site, out_dir, assets, ca, client)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if code == "ResourceNotFoundException":
            raise ConfigError(
                f"{thing}: {message} (is the stack deployed? plantwatch deploy)"
            ) from exc
        raise StorageError(f"{thing}: AWS IoT {code}: {message}") from exc
    except BotoCoreError as exc:
        raise PlantwatchError(f"{thing}: AWS IoT: {exc}") from exc


def _check_existing(iot: Any, what: str, name: str, site: str, thing_type: str) -> None:
    """Refuse a thing that exists with another site, of the other role, or without the
    thing type or a site.

    A thing has one ``site`` (iot-core-rules-and-limits §4 multi-tenancy) and one role: the
    gateway policies grant only to the gateway type, so a device's name made a gateway (or
    back) would change what its certificate may do. CreateThing refuses an existing name
    with other attributes or type; checked before anything is created, so a refusal
    leaves no gateway thing or certificate behind."""
    try:
        found = iot.describe_thing(thingName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return
        raise
    have = found.get("attributes", {}).get("site")
    found_type = found.get("thingTypeName")
    if found_type in (DEVICE_THING_TYPE, GATEWAY_THING_TYPE) and found_type != thing_type:
        role = "gateway" if thing_type == GATEWAY_THING_TYPE else "device"
        raise ConfigError(
            f"{what}: thing {name!r} is a {found_type}, not a {thing_type}; a thing keeps "
            f"its role, so it cannot be provisioned as a {role} (delete the thing or use "
            "another name)"
        )
    if found_type != thing_type:
        raise ConfigError(
            f"{what}: thing {name!r} exists with no thing type {thing_type!r}; the device "
            "policies need the thing type and a site attribute (delete the thing or use "
            "another name)"
        )
    if have != site:
        where = f"site {have!r}" if have is not None else "no site attribute"
        raise ConfigError(
            f"{what}: thing {name!r} exists with {where}, not {site!r}; a thing belongs to one "
            "site (delete the thing or use another name)"
        )


def _provision(
    thing: str,
    site: str,
    out_dir: Path,
    assets: tuple[str, ...],
    ca: Path | None,
    iot: Any,
) -> Provisioned:
    policies = policies_for(assets)
    thing_type = GATEWAY_THING_TYPE if assets else DEVICE_THING_TYPE
    # before anything is created: a missing (or older) stack leaves no debris; the stack
    # owns the thing types, its own create would fail on one made here
    for policy in policies:
        iot.get_policy(policyName=policy)
    for needed in dict.fromkeys((thing_type, DEVICE_THING_TYPE)):
        iot.describe_thing_type(thingTypeName=needed)
    _check_existing(iot, "THING", thing, site, thing_type)
    others = [a for a in assets if a != thing]  # each asset's shadow lives on its own thing
    for asset in others:
        _check_existing(iot, "--assets", asset, site, DEVICE_THING_TYPE)
    attributes = {"site": site}
    attributes.update({slot_attribute(i): a for i, a in enumerate(assets, start=1)})
    iot.create_thing(
        thingName=thing,
        thingTypeName=thing_type,
        attributePayload={"attributes": attributes, "merge": True},
    )
    for asset in others:
        iot.create_thing(
            thingName=asset,
            thingTypeName=DEVICE_THING_TYPE,
            attributePayload={"attributes": {"site": site}, "merge": True},
        )
    group = site_group(site)
    iot.create_thing_group(  # succeeds again for the same name and properties
        thingGroupName=group,
        thingGroupProperties={
            "thingGroupDescription": f"plantwatch site {site}",
            "attributePayload": {"attributes": {"site": site}},
        },
    )
    for member in dict.fromkeys((thing, *assets)):
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=member)
    cert = iot.create_keys_and_certificate(setAsActive=True)
    arn = cert["certificateArn"]
    for policy in policies:
        iot.attach_policy(policyName=policy, target=arn)
    iot.attach_thing_principal(thingName=thing, principal=arn)
    endpoint = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]

    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path = out_dir / "device.pem.crt"
    key_path = out_dir / "private.pem.key"
    config_path = out_dir / "agent.toml"
    _write_private(key_path, cert["keyPair"]["PrivateKey"])
    _write_private(cert_path, cert["certificatePem"])
    ca_name = None
    if ca is not None:
        ca_name = ca.name
        if ca.resolve() != (out_dir / ca.name).resolve():
            (out_dir / ca.name).write_bytes(ca.read_bytes())
    _write_private(config_path, agent_toml(thing, site, endpoint, assets, ca_name))

    from edge.config import load_config  # the agent's own validation

    load_config(config_path)
    files = (config_path, cert_path, key_path)
    return Provisioned(thing, arn, policies, endpoint, config_path, files)
