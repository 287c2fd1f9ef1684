"""A state store as another process saw it: the listing of one namespace is a snapshot
taken before that process wrote, everything else is the live store. Two processes that
listed at the same moment and then act one after the other are the live store and this."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cloud.ports import StateStore, Versioned


class Stale:
    def __init__(
        self, inner: StateStore, namespace: str, snapshot: list[tuple[str, Versioned]]
    ) -> None:
        self._inner = inner
        self._namespace = namespace
        self._snapshot = snapshot

    def items_versioned(self, namespace: str) -> Iterator[tuple[str, Versioned]]:
        if namespace == self._namespace:
            return iter(self._snapshot)
        return self._inner.items_versioned(namespace)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
