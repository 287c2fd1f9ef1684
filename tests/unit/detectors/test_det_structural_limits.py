"""iotevents-contracts §8: the structural limits apply in strict mode only.

Each limit, placed anywhere in a model, is refused in strict mode with an error naming the
JSON path of what is over it; the same model loads in lenient (non-strict) mode, and a
model exactly at the limit loads strictly.
"""

from __future__ import annotations

from typing import Any

import pytest
from detector_models import RecordingSink
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from edge.clock import ManualClock
from edge.errors import DetectorModelError

DEF = "$.detectorModelDefinition"
GROUPS = ("onEnter", "onInput", "onExit")


def _model(states: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "detectorModelName": "m",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "detectorModelDefinition": {"initialStateName": "S0", "states": states},
    }


def _states(count: int) -> list[dict[str, Any]]:
    return [{"stateName": f"S{i}"} for i in range(count)]


def _event(i: int, *, condition: str = "true", actions: list | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"eventName": f"e{i}", "condition": condition}
    if actions is not None:
        event["actions"] = actions
    return event


def _put(state: dict[str, Any], group: str, events: list[dict[str, Any]]) -> str:
    """Put *events* under *group* of *state*; returns the events' path inside the state."""
    state[group] = {"events": events}
    return f"{group}.events"


def _error(body: dict[str, Any]) -> str:
    with pytest.raises(DetectorModelError) as info:
        load_detector_model(body, strict=True)
    return str(info.value)


def _both(body: dict[str, Any], path: str, what: str) -> None:
    message = _error(body)
    assert f"{path}: {what}" in message, message
    load_detector_model(body, strict=False)


places = st.tuples(st.integers(0, 4), st.sampled_from(GROUPS))
over = st.integers(1, 4)


@settings(max_examples=25, deadline=None)
@given(extra=over)
def test_states_per_model(extra: int) -> None:
    body = _model(_states(20 + extra))
    _both(body, f"{DEF}.states", f"{20 + extra} states; at most 20 allowed")
    load_detector_model(_model(_states(20)), strict=True)


@settings(max_examples=25, deadline=None)
@given(place=places, extra=over)
def test_events_per_state(place: tuple[int, str], extra: int) -> None:
    index, group = place
    states = _states(5)
    where = _put(states[index], group, [_event(i) for i in range(20 + extra)])
    path = f"{DEF}.states[{index}].{where}"
    _both(_model(states), path, f"{20 + extra} entries; at most 20 allowed")
    _put(states[index], group, [_event(i) for i in range(20)])
    load_detector_model(_model(states), strict=True)


@settings(max_examples=25, deadline=None)
@given(index=st.integers(0, 4), extra=over)
def test_transitions_per_state(index: int, extra: int) -> None:
    states = _states(5)
    states[index]["onInput"] = {
        "transitionEvents": [dict(_event(i), nextState="S0") for i in range(20 + extra)]
    }
    path = f"{DEF}.states[{index}].onInput.transitionEvents"
    _both(_model(states), path, f"{20 + extra} entries; at most 20 allowed")


@settings(max_examples=25, deadline=None)
@given(place=places, event=st.integers(0, 3), extra=over)
def test_actions_per_event(place: tuple[int, str], event: int, extra: int) -> None:
    index, group = place
    states = _states(5)
    actions = [{"setVariable": {"variableName": "v", "value": "1"}}] * (10 + extra)
    events = [_event(i) for i in range(event)] + [_event(event, actions=actions)]
    where = _put(states[index], group, events)
    path = f"{DEF}.states[{index}].{where}[{event}].actions"
    _both(_model(states), path, f"{10 + extra} actions; at most 10 allowed")
    events[event]["actions"] = actions[:10]
    load_detector_model(_model(states), strict=True)


def _long_true(chars: int) -> str:
    """A Boolean expression of exactly *chars* characters (at least 4)."""
    return "true" + " " * (chars - 4)


@settings(max_examples=25, deadline=None)
@given(place=places, extra=st.integers(1, 200))
def test_condition_characters(place: tuple[int, str], extra: int) -> None:
    index, group = place
    states = _states(5)
    where = _put(states[index], group, [_event(0, condition=_long_true(512 + extra))])
    path = f"{DEF}.states[{index}].{where}[0].condition"
    _both(_model(states), path, f"{512 + extra} characters; at most 512 allowed")
    _put(states[index], group, [_event(0, condition=_long_true(512))])
    load_detector_model(_model(states), strict=True)


VALUE_ACTIONS = {
    "setVariable.value": lambda text: {"setVariable": {"variableName": "v", "value": text}},
    "setTimer.durationExpression": lambda text: {
        "setTimer": {"timerName": "t", "durationExpression": text}
    },
}


@settings(max_examples=25, deadline=None)
@given(place=places, field=st.sampled_from(sorted(VALUE_ACTIONS)), extra=st.integers(1, 300))
def test_value_and_duration_expression_characters(
    place: tuple[int, str], field: str, extra: int
) -> None:
    index, group = place
    states = _states(5)
    text = "600" + " " * (1024 + extra - 3)
    where = _put(states[index], group, [_event(0, actions=[VALUE_ACTIONS[field](text)])])
    path = f"{DEF}.states[{index}].{where}[0].actions[0].{field}"
    _both(_model(states), path, f"{1024 + extra} characters; at most 1024 allowed")


@settings(max_examples=25, deadline=None)
@given(place=places, extra=st.integers(1, 300), wide=st.booleans())
def test_content_expression_bytes(place: tuple[int, str], extra: int, wide: bool) -> None:
    """1024 bytes, not characters: a multi-byte character counts for its UTF-8 bytes."""
    index, group = place
    states = _states(5)
    size = 1024 + extra
    text = "'" + ("é" * ((size - 2) // 2) + "x" * ((size - 2) % 2) if wide else "x" * (size - 2))
    text += "'"
    assert len(text.encode()) == size
    action = {
        "iotTopicPublish": {
            "mqttTopic": "out",
            "payload": {"contentExpression": text, "type": "STRING"},
        }
    }
    where = _put(states[index], group, [_event(0, actions=[action])])
    path = f"{DEF}.states[{index}].{where}[0].actions[0].iotTopicPublish.payload.contentExpression"
    _both(_model(states), path, f"{size} bytes; at most 1024 allowed")


TIMER_OUTSIDE = st.one_of(st.integers(1, 59), st.integers(31_622_401, 10**9))


@settings(max_examples=40, deadline=None)
@given(place=places, seconds=TIMER_OUTSIDE, literal=st.booleans())
def test_timer_duration_outside_60_to_31622400_s(
    place: tuple[int, str], seconds: int, literal: bool
) -> None:
    index, group = place
    states = _states(5)
    field, value = ("seconds", seconds) if literal else ("durationExpression", str(seconds))
    action = {"setTimer": {"timerName": "t", field: value}}
    where = _put(states[index], group, [_event(0, actions=[action])])
    path = f"{DEF}.states[{index}].{where}[0].actions[0].setTimer.{field}"
    _both(_model(states), path, f"{seconds} s; a timer must be 60-31622400 s")


@pytest.mark.parametrize("literal", [True, False])
def test_a_lenient_timer_ends_within_a_century(literal: bool) -> None:
    """Lenient mode lifts AWS's 366-day ceiling, not every ceiling: a timer of more than 100
    years could never fire and its expiry could not be shown as a date (it crashed
    ``detectors run``)."""
    for seconds, accepted in ((3_153_600_000, True), (3_153_600_001, False), (10**12, False)):
        states = _states(1)
        field, value = ("seconds", seconds) if literal else ("durationExpression", str(seconds))
        _put(
            states[0],
            "onEnter",
            [_event(0, actions=[{"setTimer": {"timerName": "t", field: value}}])],
        )
        if accepted:
            load_detector_model(_model(states), strict=False)
            continue
        with pytest.raises(DetectorModelError) as caught:
            load_detector_model(_model(states), strict=False)
        assert str(caught.value).endswith(
            f"setTimer.{field}: {seconds} s; a timer must be at most 3153600000 s (100 years)"
        ), caught.value


@pytest.mark.parametrize("seconds", [0, -5])
def test_a_timer_of_no_time_is_refused_in_either_mode(seconds: int) -> None:
    states = _states(1)
    _put(
        states[0],
        "onEnter",
        [_event(0, actions=[{"setTimer": {"timerName": "t", "seconds": seconds}}])],
    )
    for strict in (True, False):
        with pytest.raises(DetectorModelError, match=r"setTimer\.seconds: .*s"):
            load_detector_model(_model(states), strict=strict)


def test_a_lenient_model_runs_a_short_timer() -> None:
    """Accepted in lenient mode means it runs: a 5 s timer fires after 5 s."""
    arm = {"setTimer": {"timerName": "t", "seconds": 5}}
    states = [
        {
            "stateName": "S0",
            "onInput": {
                "events": [_event(0, condition='currentInput("In")', actions=[arm])],
                "transitionEvents": [
                    {"eventName": "x", "condition": 'timeout("t")', "nextState": "S1"}
                ],
            },
        },
        {"stateName": "S1"},
    ]
    body = _model(states)
    body["key"] = "id"
    model = load_detector_model(body, strict=False)
    clock = ManualClock(0.0)
    inputs = [
        load_input({"inputName": "In", "inputDefinition": {"attributes": [{"jsonPath": "id"}]}})
    ]
    engine = DetectorEngine(model, inputs, InMemoryStateStore(), clock, RecordingSink())
    engine.put_message("In", {"id": "k1"})
    clock.advance(4.9)
    assert engine.tick() == 0  # never early (§5 Decision)
    clock.advance(0.1)
    assert engine.tick() == 1
    assert engine.describe("k1")["detector"]["state"]["stateName"] == "S1"


@pytest.mark.parametrize(
    ("strict", "seconds", "said"),
    [
        (True, 30, "setTimer 't': 30 s outside 60-31622400 s"),
        (False, 0, "setTimer 't': 0 s; a timer must be at least 1 s"),
        (False, 10**12, "setTimer 't': 1000000000000 s; a timer must be at most 3153600000 s"),
    ],
)
def test_a_timer_duration_out_of_range_at_run_time_is_said_plainly(
    caplog: pytest.LogCaptureFixture, strict: bool, seconds: int, said: str
) -> None:
    arm = {"setTimer": {"timerName": "t", "durationExpression": "$input.In.d"}}
    message = _event(0, condition='currentInput("In")', actions=[arm])
    states = [{"stateName": "S0", "onInput": {"events": [message]}}]
    body = _model(states)
    body["key"] = "id"
    model = load_detector_model(body, strict=strict)
    attributes = [{"jsonPath": "id"}, {"jsonPath": "d"}]
    inputs = [load_input({"inputName": "In", "inputDefinition": {"attributes": attributes}})]
    clock = ManualClock(0.0)
    engine = DetectorEngine(model, inputs, InMemoryStateStore(), clock, RecordingSink())
    with caplog.at_level("DEBUG"):
        engine.put_message("In", {"id": "k1", "d": seconds})
    assert said in caplog.text, caplog.text
    assert engine.describe("k1")["detector"]["state"]["timers"] == []


@pytest.mark.parametrize(
    ("duration", "expires"),
    [
        (60.99, 60.0),
        (59.99, None),
        (31_622_400.9, 31_622_400.0),
        ("61.5", 61.0),
        (31_622_401, None),
    ],
)
def test_a_computed_duration_is_rounded_down_then_held_to_60_to_31622400_s(
    duration: float | str, expires: float | None
) -> None:
    """AWS: the duration "is rounded down to the nearest whole number" (60.99 s gives 60 s),
    and a timer lasts 60-31,622,400 s: so 59.99 s is refused, not rounded up into range."""
    arm = {"setTimer": {"timerName": "t", "durationExpression": "$input.In.d"}}
    message = _event(0, condition='currentInput("In")', actions=[arm])
    states = [{"stateName": "S0", "onInput": {"events": [message]}}]
    body = _model(states)
    body["key"] = "id"
    attributes = [{"jsonPath": "id"}, {"jsonPath": "d"}]
    inputs = [load_input({"inputName": "In", "inputDefinition": {"attributes": attributes}})]
    engine = DetectorEngine(
        load_detector_model(body), inputs, InMemoryStateStore(), ManualClock(0.0), RecordingSink()
    )
    engine.put_message("In", {"id": "k1", "d": duration})
    timers = engine.describe("k1")["detector"]["state"]["timers"]
    assert timers == ([] if expires is None else [{"name": "t", "timestamp": expires}])


@pytest.mark.parametrize("duration", [30, 31_622_401, -60, "soon"])
def test_a_computed_duration_out_of_range_leaves_a_running_timer_as_it_was(
    duration: int | str,
) -> None:
    """The action is not taken: the timer set by an earlier message keeps its expiry (AWS's
    SetTimerAction gives the range, not what a value past it does)."""
    arm = {"setTimer": {"timerName": "t", "durationExpression": "$input.In.d"}}
    message = _event(0, condition='currentInput("In")', actions=[arm])
    body = _model([{"stateName": "S0", "onInput": {"events": [message]}}])
    body["key"] = "id"
    attributes = [{"jsonPath": "id"}, {"jsonPath": "d"}]
    inputs = [load_input({"inputName": "In", "inputDefinition": {"attributes": attributes}})]
    clock = ManualClock(0.0)
    engine = DetectorEngine(
        load_detector_model(body), inputs, InMemoryStateStore(), clock, RecordingSink()
    )
    engine.put_message("In", {"id": "k1", "d": 600})
    clock.advance(10)
    engine.put_message("In", {"id": "k1", "d": duration})
    timers = engine.describe("k1")["detector"]["state"]["timers"]
    assert timers == [{"name": "t", "timestamp": 600.0}]
