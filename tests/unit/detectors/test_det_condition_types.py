"""A condition must be Boolean (spec §3 creation checks): one whose type the model fixes as a
number or a string is refused when the model loads, naming the state and the event, even when
it is a bare variable reference whose type only the model's setVariable actions give."""

from __future__ import annotations

from typing import Any

import pytest
from detector_models import event, one_state_model
from hypothesis import given
from hypothesis import strategies as st

from cloud.detectors import load_detector_model
from cloud.detectors.expr import Literal as Lit
from cloud.detectors.expr import unparse
from edge.errors import DetectorModelError


def sv(name: str, value: str) -> dict[str, Any]:
    return {"setVariable": {"variableName": name, "value": value}}


def two_states(condition: str, *, where: str) -> dict[str, Any]:
    """Two states: A sets ``x`` to 3 on input; *condition* sits in B's *where* group."""
    b: dict[str, Any] = {"stateName": "B"}
    tested = {"eventName": "check", "condition": condition, "actions": []}
    if where == "transition":
        b["onInput"] = {"transitionEvents": [{**tested, "nextState": "A"}]}
    elif where == "onInput":
        b["onInput"] = {"events": [tested]}
    else:
        b[where] = {"events": [tested]}
    return {
        "detectorModelName": "m",
        "key": "id",
        "roleArn": "arn:aws:iam::1:role/r",
        "detectorModelDefinition": {
            "initialStateName": "A",
            "states": [
                {
                    "stateName": "A",
                    "onInput": {
                        "events": [event(sv("x", "3"), name="count")],
                        "transitionEvents": [
                            {"eventName": "go", "condition": "true", "nextState": "B"}
                        ],
                    },
                },
                b,
            ],
        },
    }


def test_a_bare_number_variable_as_a_condition_is_refused_naming_state_and_event() -> None:
    body = one_state_model(
        event(sv("x", "$input.In.v + 1"), sv("x", "0"), name="count"),
        event(sv("seen", "true"), condition="$variable.x", name="use x"),
    )
    with pytest.raises(DetectorModelError) as info:
        load_detector_model(body, source="m.json")
    message = str(info.value)
    assert message.startswith(
        "m.json: $.detectorModelDefinition.states[0].onInput.events[1].condition:"
    )
    assert "must be Boolean, not number" in message
    assert "variable 'x'" in message
    assert "state 'A'" in message and "event 'use x'" in message


def test_a_bare_string_variable_as_a_condition_is_refused() -> None:
    body = one_state_model(
        event(sv("mode", "'safe'"), sv("mode", "'normal' + 'x'"), name="set"),
        event(condition="$variable.mode", name="test"),
    )
    with pytest.raises(
        DetectorModelError, match=r"events\[1\]\.condition: must be Boolean, not string"
    ):
        load_detector_model(body)


@pytest.mark.parametrize("where", ["transition", "onInput", "onEnter", "onExit"])
def test_every_group_s_conditions_are_checked(where: str) -> None:
    with pytest.raises(DetectorModelError, match="must be Boolean, not number") as info:
        load_detector_model(two_states("$variable.x", where=where))
    assert "state 'B'" in str(info.value) and "event 'check'" in str(info.value)


@pytest.mark.parametrize(
    "condition",
    ["$variable.x * 2", "-$variable.x", "$variable.x + $variable.x", "($variable.x)"],
)
def test_arithmetic_on_number_variables_is_a_number_not_a_condition(condition: str) -> None:
    with pytest.raises(DetectorModelError, match="must be Boolean, not number"):
        load_detector_model(two_states(condition, where="onInput"))


@pytest.mark.parametrize(
    "condition",
    [
        "$variable.x > 2",
        '$variable.x == 3 && currentInput("In")',
        "isUndefined($variable.x)",
        "$variable.x != $variable.x",
    ],
)
def test_boolean_conditions_over_number_variables_load(condition: str) -> None:
    load_detector_model(two_states(condition, where="onInput"))


def test_a_variable_set_to_booleans_is_a_condition() -> None:
    body = one_state_model(
        event(sv("ok", "true"), sv("ok", "$input.In.v > 3"), name="set"),
        event(condition="$variable.ok", name="use"),
    )
    load_detector_model(body)


def test_a_variable_whose_type_depends_on_data_is_left_to_run_time() -> None:
    """Set from an input attribute (of any type) once: it may hold a Boolean, so the model
    loads and the run-time rule (anything but Boolean true is false) applies."""
    body = one_state_model(
        event(sv("flag", "$input.In.v"), sv("flag", "1"), name="set"),
        event(condition="$variable.flag", name="use"),
    )
    load_detector_model(body)


literals = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(
        st.characters(codec="utf-8", exclude_characters="'\"$`"),
        max_size=12,
    ),
    st.booleans(),
)


@given(values=st.lists(literals, min_size=1, max_size=4))
def test_a_bare_variable_condition_loads_exactly_when_its_values_are_booleans(
    values: list[Any],
) -> None:
    setters = [sv("x", unparse(Lit(v))) for v in values]
    body = one_state_model(event(*setters, name="set"), event(condition="$variable.x", name="use"))
    families = {
        "boolean" if isinstance(v, bool) else "string" if isinstance(v, str) else "number"
        for v in values
    }
    if len(families) > 1:
        with pytest.raises(DetectorModelError, match="a variable has one type"):
            load_detector_model(body)
    elif families == {"boolean"}:
        load_detector_model(body)
    else:
        with pytest.raises(DetectorModelError, match=f"must be Boolean, not {families.pop()}"):
            load_detector_model(body)


@pytest.mark.parametrize(
    ("first", "second", "kinds"),
    [
        ("$input.In.v * 2", "'high'", ("string", "number")),
        ("'a'", "$input.In.v + 1", ("number", "string")),
        ("-$input.In.v", "true", ("boolean", "number")),
        ("$input.In.v / $input.In.w", "$input.In.v > 1", ("boolean", "number")),
    ],
)
def test_arithmetic_on_data_fixes_a_variable_s_type(
    first: str, second: str, kinds: tuple[str, str]
) -> None:
    """Arithmetic gives a number (or undefined, which leaves the variable unchanged)
    whatever it reads, so a variable also set to a string or Boolean has two types."""
    body = one_state_model(event(sv("x", first), name="one"), event(sv("x", second), name="two"))
    with pytest.raises(DetectorModelError) as info:
        load_detector_model(body)
    assert f"variable 'x' is set to a {kinds[0]} here and a {kinds[1]} at" in str(info.value)
    assert str(info.value).endswith("a variable has one type")


@pytest.mark.parametrize(
    "values",
    [
        ("$input.In.v * 2", "0", "$variable.x + 1.5"),
        ("$input.In.s + 'x'", "'a'"),
        ("$input.In.v", "'a'"),  # read from data: any type, not checked
    ],
)
def test_variables_of_one_type_load(values: tuple[str, ...]) -> None:
    body = one_state_model(event(*(sv("x", v) for v in values), name="set"))
    load_detector_model(body)
