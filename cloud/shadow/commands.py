"""The device command catalogue, shared with the edge agent: see :mod:`edge.commands`.

The catalogue lives in ``edge/`` (devices install ``edge`` alone); the cloud side uses it
from here, so both check a command against the same ranges.
"""

from edge.commands import (
    CATALOGUE,
    DELETE,
    MODES,
    SAMPLING_INTERVAL_S,
    SETPOINT_NAME_RE,
    CommandError,
    CommandSpec,
    flatten,
    parse_assignments,
    parse_value,
    spec_for,
    validate_desired,
)

__all__ = [
    "CATALOGUE",
    "DELETE",
    "MODES",
    "SAMPLING_INTERVAL_S",
    "SETPOINT_NAME_RE",
    "CommandError",
    "CommandSpec",
    "flatten",
    "parse_assignments",
    "parse_value",
    "spec_for",
    "validate_desired",
]
