"""Service-action fields whose evaluated value AWS restricts: enumerations, numbers, ranges.

AWS IoT Events documents what these fields must hold (developer guide, "Working with other
AWS services"; API reference DynamoDBAction, AssetPropertyValue, AssetPropertyTimestamp):
``hashKeyType``/``rangeKeyType`` are ``STRING`` or ``NUMBER``, ``operation`` is ``INSERT``,
``UPDATE`` or ``DELETE``, a SiteWise ``quality`` is ``GOOD``, ``BAD`` or ``UNCERTAIN``, and a
SiteWise timestamp is whole seconds 1-31556889864403199 plus 0-999999999 nanoseconds. The
SiteWise value fields are typed, so text is coerced as the spec's §4 Decision says
(``integerValue: "'12'"`` is the integer 12). A value that does not fit is refused where the
model is loaded when it is a literal, and when the action runs otherwise, naming the field;
it never reaches a sink as something AWS would reject. An ``iotTopicPublish`` topic is a
topic name, never a filter: MQTT (3.3.2-2) forbids ``+`` and ``#`` in a PUBLISH.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from cloud.detectors import expr as ex
from cloud.detectors.api_types import INTEGER_MAX, INTEGER_MIN

ENUMS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "dynamoDB": {
        "hashKeyType": ("STRING", "NUMBER"),
        "rangeKeyType": ("STRING", "NUMBER"),
        "operation": ("INSERT", "UPDATE", "DELETE"),
    },
    "iotSiteWise": {"propertyValue.quality": ("GOOD", "BAD", "UNCERTAIN")},
}
RANGES: Final[dict[str, tuple[int, int]]] = {
    "propertyValue.timestamp.timeInSeconds": (1, 31_556_889_864_403_199),
    "propertyValue.timestamp.offsetInNanos": (0, 999_999_999),
    "propertyValue.value.integerValue": (INTEGER_MIN, INTEGER_MAX),
}
"""SiteWise integers are 32-bit (AssetPropertyVariant.integerValue is an Integer)."""
_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")


class FieldValueError(ValueError):
    """The evaluated value of a typed field is not one AWS takes; the message says why."""


def typed_value(kind: str, field: str, value: Any) -> Any:
    """*value* as the field *field* of a *kind* action takes it; raise FieldValueError if not."""
    allowed = ENUMS.get(kind, {}).get(field)
    if allowed is not None:
        if not isinstance(value, str) or value not in allowed:
            raise FieldValueError(f"{_shown(value)}: expected one of {', '.join(allowed)}")
        return value
    if kind == "iotTopicPublish" and field == "mqttTopic":
        if not isinstance(value, str) or not value or any(c in value for c in "+#\0"):
            raise FieldValueError(
                f"{_shown(value)}: expected a topic name (not empty, no '+', '#' or NUL)"
            )
        return value
    if kind != "iotSiteWise":
        return value
    if field in RANGES:
        number = _integer(value)
        low, high = RANGES[field]
        if number is None or not low <= number <= high:
            raise FieldValueError(f"{_shown(value)}: expected an integer {low}-{high}")
        return number
    if field == "propertyValue.value.doubleValue":
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
            raise FieldValueError(f"{_shown(value)}: expected a finite number")
        decimal = ex.decimal_text(value) if isinstance(value, str) else None
        if decimal is None:
            raise FieldValueError(f"{_shown(value)}: expected a number")
        return decimal
    if field == "propertyValue.value.booleanValue":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise FieldValueError(f"{_shown(value)}: expected TRUE or FALSE")
    return value


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and len(value) <= 40 and _INTEGER_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _shown(value: Any) -> str:
    if value is ex.UNDEFINED:
        return "undefined"
    text = ex.format_value(value)
    return f"{ex.type_name(value)} {text if len(text) <= 40 else text[:37] + '...'!r}"
