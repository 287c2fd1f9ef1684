"""An action payload that would hold NaN or Infinity is not JSON: the action is refused with
an error naming the field, recorded as other action failures are, and state is kept."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest
from detector_models import RecordingSink, event, one_state_model
from hypothesis import given
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.engine import evaluate_action
from cloud.detectors.trace import TraceRecorder
from edge.clock import ManualClock

IN = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}, {"jsonPath": "obj"}]},
}


def publish(content: str, kind: str = "JSON") -> dict[str, Any]:
    return {
        "iotTopicPublish": {
            "mqttTopic": "out",
            "payload": {"contentExpression": content, "type": kind},
        }
    }


def sv(name: str, value: str) -> dict[str, Any]:
    return {"setVariable": {"variableName": name, "value": value}}


def run(
    *events: dict[str, Any], message: dict[str, Any]
) -> tuple[RecordingSink, TraceRecorder, DetectorEngine]:
    sink, trace = RecordingSink(), TraceRecorder()
    engine = DetectorEngine(
        load_detector_model(one_state_model(*events)),
        [load_input(IN)],
        InMemoryStateStore(),
        ManualClock(),
        sink,
        observer=trace,
    )
    engine.put_message("In", {"id": "k", **message})
    return sink, trace, engine


@pytest.mark.parametrize(
    "content",
    [
        "'{\"v\": NaN}'",
        "'{\"v\": Infinity}'",
        "'{\"v\": -Infinity}'",
        "'{\"v\": 1e999}'",
        "'[1, -1e400]'",
        "'{\"v\": ${$input.In.obj}}'",
        "'${$input.In.obj}'",
    ],
)
def test_a_json_payload_holding_nan_or_infinity_is_refused(
    content: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sink, trace, engine = run(
        event(publish(content), sv("after", "1")),
        message={"obj": {"q": math.inf, "r": [math.nan]}},
    )
    assert sink.requests == []
    [error] = trace.of_kind("error")
    assert error.detail["path"].endswith("iotTopicPublish.payload.contentExpression")
    assert "NaN or Infinity" in error.detail["message"]
    assert error.detail["expression"] == content
    assert "NaN or Infinity" in caplog.text
    # a failed action is logged and never rolls back state; later actions still run
    assert engine.describe("k")["detector"]["state"]["variables"] == [
        {"name": "after", "value": "1"}
    ]


def test_a_variable_is_never_set_to_an_object_holding_infinity() -> None:
    """Read alone, such a number is undefined; inside an object it leaves the variable as it
    was, so a default payload (which carries the variables) stays JSON."""
    sink, trace, engine = run(
        event(sv("reading", "$input.In.obj"), name="keep"),
        event({"sns": {"targetArn": "arn:aws:sns:us-east-1:1:t"}}, name="tell"),
        message={"obj": {"q": math.inf}},
    )
    [error] = trace.of_kind("error")
    assert error.detail["path"].endswith("setVariable.value")
    assert "NaN or Infinity; variable 'reading' unchanged" in error.detail["message"]
    [request] = sink.requests
    assert request.payload["payload"]["state"]["variables"] == {}
    assert engine.describe("k")["detector"]["state"]["variables"] == []


def test_a_default_payload_holding_infinity_is_refused() -> None:
    """The shared action evaluation (detector and alarm models) checks a default payload
    too, whatever built it."""
    model = load_detector_model(
        one_state_model(event({"sns": {"targetArn": "arn:aws:sns:us-east-1:1:t"}}))
    )
    [action] = model.states["A"].on_input[0].actions
    with pytest.raises(Exception, match="NaN or Infinity") as info:
        evaluate_action(action, None, lambda: {"payload": {"variables": {"r": [math.nan]}}})  # type: ignore[arg-type]
    assert str(info.value).startswith(action.path)
    target, payload, kind = evaluate_action(action, None, lambda: {"v": 1.5})  # type: ignore[arg-type]
    assert (target, payload, kind) == (
        {"targetArn": "arn:aws:sns:us-east-1:1:t"},
        {"v": 1.5},
        "DEFAULT",
    )


def test_a_string_payload_is_text_and_sent_as_it_is() -> None:
    sink, trace, _ = run(
        event(publish("'${$input.In.obj}'", kind="STRING")),
        message={"obj": {"q": math.inf}},
    )
    assert [r.payload for r in sink.requests] == ['{"q":Infinity}']
    assert trace.of_kind("error") == []


finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | finite | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
any_number = st.floats() | st.integers(-(2**60), 2**60)


def holds_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(holds_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(holds_non_finite(v) for v in value.values())
    return False


@given(
    doc=st.recursive(
        st.none() | st.booleans() | any_number | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_a_json_payload_is_sent_exactly_when_it_is_json(doc: Any) -> None:
    sink, trace, _ = run(event(publish("'${$input.In.obj}'")), message={"obj": [doc]})
    if holds_non_finite(doc):
        assert sink.requests == []
        assert "NaN or Infinity" in trace.of_kind("error")[0].detail["message"]
    else:
        [request] = sink.requests
        assert request.payload == [doc]
        # what the sink receives serializes as strict JSON
        json.dumps(request.payload, allow_nan=False)


@given(doc=json_values)
def test_finite_default_payloads_go_out(doc: Any) -> None:
    sink, _, _ = run(
        event(sv("reading", "$input.In.obj"), name="keep"),
        event({"sns": {"targetArn": "arn:aws:sns:us-east-1:1:t"}}, name="tell"),
        message={"obj": [doc]},
    )
    [request] = sink.requests
    json.dumps(request.payload, allow_nan=False)


@pytest.mark.parametrize("value", [5, 1.5, True, None])
def test_a_json_payload_that_evaluates_to_a_number_boolean_or_null_is_refused(
    value: Any,
) -> None:
    """The loader refuses such a literal (AWS's analysis: "The evaluated result can't be a
    Boolean or number"); the same result from data is refused when the action runs."""
    sink, trace, _ = run(event(publish("$input.In.v")), message={"v": value})
    assert sink.requests == []
    [error] = trace.of_kind("error")
    assert "must evaluate to a string holding JSON" in error.detail["message"]


@pytest.mark.parametrize(
    ("value", "sent"),
    [('{"a": 1}', {"a": 1}), ("[1, 2]", [1, 2]), ({"a": [1.5]}, {"a": [1.5]}), ('"s"', "s")],
)
def test_a_json_payload_from_data_holding_json_is_sent(value: Any, sent: Any) -> None:
    sink, trace, _ = run(event(publish("$input.In.v")), message={"v": value})
    assert [r.payload for r in sink.requests] == [sent]
    assert trace.of_kind("error") == []
