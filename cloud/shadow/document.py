"""AWS IoT Device Shadow document semantics, as pure functions over plain dicts.

The service, the direct-to-SQLite CLI path and the tests share this one engine, so the
MQTT answers and the stored documents cannot drift apart. Nothing here does I/O or reads
the time: callers pass ``now`` (integer epoch seconds from their Clock).
"""

from __future__ import annotations

import copy
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.json_values import same_value

MAX_STATE_BYTES = 8192
MAX_DEPTH = 6
MAX_PAYLOAD_BYTES = 128 * 1024
MAX_CLIENT_TOKEN_BYTES = 64
SECTIONS = ("desired", "reported")

THING_NAME_RE = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")
SHADOW_NAME_RE = re.compile(r"^[$a-zA-Z0-9:_-]{1,64}$")

Json = dict[str, Any]


class ShadowError(Exception):
    """A rejected request: AWS's integer ``code``, exact ``message`` and the echoed token."""

    def __init__(self, code: int, message: str, client_token: str | None = None) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.client_token = client_token

    def with_token(self, client_token: str | None) -> ShadowError:
        return ShadowError(self.code, self.message, client_token)

    def document(self, now: int) -> Json:
        """The ``/rejected`` payload; real AWS omits ``timestamp`` on 404 and 409."""
        doc: Json = {"code": self.code, "message": self.message}
        if self.code not in (404, 409):
            doc["timestamp"] = now
        if self.client_token is not None:
            doc["clientToken"] = self.client_token
        return doc


def not_found(thing: str, shadow_name: str | None, client_token: str | None = None) -> ShadowError:
    return ShadowError(404, f"No shadow exists with name: '{shadow_name or thing}'", client_token)


@dataclass(frozen=True, slots=True)
class Shadow:
    """A stored shadow: ``state`` and ``metadata`` hold only non-empty sections."""

    state: Json = field(default_factory=dict)
    metadata: Json = field(default_factory=dict)
    version: int = 0

    def to_json(self) -> Json:
        return {
            "state": sections_in_order(self.state),
            "metadata": sections_in_order(self.metadata),
            "version": self.version,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Shadow:
        return cls(dict(doc["state"]), dict(doc["metadata"]), int(doc["version"]))


def sections_in_order(document: Json) -> Json:
    """*document*'s sections as AWS shows them, ``desired`` before ``reported``, whichever
    was written first (a stored document keeps the order its sections were created in)."""
    return {s: document[s] for s in SECTIONS if s in document}


@dataclass(frozen=True, slots=True)
class UpdateResult:
    shadow: Shadow
    accepted: Json
    delta: Json | None
    documents: Json


def validate_names(thing: str, shadow_name: str | None) -> None:
    if not THING_NAME_RE.fullmatch(thing):
        raise ShadowError(400, "Invalid thing name")
    if shadow_name is not None and not SHADOW_NAME_RE.fullmatch(shadow_name):
        raise ShadowError(400, "Invalid shadow name")


def parse_payload(payload: bytes) -> Json:
    """Size, UTF-8 and JSON-object checks, the first steps of the validation order."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ShadowError(413, "The payload exceeds the maximum size allowed")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ShadowError(
            415, "Unsupported documented encoding; supported encoding is UTF-8"
        ) from None
    try:
        doc = _loads_strict(text)
        if "\\u" in text:
            # An escaped lone surrogate ("\ud800") parses but has no UTF-8 form: every
            # later step (size, storage, answers) would fail on it.
            json.dumps(doc, ensure_ascii=False).encode()
    except ValueError:
        # UnicodeEncodeError is a ValueError.
        raise ShadowError(400, "Invalid JSON") from None
    if not isinstance(doc, dict):
        raise ShadowError(400, "Invalid JSON")
    return doc


def _loads_strict(text: str) -> Any:
    """``json.loads`` with the JSON step's rules (no NaN, nothing beyond a double), for
    any nesting: well-formed JSON deeper than the parser recurses is read with its deep
    values cut (:func:`_cut_deep`), so it answers as too deep, not as invalid JSON."""
    hooks: dict[str, Any] = {
        "parse_constant": _reject_constant,
        "parse_float": _double,
        "parse_int": _integer,
    }
    try:
        return json.loads(text, **hooks)
    except RecursionError:
        return json.loads(_cut_deep(text), **hooks)


CUT_LEVELS = 64
"""Containers kept by :func:`_cut_deep`: far past MAX_DEPTH (below ``state``, which is two
levels down), far below the parser's recursion limit."""

_TOKEN = re.compile(
    r"[ \t\n\r]*(?:"
    r'(?P<string>"(?:[^"\\\x00-\x1f]|\\.)*")'
    r"|(?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<literal>true|false|null)"
    r"|(?P<mark>[\[\]{},:]))",
    re.DOTALL,
)


def _cut_deep(text: str) -> str:
    """*text* checked as JSON without recursion, each container opened past CUT_LEVELS
    replaced by ``[0]``, or by ``[null]`` when it holds a null inside an array (an array
    above it counting), so the arrays-holding-null and depth checks still see it.

    Every rule of the JSON step is checked in the cut part too (syntax, escapes, lone
    surrogates, NaN, numbers beyond a double): ValueError if one fails.
    """
    out: list[str] = []
    stack: list[str] = []
    arrays = 0
    cut_at: int | None = None
    cut_null = False
    copied = 0
    expect = "value"
    pos = 0
    while True:
        match = _TOKEN.match(text, pos)
        if match is None:
            if expect == "end" and not text[pos:].strip(" \t\n\r"):
                break
            raise ValueError("not JSON")
        kind = match.lastgroup
        token = match.group(kind or 0)
        pos = match.end()
        if expect == "end":
            raise ValueError("text after the document")
        if kind == "mark" and token in "[{":
            if expect not in ("value", "value_or_close"):
                raise ValueError(f"unexpected {token}")
            stack.append(token)
            arrays += token == "["
            if len(stack) == CUT_LEVELS + 1:
                cut_at, cut_null = match.start(kind), False
            expect = "value_or_close" if token == "[" else "key_or_close"
        elif kind == "mark" and token in "]}":
            opener = "[" if token == "]" else "{"
            opened = "value_or_close" if opener == "[" else "key_or_close"
            if not stack or stack[-1] != opener or expect not in ("comma_or_close", opened):
                raise ValueError(f"unexpected {token}")
            stack.pop()
            arrays -= opener == "["
            if cut_at is not None and len(stack) == CUT_LEVELS:
                out += [text[copied:cut_at], "[null]" if cut_null else "[0]"]
                copied, cut_at = pos, None
            expect = "comma_or_close" if stack else "end"
        elif kind == "mark" and token == ",":
            if expect != "comma_or_close":
                raise ValueError("unexpected ,")
            expect = "value" if stack[-1] == "[" else "key"
        elif kind == "mark":
            if expect != "colon":
                raise ValueError("unexpected :")
            expect = "value"
        elif expect in ("key", "key_or_close"):
            if kind != "string":
                raise ValueError("a key must be a string")
            _scalar(kind, token)
            expect = "colon"
        elif expect in ("value", "value_or_close"):
            _scalar(kind, token)
            if token == "null" and arrays and cut_at is not None:
                cut_null = True
            expect = "comma_or_close" if stack else "end"
        else:
            raise ValueError(f"unexpected {token[:20]}")
    out.append(text[copied:])
    return "".join(out)


def _scalar(kind: str | None, token: str) -> None:
    """The JSON step's rules for one string or number token (ValueError if broken)."""
    if kind == "string":
        value = json.loads(token)
        if "\\u" in token:
            value.encode()
    elif kind == "number":
        if any(c in token for c in ".eE"):
            _double(token)
        else:
            _integer(token)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _double(text: str) -> float:
    """A number beyond a double (``1e400``) would be stored as inf and answered as the
    non-JSON ``Infinity``; it is refused instead."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is beyond a double")
    return value


_MAX_DOUBLE_INT = int(sys.float_info.max)


def _integer(text: str) -> int:
    """Integers are kept exactly, up to the largest double: beyond it no JSON peer that
    reads numbers as doubles (the SDKs, DynamoDB, JavaScript) can hold the value."""
    value = int(text)
    if len(text) > 308 and abs(value) > _MAX_DOUBLE_INT:
        raise ValueError(f"{text[:20]}... is beyond a double")
    return value


def client_token(doc: Mapping[str, Any]) -> str | None:
    """The request's token, None only when the key is absent: a JSON null is a token
    that is not a string (400), as on AWS, not one left out."""
    if "clientToken" not in doc:
        return None
    token = doc["clientToken"]
    if not isinstance(token, str):
        raise ShadowError(400, "Invalid clientToken")
    try:
        size = len(token.encode())
    except UnicodeEncodeError:
        # An escaped lone surrogate ("\ud800"): no UTF-8 form, so it cannot be echoed.
        raise ShadowError(400, "Invalid clientToken") from None
    if size > MAX_CLIENT_TOKEN_BYTES:
        raise ShadowError(400, "Invalid clientToken")
    return token


def lenient_token(payload: bytes, *, deep: bool = True) -> str | None:
    """The token of a get/delete body; an unparsable body counts as empty (spec Choice).

    Without *deep*, a body nested past the parser's recursion counts as empty too: reading
    it without recursion (:func:`_cut_deep`) takes a tenth of a second for 128 KB, which a
    refusal that sheds load (429) must not spend."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        text = payload.decode("utf-8")
        try:
            doc = json.loads(text) if payload.strip() else {}
        except RecursionError:
            if not deep:
                return None
            doc = json.loads(_cut_deep(text))
    except ValueError:  # UnicodeDecodeError included
        return None
    if not isinstance(doc, dict):
        return None
    return client_token(doc)


def validate_update(doc: Mapping[str, Any]) -> tuple[Json | None, int | None, str | None]:
    """Return ``(state, version, token)`` after the checks that need no stored document.

    Order: arrays holding null (the JSON step, 4.3 Choice), clientToken, node shapes,
    version type, depth.
    """
    if _holds_null_in_array(doc.get("state")):
        # A null in an array of the state makes the request "Invalid JSON", the step
        # section 5 puts before all others on a parsed document, so no later fault of the
        # same request (a bad token, a section of the wrong type, a bad version, nesting)
        # answers instead. A valid token is still echoed.
        raise ShadowError(400, "Invalid JSON", valid_token(doc))
    token = client_token(doc)
    if "state" not in doc:
        raise ShadowError(400, "Missing required node: state", token)
    state = doc["state"]
    if state is not None:
        if not isinstance(state, dict):
            raise ShadowError(400, "State node must be an object", token)
        for key in state:
            if key not in SECTIONS:
                raise ShadowError(400, f"State contains an invalid node: '{key}'", token)
        for section in SECTIONS:
            value = state.get(section)
            if value is not None and not isinstance(value, dict):
                raise ShadowError(400, f"{section.capitalize()} node must be an object", token)
    version = doc.get("version")
    if "version" in doc and not valid_version(version):
        # A null is no lock left out but an invalid one, as on AWS.
        raise ShadowError(400, "Invalid version", token)
    if state is not None:
        for s in SECTIONS:
            if isinstance(value := state.get(s), dict):
                _check_depth(value, 1, token)
    return state, version, token


def valid_version(value: Any) -> bool:
    """An optimistic-lock version AWS takes: an integer >= 0 (a bool is no integer)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def valid_token(doc: Mapping[str, Any]) -> str | None:
    """The request's token when it is a valid one, else None (an answer before the
    clientToken check echoes no invalid token)."""
    try:
        return client_token(doc)
    except ShadowError:
        return None


def _holds_null_in_array(root: Any) -> bool:
    """Whether a null sits anywhere inside an array (an object in an array included),
    *root* itself being one. Iterative: a request nested as deep as the JSON parser allows
    cannot overflow it."""
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        value, in_array = stack.pop()
        if isinstance(value, dict):
            for child in value.values():
                if child is None and in_array:
                    return True
                stack.append((child, in_array))
        elif isinstance(value, list):
            for child in value:
                if child is None:
                    return True
                stack.append((child, True))
    return False


def _check_depth(value: Any, level: int, token: str | None) -> None:
    if isinstance(value, dict | list):
        if value and level > MAX_DEPTH:
            raise _too_deep(token)
        for child in value.values() if isinstance(value, dict) else value:
            _check_depth(child, level + 1, token)


def _too_deep(token: str | None) -> ShadowError:
    return ShadowError(
        400, f"JSON contains too many levels of nesting; maximum is {MAX_DEPTH}", token
    )


def apply_update(
    stored: Shadow | None,
    request: Mapping[str, Any],
    now: int,
    *,
    missing_version: int = 0,
) -> UpdateResult:
    """Apply one parsed update request; raise ShadowError and change nothing on rejection.

    *missing_version* is the version a missing shadow continues from (its tombstone's, or 0).
    """
    state, version, token = validate_update(request)
    current_version = stored.version if stored is not None else missing_version
    if version is not None and version != current_version:
        raise ShadowError(409, "Version conflict", token)
    base = stored if stored is not None else Shadow(version=missing_version)
    new_state = copy.deepcopy(base.state)
    new_meta = copy.deepcopy(base.metadata)
    for section in SECTIONS:
        if state is not None and section not in state:
            continue
        patch = None if state is None else state[section]
        merged, merged_meta = (
            ({}, {})
            if patch is None
            else _merge(new_state.get(section, {}), new_meta.get(section, {}), patch, now)
        )
        if merged:
            new_state[section], new_meta[section] = merged, merged_meta
        else:
            new_state.pop(section, None)
            new_meta.pop(section, None)
    if state_size(new_state) > MAX_STATE_BYTES:
        raise ShadowError(413, "The payload exceeds the maximum size allowed", token)
    shadow = Shadow(sections_in_order(new_state), sections_in_order(new_meta), current_version + 1)
    accepted: Json = {
        "state": state,
        "metadata": _request_metadata(state, now),
        "version": shadow.version,
        "timestamp": now,
    }
    delta = compute_delta(shadow.state.get("desired", {}), shadow.state.get("reported", {}))
    delta_doc: Json | None = None
    if delta:
        delta_doc = {
            "version": shadow.version,
            "timestamp": now,
            "state": delta,
            "metadata": _delta_metadata(delta, shadow.metadata.get("desired", {})),
        }
    documents: Json = {
        "previous": stored.to_json() if stored is not None else None,
        "current": shadow.to_json(),
        "timestamp": now,
    }
    if token is not None:
        for doc in (accepted, delta_doc, documents):
            if doc is not None:
                doc["clientToken"] = token
    if len(encode_answer(accepted)) > MAX_PAYLOAD_BYTES:
        # The answer echoes the request and times every leaf it sent, nulls included, so
        # it can pass the MQTT limit the request kept (12 bytes of deletion, 33 of answer):
        # no client could receive it, and the broker cuts the connection that sends it.
        raise ShadowError(413, "The payload exceeds the maximum size allowed", token)
    return UpdateResult(shadow, accepted, delta_doc, documents)


def encode_answer(document: Json) -> bytes:
    """The bytes an answer is published as (compact JSON), whose size the MQTT limit
    (MAX_PAYLOAD_BYTES) bounds."""
    return json.dumps(document, separators=(",", ":")).encode()


def _merge(stored: Json, meta: Json, patch: Json, now: int) -> tuple[Json, Json]:
    """Deep-merge *patch* into *stored*; null deletes; objects emptied by deletion vanish."""
    state = dict(stored)
    metadata = dict(meta)
    for key, value in patch.items():
        if value is None:
            state.pop(key, None)
            metadata.pop(key, None)
        elif isinstance(value, dict):
            previous = state.get(key)
            if isinstance(previous, dict):
                prev_meta = metadata.get(key)
                child, child_meta = _merge(
                    previous, prev_meta if isinstance(prev_meta, dict) else {}, value, now
                )
            else:
                child, child_meta = _merge({}, {}, value, now)
            if not child and value:
                state.pop(key, None)
                metadata.pop(key, None)
            else:
                state[key], metadata[key] = child, child_meta
        else:
            state[key] = value
            metadata[key] = _leaf_metadata(value, now)
    return state, metadata


def _leaf_metadata(value: Any, now: int) -> Any:
    if isinstance(value, dict):
        return {k: _leaf_metadata(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [_leaf_metadata(v, now) for v in value]
    return {"timestamp": now}


def _request_metadata(state: Json | None, now: int) -> Json:
    """Time every leaf sent; a null (a deletion) is timed like a leaf (spec Choice 3.2),
    ``"state": null`` included: IoT Core answers it with ``"metadata": {"timestamp": T}``."""
    if state is None:
        return {"timestamp": now}
    return {key: _leaf_metadata(value, now) for key, value in state.items()}


def compute_delta(desired: Json, reported: Json) -> Json:
    """Keys of *desired* whose value differs from *reported*; objects recurse, arrays do not."""
    delta: Json = {}
    for key, want in desired.items():
        if key not in reported:
            delta[key] = want
            continue
        have = reported[key]
        if isinstance(want, dict) and isinstance(have, dict):
            child = compute_delta(want, have)
            if child:
                delta[key] = child
        elif not same_value(want, have):
            delta[key] = want
    return delta


def _delta_metadata(delta: Json, desired_meta: Json) -> Json:
    out: Json = {}
    for key, value in delta.items():
        meta = desired_meta.get(key)
        if isinstance(value, dict) and isinstance(meta, dict):
            out[key] = _delta_metadata(value, meta)
        elif meta is not None:
            out[key] = meta
    return out


OPERATIONS = ("get", "update", "delete")
"""The request operations of a shadow topic (``$aws/things/<thing>/shadow[/name/<name>]/<op>``)."""


def parse_request_topic(topic: str) -> tuple[str, str | None, str] | None:
    """``(thing, shadow name or None, operation)`` of a request topic, else None."""
    parts = topic.split("/")
    if parts[:2] != ["$aws", "things"] or len(parts) not in (5, 7) or parts[3] != "shadow":
        return None
    if len(parts) == 7 and parts[4] != "name":
        return None
    operation = parts[-1]
    if operation not in OPERATIONS:
        return None
    return parts[2], (parts[5] if len(parts) == 7 else None), operation


def state_size(state: Mapping[str, Any]) -> int:
    """Compact UTF-8 bytes of desired plus reported, metadata excluded (the 8 KB limit)."""
    return sum(
        len(json.dumps(state[s], separators=(",", ":"), ensure_ascii=False).encode())
        for s in SECTIONS
        if s in state
    )


def get_document(shadow: Shadow, now: int, token: str | None = None) -> Json:
    """The ``/get/accepted`` payload: full state, delta only when non-empty."""
    state = sections_in_order(copy.deepcopy(shadow.state))
    delta = compute_delta(state.get("desired", {}), state.get("reported", {}))
    if delta:
        state["delta"] = delta
    doc: Json = {
        "state": state,
        "metadata": sections_in_order(copy.deepcopy(shadow.metadata)),
        "version": shadow.version,
        "timestamp": now,
    }
    if token is not None:
        doc["clientToken"] = token
    return doc


def delete_document(version: int, now: int, token: str | None = None) -> Json:
    doc: Json = {"version": version, "timestamp": now}
    if token is not None:
        doc["clientToken"] = token
    return doc


def delta_of(shadow: Shadow) -> Json:
    return compute_delta(shadow.state.get("desired", {}), shadow.state.get("reported", {}))
