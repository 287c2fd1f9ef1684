"""The five ports the engines talk through; adapters in ``cloud.adapters`` implement them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol, runtime_checkable


class ObjectStore(Protocol):
    """Batches and results: a directory locally, a bucket on AWS."""

    def put(self, key: str, body: bytes) -> None:
        """Store *body* under *key*, replacing any existing object."""
        ...

    def get(self, key: str) -> bytes:
        """Return the object; raise NotFoundError if *key* is absent."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield keys starting with *prefix* (a string prefix, as S3), in lexical order."""
        ...

    def delete(self, key: str) -> None:
        """Remove *key*; absent keys are not an error."""
        ...


@runtime_checkable
class AppendableObjectStore(ObjectStore, Protocol):
    """An object store that can add to an object in place (a local directory; not S3)."""

    def append(self, key: str, body: bytes) -> None:
        """Add *body* to the end of *key* (created if absent), durably when it returns."""
        ...


@runtime_checkable
class BatchPutObjectStore(ObjectStore, Protocol):
    """An object store that stores several objects at once, each whole or not at all, and
    syncs them together (a local directory: one fsync per file costs milliseconds)."""

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> list[Exception | None]:
        """:meth:`ObjectStore.put` each item; per item, None or the error that kept it out
        (the others are stored all the same)."""
        ...


@runtime_checkable
class FileObjectStore(ObjectStore, Protocol):
    """An object store that hands an object over as an open file, so that a reader can
    take a large object (an L4E input CSV may be 5 GB) a chunk at a time instead of
    holding its bytes: the file itself locally, a temporary copy streamed from S3."""

    def open_file(self, key: str) -> AbstractContextManager[BinaryIO]:
        """The object as a seekable binary file for the context's duration (a later put
        does not change what it reads); raise NotFoundError if *key* is absent."""
        ...


@dataclass(frozen=True, slots=True)
class Versioned:
    """A stored document with the version its last write gave it (1 for the first)."""

    value: dict[str, Any]
    version: int


class StateStore(Protocol):
    """Small JSON documents by (namespace, key): detector instances, schedulers, executions.

    Every write raises the document's version by one. Writers that may race (two Lambdas
    on one detector instance) read with :meth:`get_versioned` and write with
    :meth:`put_if_version`, which stores only if nobody wrote in between and otherwise
    raises ``VersionConflictError``; plain :meth:`put` is last-writer-wins.
    :meth:`delete_if_version` is the same condition for a delete.
    """

    def get(self, namespace: str, key: str) -> dict[str, Any] | None: ...

    def put(self, namespace: str, key: str, value: Mapping[str, Any]) -> None: ...

    def delete(self, namespace: str, key: str) -> None: ...

    def items(self, namespace: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(key, value)`` pairs of *namespace* in key order."""
        ...

    def get_versioned(self, namespace: str, key: str) -> Versioned | None:
        """The document and its version, or None when absent."""
        ...

    def put_if_version(
        self, namespace: str, key: str, value: Mapping[str, Any], version: int | None
    ) -> int:
        """Store *value* only if the stored version is *version* (None: only if absent);
        return the new version, or raise ``VersionConflictError`` and store nothing."""
        ...

    def delete_if_version(self, namespace: str, key: str, version: int) -> None:
        """Delete the document only if its stored version is *version*; otherwise (written
        since, or absent) raise ``VersionConflictError`` and delete nothing."""
        ...

    def items_versioned(self, namespace: str) -> Iterator[tuple[str, Versioned]]:
        """Like :meth:`items`, with each document's version."""
        ...


class BatchingStateStore(StateStore, Protocol):
    """A store that can group writes into one commit (SQLite: one transaction)."""

    def batch(self) -> AbstractContextManager[None]:
        """Writes inside the block are committed together at its end, also when it raises:
        each write stands as it would alone, only the commits are fewer. Nestable."""
        ...


def batched(store: StateStore) -> AbstractContextManager[None]:
    """``store.batch()`` where the store has it, else nothing: an engine groups the writes
    of one step (an alarm's state change, its history entry, its budget spend), which on
    SQLite saves a commit per write; DynamoDB writes each as a request anyway. Keep sends
    (SNS, MQTT) out of a batch: on SQLite it holds the database's write lock."""
    batch = getattr(store, "batch", None)
    return batch() if callable(batch) else nullcontext()


def atomically(store: StateStore) -> AbstractContextManager[None]:
    """``store.transaction()`` where the store has one (SQLite: the block's writes commit
    together or not at all), else nothing (DynamoDB writes each item on its own)."""
    transaction = getattr(store, "transaction", None)
    return transaction() if callable(transaction) else nullcontext()


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert message on one channel, already formatted within that channel's limits."""

    channel: str
    """``email`` or ``sms``."""
    target: str
    """SNS topic ARN, address or phone number; adapters decide how to deliver."""
    subject: str
    body: str
    attributes: Mapping[str, str] = field(default_factory=dict)


class Notifier(Protocol):
    """Email and SMS alerts: SNS on AWS, console plus outbox file locally."""

    def send(self, notification: Notification) -> None: ...


class Publisher(Protocol):
    """MQTT publish: the local broker or AWS IoT Core (iot-data)."""

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None: ...
