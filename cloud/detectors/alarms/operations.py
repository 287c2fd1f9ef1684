"""Operator actions on alarms: acknowledge, snooze, reset, enable, disable.

The engine entry points (:meth:`AlarmEngine.acknowledge` ...) are what AWS handlers and the
dashboard call. :func:`apply` runs an :class:`OperatorRequest` on an engine and is the one
place that maps request verbs to those entry points.

Locally one process owns an alarm's state: the running ``plantwatch up`` (or demo). A CLI
beside it must not write the same documents, so it *submits* the request to the StateStore
(``alarm-requests``), the stack applies it on its next step (:func:`drain`) and writes the
result back, and the CLI waits for that result (:func:`wait`). Whether a stack is running is
told by its heartbeat (:func:`beat`, :func:`stack_alive`), a wall-clock time it writes every
second; with no live stack the CLI builds the engine from the store and applies the request
itself (:func:`engine_from_store`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from cloud.detectors.alarms.engine import REGISTRY_NAMESPACE, AlarmEngine, AlarmStateError
from cloud.detectors.alarms.model import load_alarm_model
from cloud.detectors.model import load_input
from cloud.ports import StateStore
from edge.errors import NotFoundError, PlantwatchError, UserError

REQUESTS: Final = "alarm-requests"
RUNTIME: Final = "runtime"
HEARTBEAT_KEY: Final = "alarm-engines"
ALIVE_S: Final = 5.0
"""A heartbeat older than this (wall seconds) means no stack is applying requests."""
VERBS: Final[Mapping[str, str]] = {
    "ack": "ACKNOWLEDGE",
    "acknowledge": "ACKNOWLEDGE",
    "snooze": "SNOOZE",
    "reset": "RESET",
    "enable": "ENABLE",
    "disable": "DISABLE",
}


@dataclass(frozen=True, slots=True)
class OperatorRequest:
    """One action on one alarm instance, as BatchAcknowledgeAlarm & co. take it, plus who."""

    action: str
    """``ACKNOWLEDGE``, ``SNOOZE``, ``RESET``, ``ENABLE`` or ``DISABLE``."""
    alarm_model: str
    key: str | None
    note: str = ""
    who: str = ""
    snooze_s: float | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def apply(engine: AlarmEngine, request: OperatorRequest) -> dict[str, Any]:
    """Run *request* on *engine*; return DescribeAlarm after it.

    Raises :class:`AlarmStateError` (a UserError naming the state) when the action does not
    fit, NotFoundError for an unknown key.
    """
    common = {"note": request.note, "who": request.who}
    if request.action == "ACKNOWLEDGE":
        return engine.acknowledge(request.key, **common)
    if request.action == "SNOOZE":
        if request.snooze_s is None:
            raise UserError("snooze: a duration is required (--for 30m)")
        return engine.snooze(request.key, request.snooze_s, **common)
    if request.action == "RESET":
        return engine.reset(request.key, **common)
    if request.action == "ENABLE":
        return engine.enable(request.key, **common)
    if request.action == "DISABLE":
        return engine.disable(request.key, **common)
    raise UserError(f"unknown alarm action {request.action!r} (expected: {', '.join(VERBS)})")


# ---------------------------------------------------------------- the stack's inbox


def submit(store: StateStore, request: OperatorRequest, wall_now: float) -> str:
    """Queue *request* for the running stack; return the document key to wait on."""
    key = f"{wall_now:017.6f}-{request.request_id}"
    store.put(REQUESTS, key, {"status": "pending", "request": asdict(request)})
    return key


def drain(store: StateStore, engines: Mapping[str, AlarmEngine]) -> int:
    """Apply every pending request, oldest first, and write each one's result back."""
    applied = 0
    for key, doc in store.items(REQUESTS):
        if doc.get("status") != "pending":
            continue
        request = OperatorRequest(**doc["request"])
        engine = engines.get(request.alarm_model)
        result: dict[str, Any]
        try:
            if engine is None:
                raise UserError(
                    f"unknown alarm model {request.alarm_model!r}"
                    f" (running: {', '.join(sorted(engines)) or 'none'})"
                )
            result = {"status": "done", "alarm": apply(engine, request)}
        except (UserError, NotFoundError) as exc:
            result = {"status": "rejected", "message": str(exc)}
        except PlantwatchError as exc:
            result = {"status": "failed", "message": str(exc)}
        store.put(REQUESTS, key, {**doc, **result})
        applied += 1
    return applied


def wait(
    store: StateStore,
    key: str,
    *,
    timeout_s: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any] | None:
    """The result of a submitted request once the stack has written it (and removed it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        doc = store.get(REQUESTS, key)
        if doc is not None and doc.get("status") != "pending":
            store.delete(REQUESTS, key)
            return doc
        sleep(0.05)
    return None


def beat(store: StateStore, wall_now: float, models: list[str]) -> None:
    """The running stack says it is alive and which alarm models it applies requests for."""
    store.put(RUNTIME, HEARTBEAT_KEY, {"wall_time": wall_now, "alarm_models": models})


def stack_alive(store: StateStore, wall_now: float) -> bool:
    doc = store.get(RUNTIME, HEARTBEAT_KEY)
    return doc is not None and wall_now - float(doc.get("wall_time", 0)) < ALIVE_S


def stopped(store: StateStore) -> None:
    """A stack that stops cleanly says so at once, instead of letting its heartbeat age."""
    store.delete(RUNTIME, HEARTBEAT_KEY)


def engine_from_store(store: StateStore, name: str, **engine_args: Any) -> AlarmEngine:
    """An engine over *store* for an alarm model a runtime has registered there."""
    doc = store.get(REGISTRY_NAMESPACE, name)
    if doc is None:
        known = ", ".join(k for k, _ in store.items(REGISTRY_NAMESPACE)) or "none"
        raise UserError(f"unknown alarm model {name!r} (known: {known})")
    model = load_alarm_model(doc["definition"], source=name)
    inputs = [load_input(raw, source=f"{name} input") for raw in doc.get("inputs", [])]
    return AlarmEngine(model, inputs, store, **engine_args)


__all__ = [
    "AlarmStateError",
    "OperatorRequest",
    "apply",
    "beat",
    "drain",
    "engine_from_store",
    "stack_alive",
    "stopped",
    "submit",
    "wait",
]
