"""In-memory adapters for tests and examples; they ship, like httpx's MockTransport."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from cloud.adapters.local.sqlite_state_store import encode_document
from cloud.ports import Notification, Versioned
from edge.errors import NotFoundError, VersionConflictError


class InMemoryObjectStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, body: bytes) -> None:
        self.objects[key] = bytes(body)

    def get(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise NotFoundError(f"{key}: no such object") from None

    def list(self, prefix: str = "") -> Iterator[str]:
        return iter(sorted(k for k in self.objects if k.startswith(prefix)))

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)


class InMemoryStateStore:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, str]] = {}
        """Each document as the stores write it (JSON text)."""
        self.versions: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def get(self, namespace: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            text = self.data.get(namespace, {}).get(key)
            return None if text is None else json.loads(text)

    def put(self, namespace: str, key: str, value: Mapping[str, Any]) -> None:
        with self._lock:
            self._store(namespace, key, value)

    def delete(self, namespace: str, key: str) -> None:
        with self._lock:
            self.data.get(namespace, {}).pop(key, None)
            self.versions.pop((namespace, key), None)

    def items(self, namespace: str) -> Iterator[tuple[str, dict[str, Any]]]:
        with self._lock:
            ns = self.data.get(namespace, {})
            return iter([(k, json.loads(ns[k])) for k in sorted(ns)])

    def get_versioned(self, namespace: str, key: str) -> Versioned | None:
        with self._lock:
            text = self.data.get(namespace, {}).get(key)
            if text is None:
                return None
            return Versioned(json.loads(text), self.versions[(namespace, key)])

    def put_if_version(
        self, namespace: str, key: str, value: Mapping[str, Any], version: int | None
    ) -> int:
        with self._lock:
            if self.versions.get((namespace, key)) != version:
                raise VersionConflictError(namespace, key, version)
            return self._store(namespace, key, value)

    def delete_if_version(self, namespace: str, key: str, version: int) -> None:
        with self._lock:
            if self.versions.get((namespace, key)) != version:
                raise VersionConflictError(namespace, key, version)
            self.data[namespace].pop(key)
            del self.versions[(namespace, key)]

    def items_versioned(self, namespace: str) -> Iterator[tuple[str, Versioned]]:
        with self._lock:
            ns = self.data.get(namespace, {})
            return iter(
                [
                    (k, Versioned(json.loads(ns[k]), self.versions[(namespace, k)]))
                    for k in sorted(ns)
                ]
            )

    def _store(self, namespace: str, key: str, value: Mapping[str, Any]) -> int:
        self.data.setdefault(namespace, {})[key] = encode_document(value)
        version = self.versions.get((namespace, key), 0) + 1
        self.versions[(namespace, key)] = version
        return version


class InMemoryNotifier:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)


class InMemoryPublisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, int]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self.published.append((topic, payload, qos))
