"""BatchAcknowledgeAlarm, BatchSnoozeAlarm & co. as AWS takes them (spec §7 Requests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from detector_models import RecordingSink

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import load_input
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from cloud.detectors.alarms.operations import OperatorRequest, batch_alarm_action
from edge.clock import ManualClock
from edge.errors import DetectorModelError, NotFoundError, UserError

ALARMS = Path(__file__).with_name("data") / "alarms"


def boiler() -> tuple[AlarmEngine, ManualClock]:
    clock = ManualClock(1_000.0)
    engine = AlarmEngine(
        load_alarm_model(ALARMS / "boiler_high.json"),
        [load_input(ALARMS / "boiler_input.json")],
        InMemoryStateStore(),
        clock,
        RecordingSink(),
    )
    return engine, clock


def entry(request_id: str, **extra: Any) -> dict[str, Any]:
    return {"requestId": request_id, "alarmModelName": "boilerHigh", "keyValue": "b7", **extra}


def test_each_verb_moves_the_alarm_and_answers_with_error_entries() -> None:
    engine, clock = boiler()
    engines = {"boilerHigh": engine}
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    assert engine.state_of("b7") == "ACTIVE"

    body = {"acknowledgeActionRequests": [entry("r1", note="valve checked")]}
    assert batch_alarm_action(engines, "acknowledge", body) == {"errorEntries": []}
    alarm_state = engine.describe("b7")["alarm"]["alarmState"]
    assert alarm_state["stateName"] == "ACKNOWLEDGED"
    assert alarm_state["customerAction"] == {
        "actionName": "ACKNOWLEDGE",
        "acknowledgeActionConfiguration": {"note": "valve checked"},
    }

    body = {"snoozeActionRequests": [entry("r2", snoozeDuration=120)]}
    assert batch_alarm_action(engines, "snooze", body) == {"errorEntries": []}
    assert engine.state_of("b7") == "SNOOZE_DISABLED"
    clock.advance(120)
    engine.tick()
    assert engine.state_of("b7") == "NORMAL"

    assert batch_alarm_action(engines, "disable", {"disableActionRequests": [entry("r3")]}) == {
        "errorEntries": []
    }
    assert engine.state_of("b7") == "DISABLED"
    assert batch_alarm_action(engines, "enable", {"enableActionRequests": [entry("r4")]}) == {
        "errorEntries": []
    }
    assert engine.state_of("b7") == "NORMAL"
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 90})
    assert batch_alarm_action(engines, "reset", {"resetActionRequests": [entry("r5")]}) == {
        "errorEntries": []
    }
    assert engine.state_of("b7") == "NORMAL"


def test_an_action_without_a_note_describes_no_note() -> None:
    """The API's action configurations hold ``note`` only when one was given; DescribeAlarm
    showed ``"note": ""`` after every action taken without one."""
    clock, sink = ManualClock(1_000.0), RecordingSink()
    engine = AlarmEngine(
        load_alarm_model(ALARMS / "boiler_high.json"),
        [load_input(ALARMS / "boiler_input.json")],
        InMemoryStateStore(),
        clock,
        sink,
    )
    engines = {"boilerHigh": engine}
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    batch_alarm_action(engines, "acknowledge", {"acknowledgeActionRequests": [entry("r1")]})
    assert engine.describe("b7")["alarm"]["alarmState"]["customerAction"] == {
        "actionName": "ACKNOWLEDGE",
        "acknowledgeActionConfiguration": {},
    }
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 60})
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 95})
    body = {"snoozeActionRequests": [entry("r2", snoozeDuration=120)]}
    batch_alarm_action(engines, "snooze", body)
    sent = sink.requests[-1].payload["alarmState"]["customerAction"]
    described = engine.describe("b7")["alarm"]["alarmState"]["customerAction"]
    expected = {"actionName": "SNOOZE", "snoozeActionConfiguration": {"snoozeDuration": 120}}
    assert described == sent == expected
    clock.advance(1)
    engine.disable("b7", note="", who="op")
    assert engine.describe("b7")["alarm"]["alarmState"]["customerAction"] == {
        "actionName": "DISABLE",
        "disableActionConfiguration": {},
    }


def test_unknown_model_or_key_is_an_entry_and_a_misfit_is_ignored() -> None:
    engine, _ = boiler()
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 70})
    body = {
        "acknowledgeActionRequests": [
            entry("a", alarmModelName="nope"),
            entry("b", keyValue="b8"),
            entry("c"),  # NORMAL cannot be acknowledged: logged and ignored
        ]
    }
    errors = batch_alarm_action({"boilerHigh": engine}, "acknowledge", body)["errorEntries"]
    assert [(e["requestId"], e["errorCode"]) for e in errors] == [
        ("a", "ResourceNotFoundException"),
        ("b", "ResourceNotFoundException"),
    ]
    assert "nope" in errors[0]["errorMessage"] and "b8" in errors[1]["errorMessage"]
    assert engine.state_of("b7") == "NORMAL"


@pytest.mark.parametrize(
    ("verb", "items", "expected"),
    [
        ("acknowledge", None, "$.acknowledgeActionRequests: expected 1-10 requests (missing)"),
        ("reset", [entry(f"r{i}") for i in range(10)], "expected 1-10 requests (11 requests)"),
        ("reset", [entry("bad id")], "$.resetActionRequests[1].requestId: expected 1-64"),
        ("reset", [entry("x" * 65)], "[1].requestId: expected 1-64"),
        ("reset", [entry("r", keyValue="b 7")], "[1].keyValue: expected 1-128"),
        ("reset", [entry("r", keyValue="")], "[1].keyValue: expected 1-128"),
        ("reset", [entry("r", keyValue="b" * 129)], "[1].keyValue: expected 1-128"),
        ("reset", [entry("r", note="n" * 257)], "[1].note: expected a string of at most 256"),
        ("snooze", [entry("r")], "[1].snoozeDuration: expected a whole number"),
        ("snooze", [entry("r", snoozeDuration=1.5)], "[1].snoozeDuration: expected a whole"),
        ("snooze", [entry("r", snoozeDuration=True)], "[1].snoozeDuration: expected a whole"),
        ("snooze", [entry("r", snoozeDuration=10**400)], "[1].snoozeDuration: expected a whole"),
    ],
)
def test_a_malformed_request_is_rejected_whole_and_changes_nothing(
    verb: str, items: list[dict[str, Any]] | None, expected: str
) -> None:
    engine, _ = boiler()
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    first = entry("first", snoozeDuration=60) if verb == "snooze" else entry("first")
    body = {} if items is None else {f"{verb}ActionRequests": [first, *items]}
    with pytest.raises(DetectorModelError) as info:
        batch_alarm_action({"boilerHigh": engine}, verb, body)
    assert expected in str(info.value)
    assert engine.state_of("b7") == "ACTIVE"  # the valid first entry was not applied either


def test_an_endless_snooze_is_refused_by_the_engine() -> None:
    engine, _ = boiler()
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    with pytest.raises(UserError, match="snooze: duration must be a positive number"):
        engine.snooze("b7", float("inf"))
    with pytest.raises(UserError, match="would end after 9000-01-01T00:00:00Z"):
        engine.snooze("b7", 1e12)
    assert engine.state_of("b7") == "ACTIVE"


def test_an_empty_request_list_is_rejected() -> None:
    engine, _ = boiler()
    with pytest.raises(DetectorModelError, match=r"expected 1-10 requests \(0 requests\)"):
        batch_alarm_action({"boilerHigh": engine}, "enable", {"enableActionRequests": []})


@pytest.mark.parametrize("verb", ["acknowledge", "reset", "disable"])
def test_a_note_that_is_not_text_is_refused_whole_and_changes_nothing(verb: str) -> None:
    engine, _ = boiler()
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    body = {f"{verb}ActionRequests": [entry("first"), entry("r", note="valve \ud800")]}
    with pytest.raises(DetectorModelError, match=r"\[1\]\.note: .*not a Unicode character"):
        batch_alarm_action({"boilerHigh": engine}, verb, body)
    assert engine.state_of("b7") == "ACTIVE"


def test_the_engine_refuses_a_note_it_cannot_store() -> None:
    engine, _ = boiler()
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    with pytest.raises(UserError, match=r"note: .*not a Unicode character"):
        engine.acknowledge("b7", note="\udcff")
    assert engine.state_of("b7") == "ACTIVE"
    engine.acknowledge("b7", note="ok")
    assert engine.state_of("b7") == "ACKNOWLEDGED"


def test_a_null_note_is_a_note_left_out() -> None:
    engine, _ = boiler()
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    body = {"acknowledgeActionRequests": [entry("r", note=None)]}
    assert batch_alarm_action({"boilerHigh": engine}, "acknowledge", body) == {"errorEntries": []}
    assert engine.state_of("b7") == "ACKNOWLEDGED"


def test_the_engine_refuses_a_who_it_cannot_store() -> None:
    engine, _ = boiler()
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    with pytest.raises(UserError, match=r"who: .*not a Unicode character"):
        engine.disable("b7", who="op\udcff")  # a login name of non-UTF-8 bytes
    assert engine.state_of("b7") == "ACTIVE"


def test_the_engine_snoozes_for_whole_seconds_only() -> None:
    engine, _ = boiler()
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    with pytest.raises(UserError, match=r"snooze: duration must be whole seconds, got 1\.5 s"):
        engine.snooze("b7", 1.5)  # describe would show snoozeDuration 1 for a 1.5 s snooze
    assert engine.state_of("b7") == "ACTIVE"
    engine.snooze("b7", 90.0)
    state = engine.describe("b7")["alarm"]["alarmState"]
    assert state["customerAction"]["snoozeActionConfiguration"]["snoozeDuration"] == 90


def test_a_request_for_the_stack_inbox_refuses_what_it_could_not_store() -> None:
    with pytest.raises(UserError, match="note: position 0 holds"):
        OperatorRequest("ACKNOWLEDGE", "boilerHigh", "b7", note="\udcff")
    with pytest.raises(UserError, match="who: position 2 holds"):
        OperatorRequest("ACKNOWLEDGE", "boilerHigh", "b7", who="op\udcff")


def test_a_key_value_that_does_not_fit_the_model_names_why_and_fails_only_its_entry() -> None:
    """keyValue is optional in the request and names the instance of a model with a key;
    an entry that gives one to a model without key, or none to a model with one, is invalid
    for that model whatever alarms exist: an InvalidRequestException entry ("The request
    was invalid", BatchAcknowledgeAlarm's Errors), as BatchUpdateDetector answers such an
    entry, not ResourceNotFoundException, which is for a model or alarm that does not
    exist. It says which, while the other entries are applied."""
    keyed, _ = boiler()
    keyed.put_message("BoilerInput", {"boilerId": "b7", "temp": 90})
    body = json.loads((ALARMS / "boiler_high.json").read_text())
    del body["key"]
    body["alarmModelName"] = "boilerAny"
    keyless = AlarmEngine(
        load_alarm_model(body),
        [load_input(ALARMS / "boiler_input.json")],
        InMemoryStateStore(),
        ManualClock(1_000.0),
        RecordingSink(),
    )
    keyless.put_message("BoilerInput", {"temp": 90})
    engines = {"boilerHigh": keyed, "boilerAny": keyless}
    request = {
        "acknowledgeActionRequests": [
            {"requestId": "no-key", "alarmModelName": "boilerHigh"},
            {"requestId": "a-key", "alarmModelName": "boilerAny", "keyValue": "b7"},
            entry("fine"),
            {"requestId": "fine-too", "alarmModelName": "boilerAny"},
        ]
    }
    errors = batch_alarm_action(engines, "acknowledge", request)["errorEntries"]
    assert [(e["requestId"], e["errorCode"]) for e in errors] == [
        ("no-key", "InvalidRequestException"),
        ("a-key", "InvalidRequestException"),
    ]
    assert set(errors[0]) == {"requestId", "errorCode", "errorMessage"}
    assert "keyValue is required" in errors[0]["errorMessage"]
    assert "key 'boilerId'" in errors[0]["errorMessage"]
    assert "has no key" in errors[1]["errorMessage"]
    assert "leave keyValue out" in errors[1]["errorMessage"]
    assert (keyed.state_of("b7"), keyless.state_of()) == ("ACKNOWLEDGED", "ACKNOWLEDGED")


def test_an_unknown_key_of_a_fleet_lists_a_few_known_keys_not_the_fleet() -> None:
    engine, _ = boiler()
    for i in range(25):
        engine.put_message("BoilerInput", {"boilerId": f"b{i:02d}", "temp": 70})
    engine.close()
    body = {"resetActionRequests": [entry("r", keyValue="b99")]}
    [error] = batch_alarm_action({"boilerHigh": engine}, "reset", body)["errorEntries"]
    assert error["errorMessage"].endswith(
        "(known: b00, b01, b02, b03, b04, b05, b06, b07, b08, b09 and 15 more)"
    )


@pytest.mark.parametrize("key", ["", "b" * 129, "b 7", "b7\n"])
def test_the_engine_refuses_a_key_value_no_alarm_could_have_as_an_invalid_request(
    key: str,
) -> None:
    """What AWS's API shape refuses (keyValue: 1-128 of ^[a-zA-Z0-9\\-_:]+$) is an invalid
    request at the engine's entry points too (the CLI, the stack's inbox), not an alarm
    that was not found; the message names the field and does not repeat a long value."""
    engine, _ = boiler()
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 90})
    with pytest.raises(UserError) as info:
        engine.acknowledge(key)
    assert not isinstance(info.value, NotFoundError)
    message = str(info.value)
    assert "keyValue" in message and "1-128 of [a-zA-Z0-9-_:]" in message
    assert len(message) < 300
    assert engine.state_of("b7") == "ACTIVE"
    with pytest.raises(NotFoundError, match="no instance for key 'b8'"):
        engine.acknowledge("b8")  # a key value a message could bring: not found (yet)
