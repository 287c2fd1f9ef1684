"""Any JSON body (detector model, input, alarm model) loads or raises DetectorModelError with a
path; never another exception, which the CLI would report as an internal error (exit 1)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.detectors import (
    check_references,
    default_detector_paths,
    load_detector_model,
    load_input,
)
from cloud.detectors.alarms import check_alarm_references, load_alarm_model
from edge.errors import DetectorModelError

MODEL_PATH, INPUT_PATH = default_detector_paths()
MODEL = json.loads(MODEL_PATH.read_text())
INPUT = load_input(INPUT_PATH)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
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


def _replace(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    node = body
    for seg in path[:-1]:
        node = node[seg]
    node[path[-1]] = value
    return body


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(PATHS), json_values)
def test_mutated_model_loads_or_names_a_path(path: tuple[Any, ...], value: Any) -> None:
    body = _replace(copy.deepcopy(MODEL), path, value)
    try:
        model = load_detector_model(body, source="m.json")
        check_references(model, [INPUT])
    except DetectorModelError as err:
        assert str(err).startswith("m.json: ")
        assert len(str(err).splitlines()) == 1, err


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PATHS), st.text(max_size=60))
def test_mutated_strings_load_or_name_a_path(path: tuple[Any, ...], value: str) -> None:
    test_mutated_model_loads_or_names_a_path.hypothesis.inner_test(path, value)  # type: ignore[attr-defined]


@given(json_values)
def test_any_json_input_loads_or_raises(value: Any) -> None:
    try:
        load_input(
            value if isinstance(value, dict) else {"inputName": "X", "inputDefinition": value},
            source="i.json",
        )
    except DetectorModelError as err:
        assert str(err).startswith("i.json: ")
        assert len(str(err).splitlines()) == 1, err


ALARMS = Path(__file__).parents[1] / "unit" / "detectors" / "data" / "alarms"
ALARM_MODEL = json.loads((ALARMS / "boiler_high.json").read_text())
ALARM_INPUT = load_input(ALARMS / "boiler_input.json")
ALARM_PATHS = _paths(ALARM_MODEL)[1:]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ALARM_PATHS), json_values)
def test_mutated_alarm_model_loads_or_names_a_path(path: tuple[Any, ...], value: Any) -> None:
    body = _replace(copy.deepcopy(ALARM_MODEL), path, value)
    try:
        model = load_alarm_model(body, source="a.json")
        check_alarm_references(model, [ALARM_INPUT])
    except DetectorModelError as err:
        assert str(err).startswith("a.json: ")
        assert len(str(err).splitlines()) == 1, err
