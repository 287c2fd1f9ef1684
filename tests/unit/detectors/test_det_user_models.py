"""Detector models written the way users write them (not AWS's examples), run through
``plantwatch detectors run`` and through the router, checked against the contract
(specs/iotevents-contracts.md §2-§5): a hysteresis model with two variables and a timer
reset on every message, a counter whose state names hold spaces and dots, and a model
reading one element of a nested array in its payload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from detector_models import ROLE_ARN, RecordingSink

from cloud.adapters.local import InMemoryStateStore
from cloud.cli.main import main
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.replay import advance_clock
from cloud.detectors.router import MessageRouter
from edge.clock import ManualClock
from edge.errors import NotFoundError

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SNS = "arn:aws:sns:us-east-1:123456789012:ops"

BOILER = {
    "inputName": "Boiler",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "temp"}]},
}
LINE = {
    "inputName": "Line",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "readings"}]},
}


def _state(
    name: str,
    *,
    enter: list[dict[str, Any]] | None = None,
    events: list[dict[str, Any]] | None = None,
    transitions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    state: dict[str, Any] = {"stateName": name}
    if enter:
        state["onEnter"] = {"events": enter}
    if events or transitions:
        state["onInput"] = {"events": events or [], "transitionEvents": transitions or []}
    return state


def _go(name: str, condition: str, target: str, *actions: dict[str, Any]) -> dict[str, Any]:
    return {"eventName": name, "condition": condition, "nextState": target, "actions": [*actions]}


TRACK = {
    "eventName": "track",
    "condition": 'currentInput("Boiler")',
    "actions": [
        {"resetTimer": {"timerName": "watchdog"}},
        {"setVariable": {"variableName": "last", "value": "$input.Boiler.temp"}},
    ],
}
PEAK = {
    "eventName": "peak",
    "condition": "isUndefined($variable.peak) || $input.Boiler.temp > $variable.peak",
    "actions": [{"setVariable": {"variableName": "peak", "value": "$input.Boiler.temp"}}],
}
SILENCE = _go("silence", 'timeout("watchdog")', "Silent")
HYSTERESIS = {
    "detectorModelName": "boilerHysteresis",
    "key": "id",
    "roleArn": ROLE_ARN,
    "detectorModelDefinition": {
        "initialStateName": "Idle",
        "states": [
            _state(
                "Idle",
                enter=[
                    {
                        "eventName": "arm",
                        "actions": [
                            {"setTimer": {"timerName": "watchdog", "durationExpression": "120"}}
                        ],
                    }
                ],
                events=[TRACK, PEAK],
                transitions=[_go("heat", "$input.Boiler.temp > 80", "Hot"), SILENCE],
            ),
            _state(
                "Hot",
                events=[TRACK, PEAK],
                transitions=[_go("cool", "$input.Boiler.temp < 70", "Idle"), SILENCE],
            ),
            _state("Silent", transitions=[_go("back", 'currentInput("Boiler")', "Idle")]),
        ],
    },
}

COUNTER = {
    "detectorModelName": "stepCounter",
    "key": "id",
    "roleArn": ROLE_ARN,
    "detectorModelDefinition": {
        "initialStateName": "Counting up",
        "states": [
            _state(
                "Counting up",
                enter=[
                    {
                        "eventName": "zero",
                        "actions": [{"setVariable": {"variableName": "count", "value": "0"}}],
                    }
                ],
                events=[
                    {
                        "eventName": "one more",
                        "condition": 'currentInput("Boiler")',
                        "actions": [
                            {
                                "setVariable": {
                                    "variableName": "count",
                                    "value": "$variable.count + 1",
                                }
                            }
                        ],
                    }
                ],
                # BATCH: the transition sees count as the group started (§2), so 2, not 3
                transitions=[_go("full", "$variable.count >= 2", "v1.2 done")],
            ),
            _state(
                "v1.2 done",
                enter=[{"eventName": "tell", "actions": [{"sns": {"targetArn": SNS}}]}],
                transitions=[_go("again", "$input.Boiler.temp < 0", "Counting up")],
            ),
        ],
    },
}

THIRD = "$input.Line.readings[2].value"
NESTED = {
    "detectorModelName": "lineThird",
    "key": "id",
    "roleArn": ROLE_ARN,
    "detectorModelDefinition": {
        "initialStateName": "Low",
        "states": [
            _state(
                "Low",
                events=[
                    {
                        "eventName": "keep",
                        "condition": 'currentInput("Line")',
                        "actions": [{"setVariable": {"variableName": "third", "value": THIRD}}],
                    }
                ],
                transitions=[
                    _go(
                        "high",
                        f"{THIRD} > 10",
                        "High",
                        {
                            "iotTopicPublish": {
                                "mqttTopic": "line/${$input.Line.id}/high",
                                "payload": {
                                    "contentExpression": '\'{"third": ${' + THIRD + "}}'",
                                    "type": "JSON",
                                },
                            }
                        },
                    )
                ],
            ),
            _state("High", transitions=[_go("low", f"{THIRD} <= 10", "Low")]),
        ],
    },
}


def boiler(minute: float, temp: Any, key: str = "b1") -> dict[str, Any]:
    return {
        "inputName": "Boiler",
        "payload": {"id": key, "temp": temp},
        "timestamp": {"timeInMillis": START_MS + round(minute * 60_000)},
    }


def line(minute: float, readings: list[Any], key: str = "L1") -> dict[str, Any]:
    return {
        "inputName": "Line",
        "payload": {"id": key, "readings": readings},
        "timestamp": {"timeInMillis": START_MS + round(minute * 60_000)},
    }


def replay(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model: dict[str, Any],
    lines: list[dict[str, Any]],
    *extra: str,
) -> dict[str, Any]:
    """``detectors run --json`` with both inputs given."""
    files = {"model.json": model, "boiler.json": BOILER, "line.json": LINE}
    for name, body in files.items():
        (tmp_path / name).write_text(json.dumps(body))
    messages = tmp_path / "m.jsonl"
    messages.write_text("".join(json.dumps(x) + "\n" for x in lines))
    argv = ["detectors", "run", str(tmp_path / "model.json"), "--messages", str(messages)]
    argv += ["--input", str(tmp_path / "boiler.json"), "--input", str(tmp_path / "line.json")]
    assert main([*argv, "--json", *extra]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def moves(doc: dict[str, Any]) -> list[tuple[float, str, str, str]]:
    return [
        (e["t"], e["from"], e["to"], e["event"]) for e in doc["events"] if e["type"] == "transition"
    ]


def variables(doc: dict[str, Any], index: int = 0) -> dict[str, str]:
    state = doc["detectors"][index]["detector"]["state"]
    return {v["name"]: v["value"] for v in state["variables"]}


HYSTERESIS_LINES = [
    boiler(0, 75),
    boiler(1, 85),  # above 80: Hot
    boiler(2, 75),  # back below 80, not below 70: still Hot
    boiler(3, 65),  # below 70: Idle, whose entry sets the watchdog again
    boiler(7, 72),  # the watchdog (3 + 2 minutes) fired first: Silent, then back
]


def test_hysteresis_switches_at_its_two_thresholds_and_its_watchdog_restarts_each_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = replay(capsys, tmp_path, HYSTERESIS, HYSTERESIS_LINES)
    assert moves(doc) == [
        (60.0, "Idle", "Hot", "heat"),
        (180.0, "Hot", "Idle", "cool"),
        (300.0, "Idle", "Silent", "silence"),  # at its exact expiry, not at the next message
        (420.0, "Silent", "Idle", "back"),
    ]
    fired = [e["t"] for e in doc["events"] if e["type"] == "timer" and e["op"] == "fired"]
    assert fired == [300.0]  # each message reset it: 120 s after the last one, never before
    assert variables(doc) == {"last": "65", "peak": "85"}  # Silent tracks nothing
    [timer] = doc["detectors"][0]["detector"]["state"]["timers"]
    assert timer["name"] == "watchdog" and timer["timestamp"] == START_MS / 1000 + 420 + 120
    assert not [e for e in doc["events"] if e["type"] == "error"]


def test_a_counter_with_spaces_and_dots_in_its_state_names_runs_batch_as_aws_says(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = [boiler(0, 1), boiler(1, 2), boiler(2, 3), boiler(3, -5), boiler(4, 1)]
    doc = replay(capsys, tmp_path, COUNTER, lines)
    assert moves(doc) == [
        (120.0, "Counting up", "v1.2 done", "full"),  # the third message: count was 2
        (180.0, "v1.2 done", "Counting up", "again"),
    ]
    [sns] = [e for e in doc["events"] if e["type"] == "action" and e["action"] == "sns"]
    payload = sns["payload"]
    assert payload["eventName"] == "tell"
    assert payload["eventTime"] == START_MS + 120_000
    assert payload["payload"]["state"] == {
        "stateName": "v1.2 done",
        "variables": {"count": 3},
        "timers": {},
    }
    assert payload["payload"]["detector"] == {
        "detectorModelName": "stepCounter",
        "keyValue": "b1",
        "detectorModelVersion": "1",
    }
    assert variables(doc) == {"count": "1"}  # entering "Counting up" again set it to 0
    assert doc["detectors"][0]["detector"]["state"]["stateName"] == "Counting up"
    serial = replay(capsys, tmp_path, COUNTER, lines, "--evaluation-method", "SERIAL")
    # SERIAL: the transition sees the event's write, so the second message already counts
    assert moves(serial)[0] == (60.0, "Counting up", "v1.2 done", "full")


def test_a_model_reading_an_element_of_a_nested_array(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = [
        line(0, [{"value": 50}, {"value": 50}]),  # no third reading: undefined, no transition
        line(1, [{"value": 1}, {"value": 2}, {"value": 12.5}]),
        line(2, [{"value": 1}, {"value": 2}, {"value": 10}, {"value": 99}]),
        line(3, [1, 2, 3]),  # readings[2] holds no object: .value is undefined
    ]
    doc = replay(capsys, tmp_path, NESTED, lines)
    assert moves(doc) == [(60.0, "Low", "High", "high"), (120.0, "High", "Low", "low")]
    [publish] = [e for e in doc["events"] if e["type"] == "action" and e["action"] != "setVariable"]
    assert publish["target"] == {"mqttTopic": "line/L1/high"}
    assert publish["payload"] == {"third": 12.5}
    errors = [
        (e["t"], e["path"].rsplit(".", 1)[-1], e["expression"])
        for e in doc["events"]
        if e["type"] == "error"
    ]
    assert errors == [(0.0, "value", THIRD), (180.0, "value", THIRD)]
    assert variables(doc) == {"third": "12.5"}  # High keeps nothing; undefined leaves it
    assert doc["detectors"][0]["detector"]["state"]["stateName"] == "Low"


def test_the_router_feeds_each_message_to_the_models_reading_its_input() -> None:
    """BatchPutMessage ingests a message "into any detectors that monitor that input" (§1):
    the Boiler messages reach the hysteresis and the counter, the Line ones only the array
    reader, and every model ends where its own replay ends."""
    clock = ManualClock(START_MS / 1000)
    inputs = [load_input(BOILER), load_input(LINE)]
    sink = RecordingSink()
    engines = [
        DetectorEngine(load_detector_model(body), inputs, InMemoryStateStore(), clock, sink)
        for body in (HYSTERESIS, COUNTER, NESTED)
    ]
    router = MessageRouter(engines, clock=clock)
    sent = [
        *HYSTERESIS_LINES[:4],
        line(3.5, [{"value": 0}, {"value": 0}, {"value": 11}]),
        boiler(7, 72),
    ]

    def next_due() -> float | None:
        return min((t for e in engines if (t := e.next_timer()) is not None), default=None)

    def tick() -> None:
        for engine in engines:
            engine.tick()

    for number, message in enumerate(sent):
        advance_clock(clock, message["timestamp"]["timeInMillis"] / 1000, next_due, tick)
        assert router.put_message(message["inputName"], message["payload"], f"m{number}")
    states = [
        {key: engine.describe(key)["detector"]["state"]["stateName"] for key in engine.key_values()}
        for engine in engines
    ]
    assert states == [{"b1": "Idle"}, {"b1": "v1.2 done"}, {"L1": "High"}]
    published = [r for r in sink.requests if r.kind == "iotTopicPublish"]
    assert [r.target["mqttTopic"] for r in published] == ["line/L1/high"]
    with pytest.raises(NotFoundError):
        router.put_message("Pressure", {"id": "b1"}, "m99")
