"""A Create body (CreateDetectorModel, CreateInput, CreateAlarmModel) with a field the API
does not define is refused, naming the field's JSON path and the defined name it most
likely misspells.

AWS refuses such a body before it is created: boto3 fails it client-side ("Unknown
parameter in input", ParamValidationError) and the service answers a validation error. A
typo such as ``evaluationMethd`` must not pass for a model that silently runs BATCH, and
the error should point at ``evaluationMethod``, not only list every defined name.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from detector_models import DETECTOR_DATA, event, one_state_model
from hypothesis import given
from hypothesis import strategies as st

from cloud.detectors import load_detector_model, load_input
from cloud.detectors.alarms import load_alarm_model
from cloud.detectors.model import CREATE_DETECTOR_MODEL_FIELDS
from edge.errors import DetectorModelError

FIELD_NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,24}", fullmatch=True)


def model() -> dict[str, Any]:
    return one_state_model(event({"setVariable": {"variableName": "x", "value": "1"}}))


def alarm() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (DETECTOR_DATA / "alarms" / "boiler_high.json").read_text()
    )
    return document


def refusal(load: Any, body: dict[str, Any]) -> str:
    with pytest.raises(DetectorModelError) as caught:
        load(body)
    return str(caught.value)


@pytest.mark.parametrize(
    ("load", "body", "typo", "meant"),
    [
        (load_detector_model, model, "evaluationMethd", "evaluationMethod"),
        (load_detector_model, model, "detectorModelDescripton", "detectorModelDescription"),
        (
            load_input,
            lambda: json.loads((DETECTOR_DATA / "pressure_input.json").read_text()),
            "inputDescripton",
            "inputDescription",
        ),
        (load_alarm_model, alarm, "alarmCapabilites", "alarmCapabilities"),
        (load_alarm_model, alarm, "severty", "severity"),
    ],
)
def test_a_misspelt_top_level_field_names_its_path_and_the_field_meant(
    load: Any, body: Any, typo: str, meant: str
) -> None:
    document = body()
    document[typo] = "SERIAL"
    message = refusal(load, document)
    assert f"$.{typo}" in message, message
    assert f"did you mean '{meant}'" in message, message


def test_a_misspelt_nested_field_names_its_path_and_the_field_meant() -> None:
    document = model()
    on_input = document["detectorModelDefinition"]["states"][0]["onInput"]
    on_input["transitionEvent"] = []
    message = refusal(load_detector_model, document)
    assert "$.detectorModelDefinition.states[0].onInput.transitionEvent" in message, message
    assert "did you mean 'transitionEvents'" in message, message


def test_a_field_like_no_defined_one_lists_what_is_defined() -> None:
    document = model()
    document["zzzzzz"] = 1
    message = refusal(load_detector_model, document)
    assert "$.zzzzzz" in message and "did you mean" not in message, message
    assert all(name in message for name in CREATE_DETECTOR_MODEL_FIELDS), message


@given(FIELD_NAMES.filter(lambda n: n not in CREATE_DETECTOR_MODEL_FIELDS), st.integers())
def test_any_field_create_detector_model_does_not_define_is_refused_by_its_path(
    name: str, value: int
) -> None:
    document = model()
    document[name] = value
    message = refusal(load_detector_model, document)
    assert f"$.{name}" in message, message


def test_the_body_without_the_typo_loads() -> None:
    """The refusals above are the typo's, not the bodies'."""
    assert load_detector_model(model()).name == "m"
    assert load_alarm_model(alarm()).name
    assert load_input(DETECTOR_DATA / "pressure_input.json").name
