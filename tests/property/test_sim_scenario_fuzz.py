"""Any scenario text either parses or raises ConfigError naming the file: never a crash."""

from __future__ import annotations

import json
import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import ConfigError
from simulator.scenario import parse_duration, parse_scenario

VALUES = st.one_of(
    st.integers(-10**6, 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["1h", "15m", "-2h", "40%", "150%", "leak", "bearing_wear", "pump-01",
                     "sensor_drift", "flow_m3h", "step", "accelerating", "high", "fan"]),
)  # fmt: skip
KEYS = st.sampled_from(
    ["asset", "type", "start", "duration", "severity", "profile", "ramp", "recovery", "sensor",
     "notes", "name", "kind", "seed", "site", "rate", "load", "bogus"]
)  # fmt: skip


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "0.0"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def _tables(name: str, tables: list[dict[str, object]]) -> str:
    out = []
    for table in tables:
        out.append(f"[[{name}]]")
        out.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(out)


@settings(max_examples=300, deadline=None)
@given(
    run=st.dictionaries(KEYS, VALUES, max_size=4),
    assets=st.lists(st.dictionaries(KEYS, VALUES, max_size=3), max_size=3),
    faults=st.lists(st.dictionaries(KEYS, VALUES, max_size=8), max_size=3),
)
def test_structured_scenarios_parse_or_name_the_problem(run, assets, faults) -> None:
    text = "[run]\n" + "\n".join(f"{k} = {_toml_value(v)}" for k, v in run.items())
    text += "\n" + _tables("assets", assets) + "\n" + _tables("faults", faults) + "\n"
    try:
        scenario = parse_scenario(text, "fuzz.toml")
    except ConfigError as exc:
        assert re.match(r"fuzz\.toml(:\d+)?: ", str(exc)), str(exc)
        return
    try:
        scenario.resolve(0.0, 3600.0)
    except ConfigError as exc:
        assert re.match(r"fuzz\.toml(:\d+)?: ", str(exc)), str(exc)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_config_error(text: str) -> None:
    try:
        parse_scenario(text, "any.toml")
    except ConfigError as exc:
        assert re.match(r"any\.toml(:\d+)?: ", str(exc)), str(exc)


@given(st.one_of(st.text(max_size=20), st.integers(-100, 100), st.floats(allow_nan=False)))
def test_durations_are_non_negative_seconds_or_config_errors(value: object) -> None:
    try:
        seconds = parse_duration(value, "x")
    except ConfigError:
        return
    assert 0 <= seconds < math.inf
