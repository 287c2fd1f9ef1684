"""Detector engine semantics: evaluation order, BATCH vs SERIAL, timers, payloads, restarts."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from detector_models import RecordingSink

from cloud.adapters.local import InMemoryStateStore, SqliteStateStore
from cloud.detectors import ActionRequest, DetectorEngine, load_detector_model, load_input
from edge.clock import ManualClock
from edge.errors import DetectorModelError, NotFoundError

DATA = Path(__file__).with_name("data")
COUNTER_INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]},
}


class Failing(RecordingSink):
    def execute(self, request: ActionRequest) -> None:
        super().execute(request)
        raise RuntimeError("service down")


def model(
    states: list[dict[str, Any]],
    *,
    method: str = "BATCH",
    key: str | None = "id",
    initial: str = "A",
) -> Any:
    body: dict[str, Any] = {
        "detectorModelName": "m",
        "roleArn": "arn:aws:iam::1:role/r",
        "evaluationMethod": method,
        "detectorModelDefinition": {"initialStateName": initial, "states": states},
    }
    if key is not None:
        body["key"] = key
    return load_detector_model(body)


def engine(
    m: Any,
    sink: RecordingSink | None = None,
    store: Any = None,
    clock: ManualClock | None = None,
    inputs: Any = None,
) -> DetectorEngine:
    return DetectorEngine(
        m,
        [load_input(i) for i in (inputs or [COUNTER_INPUT])],
        store if store is not None else InMemoryStateStore(),
        clock or ManualClock(),
        sink or RecordingSink(),
    )


def sv(name: str, value: str) -> dict[str, Any]:
    return {"setVariable": {"variableName": name, "value": value}}


def countdown(method: str) -> Any:
    """AWS's example: an onInput event decrements a counter the same group's transition tests."""
    return model(
        [
            {
                "stateName": "A",
                "onEnter": {"events": [{"eventName": "init", "actions": [sv("count", "3")]}]},
                "onInput": {
                    "events": [
                        {
                            "eventName": "dec",
                            "condition": 'currentInput("In")',
                            "actions": [sv("count", "$variable.count - 1")],
                        }
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "done",
                            "condition": "$variable.count <= 0",
                            "nextState": "Done",
                        }
                    ],
                },
            },
            {"stateName": "Done"},
        ],
        method=method,
    )


def state_of(e: DetectorEngine, key: str = "k1") -> str:
    return e.describe(key)["detector"]["state"]["stateName"]


@pytest.mark.parametrize(("method", "messages_to_done"), [("BATCH", 4), ("SERIAL", 3)])
def test_batch_sees_the_snapshot_serial_sees_writes(method: str, messages_to_done: int) -> None:
    e = engine(countdown(method))
    states = []
    for _ in range(4):
        e.put_message("In", {"id": "k1"})
        states.append(state_of(e))
    assert states.index("Done") + 1 == messages_to_done


def test_on_enter_runs_on_creation_then_the_message() -> None:
    m = model(
        [
            {
                "stateName": "A",
                "onEnter": {"events": [{"eventName": "init", "actions": [sv("x", "10")]}]},
                "onInput": {
                    "events": [
                        {
                            "eventName": "add",
                            "condition": "$input.In.v > 0",
                            "actions": [sv("x", "$variable.x + $input.In.v")],
                        }
                    ]
                },
            }
        ]
    )
    e = engine(m)
    e.put_message("In", {"id": "k1", "v": 5})
    assert e.describe("k1")["detector"]["state"]["variables"] == [{"name": "x", "value": "15"}]


def test_actions_see_earlier_actions_and_on_enter_sees_transition_and_exit_writes() -> None:
    m = model(
        [
            {
                "stateName": "A",
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "go",
                            "condition": 'currentInput("In")',
                            "nextState": "B",
                            "actions": [sv("a", "1"), sv("b", "$variable.a + 1")],
                        }
                    ]
                },
                "onExit": {
                    "events": [{"eventName": "bye", "actions": [sv("c", "$variable.b * 10")]}]
                },
            },
            {
                "stateName": "B",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "hi",
                            "condition": "$variable.c == 20",
                            "actions": [sv("d", "'seen'")],
                        }
                    ]
                },
            },
        ]
    )
    e = engine(m)
    e.put_message("In", {"id": "k1"})
    variables = {v["name"]: v["value"] for v in e.describe("k1")["detector"]["state"]["variables"]}
    assert variables == {"a": "1", "b": "2", "c": "20", "d": '"seen"'}
    assert state_of(e) == "B"


def test_only_the_first_true_transition_fires_and_self_transition_reenters() -> None:
    m = model(
        [
            {
                "stateName": "A",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "init",
                            "condition": "isUndefined($variable.n)",
                            "actions": [sv("n", "1")],
                        },
                        {
                            "eventName": "again",
                            "condition": "!isUndefined($variable.n)",
                            "actions": [sv("n", "$variable.n + 1")],
                        },
                    ]
                },
                "onInput": {
                    "transitionEvents": [
                        {"eventName": "self", "condition": 'currentInput("In")', "nextState": "A"},
                        {"eventName": "other", "condition": "true", "nextState": "B"},
                    ]
                },
            },
            {
                "stateName": "B",
                "onEnter": {"events": [{"eventName": "b", "actions": [sv("b", "true")]}]},
            },
        ]
    )
    e = engine(m)
    e.put_message("In", {"id": "k1"})
    e.put_message("In", {"id": "k1"})
    assert state_of(e) == "A"
    assert e.describe("k1")["detector"]["state"]["variables"] == [{"name": "n", "value": "3"}]


def heartbeat(
    sink: RecordingSink | None = None, store: Any = None, clock: ManualClock | None = None
) -> DetectorEngine:
    return engine(
        load_detector_model(DATA / "motor_heartbeat.json"),
        sink,
        store,
        clock,
        inputs=[DATA / "pressure_input.json"],
    )


def test_spec_heartbeat_example_goes_offline_on_time_and_back_online() -> None:
    clock, sink = ManualClock(1_000.0), RecordingSink()
    e = heartbeat(sink, clock=clock)
    e.put_message(
        "PressureInput", {"motorid": "Fulton-A32", "sensorData": {"pressure": 80}}, "00001"
    )
    assert e.describe("Fulton-A32")["detector"]["state"]["timers"] == [
        {"name": "hb", "timestamp": 1300.0}
    ]
    clock.advance(200)
    e.put_message(
        "PressureInput", {"motorid": "Fulton-A32", "sensorData": {"pressure": 81}}, "00002"
    )
    clock.advance(299.9)
    assert e.tick() == 0  # never early: reset at 1200, due at 1500
    assert state_of(e, "Fulton-A32") == "Online"
    clock.advance(0.1)
    assert e.tick() == 1
    assert state_of(e, "Fulton-A32") == "Offline"
    assert e.tick() == 0  # once
    [alert] = sink.requests
    assert alert.kind == "sns" and alert.event_name == "lost" and alert.state_name == "Online"
    payload = alert.payload
    assert payload["eventTime"] == 1_500_000
    assert payload["payload"]["eventTriggerDetails"] == {"triggerType": "Timer", "timerName": "hb"}
    assert payload["payload"]["state"] == {
        "stateName": "Online",
        "variables": {"last": 81},
        "timers": {},
    }
    assert payload["payload"]["detector"] == {
        "detectorModelName": "motorHeartbeat",
        "keyValue": "Fulton-A32",
        "detectorModelVersion": "1",
    }
    uuid.UUID(payload["payload"]["actionExecutionId"])
    e.put_message("PressureInput", {"motorid": "Fulton-A32", "sensorData": {"pressure": 1}})
    assert state_of(e, "Fulton-A32") == "Online"


def test_a_timer_due_before_a_message_is_evaluated_before_it() -> None:
    """A timer fires at its expiry on AWS; a runtime that ticks once a minute (the timers
    Lambda) must not let a message that came after the expiry be evaluated first: here the
    heartbeat's resetTimer would have swallowed the lost heartbeat."""
    clock, sink = ManualClock(1_000.0), RecordingSink()
    e = heartbeat(sink, clock=clock)
    e.put_message("PressureInput", {"motorid": "Fulton-A32", "sensorData": {"pressure": 80}})
    clock.advance(400)  # hb was due at 1300; no tick ran since
    e.put_message("PressureInput", {"motorid": "Fulton-A32", "sensorData": {"pressure": 81}})
    assert [(r.event_name, r.payload["payload"]["eventTriggerDetails"]) for r in sink.requests] == [
        ("lost", {"triggerType": "Timer", "timerName": "hb"})
    ]
    assert state_of(e, "Fulton-A32") == "Online"  # Offline, then back on the message
    assert e.tick() == 0  # fired once


def test_due_timers_fire_once_each_in_expiry_order() -> None:
    clock = ManualClock(0.0)
    fired: list[str] = []

    class Order(RecordingSink):
        def execute(self, request: ActionRequest) -> None:
            fired.append(request.key_value or "")

    e = heartbeat(Order(), clock=clock)
    for key in ("m3", "m1", "m2"):
        e.put_message("PressureInput", {"motorid": key, "sensorData": {"pressure": 1}})
        clock.advance(10)
    clock.advance(1000)
    assert e.tick() == 3
    assert fired == ["m3", "m1", "m2"]
    assert e.next_timer() is None


def test_timeout_is_true_throughout_the_first_evaluation_that_checks_it() -> None:
    """AWS: "timeout() returns true only the first time it's checked following the actual
    timer expiration and returns false thereafter" (developer guide, Expressions). The first
    check is an evaluation's: every condition of that evaluation sees true, later ones false."""
    m = model(
        [
            {
                "stateName": "A",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "arm",
                            "actions": [{"setTimer": {"timerName": "t", "seconds": 60}}],
                        }
                    ]
                },
                "onInput": {
                    "events": [
                        {
                            "eventName": "first",
                            "condition": 'timeout("t")',
                            "actions": [sv("first", "$variable.first + 1")],
                        },
                        {
                            "eventName": "second",
                            "condition": 'timeout("t")',
                            "actions": [sv("second", "$variable.second + 1")],
                        },
                        {
                            "eventName": "timer",
                            "condition": 'triggerType("Timer") && !currentInput("In")',
                            "actions": [sv("timer", "true")],
                        },
                        {
                            "eventName": "init",
                            "condition": "isUndefined($variable.first)",
                            "actions": [sv("first", "0"), sv("second", "0")],
                        },
                    ]
                },
            }
        ]
    )
    clock = ManualClock(0.0)
    e = engine(m, clock=clock)
    e.put_message("In", {"id": "k1"})
    clock.advance(60)
    assert e.tick() == 1
    e.put_message("In", {"id": "k1"})  # a later evaluation: false again
    variables = {v["name"]: v["value"] for v in e.describe("k1")["detector"]["state"]["variables"]}
    assert variables == {"first": "1", "second": "1", "timer": "true"}


def snooze_model(method: str) -> Any:
    """The Snooze state of aws-samples/aws-iot-events-detection-sample (SERIAL there): an
    event and a transition both test the snooze timer's expiry."""
    return model(
        [
            {
                "stateName": "Snooze",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "SnoozeTimer",
                            "condition": "true",
                            "actions": [
                                sv("ack_active", "1"),
                                {"setTimer": {"timerName": "snoozeTime", "seconds": 120}},
                            ],
                        }
                    ]
                },
                "onInput": {
                    "events": [
                        {
                            "eventName": "SetSnoozeAck",
                            "condition": 'timeout("snoozeTime")',
                            "actions": [sv("ack_active", "0")],
                        }
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "SnoozeToNormal",
                            "condition": "$input.In.v < 10 && $variable.ack_active == 0",
                            "nextState": "Normal",
                        },
                        {
                            "eventName": "SnoozeToHighTemp",
                            "condition": 'timeout("snoozeTime") && $variable.ack_active == 0'
                            if method == "SERIAL"
                            else 'timeout("snoozeTime")',
                            "nextState": "HighTemp",
                        },
                    ],
                },
            },
            {"stateName": "Normal"},
            {"stateName": "HighTemp"},
        ],
        method=method,
        initial="Snooze",
    )


@pytest.mark.parametrize("method", ["SERIAL", "BATCH"])
def test_an_event_and_a_transition_both_see_the_timeout(method: str) -> None:
    clock = ManualClock(0.0)
    e = engine(snooze_model(method), clock=clock)
    e.put_message("In", {"id": "k1", "v": 50})
    clock.advance(120)
    assert e.tick() == 1
    assert state_of(e) == "HighTemp"
    variables = {v["name"]: v["value"] for v in e.describe("k1")["detector"]["state"]["variables"]}
    assert variables == {"ack_active": "0"}


def test_an_expiry_cleared_by_an_earlier_serial_event_is_still_seen_by_its_evaluation() -> None:
    """§5: a timer's expiry runs onInput with timeout("t") true. In SERIAL an event may
    clear t before the transition that tests it is reached; the evaluation of that expiry
    still sees it (as it does when an event sets t again), and the next one does not."""
    m = model(
        [
            {
                "stateName": "A",
                "onEnter": ARM_T,
                "onInput": {
                    "events": [
                        {
                            "eventName": "stop",
                            "condition": '!currentInput("In")',
                            "actions": [{"clearTimer": {"timerName": "t"}}],
                        }
                    ],
                    "transitionEvents": [
                        {"eventName": "late", "condition": 'timeout("t")', "nextState": "B"}
                    ],
                },
            },
            {"stateName": "B", "onInput": LATE_T},
        ],
        method="SERIAL",
    )
    clock = ManualClock(0.0)
    e = engine(m, clock=clock)
    e.put_message("In", {"id": "k1"})
    clock.advance(60)
    assert e.tick() == 1
    assert state_of(e) == "B"
    e.put_message("In", {"id": "k1"})  # the expiry was seen: B's timeout("t") is false
    assert e.describe("k1")["detector"]["state"]["variables"] == []


@pytest.mark.parametrize("duration", [float("inf"), float("nan"), "1_000", "nan", "90.5"])
def test_a_duration_from_the_message_is_a_number_or_the_timer_is_not_set(
    duration: Any, caplog: pytest.LogCaptureFixture
) -> None:
    m = model(
        [
            {
                "stateName": "A",
                "onInput": {
                    "events": [
                        {
                            "eventName": "arm",
                            "condition": 'currentInput("In")',
                            "actions": [
                                {
                                    "setTimer": {
                                        "timerName": "t",
                                        "durationExpression": "$input.In.v",
                                    }
                                },
                                sv("after", "1"),
                            ],
                        }
                    ]
                },
            }
        ]
    )
    e = engine(m, clock=ManualClock(0.0))
    with caplog.at_level(logging.WARNING):
        e.put_message("In", {"id": "k1", "v": duration})
    state = e.describe("k1")["detector"]["state"]
    assert state["variables"] == [{"name": "after", "value": "1"}]
    if duration == "90.5":
        assert state["timers"] == [{"name": "t", "timestamp": 90.0}]
        return
    assert state["timers"] == []
    assert "setTimer 't': duration" in caplog.text and "is not a number" in caplog.text


def test_reset_and_clear_timer() -> None:
    m = model(
        [
            {
                "stateName": "A",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "arm",
                            "actions": [
                                {"setTimer": {"timerName": "t", "durationExpression": "60 + 0.9"}}
                            ],
                        }
                    ]
                },
                "onInput": {
                    "events": [
                        {
                            "eventName": "reset",
                            "condition": "$input.In.v == 1",
                            "actions": [{"resetTimer": {"timerName": "t"}}],
                        },
                        {
                            "eventName": "clear",
                            "condition": "$input.In.v == 2",
                            "actions": [{"clearTimer": {"timerName": "t"}}],
                        },
                    ]
                },
            }
        ]
    )
    clock = ManualClock(0.0)
    e = engine(m, clock=clock)
    e.put_message("In", {"id": "k1", "v": 0})
    assert e.describe("k1")["detector"]["state"]["timers"] == [
        {"name": "t", "timestamp": 60.0}
    ]  # rounded down
    clock.advance(30)
    e.put_message("In", {"id": "k1", "v": 1})
    assert e.describe("k1")["detector"]["state"]["timers"] == [{"name": "t", "timestamp": 90.0}]
    e.put_message("In", {"id": "k1", "v": 2})
    assert e.describe("k1")["detector"]["state"]["timers"] == []
    clock.advance(1000)
    assert e.tick() == 0


ARM_T = {
    "events": [{"eventName": "arm", "actions": [{"setTimer": {"timerName": "t", "seconds": 60}}]}]
}
"""onEnter: set timer t to 60 s."""
LATE_T = {
    "events": [{"eventName": "late", "condition": 'timeout("t")', "actions": [sv("late", "true")]}]
}
"""onInput: note a timeout("t") in variable late."""


def armed_in_a_checked_in_c(c_on_enter: dict[str, Any]) -> Any:
    """A arms t and moves on at the next input to B, which never checks t, then to C,
    whose onEnter runs *c_on_enter* and whose inputs check timeout("t")."""
    return model(
        [
            {
                "stateName": "A",
                "onEnter": ARM_T,
                "onInput": {
                    "transitionEvents": [
                        {"eventName": "toB", "condition": 'currentInput("In")', "nextState": "B"}
                    ]
                },
            },
            {
                "stateName": "B",
                "onInput": {
                    "transitionEvents": [
                        {"eventName": "toC", "condition": 'currentInput("In")', "nextState": "C"}
                    ]
                },
            },
            {"stateName": "C", "onEnter": {"events": [c_on_enter]}, "onInput": LATE_T},
        ]
    )


def test_a_cleared_timer_has_no_timeout_left_to_report() -> None:
    """clearTimer "deletes an existing timer" (developer guide, built-in actions): an expiry
    nobody had checked goes with it, as setTimer already forgets one."""
    m = armed_in_a_checked_in_c(
        {"eventName": "clear", "actions": [{"clearTimer": {"timerName": "t"}}]}
    )
    clock = ManualClock(0.0)
    e = engine(m, clock=clock)
    e.put_message("In", {"id": "k1"})  # A arms t, then on to B
    clock.advance(60)
    assert e.tick() == 1  # t expires in B, which never checks it
    e.put_message("In", {"id": "k1"})  # on to C, whose onEnter clears t
    e.put_message("In", {"id": "k1"})
    assert state_of(e) == "C"
    assert e.describe("k1")["detector"]["state"]["variables"] == []


def test_setting_a_timer_again_forgets_an_expiry_nobody_checked() -> None:
    """setTimer on t starts a new timer (§4 Decision: setting a running timer restarts it),
    so timeout("t") answers for that timer: an earlier expiry no condition had checked is
    gone, and the new one is reported when it comes (docs/detectors.md, "unless setTimer or
    clearTimer on t came first")."""
    m = armed_in_a_checked_in_c(
        {"eventName": "rearm", "actions": [{"setTimer": {"timerName": "t", "seconds": 120}}]}
    )
    clock = ManualClock(0.0)
    e = engine(m, clock=clock)
    e.put_message("In", {"id": "k1"})  # A arms t, then on to B
    clock.advance(60)
    assert e.tick() == 1  # t expires in B, which never checks it
    e.put_message("In", {"id": "k1"})  # on to C, whose onEnter sets t again: due at 180
    e.put_message("In", {"id": "k1"})  # C checks timeout("t") before the new t expires
    assert state_of(e) == "C"
    assert e.describe("k1")["detector"]["state"]["variables"] == []
    clock.set(180.0)
    assert e.tick() == 1  # the new t expires, and C sees it
    assert e.describe("k1")["detector"]["state"]["variables"] == [{"name": "late", "value": "true"}]


def test_an_expiry_cleared_during_its_own_evaluation_unchecked_is_spent() -> None:
    m = model(
        [
            {
                "stateName": "A",
                "onEnter": ARM_T,
                "onInput": {
                    "events": [
                        {
                            "eventName": "clear",
                            "condition": 'triggerType("Timer")',
                            "actions": [{"clearTimer": {"timerName": "t"}}],
                        }
                    ],
                    "transitionEvents": [
                        {"eventName": "toB", "condition": "$input.In.v == 1", "nextState": "B"}
                    ],
                },
            },
            {
                "stateName": "B",
                "onInput": LATE_T,
            },
        ]
    )
    clock = ManualClock(0.0)
    e = engine(m, clock=clock)
    e.put_message("In", {"id": "k1", "v": 0})
    clock.advance(60)
    assert e.tick() == 1  # A clears t on its expiry without testing timeout("t")
    e.put_message("In", {"id": "k1", "v": 1})  # on to B
    e.put_message("In", {"id": "k1", "v": 2})
    assert state_of(e) == "B"
    assert e.describe("k1")["detector"]["state"]["variables"] == []


def test_instances_and_timers_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    clock, sink = ManualClock(0.0), RecordingSink()
    store = SqliteStateStore(db)
    first = heartbeat(sink, store, clock)
    first.put_message("PressureInput", {"motorid": "m1", "sensorData": {"pressure": 5}})
    before = first.describe("m1")
    store.close()

    clock.advance(301)
    store2 = SqliteStateStore(db)
    second = heartbeat(sink, store2, clock)
    assert second.describe("m1")["detector"]["state"] == before["detector"]["state"]
    assert second.tick() == 1
    assert state_of(second, "m1") == "Offline"
    store2.close()
    third = heartbeat(sink, SqliteStateStore(db), clock)
    assert state_of(third, "m1") == "Offline"
    assert third.tick() == 0
    assert [r.event_name for r in sink.requests] == ["lost"]


def test_an_integer_squared_on_every_message_stops_growing_and_the_instance_lives(
    tmp_path: Path,
) -> None:
    """Integers past a decimal's range are undefined, like a decimal overflow (§3), so a
    model cannot grow a variable until the instance can no longer be saved."""
    m = model(
        [
            {
                "stateName": "A",
                "onEnter": {"events": [{"eventName": "init", "actions": [sv("x", "10")]}]},
                "onInput": {
                    "events": [
                        {
                            "eventName": "square",
                            "condition": 'currentInput("In")',
                            "actions": [
                                sv("x", "$variable.x * $variable.x"),
                                sv("n", "$input.In.v"),
                            ],
                        }
                    ]
                },
            }
        ]
    )
    e = engine(m, store=SqliteStateStore(tmp_path / "state.db"))
    for i in range(16):
        e.put_message("In", {"id": "k1", "v": i})
    variables = {v["name"]: v["value"] for v in e.describe("k1")["detector"]["state"]["variables"]}
    assert variables == {"x": "1" + "0" * 256, "n": "15"}


def test_a_string_doubled_on_every_message_stops_at_1024_characters_and_the_instance_lives(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """AWS's Variable.value holds at most 1,024 characters (iotevents-data API reference);
    a setVariable giving more leaves the variable as it was, named in the log, instead of
    letting a model double a string on every message until the process runs out of memory."""
    m = model(
        [
            {
                "stateName": "A",
                "onEnter": {"events": [{"eventName": "init", "actions": [sv("s", "'xy'")]}]},
                "onInput": {
                    "events": [
                        {
                            "eventName": "double",
                            "condition": 'currentInput("In")',
                            "actions": [
                                sv("s", "$variable.s + $variable.s"),
                                sv("n", "$input.In.v"),
                            ],
                        }
                    ]
                },
            }
        ]
    )
    e = engine(m, store=SqliteStateStore(tmp_path / "state.db"))
    with caplog.at_level(logging.DEBUG, logger="cloud.detectors.engine"):
        for i in range(14):
            e.put_message("In", {"id": "k1", "v": i})
    variables = {v["name"]: v["value"] for v in e.describe("k1")["detector"]["state"]["variables"]}
    assert variables == {"s": '"' + "xy" * 512 + '"', "n": "13"}
    assert "value has 2048 characters; a variable holds at most 1024" in caplog.text


@pytest.mark.parametrize(("length", "kept"), [(1024, True), (1025, False)])
def test_a_variable_counts_the_characters_of_its_string(length: int, kept: bool) -> None:
    """The limit counts a string's characters, not the escapes DescribeDetector prints for
    them: 1,024 CJK characters fit."""
    m = model(
        [
            {
                "stateName": "A",
                "onInput": {
                    "events": [
                        {
                            "eventName": "keep",
                            "condition": 'currentInput("In")',
                            "actions": [sv("s", "$input.In.v")],
                        }
                    ]
                },
            }
        ]
    )
    e = engine(m)
    e.put_message("In", {"id": "k1", "v": "first"})
    e.put_message("In", {"id": "k1", "v": "\u6f22" * length})
    (variable,) = e.describe("k1")["detector"]["state"]["variables"]
    assert json.loads(variable["value"]) == ("\u6f22" * length if kept else "first")


def test_failed_action_is_logged_and_state_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    sink = Failing()
    m = model(
        [
            {
                "stateName": "A",
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "go",
                            "condition": 'currentInput("In")',
                            "nextState": "B",
                            "actions": [
                                {"sns": {"targetArn": "arn:aws:sns:us-east-1:1:t"}},
                                sv("after", "1"),
                            ],
                        }
                    ]
                },
            },
            {"stateName": "B"},
        ]
    )
    e = engine(m, sink)
    with caplog.at_level(logging.ERROR):
        e.put_message("In", {"id": "k1"})
    assert "action sns of event 'go' failed" in caplog.text
    assert state_of(e) == "B"
    assert e.describe("k1")["detector"]["state"]["variables"] == [{"name": "after", "value": "1"}]


def test_custom_payloads_and_evaluated_fields() -> None:
    sink = RecordingSink()
    m = model(
        [
            {
                "stateName": "A",
                "onInput": {
                    "events": [
                        {
                            "eventName": "out",
                            "condition": 'currentInput("In")',
                            "actions": [
                                {
                                    "iotTopicPublish": {
                                        "mqttTopic": "plant/${$input.In.id}/v",
                                        "payload": {
                                            "contentExpression": "'{\"v\": ${$input.In.v}}'",
                                            "type": "JSON",
                                        },
                                    }
                                },
                                {
                                    "iotTopicPublish": {
                                        "mqttTopic": "'x/' + $input.In.id",
                                        "payload": {
                                            "contentExpression": "'v=${$input.In.v}'",
                                            "type": "STRING",
                                        },
                                    }
                                },
                                {
                                    "lambda": {
                                        "functionArn": "arn:aws:lambda:us-east-1:1:function:f"
                                    }
                                },
                                {
                                    "dynamoDB": {
                                        "hashKeyField": "'asset'",
                                        "hashKeyValue": "$input.In.id",
                                        "tableName": "'t'",
                                    }
                                },
                            ],
                        }
                    ]
                },
            }
        ]
    )
    e = engine(m, sink)
    e.put_message("In", {"id": "k1", "v": 2.5}, "m-1")
    first, second, third, fourth = sink.requests
    assert (first.target["mqttTopic"], first.payload, first.payload_type) == (
        "plant/k1/v",
        {"v": 2.5},
        "JSON",
    )
    assert (second.target["mqttTopic"], second.payload, second.payload_type) == (
        "x/k1",
        "v=2.5",
        "STRING",
    )
    assert third.payload_type == "DEFAULT"
    assert third.payload["payload"]["eventTriggerDetails"] == {
        "inputName": "In",
        "messageId": "m-1",
        "triggerType": "Message",
    }
    assert fourth.target["hashKeyValue"] == "k1" and fourth.target["tableName"] == "t"
    ids = {r.payload["payload"]["actionExecutionId"] for r in (third,)}
    e.put_message("In", {"id": "k1", "v": 2.5})
    assert sink.requests[6].payload["payload"]["actionExecutionId"] not in ids


def test_keyless_model_has_one_instance_and_no_key_value() -> None:
    sink = RecordingSink()
    m = model(
        [
            {
                "stateName": "A",
                "onInput": {
                    "events": [
                        {
                            "eventName": "e",
                            "condition": 'currentInput("In")',
                            "actions": [{"sns": {"targetArn": "arn:aws:sns:us-east-1:1:t"}}],
                        }
                    ]
                },
            }
        ],
        key=None,
    )
    e = engine(m, sink)
    e.put_message("In", {"v": 1})
    e.put_message("In", {"v": 2})
    assert e.key_values() == [""]
    assert "keyValue" not in sink.requests[0].payload["payload"]["detector"]
    assert "keyValue" not in e.describe()["detector"]


def test_missing_or_invalid_key_skips_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    e = engine(countdown("BATCH"))
    with caplog.at_level(logging.WARNING):
        e.put_message("In", {"v": 1})
        e.put_message("In", {"id": "bad key!"})
    assert e.key_values() == []
    assert "without key" in caplog.text and "does not match" in caplog.text


def test_a_stream_of_bad_keys_warns_once_per_kind_with_the_value_clipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A device sending junk keys must not flood the log, nor copy a megabyte into it: the
    same kind of bad key is warned about once, and the value is shown clipped."""
    e = engine(countdown("BATCH"))
    huge = "x" * 1_000_000 + "!"
    with caplog.at_level(logging.WARNING, logger="cloud.detectors.engine"):
        for _ in range(5):
            e.put_message("In", {"v": 1})
            e.put_message("In", {"id": huge})
    assert e.key_values() == []
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert all(len(m) < 300 for m in messages)
    assert "without key" in messages[0] and "does not match" in messages[1]


def test_unknown_input_and_unknown_key() -> None:
    e = engine(countdown("BATCH"))
    with pytest.raises(NotFoundError, match="input 'Nope' does not exist"):
        e.put_message("Nope", {"id": "k1"})
    with pytest.raises(NotFoundError, match="no instance for key 'zz'"):
        e.describe("zz")


def test_iot_events_action_re_enters_as_a_message() -> None:
    from cloud.adapters.local import InMemoryNotifier
    from cloud.detectors.actions import LocalActionSink

    feedback = {
        "inputName": "Echo",
        "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "n"}]},
    }
    m = model(
        [
            {
                "stateName": "A",
                "onInput": {
                    "events": [
                        {
                            "eventName": "echo",
                            "condition": 'currentInput("In")',
                            "actions": [
                                {
                                    "iotEvents": {
                                        "inputName": "Echo",
                                        "payload": {
                                            "contentExpression": '\'{"id": "${$input.In.id}", "n": 7}\'',
                                            "type": "JSON",
                                        },
                                    }
                                }
                            ],
                        },
                        {
                            "eventName": "got",
                            "condition": 'currentInput("Echo")',
                            "actions": [sv("n", "$input.Echo.n")],
                        },
                    ]
                },
            }
        ]
    )
    sink = LocalActionSink(InMemoryNotifier(), None)
    e = DetectorEngine(
        m,
        [load_input(COUNTER_INPUT), load_input(feedback)],
        InMemoryStateStore(),
        ManualClock(),
        sink,
    )
    e.put_message("In", {"id": "k1"})
    assert e.describe("k1")["detector"]["state"]["variables"] == [{"name": "n", "value": "7"}]


def test_describe_shape() -> None:
    clock = ManualClock(100.0)
    e = heartbeat(clock=clock)
    e.put_message("PressureInput", {"motorid": "m1", "sensorData": {"pressure": 2.5}})
    clock.advance(5)
    e.put_message("PressureInput", {"motorid": "m1", "sensorData": {"pressure": 15.0}})
    assert e.describe("m1") == {
        "detector": {
            "detectorModelName": "motorHeartbeat",
            "keyValue": "m1",
            "detectorModelVersion": "1",
            "creationTime": 100.0,
            "lastUpdateTime": 105.0,
            "state": {
                "stateName": "Online",
                "variables": [{"name": "last", "value": "15.0"}],
                "timers": [{"name": "hb", "timestamp": 405.0}],
            },
        }
    }


def test_a_changed_model_deletes_instances_and_raises_the_version(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    first = engine(countdown("BATCH"), store=store)
    first.put_message("In", {"id": "k1"})
    again = engine(countdown("BATCH"), store=store)
    assert again.key_values() == ["k1"] and again.version == "1"
    changed = engine(countdown("SERIAL"), store=store)
    assert changed.key_values() == [] and changed.version == "2"
    changed.put_message("In", {"id": "k1"})
    assert changed.describe("k1")["detector"]["detectorModelVersion"] == "2"


def test_batch_update_detector_sets_state_variables_and_timers() -> None:
    clock = ManualClock(0.0)
    e = heartbeat(clock=clock)
    e.put_message("PressureInput", {"motorid": "m1", "sensorData": {"pressure": 5}})
    e.update_detector(
        "m1",
        {
            "stateName": "Offline",
            "variables": [{"name": "last", "value": "15.0"}],
            "timers": [{"name": "hb", "seconds": 60}],
        },
    )
    state = e.describe("m1")["detector"]["state"]
    assert state == {
        "stateName": "Offline",
        "variables": [{"name": "last", "value": "15.0"}],
        "timers": [{"name": "hb", "timestamp": 60.0}],
    }
    e.update_detector("m1", {"stateName": "Online"})
    assert e.describe("m1")["detector"]["state"] == {
        "stateName": "Online",
        "variables": [],
        "timers": [],
    }
    with pytest.raises(DetectorModelError, match="unknown state 'Gone'"):
        e.update_detector("m1", {"stateName": "Gone"})
    with pytest.raises(DetectorModelError, match=r"timers\[0\]"):
        e.update_detector("m1", {"stateName": "Online", "timers": [{"name": "hb", "seconds": 5}]})
    for bad, match in (
        ({"stateName": ["Online"]}, "unknown state"),
        ({"stateName": "Online", "variables": True}, "variables: expected an array"),
        ({"stateName": "Online", "timers": {"hb": 60}}, "timers: expected an array"),
        ([], r"expected \{stateName, variables, timers\}"),
        (
            {"stateName": "Online", "variables": [{"name": "x", "value": "9" * 5000}]},
            r"variables\[0\]",
        ),
    ):
        with pytest.raises(DetectorModelError, match=match):
            e.update_detector("m1", bad)  # type: ignore[arg-type]


def test_reset_timers_do_not_pile_up() -> None:
    clock = ManualClock(0.0)
    e = heartbeat(clock=clock)
    for i in range(3000):
        e.put_message("PressureInput", {"motorid": f"m{i % 3}", "sensorData": {"pressure": i}})
        clock.advance(0.01)
    assert len(e._heap) <= 1024
    clock.advance(301)
    assert e.tick() == 3


def test_a_null_value_leaves_the_variable_as_it_was(caplog: pytest.LogCaptureFixture) -> None:
    """AWS (developer guide, Expressions, References): "A variable can't be unset. For
    example, you can't assign it the value null." A setVariable whose value is JSON null
    leaves the variable unchanged, as an undefined value does."""
    m = model(
        [
            {
                "stateName": "A",
                "onInput": {
                    "events": [
                        {
                            "eventName": "keep",
                            "condition": 'currentInput("In")',
                            "actions": [sv("n", "$input.In.v")],
                        }
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "nulled",
                            "condition": "isNull($variable.n)",
                            "nextState": "B",
                        }
                    ],
                },
            },
            {"stateName": "B"},
        ],
        method="SERIAL",
    )
    e = engine(m)
    e.put_message("In", {"id": "k1", "v": 5})
    with caplog.at_level(logging.DEBUG):
        e.put_message("In", {"id": "k1", "v": None})
    assert state_of(e) == "A"
    assert e.describe("k1")["detector"]["state"]["variables"] == [{"name": "n", "value": "5"}]
    assert "a variable cannot be set to null" in caplog.text
