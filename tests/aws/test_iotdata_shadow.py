"""The boto3 iot-data shadow adapter against moto: same calls and errors as the local clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cloud.adapters.aws.iotdata_shadow import IotDataShadowClient
from cloud.shadow.client import ShadowRejectedError
from edge.errors import ConflictError, NotFoundError

REGION = "eu-west-1"


@pytest.fixture
def aws() -> Iterator[tuple[Any, IotDataShadowClient]]:
    with mock_aws():
        iot = boto3.client("iot", region_name=REGION)
        yield iot, IotDataShadowClient(boto3.client("iot-data", region_name=REGION))


def test_update_get_delete_round_trip(aws):
    iot, shadows = aws
    iot.create_thing(thingName="pump-1")
    accepted = shadows.update("pump-1", desired={"mode": "safe"})
    assert accepted["version"] == 1 and accepted["state"] == {"desired": {"mode": "safe"}}
    document = shadows.get("pump-1")
    assert document["state"]["delta"] == {"mode": "safe"}
    shadows.update("pump-1", reported={"mode": "safe"}, version=1)
    assert "delta" not in shadows.get("pump-1")["state"]
    shadows.delete("pump-1")
    with pytest.raises(NotFoundError):
        shadows.get("pump-1")


def test_version_conflict_is_conflict_error(aws):
    iot, shadows = aws
    iot.create_thing(thingName="pump-2")
    shadows.update("pump-2", desired={"a": 1})
    with pytest.raises(ConflictError, match="pump-2"):
        shadows.update("pump-2", desired={"a": 2}, version=7)


def test_bad_request_is_rejected_with_its_status(aws):
    iot, shadows = aws
    iot.create_thing(thingName="pump-3")
    with pytest.raises(ShadowRejectedError) as rejected:
        shadows._call("update_thing_shadow", thingName="pump-3", payload=b'{"state": 1}')
    assert rejected.value.code == 400


@pytest.mark.parametrize("version", [-1, True, 1.5, "1"])
def test_an_invalid_version_is_refused_before_calling_aws(aws, version):
    """AWS answers 400 Invalid version; the adapter says so without a call, as the local
    clients do, and the shadow is left as it was."""
    iot, shadows = aws
    iot.create_thing(thingName="pump-5")
    with pytest.raises(ShadowRejectedError, match="Invalid version") as rejected:
        shadows.update("pump-5", desired={"a": 1}, version=version)
    assert rejected.value.code == 400
    with pytest.raises(NotFoundError):
        shadows.get("pump-5")


def test_named_shadows_are_listed_without_the_classic_one(aws):
    iot, shadows = aws
    iot.create_thing(thingName="pump-4")
    shadows.update("pump-4", desired={"a": 1})
    for name in ("config", "alarms"):
        shadows.update("pump-4", desired={"n": name}, name=name)
    assert sorted(shadows.list_named("pump-4")) == ["alarms", "config"]
    assert shadows.get("pump-4", name="config")["state"]["desired"] == {"n": "config"}


def test_cli_aws_path_sets_and_shows_the_shadow(aws, capsys):
    import json

    from cloud.cli.main import main

    iot, _ = aws
    iot.create_thing(thingName="pump-5")
    assert main(["shadow", "set", "pump-5", "mode=safe", "--aws", "--region", REGION]) == 0
    capsys.readouterr()
    assert main(["shadow", "get", "pump-5", "--aws", "--region", REGION, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"]["delta"] == {"mode": "safe"}
