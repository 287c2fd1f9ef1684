"""Offline replay of an alarm model, as :mod:`cloud.detectors.replay` is for detector models.

The messages file is read by the detector replay's reader (message lines, whole
BatchPutMessage requests, ``{"advance": "PT5M"}`` clock moves, every line checked before
anything runs), which here also takes operator lines shaped after the data-plane requests
(§7): ``{"acknowledge": {"keyValue", "note"?}}``, ``{"snooze": {..., "snoozeDuration"}}``,
``reset``, ``enable``, ``disable``, each entry as in ``<verb>ActionRequests`` with
``requestId`` and ``alarmModelName`` optional, or a whole ``{"<verb>ActionRequests": [...]}``
request. An action that does not fit the alarm's state is ignored, as AWS ignores it (§7
Decision), and shown. Alarm actions and notifications are recorded with the payload the
running stack would send, and never sent.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cloud.detectors.alarms.engine import AlarmEngine
from cloud.detectors.alarms.limits import NotificationLimiter
from cloud.detectors.alarms.model import AlarmModel
from cloud.detectors.alarms.operations import (
    BATCH_VERBS,
    OperatorRequest,
    apply,
    batch_entry,
    batch_requests,
)
from cloud.detectors.engine import ActionRequest
from cloud.detectors.model import InputDefinition
from cloud.detectors.replay import (
    Operation,
    ReplayStep,
    advance_clock,
    iso_time,
    not_read_fields,
    pass_by,
    read_lines,
)
from cloud.detectors.router import MessageRouter
from cloud.detectors.trace import TraceRecord
from cloud.ports import StateStore
from edge.clock import ManualClock
from edge.errors import DetectorModelError, NotFoundError, UserError

PASSED: Final = ("created", "skipped", "error", "ignored")
"""Trace records shown as they are; transitions and sends become ``change`` events."""


def read_alarm_steps(
    lines: Iterable[str],
    source: str,
    model: AlarmModel,
    inputs: Sequence[InputDefinition],
    *,
    start: float | None = None,
) -> tuple[float, list[ReplayStep]]:
    """Check every line; return the start time and the steps (an operator line's
    ``operation`` is its tuple of requests). DetectorModelError names the line."""
    operations: dict[str, Operation] = {}
    for verb, action in BATCH_VERBS.items():
        operations[verb] = _entry_reader(model, action)
        operations[f"{verb}ActionRequests"] = _request_reader(model, action)
    return read_lines(lines, source, model.inputs_read(), start=start, operations=operations)


def _entry_reader(model: AlarmModel, action: str) -> Operation:
    """One request entry on its own line: ``requestId`` and ``alarmModelName`` may be left out."""

    def read(value: Any, where: str, number: int) -> tuple[OperatorRequest, ...]:
        if not isinstance(value, Mapping):
            raise DetectorModelError(f"{where}: expected an object {{keyValue, note?}}")
        entry = {"requestId": f"line-{number}", "alarmModelName": model.name, **value}
        return (_fits(model, batch_entry(entry, where, action, refuse_unknown=True), where),)

    return read


def _request_reader(model: AlarmModel, action: str) -> Operation:
    """A whole ``<verb>ActionRequests`` request, as AWS takes it."""

    def read(value: Any, where: str, number: int) -> tuple[OperatorRequest, ...]:
        requests = batch_requests(value, where, action)
        return tuple(_fits(model, r, f"{where}[{i}]") for i, r in enumerate(requests))

    return read


def _fits(model: AlarmModel, request: OperatorRequest, where: str) -> OperatorRequest:
    """The request names this model, and a keyValue exactly when the model has a key."""
    if request.alarm_model != model.name:
        raise DetectorModelError(
            f"{where}.alarmModelName: {request.alarm_model!r} is not this model ({model.name!r})"
        )
    if model.key is not None and request.key is None:
        raise DetectorModelError(
            f"{where}.keyValue: required: model {model.name!r} has key {model.key!r}"
        )
    if model.key is None and request.key is not None:
        raise DetectorModelError(
            f"{where}.keyValue: model {model.name!r} has no key; leave keyValue out"
        )
    return request


@dataclass(frozen=True, slots=True)
class AlarmReplayResult:
    model: str
    start: float
    end: float
    events: tuple[dict[str, Any], ...]
    """In order: ``created``, ``change`` (with what it would send), ``ignored`` operator
    actions, ``skipped`` messages and rule ``error`` events, each with ``t``, ``time`` and
    ``line``, the file line that caused it (None for what the clock did: a snooze running
    out, a reminder)."""
    alarms: tuple[dict[str, Any], ...]
    """The final DescribeAlarm document of every instance, in key order."""
    warnings: tuple[str, ...]
    not_read: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """Messages skipped per input the model does not read."""

    def document(self) -> dict[str, Any]:
        return {
            "alarmModelName": self.model,
            "start": iso_time(self.start),
            "end": iso_time(self.end),
            "events": list(self.events),
            "alarms": list(self.alarms),
            "warnings": list(self.warnings),
            **not_read_fields(self.not_read),
        }


class _Recorder:
    """Keeps the engine's trace records and the requests it hands over, each with the line
    that was running; performs nothing."""

    def __init__(self, clock: ManualClock) -> None:
        self._clock = clock
        self.line: int | None = None
        self.records: list[tuple[TraceRecord, int | None]] = []

    def observe(self, record: TraceRecord) -> None:
        self.records.append((record, self.line))

    def execute(self, request: ActionRequest) -> None:
        sent = {
            "action": "notification" if "#n" in request.event_name else request.kind,
            "target": dict(request.target),
            "payloadType": request.payload_type,
            "payload": request.payload,
            "eventName": request.event_name,
            "state": request.state_name,
        }
        self.observe(TraceRecord("send", self._clock.now(), request.key_value, sent))


def replay_alarms(
    model: AlarmModel,
    inputs: Sequence[InputDefinition],
    steps: Sequence[ReplayStep],
    state: StateStore,
    *,
    start: float,
    advance_after: float = 0.0,
) -> AlarmReplayResult:
    """Run *steps* through a fresh engine on a manual clock, with the running stack's
    per-asset notification limit; return what changed and what would have been sent."""
    clock = ManualClock(start)
    recorder = _Recorder(clock)
    engine = AlarmEngine(
        model,
        inputs,
        state,
        clock,
        recorder,
        limiter=NotificationLimiter(state),
        observer=recorder,
    )
    router = MessageRouter([engine], clock=clock)  # AWS's messageId rule, as BatchPutMessage
    not_read: Counter[str] = Counter()
    for step in steps:
        # what falls due while the clock moves to a line happened before the line ran: it is
        # the clock's, labelled by its time alone, as detectors run shows a timer
        recorder.line = None
        advance_clock(clock, step.at, engine.next_due, engine.tick)
        recorder.line = step.line
        if not step.read:
            pass_by(router, step, not_read)
        elif step.operation is not None:
            for request in step.operation:
                _operate(engine, request, recorder, clock)
        elif step.input_name is not None:
            assert step.payload is not None
            if not router.put_message(step.input_name, dict(step.payload), step.message_id):
                reason = f"messageId {step.message_id!r} was sent within the last five minutes"
                detail = {"input": step.input_name, "messageId": step.message_id, "reason": reason}
                recorder.observe(TraceRecord("skipped", clock.now(), None, detail))
    recorder.line = None
    advance_clock(clock, clock.now() + advance_after, engine.next_due, engine.tick)
    alarms = tuple(engine.describe(_key(model, k)) for k in engine.key_values())
    return AlarmReplayResult(
        model=model.name,
        start=start,
        end=clock.now(),
        events=tuple(_events(recorder.records, start)),
        alarms=alarms,
        warnings=tuple(engine.warnings),
        not_read=dict(not_read),
    )


def _key(model: AlarmModel, key: str) -> str | None:
    return None if model.key is None else key


def _operate(
    engine: AlarmEngine, request: OperatorRequest, recorder: _Recorder, clock: ManualClock
) -> None:
    """Apply *request*; one that does not fit (or names no instance yet) is ignored, as the
    batch requests ignore it (§7), and recorded with why."""
    try:
        apply(engine, dataclasses.replace(request, who=request.who or "replay"))
    except (UserError, NotFoundError) as exc:
        detail = {
            "action": request.action.lower(),
            "requestId": request.request_id,
            "reason": str(exc),
        }
        recorder.observe(TraceRecord("ignored", clock.now(), request.key, detail))


def _events(
    records: Sequence[tuple[TraceRecord, int | None]], start: float
) -> list[dict[str, Any]]:
    """Trace records as events: a transition or a reminder is a ``change`` that collects the
    requests its notice made (``sent``) or the notification the limit suppressed."""
    events: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for record, line in records:
        head = {
            "type": record.kind,
            "t": round(record.time - start, 3),
            "time": iso_time(record.time),
            "line": line,
            "keyValue": record.key,
        }
        detail = dict(record.detail)
        if record.kind == "transition":
            change = {**head, "type": "change", **detail, "sent": []}
        elif record.kind == "timer" and detail.get("name") == "reminder":
            # a reminder repeats the ACTIVE alarm's last change, with its value
            last = next((c for c in reversed(changes) if c["keyValue"] == record.key), {})
            change = {**head, "type": "change", "event": "reminder", "from": "ACTIVE"}
            change.update({"to": "ACTIVE", "value": last.get("value"), "sent": []})
            change["threshold"] = last.get("threshold")
        elif record.kind == "send":
            owner = _owner(changes, record.key, detail)
            if owner is not None:
                owner["sent"].append({k: v for k, v in detail.items() if k != "state"})
            continue
        elif record.kind == "action" and detail.get("suppressed"):
            owner = _owner(changes, record.key, {"state": detail.get("notice")})
            if owner is not None:
                owner["suppressed"] = True
            continue
        elif record.kind in PASSED:
            events.append({**head, **detail})
            continue
        else:
            continue
        changes.append(change)
        events.append(change)
    return events


def _owner(
    changes: list[dict[str, Any]], key: str | None, sent: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The change a request belongs to: the latest of its instance into the request's state
    (a reminder's requests: the latest reminder)."""
    reminder = str(sent.get("eventName", "")).startswith("REMINDER#") or (
        sent.get("state") == "REMINDER"
    )
    for change in reversed(changes):
        if change["keyValue"] != key:
            continue
        if reminder and change["event"] == "reminder":
            return change
        if not reminder and change["event"] != "reminder" and change["to"] == sent.get("state"):
            return change
    return None
