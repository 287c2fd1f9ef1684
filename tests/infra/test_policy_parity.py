"""The IoT Core policies and the local brokers' ACL allow and refuse the same topics.

One table of (credential, action, topic) cases is asked of both sides: the deployed IoT
policy documents through the small IoT policy evaluator, and the ``acl`` file the local
brokers enforce through :class:`AccessControl`. A case where they differ must be in
``DIFFERENCES`` with the reason it is deliberate; anything else fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.runtime.broker_auth import AccessControl, AuthStore
from infra.policies import (
    TELEMETRY_RULE,
    device_policy,
    gateway_ingest_policies,
    gateway_policies,
    slot_attribute,
)
from tests.infra.iot_policy import Connection, allowed

ARN = "arn:aws:iot:eu-west-1:123456789012"
IOT_ACTION = {"publish": "iot:Publish", "subscribe": "iot:Subscribe", "receive": "iot:Receive"}
BI = f"$aws/rules/{TELEMETRY_RULE}"
SH = "$aws/things/pump-01/shadow"
GW_ASSETS = ("fan-01", "fan-02")

CASES: list[tuple[str, str, str]] = [
    # a device's own telemetry, at its own site only
    ("pump-01", "publish", "dt/plantwatch/s1/pump-01/telemetry"),
    ("pump-01", "publish", "dt/plantwatch/s1/pump-01/status"),
    ("pump-01", "publish", "dt/plantwatch/s1/pump-02/telemetry"),
    ("pump-01", "publish", "dt/plantwatch/s2/pump-01/telemetry"),
    ("pump-01", "publish", "dt/plantwatch/s1/+/telemetry"),
    ("pump-01", "publish", "dt/plantwatch/s1"),
    # the thing's own level alone is no topic of its: 3 slashes, no telemetry type
    ("pump-01", "publish", "dt/plantwatch/s1/pump-01"),
    ("pump-01", "publish", f"{BI}/dt/plantwatch/s1/pump-01"),
    ("pump-01", "publish", "dt/plantwatch/s1/pump-01/"),
    ("pump-01", "subscribe", "dt/plantwatch/s1/pump-01/telemetry"),
    ("pump-01", "receive", "dt/plantwatch/s1/pump-01/telemetry"),
    ("pump-01", "subscribe", "#"),
    ("pump-01", "subscribe", "dt/plantwatch/#"),
    # Basic Ingest of the same topics, to the telemetry rule
    ("pump-01", "publish", f"{BI}/dt/plantwatch/s1/pump-01/telemetry"),
    ("pump-01", "publish", f"{BI}/dt/plantwatch/s1/pump-02/telemetry"),
    ("pump-01", "publish", f"{BI}/dt/plantwatch/s2/pump-01/telemetry"),
    ("pump-01", "publish", f"{BI}/other/topic"),
    ("pump-01", "publish", "$aws/rules/plantwatch_telemetry_to_archive/dt/plantwatch/s1/pump-01/x"),
    ("pump-01", "publish", f"$aws/rules/x/{BI}/dt/plantwatch/s1/pump-01/telemetry"),
    ("pump-01", "subscribe", f"{BI}/#"),
    ("pump-01", "receive", f"{BI}/dt/plantwatch/s1/pump-01/telemetry"),
    # its own shadows, classic and named
    *[("pump-01", "publish", f"{SH}/{op}") for op in ("get", "update", "delete")],
    *[("pump-01", "publish", f"{SH}/name/cfg/{op}") for op in ("get", "update", "delete")],
    *[
        ("pump-01", action, f"{SH}/{reply}")
        for action in ("subscribe", "receive")
        for reply in (
            "get/accepted",
            "get/rejected",
            "update/accepted",
            "update/rejected",
            "update/delta",
            "update/documents",
            "delete/accepted",
            "name/cfg/update/delta",
            "name/cfg/get/accepted",
        )
    ],
    ("pump-01", "subscribe", f"{SH}/#"),
    ("pump-01", "subscribe", SH),
    ("pump-01", "receive", SH),
    ("pump-01", "subscribe", f"{SH}/name/+/update/delta"),
    ("pump-01", "publish", f"{SH}/update/accepted"),
    ("pump-01", "publish", f"{SH}/update/delta"),
    # nobody else's shadows, no wildcard over things, no commands, no other $aws topics
    ("pump-01", "publish", "$aws/things/pump-02/shadow/update"),
    ("pump-01", "subscribe", "$aws/things/pump-02/shadow/update/delta"),
    ("pump-01", "receive", "$aws/things/pump-02/shadow/update/delta"),
    ("pump-01", "subscribe", "$aws/things/+/shadow/update/delta"),
    ("pump-01", "subscribe", "$aws/things/#"),
    ("pump-01", "publish", "cmd/plantwatch/s1/pump-01/req"),
    ("pump-01", "subscribe", "cmd/plantwatch/s1/pump-01/req"),
    ("pump-01", "publish", "$aws/things/pump-01/jobs/start-next"),
    ("pump-01", "publish", "$aws/events/presence/connected/pump-01"),
    # a gateway: its own status, and each asset's telemetry and shadows, at its site
    ("gw-01", "publish", "dt/plantwatch/s1/gw-01/status"),
    *[
        ("gw-01", action, topic)
        for asset in GW_ASSETS
        for action, topic in (
            ("publish", f"dt/plantwatch/s1/{asset}/telemetry"),
            ("publish", f"{BI}/dt/plantwatch/s1/{asset}/telemetry"),
            ("publish", f"$aws/things/{asset}/shadow/update"),
            ("publish", f"$aws/things/{asset}/shadow/name/cfg/get"),
            ("subscribe", f"$aws/things/{asset}/shadow/update/delta"),
            ("receive", f"$aws/things/{asset}/shadow/get/accepted"),
        )
    ],
    ("gw-01", "publish", "dt/plantwatch/s1/gw-01/telemetry"),
    ("gw-01", "subscribe", "$aws/things/gw-01/shadow/update/delta"),
    ("gw-01", "publish", "dt/plantwatch/s1/fan-03/telemetry"),
    ("gw-01", "publish", "dt/plantwatch/s2/fan-01/telemetry"),
    ("gw-01", "publish", "$aws/things/fan-03/shadow/update"),
    ("gw-01", "publish", "dt/plantwatch/s1/pump-01/telemetry"),
]

DIFFERENCES: dict[tuple[str, str, str], tuple[bool, bool, str]] = {
    # (aws, local, why)
    ("pump-01", "publish", f"{SH}/update/accepted"): (
        True,
        False,
        "iot-core-rules-and-limits §4's device policy grants publish on shadow/*; IoT Core "
        "itself answers on the reply topics, the local shadow service is a client of the "
        "broker, so the local ACL grants only get/update/delete",
    ),
    ("pump-01", "publish", f"{SH}/update/delta"): (True, False, "as above"),
    (
        "pump-01",
        "publish",
        "$aws/rules/plantwatch_telemetry_to_archive/dt/plantwatch/s1/pump-01/x",
    ): (
        False,
        True,
        "the local ACL lets a device's own topics reach any rule by Basic Ingest (one `+` "
        "level, so no rule can be sent another thing's topic) because the local runner runs "
        "whichever rules file it is given; the IoT policy names the deployed telemetry rule",
    ),
    **{
        case: (
            True,
            False,
            "every certificate carries plantwatch-device (infra/provision.py), so on AWS a "
            "gateway may also act as a device of its own name; the local gateway credential "
            "gets only its status topic unless it lists itself as an asset",
        )
        for case in [
            ("gw-01", "publish", "dt/plantwatch/s1/gw-01/telemetry"),
            ("gw-01", "subscribe", "$aws/things/gw-01/shadow/update/delta"),
        ]
    },
}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> AccessControl:
    store = AuthStore(Path(tmp_path_factory.mktemp("auth")) / "auth").ensure()
    store.add_device("pump-01", "s1")
    store.add_device("gw-01", "s1", GW_ASSETS)
    return AccessControl(store.passwd_file, store.acl_file)


def connection(credential: str) -> Connection:
    attributes = {"site": "s1"}
    if credential == "gw-01":
        attributes |= {slot_attribute(i): a for i, a in enumerate(GW_ASSETS, start=1)}
    thing_type = "plantwatch-gateway" if credential == "gw-01" else "plantwatch-device"
    return Connection(credential, credential, attributes, thing_type=thing_type)


def documents(credential: str) -> list[dict]:
    if credential == "gw-01":
        return gateway_policies(ARN) + gateway_ingest_policies(ARN)
    return [device_policy(ARN)]


@pytest.mark.parametrize(("credential", "action", "topic"), CASES)
def test_iot_policy_and_local_acl_agree(
    local: AccessControl, credential: str, action: str, topic: str
) -> None:
    aws = allowed(documents(credential), IOT_ACTION[action], topic, connection(credential), ARN)
    here = local.allows(credential, action, topic)
    expected = DIFFERENCES.get((credential, action, topic))
    if expected is None:
        assert aws == here, f"IoT policy {aws}, local ACL {here}: {credential} {action} {topic}"
    else:
        assert (aws, here) == expected[:2]


def test_policies_grant_four_actions_on_resources_bound_to_the_connected_thing() -> None:
    """No ``iot:*``, no ``*`` resource, no ``iot:RetainPublish`` (the agent never retains,
    its last will included), and every resource names a thing policy variable, so what a
    certificate may touch follows from the thing it is attached to."""
    documents = gateway_policies(ARN) + gateway_ingest_policies(ARN)
    for statement in (s for d in documents for s in d["Statement"]):
        assert statement["Effect"] == "Allow"
        assert statement["Action"] in IOT_ACTION.values() or statement["Action"] == "iot:Connect"
        resources = statement["Resource"]
        for resource in resources if isinstance(resources, list) else [resources]:
            assert resource.startswith(f"{ARN}:"), resource
            assert "${iot:Connection.Thing." in resource, resource
