"""One ObjectStore contract, run against every adapter (S3 under moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cloud.adapters.aws import S3ObjectStore
from cloud.adapters.local import FsObjectStore, InMemoryObjectStore
from cloud.ports import FileObjectStore, ObjectStore
from edge.errors import NotFoundError


@pytest.fixture(params=["fs", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "fs":
        yield FsObjectStore(tmp_path / "bucket")
    elif request.param == "memory":
        yield InMemoryObjectStore()
    else:
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket="contract")
            yield S3ObjectStore("contract", client=client)


def test_put_then_get_returns_the_same_bytes(store: ObjectStore) -> None:
    body = bytes(range(256)) * 3
    store.put("input/pump_20220513121500.csv", body)
    assert store.get("input/pump_20220513121500.csv") == body


def test_put_replaces(store: ObjectStore) -> None:
    store.put("a/b.csv", b"1")
    store.put("a/b.csv", b"22")
    assert store.get("a/b.csv") == b"22"


def test_get_missing_raises_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFoundError):
        store.get("input/none.csv")


def test_list_is_a_string_prefix_in_lexical_order(store: ObjectStore) -> None:
    for key in ("input/pump_2.csv", "input/pump_1.csv", "input/a/deep.csv", "inputx/o.csv", "z"):
        store.put(key, b"x")
    assert list(store.list("input/")) == [
        "input/a/deep.csv",
        "input/pump_1.csv",
        "input/pump_2.csv",
    ]
    assert list(store.list("input/pump")) == ["input/pump_1.csv", "input/pump_2.csv"]
    assert list(store.list("input")) == [
        "input/a/deep.csv",
        "input/pump_1.csv",
        "input/pump_2.csv",
        "inputx/o.csv",
    ]
    assert list(store.list("nothing/")) == []
    assert "z" in list(store.list())


def test_delete_is_idempotent(store: ObjectStore) -> None:
    store.put("k/1", b"x")
    store.delete("k/1")
    store.delete("k/1")
    with pytest.raises(NotFoundError):
        store.get("k/1")
    assert list(store.list("k/")) == []


def test_empty_body(store: ObjectStore) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b""


@pytest.fixture(params=["fs", "s3"])
def file_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FileObjectStore]:
    if request.param == "fs":
        yield FsObjectStore(tmp_path / "bucket")
    else:
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket="contract")
            yield S3ObjectStore("contract", client=client)


def test_open_file_reads_the_object_and_a_later_put_does_not_change_it(
    file_store: FileObjectStore,
) -> None:
    # The adapters that can hand an object over as a file say so (readers stream from it)
    assert isinstance(file_store, FileObjectStore)
    assert not isinstance(InMemoryObjectStore(), FileObjectStore)
    body = bytes(range(256)) * 4099  # over a megabyte: more than one read block
    file_store.put("input/pump_20220513121500.csv", body)
    with file_store.open_file("input/pump_20220513121500.csv") as handle:
        file_store.put("input/pump_20220513121500.csv", b"replaced")
        assert handle.read(5) == body[:5]
        handle.seek(0)
        assert handle.read() == body
    assert handle.closed
    with pytest.raises(NotFoundError), file_store.open_file("input/none.csv"):
        pass
