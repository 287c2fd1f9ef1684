"""The credential store and the ACL both brokers enforce (``cloud/runtime/broker_auth.py``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.runtime.broker_auth import (
    SERVICE_GRANTS,
    AccessControl,
    AuthStore,
    acl_matches,
    hash_password,
    verify_password,
)
from edge.errors import ConfigError, NotFoundError


def test_password_hashes_are_mosquittos_pbkdf2_format_and_verify() -> None:
    encoded = hash_password("correct horse", salt=b"0123456789ab")
    assert encoded.startswith("$7$101$MDEyMzQ1Njc4OWFi$")
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct hors", encoded)
    assert not verify_password("correct horse", "$6$salt$hash")
    assert not verify_password("x", "$7$notanumber$AA==$AA==")


def test_ensure_keeps_service_passwords_and_add_device_returns_an_unstored_password(
    tmp_path: Path,
) -> None:
    store = AuthStore(tmp_path / "auth").ensure()
    first = {name: store.service_password(name) for name in SERVICE_GRANTS}
    password = store.add_device("pump-01", "s1")
    AuthStore(tmp_path / "auth").ensure()
    assert {name: store.service_password(name) for name in SERVICE_GRANTS} == first
    stored = json.loads(store.devices_file.read_text())
    assert password not in store.devices_file.read_text()
    assert verify_password(password, stored["pump-01"]["hash"])
    access = AccessControl(store.passwd_file, store.acl_file)
    assert access.authenticate("pump-01", password)
    assert access.authenticate("plantwatch-rules", first["plantwatch-rules"])
    assert not access.authenticate("pump-01", first["plantwatch-rules"])
    assert not access.authenticate(None, None)


@pytest.mark.parametrize(
    ("thing", "site", "assets", "message"),
    [
        ("pump 1", "s1", [], "thing 'pump 1'"),
        ("pump-1\n", "s1", [], "thing 'pump-1\\n'"),
        ("pump-1", "s/1", [], "site 's/1'"),
        ("gw", "s1", ["a", "a"], "must be unique"),
        ("gw", "s1", ["a+"], "asset 'a+'"),
        ("plantwatch-rules", "s1", [], "stack service"),
        # iot-core-rules-and-limits §5: topic levels are lowercase letters, digits and '-'
        ("Pump-1", "s1", [], "thing 'Pump-1': 'P' is not allowed"),
        ("pump_1", "s1", [], "thing 'pump_1': '_' is not allowed"),
        ("pump-1", "S1", [], "site 'S1': 'S' is not allowed"),
        ("pump-1", "", [], "site '': empty"),
        ("gw", "s1", ["a#"], "asset 'a#': '#' is not allowed"),
        ("gw", "s1", ["$a"], "asset '$a': '$' is not allowed"),
        ("gw", "s1", ["/a"], "asset '/a': '/' is not allowed"),
        ("gw", "s1", ["ä"], "asset 'ä': 'ä' is not allowed"),
        ("t" * 120, "s" * 120, [], "is 265 bytes; IoT Core takes at most 256"),
        ("gw", "s" * 120, ["a" * 122], "is 267 bytes; IoT Core takes at most 256"),
    ],
)
def test_bad_device_names_are_refused_with_the_field(
    tmp_path: Path, thing: str, site: str, assets: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        AuthStore(tmp_path / "auth").add_device(thing, site, assets)
    if "not allowed" in message:
        assert "lowercase letters, digits and '-'" in str(refused.value)
    assert not (tmp_path / "auth" / "devices.json").exists(), "nothing is stored"


def test_the_acl_grants_a_device_what_the_iot_policy_grants_and_nothing_more(
    tmp_path: Path,
) -> None:
    store = AuthStore(tmp_path / "auth").ensure()
    store.add_device("pump-01", "s1")
    store.add_device("gw", "s2", ["a-1"])
    access = AccessControl(store.passwd_file, store.acl_file)
    allowed = [
        ("pump-01", "publish", "dt/plantwatch/s1/pump-01/telemetry"),
        ("pump-01", "publish", "$aws/things/pump-01/shadow/update"),
        ("pump-01", "publish", "$aws/things/pump-01/shadow/name/cfg/delete"),
        ("pump-01", "subscribe", "$aws/things/pump-01/shadow/get/+"),
        ("pump-01", "receive", "$aws/things/pump-01/shadow/update/delta"),
        ("gw", "publish", "dt/plantwatch/s2/a-1/telemetry"),
        ("gw", "receive", "$aws/things/a-1/shadow/name/cfg/update/delta"),
        ("plantwatch-rules", "subscribe", "dt/plantwatch/+/+/telemetry"),
        ("plantwatch-shadow", "publish", "$aws/things/pump-01/shadow/update/delta"),
        ("plantwatch-detectors", "publish", "$aws/things/pump-01/shadow/update"),
        ("pump-01", "publish", "dt/plantwatch/s1/pump-01/status"),
        ("gw", "publish", "dt/plantwatch/s2/gw/status"),
        ("plantwatch-devices", "subscribe", "dt/plantwatch/+/+/status"),
        (
            "pump-01",
            "publish",
            "$aws/rules/plantwatch_telemetry_to_batcher/dt/plantwatch/s1/pump-01/telemetry",
        ),
        ("gw", "publish", "$aws/rules/any_rule/dt/plantwatch/s2/a-1/telemetry"),
        ("plantwatch-rules", "subscribe", "$aws/rules/plantwatch_telemetry_to_batcher/#"),
        ("plantwatch-rules", "receive", "$aws/rules/r/dt/plantwatch/s1/pump-01/telemetry"),
    ]
    refused = [
        ("pump-01", "publish", "dt/plantwatch/s1/pump-02/telemetry"),
        ("pump-01", "publish", "dt/plantwatch/s2/pump-01/telemetry"),
        ("pump-01", "publish", "$aws/things/pump-01/shadow/update/delta"),
        ("pump-01", "publish", "$aws/things/pump-02/shadow/update"),
        ("pump-01", "subscribe", "$aws/things/+/shadow/#"),
        ("pump-01", "subscribe", "#"),
        ("pump-01", "receive", "$aws/things/pump-02/shadow/update/delta"),
        ("pump-01", "receive", "dt/plantwatch/s1/pump-01/telemetry"),
        ("gw", "publish", "dt/plantwatch/s2/gw/telemetry"),
        ("gw", "publish", "dt/plantwatch/s1/gw/status"),
        ("plantwatch-devices", "subscribe", "dt/plantwatch/+/+/telemetry"),
        ("gw", "publish", "$aws/things/gw/shadow/update"),
        ("plantwatch-rules", "publish", "dt/plantwatch/s1/pump-01/telemetry"),
        ("plantwatch-detectors", "publish", "$aws/things/pump-01/shadow/update/delta"),
        ("nobody", "receive", "dt/plantwatch/s1/pump-01/telemetry"),
        (None, "publish", "dt/plantwatch/s1/pump-01/telemetry"),
        ("pump-01", "publish", "$aws/rules/r/dt/plantwatch/s1/pump-02/telemetry"),
        ("pump-01", "publish", "$aws/rules/r/dt/plantwatch/s2/pump-01/telemetry"),
        ("pump-01", "publish", "$aws/rules/r/other/topic"),
        ("pump-01", "publish", "$aws/rules/r"),
        ("pump-01", "subscribe", "$aws/rules/#"),
        ("pump-01", "receive", "$aws/rules/r/dt/plantwatch/s1/pump-01/telemetry"),
        ("gw", "publish", "$aws/rules/r/dt/plantwatch/s2/gw/telemetry"),
        ("plantwatch-rules", "publish", "$aws/rules/r/dt/plantwatch/s1/pump-01/telemetry"),
        ("plantwatch-shadow", "subscribe", "$aws/rules/#"),
        ("plantwatch-streaming", "receive", "$aws/rules/r/dt/plantwatch/s1/pump-01/telemetry"),
    ]
    assert [g for g in allowed if not access.allows(*g)] == []
    assert [g for g in refused if access.allows(*g)] == []


def test_removing_a_device_revokes_it_after_a_reload(tmp_path: Path) -> None:
    store = AuthStore(tmp_path / "auth").ensure()
    password = store.add_device("pump-01", "s1")
    access = AccessControl(store.passwd_file, store.acl_file)
    store.remove_device("pump-01")
    assert access.authenticate("pump-01", password), "until the broker re-reads the files"
    access.reload()
    assert not access.authenticate("pump-01", password)
    assert not access.allows("pump-01", "publish", "dt/plantwatch/s1/pump-01/telemetry")
    with pytest.raises(NotFoundError):
        store.remove_device("pump-01")


def test_a_malformed_acl_line_is_named(tmp_path: Path) -> None:
    store = AuthStore(tmp_path / "auth").ensure()
    store.acl_file.write_text("user a\ntopic maybe x/y\n")
    with pytest.raises(ConfigError, match=r"acl:2: expected"):
        AccessControl(store.passwd_file, store.acl_file)


LEVEL = st.sampled_from(["a", "b", "$aws", "+", "#", ""])


@given(
    pattern=st.lists(LEVEL, min_size=1, max_size=5).map("/".join),
    topic=st.lists(st.sampled_from(["a", "b", "$aws", "", "c"]), min_size=1, max_size=5).map(
        "/".join
    ),
)
def test_acl_matching_of_a_topic_is_mqtt_matching(pattern: str, topic: str) -> None:
    levels = pattern.split("/")
    valid = all(level == "#" or "#" not in level for level in levels) and ("#" not in levels[:-1])
    if not valid:
        return
    assert acl_matches(pattern, topic) == mqtt.topic_matches_sub(pattern, topic)


def test_auth_list_of_a_missing_data_directory_is_bad_input_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloud.cli.main import main

    missing = tmp_path / "nowhere"
    assert main(["auth", "list", "--data", str(missing)]) == 2
    assert not missing.exists()
    err = capsys.readouterr().err
    assert err.startswith("plantwatch: error: ") and err.count("\n") == 1


def test_auth_add_device_prints_an_agent_config_and_keeps_no_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tomllib

    from cloud.cli.main import main

    assert main(["auth", "add-device", "gw-1", "--site", "s1", "--asset", "a", "--asset", "b",
                 "--data", str(tmp_path)]) == 0  # fmt: skip
    snippet = tomllib.loads(capsys.readouterr().out)
    assert snippet["agent"]["sender"] == "gw-1" and snippet["agent"]["assets"] == ["a", "b"]
    assert snippet["auth"]["username"] == "gw-1"
    password = snippet["auth"]["password"]
    stored = "".join(p.read_text() for p in (tmp_path / "auth").iterdir())
    assert password not in stored
    assert main(["auth", "list", "--data", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"thing": "gw-1", "site": "s1", "assets": ["a", "b"]}
    ]


def test_adding_an_existing_device_is_refused_unless_replace_is_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second ``add-device`` for the same thing used to give it a new password silently,
    locking out the device that holds the old one; now it says so and names ``--replace``."""
    from cloud.cli.main import main

    data = ["--data", str(tmp_path)]
    assert main(["auth", "add-device", "pump-01", "--site", "s1", *data, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["password"]
    store = AuthStore.in_data(tmp_path)
    before = store.devices_file.read_text()

    assert main(["auth", "add-device", "pump-01", "--site", "s2", *data, "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith("plantwatch: error: ") and "pump-01" in err and "--replace" in err
    assert store.devices_file.read_text() == before, "nothing changed"
    access = AccessControl(store.passwd_file, store.acl_file)
    assert access.authenticate("pump-01", first)

    assert (
        main(["auth", "add-device", "pump-01", "--site", "s2", *data, "--json", "--replace"]) == 0
    )
    out, err = capsys.readouterr()
    second = json.loads(out)["password"]
    assert "replaced" in err and "pump-01" in err
    access.reload()
    assert access.authenticate("pump-01", second) and not access.authenticate("pump-01", first)
    assert [(d.thing, d.site) for d in store.devices()] == [("pump-01", "s2")]

    with pytest.raises(ConfigError, match=r"pump-01.*--replace"):
        store.add_device("pump-01", "s1")
    assert main(["auth", "add-device", "pump-02", "--site", "s1", *data, "--replace"]) == 0
    assert "replaced" not in capsys.readouterr().err, "nothing was replaced"


def test_a_thing_belongs_to_one_site_across_credentials(tmp_path: Path) -> None:
    """iot-core-rules-and-limits §4 multi-tenancy: a thing has one ``site`` attribute (on AWS
    provision-device cannot make an existing thing an asset at another site: CreateThing
    refuses other attributes). Shadows are not split by site, so a gateway at site s2
    listing s1's pump-01 would read and command pump-01's shadow and publish its telemetry
    under s2; the credential is refused naming the thing, its site and its credential."""
    store = AuthStore(tmp_path / "auth")
    store.add_device("pump-01", "s1")
    store.add_device("gw-1", "s1", ["fan-01"])
    before = store.devices_file.read_text()
    for thing, site, assets, taken in [
        ("gw-2", "s2", ["pump-01"], "pump-01"),
        ("gw-2", "s2", ["fan-02", "fan-01"], "fan-01"),
        ("fan-01", "s2", [], "fan-01"),
        ("gw-1", "s2", ["pump-01"], "pump-01"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(f"{taken!r}")) as refused:
            store.add_device(thing, site, assets, replace=True)
        assert "at site 's1'" in str(refused.value) and "one site" in str(refused.value)
        assert store.devices_file.read_text() == before, "nothing changed"
    # the same site is fine (a gateway taking over a device's asset), as is moving a
    # credential's own things with --replace
    store.add_device("gw-3", "s1", ["pump-01"])
    store.add_device("gw-1", "s2", ["fan-01"], replace=True)
    assert {(d.thing, d.site) for d in store.devices()} == {
        ("pump-01", "s1"),
        ("gw-1", "s2"),
        ("gw-3", "s1"),
    }
