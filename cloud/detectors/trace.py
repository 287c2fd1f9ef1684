"""What a detector engine did, one record per step, for replays, tests and operators.

An engine given an :class:`EngineObserver` reports every step it takes: a message arriving,
an instance created, each action with its evaluated target and payload (``${}`` already
substituted), each timer set, reset, cleared or fired, each state transition, and each
evaluation error with the expression that caused it. The engine behaves the same with or
without an observer; the observer only watches, so ``plantwatch detectors run`` can show a
model's behaviour without performing its actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

KINDS: Final = ("input", "skipped", "created", "action", "timer", "transition", "error")
"""Record kinds, in the order a message usually produces them."""

TIMER_OPS: Final = ("set", "reset", "cleared", "fired")


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One step of an engine: ``kind`` is one of :data:`KINDS`."""

    kind: str
    time: float
    """Engine clock, epoch seconds."""
    key: str | None
    """Key value of the instance; None for a model without ``key`` or a skipped message."""
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"type": kind, "time": ..., "key": ..., **detail}``."""
        return {"type": self.kind, "time": self.time, "key": self.key, **self.detail}


class EngineObserver(Protocol):
    """Receives every :class:`TraceRecord` of an engine, synchronously and in order."""

    def observe(self, record: TraceRecord) -> None: ...


class TraceRecorder:
    """An observer that keeps every record, in order."""

    def __init__(self) -> None:
        self.records: list[TraceRecord] = []

    def observe(self, record: TraceRecord) -> None:
        self.records.append(record)

    def of_kind(self, *kinds: str) -> list[TraceRecord]:
        return [r for r in self.records if r.kind in kinds]
