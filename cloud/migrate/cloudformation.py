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
  name when it is the stack's own (name, Region, account), as they name an SSM-typed
  parameter's ``Default`` (a Systems Manager name, not the value) and a ``{{resolve:...}}``
  dynamic reference, which only CloudFormation can read; or the name of an
  ``AWS::IoTEvents::Input`` resource (its ``InputName``, else its logical id, as the CDK's
  ``currentInput("${input.inputName}")`` needs); ``Fn::Join``, ``Fn::Sub`` and ``Fn::GetAtt``
  (an ``Arn`` attribute becomes ``cloudformation:<LogicalId>.Arn``, the ARN to register a
  ``--lambda`` for) are evaluated; so is ``Fn::If``, on the template's ``Conditions``
  (``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``, ``Condition``) evaluated with the
  same parameter values, and ``Ref: AWS::NoValue`` removes the property or list item it
  stands for, as CloudFormation does; a resource whose ``Condition`` is false is not in
  the stack, so it is left out; ``Fn::FindInMap`` (on the template's ``Mappings``),
  ``Fn::Select`` and ``Fn::Split`` are evaluated too, and a ``CommaDelimitedList`` (or
  ``List<...>``) parameter is the list of its comma-separated values; any other function
  is an error naming where it is;
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
_NO_VALUE: Final = object()
"""What ``Ref: AWS::NoValue`` resolves to: the property or list item holding it is dropped."""
_SUB_RE: Final = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass(frozen=True)
class Resource:
    kind: str
    """``model``, ``input`` or ``alarm``."""
    logical_id: str
    body: dict[str, Any]
    """The Create* request body (camelCase)."""
    notes: tuple[str, ...] = ()
    """What it took that is likely not the stack's value (a pseudo parameter's stand-in, an
    SSM parameter's name, a dynamic reference), and where."""

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
    resolver = _template_resolver(document, source, values)
    found = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") not in TYPES:
            continue
        if not resolver.created(logical_id, resource):
            continue  # CloudFormation does not create it
        kind, name_field = TYPES[resource["Type"]]
        path = f"$.Resources.{logical_id}.Properties"
        props = resource.get("Properties") or {}
        if not isinstance(props, dict):
            raise UserError(f"{source}: {path}: expected an object")
        resolver.notes = {}
        body = typed(_camel(resolver.resolve(props, path)))
        api_name = name_field[0].lower() + name_field[1:]
        body.setdefault(api_name, resolver.names[logical_id])
        found.append(Resource(kind, logical_id, body, tuple(resolver.notes.values())))
    return found


@dataclass(frozen=True)
class NestedStack:
    """An ``AWS::CloudFormation::Stack`` resource of a template, as the CDK writes one for
    a ``NestedStack``: where its template is, and the parameter values the parent passes."""

    logical_id: str
    asset_path: str | None
    """The ``aws:asset:path`` metadata: the template's file in the cloud assembly."""
    template_url: str
    """``TemplateURL`` evaluated (pseudo parameters at their values or stand-ins), when
    there is no ``asset_path``."""
    parameters: dict[str, str]
    """Its ``Parameters`` property evaluated in the parent (a ``Ref`` to an input is the
    input's name, as in the parent's own resources)."""


STACK_TYPE: Final = "AWS::CloudFormation::Stack"


def nested_stacks(
    document: Mapping[str, Any], source: str, values: Mapping[str, str] | None = None
) -> list[NestedStack]:
    """The nested stacks of the template that CloudFormation creates (their ``Condition``
    holding), in template order; *values* as for :func:`iotevents_resources`."""
    resources = document.get("Resources")
    if not isinstance(resources, dict):
        return []
    resolver = _template_resolver(document, source, values)
    found = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != STACK_TYPE:
            continue
        if not resolver.created(logical_id, resource):
            continue
        path = f"$.Resources.{logical_id}.Properties"
        props = resource.get("Properties")
        if not isinstance(props, dict):
            raise UserError(f"{source}: {path}: expected an object")
        passed = resolver.resolve(props.get("Parameters") or {}, f"{path}.Parameters")
        if not isinstance(passed, dict):
            raise UserError(f"{source}: {path}.Parameters: expected an object")
        metadata = resource.get("Metadata")
        asset = metadata.get("aws:asset:path") if isinstance(metadata, dict) else None
        asset = asset if isinstance(asset, str) else None
        url = "" if asset else resolver.resolve(props.get("TemplateURL", ""), f"{path}.TemplateURL")
        found.append(
            NestedStack(
                logical_id,
                asset,
                resolver.text(url, f"{path}.TemplateURL"),
                {
                    name: resolver.text(value, f"{path}.Parameters.{name}")
                    for name, value in passed.items()
                },
            )
        )
    return found


def _template_resolver(
    document: Mapping[str, Any], source: str, values: Mapping[str, str] | None
) -> _Resolver:
    """The resolver of the template's functions, the names its IoT Events resources take
    (a ``Ref`` to one gives it) worked out."""
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
    conditions = document.get("Conditions") or {}
    resolver = _Resolver(source, resources, parameters, names, values or {}, conditions)
    resolver.mappings = document.get("Mappings") or {}
    for logical_id, name in computed.items():  # a Ref gives the name the function makes
        path = f"$.Resources.{logical_id}.Properties.{TYPES[resources[logical_id]['Type']][1]}"
        resolver.notes = {}
        names[logical_id] = resolver.text(resolver.resolve(name, path), path)
        resolver.name_notes[logical_id] = resolver.notes
    return resolver


class _Resolver:
    def __init__(
        self,
        source: str,
        resources: Mapping[str, Any],
        parameters: Mapping[str, Any],
        names: Mapping[str, str],
        values: Mapping[str, str],
        conditions: Any,
    ) -> None:
        self.source = source
        self.conditions = conditions
        self.mappings: Any = {}
        self._truth: dict[str, bool] = {}
        self._evaluating: set[str] = set()
        self.resources = resources
        self.parameters = parameters
        self.names = names
        self.values = values
        self.notes: dict[str, str] = {}
        """What the resource being resolved took that is likely not the stack's value (a
        stand-in for a pseudo parameter of :data:`_STACK_OWN`, an SSM parameter's name, a
        dynamic reference), one note per thing, naming where it was first used."""
        self.name_notes: dict[str, dict[str, str]] = {}
        """Those a resource's computed name took, by logical id (a Ref to it takes them too)."""

    def created(self, logical_id: str, resource: Mapping[str, Any]) -> bool:
        """Whether CloudFormation creates the resource: its ``Condition`` holds, if any."""
        return "Condition" not in resource or self.condition(
            resource["Condition"], f"$.Resources.{logical_id}.Condition"
        )

    def error(self, path: str, message: str) -> UserError:
        return UserError(f"{self.source}: {path}: {message}")

    def resolve(self, node: Any, path: str) -> Any:
        if isinstance(node, list):
            items = [self.resolve(v, f"{path}[{i}]") for i, v in enumerate(node)]
            return [v for v in items if v is not _NO_VALUE]
        if isinstance(node, str) and "{{resolve:" in node:
            self.notes.setdefault(
                f"resolve:{node}",
                f"{path}: {node!r} holds a dynamic reference CloudFormation resolves when it "
                "deploys; taken as written, write the value your stack had",
            )
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
            if fn == "Fn::If":
                return self.if_(arg, f"{path}.Fn::If")
            if fn == "Fn::FindInMap":
                return self.find_in_map(arg, f"{path}.Fn::FindInMap")
            if fn == "Fn::Select":
                return self.select(arg, f"{path}.Fn::Select")
            if fn == "Fn::Split":
                return self.split(arg, f"{path}.Fn::Split")
            if fn.startswith("Fn::"):
                raise self.error(
                    f"{path}.{fn}",
                    f"{fn} cannot be evaluated outside CloudFormation; replace it with the "
                    "value it gives in your stack",
                )
        resolved = {k: self.resolve(v, f"{path}.{k}") for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def find_in_map(self, arg: Any, path: str) -> Any:
        if not (isinstance(arg, list) and len(arg) == 3):
            raise self.error(path, "expected [MapName, TopLevelKey, SecondLevelKey]")
        keys = [
            self.text(self.resolve(v, f"{path}[{i}]"), f"{path}[{i}]") for i, v in enumerate(arg)
        ]
        node, where = self.mappings, "the template's Mappings"
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                raise self.error(path, f"{key!r} is not a key of {where}")
            node, where = node[key], repr(key)
        return node

    def select(self, arg: Any, path: str) -> Any:
        if not (isinstance(arg, list) and len(arg) == 2):
            raise self.error(path, "expected [index, [values...]]")
        index = self.text(self.resolve(arg[0], f"{path}[0]"), f"{path}[0]")
        items = self.resolve(arg[1], f"{path}[1]")
        if not isinstance(items, list):
            raise self.error(f"{path}[1]", "expected a list")
        if not index.isdigit() or int(index) >= len(items):
            raise self.error(path, f"index {index} is not one of the list's {len(items)} items")
        return items[int(index)]

    def split(self, arg: Any, path: str) -> list[str]:
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and arg[0]):
            raise self.error(path, "expected [delimiter, string]")
        return self.text(self.resolve(arg[1], f"{path}[1]"), f"{path}[1]").split(arg[0])

    def if_(self, arg: Any, path: str) -> Any:
        if not (isinstance(arg, list) and len(arg) == 3):
            raise self.error(path, "expected [condition, value if true, value if false]")
        chosen = 1 if self.condition(arg[0], path) else 2
        return self.resolve(arg[chosen], f"{path}[{chosen}]")

    def condition(self, name: Any, path: str) -> bool:
        """The value of the template's condition *name* (evaluated once)."""
        if not (isinstance(name, str) and isinstance(self.conditions, dict)) or (
            name not in self.conditions
        ):
            raise self.error(path, f"condition {name!r} is not in the template's Conditions")
        if name not in self._truth:
            if name in self._evaluating:
                raise self.error(path, f"condition {name!r} depends on itself")
            self._evaluating.add(name)
            self._truth[name] = self.truth(self.conditions[name], f"$.Conditions.{name}")
            self._evaluating.discard(name)
        return self._truth[name]

    def truth(self, node: Any, path: str) -> bool:
        """A condition function's value, as CloudFormation evaluates ``Conditions``."""
        if isinstance(node, dict) and len(node) == 1:
            ((fn, arg),) = node.items()
            where = f"{path}.{fn}"
            if fn == "Condition":
                return self.condition(arg, where)
            if fn == "Fn::Equals":
                if not (isinstance(arg, list) and len(arg) == 2):
                    raise self.error(where, "expected [value, value]")
                first, second = (
                    self.text(self.resolve(v, f"{where}[{i}]"), f"{where}[{i}]")
                    for i, v in enumerate(arg)
                )
                return first == second
            if fn == "Fn::Not":
                if not (isinstance(arg, list) and len(arg) == 1):
                    raise self.error(where, "expected [condition]")
                return not self.truth(arg[0], f"{where}[0]")
            if fn in ("Fn::And", "Fn::Or"):
                if not (isinstance(arg, list) and 2 <= len(arg) <= 10):
                    raise self.error(where, "expected 2 to 10 conditions")
                found = [self.truth(v, f"{where}[{i}]") for i, v in enumerate(arg)]
                return all(found) if fn == "Fn::And" else any(found)
        raise self.error(
            path, "expected a condition (Fn::Equals, Fn::Not, Fn::And, Fn::Or or Condition)"
        )

    def ref(self, name: Any, path: str) -> Any:
        if not isinstance(name, str):
            raise self.error(path, "expected the name of a parameter or resource")
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in PSEUDO:
            if name in self.values and name in GIVEN:
                return self.values[name]
            if name in _STACK_OWN:
                self.notes.setdefault(
                    name,
                    f"{path}: {name} taken as {PSEUDO[name]!r}, a stand-in; give your stack's "
                    f"with --parameter {name}=VALUE",
                )
            return PSEUDO[name]
        if name in self.names:
            for key, note in self.name_notes.get(name, {}).items():
                self.notes.setdefault(key, note)
            return self.names[name]
        if name in self.parameters:
            parameter = self.parameters[name]
            if isinstance(parameter, dict) and (
                parameter.get("Type") == "CommaDelimitedList"
                or str(parameter.get("Type", "")).startswith("List<")
            ):
                value = self.values.get(name, parameter.get("Default"))
                if isinstance(value, str):  # CloudFormation's Ref gives the list
                    return value.split(",")
            if name in self.values:
                return self.values[name]
            if isinstance(parameter, dict) and "Default" in parameter:
                if str(parameter.get("Type", "")).startswith("AWS::SSM::Parameter::Value<"):
                    self.notes.setdefault(
                        f"ssm:{name}",
                        f"{path}: parameter {name} is the value Systems Manager holds under "
                        f"{parameter['Default']!r} when the stack deploys; taken as that name, "
                        f"give the value with --parameter {name}=VALUE",
                    )
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
        if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
            arg = [arg[0], self.resolve(arg[1], f"{path}[1]")]  # a list-valued Ref or function
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
