"""BatchPutMessage (§1) and BatchUpdateDetector (§6): the IoT Events data-plane requests,
routed to detector engines.

Per-message problems come back as ``BatchPutMessageErrorEntries`` as AWS reports them; a
request that breaks the API's shapes (no messages, more than 10, duplicate ids, an id or
input name outside the API's pattern, a message without its payload blob or with one that is
not base64, more than 1 KiB of payload; for BatchUpdateDetector any member outside its documented type, length or pattern)
raises :class:`DetectorModelError` naming the field, before any entry runs.

Given the models' :class:`~cloud.detectors.router.MessageRouter` (one engine to it), a
request also gets AWS's messageId rule and retries that reach only the models a failed
message missed; given the engines themselves, each call starts afresh: the rule needs the
ids of earlier requests, and only the router, which outlives a call, holds them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from cloud.detectors.api_types import INTEGER_MAX, INTEGER_MIN
from cloud.detectors.model import KEY_VALUE_RE, NAME_RE, PLAIN_FIELD_RE
from edge.commands import shown
from edge.errors import DetectorModelError
from edge.json_values import not_unicode

MAX_MESSAGES: Final = 10
MAX_PAYLOAD_BYTES: Final = 1024
MESSAGE_ID_RE: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
INPUT_NAME_RE: Final = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
"""The API's Message.inputName: 1-128 characters, pattern ``^[a-zA-Z0-9][a-zA-Z0-9_.-]*$``."""
MAX_MILLIS: Final = 2**63 - 1


class MessageEngine(Protocol):
    inputs: Mapping[str, Any]

    def put_message(
        self, input_name: str, payload: dict[str, Any], message_id: str | None = None
    ) -> None: ...


class UpdateEngine(Protocol):
    model: Any

    def update_detector(self, key: str | None, state: Mapping[str, Any]) -> None: ...


STATE_FIELDS: Final = ("stateName", "variables", "timers")
"""DetectorStateDefinition's fields, every one required: AWS clears what the arrays leave
out, so an update that forgot ``timers`` would silently stop every timer."""
MAX_NAME: Final = 128
MAX_VALUE_TEXT: Final = 1024
"""VariableDefinition.value: 1-1024 characters of text, before it is read as a value."""


def batch_update_detector(
    engines: Sequence[UpdateEngine], request: Mapping[str, Any]
) -> dict[str, list[dict[str, str]]]:
    """Apply each update in array order; a bad entry is reported by its messageId and
    changes nothing, and the others still apply (AWS: "If an error is listed here, the
    specific update did not occur").

    A request breaking the API's shapes (UpdateDetectorRequest, DetectorStateDefinition,
    VariableDefinition, TimerDefinition: a required member left out, a type, length or
    pattern not met, a messageId repeated) raises :class:`DetectorModelError` naming the
    field before any entry runs, as AWS's request validation fails the whole call. What
    only the model can judge (its existence, its states, whether it has a key, a value
    or a timer duration it can hold) is that entry's error."""
    entries = request.get("detectors") if isinstance(request, Mapping) else None
    if not isinstance(entries, list) or not entries:
        raise DetectorModelError("BatchUpdateDetector: $.detectors: expected 1 or more updates")
    seen: set[str] = set()
    for i, update in enumerate(entries):
        _entry_id(update, f"BatchUpdateDetector: $.detectors[{i}]", seen)
    for i, update in enumerate(entries):
        _check_update_shape(update, f"BatchUpdateDetector: $.detectors[{i}]")
    by_name = {engine.model.name: engine for engine in engines}
    errors: list[dict[str, str]] = []
    for update in entries:
        message_id = update["messageId"]
        model_name = update["detectorModelName"]
        engine = by_name.get(model_name)
        if engine is None:
            errors.append(
                _error(
                    message_id,
                    "ResourceNotFoundException",
                    f"detector model {model_name!r} does not exist",
                )
            )
            continue
        try:
            engine.update_detector(update.get("keyValue"), update["state"])
        except DetectorModelError as exc:
            errors.append(_error(message_id, "InvalidRequestException", str(exc)))
        except Exception as exc:
            errors.append(_error(message_id, "InternalFailureException", str(exc)))
    return {"batchUpdateDetectorErrorEntries": errors}


def _entry_id(entry: Any, path: str, seen: set[str]) -> str:
    """The messageId of one batch entry, checked as both Batch APIs check it: a bad or
    repeated id makes the whole request wrong, not just that entry."""
    if not isinstance(entry, Mapping):
        raise DetectorModelError(f"{path}: expected an object")
    message_id = entry.get("messageId")
    if not isinstance(message_id, str) or not MESSAGE_ID_RE.fullmatch(message_id):
        raise DetectorModelError(f"{path}.messageId: expected 1-64 of [a-zA-Z0-9_-]")
    if message_id in seen:
        raise DetectorModelError(f"{path}.messageId: duplicate {message_id!r} in the batch")
    seen.add(message_id)
    return message_id


def _check_update_shape(update: Mapping[str, Any], path: str) -> None:
    """One UpdateDetectorRequest against the shapes of the iotevents-data API reference;
    ``null`` counts as a member left out, as in the alarm requests."""
    model = update.get("detectorModelName")
    if not _text(model, MAX_NAME) or not NAME_RE.fullmatch(model):
        raise DetectorModelError(
            f"{path}.detectorModelName: expected 1-{MAX_NAME} of [a-zA-Z0-9_-], got {_shown(model)}"
        )
    key = update.get("keyValue")
    if key is not None and (not _text(key, MAX_NAME) or not KEY_VALUE_RE.fullmatch(key)):
        raise DetectorModelError(
            f"{path}.keyValue: expected 1-{MAX_NAME} of [a-zA-Z0-9-_:], got {_shown(key)}"
        )
    state = update.get("state")
    if not isinstance(state, Mapping):
        raise DetectorModelError(
            f"{path}.state: expected {{stateName, variables, timers}}, got {_shown(state)}"
        )
    for name in STATE_FIELDS:
        if state.get(name) is None:
            raise DetectorModelError(
                f"{path}.state.{name}: required (an empty array clears them all)"
            )
    if not _text(state["stateName"], MAX_NAME):
        raise DetectorModelError(
            f"{path}.state.stateName: expected 1-{MAX_NAME} characters,"
            f" got {_shown(state['stateName'])}"
        )
    for name in ("variables", "timers"):
        if not isinstance(state[name], list):
            raise DetectorModelError(
                f"{path}.state.{name}: expected an array, got {_shown(state[name])}"
            )
    for i, variable in enumerate(state["variables"]):
        where = f"{path}.state.variables[{i}]"
        if not isinstance(variable, Mapping):
            raise DetectorModelError(f"{where}: expected {{name, value}}")
        name = variable.get("name")
        if not _text(name, MAX_NAME) or not PLAIN_FIELD_RE.fullmatch(name):
            raise DetectorModelError(
                f"{where}.name: expected 1-{MAX_NAME} of ^[a-zA-Z][a-zA-Z0-9_]*$,"
                f" got {_shown(name)}"
            )
        if not _text(variable.get("value"), MAX_VALUE_TEXT):
            raise DetectorModelError(
                f"{where}.value: expected text of 1-{MAX_VALUE_TEXT} characters (a value as"
                f" DescribeDetector prints it), got {_shown(variable.get('value'))}"
            )
    for i, timer in enumerate(state["timers"]):
        where = f"{path}.state.timers[{i}]"
        if not isinstance(timer, Mapping):
            raise DetectorModelError(f"{where}: expected {{name, seconds}}")
        if not _text(timer.get("name"), MAX_NAME):
            raise DetectorModelError(
                f"{where}.name: expected 1-{MAX_NAME} characters, got {_shown(timer.get('name'))}"
            )
        seconds = timer.get("seconds")
        # an Integer: past its bounds the request's shape breaks; inside them, outside what
        # the model's timers take (60-31,622,400 s), only that entry is refused
        if (
            not isinstance(seconds, int)
            or isinstance(seconds, bool)
            or not INTEGER_MIN <= seconds <= INTEGER_MAX
        ):
            raise DetectorModelError(
                f"{where}.seconds: expected a whole number of seconds, {INTEGER_MIN} to"
                f" {INTEGER_MAX} (the API's Integer), got {_shown(seconds)}"
            )


def _text(value: Any, longest: int) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= longest


def _shown(value: Any) -> str:
    """A bad value in an error message, text quoted (an empty one shows) and cut short."""
    return shown(repr(value) if isinstance(value, str) else value, 40)


def batch_put_message(
    engines: Sequence[MessageEngine], request: Mapping[str, Any]
) -> dict[str, list[dict[str, str]]]:
    """Decode, validate and route each message in array order (§1 Decision)."""
    messages = request.get("messages") if isinstance(request, Mapping) else None
    if not isinstance(messages, list) or not messages:
        raise DetectorModelError("BatchPutMessage: $.messages: expected 1-10 messages")
    if len(messages) > MAX_MESSAGES:
        raise DetectorModelError(
            f"BatchPutMessage: $.messages: {len(messages)} messages; at most {MAX_MESSAGES}"
        )
    decoded: list[tuple[str, str, bytes]] = []
    seen: set[str] = set()
    total = 0
    ids = [_entry_id(m, f"BatchPutMessage: $.messages[{i}]", seen) for i, m in enumerate(messages)]
    for i, (message, message_id) in enumerate(zip(messages, ids, strict=True)):
        path = f"BatchPutMessage: $.messages[{i}]"
        input_name = message.get("inputName")
        if not isinstance(input_name, str) or not INPUT_NAME_RE.fullmatch(input_name):
            raise DetectorModelError(
                f"{path}.inputName: expected 1-128 of [a-zA-Z0-9_.-], starting with a letter"
                f" or digit, got {input_name!r}"[:300]
            )
        _check_timestamp(message.get("timestamp"), f"{path}.timestamp")
        if not isinstance(message.get("payload"), str | bytes | bytearray):
            # Message.payload is a required blob: its absence breaks the request's shape;
            # only what its bytes hold (not JSON, not an object) is that message's error
            raise DetectorModelError(
                f"{path}.payload: required, a blob (base64 text on the wire), got"
                f" {_shown(message.get('payload'))}"
            )
        raw = _payload_bytes(message["payload"], f"{path}.payload")
        total += len(raw)
        decoded.append((message_id, input_name, raw))
    if total > MAX_PAYLOAD_BYTES:
        raise DetectorModelError(
            f"BatchPutMessage: $.messages: {total} bytes of payload; at most {MAX_PAYLOAD_BYTES}"
        )
    errors: list[dict[str, str]] = []
    for message_id, input_name, raw in decoded:
        targets = [e for e in engines if input_name in e.inputs]
        if not targets:
            errors.append(
                _error(
                    message_id, "ResourceNotFoundException", f"input {input_name!r} does not exist"
                )
            )
            continue
        try:
            payload = json.loads(raw, parse_constant=reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            errors.append(
                _error(message_id, "InvalidRequestException", "payload is not a JSON object")
            )
            continue
        problem = not_unicode(payload)
        if problem:  # no model could store it: the sender's error, not ours
            errors.append(_error(message_id, "InvalidRequestException", f"payload: {problem}"))
            continue
        failure: Exception | None = None
        for engine in targets:  # each model using the input gets it, whatever another did
            try:
                engine.put_message(input_name, payload, message_id)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:  # reported once per message, as AWS does
            errors.append(_error(message_id, "InternalFailureException", str(failure)))
    return {"BatchPutMessageErrorEntries": errors}


def _check_timestamp(value: Any, path: str) -> None:
    """``timestamp`` is optional; when given, ``{"timeInMillis": 1..2**63-1}`` (TimestampValue).
    Other members are passed over, as in every data-plane request's structures."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise DetectorModelError(f"{path}: expected an object {{timeInMillis}}")
    millis = value.get("timeInMillis")
    if millis is None:
        return
    if not isinstance(millis, int) or isinstance(millis, bool) or not 1 <= millis <= MAX_MILLIS:
        raise DetectorModelError(
            f"{path}.timeInMillis: expected epoch milliseconds 1-{MAX_MILLIS}, got {millis!r}"[:300]
        )


def reject_constant(word: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity`` are Python's extensions, not JSON."""
    raise ValueError(f"{word} is not JSON")


def _payload_bytes(value: str | bytes | bytearray, path: str) -> bytes:
    """The blob's bytes. Text that is not base64 makes the request malformed as a whole, as
    a REST-JSON service refuses a blob member that does not decode with a 400
    SerializationException before the operation runs (Smithy's restJson1 protocol test
    RestJsonBodyMalformedBlobInvalidBase64); bytes given directly are taken as they are."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DetectorModelError(
            f"{path}: not base64 (a blob is base64 text on the wire: {exc}), got {_shown(value)}"
        ) from None


def _error(message_id: str, code: str, message: str) -> dict[str, str]:
    return {"messageId": message_id, "errorCode": code, "errorMessage": message}
