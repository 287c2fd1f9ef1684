"""The command catalogue refuses out-of-range values before anything is sent."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.shadow.commands import (
    CommandError,
    flatten,
    parse_assignments,
    validate_desired,
)


def test_assignments_build_nested_desired_state():
    assert parse_assignments(
        ["mode=safe", "sampling_interval_s=2.5", "setpoints.temp_c=60", "sensors.enabled=a, b.c"]
    ) == {
        "mode": "safe",
        "sampling_interval_s": 2.5,
        "setpoints": {"temp_c": 60},
        "sensors": {"enabled": ["a", "b.c"]},
    }


def test_null_removes_a_key():
    assert parse_assignments(["setpoints.temp_c=null"]) == {"setpoints": {"temp_c": None}}


@pytest.mark.parametrize(
    ("assignment", "names"),
    [
        ("mode=fast", ["mode=fast", "normal, safe, stop"]),
        ("sampling_interval_s=0", ["sampling_interval_s=0", "0.1..3600"]),
        ("sampling_interval_s=99999", ["sampling_interval_s=99999", "0.1..3600"]),
        ("sampling_interval_s=abc", ["sampling_interval_s=abc", "number"]),
        ("setpoints.temp_c=nan", ["setpoints.temp_c=nan", "finite"]),
        ("setpoints.9x=1", ["setpoints.9x", "not allowed"]),
        ("sensors.enabled=a,b c", ["sensors.enabled", "'b c'", "letters, digits"]),
        ("sensors.enabled=a,timestamp", ["'timestamp'", "time column"]),
        ("colour=red", ["colour", "known keys: mode"]),
        ("mode", ["'mode'", "KEY=VALUE"]),
    ],
)
def test_bad_commands_name_key_value_and_what_is_allowed(assignment, names):
    with pytest.raises(CommandError) as caught:
        parse_assignments([assignment])
    for part in names:
        assert part in str(caught.value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_sampling_interval_accepted_exactly_inside_its_range(value):
    inside = 0.1 <= value <= 3600
    try:
        parsed = parse_assignments([f"sampling_interval_s={value!r}"])
    except CommandError:
        assert not inside
    else:
        assert inside and math.isclose(parsed["sampling_interval_s"], value)


def test_validate_desired_checks_catalogue_keys_and_lets_others_pass():
    validate_desired({"mode": "stop", "setpoints": {"p": 1.5}, "custom": {"x": [1]}})
    with pytest.raises(CommandError, match="mode=off"):
        validate_desired({"mode": "off"})


def test_flatten_keeps_lists_and_empty_objects_as_leaves():
    assert flatten({"a": {"b": [1, 2], "c": {}}, "d": 1}) == {"a.b": [1, 2], "a.c": {}, "d": 1}
