"""A small AWS IoT policy evaluator, enough to check plantwatch's device policies.

Follows the IoT Core rules the policies rely on: an explicit Deny wins, otherwise one
matching Allow grants; ``iot:Connect`` is checked on ``client/<id>``, ``iot:Publish`` and
``iot:Receive`` on ``topic/<topic>``, ``iot:Subscribe`` on ``topicfilter/<filter>``; in
resources ``*`` matches any characters (``/`` included) and ``?`` one character, while
MQTT's ``+`` and ``#`` are plain characters. Policy variables are substituted from the
connection; a variable with no value (an unset thing attribute) leaves its resource
matching nothing, and a condition on it (a thing without a thing type) does not hold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

VARIABLE = re.compile(r"\$\{([^}]+)\}")
RESOURCE_KIND = {
    "iot:Connect": "client",
    "iot:Publish": "topic",
    "iot:Receive": "topic",
    "iot:Subscribe": "topicfilter",
}


@dataclass(frozen=True)
class Connection:
    """What IoT Core knows of a connected client."""

    client_id: str
    thing_name: str | None
    attributes: Mapping[str, str] = field(default_factory=dict)
    attached: bool = True
    thing_type: str | None = None

    def variable(self, name: str) -> str | None:
        if name == "iot:Connection.Thing.ThingName":
            return self.thing_name if self.client_id == self.thing_name else None
        if name == "iot:Connection.Thing.ThingTypeName":
            return self.thing_type if self.client_id == self.thing_name else None
        if name == "iot:ClientId":
            return self.client_id
        match = re.fullmatch(r"iot:Connection\.Thing\.Attributes\[(.+)\]", name)
        if match and self.client_id == self.thing_name:
            return self.attributes.get(match.group(1))
        return None

    def condition_value(self, key: str) -> str | None:
        if key == "iot:Connection.Thing.IsAttached":
            return "true" if self.attached and self.client_id == self.thing_name else "false"
        return self.variable(key)


def _substitute(resource: str, connection: Connection) -> str | None:
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        value = connection.variable(match.group(1))
        if value is None:
            missing = True
            return ""
        return value

    out = VARIABLE.sub(replace, resource)
    return None if missing else out


def _pattern(resource: str) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource]
    return re.compile("".join(parts), re.DOTALL)


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _conditions_hold(condition: Mapping[str, Any] | None, connection: Connection) -> bool:
    for operator, tests in (condition or {}).items():
        for key, expected in tests.items():
            actual = connection.condition_value(key)
            wanted = [str(v).lower() for v in _listify(expected)]
            if operator in ("Bool", "StringEquals"):
                if actual is None or actual.lower() not in wanted:
                    return False
            else:
                raise ValueError(f"condition operator {operator} is not modelled")
    return True


def _matches(statement: Mapping[str, Any], action: str, arn: str, connection: Connection) -> bool:
    actions = _listify(statement["Action"])
    if not any(_pattern(a).fullmatch(action) for a in actions):
        return False
    if not _conditions_hold(statement.get("Condition"), connection):
        return False
    for resource in _listify(statement["Resource"]):
        concrete = _substitute(resource, connection)
        if concrete is not None and _pattern(concrete).fullmatch(arn):
            return True
    return False


def allowed(
    documents: list[Mapping[str, Any]],
    action: str,
    name: str,
    connection: Connection,
    arn_prefix: str,
) -> bool:
    """Is *action* on client id / topic / topic filter *name* allowed by the *documents*?"""
    arn = f"{arn_prefix}:{RESOURCE_KIND[action]}/{name}"
    statements = [s for d in documents for s in _listify(d["Statement"])]
    if any(s["Effect"] == "Deny" and _matches(s, action, arn, connection) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, action, arn, connection) for s in statements)
