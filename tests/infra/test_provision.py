"""plantwatch provision-device under moto: thing, certificate, policies, a config the agent
accepts, and a private key only its owner can read."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from cloud.cli.main import main
from edge.config import load_config
from edge.errors import ConfigError
from edge.wire import command_topic, iot_core_topic_problem, status_topic, telemetry_topic
from infra.policies import DEVICE_POLICY
from infra.provision import provision

REGION = "eu-west-1"
THING_TYPES = ("plantwatch-device", "plantwatch-gateway")
"""The thing types the stack creates (infra/parts/ingest.py)."""


@pytest.fixture
def iot(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("iot", region_name=REGION)
        names = [DEVICE_POLICY, *(f"plantwatch-gateway-{n}" for n in range(1, 5))]
        names += ["plantwatch-gateway-ingest-1", "plantwatch-gateway-ingest-2"]
        for name in names:
            client.create_policy(policyName=name, policyDocument=json.dumps({"Statement": []}))
        for thing_type in THING_TYPES:
            client.create_thing_type(thingTypeName=thing_type)
        yield client


def test_a_device_gets_a_thing_certificate_and_a_config_the_agent_accepts(
    iot, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "pump-01"
    code = main(
        [
            "provision-device",
            "pump-01",
            "--site",
            "plant1",
            "--out",
            str(out),
            "--region",
            REGION,
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    thing = iot.describe_thing(thingName="pump-01")
    assert thing["thingTypeName"] == "plantwatch-device"
    assert thing["attributes"] == {"site": "plant1"}
    principals = iot.list_thing_principals(thingName="pump-01")["principals"]
    assert principals == [doc["certificate_arn"]]
    attached = iot.list_attached_policies(target=doc["certificate_arn"])["policies"]
    assert [p["policyName"] for p in attached] == [DEVICE_POLICY]

    for name in ("private.pem.key", "device.pem.crt", "agent.toml"):
        mode = stat.S_IMODE((out / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert "PRIVATE KEY" in (out / "private.pem.key").read_text()
    config, _sources, _ = load_config(out / "agent.toml")
    assert config.sender == "pump-01" and config.site == "plant1"
    assert config.assets == ("pump-01",)
    assert config.broker_url.startswith("mqtts://") and config.broker_url.endswith(":8883")
    assert config.tls is not None and config.tls.key == str(out / "private.pem.key")


def test_a_gateway_lists_its_assets_in_attributes_and_gets_the_gateway_policies(
    iot, tmp_path: Path, capsys
) -> None:
    assets = ["pump-01", "pump-02", "pump-03", "fan-01"]
    code = main(
        ["provision-device", "gw-01", "--site", "plant1", "--assets", ",".join(assets),
         "--out", str(tmp_path / "gw"), "--json"]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    attributes = iot.describe_thing(thingName="gw-01")["attributes"]
    assert attributes == {"site": "plant1", "asset1": "pump-01", "asset2": "pump-02",
                          "asset3": "pump-03", "asset4": "fan-01"}  # fmt: skip
    assert doc["policies"] == [
        DEVICE_POLICY,
        "plantwatch-gateway-1",
        "plantwatch-gateway-2",
        "plantwatch-gateway-ingest-1",
    ]
    # §4 multi-tenancy: every thing made has a thing type and its site; the gateway's
    # type is what its gateway policies require, its assets are devices
    assert iot.describe_thing(thingName="gw-01")["thingTypeName"] == "plantwatch-gateway"
    for asset in assets:
        described = iot.describe_thing(thingName=asset)
        assert described["attributes"] == {"site": "plant1"}
        assert described["thingTypeName"] == "plantwatch-device"
    config, _, _ = load_config(tmp_path / "gw" / "agent.toml")
    assert config.assets == tuple(assets)


def test_bad_names_and_too_many_assets_are_refused_before_any_call(iot, tmp_path, capsys) -> None:
    assert main(["provision-device", "pump 01", "--site", "plant1", "--out", str(tmp_path)]) == 2
    assert "THING: 'pump 01'" in capsys.readouterr().err
    many = ",".join(f"a{i}" for i in range(13))
    assert (
        main(["provision-device", "gw", "--site", "s", "--assets", many, "--out", str(tmp_path)])
        == 2
    )
    assert "at most 12" in capsys.readouterr().err
    assert iot.list_things()["things"] == []


def test_an_existing_config_is_not_overwritten(iot, tmp_path, capsys) -> None:
    args = ["provision-device", "pump-01", "--site", "plant1", "--out", str(tmp_path)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err


def test_a_missing_policy_means_the_stack_is_not_deployed(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        code = main(["provision-device", "pump-01", "--site", "plant1", "--out", str(tmp_path),
                     "--region", REGION])  # fmt: skip
        assert boto3.client("iot", region_name=REGION).list_things()["things"] == []
    assert code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("plantwatch: error: pump-01:") and "plantwatch deploy" in last


TOPIC_RULE = "lowercase letters, digits and '-'"
BAD_NAMES = [
    ("Pump-01", "'P'"),
    ("pump_01", "'_'"),
    ("pump/01", "'/'"),
    ("/pump", "'/'"),
    ("pump+", "'+'"),
    ("pump#", "'#'"),
    ("$pump", "'$'"),
    ("pump 01", "' '"),
    ("pümp", "'ü'"),
]


@pytest.mark.parametrize(("name", "character"), BAD_NAMES)
@pytest.mark.parametrize("field", ["THING", "--site", "--assets"])
def test_a_name_outside_the_topic_naming_rule_is_refused_before_any_call(
    iot, tmp_path, capsys, field: str, name: str, character: str
) -> None:
    """iot-core-rules-and-limits §5: thing and site names are topic levels, lowercase letters,
    digits and '-' only; the refusal names the field, the character and the rule."""
    values = {"THING": "gw-01", "--site": "plant1", "--assets": "pump-01"} | {field: name}
    args = ["provision-device", values["THING"], "--site", values["--site"]]
    args += ["--assets", values["--assets"], "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, "one line, before any progress is printed"
    assert err.startswith(f"plantwatch: error: {field}: {name!r}: {character} is not allowed")
    assert TOPIC_RULE in err, err
    assert iot.list_things()["things"] == []
    assert iot.list_certificates()["certificates"] == []


def test_an_empty_name_is_refused_naming_the_rule(iot, tmp_path, capsys) -> None:
    assert main(["provision-device", "pump-01", "--site", "", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--site: ''" in err and TOPIC_RULE in err, err
    assert iot.list_things()["things"] == []


def test_names_whose_topic_would_pass_256_bytes_are_refused_before_any_call(
    iot, tmp_path, capsys
) -> None:
    """Each name may be 128 characters, but dt/plantwatch/<site>/<thing>/telemetry must stay
    within IoT Core's 256 bytes: the agent would refuse to start after the thing and its
    certificate were made."""
    site, thing = "s" * 117, "t" * 123
    assert main(["provision-device", thing, "--site", site, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("plantwatch: error: THING: 'ttt"), err
    assert "265 bytes" in err and "256" in err and "--site" in err, err
    assert iot.list_things()["things"] == []
    assert iot.list_certificates()["certificates"] == []
    gateway = ["provision-device", "gw", "--site", site, "--assets", f"a,{'a' * 115}"]
    assert main([*gateway, "--out", str(tmp_path)]) == 2
    assert "257 bytes" in capsys.readouterr().err
    assert iot.list_things()["things"] == []


class _NoCalls:
    """An IoT client that fails the test the moment provisioning reaches AWS."""

    def __getattr__(self, name: str) -> object:
        raise _Reached(name)


class _Reached(Exception):
    pass


NAME_TEXT = st.text(
    alphabet=st.sampled_from("abz09-_AZ/+#$ .ü\x00"), min_size=0, max_size=140
) | st.from_regex(r"[a-z0-9-]{100,128}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(thing=NAME_TEXT, site=NAME_TEXT)
def test_provisioning_reaches_aws_only_with_names_making_valid_topics(
    tmp_path_factory, thing: str, site: str
) -> None:
    """Either a one-line refusal before any call, or every topic the device will use has
    exactly 4 slashes, no empty level, §5's characters and at most 256 bytes."""
    out = tmp_path_factory.mktemp("out")
    try:
        provision(thing, site, out, client=_NoCalls())  # type: ignore[arg-type]
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    except _Reached:
        pass
    for topic in (
        telemetry_topic(site, thing),
        status_topic(site, thing),
        command_topic(site, thing, "req"),
        command_topic(site, thing, "res"),
    ):
        assert topic.count("/") == 4 and "" not in topic.split("/"), topic
        assert re.fullmatch(r"[a-z0-9/-]+", topic), topic
        assert len(topic.encode()) <= 256 and iot_core_topic_problem(topic) is None, topic


def test_a_thing_of_another_site_is_refused_before_anything_is_created(
    iot, tmp_path, capsys
) -> None:
    """§4 multi-tenancy: a thing has one site. CreateThing refuses an existing thing with
    other attributes (ResourceAlreadyExistsException; moto overwrites them), which came
    after the gateway's own thing was made; now the refusal names the thing and its site
    and nothing is created. Things without the thing type and a site attribute (made by
    hand) are refused the same way, since the policies need both."""
    assert main(["provision-device", "pump-01", "--site", "s1", "--out", str(tmp_path / "p")]) == 0
    iot.create_thing(thingName="bare-01")
    capsys.readouterr()
    for assets, thing, where in [
        ("fan-01,pump-01", "pump-01", "site 's1'"),
        ("bare-01", "bare-01", "no thing type"),
    ]:
        args = ["provision-device", "gw-01", "--site", "s2", "--assets", assets]
        assert main([*args, "--out", str(tmp_path / "gw")]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"--assets: thing {thing!r} exists with {where}" in err, err
        assert "one site" in err or "thing type" in err, err
        names = {t["thingName"] for t in iot.list_things()["things"]}
        assert names == {"pump-01", "bare-01"}
        assert iot.describe_thing(thingName="pump-01")["attributes"] == {"site": "s1"}
        assert len(iot.list_certificates()["certificates"]) == 1
    # the same site is fine: a gateway takes over a device's shadow at its site
    args = ["provision-device", "gw-01", "--site", "s1", "--assets", "pump-01"]
    assert main([*args, "--out", str(tmp_path / "gw")]) == 0


def test_each_sites_fleet_is_a_thing_group(iot, tmp_path, capsys) -> None:
    """iot-core-rules-and-limits §4 multi-tenancy: thing groups hold each site's fleet, so a
    site's things can be listed, and given jobs, as one."""
    assert (
        main(["provision-device", "pump-01", "--site", "plant1", "--out", str(tmp_path / "p")]) == 0
    )
    args = ["provision-device", "gw-01", "--site", "plant1", "--assets", "fan-01,fan-02"]
    assert main([*args, "--out", str(tmp_path / "gw")]) == 0
    assert (
        main(["provision-device", "pump-01-b", "--site", "plant2", "--out", str(tmp_path / "b")])
        == 0
    )

    def fleet(site: str) -> set[str]:
        group = f"plantwatch-{site}"
        return set(iot.list_things_in_thing_group(thingGroupName=group)["things"])

    assert fleet("plant1") == {"pump-01", "gw-01", "fan-01", "fan-02"}
    assert fleet("plant2") == {"pump-01-b"}
    described = iot.describe_thing_group(thingGroupName="plantwatch-plant1")
    assert described["thingGroupProperties"]["attributePayload"]["attributes"] == {"site": "plant1"}


def test_a_site_whose_thing_group_name_would_pass_128_characters_is_refused(
    iot, tmp_path, capsys
) -> None:
    site = "s" * 118
    assert main(["provision-device", "p", "--site", site, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "thing group" in err and "117" in err, err
    assert iot.list_things()["things"] == []


def test_a_device_and_a_gateway_never_take_each_others_role(iot, tmp_path, capsys) -> None:
    """The gateway policies grant only to things of type plantwatch-gateway. Provisioning
    refuses, before anything is created, a gateway whose name is a device's, a device whose
    name is a gateway's, and a gateway named as another gateway's asset (CreateThing refuses
    a changed type, moto replaces it)."""

    def run(thing: str, *assets: str) -> int:
        args = ["provision-device", thing, "--site", "s1", "--out", str(tmp_path / thing)]
        return main([*args, *(["--assets", ",".join(assets)] if assets else []), "--force"])

    assert run("pump-01") == 0
    assert run("gw-01", "fan-01") == 0
    capsys.readouterr()
    for args, what, name, kind in [
        (("pump-01", "fan-02"), "THING", "pump-01", "plantwatch-device"),
        (("gw-01",), "THING", "gw-01", "plantwatch-gateway"),
        (("gw-02", "fan-03", "gw-01"), "--assets", "gw-01", "plantwatch-gateway"),
    ]:
        assert run(*args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"{what}: thing {name!r} is a {kind}" in err, err
        assert iot.describe_thing(thingName="pump-01")["thingTypeName"] == "plantwatch-device"
        assert iot.describe_thing(thingName="gw-01")["thingTypeName"] == "plantwatch-gateway"
        names = {t["thingName"] for t in iot.list_things()["things"]}
        assert names == {"pump-01", "gw-01", "fan-01"}, args
        assert len(iot.list_certificates()["certificates"]) == 2, args
    # a device is the asset of a gateway (its shadow), and a gateway is re-provisioned as one
    assert run("gw-01", "fan-01", "pump-01") == 0
    assert iot.describe_thing(thingName="pump-01")["thingTypeName"] == "plantwatch-device"


@pytest.mark.parametrize("missing", THING_TYPES)
def test_a_missing_thing_type_means_the_stack_is_out_of_date(
    monkeypatch, tmp_path, capsys, missing: str
) -> None:
    """The stack owns the thing types: provisioning does not create one (the stack's own
    create would then fail), it refuses before anything is made."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        iot = boto3.client("iot", region_name=REGION)
        for name in (DEVICE_POLICY, "plantwatch-gateway-1", "plantwatch-gateway-ingest-1"):
            iot.create_policy(policyName=name, policyDocument=json.dumps({"Statement": []}))
        for thing_type in THING_TYPES:
            if thing_type != missing:
                iot.create_thing_type(thingTypeName=thing_type)
        args = ["provision-device", "gw-01", "--site", "s1", "--assets", "fan-01"]
        code = main([*args, "--out", str(tmp_path), "--region", REGION])
        assert iot.list_things()["things"] == []
        assert iot.list_certificates()["certificates"] == []
        assert {t["thingTypeName"] for t in iot.list_thing_types()["thingTypes"]} == (
            set(THING_TYPES) - {missing}
        )
    assert code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("plantwatch: error: gw-01:") and "plantwatch deploy" in last, last


def test_a_gateways_slots_are_as_many_assets_as_the_agent_takes_on_iot_core() -> None:
    """The policies' asset slots and the agent's refusal at load agree: as many assets as
    the agent's shadow subscriptions fit in IoT Core's 50 per connection, and no fewer."""
    from edge.shadow import SUBSCRIPTIONS_PER_THING
    from edge.wire import MAX_SUBSCRIPTIONS
    from infra.policies import GATEWAY_SLOTS

    assert GATEWAY_SLOTS == MAX_SUBSCRIPTIONS // SUBSCRIPTIONS_PER_THING
