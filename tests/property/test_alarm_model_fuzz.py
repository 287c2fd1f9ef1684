"""Any CreateAlarmModel body loads or raises DetectorModelError naming a path; never another
exception (a crash would be an internal error, exit 1, where the user deserves exit 2)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.detectors import load_input
from cloud.detectors.alarms import check_alarm_references, load_alarm_model
from edge.errors import DetectorModelError

ALARMS = Path(__file__).parents[1] / "unit" / "detectors" / "data" / "alarms"
MODEL = json.loads((ALARMS / "boiler_high.json").read_text())
INPUT = load_input(ALARMS / "boiler_input.json")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["'nan'", "1e400", "9" * 400, "$input.BoilerInput.temp", "'${1}'"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


PATHS = _paths(MODEL)[1:]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PATHS), json_values)
def test_mutated_alarm_model_loads_or_names_a_path(path: tuple[Any, ...], value: Any) -> None:
    body = copy.deepcopy(MODEL)
    node = body
    for seg in path[:-1]:
        node = node[seg]
    node[path[-1]] = value
    try:
        model = load_alarm_model(body, source="a.json")
        check_alarm_references(model, [INPUT])
    except DetectorModelError as err:
        assert str(err).startswith("a.json: ")
