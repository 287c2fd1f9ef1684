"""IoT Events resources of a CloudFormation template (JSON), as the API bodies they create.

A detector model, input or alarm model written as ``AWS::IoTEvents::*`` resources (by hand,
by SAM, or synthesized by the CDK) uses the same fields as CreateDetectorModel and friends in
PascalCase (``DetectorModelDefinition.States[].OnInput.TransitionEvents[].NextState``). Each
one becomes the camelCase body AWS's API takes, so it is validated and run like any other:

- keys: first letter lowered (``IotTopicPublish`` -> ``iotTopicPublish``, ``DynamoDBv2`` ->
  ``dynamoDBv2``); values are left as they are;
- ``Ref``: the value given for a parameter (``--parameter NAME=VALUE``, as ``aws
  cloudformation deploy --parameter-overrides`` takes it), else its ``Default``; the value
  given for a pseudo parameter, else a stand-in (:data:`PSEUDO`) that the resource's notes
  name when it is the stack's own (name, Region, account); or the name of an
  ``AWS::IoTEvents::Input`` resource (its ``InputName``, else its logical id, as the CDK's
  ``currentInput("${input.inputName}")`` needs); ``Fn::Join``, ``Fn::Sub`` and ``Fn::GetAtt``
  (an ``Arn`` attribute becomes ``cloudformation:<LogicalId>.Arn``, the ARN to register a
  ``--lambda`` for) are evaluated; any other function is an error naming where it is;
- a resource without a name gets its logical id (CloudFormation would generate one);
- ``"60"`` for ``Seconds``/``Severity`` and ``"true"``/``"false"`` for ``UseBase64``,
  ``Enabled`` and ``DisabledOnInitialization`` are typed, as CloudFormation types them; a
  number for an alarm rule's ``Threshold`` (a String) is its text, as CloudFormation passes it.

A YAML template is read by :mod:`cloud.migrate.cfn_yaml` into this same JSON shape (its
short forms ``!Ref``, ``!Sub`` ... in their long form), so everything here applies to it.
In either, a key written twice in one mapping is refused naming it and its lines
(:func:`load_json`), as cfn-lint refuses it; CloudFormation would take the last silently.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from edge.errors import UserError

TYPES: Final = {
    "AWS::IoTEvents::DetectorModel": ("model", "DetectorModelName"),
    "AWS::IoTEvents::Input": ("input", "InputName"),
    "AWS::IoTEvents::AlarmModel": ("alarm", "AlarmModelName"),
}
PSEUDO: Final = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "stack",
    "AWS::NoValue": None,
}
GIVEN: Final = frozenset(PSEUDO) - {"AWS::NoValue"}
"""The pseudo parameters a ``--parameter`` may give, as a stack would have them."""
_STACK_OWN: Final = frozenset({"AWS::StackName", "AWS::Region", "AWS::AccountId"})
"""Pseudo parameters whose stand-in is surely not the stack's value (a name made with
``${AWS::StackName}`` is another name): the resource's notes say when one was used. The
partition and URL suffix are the ones of every commercial Region."""
_SUB_RE: Final = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass(frozen=True)
class Resource:
    kind: str
    """``model``, ``input`` or ``alarm``."""
    logical_id: str
    body: dict[str, Any]
    """The Create* request body (camelCase)."""
    notes: tuple[str, ...] = ()
    """The pseudo parameters it took a stand-in for, and where."""

    @property
    def prefix(self) -> str:
        return f"$.Resources.{self.logical_id}.Properties"

    def template_path(self, api_path: str) -> str:
        """``$.detectorModelDefinition.states[0]`` -> ``$.Resources.M.Properties.Detector...``."""
        if not api_path.startswith("$"):
            return api_path
        if api_path == "$":
            return self.prefix
        rest = re.sub(r"\.([a-z])", lambda m: "." + m.group(1).upper(), api_path[1:])
        return self.prefix + rest


def load_json(text: str, source: str) -> Any:
    """The JSON document *text* holds (``json.loads``, whose ValueError a bad document
    raises); a mapping that repeats a key is a one-line :class:`UserError` naming *source*,
    the key and both its lines: cfn-lint refuses such a template at load (E0000), and
    CloudFormation would deploy the last value without a word."""
    try:
        return json.loads(text, object_pairs_hook=_no_repeats)
    except _Repeated:
        pass
    try:
        _walk(text, _skip(text, 0))
    except _Repeated as found:
        at, key, first = found.args
        line = text.count("\n", 0, at) + 1
        column = at - (text.rfind("\n", 0, at) + 1) + 1
        first_line = text.count("\n", 0, first) + 1
        raise UserError(
            f"{source}: not valid JSON: line {line}, column {column}: duplicate key {key!r}"
            f" (also on line {first_line}); keep one"
        ) from None
    raise AssertionError("a repeated key the second reading did not find")  # pragma: no cover


class _Repeated(Exception):
    """A mapping repeats a key: ``(position, key, position of the first)`` once located."""


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Repeated
    return out


_WS: Final = re.compile(r"[ \t\n\r]*")
_SCALAR: Final = json.scanner.py_make_scanner(json.JSONDecoder())


def _skip(text: str, at: int) -> int:
    """Past the JSON whitespace at *at*."""
    return at + len(_WS.match(text, at)[0])  # type: ignore[index]  # always matches


def _walk(text: str, at: int) -> int:
    """Read the JSON value at *at* (valid JSON: ``json.loads`` read it) and return where it
    ends; raise :class:`_Repeated` at the first key, in reading order, that its mapping
    already has."""
    if text[at] == "{":
        seen: dict[str, int] = {}
        at = _skip(text, at + 1)
        if text[at] == "}":
            return at + 1
        while True:
            key, end = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]
            if key in seen:
                raise _Repeated(at, key, seen[key])
            seen[key] = at
            at = _skip(text, _walk(text, _skip(text, _skip(text, end) + 1)))  # past the ':'
            if text[at] == "}":
                return at + 1
            at = _skip(text, at + 1)  # past the ','
    if text[at] == "[":
        at = _skip(text, at + 1)
        if text[at] == "]":
            return at + 1
        while True:
            at = _skip(text, _walk(text, at))
            if text[at] == "]":
                return at + 1
            at = _skip(text, at + 1)
    _value, end = _SCALAR(text, at)
    return int(end)


def is_template(document: Any) -> bool:
    """A template only if it holds an IoT Events resource: any other ``Resources`` object
    stays a file the import refuses by name, not an empty import."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("Resources"), dict)
        and any(
            isinstance(r, dict) and r.get("Type") in TYPES for r in document["Resources"].values()
        )
    )


def iotevents_resources(
    document: Mapping[str, Any], source: str, values: Mapping[str, str] | None = None
) -> list[Resource]:
    """The template's ``AWS::IoTEvents::*`` resources as API bodies, in template order;
    *values* are the stack's values of parameters and pseudo parameters, by name."""
    resources = document.get("Resources", {})
    parameters = document.get("Parameters") or {}
    names: dict[str, str] = {}
    computed: dict[str, Any] = {}
    for logical_id, resource in resources.items():
        if isinstance(resource, dict) and resource.get("Type") in TYPES:
            props = resource.get("Properties") or {}
            name = props.get(TYPES[resource["Type"]][1]) if isinstance(props, dict) else None
            names[logical_id] = name if isinstance(name, str) else logical_id
            if isinstance(name, dict):
                computed[logical_id] = name
    resolver = _Resolver(source, resources, parameters, names, values or {})
    for logical_id, name in computed.items():  # a Ref gives the name the function makes
        path = f"$.Resources.{logical_id}.Properties.{TYPES[resources[logical_id]['Type']][1]}"
        resolver.stand_ins = {}
        names[logical_id] = resolver.text(resolver.resolve(name, path), path)
        resolver.name_stand_ins[logical_id] = resolver.stand_ins
    found = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") not in TYPES:
            continue
        kind, name_field = TYPES[resource["Type"]]
        path = f"$.Resources.{logical_id}.Properties"
        props = resource.get("Properties") or {}
        if not isinstance(props, dict):
            raise UserError(f"{source}: {path}: expected an object")
        resolver.stand_ins = {}
        body = typed(_camel(resolver.resolve(props, path)))
        api_name = name_field[0].lower() + name_field[1:]
        body.setdefault(api_name, names[logical_id])
        notes = tuple(
            f"{where}: {name} taken as {PSEUDO[name]!r}, a stand-in; give your stack's with "
            f"--parameter {name}=VALUE"
            for name, where in resolver.stand_ins.items()
        )
        found.append(Resource(kind, logical_id, body, notes))
    return found


class _Resolver:
    def __init__(
        self,
        source: str,
        resources: Mapping[str, Any],
        parameters: Mapping[str, Any],
        names: Mapping[str, str],
        values: Mapping[str, str],
    ) -> None:
        self.source = source
        self.resources = resources
        self.parameters = parameters
        self.names = names
        self.values = values
        self.stand_ins: dict[str, str] = {}
        """Pseudo parameters of :data:`_STACK_OWN` taken as their stand-in: name -> where."""
        self.name_stand_ins: dict[str, dict[str, str]] = {}
        """Those a resource's computed name took, by logical id (a Ref to it takes them too)."""

    def error(self, path: str, message: str) -> UserError:
        return UserError(f"{self.source}: {path}: {message}")

    def resolve(self, node: Any, path: str) -> Any:
        if isinstance(node, list):
            return [self.resolve(v, f"{path}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Ref":
                return self.ref(arg, f"{path}.Ref")
            if fn == "Fn::Join":
                return self.join(arg, f"{path}.Fn::Join")
            if fn == "Fn::Sub":
                return self.sub(arg, f"{path}.Fn::Sub")
            if fn == "Fn::GetAtt":
                return self.get_att(arg, f"{path}.Fn::GetAtt")
            if fn.startswith("Fn::"):
                raise self.error(
                    f"{path}.{fn}",
                    f"{fn} cannot be evaluated outside CloudFormation; replace it with the "
                    "value it gives in your stack",
                )
        return {k: self.resolve(v, f"{path}.{k}") for k, v in node.items()}

    def ref(self, name: Any, path: str) -> Any:
        if not isinstance(name, str):
            raise self.error(path, "expected the name of a parameter or resource")
        if name in PSEUDO:
            if name in self.values and name in GIVEN:
                return self.values[name]
            if name in _STACK_OWN:
                self.stand_ins.setdefault(name, path)
            return PSEUDO[name]
        if name in self.names:
            for taken, where in self.name_stand_ins.get(name, {}).items():
                self.stand_ins.setdefault(taken, where)
            return self.names[name]
        if name in self.parameters:
            if name in self.values:
                return self.values[name]
            parameter = self.parameters[name]
            if isinstance(parameter, dict) and "Default" in parameter:
                return parameter["Default"]
            raise self.error(
                path,
                f"parameter {name!r} has no Default; give the value your stack used with "
                f"--parameter {name}=VALUE",
            )
        if name in self.resources:
            return f"cloudformation:{name}"
        raise self.error(path, f"{name!r} is neither a parameter nor a resource of the template")

    def join(self, arg: Any, path: str) -> str:
        if not (
            isinstance(arg, list)
            and len(arg) == 2
            and isinstance(arg[0], str)
            and isinstance(arg[1], list)
        ):
            raise self.error(path, "expected [delimiter, [values...]]")
        parts = [self.resolve(v, f"{path}[1][{i}]") for i, v in enumerate(arg[1])]
        return arg[0].join(self.text(p, f"{path}[1][{i}]") for i, p in enumerate(parts))

    def sub(self, arg: Any, path: str) -> str:
        variables: dict[str, Any] = {}
        if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
            variables = {k: self.resolve(v, f"{path}[1].{k}") for k, v in arg[1].items()}
            arg = arg[0]
        if not isinstance(arg, str):
            raise self.error(path, "expected a string or [string, {variables}]")

        def value(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in variables:
                return self.text(variables[name], path)
            if "." in name:
                logical, attribute = name.split(".", 1)
                return self.get_att([logical, attribute], path)
            return self.text(self.ref(name, path), path)

        # ${!Literal} stays as ${Literal}, as CloudFormation writes it
        return _SUB_RE.sub(value, arg).replace("${!", "${")

    def get_att(self, arg: Any, path: str) -> str:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        if not (isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg)):
            raise self.error(path, "expected [LogicalId, Attribute]")
        if arg[0] not in self.resources:
            raise self.error(path, f"{arg[0]!r} is not a resource of the template")
        return f"cloudformation:{arg[0]}.{arg[1]}"

    def text(self, value: Any, path: str) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | str):
            return str(value)
        raise self.error(path, "expected a string")


_INTEGERS: Final = frozenset({"seconds", "severity"})
_BOOLEANS: Final = frozenset({"useBase64", "enabled", "disabledOnInitialization"})
_STRINGS: Final = frozenset({"threshold"})
"""String properties a template may write as a number (``Threshold: 80``): CloudFormation
hands every scalar to the resource as text, so ``80`` deploys as ``"80"``."""


def typed(node: Any) -> Any:
    """CloudFormation takes ``"60"`` for an Integer property and ``"true"`` for a Boolean one
    (a JSON template, or a value from ``Ref``/``Fn::Sub``); the API body gets the typed value.
    Also for an API body read from YAML, whose scalars are all text."""
    if isinstance(node, list):
        return [typed(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in _INTEGERS and isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            value = int(value)
        elif key in _BOOLEANS and isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        elif key in _STRINGS and isinstance(value, bool):
            value = "true" if value else "false"
        elif key in _STRINGS and isinstance(value, int | float) and math.isfinite(value):
            value = str(value)
        out[key] = typed(value)
    return out


def _camel(node: Any) -> Any:
    if isinstance(node, list):
        return [_camel(v) for v in node]
    if isinstance(node, dict):
        return {(k[:1].lower() + k[1:]): _camel(v) for k, v in node.items()}
    return node
