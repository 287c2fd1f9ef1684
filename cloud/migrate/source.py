"""Where a migration reads from: a bucket or a folder, only ever read.

``s3://BUCKET/PREFIX`` or a local folder laid out the same way. The store a migration gets
is wrapped in :class:`ReadOnlyStore`, so no code path of an import can write to, or delete
from, the user's source, whatever the credentials would allow.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from cloud.ports import FileObjectStore, ObjectStore
from edge.errors import ConfigError, StorageError


@dataclass(frozen=True, slots=True)
class Location:
    """``s3://bucket/prefix`` (``bucket`` set) or a local folder (``bucket`` None)."""

    text: str
    bucket: str | None
    prefix: str
    """Key prefix inside the bucket or folder: empty or ending in ``/``."""

    @classmethod
    def parse(cls, text: str, option: str) -> Location:
        if text.startswith("s3://"):
            bucket, _, prefix = text[len("s3://") :].partition("/")
            if not bucket:
                raise ConfigError(f"{option} {text}: expected s3://BUCKET[/PREFIX]")
            if prefix and not prefix.endswith("/"):
                prefix += "/"
            return cls(text, bucket, prefix)
        if not text:
            raise ConfigError(f"{option}: expected s3://BUCKET[/PREFIX] or a folder")
        return cls(text, None, "")

    def key_name(self, key: str) -> str:
        """Where *key* is, for messages: ``s3://bucket/key`` or ``folder/key``."""
        if self.bucket is not None:
            return f"s3://{self.bucket}/{key}"
        return f"{self.text.rstrip('/')}/{key}"


class ReadOnlyStore:
    """An ObjectStore that refuses every write: the source of a migration stays as it was."""

    def __init__(self, inner: ObjectStore, where: str) -> None:
        self._inner = inner
        self._where = where

    def get(self, key: str) -> bytes:
        return self._inner.get(key)

    @contextmanager
    def open_file(self, key: str) -> Iterator[BinaryIO]:
        """The inner store's file (a local file, or S3's object streamed to a temporary
        file), so an import reads a large object a chunk at a time; a store that cannot
        hand over a file gives its bytes as one."""
        if isinstance(self._inner, FileObjectStore):
            with self._inner.open_file(key) as handle:
                yield handle
        else:
            yield io.BytesIO(self._inner.get(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        return self._inner.list(prefix)

    def put(self, key: str, body: bytes) -> None:
        raise StorageError(f"{self._where}: {key}: the migration source is read-only")

    def delete(self, key: str) -> None:
        raise StorageError(f"{self._where}: {key}: the migration source is read-only")
