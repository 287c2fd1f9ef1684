"""Alarm models and alarm requests under hostile input: a model that cannot load says why,
naming the field; a request that cannot be taken is refused in AWS's shape; neither crashes
nor leaves a wrong state behind."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from detector_models import RecordingSink
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import load_input
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from cloud.detectors.alarms.operations import engine_from_store
from edge.clock import ManualClock
from edge.errors import DetectorModelError, UserError

ALARMS = Path(__file__).with_name("data") / "alarms"
BOILER: dict[str, Any] = json.loads((ALARMS / "boiler_high.json").read_text())


def boiler(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(BOILER)
    body.update(changes)
    return body


def engine_for(
    body: dict[str, Any], store: InMemoryStateStore | None = None, clock: ManualClock | None = None
) -> AlarmEngine:
    return AlarmEngine(
        load_alarm_model(body),
        [load_input(ALARMS / "boiler_input.json")],
        store if store is not None else InMemoryStateStore(),
        clock if clock is not None else ManualClock(1_000.0),
        RecordingSink(),
    )


# ------------------------------------------------------------------ loading


@pytest.mark.parametrize("value", ["²", "٣", "３", "-1", "+2", " 3", "3.0", ""])
def test_a_reminder_cap_that_is_not_ascii_digits_is_a_model_error(value: str) -> None:
    body = boiler(tags=[{"key": "plantwatch:reminderCap", "value": value}])
    with pytest.raises(DetectorModelError, match=r"\$\.tags\[0\]\.value"):
        load_alarm_model(body)


def test_a_reminder_cap_of_ascii_digits_loads() -> None:
    body = boiler(tags=[{"key": "plantwatch:reminderCap", "value": "07"}])
    assert load_alarm_model(body).reminder_cap == 7


def _email(body: dict[str, Any]) -> dict[str, Any]:
    action = body["alarmNotification"]["notificationActions"][0]
    return action["emailConfigurations"][0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("content", ["", [], 0, False, "Boiler"])
def test_an_email_content_that_is_not_an_object_is_a_model_error(content: Any) -> None:
    body = boiler()
    _email(body)["content"] = content
    with pytest.raises(DetectorModelError, match=r"emailConfigurations\[0\]\.content: expected an"):
        load_alarm_model(body)


@pytest.mark.parametrize("actions", ["", {}, 0, False, "sns"])
def test_alarm_actions_that_are_not_an_array_are_a_model_error(actions: Any) -> None:
    body = boiler(alarmEventActions={"alarmActions": actions})
    with pytest.raises(DetectorModelError, match=r"\$\.alarmEventActions\.alarmActions: expected"):
        load_alarm_model(body)


def test_left_out_email_content_and_alarm_actions_still_load() -> None:
    body = boiler(alarmEventActions={})
    del _email(body)["content"]
    model = load_alarm_model(body)
    assert model.actions == ()
    assert (
        model.notifications[0].emails[0].subject,
        model.notifications[0].emails[0].additional_message,
    ) == (None, None)


@pytest.mark.parametrize("description", [0, False, [], {}])
def test_a_description_that_is_not_a_string_is_a_model_error(description: Any) -> None:
    with pytest.raises(DetectorModelError, match=r"\$\.alarmModelDescription: expected a string"):
        load_alarm_model(boiler(alarmModelDescription=description))


# ------------------------------------------------------------------ the stored registry


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "document"),
        ("x", "document"),
        ({}, "definition"),
        ({"definition": 5}, "definition"),
        ({"definition": "boiler.json"}, "definition"),
        ({"definition": BOILER, "inputs": 5}, "inputs"),
        ({"definition": BOILER, "inputs": [5]}, "inputs"),
    ],
)
def test_a_registry_document_of_the_wrong_shape_is_named_not_a_crash(doc: Any, field: str) -> None:
    store = InMemoryStateStore()
    store.put("alarm-models", "boilerHigh", doc)
    with pytest.raises(UserError, match=rf"alarm-models/boilerHigh: {field}: expected"):
        engine_from_store(store, "boilerHigh", clock=ManualClock(), actions=RecordingSink())


def test_a_registered_model_builds_its_engine_again() -> None:
    store = InMemoryStateStore()
    engine = engine_for(BOILER, store, ManualClock())
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    again = engine_from_store(store, "boilerHigh", clock=ManualClock(), actions=RecordingSink())
    assert again.state_of("b7") == "ACTIVE"


@pytest.mark.parametrize("doc", [[], "x", 5])
def test_an_engine_starts_over_a_registry_document_that_is_not_an_object(doc: Any) -> None:
    store = InMemoryStateStore()
    store.put("alarm-models", "boilerHigh", doc)
    engine = engine_for(BOILER, store, ManualClock())
    assert engine.version == "1"
    assert store.get("alarm-models", "boilerHigh")["fingerprint"] == engine.model.fingerprint()


@pytest.mark.parametrize(
    ("stored", "after"), [("²", "1"), ("٣", "1"), ("9" * 5000, "1"), ("41", "42"), ("x", "1")]
)
def test_a_changed_definition_raises_a_stored_version_only_when_it_is_a_number(
    stored: str, after: str
) -> None:
    store = InMemoryStateStore()
    store.put("alarm-models", "boilerHigh", {"version": stored, "fingerprint": "older"})
    engine = engine_for(BOILER, store, ManualClock())
    assert engine.version == after


@pytest.mark.parametrize(
    ("side", "text", "named"),
    [
        ("threshold", "$variable.limit", r"\$variable\.limit"),
        ("threshold", "$variable.limit * 2", r"\$variable\.limit"),
        ("inputProperty", "$input.BoilerInput.temp + $variable.offset", r"\$variable\.offset"),
    ],
)
def test_a_rule_reading_a_variable_is_a_model_error(side: str, text: str, named: str) -> None:
    # an alarm model has no variables: the rule would never have a value to compare
    body = boiler()
    body["alarmRule"]["simpleRule"][side] = text
    with pytest.raises(DetectorModelError, match=rf"\$\.alarmRule\.simpleRule\.{side}: {named}"):
        load_alarm_model(body)


def test_a_rule_of_input_attributes_and_numbers_loads() -> None:
    body = boiler()
    body["alarmRule"]["simpleRule"]["threshold"] = "$input.BoilerInput.limit * 0.9 + 1"
    assert load_alarm_model(body).rule.threshold_text == "$input.BoilerInput.limit * 0.9 + 1"


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(["plantwatch:reminderCap", "plantwatch:reminderInterval", "other"]),
    value=st.text(max_size=12),
)
def test_any_plantwatch_tag_value_loads_or_is_a_model_error_naming_it(key: str, value: str) -> None:
    body = boiler(tags=[{"key": key, "value": value}])
    try:
        model = load_alarm_model(body)
    except DetectorModelError as exc:
        assert "$.tags[0]" in str(exc)
    else:
        assert model.reminder_cap >= 0
        assert model.reminder_interval_s is None or model.reminder_interval_s > 0
