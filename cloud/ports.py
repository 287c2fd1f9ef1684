"""The five ports the engines talk through; adapters in ``cloud.adapters`` implement them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


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


class StateStore(Protocol):
    """Small JSON documents by (namespace, key): detector instances, schedulers, executions."""

    def get(self, namespace: str, key: str) -> dict[str, Any] | None: ...

    def put(self, namespace: str, key: str, value: Mapping[str, Any]) -> None: ...

    def delete(self, namespace: str, key: str) -> None: ...

    def items(self, namespace: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(key, value)`` pairs of *namespace* in key order."""
        ...


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
