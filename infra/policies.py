"""IoT policy documents for devices and gateways, built from the wire contract's topics.

Both documents authorise only through thing policy variables, which AWS IoT Core
resolves from the certificate's attached thing and requires the MQTT client id to equal
the thing name. ``${iot:ClientId}`` is never used: it is whatever the client sent.

A thing attribute is one string, substituted whole into a resource; a policy cannot
iterate over a list. So a gateway names its assets in numbered attributes ``asset1`` to
``asset12`` (12 is what one IoT Core connection can serve: 50 subscriptions, 4 per asset).
An attribute that is not set leaves its variable unresolved and that resource matches
nothing. IoT Core caps a policy at 2,048 characters (whitespace not counted), so the
gateway slots are spread over several policies, all attached to the gateway certificate;
the slots' Basic Ingest grants do not fit beside them and have policies of their own.

Every statement names the thing types it serves (``iot:Connection.Thing.ThingTypeName``,
resolved like the other thing variables): the device policy both plantwatch types, the
gateway and gateway-ingest policies ``plantwatch-gateway`` alone. A certificate that
carries the gateway policies therefore serves assets only for a thing of the gateway
type, and a thing without a plantwatch type gets nothing. iot-core-rules-and-limits §4's
device policy has no such condition; this is plantwatch's departure from its text.
"""

from __future__ import annotations

import json
from typing import Any

from edge.wire import APP, BASIC_INGEST_PREFIX

DEVICE_THING_TYPE = "plantwatch-device"
GATEWAY_THING_TYPE = "plantwatch-gateway"
THING_TYPE_NAME = "iot:Connection.Thing.ThingTypeName"
DEVICE_POLICY = "plantwatch-device"
GATEWAY_POLICY = "plantwatch-gateway"
"""Gateway policies are ``plantwatch-gateway-1`` .. ``-N``; a gateway's certificate gets the
device policy and as many of them as its assets fill."""

TELEMETRY_RULE = "plantwatch_telemetry_to_batcher"
"""The rule of ``cloud/rules/default_rules.json`` a device may reach through Basic Ingest
(the edge agent's ``basic_ingest_rule``)."""

THING = "${iot:Connection.Thing.ThingName}"
SITE = "${iot:Connection.Thing.Attributes[site]}"
GATEWAY_SLOTS = 12
SLOTS_PER_GATEWAY_POLICY = 3
GATEWAY_INGEST_POLICY = "plantwatch-gateway-ingest"
"""Basic Ingest grants of the gateway slots: ``plantwatch-gateway-ingest-1`` .. ``-N``."""
SLOTS_PER_INGEST_POLICY = 6
MAX_POLICY_CHARS = 2048
"""AWS IoT Core's limit on one policy document, whitespace excluded."""

Document = dict[str, Any]


def slot_attribute(slot: int) -> str:
    """Thing attribute holding the gateway's *slot*-th asset (1-based)."""
    return f"asset{slot}"


def slot_variable(slot: int) -> str:
    return f"${{iot:Connection.Thing.Attributes[{slot_attribute(slot)}]}}"


def _for_types(statements: list[Document], types: tuple[str, ...]) -> list[Document]:
    """*statements*, each granting only to a thing of one of *types*."""
    value: str | list[str] = types[0] if len(types) == 1 else list(types)
    out = []
    for statement in statements:
        condition = dict(statement.get("Condition", {}))
        condition["StringEquals"] = {THING_TYPE_NAME: value}
        out.append({**statement, "Condition": condition})
    return out


def _thing_statements(arn: str, things: list[str], basic_ingest: bool = False) -> list[Document]:
    """Publish telemetry for each thing at its site (with *basic_ingest* also through Basic
    Ingest to the telemetry rule); use each thing's shadows (classic and named:
    ``shadow/*`` covers ``shadow/name/<name>/...``).

    Gateway slots get Basic Ingest from :func:`gateway_ingest_policies`: three more
    resources put a slot policy over 2,048 characters, and fewer slots per policy would
    change what deployed gateways attach."""
    shadows = [f"$aws/things/{thing}/shadow/*" for thing in things]
    ingest = [_ingest_resource(arn, thing) for thing in things if basic_ingest]
    return [
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": [f"{arn}:topic/dt/{APP}/{SITE}/{thing}/*" for thing in things]
            + ingest
            + [f"{arn}:topic/{shadow}" for shadow in shadows],
        },
        {
            "Effect": "Allow",
            "Action": "iot:Subscribe",
            "Resource": [f"{arn}:topicfilter/{shadow}" for shadow in shadows],
        },
        {
            "Effect": "Allow",
            "Action": "iot:Receive",
            "Resource": [f"{arn}:topic/{shadow}" for shadow in shadows],
        },
    ]


def _ingest_resource(arn: str, thing: str) -> str:
    """Publish through Basic Ingest to the telemetry rule, for *thing*'s topics at its site.

    The grant names the rule: a policy ``*`` also matches ``/``, so ``$aws/rules/*/dt/...``
    would let a device send a rule a topic naming another thing."""
    return f"{arn}:topic/{BASIC_INGEST_PREFIX}{TELEMETRY_RULE}/dt/{APP}/{SITE}/{thing}/*"


def _connect_statement(arn: str) -> Document:
    return {
        "Effect": "Allow",
        "Action": "iot:Connect",
        "Resource": f"{arn}:client/{THING}",
        "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
    }


def device_policy(arn: str) -> Document:
    """A single device: connect as itself, its own telemetry topics and its own shadows.

    *arn* is the IoT ARN prefix ``arn:PARTITION:iot:REGION:ACCOUNT`` (CDK tokens at synth).
    """
    statements = [_connect_statement(arn), *_thing_statements(arn, [THING], True)]
    types = (DEVICE_THING_TYPE, GATEWAY_THING_TYPE)
    return {"Version": "2012-10-17", "Statement": _for_types(statements, types)}


def gateway_policies(arn: str) -> list[Document]:
    """A gateway: the device policy for itself, then its asset slots in chunks that fit."""
    documents = [device_policy(arn)]
    for first in range(1, GATEWAY_SLOTS + 1, SLOTS_PER_GATEWAY_POLICY):
        slots = range(first, min(first + SLOTS_PER_GATEWAY_POLICY, GATEWAY_SLOTS + 1))
        things = [slot_variable(slot) for slot in slots]
        statements = _for_types(_thing_statements(arn, things), (GATEWAY_THING_TYPE,))
        documents.append({"Version": "2012-10-17", "Statement": statements})
    return documents


def gateway_ingest_policies(arn: str) -> list[Document]:
    """Basic Ingest for the gateway slots, as a device has it for itself: a gateway whose
    agent sets ``basic_ingest_rule`` sends every asset's telemetry that way, and IoT Core
    disconnects a client on a publish its policies refuse."""
    documents = []
    for first in range(1, GATEWAY_SLOTS + 1, SLOTS_PER_INGEST_POLICY):
        slots = range(first, min(first + SLOTS_PER_INGEST_POLICY, GATEWAY_SLOTS + 1))
        resources = [_ingest_resource(arn, slot_variable(slot)) for slot in slots]
        statement = {"Effect": "Allow", "Action": "iot:Publish", "Resource": resources}
        statements = _for_types([statement], (GATEWAY_THING_TYPE,))
        documents.append({"Version": "2012-10-17", "Statement": statements})
    return documents


def policy_chars(document: Document) -> int:
    """Characters IoT Core counts against MAX_POLICY_CHARS."""
    return len("".join(json.dumps(document, separators=(",", ":")).split()))
