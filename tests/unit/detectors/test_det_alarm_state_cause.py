"""DescribeAlarm's ``alarmState`` tells what brought the alarm to its current state, as the
payload of that change does: ``customerAction`` after an operator's action, ``systemEvent``
after a snooze ran out, neither after the rule moved it.

AlarmState "contains information about the current state of the alarm", and each
CustomerAction ``actionName`` is documented by the state it changes the alarm to ("When you
acknowledge the alarm, the alarm state changes to ACKNOWLEDGED"; iotevents-data API
reference, AlarmState and CustomerAction): an action the rule has since moved the alarm
away from no longer describes its state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detector_models import RecordingSink

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import load_input
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from edge.clock import ManualClock

ALARMS = Path(__file__).with_name("data") / "alarms"


class Boiler:
    def __init__(self) -> None:
        self.clock = ManualClock(1_000.0)
        self.sink = RecordingSink()
        self.engine = AlarmEngine(
            load_alarm_model(ALARMS / "boiler_high.json"),
            [load_input(ALARMS / "boiler_input.json")],
            InMemoryStateStore(),
            self.clock,
            self.sink,
        )

    def temp(self, value: float) -> None:
        self.engine.put_message("BoilerInput", {"boilerId": "b7", "temp": value})

    def described(self) -> dict[str, Any]:
        return self.engine.describe("b7")["alarm"]["alarmState"]

    def last_payload_state(self) -> dict[str, Any]:
        """The alarmState of the last alarm action's default payload (the sns action)."""
        sns = [r for r in self.sink.requests if r.kind == "sns" and "alarmState" in r.payload]
        return sns[-1].payload["alarmState"]


def test_a_rule_change_after_an_acknowledge_leaves_the_customer_action_out() -> None:
    b = Boiler()
    b.temp(85)
    b.engine.acknowledge("b7", note="valve checked")
    assert b.described()["customerAction"]["actionName"] == "ACKNOWLEDGE"
    assert b.last_payload_state()["customerAction"]["actionName"] == "ACKNOWLEDGE"
    b.clock.advance(60)
    b.temp(70)  # ACKNOWLEDGED -> NORMAL by the rule
    described = b.described()
    assert described["stateName"] == "NORMAL"
    assert "customerAction" not in described and "systemEvent" not in described
    assert described == b.last_payload_state()


def test_a_rule_change_after_a_reset_leaves_it_out_too() -> None:
    b = Boiler()
    b.temp(85)
    b.engine.reset("b7", note="cleared")
    assert b.described()["customerAction"]["actionName"] == "RESET"
    b.temp(90)  # NORMAL -> ACTIVE by the rule
    described = b.described()
    assert described["stateName"] == "ACTIVE" and "customerAction" not in described
    assert described == b.last_payload_state()


def test_a_snooze_that_runs_out_shows_the_system_event_alone() -> None:
    b = Boiler()
    b.temp(85)
    b.engine.snooze("b7", 120, note="pump swap")
    assert b.described()["customerAction"]["actionName"] == "SNOOZE"
    b.clock.advance(120)
    described_before_tick = b.described()  # a read after the expiry, before the timer ran
    b.engine.tick()
    described = b.described()
    assert described["stateName"] == "NORMAL"
    assert described["systemEvent"]["eventType"] == "STATE_CHANGE"
    assert "customerAction" not in described
    assert described_before_tick == described
    assert described == b.last_payload_state()


def test_an_operator_action_after_a_snooze_ran_out_shows_the_action_alone() -> None:
    b = Boiler()
    b.temp(85)
    b.engine.snooze("b7", 120)
    b.clock.advance(121)
    b.engine.tick()
    b.engine.disable("b7", note="maintenance")
    described = b.described()
    assert described["stateName"] == "DISABLED"
    assert described["customerAction"] == {
        "actionName": "DISABLE",
        "disableActionConfiguration": {"note": "maintenance"},
    }
    assert "systemEvent" not in described
    assert described == b.last_payload_state()
