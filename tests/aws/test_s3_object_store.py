"""S3ObjectStore under moto: error translation, pagination, custom endpoints."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from cloud.adapters.aws import S3ObjectStore
from edge.errors import NotFoundError, StorageError


@pytest.fixture
def s3() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="plantwatch-input")
        yield client


def test_missing_key_is_not_found_chained_from_client_error(s3: object) -> None:
    from botocore.exceptions import ClientError

    store = S3ObjectStore("plantwatch-input", client=s3)
    with pytest.raises(NotFoundError, match="s3://plantwatch-input/nope") as info:
        store.get("nope")
    assert isinstance(info.value.__cause__, ClientError)


def test_missing_bucket_is_a_storage_error(s3: object) -> None:
    store = S3ObjectStore("no-such-bucket", client=s3)
    with pytest.raises(StorageError, match="no-such-bucket"):
        store.put("k", b"x")
    with pytest.raises(StorageError):
        list(store.list(""))


def test_listing_pages_past_1000_keys(s3: object) -> None:
    store = S3ObjectStore("plantwatch-input", client=s3)
    for i in range(1_005):
        store.put(f"input/k{i:05d}", b"")
    keys = list(store.list("input/"))
    assert len(keys) == 1_005 and keys == sorted(keys)


def test_builds_its_own_client_for_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="bucket-1")
        store = S3ObjectStore("bucket-1")
        store.put("x/y", b"1")
        assert store.get("x/y") == b"1"
    custom = S3ObjectStore("bucket-1", endpoint_url="http://127.0.0.1:9000")
    assert custom._s3.meta.endpoint_url == "http://127.0.0.1:9000"
