"""Reading alarms (spec §7): DescribeAlarm and ListAlarms report the state as it stands.

SNOOZE_DISABLED: "After the snooze time, the alarm automatically changes to the NORMAL
state" (AlarmState, iotevents-data API reference), with the system event
``STATE_CHANGE``/``SNOOZE_TIMEOUT`` (StateChangeConfiguration). The engine runs that change
on its timer, but a read between the end of the snooze and the timer's run must already
see NORMAL: the same document the timer then writes, with the change made once.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from detector_models import RecordingSink

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import load_input
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from edge.clock import ManualClock
from edge.errors import UserError

KEY = "b7"
SNOOZE_S = 600
INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]},
}
SNOOZE_TIMEOUT = {
    "eventType": "STATE_CHANGE",
    "stateChangeConfiguration": {"triggerType": "SNOOZE_TIMEOUT"},
}


def body(*, key: str | None = "id") -> dict[str, Any]:
    model: dict[str, Any] = {
        "alarmModelName": "m",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "severity": 2,
        "alarmRule": {
            "simpleRule": {
                "inputProperty": "$input.In.v",
                "comparisonOperator": "GREATER",
                "threshold": "50",
            }
        },
        "alarmEventActions": {
            "alarmActions": [{"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:a"}}]
        },
        "alarmCapabilities": {
            "initializationConfiguration": {"disabledOnInitialization": False},
            "acknowledgeFlow": {"enabled": True},
        },
    }
    if key is not None:
        model["key"] = key
    return model


class Alarm:
    """An alarm model's engine on a manual clock; every request it hands over is kept."""

    def __init__(self, *, store: Any = None) -> None:
        self.clock = ManualClock()
        self.sink = RecordingSink()
        self.store = store if store is not None else InMemoryStateStore()
        self.engine = self.other()

    def other(self, **kw: Any) -> AlarmEngine:
        """Another engine over the same store and clock (a function, a CLI)."""
        return AlarmEngine(
            load_alarm_model(body()),
            [load_input(INPUT)],
            self.store,
            self.clock,
            self.sink,
            **kw,
        )

    def send(self, value: float, key: str = KEY) -> None:
        self.engine.put_message("In", {"id": key, "v": value})

    def state_changes(self) -> list[str]:
        return [r.state_name for r in self.sink.requests]


def snoozed_and_run_out(late_s: float = 30.0) -> tuple[Alarm, float]:
    """An ACTIVE alarm snoozed, then *late_s* past the end of the snooze with no timer run;
    the alarm and the time its snooze ended."""
    alarm = Alarm()
    alarm.send(99)
    alarm.clock.advance(5)
    alarm.engine.snooze(KEY, SNOOZE_S, note="pump swap", who="ana")
    ended = alarm.clock.now() + SNOOZE_S
    alarm.clock.advance(SNOOZE_S + late_s)
    return alarm, ended


def test_describe_after_the_snooze_ran_out_reports_normal_with_snooze_timeout() -> None:
    alarm, ended = snoozed_and_run_out()
    state = alarm.engine.describe(KEY)["alarm"]
    assert state["alarmState"]["stateName"] == "NORMAL"
    assert state["alarmState"]["systemEvent"] == SNOOZE_TIMEOUT
    # the snooze running out, not the operator's snooze, brought this state
    assert "customerAction" not in state["alarmState"]
    assert state["lastUpdateTime"] == ended  # it changed when the snooze ended
    assert alarm.engine.state_of(KEY) == "NORMAL"


def test_after_the_snooze_ran_out_the_last_rule_evaluation_stays_until_the_next_message() -> None:
    """AWS documents ruleEvaluation as "Information needed to evaluate data" and says only
    that the alarm "automatically changes to the NORMAL state" after the snooze (AlarmState,
    StateChangeConfiguration): nothing clears the last value. So NORMAL shows the value seen
    before the snooze, breached or not, and the next message evaluates the rule afresh."""
    alarm, _ended = snoozed_and_run_out()
    assert alarm.engine.tick() == 1
    state = alarm.engine.describe(KEY)["alarm"]["alarmState"]
    assert state["stateName"] == "NORMAL"
    assert state["ruleEvaluation"] == {
        "simpleRuleEvaluation": {
            "inputPropertyValue": "99",
            "operator": "GREATER",
            "thresholdValue": "50",
        }
    }
    alarm.send(99)
    assert alarm.engine.state_of(KEY) == "ACTIVE"


def test_a_read_before_the_snooze_ends_still_reports_snooze_disabled() -> None:
    alarm, _ended = snoozed_and_run_out(late_s=-1)
    state = alarm.engine.describe(KEY)["alarm"]["alarmState"]
    assert state["stateName"] == "SNOOZE_DISABLED"
    assert "systemEvent" not in state
    alarm.clock.advance(1)  # the snooze ends at its last second, as for a message
    assert alarm.engine.describe(KEY)["alarm"]["alarmState"]["stateName"] == "NORMAL"


def test_a_read_makes_no_transition_and_the_timer_makes_it_once() -> None:
    alarm, _ended = snoozed_and_run_out()
    stored = alarm.store.get("alarms/m", KEY)
    read = alarm.engine.describe(KEY)
    alarm.engine.describe(KEY)
    assert alarm.store.get("alarms/m", KEY) == stored  # a read writes nothing
    assert alarm.state_changes() == ["ACTIVE", "SNOOZE_DISABLED"]
    assert alarm.engine.tick() == 1  # the timer's run is the transition, once
    assert alarm.state_changes() == ["ACTIVE", "SNOOZE_DISABLED", "NORMAL"]
    assert alarm.engine.describe(KEY) == read  # what the read said is what was written
    assert alarm.engine.tick() == 0
    history = [entry["to"] for _k, entry in alarm.store.items("alarm-history/m")]
    assert history == ["ACTIVE", "SNOOZE_DISABLED", "NORMAL"]


def test_the_snooze_timeout_is_dated_when_the_snooze_ended_not_when_the_timer_ran() -> None:
    """The timer may run late (a one-minute schedule); the alarm changed at the snooze's end.
    lastUpdateTime is "the time the alarm was last updated" (Alarm, API reference)."""
    alarm, ended = snoozed_and_run_out(late_s=45)
    assert alarm.engine.tick() == 1
    state = alarm.engine.describe(KEY)["alarm"]
    assert state["lastUpdateTime"] == ended
    [expiry] = [r for r in alarm.sink.requests if r.state_name == "NORMAL"]
    assert expiry.payload["stateUpdateTime"] == round(ended * 1000)
    assert expiry.payload["alarmState"]["systemEvent"] == SNOOZE_TIMEOUT


def test_an_engine_that_reads_the_stored_alarm_reports_the_run_out_snooze_as_normal() -> None:
    """A function or CLI builds its own engine over the stored alarm (``preload=False``)."""
    alarm, ended = snoozed_and_run_out()
    alarm.engine.close()
    reader = alarm.other(preload=False)
    state = reader.describe(KEY)["alarm"]
    assert state["alarmState"]["stateName"] == "NORMAL"
    assert state["alarmState"]["systemEvent"] == SNOOZE_TIMEOUT
    assert state["lastUpdateTime"] == ended


# ---------------------------------------------------------------- ListAlarms


def test_list_alarms_summarises_every_instance_as_the_data_api_does() -> None:
    """ListAlarms (``GET /alarms/{alarmModelName}``): ``alarmSummaries`` of alarmModelName,
    alarmModelVersion, keyValue, stateName, creationTime, lastUpdateTime; no nextToken on
    the last page."""
    alarm = Alarm()
    alarm.send(99, key="b7")
    alarm.clock.advance(10)
    alarm.send(10, key="a1")
    alarm.clock.advance(10)
    alarm.send(20, key="b7")  # ACTIVE -> LATCHED
    start = 1_700_000_000.0
    assert alarm.engine.list_alarms() == {
        "alarmSummaries": [
            {
                "alarmModelName": "m",
                "alarmModelVersion": "1",
                "keyValue": "a1",
                "stateName": "NORMAL",
                "creationTime": start + 10,
                "lastUpdateTime": start + 10,
            },
            {
                "alarmModelName": "m",
                "alarmModelVersion": "1",
                "keyValue": "b7",
                "stateName": "LATCHED",
                "creationTime": start,
                "lastUpdateTime": start + 20,
            },
        ]
    }


def test_list_alarms_agrees_with_describe_alarm_for_each_instance() -> None:
    alarm, _ended = snoozed_and_run_out()
    alarm.send(10, key="c3")
    [run_out, other] = alarm.engine.list_alarms()["alarmSummaries"]
    for summary in (run_out, other):
        described = alarm.engine.describe(summary["keyValue"])["alarm"]
        assert summary == {
            "alarmModelName": described["alarmModelName"],
            "alarmModelVersion": described["alarmModelVersion"],
            "keyValue": described["keyValue"],
            "stateName": described["alarmState"]["stateName"],
            "creationTime": described["creationTime"],
            "lastUpdateTime": described["lastUpdateTime"],
        }
    assert run_out["stateName"] == "NORMAL"  # the snooze has run out


def test_list_alarms_reads_the_instances_another_engine_stored() -> None:
    """A function built per invocation (``preload=False``) lists every stored instance, not
    only the ones it has read."""
    alarm = Alarm()
    for key in ("k1", "k2", "k3"):
        alarm.send(99, key=key)
    alarm.engine.close()
    reader = alarm.other(preload=False)
    listed = reader.list_alarms()["alarmSummaries"]
    assert [(s["keyValue"], s["stateName"]) for s in listed] == [
        ("k1", "ACTIVE"),
        ("k2", "ACTIVE"),
        ("k3", "ACTIVE"),
    ]


def test_list_alarms_pages_with_max_results_and_next_token() -> None:
    alarm = Alarm()
    keys = [f"k{i:02d}" for i in range(7)]
    for key in reversed(keys):
        alarm.send(10, key=key)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = alarm.engine.list_alarms(max_results=3, next_token=token)
        pages += 1
        seen += [s["keyValue"] for s in page["alarmSummaries"]]
        token = page.get("nextToken")
        if token is None:
            break
    assert seen == keys
    assert pages == 3


@pytest.mark.parametrize("max_results", [0, 251, -1, True, 2.5])
def test_list_alarms_refuses_max_results_out_of_range(max_results: Any) -> None:
    """maxResults: "Valid Range: Minimum value of 1. Maximum value of 250" (ListAlarms)."""
    alarm = Alarm()
    alarm.send(10)
    with pytest.raises(UserError, match=r"maxResults: .*1 to 250"):
        alarm.engine.list_alarms(max_results=max_results)


@pytest.mark.parametrize("token", ["not base64!", "//8=", "YmFkIGtleSE="])  # "bad key!"
def test_list_alarms_refuses_a_next_token_it_did_not_give(token: str) -> None:
    alarm = Alarm()
    alarm.send(10)
    with pytest.raises(UserError, match="nextToken"):
        alarm.engine.list_alarms(next_token=token)


def test_list_alarms_of_a_model_without_key_leaves_key_value_out() -> None:
    """Without a ``key`` the model has one instance, and DescribeAlarm leaves keyValue out."""
    clock = ManualClock()
    engine = AlarmEngine(
        load_alarm_model(body(key=None)),
        [load_input(INPUT)],
        InMemoryStateStore(),
        clock,
        RecordingSink(),
    )
    assert engine.list_alarms() == {"alarmSummaries": []}
    engine.put_message("In", {"v": 99})
    [summary] = engine.list_alarms()["alarmSummaries"]
    assert "keyValue" not in summary
    assert summary["stateName"] == "ACTIVE"


# ---------------------------------------------------------------- a model without severity


def test_a_model_without_severity_leaves_it_out_of_what_it_reports() -> None:
    """``severity`` is optional in CreateAlarmModel, and in Alarm (DescribeAlarm) an Integer
    with "Required: No": a member AWS leaves out, never a JSON null."""
    model = body()
    del model["severity"]
    sink = RecordingSink()
    engine = AlarmEngine(
        load_alarm_model(model), [load_input(INPUT)], InMemoryStateStore(), ManualClock(), sink
    )
    engine.put_message("In", {"id": KEY, "v": 99})
    assert "severity" not in engine.describe(KEY)["alarm"]
    [action] = sink.requests
    assert "severity" not in action.payload
    notice = {"state": "ACTIVE", "time": 1_700_000_000.0, "value": 99, "threshold": 50}
    event = engine.notification_event(KEY, notice)
    assert "severity" not in json.loads(event["notificationEventPayload"])
