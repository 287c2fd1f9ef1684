"""The ObjectStore port on S3, or any S3-compatible endpoint (MinIO, moto, Ceph)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from edge.errors import NotFoundError, StorageError

if TYPE_CHECKING:
    S3Client = Any

_MISSING = {"NoSuchKey", "404", "NotFound"}


IN_MEMORY_BYTES = 16 << 20
"""An object read through ``open_file`` stays in memory up to this size (the scheduler
reads objects up to the same size whole)."""


class S3ObjectStore:
    """Keys map 1:1 to S3 keys in *bucket*; errors become NotFoundError / StorageError."""

    def __init__(
        self, bucket: str, client: S3Client | None = None, endpoint_url: str | None = None
    ) -> None:
        self.bucket = bucket
        self._s3 = client or boto3.client("s3", endpoint_url=endpoint_url)

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, body: bytes) -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"{self._where(key)}: put failed: {exc}") from exc

    def get(self, key: str) -> bytes:
        with self._reading(key):
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
            return bytes(response["Body"].read())

    @contextmanager
    def open_file(self, key: str) -> Iterator[BinaryIO]:
        """The object streamed into a temporary file (removed when the context ends), so
        that a large object is never held in memory whole. Up to *IN_MEMORY_BYTES* it stays
        in memory: the usual window file is a few kilobytes and read whole at once anyway,
        and writing it to disk only to read it back doubled each window's I/O."""
        with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES) as handle:
            with self._reading(key):
                self._s3.download_fileobj(self.bucket, key, handle)
            handle.seek(0)
            yield handle

    @contextmanager
    def _reading(self, key: str) -> Iterator[None]:
        """S3's errors on reading *key* as NotFoundError (no such key) or StorageError."""
        try:
            yield
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise NotFoundError(f"{self._where(key)}: no such object") from exc
            raise StorageError(f"{self._where(key)}: get failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{self._where(key)}: get failed: {exc}") from exc

    def list(self, prefix: str = "") -> Iterator[str]:
        """All keys under *prefix* in lexical order (S3 lists in UTF-8 binary order)."""
        try:
            paginator = self._s3.get_paginator("list_objects_v2")
            keys = [
                item["Key"]
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
                for item in page.get("Contents", ())
            ]
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"{self._where(prefix)}*: list failed: {exc}") from exc
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"{self._where(key)}: delete failed: {exc}") from exc
