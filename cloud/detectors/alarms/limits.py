"""A per-asset notification budget, so a flapping signal cannot flood an on-call phone.

At most ``limit`` notifications per asset within any ``window_s``; each one over is not sent
but counted, and the count is shown by ``plantwatch alarms list``. The budget lives in the
StateStore (``alerts/limit``, one document per asset), so it holds across restarts and is
shared by every sender in one runtime: detector alerts and alarm notifications alike. Each
spend is a write conditional on the version read, so two processes spending one asset's
budget at once (two Lambdas) both count: the loser reads the budget again and decides again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from cloud.ports import StateStore
from edge.errors import VersionConflictError

NAMESPACE: Final = "alerts/limit"
MAX_ATTEMPTS: Final = 8
DEFAULT_LIMIT: Final = 10
DEFAULT_WINDOW_S: Final = 3600.0


@dataclass(frozen=True, slots=True)
class LimitState:
    sent_in_window: int
    suppressed: int
    last_suppressed: float | None


class NotificationLimiter:
    """Sliding-window budget per asset over a StateStore."""

    def __init__(
        self, store: StateStore, limit: int = DEFAULT_LIMIT, window_s: float = DEFAULT_WINDOW_S
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a notification limit needs limit >= 1 and a positive window")
        self._store = store
        self.limit = limit
        self.window_s = window_s
        self._docs: dict[str, tuple[dict[str, Any], int | None]] = {}
        """Per asset, the document and version last read or written (re-read after a lost
        race)."""

    def allow(self, asset: str, now: float) -> bool:
        """Spend one notification of *asset*'s budget at *now*; False (and counted) if none left."""
        for _attempt in range(MAX_ATTEMPTS):
            cached = self._docs.get(asset)
            if cached is None:
                stored = self._store.get_versioned(NAMESPACE, asset)
                cached = ({}, None) if stored is None else (stored.value, stored.version)
            doc, version = cached
            sent = [t for t in doc.get("sent", []) if t > now - self.window_s]
            suppressed = int(doc.get("suppressed", 0))
            allowed = len(sent) < self.limit
            record: dict[str, Any] = {
                "sent": [*sent, now] if allowed else sent,
                "suppressed": suppressed if allowed else suppressed + 1,
                "last_suppressed": doc.get("last_suppressed") if allowed else now,
            }
            try:
                written = self._store.put_if_version(NAMESPACE, asset, record, version)
            except VersionConflictError:
                self._docs.pop(asset, None)
                continue
            self._docs[asset] = (record, written)
            return allowed
        raise VersionConflictError(NAMESPACE, asset, None)

    def state(self, asset: str, now: float) -> LimitState:
        doc = self._store.get(NAMESPACE, asset) or {}
        return LimitState(
            sent_in_window=sum(1 for t in doc.get("sent", []) if t > now - self.window_s),
            suppressed=int(doc.get("suppressed", 0)),
            last_suppressed=doc.get("last_suppressed"),
        )


def suppressed_counts(store: StateStore) -> dict[str, int]:
    """Suppressed notifications per asset, for listings."""
    return {key: int(doc.get("suppressed", 0)) for key, doc in store.items(NAMESPACE)}
