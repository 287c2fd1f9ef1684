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

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from cloud.detectors.alarms.engine import (
    NOTE_MAX,
    REGISTRY_NAMESPACE,
    AlarmEngine,
    AlarmStateError,
)
from cloud.detectors.alarms.model import load_alarm_model
from cloud.detectors.api_types import INTEGER_MAX
from cloud.detectors.instances import DetectorStateError
from cloud.detectors.model import KEY_VALUE_RE, NAME_RE, load_input
from cloud.ports import StateStore
from edge.commands import shown
from edge.errors import DetectorModelError, NotFoundError, PlantwatchError, UserError
from edge.json_values import not_unicode

log = logging.getLogger(__name__)

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

    def __post_init__(self) -> None:
        # what could not be stored is refused here, before it reaches the request inbox
        # (a CLI argument of non-UTF-8 bytes reads as lone surrogates)
        for name in ("note", "who"):
            problem = not_unicode(getattr(self, name))
            if problem:
                raise UserError(f"{name}: {problem}")


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


# ---------------------------------------------------------------- the data-plane requests

BATCH_VERBS: Final[Mapping[str, str]] = {
    "acknowledge": "ACKNOWLEDGE",
    "snooze": "SNOOZE",
    "reset": "RESET",
    "enable": "ENABLE",
    "disable": "DISABLE",
}
"""``POST /alarms/<verb>``: BatchAcknowledgeAlarm, BatchSnoozeAlarm, BatchResetAlarm ..."""
MAX_REQUESTS: Final = 10
REQUEST_ID_RE: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SNOOZE_DURATION_MAX: Final = INTEGER_MAX
"""``snoozeDuration`` is an Integer in the API reference (32-bit signed): about 68 years."""


def batch_alarm_action(
    engines: Mapping[str, AlarmEngine], verb: str, body: Mapping[str, Any]
) -> dict[str, list[dict[str, str]]]:
    """BatchAcknowledgeAlarm & co. (§7): ``{"<verb>ActionRequests": [...]}`` in, HTTP 202's
    ``{"errorEntries": [...]}`` out, entries applied in array order.

    A request wrong as a whole (not 1-10 entries, a bad or repeated ``requestId``, ``note`` over 256
    characters, a snooze without an integer ``snoozeDuration``) raises DetectorModelError
    naming the field, as AWS rejects it with InvalidRequestException. An unknown model or key
    is a ``ResourceNotFoundException`` entry; a keyValue the model cannot take (one given to a
    model without key, none to a model with one) an ``InvalidRequestException`` entry; an
    action that does not fit the alarm's state is logged and ignored (§7 Decision).
    """
    action = BATCH_VERBS.get(verb)
    if action is None:
        raise UserError(f"unknown alarm action {verb!r} (expected: {', '.join(BATCH_VERBS)})")
    field = f"{verb}ActionRequests"
    items = body.get(field) if isinstance(body, Mapping) else None
    requests = batch_requests(items, f"Batch{verb.capitalize()}Alarm: $.{field}", action)
    errors: list[dict[str, str]] = []
    for request in requests:
        engine = engines.get(request.alarm_model)
        try:
            if engine is None:
                raise NotFoundError(f"alarm model {request.alarm_model!r} does not exist")
            apply(engine, request)
        except NotFoundError as exc:
            errors.append(_error(request.request_id, "ResourceNotFoundException", str(exc)))
        except AlarmStateError as exc:
            log.info("%s: ignored: %s", request.request_id, exc)
        except UserError as exc:
            errors.append(_error(request.request_id, "InvalidRequestException", str(exc)))
        except Exception as exc:  # reported per entry, as AWS does
            log.exception("%s: %s failed", request.request_id, verb)
            errors.append(_error(request.request_id, "InternalFailureException", str(exc)))
    return {"errorEntries": errors}


def batch_requests(items: Any, where: str, action: str) -> list[OperatorRequest]:
    """The entries of a ``<verb>ActionRequests`` array (*items*, at *where*) as requests;
    DetectorModelError naming the field for what AWS rejects with InvalidRequestException."""
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_REQUESTS:
        count = f"{len(items)} requests" if isinstance(items, list) else "missing"
        raise DetectorModelError(f"{where}: expected 1-{MAX_REQUESTS} requests ({count})")
    requests = [batch_entry(item, f"{where}[{i}]", action) for i, item in enumerate(items)]
    first: dict[str, int] = {}
    for i, request in enumerate(requests):
        j = first.setdefault(request.request_id, i)
        if j != i:  # "Each ID must be unique within each batch" (the API reference)
            raise DetectorModelError(
                f"{where}[{i}].requestId: {request.request_id!r} is also [{j}]'s;"
                " each requestId must be unique within the batch"
            )
    return requests


def batch_entry(
    item: Any, where: str, action: str, *, refuse_unknown: bool = False
) -> OperatorRequest:
    """One ``<verb>AlarmActionRequest``. Members its shape does not define are passed over,
    as the service reads a REST-JSON structure and as BatchUpdateDetector does (only an
    SDK's client-side validation refuses them); *refuse_unknown* is for plantwatch's own
    one-entry lines in ``alarms run``, where such a member is a typo to point out."""
    if not isinstance(item, Mapping):
        raise DetectorModelError(f"{where}: expected an object")
    if refuse_unknown:
        allowed = {"requestId", "alarmModelName", "keyValue", "note"}
        if action == "SNOOZE":
            allowed.add("snoozeDuration")
        for name in item:
            if name not in allowed:
                raise DetectorModelError(
                    f"{where}.{name}: unknown field (expected one of: {', '.join(sorted(allowed))})"
                )
    request_id = item.get("requestId")
    if not isinstance(request_id, str) or not REQUEST_ID_RE.fullmatch(request_id):
        raise DetectorModelError(f"{where}.requestId: expected 1-64 of [a-zA-Z0-9_-]")
    model = item.get("alarmModelName")
    if not isinstance(model, str) or len(model) > 128 or not NAME_RE.fullmatch(model):
        raise DetectorModelError(f"{where}.alarmModelName: expected 1-128 of [a-zA-Z0-9_-]")
    key = item.get("keyValue")
    if key is not None and (
        not isinstance(key, str) or len(key) > 128 or not KEY_VALUE_RE.fullmatch(key)
    ):
        raise DetectorModelError(f"{where}.keyValue: expected 1-128 of [a-zA-Z0-9-_:]")
    note = item.get("note")
    if note is None:  # null is a note left out, as for keyValue
        note = ""
    if not isinstance(note, str) or len(note) > NOTE_MAX:
        raise DetectorModelError(
            f"{where}.note: expected a string of at most {NOTE_MAX} characters"
        )
    problem = not_unicode(note)
    if problem:
        raise DetectorModelError(f"{where}.note: {problem}")
    snooze_s = None
    if action == "SNOOZE":
        seconds = item.get("snoozeDuration")
        if (
            not isinstance(seconds, int)
            or isinstance(seconds, bool)
            or not 1 <= seconds <= SNOOZE_DURATION_MAX
        ):
            raise DetectorModelError(
                f"{where}.snoozeDuration: expected a whole number of seconds,"
                f" 1 to {SNOOZE_DURATION_MAX}"
            )
        snooze_s = float(seconds)
    return OperatorRequest(action, model, key, note, "", snooze_s, request_id)


def _error(request_id: str, code: str, message: str) -> dict[str, str]:
    return {"requestId": request_id, "errorCode": code, "errorMessage": message}


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


def registered_definition(name: str, doc: Any) -> tuple[Mapping[str, Any], list[Any]]:
    """The CreateAlarmModel body and CreateInput bodies of a registry document, or a
    DetectorStateError naming ``alarm-models/<name>`` and the field of the wrong shape."""
    where = f"{REGISTRY_NAMESPACE}/{name}"
    if not isinstance(doc, Mapping):
        raise DetectorStateError(f"{where}: document: expected a JSON object, got {shown(doc)}")
    definition, raw_inputs = doc.get("definition"), doc.get("inputs", [])
    # an object, never a string: load_alarm_model would read a string as a file's path
    if not isinstance(definition, Mapping):
        raise DetectorStateError(
            f"{where}: definition: expected a CreateAlarmModel object, got {shown(definition)}"
        )
    if not isinstance(raw_inputs, list) or not all(isinstance(i, Mapping) for i in raw_inputs):
        raise DetectorStateError(
            f"{where}: inputs: expected a list of CreateInput objects, got {shown(raw_inputs)}"
        )
    return definition, raw_inputs


def engine_from_store(store: StateStore, name: str, **engine_args: Any) -> AlarmEngine:
    """An engine over *store* for an alarm model a runtime has registered there."""
    doc = store.get(REGISTRY_NAMESPACE, name)
    if doc is None:
        known = ", ".join(k for k, _ in store.items(REGISTRY_NAMESPACE)) or "none"
        raise UserError(f"unknown alarm model {name!r} (known: {known})")
    definition, raw_inputs = registered_definition(name, doc)
    model = load_alarm_model(definition, source=name)
    inputs = [load_input(raw, source=f"{name} input") for raw in raw_inputs]
    return AlarmEngine(model, inputs, store, **engine_args)


__all__ = [
    "AlarmStateError",
    "OperatorRequest",
    "apply",
    "batch_alarm_action",
    "beat",
    "drain",
    "engine_from_store",
    "stack_alive",
    "stopped",
    "submit",
    "wait",
]
