"""Offline replay of a detector model: BatchPutMessage-shaped lines in, a trace out.

What IoT Events' console test panel did, without AWS and without side effects: each line of
a JSONL file is one message (``{"inputName", "payload", "messageId"?, "timestamp"?}``) or a
clock move (``{"advance": "PT5M"}``). The engine runs on a manual clock in the model's own
key and evaluation method; timers fire at their exact expiry while the clock moves. Service
actions are recorded in the trace and never performed: no SNS, no MQTT, no files. The one
exception is an ``iotEvents`` action to an input the model itself reads, which re-enters the
model as a message, as it would on AWS (it leaves the model only if another model reads it).

Every line is checked before anything runs, so bad input is reported with its line number
and produces no partial trace.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cloud.detectors.durations import parse_duration
from cloud.detectors.engine import ActionRequest, DetectorEngine, used_inputs
from cloud.detectors.messages import INPUT_NAME_RE, MESSAGE_ID_RE, reject_constant
from cloud.detectors.model import DetectorModel, InputDefinition, json_problem
from cloud.detectors.router import MessageRouter
from cloud.detectors.trace import TraceRecord, TraceRecorder
from cloud.ports import StateStore
from edge.clock import ManualClock
from edge.errors import DetectorModelError
from edge.json_values import not_unicode

DEFAULT_START: Final = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
"""Where the replay clock starts unless a message timestamp or ``start`` says otherwise."""
LATEST: Final = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
"""No replay time may pass this: times are printed as dates, which stop at year 9999, and a
year-long timer set at the last step must still print."""

_MESSAGE_FIELDS: Final = ("inputName", "payload", "messageId", "timestamp")
_ID_NAMESPACE: Final = uuid.UUID("6f1d3c52-39a4-4f0e-9a7c-8ad1e0f6b7a1")


@dataclass(frozen=True, slots=True)
class ReplayStep:
    """One checked line: a message to send at ``at`` or, with ``input_name`` None, a clock move."""

    line: int
    at: float
    """Clock time (epoch s) the step happens at."""
    input_name: str | None = None
    payload: Mapping[str, Any] | None = None
    message_id: str | None = None
    operation: Any = None
    """What an operator line asks for (an alarm replay's acknowledge, snooze ...), else None."""
    read: bool = True
    """Whether the model reads the message's input: BatchPutMessage hands a message only to
    the models using its input, so one for another input passes the model by (its time
    and its ``messageId`` still count)."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    model: str
    evaluation_method: str
    start: float
    end: float
    records: tuple[TraceRecord, ...]
    detectors: tuple[dict[str, Any], ...]
    """The final DescribeDetector document of every instance, in key order."""
    warnings: tuple[str, ...]
    not_read: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """Messages skipped per input the model does not read."""

    def events(self) -> list[dict[str, Any]]:
        """Trace records as JSON-ready dicts with ``t`` (seconds since start) and ISO times."""
        return [event_dict(r, self.start) for r in self.records]

    def document(self) -> dict[str, Any]:
        return {
            "detectorModelName": self.model,
            "evaluationMethod": self.evaluation_method,
            "start": iso_time(self.start),
            "end": iso_time(self.end),
            "events": self.events(),
            "detectors": list(self.detectors),
            "warnings": list(self.warnings),
            **not_read_fields(self.not_read),
        }


def not_read_fields(not_read: Mapping[str, int]) -> dict[str, Any]:
    """A replay document's count of the messages its model does not read, by input."""
    return {
        "messagesNotRead": sum(not_read.values()),
        "inputsNotRead": dict(sorted(not_read.items())),
    }


def not_read_summary(model_name: str, not_read: Mapping[str, int]) -> str | None:
    """The one line a replay prints for the messages its model does not read (None: none)."""
    total = sum(not_read.values())
    if not total:
        return None
    inputs = ", ".join(f"{name} ({count})" for name, count in sorted(not_read.items()))
    noun = "message" if total == 1 else "messages"
    return f"{total} {noun} skipped: inputs model {model_name!r} does not read: {inputs}"


def iso_time(epoch_s: float) -> str:
    """``2026-01-01T00:05:00Z``, with milliseconds only when there are some."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


def event_dict(record: TraceRecord, start: float) -> dict[str, Any]:
    out = {"type": record.kind, "t": round(record.time - start, 3), **record.as_dict()}
    out["time"] = iso_time(record.time)
    if isinstance(out.get("expires"), int | float):
        out["expires"] = iso_time(out["expires"])
    return out


def read_steps(
    lines: Iterable[str],
    source: str,
    model: DetectorModel,
    inputs: Sequence[InputDefinition],
    *,
    start: float | None = None,
) -> tuple[float, list[ReplayStep]]:
    """Check every line; return the start time and the steps. DetectorModelError names the line.
    *inputs* need not define every input the file sends to: the model skips the others."""
    return read_lines(lines, source, used_inputs(model), start=start)


Operation = Callable[[Any, str, int], Any]
"""Checks the value of an operator line (``{"acknowledge": {...}}``) at ``where``, line
``number``; returns what the replay applies, or raises DetectorModelError naming the place."""


def read_lines(
    lines: Iterable[str],
    source: str,
    read: set[str],
    *,
    start: float | None = None,
    operations: Mapping[str, Operation] | None = None,
) -> tuple[float, list[ReplayStep]]:
    """Check every line of a replay file (messages, of which the model reads those to the
    inputs *read*, clock moves and, when *operations* names them, operator lines); return
    the start time and the steps. DetectorModelError names the line."""
    operations = operations or {}
    shapes = "{inputName, payload} or {advance: DURATION}" + "".join(
        f" or {{{name}: ...}}" for name in operations
    )
    steps: list[ReplayStep] = []
    clock: float | None = start
    first_time: float | None = None
    texts = list(lines)
    document = _one_document(texts, source)
    numbered = [(1, document)] if document is not None else enumerate(texts, start=1)
    for number, text in numbered:
        if not text.strip():
            continue
        where = f"{source}:{number}"
        try:
            body = json.loads(text, parse_constant=reject_constant)
        except json.JSONDecodeError as exc:
            raise DetectorModelError(
                f"{where}: not valid JSON: {exc.msg} (column {exc.colno})"
            ) from None
        except (ValueError, RecursionError) as exc:
            raise DetectorModelError(f"{where}: not usable JSON: {json_problem(exc)}") from None
        if not isinstance(body, dict):
            raise DetectorModelError(f"{where}: expected an object {shapes}")
        if "advance" in body:
            if len(body) != 1:
                raise DetectorModelError(f"{where}: an advance line holds only 'advance'")
            seconds = _duration(body["advance"], f"{where}: advance")
            base = clock if clock is not None else DEFAULT_START
            clock = base + seconds
            if not clock <= LATEST:
                raise DetectorModelError(
                    f"{where}: advance: moves the clock past {iso_time(LATEST)}"
                )
            first_time = base if first_time is None else first_time
            steps.append(ReplayStep(number, clock))
            continue
        verbs = [name for name in body if name in operations]
        if verbs:
            if len(body) != 1:
                raise DetectorModelError(f"{where}: a {verbs[0]} line holds only {verbs[0]!r}")
            at = clock if clock is not None else DEFAULT_START
            operation = operations[verbs[0]](body[verbs[0]], f"{where}: {verbs[0]}", number)
            first_time = at if first_time is None else first_time
            steps.append(ReplayStep(number, at, operation=operation))
            continue
        for entry, entry_where, default_id in _entries(body, where, number):
            step = _message_step(entry, entry_where, number, default_id, clock, read)
            clock = step.at
            first_time = step.at if first_time is None else first_time
            steps.append(step)
    begin = (
        start if start is not None else (first_time if first_time is not None else DEFAULT_START)
    )
    return begin, steps


def _one_document(texts: Sequence[str], source: str) -> str | None:
    """The whole text when it is one JSON object over several lines (a request file as the
    developer guide prints it), else None: the lines are read one by one. A first line that
    is no JSON by itself opens such a document, so its error is the document's, at its line."""
    filled = [text for text in texts if text.strip()]
    if len(filled) < 2:
        return None
    whole = "".join(text if text.endswith("\n") else text + "\n" for text in texts)
    try:
        body = json.loads(whole, parse_constant=reject_constant)
    except json.JSONDecodeError as exc:
        try:
            json.loads(filled[0], parse_constant=reject_constant)
        except json.JSONDecodeError:
            raise DetectorModelError(
                f"{source}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})"
            ) from None
        except (ValueError, RecursionError):
            pass
        return None
    except (ValueError, RecursionError):
        return None
    return whole if isinstance(body, dict) else None


def _entries(
    body: dict[str, Any], where: str, number: int
) -> list[tuple[dict[str, Any], str, str]]:
    """The messages of a line: the line itself, or each entry of a BatchPutMessage request
    (``{"messages": [...]}``, what the guide's ``--cli-input-json`` files hold), in array
    order, each with its place in the line and the messageId it gets if it has none."""
    if "messages" not in body:
        return [(body, where, f"line-{number}")]
    if len(body) != 1:
        extra = sorted(name for name in body if name != "messages")
        raise DetectorModelError(
            f"{where}: a BatchPutMessage request holds only 'messages' (found {extra[0]!r})"
        )
    entries = body["messages"]
    if not isinstance(entries, list) or not entries:
        raise DetectorModelError(f"{where}: messages: expected a list of at least one message")
    found: list[tuple[dict[str, Any], str, str]] = []
    ids: set[str] = set()
    for i, entry in enumerate(entries):
        at = f"{where}: messages[{i}]"
        if not isinstance(entry, dict):
            raise DetectorModelError(f"{at}: expected an object {{inputName, payload}}")
        message_id = entry.get("messageId")
        if isinstance(message_id, str):
            if message_id in ids:  # "unique within a batch" (BatchPutMessage)
                raise DetectorModelError(
                    f"{at}: messageId {message_id!r} is repeated within the request"
                )
            ids.add(message_id)
        found.append((entry, at, f"line-{number}-{i + 1}"))
    return found


def _message_step(
    body: dict[str, Any],
    where: str,
    number: int,
    default_id: str,
    clock: float | None,
    read: set[str],
) -> ReplayStep:
    """One checked message, sent at *clock* unless its timestamp says later. One to an
    input the model does not read is checked as any other (it is a BatchPutMessage entry),
    whether or not an ``--input`` defines that input: a file recorded from a plant holds
    messages for inputs other models read."""
    for name in body:
        if name not in _MESSAGE_FIELDS:
            raise DetectorModelError(
                f"{where}: unknown field {name!r} (expected: {', '.join(_MESSAGE_FIELDS)},"
                " or advance)"
            )
    input_name = body.get("inputName")
    if not isinstance(input_name, str):
        raise DetectorModelError(f"{where}: inputName: expected a string")
    if not INPUT_NAME_RE.fullmatch(input_name):
        raise DetectorModelError(
            f"{where}: inputName {input_name[:130]!r}: not an input name"
            " (1-128 of ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$, as BatchPutMessage takes it)"
        )
    if "payload" not in body:
        raise DetectorModelError(f"{where}: missing required field 'payload'")
    payload = _payload(body["payload"], where)
    message_id = body.get("messageId")
    if message_id is None:
        message_id = default_id
    elif not isinstance(message_id, str) or not MESSAGE_ID_RE.fullmatch(message_id):
        raise DetectorModelError(f"{where}: messageId: expected 1-64 of [a-zA-Z0-9_-]")
    at = clock if clock is not None else DEFAULT_START
    if body.get("timestamp") is not None:
        at = _timestamp(body["timestamp"], where)
        if not at <= LATEST:
            raise DetectorModelError(f"{where}: timestamp is after {iso_time(LATEST)}")
        if clock is not None and at < clock:
            raise DetectorModelError(
                f"{where}: timestamp {iso_time(at)} is before the replay clock"
                f" ({iso_time(clock)}); lines run in time order"
            )
    return ReplayStep(number, at, input_name, payload, message_id, read=input_name in read)


def _duration(value: Any, where: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise DetectorModelError(f"{where}: {exc}") from None
    return seconds


def _payload(value: Any, where: str) -> dict[str, Any]:
    """A payload as an object, as base64 (the wire), or as the JSON text itself: the guide's
    request files hold the text, sent with ``--cli-binary-format raw-in-base64-out``. Text
    opening with ``{`` cannot be base64, so the two cannot be confused."""
    if isinstance(value, str):
        try:
            raw = (
                value if value.lstrip().startswith("{") else base64.b64decode(value, validate=True)
            )
            value = json.loads(raw, parse_constant=reject_constant)
        except (binascii.Error, ValueError, RecursionError):
            raise DetectorModelError(
                f"{where}: payload: expected a JSON object, its JSON text, or base64 of it"
                " as on the wire"
            ) from None
    if not isinstance(value, dict):
        raise DetectorModelError(f"{where}: payload: expected a JSON object")
    problem = not_unicode(value)
    if problem:  # as BatchPutMessage refuses it: no detector's state could hold it
        raise DetectorModelError(f"{where}: payload: {problem}")
    return value


def _timestamp(value: Any, where: str) -> float:
    """``{"timeInMillis": N}`` as BatchPutMessage takes it, epoch milliseconds, or ISO 8601."""
    millis = value.get("timeInMillis") if isinstance(value, dict) else value
    if isinstance(millis, int) and not isinstance(millis, bool) and millis >= 0:
        if millis > LATEST * 1000:
            raise DetectorModelError(f"{where}: timestamp is after {iso_time(LATEST)}")
        return millis / 1000
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    raise DetectorModelError(
        f'{where}: timestamp: expected {{"timeInMillis": N}}, epoch milliseconds or ISO 8601'
    )


class _ReplaySink:
    """Performs nothing; an ``iotEvents`` action to an input the model reads re-enters it."""

    def __init__(self, reads: set[str]) -> None:
        self._reads = reads
        self._engine: DetectorEngine | None = None

    def bind(self, engine: DetectorEngine) -> None:
        self._engine = engine

    def execute(self, request: ActionRequest) -> None:
        if request.kind != "iotEvents" or self._engine is None:
            return
        name = str(request.target.get("inputName", ""))
        payload = request.payload
        if isinstance(payload, str):
            payload = json.loads(payload, parse_constant=reject_constant)
        if name in self._reads and isinstance(payload, dict):
            self._engine.put_message(name, payload)


def replay(
    model: DetectorModel,
    inputs: Sequence[InputDefinition],
    steps: Sequence[ReplayStep],
    state: StateStore,
    *,
    start: float,
    advance_after: float = 0.0,
    evaluation_method: str | None = None,
) -> ReplayResult:
    """Run *steps* through a fresh engine on a manual clock; return the trace and final state."""
    if evaluation_method is not None:
        model = dataclasses.replace(model, evaluation_method=evaluation_method)
    clock = ManualClock(start)
    recorder = TraceRecorder()
    counter = iter(range(1, 1 << 62))
    engine = DetectorEngine(
        model,
        inputs,
        state,
        clock,
        _ReplaySink(used_inputs(model)),
        observer=recorder,
        new_id=lambda: str(uuid.uuid5(_ID_NAMESPACE, str(next(counter)))),
    )
    router = MessageRouter([engine], clock=clock)  # AWS's messageId rule, as BatchPutMessage
    not_read: Counter[str] = Counter()
    for step in steps:
        advance_clock(clock, step.at, engine.next_timer, engine.tick)
        if not step.read:
            pass_by(router, step, not_read)
        elif step.input_name is not None:
            assert step.payload is not None
            if not router.put_message(step.input_name, dict(step.payload), step.message_id):
                detail = {
                    "input": step.input_name,
                    "messageId": step.message_id,
                    "reason": f"messageId {step.message_id!r} was sent within the last five"
                    " minutes",
                }
                recorder.observe(TraceRecord("skipped", clock.now(), None, detail))
    advance_clock(clock, clock.now() + advance_after, engine.next_timer, engine.tick)
    # the keyless instance answers a describe without keyValue ("" is no keyValue)
    shown = (None if model.key is None else key for key in engine.key_values())
    detectors = tuple(engine.describe(key) for key in shown)
    return ReplayResult(
        model=model.name,
        evaluation_method=model.evaluation_method,
        start=start,
        end=clock.now(),
        records=tuple(recorder.records),
        detectors=detectors,
        warnings=tuple(engine.warnings),
        not_read=dict(not_read),
    )


def pass_by(router: MessageRouter, step: ReplayStep, not_read: Counter[str]) -> None:
    """Count a message to an input the model does not read; its ``messageId`` was sent all
    the same, so AWS's five-minute rule counts it whatever the input."""
    assert step.input_name is not None
    not_read[step.input_name] += 1
    router.note_sent(step.message_id)


def advance_clock(
    clock: ManualClock,
    target: float,
    next_due: Callable[[], float | None],
    tick: Callable[[], object],
) -> None:
    """Move the clock to *target*, stopping at each due time on the way (an engine's
    ``next_due``) and running the engine's ``tick`` there, so timers fire on time."""
    while True:
        due = next_due()
        if due is None or due > target:
            break
        clock.set(max(due, clock.now()))
        tick()
    if target > clock.now():
        clock.set(target)
