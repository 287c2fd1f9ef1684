"""Load and validate CreateDetectorModel and CreateInput request bodies, exactly as AWS takes them.

Every error is a :class:`DetectorModelError` whose message starts with the source name and the
JSON path of the bad field, e.g. ``model.json: $.detectorModelDefinition.states[2].onInput.
events[0].condition: unknown input 'Temp' (expected: Pressure, Flow)``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cloud.detectors import expr as ex
from cloud.detectors.typed_fields import FieldValueError, typed_value
from edge.errors import DetectorModelError
from edge.user_files import nearest_name, read_document_text
from edge.user_files import parse_problem as json_problem

log = logging.getLogger(__name__)

NAME_RE: Final = re.compile(r"^[a-zA-Z0-9_-]+$")
INPUT_NAME_RE: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")
PLAIN_FIELD_RE: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")
PATH_FIELD_RE: Final = re.compile(r"[a-zA-Z0-9_-]+")
QUOTED_PATH_FIELD_RE: Final = re.compile(r"[a-zA-Z0-9_ -]+")
r"""A ``jsonPath`` or ``key`` segment, bare or in backticks: AWS's AttributeJsonPath pattern
``^((`[\w\- ]+`)|([\w\-]+))(\.((`[\w- ]+`)|([\w\-]+)))*$`` (so ``motor-id`` needs no
backticks there, though an expression must quote it)."""
KEY_VALUE_RE: Final = re.compile(r"^[a-zA-Z0-9\-_:]+$")

MAX_ATTRIBUTES: Final = 200
"""Attributes of one input (API reference, InputDefinition.attributes)."""
MIN_TIMER_S: Final = 60
MAX_TIMER_S: Final = 31_622_400
MAX_LENIENT_TIMER_S: Final = 100 * 365 * 86_400
"""A lenient model's longest timer (100 years): past AWS's 366 days, but one that could
never fire, whose expiry no date can show (year 9999 is datetime's last), is refused."""
SERVICE_ACTIONS: Final = (
    "sns",
    "iotTopicPublish",
    "lambda",
    "iotEvents",
    "sqs",
    "firehose",
    "dynamoDB",
    "dynamoDBv2",
    "iotSiteWise",
)
BUILTIN_ACTIONS: Final = ("setVariable", "setTimer", "resetTimer", "clearTimer")


@dataclass(frozen=True, slots=True)
class Limits:
    """AWS's structural limits (§8); applied in strict mode only.

    There is no limit on variables: CreateDetectorModel has none (AWS's own HVAC example sets
    14); the "10" once seen in an error came from BatchUpdateDetector.
    """

    states: int = 20
    events_per_state: int = 20
    transitions_per_state: int = 20
    actions_per_event: int = 10
    condition_chars: int = 512
    value_chars: int = 1024
    content_bytes: int = 1024


STRICT_LIMITS: Final = Limits()


@dataclass(frozen=True, slots=True)
class InputDefinition:
    """A CreateInput body: the name and the declared attribute paths."""

    name: str
    attributes: tuple[tuple[str, ...], ...]
    description: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


DeclaredTree = dict[str, "DeclaredTree | None"]
"""An input's declared attribute paths as a tree; None marks a declared attribute, whose
whole value (and every path below it) an expression may read."""


def declared_tree(attributes: Sequence[tuple[str, ...]]) -> DeclaredTree:
    tree: DeclaredTree = {}
    for path in sorted(attributes, key=len):
        node: DeclaredTree | None = tree
        for i, name in enumerate(path):
            if node is None:
                break  # below an attribute already declared whole
            if i == len(path) - 1:
                node[name] = None
            else:
                node = node.setdefault(name, {})
    return tree


def declared_view(payload: Mapping[str, Any], tree: DeclaredTree) -> dict[str, Any]:
    """What expressions may read of a message: its declared attributes and the paths below
    them (iotevents-contracts §1 Decision: an undeclared path is undefined at run time, as
    on AWS, where the input definition says what a detector receives). The key has been
    read before, from the whole message. Most messages hold only declared top-level
    fields, and come back as they are, not copied: the engines copy a message once, when
    they take it."""
    if all(name in tree and tree[name] is None for name in payload):
        return payload if isinstance(payload, dict) else dict(payload)
    view: dict[str, Any] = {}
    for name, below in tree.items():
        if name not in payload:
            continue
        value = payload[name]
        if below is None:
            view[name] = value
        elif isinstance(value, Mapping):
            view[name] = declared_view(value, below)
    return view


@dataclass(frozen=True, slots=True)
class Payload:
    """A custom action payload: ``contentExpression`` and ``type`` JSON or STRING."""

    content: ex.Expr
    content_text: str
    type: str


@dataclass(frozen=True, slots=True)
class Action:
    """One action object; ``kind`` is its single key, ``fields`` its raw body."""

    kind: str
    fields: Mapping[str, Any]
    path: str
    expressions: Mapping[str, ex.Expr] = field(default_factory=dict)
    """Compiled expression fields, by dotted field name (``value``, ``durationExpression`` ...)."""
    payload: Payload | None = None


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    condition: ex.Expr | None
    condition_text: str | None
    actions: tuple[Action, ...]
    path: str
    next_state: str | None = None


@dataclass(frozen=True, slots=True)
class State:
    name: str
    on_enter: tuple[Event, ...]
    on_input: tuple[Event, ...]
    transitions: tuple[Event, ...]
    on_exit: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class DetectorModel:
    """A validated CreateDetectorModel body with compiled expressions."""

    name: str
    initial_state: str
    states: Mapping[str, State]
    key: str | None
    key_path: tuple[str, ...] | None
    evaluation_method: str
    role_arn: str
    description: str = ""
    version: str = "1"
    source: str = "model"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    strict: bool = True
    """Loaded with AWS's structural limits (§8). A lenient model may also set timers
    outside 60-31,622,400 s (1 s to 100 years), and its engine runs them
    (:func:`timer_bounds`)."""

    def events(self) -> list[Event]:
        """Every event and transition event, in definition order."""
        out: list[Event] = []
        for state in self.states.values():
            out.extend(state.on_enter + state.on_input + state.transitions + state.on_exit)
        return out


def default_detector_paths() -> tuple[Path, Path]:
    """The shipped default model and input JSON: ``(equipment_anomaly.json, anomaly_results_input.json)``."""
    base = Path(__file__).with_name("models")
    return base / "equipment_anomaly.json", base / "anomaly_results_input.json"


# ---------------------------------------------------------------- JSON helpers


def without_nulls(value: Any) -> Any:
    """*value* with every object member whose value is JSON ``null`` left out.

    AWS's JSON protocol reads a null member as an absent one, and ``describe-*`` output and
    console exports print unset members as null (``"durationExpression": null`` beside
    ``seconds``), so a model that AWS took with them loads here too. Nulls inside arrays stay,
    and are reported where they are.
    """
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def _read(path_or_dict: str | os.PathLike[str] | Mapping[str, Any], what: str) -> tuple[Any, str]:
    if isinstance(path_or_dict, Mapping):
        try:
            return without_nulls(copy.deepcopy(dict(path_or_dict))), what
        except RecursionError:
            # a body parsed elsewhere (an artifact, an imported file) nested near the
            # parser's own limit: copying it needs more stack than parsing it did
            raise DetectorModelError(f"{what}: not usable JSON: nested too deeply") from None
    path = Path(path_or_dict)
    try:
        text = read_document_text(path)
    except FileNotFoundError:
        raise DetectorModelError(f"{path}: no such file") from None
    except OSError as exc:
        raise DetectorModelError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise DetectorModelError(f"{path}: {exc}") from None
    try:
        return without_nulls(json.loads(text)), path.name
    except json.JSONDecodeError as exc:
        raise DetectorModelError(
            f"{path.name}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        # a number of thousands of digits, or arrays nested past the parser's recursion
        raise DetectorModelError(f"{path.name}: not usable JSON: {json_problem(exc)}") from None


_LINE_BREAKS: Final = {ord(c): repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}
"""Every character ``str.splitlines`` breaks at, mapped to its escape (``\\n``)."""


def one_line(text: str) -> str:
    """*text* with its line breaks escaped: a JSON key or state name holding one is part of
    an error's path or message, and the error stays one line in a log or an API answer."""
    return text.translate(_LINE_BREAKS)


class _Ctx:
    def __init__(self, source: str, strict: bool, limits: Limits) -> None:
        self.source = source
        self.strict = strict
        self.limits = limits
        self.warnings: list[str] = []

    def error(self, path: str, message: str) -> DetectorModelError:
        return DetectorModelError(one_line(f"{self.source}: {path}: {message}"))

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected an object, got {_json_type(value)}")
        return value

    def array(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(path, f"expected an array, got {_json_type(value)}")
        return value

    def string(self, value: Any, path: str, *, min_len: int = 1, max_len: int | None = None) -> str:
        if not isinstance(value, str):
            raise self.error(path, f"expected a string, got {_json_type(value)}")
        if len(value) < min_len:
            raise self.error(path, "must not be empty")
        if max_len is not None and len(value) > max_len:
            raise self.error(path, f"{len(value)} characters; at most {max_len} allowed")
        return value

    def required(self, body: Mapping[str, Any], name: str, path: str) -> Any:
        if name not in body:
            raise self.error(path, f"missing required field '{name}'")
        return body[name]

    def unknown_fields(self, body: Mapping[str, Any], allowed: Sequence[str], path: str) -> None:
        """Refuse the first field the API does not define here, as AWS refuses the request
        (boto3's ParamValidationError, the service's validation error), with the defined
        name it most likely misspells."""
        for name in body:
            if name not in allowed:
                raise self.error(f"{path}.{name}", unknown_field(name, allowed))

    def expression(self, text: Any, path: str, *, max_len: int) -> ex.Expr:
        text = self.string(text, path)
        if self.strict and len(text) > max_len:
            raise self.error(path, f"{len(text)} characters; at most {max_len} allowed")
        try:
            return ex.parse(text)
        except ex.ExpressionError as exc:
            raise self.error(path, f"{exc.reason} at position {exc.position}") from None


def unknown_field(name: str, allowed: Sequence[str]) -> str:
    """What an error says of a field *name* that is none of *allowed*, after its path."""
    meant = nearest_name(name, allowed)
    hint = f"; did you mean {meant!r}?" if meant is not None else ""
    return f"unknown field{hint} (expected one of: {', '.join(allowed)})"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _split_json_path(text: str) -> tuple[str, ...] | None:
    """``a.b.`c d``` -> ("a", "b", "c d"); None if malformed."""
    parts: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "`":
            j = text.find("`", i + 1)
            if j <= i + 1 or not QUOTED_PATH_FIELD_RE.fullmatch(text[i + 1 : j]):
                return None
            parts.append(text[i + 1 : j])
            i = j + 1
        else:
            j = text.find(".", i)
            j = n if j < 0 else j
            seg = text[i:j]
            if not PATH_FIELD_RE.fullmatch(seg):
                return None
            parts.append(seg)
            i = j
        if i < n:
            if text[i] != ".":
                return None
            i += 1
            if i == n:
                return None
    return tuple(parts) if parts else None


# ---------------------------------------------------------------- inputs


def load_input(
    path_or_dict: str | os.PathLike[str] | Mapping[str, Any], *, source: str | None = None
) -> InputDefinition:
    """Load a CreateInput body (``inputName``, ``inputDefinition.attributes[].jsonPath``)."""
    body, name = _read(path_or_dict, source or "input")
    ctx = _Ctx(source or name, True, STRICT_LIMITS)
    body = ctx.obj(body, "$")
    ctx.unknown_fields(body, ("inputName", "inputDefinition", "inputDescription", "tags"), "$")
    input_name = ctx.string(ctx.required(body, "inputName", "$"), "$.inputName", max_len=128)
    if not INPUT_NAME_RE.fullmatch(input_name):
        raise ctx.error("$.inputName", f"{input_name!r} does not match ^[a-zA-Z][a-zA-Z0-9_]*$")
    definition = ctx.obj(ctx.required(body, "inputDefinition", "$"), "$.inputDefinition")
    attrs = ctx.array(
        ctx.required(definition, "attributes", "$.inputDefinition"),
        "$.inputDefinition.attributes",
    )
    if not attrs:
        raise ctx.error("$.inputDefinition.attributes", "at least one attribute is required")
    if len(attrs) > MAX_ATTRIBUTES:
        raise ctx.error(
            "$.inputDefinition.attributes",
            f"{len(attrs)} attributes; at most {MAX_ATTRIBUTES} allowed",
        )
    paths: list[tuple[str, ...]] = []
    for i, attr in enumerate(attrs):
        apath = f"$.inputDefinition.attributes[{i}]"
        attr = ctx.obj(attr, apath)
        json_path = ctx.string(
            ctx.required(attr, "jsonPath", apath), f"{apath}.jsonPath", max_len=128
        )
        parts = _split_json_path(json_path)
        if parts is None:
            raise ctx.error(
                f"{apath}.jsonPath",
                f"{json_path!r} is not a dot-separated field path"
                " (names of letters, digits, '_' or '-', no '$' or arrays;"
                " backticks around names with spaces)",
            )
        if parts in paths:
            raise ctx.error(f"{apath}.jsonPath", f"duplicate attribute {json_path!r}")
        paths.append(parts)
    description = ctx.string(
        body.get("inputDescription", ""), "$.inputDescription", min_len=0, max_len=1024
    )
    check_tags(ctx, body.get("tags"))
    return InputDefinition(input_name, tuple(paths), description, raw=body)


def check_tags(ctx: _Ctx, raw: Any) -> list[tuple[str, str]]:
    """``tags``: ``[{key (1-128 characters), value (0-256)}]``, as the API reference gives them."""
    if raw is None:
        return []
    out = []
    for i, item in enumerate(ctx.array(raw, "$.tags")):
        tpath = f"$.tags[{i}]"
        tag = ctx.obj(item, tpath)
        ctx.unknown_fields(tag, ("key", "value"), tpath)
        key = ctx.string(ctx.required(tag, "key", tpath), f"{tpath}.key", max_len=128)
        value = ctx.string(
            ctx.required(tag, "value", tpath), f"{tpath}.value", min_len=0, max_len=256
        )
        out.append((key, value))
    return out


# ---------------------------------------------------------------- detector models


CREATE_DETECTOR_MODEL_FIELDS: Final = (
    "detectorModelName",
    "detectorModelDefinition",
    "detectorModelDescription",
    "key",
    "roleArn",
    "tags",
    "evaluationMethod",
)
"""CreateDetectorModel's request fields (API reference); any other is refused."""


def load_detector_model(
    path_or_dict: str | os.PathLike[str] | Mapping[str, Any],
    *,
    strict: bool = True,
    limits: Limits = STRICT_LIMITS,
    source: str | None = None,
    references: bool = True,
) -> DetectorModel:
    """Load a CreateDetectorModel body and compile its expressions.

    Input references are checked by :func:`check_references`, since that needs the inputs.
    ``references=False`` skips the "used but never set" checks of variables and timers, so
    the analyzer can report every one of them (:func:`reference_problems`) instead of the
    first.
    """
    body, name = _read(path_or_dict, source or "model")
    ctx = _Ctx(source or name, strict, limits)
    body = ctx.obj(body, "$")
    refuse_wrappers(ctx, body)
    ctx.unknown_fields(body, CREATE_DETECTOR_MODEL_FIELDS, "$")
    model_name, role_arn, key, key_path = _name_role_key(ctx, body, "detectorModelName")
    check_tags(ctx, body.get("tags"))
    method = body.get("evaluationMethod", "BATCH")
    if method not in ("BATCH", "SERIAL"):
        raise ctx.error("$.evaluationMethod", f"{method!r}: expected BATCH or SERIAL")
    definition = ctx.obj(
        ctx.required(body, "detectorModelDefinition", "$"), "$.detectorModelDefinition"
    )
    dpath = "$.detectorModelDefinition"
    ctx.unknown_fields(definition, ("states", "initialStateName"), dpath)
    raw_states = ctx.array(ctx.required(definition, "states", dpath), f"{dpath}.states")
    if not raw_states:
        raise ctx.error(f"{dpath}.states", "at least one state is required")
    if strict and len(raw_states) > limits.states:
        raise ctx.error(
            f"{dpath}.states", f"{len(raw_states)} states; at most {limits.states} allowed"
        )
    initial = ctx.string(
        ctx.required(definition, "initialStateName", dpath), f"{dpath}.initialStateName"
    )
    states: dict[str, State] = {}
    for i, raw_state in enumerate(raw_states):
        state = _state(ctx, raw_state, f"{dpath}.states[{i}]")
        if state.name in states:
            raise ctx.error(f"{dpath}.states[{i}].stateName", f"duplicate state {state.name!r}")
        states[state.name] = state
    if initial not in states:
        raise ctx.error(
            f"{dpath}.initialStateName",
            f"unknown state {initial!r} (expected: {', '.join(states)})",
        )
    for i, state in enumerate(states.values()):
        for j, tr in enumerate(state.transitions):
            if tr.next_state not in states:
                raise ctx.error(
                    f"{dpath}.states[{i}].onInput.transitionEvents[{j}].nextState",
                    f"unknown state {tr.next_state!r} (expected: {', '.join(states)})",
                )
    model = DetectorModel(
        name=model_name,
        initial_state=initial,
        states=states,
        key=key,
        key_path=key_path,
        evaluation_method=method,
        role_arn=role_arn,
        description=ctx.string(
            body.get("detectorModelDescription", ""),
            "$.detectorModelDescription",
            min_len=0,
            max_len=1024,
        ),
        source=ctx.source,
        raw=body,
        strict=strict,
    )
    _check_variable_types(ctx, model)
    _check_condition_types(ctx, model)
    _check_attribute_types(ctx, model)
    if references:
        problems = reference_problems(model)
        if problems:
            raise ctx.error(*problems[0])
    return model


_OTHER_KIND: Final = {
    "detector": ("alarmModelName", "a CreateAlarmModel body", "plantwatch alarms validate"),
    "alarm": ("detectorModelName", "a CreateDetectorModel body", "plantwatch detectors validate"),
}
"""For each kind of model, the name field of the other kind, what it is and what validates it."""


def refuse_wrappers(ctx: _Ctx, body: Mapping[str, Any], kind: str = "detector") -> None:
    """A CloudFormation template, describe-* output or the other kind of model given where
    a Create body of *kind* (``detector`` or ``alarm``) goes: say which command takes it,
    rather than "unknown field"."""
    field, what, command = _OTHER_KIND[kind]
    if field in body and f"{kind}ModelName" not in body and "alarmModelArn" not in body:
        raise ctx.error(
            f"$.{field}",
            f"{what}, not a {kind} model: `{command}` takes it",
        )
    if "Resources" in body:
        raise ctx.error(
            "$.Resources",
            "a CloudFormation template, not a Create body: put it in a folder and run"
            " `plantwatch import iotevents FOLDER`, which takes its AWS::IoTEvents resources",
        )
    for wrapper in ("detectorModel", "input"):
        if isinstance(body.get(wrapper), dict):
            raise ctx.error(
                f"$.{wrapper}",
                "describe-* output, not a Create body: put it in a folder and run"
                " `plantwatch import iotevents FOLDER`, which unwraps it",
            )
    if "alarmModelArn" in body:  # describe-alarm-model prints the body with these beside it
        raise ctx.error(
            "$.alarmModelArn",
            "describe-alarm-model output, not a Create body: put it in a folder and run"
            " `plantwatch import iotevents FOLDER`, which drops the fields AWS added",
        )


def _name_role_key(
    ctx: _Ctx, body: Mapping[str, Any], name_field: str
) -> tuple[str, str, str | None, tuple[str, ...] | None]:
    """The model's name, role and optional key path, as detector and alarm models share them."""
    name = ctx.string(ctx.required(body, name_field, "$"), f"$.{name_field}", max_len=128)
    if not NAME_RE.fullmatch(name):
        raise ctx.error(f"$.{name_field}", f"{name!r} does not match ^[a-zA-Z0-9_-]+$")
    role_arn = ctx.string(ctx.required(body, "roleArn", "$"), "$.roleArn", max_len=2048)
    key: str | None = None
    key_path: tuple[str, ...] | None = None
    if "key" in body:
        key = ctx.string(body["key"], "$.key", max_len=128)
        key_path = _split_json_path(key)
        if key_path is None:
            raise ctx.error(
                "$.key",
                f"{key!r} is not a dot-separated field path (names of letters, digits,"
                " '_' or '-'; backticks around names with spaces)",
            )
    return name, role_arn, key, key_path


def _state(ctx: _Ctx, raw: Any, path: str) -> State:
    raw = ctx.obj(raw, path)
    ctx.unknown_fields(raw, ("stateName", "onEnter", "onInput", "onExit"), path)
    name = ctx.string(ctx.required(raw, "stateName", path), f"{path}.stateName", max_len=128)
    on_enter = _group(ctx, raw.get("onEnter"), f"{path}.onEnter", transitions=False)
    on_exit = _group(ctx, raw.get("onExit"), f"{path}.onExit", transitions=False)
    on_input: tuple[Event, ...] = ()
    transitions: tuple[Event, ...] = ()
    if raw.get("onInput") is not None:
        ipath = f"{path}.onInput"
        body = ctx.obj(raw["onInput"], ipath)
        ctx.unknown_fields(body, ("events", "transitionEvents"), ipath)
        on_input = _events(ctx, body.get("events"), f"{ipath}.events", transition=False)
        transitions = _events(
            ctx, body.get("transitionEvents"), f"{ipath}.transitionEvents", transition=True
        )
    return State(name, on_enter, on_input, transitions, on_exit)


def _group(ctx: _Ctx, raw: Any, path: str, *, transitions: bool) -> tuple[Event, ...]:
    if raw is None:
        return ()
    body = ctx.obj(raw, path)
    ctx.unknown_fields(body, ("events",), path)
    return _events(ctx, body.get("events"), f"{path}.events", transition=transitions)


def _events(ctx: _Ctx, raw: Any, path: str, *, transition: bool) -> tuple[Event, ...]:
    if raw is None:
        return ()
    items = ctx.array(raw, path)
    limit = ctx.limits.transitions_per_state if transition else ctx.limits.events_per_state
    if ctx.strict and len(items) > limit:
        raise ctx.error(path, f"{len(items)} entries; at most {limit} allowed")
    events: list[Event] = []
    for i, item in enumerate(items):
        epath = f"{path}[{i}]"
        body = ctx.obj(item, epath)
        allowed = ("eventName", "condition", "actions") + (("nextState",) if transition else ())
        ctx.unknown_fields(body, allowed, epath)
        name = ctx.string(
            ctx.required(body, "eventName", epath), f"{epath}.eventName", min_len=0, max_len=128
        )
        condition: ex.Expr | None = None
        condition_text: str | None = None
        if transition and "condition" not in body:
            raise ctx.error(epath, "missing required field 'condition'")
        if "condition" in body:
            condition_text = ctx.string(body["condition"], f"{epath}.condition")
            condition = ctx.expression(
                condition_text, f"{epath}.condition", max_len=ctx.limits.condition_chars
            )
            kind = ex.static_type(condition)
            if kind not in ("boolean", "unknown"):
                raise ctx.error(f"{epath}.condition", f"must be Boolean, not {kind}")
        next_state = None
        if transition:
            next_state = ctx.string(
                ctx.required(body, "nextState", epath), f"{epath}.nextState", max_len=128
            )
        actions = _actions(ctx, body.get("actions"), f"{epath}.actions")
        events.append(Event(name, condition, condition_text, actions, epath, next_state))
    return tuple(events)


def _actions(ctx: _Ctx, raw: Any, path: str) -> tuple[Action, ...]:
    if raw is None:
        return ()
    items = ctx.array(raw, path)
    if ctx.strict and len(items) > ctx.limits.actions_per_event:
        raise ctx.error(
            path, f"{len(items)} actions; at most {ctx.limits.actions_per_event} allowed"
        )
    return tuple(_action(ctx, item, f"{path}[{i}]") for i, item in enumerate(items))


def _action(ctx: _Ctx, raw: Any, path: str) -> Action:
    body = ctx.obj(raw, path)
    if len(body) != 1:
        raise ctx.error(
            path, f"an action holds exactly one action key, found {len(body)}: {', '.join(body)}"
        )
    kind, fields_raw = next(iter(body.items()))
    apath = f"{path}.{kind}"
    if kind not in BUILTIN_ACTIONS + SERVICE_ACTIONS:
        raise ctx.error(
            apath,
            f"unknown action (expected one of: {', '.join(BUILTIN_ACTIONS + SERVICE_ACTIONS)})",
        )
    fields = ctx.obj(fields_raw, apath)
    exprs: dict[str, ex.Expr] = {}
    vmax = ctx.limits.value_chars

    def need(name: str, *, max_len: int | None = None) -> str:
        return ctx.string(ctx.required(fields, name, apath), f"{apath}.{name}", max_len=max_len)

    payload: Payload | None = None
    if kind == "setVariable":
        ctx.unknown_fields(fields, ("variableName", "value"), apath)
        name = need("variableName", max_len=128)
        if not PLAIN_FIELD_RE.fullmatch(name):
            raise ctx.error(
                f"{apath}.variableName", f"{name!r} does not match ^[a-zA-Z][a-zA-Z0-9_]*$"
            )
        exprs["value"] = ctx.expression(need("value"), f"{apath}.value", max_len=vmax)
    elif kind == "setTimer":
        ctx.unknown_fields(fields, ("timerName", "seconds", "durationExpression"), apath)
        need("timerName", max_len=128)
        has_seconds = "seconds" in fields
        has_expr = "durationExpression" in fields
        if has_seconds == has_expr:
            raise ctx.error(apath, "exactly one of 'seconds' or 'durationExpression' is required")
        if has_seconds:
            seconds = fields["seconds"]
            if not isinstance(seconds, int) or isinstance(seconds, bool):
                raise ctx.error(
                    f"{apath}.seconds", f"expected an integer, got {_json_type(seconds)}"
                )
            _timer_range(ctx, seconds, f"{apath}.seconds")
        else:
            duration = ctx.expression(
                fields["durationExpression"], f"{apath}.durationExpression", max_len=vmax
            )
            if isinstance(duration, ex.Literal):
                number = _coerce_number(duration.value)
                if number is None or not math.isfinite(number):
                    raise ctx.error(f"{apath}.durationExpression", "must be a number of seconds")
                _timer_range(ctx, int(number), f"{apath}.durationExpression")
            exprs["durationExpression"] = duration
    elif kind in ("resetTimer", "clearTimer"):
        ctx.unknown_fields(fields, ("timerName",), apath)
        need("timerName", max_len=128)
    else:
        payload = _service_fields(ctx, kind, fields, apath, exprs)
    return Action(kind, fields, apath, exprs, payload)


def timer_bounds(strict: bool) -> tuple[int, int]:
    """The timer durations a model may set: AWS's 60-31,622,400 s in strict mode (§8, a
    structural limit), any whole number of seconds from 1 to 100 years otherwise."""
    return (MIN_TIMER_S, MAX_TIMER_S) if strict else (1, MAX_LENIENT_TIMER_S)


def timer_range_problem(strict: bool, seconds: int) -> str | None:
    """Why a timer of *seconds* cannot be set (``"30 s; a timer must be 60-31622400 s"``),
    or None when it can: what the loader says of a literal, the engine of a computed one."""
    low, high = timer_bounds(strict)
    if low <= seconds <= high:
        return None
    if strict:
        return f"{seconds} s; a timer must be {MIN_TIMER_S}-{MAX_TIMER_S} s"
    if seconds < low:
        return f"{seconds} s; a timer must be at least {low} s"
    return f"{seconds} s; a timer must be at most {high} s (100 years)"


def _timer_range(ctx: _Ctx, seconds: int, path: str) -> None:
    problem = timer_range_problem(ctx.strict, seconds)
    if problem is not None:
        raise ctx.error(path, problem)


def _coerce_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return ex.decimal_text(value)
    return None


_SERVICE_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "sns": ("targetArn",),
    "iotTopicPublish": ("mqttTopic",),
    "lambda": ("functionArn",),
    "iotEvents": ("inputName",),
    "sqs": ("queueUrl", "useBase64"),
    "firehose": ("deliveryStreamName", "separator"),
    "dynamoDB": (
        "hashKeyField",
        "hashKeyValue",
        "hashKeyType",
        "rangeKeyField",
        "rangeKeyValue",
        "rangeKeyType",
        "operation",
        "payloadField",
        "tableName",
    ),
    "dynamoDBv2": ("tableName",),
    "iotSiteWise": ("propertyAlias", "assetId", "propertyId", "entryId", "propertyValue"),
}
_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "sns": ("targetArn",),
    "iotTopicPublish": ("mqttTopic",),
    "lambda": ("functionArn",),
    "iotEvents": ("inputName",),
    "sqs": ("queueUrl",),
    "firehose": ("deliveryStreamName",),
    "dynamoDB": ("hashKeyField", "hashKeyValue", "tableName"),
    "dynamoDBv2": ("tableName",),
    "iotSiteWise": (),
}
_EXPR_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "dynamoDB": (
        "hashKeyField",
        "hashKeyValue",
        "hashKeyType",
        "rangeKeyField",
        "rangeKeyValue",
        "rangeKeyType",
        "operation",
        "payloadField",
        "tableName",
    ),
    "dynamoDBv2": ("tableName",),
    "iotSiteWise": ("propertyAlias", "assetId", "propertyId", "entryId"),
}


def _service_fields(
    ctx: _Ctx, kind: str, fields: dict[str, Any], apath: str, exprs: dict[str, ex.Expr]
) -> Payload | None:
    ctx.unknown_fields(fields, (*_SERVICE_FIELDS[kind], "payload"), apath)
    for name in _REQUIRED[kind]:
        ctx.string(ctx.required(fields, name, apath), f"{apath}.{name}")
    for name in _EXPR_FIELDS.get(kind, ()):
        if name in fields:
            exprs[name] = ctx.expression(
                fields[name], f"{apath}.{name}", max_len=ctx.limits.value_chars
            )
    if kind == "sns" and str(fields["targetArn"]).endswith(".fifo"):
        raise ctx.error(f"{apath}.targetArn", "FIFO topics are not supported by the sns action")
    if kind == "sqs" and str(fields["queueUrl"]).endswith(".fifo"):
        raise ctx.error(f"{apath}.queueUrl", "FIFO queues are not supported by the sqs action")
    if kind == "iotTopicPublish":
        ctx.string(fields["mqttTopic"], f"{apath}.mqttTopic", max_len=128)
        exprs["mqttTopic"] = _topic_expression(ctx, fields["mqttTopic"], f"{apath}.mqttTopic")
    if kind == "iotEvents" and not INPUT_NAME_RE.fullmatch(fields["inputName"]):
        raise ctx.error(f"{apath}.inputName", f"{fields['inputName']!r} is not an input name")
    if kind == "sqs" and not isinstance(fields.get("useBase64", False), bool):
        raise ctx.error(f"{apath}.useBase64", "expected a boolean")
    if kind == "firehose" and fields.get("separator", "\n") not in ("\n", "\t", "\r\n", ","):
        raise ctx.error(f"{apath}.separator", "expected one of '\\n', '\\t', '\\r\\n', ','")
    if kind == "iotSiteWise":
        _sitewise(ctx, fields, apath, exprs)
    for name, node in exprs.items():
        if isinstance(node, ex.Literal):
            try:
                typed_value(kind, name, node.value)
            except FieldValueError as exc:
                raise ctx.error(f"{apath}.{name}", str(exc)) from None
    if "payload" not in fields:
        return None
    ppath = f"{apath}.payload"
    body = ctx.obj(fields["payload"], ppath)
    ctx.unknown_fields(body, ("contentExpression", "type"), ppath)
    content_text = ctx.string(
        ctx.required(body, "contentExpression", ppath), f"{ppath}.contentExpression"
    )
    if ctx.strict and len(content_text.encode()) > ctx.limits.content_bytes:
        raise ctx.error(
            f"{ppath}.contentExpression",
            f"{len(content_text.encode())} bytes; at most {ctx.limits.content_bytes} allowed",
        )
    content = ctx.expression(content_text, f"{ppath}.contentExpression", max_len=10**9)
    ptype = ctx.required(body, "type", ppath)
    if ptype not in ("JSON", "STRING"):
        raise ctx.error(f"{ppath}.type", f"{ptype!r}: expected JSON or STRING")
    content_type = ex.static_type(content)
    if ptype == "JSON" and content_type in ("integer", "decimal", "boolean"):
        # AWS's analysis refuses it: "The defined payload type is JSON, so you must specify
        # an expression that AWS IoT Events would evaluate to a string ... The evaluated
        # result can't be a Boolean or number." (analyze-diagnostic-information)
        raise ctx.error(
            f"{ppath}.contentExpression",
            "a JSON payload must evaluate to a string holding JSON, not "
            + ("Boolean" if content_type == "boolean" else content_type)
            + ": write it as one, e.g. '{\"value\": ${...}}'",
        )
    if kind == "dynamoDBv2" and ptype != "JSON":
        raise ctx.error(
            f"{ppath}.type", f"{ptype!r}: a dynamoDBv2 payload must be JSON (one column per key)"
        )
    return Payload(content, content_text, ptype)


_TEMPLATES_RE: Final = re.compile(r"\$\{[^}]*\}")
"""A ``${...}`` template in a topic; its expression may hold quoted strings."""


def _topic_expression(ctx: _Ctx, topic: str, path: str) -> ex.Expr:
    """§4 Decision: an expression if it parses as a string one, else literal with ``${}``."""
    try:
        parsed = ex.parse(topic)
    except ex.ExpressionError:
        parsed = None
    if parsed is not None and ex.static_type(parsed) in ("string", "unknown"):
        return parsed
    if "'" in _TEMPLATES_RE.sub("", topic):
        return ex.Literal(topic)  # a quote outside any ${}: no string literal can hold it
    try:
        return ex.parse("'" + topic + "'")
    except ex.ExpressionError as exc:
        raise ctx.error(path, f"bad ${{}} template: {exc.reason}") from None


def _sitewise(ctx: _Ctx, fields: dict[str, Any], apath: str, exprs: dict[str, ex.Expr]) -> None:
    if "propertyAlias" not in fields and not ("assetId" in fields and "propertyId" in fields):
        raise ctx.error(apath, "needs 'propertyAlias' or both 'assetId' and 'propertyId'")
    value = ctx.obj(ctx.required(fields, "propertyValue", apath), f"{apath}.propertyValue")
    vpath = f"{apath}.propertyValue"
    ctx.unknown_fields(value, ("value", "timestamp", "quality"), vpath)
    inner = ctx.obj(ctx.required(value, "value", vpath), f"{vpath}.value")
    variants = ("stringValue", "integerValue", "doubleValue", "booleanValue")
    ctx.unknown_fields(inner, variants, f"{vpath}.value")
    kinds = [k for k in variants if k in inner]
    if len(kinds) != 1:
        raise ctx.error(
            f"{vpath}.value",
            "exactly one of stringValue, integerValue, doubleValue, booleanValue is required",
        )
    exprs[f"propertyValue.value.{kinds[0]}"] = ctx.expression(
        inner[kinds[0]], f"{vpath}.value.{kinds[0]}", max_len=ctx.limits.value_chars
    )
    if "quality" in value:
        exprs["propertyValue.quality"] = ctx.expression(
            value["quality"], f"{vpath}.quality", max_len=ctx.limits.value_chars
        )
    if "timestamp" in value:
        ts = ctx.obj(value["timestamp"], f"{vpath}.timestamp")
        ctx.unknown_fields(ts, ("timeInSeconds", "offsetInNanos"), f"{vpath}.timestamp")
        ctx.required(ts, "timeInSeconds", f"{vpath}.timestamp")
        for name in ("timeInSeconds", "offsetInNanos"):
            if name in ts:
                exprs[f"propertyValue.timestamp.{name}"] = ctx.expression(
                    ts[name], f"{vpath}.timestamp.{name}", max_len=ctx.limits.value_chars
                )


def _check_variable_types(ctx: _Ctx, model: DetectorModel) -> None:
    """A variable has one type: every setVariable of it gives the same type family
    (arithmetic gives a number whatever it reads: :func:`value_family`)."""
    var_types: dict[str, tuple[str, str]] = {}
    for event in model.events():
        for action in event.actions:
            if action.kind != "setVariable":
                continue
            name = action.fields["variableName"]
            kind = value_family(action.expressions["value"])
            if kind is None:
                continue
            first = var_types.setdefault(name, (kind, action.path))
            if first[0] != kind:
                raise ctx.error(
                    f"{action.path}.value",
                    f"variable '{name}' is set to a {kind} here and a {first[0]}"
                    f" at {first[1]}; a variable has one type",
                )


def value_family(node: ex.Expr, variables: Mapping[str, str] | None = None) -> str | None:
    """The type family (``number``, ``string``, ``boolean``) of every value *node* can give
    besides undefined, or None when the data decides. Arithmetic gives numbers whatever its
    operands (undefined when they are not numbers), ``+`` strings only from two strings, and a
    variable reference the family *variables* gives it (:func:`variable_families`)."""
    if isinstance(node, ex.VariableRef):
        return (variables or {}).get(node.name)
    if isinstance(node, ex.Binary) and node.op in ("-", "*", "/"):
        return "number"
    if isinstance(node, ex.Binary) and node.op == "+":
        left, right = value_family(node.left, variables), value_family(node.right, variables)
        if left == right == "string":
            return "string"
        return "number" if "number" in (left, right) else None
    if isinstance(node, ex.Unary) and node.op == "-":
        return "number"
    return _type_family(ex.static_type(node))


def variable_families(model: DetectorModel) -> dict[str, str]:
    """The type family of each variable that every setVariable of it fixes to one family.

    A variable set from data (``$input.In.v``) anywhere is left out: it may hold anything.
    Values computed from other variables count once those are known (to a fixed point)."""
    setters = [
        (action.fields["variableName"], action.expressions["value"])
        for event in model.events()
        for action in event.actions
        if action.kind == "setVariable"
    ]
    families: dict[str, str] = {}
    for _ in range(len(setters) + 1):
        seen: dict[str, set[str]] = {}
        for name, node in setters:
            seen.setdefault(name, set()).add(value_family(node, families) or "unknown")
        known = {name: kinds.pop() for name, kinds in seen.items() if len(kinds) == 1}
        known = {name: kind for name, kind in known.items() if kind != "unknown"}
        if known == families:
            break
        families = known
    return families


def _check_condition_types(ctx: _Ctx, model: DetectorModel) -> None:
    """A condition the model makes a number or a string is refused (spec §3: conditions are
    Boolean), as a literal one is: ``$variable.count`` where every setVariable of ``count``
    gives a number would otherwise count as false at every evaluation, silently."""
    families = variable_families(model)
    for state in model.states.values():
        for event in state.on_enter + state.on_input + state.transitions + state.on_exit:
            if event.condition is None:
                continue
            family = value_family(event.condition, families)
            if family not in ("number", "string"):
                continue
            if isinstance(event.condition, ex.VariableRef):
                why = f"variable '{event.condition.name}' is only ever set to a {family}"
            else:
                why = f"it gives a {family} (or undefined), never a Boolean"
            raise ctx.error(
                f"{event.path}.condition",
                f"must be Boolean, not {family}: {why}"
                f" (state {state.name!r}, event {event.name!r})",
            )


def _check_attribute_types(ctx: _Ctx, model: DetectorModel) -> None:
    """An input attribute has one type (spec §3 creation checks; AWS's expressions page: the
    data types a reference takes part in must be compatible). Only what an attribute's place
    makes certain counts: an operand of ``- * / & | ^``, of ``+`` or a comparison beside a
    literal, of ``!``, ``&&``, ``||``, an argument of the string or bitwise functions, and a
    condition that is the attribute alone."""
    first: dict[tuple[str, tuple[str | int, ...]], tuple[str, str]] = {}
    for event in model.events():
        for expr_path, node in _event_expressions(event):
            demands = attribute_demands(node)
            if isinstance(node, ex.InputRef) and expr_path == f"{event.path}.condition":
                demands.insert(0, (node, "boolean"))  # a bare condition is tested as a Boolean
            for ref, family in demands:
                name = (ref.input_name, ref.path)
                seen = first.setdefault(name, (family, expr_path))
                if seen[0] != family:
                    shown = ".".join(str(p) for p in (ref.input_name, *ref.path))
                    raise ctx.error(
                        expr_path,
                        f"input attribute '{shown}' is used as a {family} here and as a"
                        f" {seen[0]} at {seen[1]}; an attribute has one type",
                    )


def attribute_demands(node: ex.Expr) -> list[tuple[ex.InputRef, str]]:
    """``(reference, number|string|boolean)`` for each input reference whose type its place in
    *node* fixes; references in other places are left out."""
    out: list[tuple[ex.InputRef, str]] = []
    stack: list[ex.Expr | str] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ex.Binary):
            for side, other in ((n.left, n.right), (n.right, n.left)):
                if isinstance(side, ex.InputRef):
                    family = _operand_family(n.op, other)
                    if family is not None:
                        out.append((side, family))
            stack.extend((n.right, n.left))
        elif isinstance(n, ex.Unary):
            if isinstance(n.operand, ex.InputRef):
                out.append((n.operand, "boolean" if n.op == "!" else "number"))
            stack.append(n.operand)
        elif isinstance(n, ex.Call):
            family = (
                "string"
                if n.name in ("startsWith", "endsWith", "contains")
                else "number"
                if n.name.startswith("bit")
                else None
            )
            for arg in n.args:
                if family is not None and isinstance(arg, ex.InputRef):
                    out.append((arg, family))
            stack.extend(reversed(n.args))
        elif isinstance(n, ex.Template):
            stack.extend(reversed(n.parts))
    return out


def _operand_family(op: str, other: ex.Expr) -> str | None:
    if op in ("-", "*", "/", "&", "|", "^"):
        return "number"
    if op in ("&&", "||"):
        return "boolean"
    if op in ("+", "==", "!=", "<", "<=", ">", ">=") and isinstance(other, ex.Literal):
        kind = _type_family(ex.static_type(other))
        if op == "+" and kind == "boolean":
            return None
        return kind
    if op == "+" and isinstance(other, ex.Template):
        return "string"
    return None


def set_names(model: DetectorModel) -> tuple[set[str], set[str]]:
    """Names of the variables and timers some setVariable or setTimer action sets."""
    variables: set[str] = set()
    timers: set[str] = set()
    for event in model.events():
        for action in event.actions:
            if action.kind == "setVariable":
                variables.add(action.fields["variableName"])
            elif action.kind == "setTimer":
                timers.add(action.fields["timerName"])
    return variables, timers


def reference_problems(model: DetectorModel) -> list[tuple[str, str]]:
    """``(json path, message)`` for each variable or timer used but never set, in order."""
    set_vars, set_timers = set_names(model)
    problems: list[tuple[str, str]] = []
    for event in model.events():
        for expr_path, node in _event_expressions(event):
            for ref in ex.references(node):
                if isinstance(ref, ex.VariableRef) and ref.name not in set_vars:
                    problems.append(
                        (expr_path, f"variable '{ref.name}' is never set by a setVariable action")
                    )
                if (
                    isinstance(ref, ex.Call)
                    and ref.name == "timeout"
                    and isinstance(ref.args[0], ex.Literal)
                    and ref.args[0].value not in set_timers
                ):
                    problems.append(
                        (
                            expr_path,
                            f"timer {ref.args[0].value!r} is never set by a setTimer action",
                        )
                    )
        for action in event.actions:
            if (
                action.kind in ("resetTimer", "clearTimer")
                and action.fields["timerName"] not in set_timers
            ):
                problems.append(
                    (
                        f"{action.path}.timerName",
                        f"timer {action.fields['timerName']!r} is never set by a setTimer action",
                    )
                )
    return problems


def _type_family(kind: str) -> str | None:
    """Integers and decimals mix; other known types are distinct; unknown is not checked."""
    if kind in ("integer", "decimal"):
        return "number"
    return kind if kind in ("string", "boolean") else None


def _event_expressions(event: Event) -> list[tuple[str, ex.Expr]]:
    out: list[tuple[str, ex.Expr]] = []
    if event.condition is not None:
        out.append((f"{event.path}.condition", event.condition))
    for action in event.actions:
        for name, node in action.expressions.items():
            out.append((f"{action.path}.{name}", node))
        if action.payload is not None:
            out.append((f"{action.path}.payload.contentExpression", action.payload.content))
    return out


def inputs_read(node: ex.Expr) -> set[str]:
    """Inputs *node* reads: ``$input.<Input>...`` and ``currentInput("<Input>")``."""
    read: set[str] = set()
    for ref in ex.references(node):
        if isinstance(ref, ex.InputRef):
            read.add(ref.input_name)
        elif isinstance(ref, ex.Call) and ref.name == "currentInput":
            arg = ref.args[0]
            if isinstance(arg, ex.Literal) and isinstance(arg.value, str):
                read.add(arg.value)
    return read


def used_inputs(model: DetectorModel) -> set[str]:
    """Inputs a model references anywhere; messages on other inputs are not routed to it."""
    return {
        name
        for event in model.events()
        for _path, node in _event_expressions(event)
        for name in inputs_read(node)
    }


def check_references(
    model: DetectorModel, inputs: Sequence[InputDefinition], *, analysis: bool = False
) -> list[str]:
    """Check every ``$input`` reference against *inputs*; return warnings. ``analysis=True``
    leaves AWS's no-input-in-a-condition error to the analyzer, which reports it as its
    finding.

    An unknown input is an error, and so is a model that reads no input at all (no message
    would reach it). A path no attribute of that input declares is allowed with a warning
    (§1 Decision), whether it diverges at the top-level field or below it, and reads
    undefined at run time, even when a message carries it: of input references, AWS
    refuses only those to inputs that do not exist (its analyzer's ``referenced-resource``),
    and its own samples read undeclared fields. A model that reads its input only outside
    conditions is refused, as AWS's structure check refuses it, unless it is lenient:
    messages reach it, so it runs then, with a warning.
    """
    expressions = [item for event in model.events() for item in _event_expressions(event)]
    warnings, read = check_input_references(model.source, expressions, inputs)
    if not used_inputs(model):
        # AWS refuses any model without an input in a condition; one that reads no input at
        # all would also never get a message here (§1: routed to the models using its input)
        raise DetectorModelError(
            f"{model.source}: $.detectorModelDefinition: no expression reads an input"
            ' ($input.<Input>.<path> or currentInput("<Input>")), so no message would ever'
            " reach the model; AWS requires an input in at least one condition"
        )
    if not any(path.endswith(".condition") for path in read):
        if model.strict and not analysis:  # AWS's structure check, with its message
            raise DetectorModelError(
                f"{model.source}: $.detectorModelDefinition: Detector Model Definition must"
                " use at least one Input in a condition (the model reads its input only in"
                " actions; --lenient runs it anyway)"
            )
        warnings.append(f"{model.source}: no condition references an input")
    return warnings


def check_input_references(
    source: str,
    expressions: Sequence[tuple[str, ex.Expr]],
    inputs: Sequence[InputDefinition],
) -> tuple[list[str], list[str]]:
    """:func:`check_references` for any ``(json path, expression)`` pairs (alarm models too).

    Returns the warnings and the paths of the expressions that read an input.
    """
    by_name = {i.name: i for i in inputs}
    warnings: list[str] = []
    reading: list[str] = []
    expected = ", ".join(by_name) or "none; no input definitions were given"
    for expr_path, node in expressions:
        for ref in ex.references(node):
            names: list[tuple[str, tuple[str | int, ...] | None]] = []
            if isinstance(ref, ex.InputRef):
                names.append((ref.input_name, ref.path))
            elif (
                isinstance(ref, ex.Call)
                and ref.name == "currentInput"
                and isinstance(ref.args[0], ex.Literal)
            ):
                names.append((str(ref.args[0].value), None))
            for input_name, path in names:
                reading.append(expr_path)
                definition = by_name.get(input_name)
                if definition is None:
                    raise DetectorModelError(
                        f"{source}: {expr_path}: unknown input {input_name!r}"
                        f" (expected: {expected})"
                    )
                if path is None:
                    continue
                fields = tuple(p for p in path if isinstance(p, str))
                declared = definition.attributes
                if not any(_related(d, fields) for d in declared):
                    warnings.append(
                        f"{source}: {expr_path}: {input_name}.{'.'.join(fields)}"
                        " is not a declared attribute; it reads undefined at run time,"
                        " even when a message carries it"
                    )
    return warnings, reading


def _related(declared: tuple[str, ...], used: tuple[str, ...]) -> bool:
    n = min(len(declared), len(used))
    return declared[:n] == used[:n]
