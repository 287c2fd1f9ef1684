"""Alarm data-plane requests at AWS's documented limits (found by the alarm state machine).

- requestId: "Each ID must be unique within each batch" (BatchAlarmActionErrorEntry,
  AcknowledgeAlarmActionRequest & co.).
- snoozeDuration: an Integer (SnoozeAlarmActionRequest), so at most 2**31 - 1 seconds.
- Acknowledge needs the acknowledge flow: "You must enable the acknowledge flow on the alarm
  so that you can acknowledge the alarm" (SiteWise user guide, Respond to alarms).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from detector_models import RecordingSink

from cloud.adapters.local import InMemoryStateStore, SqliteStateStore
from cloud.cli.main import main
from cloud.detectors import load_input
from cloud.detectors.alarms import AlarmEngine, AlarmStateError, load_alarm_model
from cloud.detectors.alarms.operations import batch_alarm_action
from edge.clock import ManualClock
from edge.errors import DetectorModelError

ALARMS = Path(__file__).with_name("data") / "alarms"


def boiler(*, ack_flow: bool = True) -> tuple[AlarmEngine, RecordingSink]:
    raw = json.loads((ALARMS / "boiler_high.json").read_text())
    raw["alarmCapabilities"]["acknowledgeFlow"]["enabled"] = ack_flow
    kept = RecordingSink()
    engine = AlarmEngine(
        load_alarm_model(raw),
        [load_input(ALARMS / "boiler_input.json")],
        InMemoryStateStore(),
        ManualClock(1_000.0),
        kept,
    )
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    assert engine.state_of("b7") == "ACTIVE"
    return engine, kept


def entry(request_id: str, **extra: Any) -> dict[str, Any]:
    return {"requestId": request_id, "alarmModelName": "boilerHigh", "keyValue": "b7", **extra}


@pytest.mark.parametrize("verb", ["acknowledge", "snooze", "reset", "enable", "disable"])
def test_a_request_id_repeated_in_one_batch_refuses_the_whole_batch(verb: str) -> None:
    engine, kept = boiler()
    extra = {"snoozeDuration": 60} if verb == "snooze" else {}
    body = {
        f"{verb}ActionRequests": [entry("a", **extra), entry("b", **extra), entry("a", **extra)]
    }
    with pytest.raises(DetectorModelError) as caught:
        batch_alarm_action({"boilerHigh": engine}, verb, body)
    message = str(caught.value)
    assert f"$.{verb}ActionRequests[2].requestId" in message
    assert "[0]" in message and "unique" in message
    assert "\n" not in message
    assert engine.state_of("b7") == "ACTIVE"  # nothing applied
    assert len(kept.requests) == 2  # only the ACTIVE change's action and email


def test_the_same_request_id_in_two_batches_is_fine() -> None:
    engine, _ = boiler()
    for verb in ("acknowledge", "reset"):
        body = {f"{verb}ActionRequests": [entry("same")]}
        assert batch_alarm_action({"boilerHigh": engine}, verb, body) == {"errorEntries": []}
    assert engine.state_of("b7") == "NORMAL"


@pytest.mark.parametrize("seconds", [2**31, 2**31 + 1, 2**53 - 1])
def test_a_snooze_duration_past_an_integer_is_refused(seconds: int) -> None:
    engine, _ = boiler()
    body = {"snoozeActionRequests": [entry("s", snoozeDuration=seconds)]}
    with pytest.raises(DetectorModelError, match=r"\[0\]\.snoozeDuration: .*1 to 2147483647"):
        batch_alarm_action({"boilerHigh": engine}, "snooze", body)
    assert engine.state_of("b7") == "ACTIVE"


def test_the_largest_integer_snooze_is_taken() -> None:
    engine, _ = boiler()
    body = {"snoozeActionRequests": [entry("s", snoozeDuration=2**31 - 1)]}
    assert batch_alarm_action({"boilerHigh": engine}, "snooze", body) == {"errorEntries": []}
    state = engine.describe("b7")["alarm"]["alarmState"]
    assert state["stateName"] == "SNOOZE_DISABLED"
    assert state["customerAction"]["snoozeActionConfiguration"]["snoozeDuration"] == 2**31 - 1


def test_without_the_acknowledge_flow_an_alarm_cannot_be_acknowledged() -> None:
    engine, kept = boiler(ack_flow=False)
    sent = len(kept.requests)
    with pytest.raises(AlarmStateError, match="acknowledge flow is off") as caught:
        engine.acknowledge("b7", note="seen")
    assert caught.value.state == "ACTIVE"
    # through the API: an action that does not fit is logged and ignored (spec §7)
    body = {"acknowledgeActionRequests": [entry("r1")]}
    assert batch_alarm_action({"boilerHigh": engine}, "acknowledge", body) == {"errorEntries": []}
    state = engine.describe("b7")["alarm"]["alarmState"]
    assert state["stateName"] == "ACTIVE"
    assert "customerAction" not in state
    assert len(kept.requests) == sent
    # back in range, the alarm returns to NORMAL by itself (AcknowledgeFlow FALSE)
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 20})
    assert engine.state_of("b7") == "NORMAL"


def test_with_the_acknowledge_flow_on_acknowledge_still_works() -> None:
    engine, _ = boiler(ack_flow=True)
    engine.acknowledge("b7", note="seen")
    assert engine.state_of("b7") == "ACKNOWLEDGED"


def test_alarms_ack_without_the_acknowledge_flow_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = json.loads((ALARMS / "boiler_high.json").read_text())
    raw["alarmCapabilities"]["acknowledgeFlow"]["enabled"] = False
    store = SqliteStateStore(tmp_path / "state.db")
    engine = AlarmEngine(
        load_alarm_model(raw),
        [load_input(ALARMS / "boiler_input.json")],
        store,
        ManualClock(1_000.0),
        RecordingSink(),
    )
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    engine.close()
    store.close()
    capsys.readouterr()
    assert main(["alarms", "ack", "boilerHigh", "b7", "--data", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        "plantwatch: error: cannot acknowledge alarm boilerHigh/b7: its acknowledge flow is off"
        " (alarmCapabilities.acknowledgeFlow.enabled); reset or disable it instead"
    ]


def test_a_reset_clears_the_latest_value_until_the_next_message() -> None:
    """SiteWise user guide, Respond to alarms: "Reset an alarm to clear its state and latest
    value"."""
    engine, kept = boiler()
    body = {"resetActionRequests": [entry("r1", note="sensor swapped")]}
    assert batch_alarm_action({"boilerHigh": engine}, "reset", body) == {"errorEntries": []}
    state = engine.describe("b7")["alarm"]["alarmState"]
    assert state == {
        "stateName": "NORMAL",
        "customerAction": {
            "actionName": "RESET",
            "resetActionConfiguration": {"note": "sensor swapped"},
        },
    }
    payload = kept.requests[-1].payload  # the RESET's notification carries no old value
    assert "ruleEvaluation" not in payload["alarmState"]
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 20})
    evaluation = engine.describe("b7")["alarm"]["alarmState"]["ruleEvaluation"]
    assert evaluation["simpleRuleEvaluation"]["inputPropertyValue"] == "20"


@pytest.mark.parametrize("duration", ["1.5s", "PT90.5S", "2147483648s"])
def test_alarms_snooze_takes_whole_seconds_within_an_integer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], duration: str
) -> None:
    """``--for 1.5s`` snoozed 1.5 s while DescribeAlarm said ``snoozeDuration: 1``."""
    store = SqliteStateStore(tmp_path / "state.db")
    engine = AlarmEngine(
        load_alarm_model(ALARMS / "boiler_high.json"),
        [load_input(ALARMS / "boiler_input.json")],
        store,
        ManualClock(1_000.0),
        RecordingSink(),
    )
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    engine.close()
    capsys.readouterr()
    args = ["alarms", "snooze", "boilerHigh", "b7", "--data", str(tmp_path)]
    assert main([*args, "--for", duration]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        "plantwatch: error: --for: a snooze lasts a whole number of seconds up to 2147483647"
        f" (snoozeDuration), got {duration!r}"
    ]
    assert main([*args, "--for", "2147483647s"]) == 0
    assert "SNOOZE_DISABLED" in capsys.readouterr().out
