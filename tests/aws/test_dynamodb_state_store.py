"""DynamoDbStateStore under moto: what DynamoDB refuses becomes the project's errors, with
the namespace and key named, and the 400 KB item limit is stated before a write is sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_support import REGION, create_state_table
from botocore.exceptions import ClientError
from moto import mock_aws

from cloud.adapters.aws import DynamoDbStateStore
from cloud.adapters.aws.dynamodb_state_store import MAX_ITEM_BYTES
from edge.errors import StorageError, VersionConflictError


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_state_table(client, "state")
        yield client


class Refusing:
    """A DynamoDB client whose update_item answers with one error code, as the service
    does once botocore's own retries are spent."""

    def __init__(self, client: Any, code: str) -> None:
        self._client = client
        self._code = code

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_item(self, **kwargs: Any) -> Any:
        error = {"Error": {"Code": self._code, "Message": f"{self._code} (test)"}}
        raise ClientError(error, "UpdateItem")  # type: ignore[arg-type]


def test_a_lost_condition_is_a_version_conflict(ddb: Any) -> None:
    store = DynamoDbStateStore("state", client=ddb)
    version = store.put_if_version("detectors/m", "pump-1", {"state": "Normal"}, None)
    store.put_if_version("detectors/m", "pump-1", {"state": "Alarm"}, version)
    with pytest.raises(VersionConflictError, match="detectors/m/pump-1: expected version 1"):
        store.put_if_version("detectors/m", "pump-1", {"state": "Normal"}, version)
    with pytest.raises(VersionConflictError, match="expected absent"):
        store.put_if_version("detectors/m", "pump-1", {"state": "Normal"}, None)


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"]
)
def test_throttling_is_a_storage_error_naming_the_item(ddb: Any, code: str) -> None:
    store = DynamoDbStateStore("state", client=Refusing(ddb, code))
    with pytest.raises(StorageError, match=rf"dynamodb://state/detectors/m/pump-1: .*{code}"):
        store.put_if_version("detectors/m", "pump-1", {"state": "Normal"}, 3)
    with pytest.raises(StorageError, match=code):
        store.put("alerts/limit", "pump-1", {})


def test_a_document_past_400_kb_is_refused_naming_its_size(ddb: Any) -> None:
    # GIVEN a store, and documents just under and just over what one item holds
    store = DynamoDbStateStore("state", client=ddb)
    fits = {"pad": "x" * 390_000}
    too_big = {"pad": "x" * MAX_ITEM_BYTES}
    # WHEN both are written
    store.put("detectors/m", "pump-1", fits)
    # THEN the one that fits is stored, the other is refused before it is sent, with its
    # size and the limit named, and the stored one is left as it was
    with pytest.raises(StorageError, match=r"detectors/m/pump-1: .* bytes; a DynamoDB item holds"):
        store.put_if_version("detectors/m", "pump-1", too_big, 1)
    assert store.get("detectors/m", "pump-1") == fits
    assert MAX_ITEM_BYTES == 400 * 1024
