"""Any value a message puts in a typed service-action field: sent as AWS takes it, or the
action is not taken with the field named; never another exception, never a wrong type."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from detector_models import RecordingSink, event, one_state_model
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from edge.clock import ManualClock

INPUT = load_input(
    {"inputName": "In", "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "x"}]}}
)
FIELDS: dict[str, tuple[dict[str, Any], Any]] = {
    # dotted field -> (action reading $input.In.x there, check of the value sent)
    "propertyValue.value.integerValue": (
        {"propertyAlias": "'/p'", "propertyValue": {"value": {"integerValue": "$input.In.x"}}},
        lambda v: type(v) is int and -(2**31) <= v < 2**31,
    ),
    "propertyValue.value.doubleValue": (
        {"propertyAlias": "'/p'", "propertyValue": {"value": {"doubleValue": "$input.In.x"}}},
        lambda v: type(v) is float and v == v and abs(v) != float("inf"),
    ),
    "propertyValue.value.booleanValue": (
        {"propertyAlias": "'/p'", "propertyValue": {"value": {"booleanValue": "$input.In.x"}}},
        lambda v: type(v) is bool,
    ),
    "propertyValue.quality": (
        {
            "propertyAlias": "'/p'",
            "propertyValue": {"value": {"doubleValue": "1.0"}, "quality": "$input.In.x"},
        },
        lambda v: v in ("GOOD", "BAD", "UNCERTAIN"),
    ),
    "propertyValue.timestamp.timeInSeconds": (
        {
            "propertyAlias": "'/p'",
            "propertyValue": {
                "value": {"doubleValue": "1.0"},
                "timestamp": {"timeInSeconds": "$input.In.x"},
            },
        },
        lambda v: type(v) is int and 1 <= v <= 31_556_889_864_403_199,
    ),
}


ENGINES: dict[str, tuple[DetectorEngine, RecordingSink]] = {}


def engine_for(field: str) -> tuple[DetectorEngine, RecordingSink]:
    if field not in ENGINES:
        body = one_state_model(event({"iotSiteWise": FIELDS[field][0]}), name="typed")
        sink = RecordingSink()
        engine = DetectorEngine(
            load_detector_model(body), [INPUT], InMemoryStateStore(), ManualClock(), sink
        )
        ENGINES[field] = (engine, sink)
    return ENGINES[field]


values = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["TRUE", "false", " 12 ", "1e3", "nan", "GOOD", "good", "9" * 5000, "-0"])
    | st.sampled_from([float("inf"), float("-inf"), float("nan"), 2**31, -(2**31) - 1, 10**30])
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


@pytest.mark.parametrize("field", sorted(FIELDS))
@settings(max_examples=60, deadline=None)
@given(value=values)
def test_a_typed_field_sends_what_aws_takes_or_nothing(field: str, value: Any) -> None:
    engine, sink = engine_for(field)
    sink.requests.clear()
    logging.getLogger("cloud.detectors.engine").disabled = True
    try:
        engine.put_message("In", {"id": "k1", "x": value})
    finally:
        logging.getLogger("cloud.detectors.engine").disabled = False
    for request in sink.requests:
        assert FIELDS[field][1](request.target[field]), request.target[field]
