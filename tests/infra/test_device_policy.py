"""The deployed IoT policies, variables substituted, against topic and client-id pairs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.definitions import DEFAULT_RULES, load_rules
from infra.policies import (
    GATEWAY_SLOTS,
    MAX_POLICY_CHARS,
    TELEMETRY_RULE,
    policy_chars,
    slot_attribute,
)
from tests.infra.iot_policy import Connection, allowed

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"}
ARN = "arn:aws:iot:eu-west-1:123456789012"
NAMES = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
DEVICE_TYPE = "plantwatch-device"
GATEWAY_TYPE = "plantwatch-gateway"
THING_TYPE_NAME = "iot:Connection.Thing.ThingTypeName"


def resolve(value: Any, pseudo: dict[str, str] = PSEUDO) -> Any:
    """Resolve the intrinsics CDK leaves in a policy document (Fn::Join of pseudo refs)."""
    if isinstance(value, list):
        return [resolve(v, pseudo) for v in value]
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return pseudo[value["Ref"]]
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(resolve(p, pseudo) for p in parts)
        return {k: resolve(v, pseudo) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def policies(synthesized) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["PolicyName"]: resolve(r["Properties"]["PolicyDocument"])
        for r in synthesized.resources("AWS::IoT::Policy").values()
    }


@pytest.fixture(scope="module")
def device(policies) -> list[dict[str, Any]]:
    return [policies["plantwatch-device"]]


@pytest.fixture(scope="module")
def gateway(policies) -> list[dict[str, Any]]:
    return list(policies.values())


def thing(
    name: str, site: str = "plant1", thing_type: str | None = DEVICE_TYPE, **attributes: str
) -> Connection:
    return Connection(
        client_id=name,
        thing_name=name,
        attributes={"site": site, **attributes},
        thing_type=thing_type,
    )


def gateway_thing(name: str, site: str = "plant1", **attributes: str) -> Connection:
    return thing(name, site, GATEWAY_TYPE, **attributes)


def test_a_device_uses_its_own_topics_and_shadows(device) -> None:
    a = thing("pump-01")
    for action, name in [
        ("iot:Connect", "pump-01"),
        ("iot:Publish", "dt/plantwatch/plant1/pump-01/telemetry"),
        ("iot:Publish", "$aws/things/pump-01/shadow/update"),
        ("iot:Publish", "$aws/things/pump-01/shadow/get"),
        ("iot:Publish", "$aws/things/pump-01/shadow/name/config/update"),
        ("iot:Subscribe", "$aws/things/pump-01/shadow/update/delta"),
        ("iot:Subscribe", "$aws/things/pump-01/shadow/name/config/update/delta"),
        ("iot:Receive", "$aws/things/pump-01/shadow/get/accepted"),
        ("iot:Receive", "$aws/things/pump-01/shadow/update/rejected"),
    ]:
        assert allowed(device, action, name, a, ARN), (action, name)


def test_a_device_cannot_touch_another_things_topics(device) -> None:
    a = thing("pump-01")
    for action, name in [
        ("iot:Publish", "dt/plantwatch/plant1/pump-02/telemetry"),
        ("iot:Publish", "dt/plantwatch/plant2/pump-01/telemetry"),
        ("iot:Publish", "$aws/things/pump-02/shadow/update"),
        ("iot:Publish", "$aws/things/B/shadow/update"),
        ("iot:Subscribe", "$aws/things/pump-02/shadow/update/delta"),
        ("iot:Subscribe", "$aws/things/+/shadow/update/delta"),
        ("iot:Subscribe", "#"),
        ("iot:Subscribe", "dt/plantwatch/plant1/pump-01/telemetry"),
        ("iot:Receive", "$aws/things/pump-02/shadow/update/delta"),
        ("iot:Publish", "cmd/plantwatch/plant1/pump-01/req"),
    ]:
        assert not allowed(device, action, name, a, ARN), (action, name)


def test_connect_needs_the_own_thing_name_and_an_attached_certificate(device) -> None:
    assert allowed(device, "iot:Connect", "pump-01", thing("pump-01"), ARN)
    impostor = Connection("pump-02", "pump-01", {"site": "plant1"}, thing_type=DEVICE_TYPE)
    assert not allowed(device, "iot:Connect", "pump-02", impostor, ARN)
    # a different client id also unbinds the thing variables from every topic
    assert not allowed(
        device, "iot:Publish", "dt/plantwatch/plant1/pump-01/telemetry", impostor, ARN
    )
    detached = Connection("pump-01", "pump-01", {"site": "plant1"}, False, DEVICE_TYPE)
    assert not allowed(device, "iot:Connect", "pump-01", detached, ARN)


@given(a=NAMES, b=NAMES, site=NAMES)
def test_no_thing_reaches_another_things_topics(device, a: str, b: str, site: str) -> None:
    if a == b:
        return
    conn = thing(a, site)
    assert allowed(device, "iot:Publish", f"dt/plantwatch/{site}/{a}/telemetry", conn, ARN)
    assert not allowed(device, "iot:Publish", f"dt/plantwatch/{site}/{b}/telemetry", conn, ARN)
    assert not allowed(device, "iot:Publish", f"$aws/things/{b}/shadow/update", conn, ARN)
    assert not allowed(device, "iot:Subscribe", f"$aws/things/{b}/shadow/update/delta", conn, ARN)
    assert not allowed(device, "iot:Connect", b, conn, ARN)


def test_a_gateway_serves_exactly_the_assets_in_its_attributes(gateway) -> None:
    gw = gateway_thing("gw-01", **{slot_attribute(1): "pump-01", slot_attribute(12): "fan-07"})
    for asset in ("pump-01", "fan-07", "gw-01"):
        assert allowed(gateway, "iot:Publish", f"dt/plantwatch/plant1/{asset}/telemetry", gw, ARN)
        assert allowed(gateway, "iot:Publish", f"$aws/things/{asset}/shadow/update", gw, ARN)
        assert allowed(
            gateway, "iot:Subscribe", f"$aws/things/{asset}/shadow/update/delta", gw, ARN
        )
        assert allowed(gateway, "iot:Receive", f"$aws/things/{asset}/shadow/get/accepted", gw, ARN)
    for action, name in [
        ("iot:Publish", "dt/plantwatch/plant1/pump-02/telemetry"),
        ("iot:Publish", "dt/plantwatch/plant2/pump-01/telemetry"),
        ("iot:Publish", "$aws/things/pump-02/shadow/update"),
        ("iot:Publish", "dt/plantwatch/plant1//telemetry"),  # an unset slot grants nothing
        ("iot:Publish", "$aws/things//shadow/update"),
        ("iot:Connect", "pump-01"),
    ]:
        assert not allowed(gateway, action, name, gw, ARN), (action, name)


def test_the_device_policy_alone_grants_no_gateway_assets(device) -> None:
    gw = gateway_thing("gw-01", **{slot_attribute(1): "pump-01"})
    assert not allowed(device, "iot:Publish", "dt/plantwatch/plant1/pump-01/telemetry", gw, ARN)


@settings(max_examples=50)
@given(
    name=NAMES,
    asset=NAMES,
    site=NAMES,
    slot=st.integers(1, GATEWAY_SLOTS),
    other=st.sampled_from([DEVICE_TYPE, None, "pump-type"]),
)
def test_only_a_thing_of_the_gateway_type_acts_as_a_gateway(
    gateway, name: str, asset: str, site: str, slot: int, other: str | None
) -> None:
    """A certificate carrying the gateway policies (attached by mistake, or to a device
    thing that was given asset attributes) serves assets only if its thing has the thing
    type ``plantwatch-gateway``: a device's certificate cannot act as a gateway."""
    if name == asset:
        return
    attributes = {slot_attribute(slot): asset}
    topic = f"dt/plantwatch/{site}/{asset}/telemetry"
    shadow = f"$aws/things/{asset}/shadow"
    cases = [
        ("iot:Publish", topic),
        ("iot:Publish", f"$aws/rules/{TELEMETRY_RULE}/{topic}"),
        ("iot:Publish", f"{shadow}/update"),
        ("iot:Subscribe", f"{shadow}/update/delta"),
        ("iot:Receive", f"{shadow}/get/accepted"),
    ]
    as_gateway = gateway_thing(name, site, **attributes)
    as_other = thing(name, site, other, **attributes)
    for action, topic_name in cases:
        assert allowed(gateway, action, topic_name, as_gateway, ARN), (action, topic_name)
        assert not allowed(gateway, action, topic_name, as_other, ARN), (action, topic_name)
    own = f"dt/plantwatch/{site}/{name}/telemetry"
    assert allowed(gateway, "iot:Publish", own, as_other, ARN) == (other == DEVICE_TYPE)


@pytest.mark.parametrize("thing_type", [None, "pump-type"])
def test_a_thing_without_a_plantwatch_thing_type_gets_nothing(gateway, thing_type) -> None:
    """Every grant names the thing types ``provision-device`` gives: a thing made by hand
    without one (or of another application's type) can neither connect nor publish."""
    other = thing("pump-01", "plant1", thing_type, **{slot_attribute(1): "fan-01"})
    for action, name in [
        ("iot:Connect", "pump-01"),
        ("iot:Publish", "dt/plantwatch/plant1/pump-01/telemetry"),
        ("iot:Publish", "dt/plantwatch/plant1/fan-01/telemetry"),
        ("iot:Publish", "$aws/things/pump-01/shadow/update"),
        ("iot:Subscribe", "$aws/things/pump-01/shadow/update/delta"),
        ("iot:Receive", "$aws/things/pump-01/shadow/update/delta"),
    ]:
        assert not allowed(gateway, action, name, other, ARN), (action, name)


def test_every_policy_fits_iot_cores_size_limit(synthesized) -> None:
    longest = {
        "AWS::Partition": "aws-us-gov",
        "AWS::Region": "ap-southeast-4",
        "AWS::AccountId": "123456789012",
    }
    documents = [
        resolve(r["Properties"]["PolicyDocument"], longest)
        for r in synthesized.resources("AWS::IoT::Policy").values()
    ]
    assert len(documents) == 1 + -(-GATEWAY_SLOTS // 3) + -(-GATEWAY_SLOTS // 6)
    for document in documents:
        assert policy_chars(document) <= MAX_POLICY_CHARS


def test_a_device_sends_its_own_telemetry_through_basic_ingest_to_the_telemetry_rule_only(
    device, gateway
) -> None:
    """iot-core-rules-and-limits §4/§5: Basic Ingest needs publish on ``$aws/rules/<rule>/...``;
    the grant names the deployed telemetry rule and the thing's own topics, nothing else."""
    assert TELEMETRY_RULE in {rule.name for rule in load_rules(DEFAULT_RULES)}
    bi = f"$aws/rules/{TELEMETRY_RULE}"
    a = thing("pump-01")
    assert allowed(device, "iot:Publish", f"{bi}/dt/plantwatch/plant1/pump-01/telemetry", a, ARN)
    for name in [
        f"{bi}/dt/plantwatch/plant1/pump-02/telemetry",
        f"{bi}/dt/plantwatch/plant2/pump-01/telemetry",
        f"{bi}/other/topic",
        "$aws/rules/plantwatch_telemetry_to_archive/dt/plantwatch/plant1/pump-01/telemetry",
        f"$aws/rules/x/{bi}/dt/plantwatch/plant1/pump-01/telemetry",
        "$aws/rules/x/dt/plantwatch/plant2/b/telemetry/dt/plantwatch/plant1/pump-01/telemetry",
    ]:
        assert not allowed(device, "iot:Publish", name, a, ARN), name
    assert not allowed(device, "iot:Subscribe", f"{bi}/#", a, ARN)
    # a gateway sends each asset's telemetry the same way (its own ingest policies)
    gw = gateway_thing("gw-01", **{slot_attribute(7): "fan-07", slot_attribute(12): "fan-12"})
    for name in ("gw-01", "fan-07", "fan-12"):
        topic = f"{bi}/dt/plantwatch/plant1/{name}/telemetry"
        assert allowed(gateway, "iot:Publish", topic, gw, ARN), name
    for name in [
        f"{bi}/dt/plantwatch/plant1/fan-08/telemetry",
        f"{bi}/dt/plantwatch/plant2/fan-07/telemetry",
        "$aws/rules/plantwatch_telemetry_to_archive/dt/plantwatch/plant1/fan-07/telemetry",
    ]:
        assert not allowed(gateway, "iot:Publish", name, gw, ARN), name
    assert not allowed(gateway, "iot:Subscribe", f"{bi}/dt/plantwatch/plant1/fan-07/#", gw, ARN)


CONTRACT_DEVICE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "iot:Connect",
            "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}",
            "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
        },
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": [
                f"{ARN}:topic/dt/plantwatch/${{iot:Connection.Thing.Attributes[site]}}/"
                "${iot:Connection.Thing.ThingName}/*",
                f"{ARN}:topic/$aws/things/${{iot:Connection.Thing.ThingName}}/shadow/*",
            ],
        },
        {
            "Effect": "Allow",
            "Action": "iot:Subscribe",
            "Resource": [
                f"{ARN}:topicfilter/$aws/things/${{iot:Connection.Thing.ThingName}}/shadow/*"
            ],
        },
        {
            "Effect": "Allow",
            "Action": "iot:Receive",
            "Resource": [f"{ARN}:topic/$aws/things/${{iot:Connection.Thing.ThingName}}/shadow/*"],
        },
    ],
}
"""iot-core-rules-and-limits §4's device policy, REGION and ACCT filled in."""


def without_thing_types(statement: dict[str, Any]) -> dict[str, Any]:
    """*statement* without its thing-type condition (which must be there)."""
    condition = {op: dict(tests) for op, tests in statement["Condition"].items()}
    del condition["StringEquals"][THING_TYPE_NAME]
    condition = {op: tests for op, tests in condition.items() if tests}
    trimmed = {k: v for k, v in statement.items() if k != "Condition"}
    return {**trimmed, "Condition": condition} if condition else trimmed


def test_the_deployed_device_policy_is_the_contracts_plus_basic_ingest_of_its_own_topics(
    device,
) -> None:
    """The policy the stack deploys is §4's document with two additions: the same own
    telemetry topics through Basic Ingest to the telemetry rule (§5: Basic Ingest for
    cloud-only telemetry), and on every statement a condition on the plantwatch thing
    types (a departure from §4's text, docs/deploy.md)."""
    ingest = (
        f"{ARN}:topic/$aws/rules/{TELEMETRY_RULE}/dt/plantwatch/"
        "${iot:Connection.Thing.Attributes[site]}/${iot:Connection.Thing.ThingName}/*"
    )
    (deployed,) = device
    for statement in deployed["Statement"]:
        types = statement["Condition"]["StringEquals"][THING_TYPE_NAME]
        assert sorted(types) == [DEVICE_TYPE, GATEWAY_TYPE]
    deployed = {**deployed, "Statement": [without_thing_types(s) for s in deployed["Statement"]]}
    publish = deployed["Statement"][1]
    assert ingest in publish["Resource"]
    trimmed = {
        **deployed,
        "Statement": [
            deployed["Statement"][0],
            {**publish, "Resource": [r for r in publish["Resource"] if r != ingest]},
            *deployed["Statement"][2:],
        ],
    }
    assert trimmed == CONTRACT_DEVICE_POLICY


@given(site=NAMES)
def test_a_thing_without_a_site_attribute_publishes_no_telemetry(device, gateway, site) -> None:
    """§4 multi-tenancy: the site in a telemetry topic comes from the thing's ``site``
    attribute; a thing without one (not made by provision-device) reaches no site's topics,
    directly or through Basic Ingest, while its shadow still works."""
    bare = Connection("pump-01", "pump-01", attributes={}, thing_type=DEVICE_TYPE)
    for topic in (
        f"dt/plantwatch/{site}/pump-01/telemetry",
        "dt/plantwatch//pump-01/telemetry",
        "dt/plantwatch/${iot:Connection.Thing.Attributes[site]}/pump-01/telemetry",
        f"$aws/rules/{TELEMETRY_RULE}/dt/plantwatch/{site}/pump-01/telemetry",
    ):
        assert not allowed(device, "iot:Publish", topic, bare, ARN), topic
        assert not allowed(gateway, "iot:Publish", topic, bare, ARN), topic
    assert allowed(device, "iot:Publish", "$aws/things/pump-01/shadow/update", bare, ARN)
