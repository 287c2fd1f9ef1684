"""The typed catalogue of device commands carried in a shadow's ``desired`` state.

Operators, detector actions and the edge agent agree on these keys; a value outside its
range is refused here, before anything is sent, with the key, the value and what is allowed.
It is the one source of truth for every command's range: the cloud side checks commands
before it sends them (``cloud.shadow.commands`` re-exports this module) and the edge agent's
handlers check what it applies with the same functions. It lives in ``edge/`` because a
device installs ``edge`` alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edge.errors import UserError
from edge.wire import SENSOR_RE, sensor_name_problem

MODES = ("normal", "safe", "stop")
SAMPLING_INTERVAL_S = (0.1, 3600.0)
SETPOINT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
DELETE = "null"
"""``key=null`` removes the key from ``desired``."""


class CommandError(UserError):
    """A command key or value outside the catalogue."""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    key: str
    allowed: str
    parse: Callable[[str, Any], Any]
    """Takes the text form (from the CLI) or a JSON value (from a document)."""


def shown(value: Any, limit: int = 60) -> str:
    """A value as an error shows it: a hostile 5 KB string or a deep object is cut, so the
    message fits where it is reported (a shadow's ``reported.errors``, one log line)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 100:
        return f"<an integer of {value.bit_length()} bits>"  # str() of it may raise
    text = value if isinstance(value, str) else str(value)
    if not text.isprintable():  # a newline or control character would split the line
        text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _mode(key: str, value: Any) -> str:
    if value not in MODES:
        raise CommandError(f"{shown(key)}={shown(value)}: not allowed; allowed: {', '.join(MODES)}")
    return str(value)


def _number(key: str, value: Any) -> float | int:
    if isinstance(value, bool):
        raise CommandError(f"{shown(key)}={shown(value)}: expected a number")
    if isinstance(value, str):
        try:
            value = int(value) if re.fullmatch(r"[+-]?\d+", value) else float(value)
        except ValueError:
            raise CommandError(f"{shown(key)}={shown(value)}: expected a number") from None
    if isinstance(value, int) and value.bit_length() > 1000:  # math.isfinite would overflow
        raise CommandError(f"{shown(key)}={shown(value)}: out of range")
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise CommandError(f"{shown(key)}={shown(value)}: expected a finite number")
    return value


def _sampling_interval(key: str, value: Any) -> float | int:
    number = _number(key, value)
    low, high = SAMPLING_INTERVAL_S
    if not low <= number <= high:
        raise CommandError(
            f"{shown(key)}={shown(value)}: out of range; allowed {low:g}..{high:g} seconds"
        )
    return number


def _sensor_list(key: str, value: Any) -> list[str]:
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise CommandError(
            f"{shown(key)}={shown(value)}: expected a comma-separated list of sensor names"
        )
    for name in names:
        if not isinstance(name, str) or not SENSOR_RE.fullmatch(name):
            raise CommandError(f"{shown(key)}={shown(value)}: {sensor_name_problem(shown(name))}")
    return list(names)


CATALOGUE: tuple[CommandSpec, ...] = (
    CommandSpec("mode", "one of " + ", ".join(MODES), _mode),
    CommandSpec(
        "sampling_interval_s",
        f"number {SAMPLING_INTERVAL_S[0]:g}..{SAMPLING_INTERVAL_S[1]:g}",
        _sampling_interval,
    ),
    CommandSpec("setpoints.<name>", "number", _number),
    CommandSpec("sensors.enabled", "comma-separated sensor names", _sensor_list),
)
_BY_KEY = {spec.key: spec for spec in CATALOGUE}


def spec_for(key: str) -> CommandSpec:
    if key in _BY_KEY:
        return _BY_KEY[key]
    head, _, tail = key.partition(".")
    if head == "setpoints" and tail:
        if not SETPOINT_NAME_RE.fullmatch(tail):
            raise CommandError(
                f"{shown(key)}: setpoint name {shown(tail)!r} not allowed; allowed: a letter then letters, "
                "digits or '_', up to 64 characters"
            )
        return _BY_KEY["setpoints.<name>"]
    known = ", ".join(spec.key for spec in CATALOGUE)
    raise CommandError(f"{shown(key)}: unknown command key; known keys: {known}")


def parse_value(key: str, value: Any) -> Any:
    """Validate one command; ``None`` (or the text ``null``) means delete the key."""
    spec = spec_for(key)
    if value is None or value == DELETE:
        return None
    return spec.parse(key, value)


def parse_assignments(assignments: Iterable[str]) -> dict[str, Any]:
    """``["mode=safe", "setpoints.temp_c=60"]`` -> ``{"mode": "safe", "setpoints": {"temp_c": 60}}``."""
    desired: dict[str, Any] = {}
    for text in assignments:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CommandError(f"{text!r}: expected KEY=VALUE")
        _assign(desired, key, parse_value(key, raw.strip()))
    return desired


def _assign(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def flatten(state: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested state as dotted keys, for tables and for comparing targets."""
    out: dict[str, Any] = {}
    for key, value in (state or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def validate_desired(desired: Mapping[str, Any]) -> None:
    """Check every catalogue key in a desired document (other keys pass untouched)."""
    for key, value in flatten(desired).items():
        head = key.partition(".")[0]
        if key in _BY_KEY or head == "setpoints":
            parse_value(key, value)
