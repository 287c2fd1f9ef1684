"""CloudFormation YAML templates, read as the JSON template they stand for.

CloudFormation takes a template in YAML as well as JSON, and YAML templates write intrinsic
functions in a short form: ``!Ref Site``, ``!GetAtt Role.Arn``, ``!Sub '${Site}/pumps'``,
``!Join ['', [...]]``, ``!If [...]``. Each short form becomes its long form (``{"Ref":
"Site"}``, ``{"Fn::GetAtt": ["Role", "Arn"]}``, ``{"Fn::Sub": ...}``), which
:mod:`cloud.migrate.cloudformation` evaluates or refuses exactly as in a JSON template.

Scalars stay text, as the template wrote them: ``Condition: true`` is the expression
``true`` and ``Value: 010`` the expression ``010``, because every IoT Events property is a
string except the few :func:`cloudformation.typed` types from text (``Seconds``,
``Severity``, ``UseBase64``, ``Enabled``, ``DisabledOnInitialization``). Only ``null``,
``~`` and an empty value read as null. YAML's own ``!!str``, ``!!int``, ``!!float``,
``!!bool`` and ``!!null``, anchors, aliases and merge keys (``<<``) work; what no JSON
template holds (``!!timestamp``, ``!!binary``, ``!!set``, ``!!omap``, ``!!pairs``, a
non-finite ``!!float``), an alias that would expand the document past :data:`MAX_NODES`, or
one that refers to itself, is refused naming the line.

AWS CLI output in YAML (``aws iotevents describe-detector-model --output yaml``) reads the
same way.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

import yaml

from edge.errors import UserError

SHORT_FORMS: Final = (
    "Ref",
    "Condition",
    "GetAtt",
    "Sub",
    "Join",
    "If",
    "Base64",
    "Cidr",
    "FindInMap",
    "GetAZs",
    "ImportValue",
    "Select",
    "Split",
    "Transform",
    "And",
    "Equals",
    "Not",
    "Or",
    "ToJsonString",
    "Length",
)
"""CloudFormation's short-form tags: ``!Ref`` and ``!Condition`` stand for ``Ref`` and
``Condition``, every other ``!Name`` for ``Fn::Name``."""

MAX_NODES: Final = 1_000_000
"""Values a document may hold once its aliases are expanded (a template is thousands)."""

_NULL_TAG: Final = "tag:yaml.org,2002:null"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML has it (about 4x faster: a 3 MB template in 3 s, not 14)."""


class _Loader(_Base):  # type: ignore[misc]
    """SafeLoader that keeps plain scalars as text and knows CloudFormation's short forms."""


# Only null and merge keys are recognized in plain scalars; booleans, numbers and dates stay
# text (a copy: SafeLoader's table is shared by every loader class).
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in (_NULL_TAG, _MERGE_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _short_form(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix
    if name not in SHORT_FORMS:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"unknown tag !{name} (CloudFormation's short forms are "
            + ", ".join(f"!{n}" for n in SHORT_FORMS)
            + ")",
            node.start_mark,
        )
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "GetAtt" and isinstance(value, str) and "." in value:
            value = value.split(".", 1)  # !GetAtt Role.Arn is ["Role", "Arn"]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    key = name if name in ("Ref", "Condition") else f"Fn::{name}"
    return {key: value}


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[str, Any]:
    # the mapping's own keys, before merge keys (<<) add theirs: a key written twice is an
    # error (cfn-lint refuses it, where CloudFormation would take the last silently); one
    # that overrides a merged key is what merge keys are for
    own = {id(key_node) for key_node, _value in node.value if key_node.tag != _MERGE_TAG}
    loader.flatten_mapping(node)
    out: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"a key must be text, not {key!r}", key_node.start_mark
            )
        if id(key_node) in own:
            if key in lines:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (also on line {lines[key]}); keep one",
                    key_node.start_mark,
                )
            lines[key] = key_node.start_mark.line + 1
        out[key] = loader.construct_object(value_node, deep=True)
    return out


def _checked(kind: str, what: str, finite: bool = False) -> Any:
    """An explicit ``!!int``/``!!float``/``!!bool`` whose text is not one is an error at its
    line, not a ValueError from deep inside the loader."""
    construct = getattr(yaml.SafeLoader, f"construct_yaml_{kind}")

    def constructor(loader: _Loader, node: yaml.Node) -> Any:
        try:
            value = construct(loader, node)
        except Exception:  # PyYAML's converters raise whatever int()/dict[]/[0] raise
            value = None
        if value is None or (finite and not math.isfinite(value)):
            text = node.value if isinstance(node, yaml.ScalarNode) else "..."
            reason = "not a finite number" if value is not None else f"not {what}"
            raise yaml.constructor.ConstructorError(
                None, None, f"!!{kind} {text!r} is {reason}", node.start_mark
            )
        return value

    return constructor


def _refused(tag: str) -> Any:
    def constructor(loader: _Loader, node: yaml.Node) -> Any:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"!!{tag} is not taken: a template holds text, numbers, Booleans, null, lists and"
            " mappings",
            node.start_mark,
        )

    return constructor


_Loader.add_multi_constructor("!", _short_form)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor("tag:yaml.org,2002:int", _checked("int", "an integer"))
_Loader.add_constructor("tag:yaml.org,2002:float", _checked("float", "a number", finite=True))
_Loader.add_constructor("tag:yaml.org,2002:bool", _checked("bool", "a Boolean"))
for _tag in ("timestamp", "binary", "set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refused(_tag))


def load_yaml(text: str, source: str) -> Any:
    """The document *text* holds, short forms in their long form; a one-line
    :class:`UserError` naming *source* and the line otherwise."""
    try:
        document = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = " ".join(str(exc.problem or exc.context or "").split())
        if problem.startswith("found undefined alias") and mark:
            problem = _undefined_alias(text, mark)
        if exc.problem and exc.context and exc.context_mark:
            # "did not find expected key (while parsing a block mapping from line 26)"
            problem += f" ({exc.context} from line {exc.context_mark.line + 1})"
        raise UserError(f"{source}: not valid YAML: {where}{problem}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise UserError(f"{source}: not valid YAML: nested too deeply") from None
    _check_size(document, source)
    return document


def _undefined_alias(text: str, mark: yaml.Mark) -> str:
    """The problem naming the alias at *mark*: libyaml's parser says only "found undefined
    alias", which leaves the user to find which ``*name`` on the line it means."""
    lines = text.splitlines()
    rest = lines[mark.line][mark.column :] if mark.line < len(lines) else ""
    found = re.match(r"\*([0-9A-Za-z_-]+)", rest)  # the characters an anchor takes
    if found is None:
        return "found undefined alias"
    name = found.group(1)
    return f"found undefined alias *{name}: define it with &{name} before its first use"


def _check_size(document: Any, source: str) -> None:
    """Refuse a document whose aliases expand it past :data:`MAX_NODES` values (or into a
    cycle): everything after the load walks the expanded tree."""
    count = 0
    stack = [document]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise UserError(
                f"{source}: its aliases (*name) expand it past {MAX_NODES:,} values, or"
                " refer to themselves; write the repeated parts out"
            )
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif not (node is None or isinstance(node, str | bool | int | float)):
            raise UserError(f"{source}: not valid YAML: a {type(node).__name__} value")
