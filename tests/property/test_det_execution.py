"""Detector execution on random message sequences: how messages are batched and how often
timers are ticked must not change what a model does.

- BatchPutMessage: the same messages give the same actions (payloads included) and the same
  instances whether sent one per request or split into batches of up to ten (§1: a batch is
  processed in array order).
- Timers: AWS fires a timer at its expiry. A runtime that ticks late or not at all between
  messages (the timers Lambda ticks once a minute) must still evaluate every expiry once,
  before any message that came after it; with ticks at every expiry, each ``lost`` action
  carries its expiry as ``eventTime``.
"""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.messages import batch_put_message
from edge.clock import ManualClock

ROLE_ARN = "arn:aws:iam::123456789012:role/r"
SNS = {"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:alerts"}}
INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]},
}
KEYS = ("k1", "k2", "k3")
START = 1_767_225_600.0
HEARTBEAT_S = 300


def _sv(name: str, value: str) -> dict[str, Any]:
    return {"setVariable": {"variableName": name, "value": value}}


def _counter(method: str) -> dict[str, Any]:
    """Counts ``v`` up to a threshold, alerts, and counts down again on a zero."""
    return {
        "detectorModelName": "counter",
        "roleArn": ROLE_ARN,
        "key": "id",
        "evaluationMethod": method,
        "detectorModelDefinition": {
            "initialStateName": "Low",
            "states": [
                {
                    "stateName": "Low",
                    "onEnter": {"events": [{"eventName": "enterLow", "actions": [_sv("n", "0")]}]},
                    "onInput": {
                        "events": [
                            {
                                "eventName": "count",
                                "condition": "currentInput('In')",
                                "actions": [_sv("n", "$variable.n + $input.In.v")],
                            }
                        ],
                        "transitionEvents": [
                            {
                                "eventName": "up",
                                "condition": "$variable.n >= 5",
                                "nextState": "High",
                                "actions": [SNS],
                            }
                        ],
                    },
                },
                {
                    "stateName": "High",
                    "onInput": {
                        "events": [
                            {"eventName": "zero", "condition": "$input.In.v == 0", "actions": [SNS]}
                        ],
                        "transitionEvents": [
                            {
                                "eventName": "down",
                                "condition": "$input.In.v == 0 && $variable.n > 0",
                                "nextState": "Low",
                                "actions": [_sv("n", "$variable.n - 1")],
                            }
                        ],
                    },
                    "onExit": {"events": [{"eventName": "exitHigh", "actions": [SNS]}]},
                },
            ],
        },
    }


class Recording:
    def __init__(self) -> None:
        self.requests: list[Any] = []

    def execute(self, request: Any) -> None:
        self.requests.append(request)


def _engine(body: dict[str, Any], clock: ManualClock, sink: Recording) -> DetectorEngine:
    ids = itertools.count()
    return DetectorEngine(
        load_detector_model(body),
        [load_input(INPUT)],
        InMemoryStateStore(),
        clock,
        sink,
        new_id=lambda: f"id-{next(ids)}",
    )


def _wire(i: int, key: str, v: int) -> dict[str, Any]:
    body = json.dumps({"id": key, "v": v}).encode()
    return {"messageId": f"m{i}", "inputName": "In", "payload": base64.b64encode(body).decode()}


def _outcome(engine: DetectorEngine, sink: Recording) -> tuple[list[Any], list[Any]]:
    actions = [
        (r.kind, r.key_value, r.event_name, r.state_name, r.payload, r.event_time_ms)
        for r in sink.requests
    ]
    return actions, [engine.describe(k) for k in engine.key_values()]


@settings(max_examples=120, deadline=None)
@given(
    method=st.sampled_from(["BATCH", "SERIAL"]),
    messages=st.lists(st.tuples(st.sampled_from(KEYS), st.integers(0, 3)), max_size=30),
    sizes=st.lists(st.integers(1, 10), min_size=30, max_size=30),
)
def test_splitting_messages_into_batches_changes_nothing(
    method: str, messages: list[tuple[str, int]], sizes: list[int]
) -> None:
    wire = [_wire(i, key, v) for i, (key, v) in enumerate(messages)]
    one_by_one, batched = Recording(), Recording()
    single = _engine(_counter(method), ManualClock(START), one_by_one)
    for message in wire:
        assert batch_put_message([single], {"messages": [message]}) == {
            "BatchPutMessageErrorEntries": []
        }
    split = _engine(_counter(method), ManualClock(START), batched)
    rest = wire
    for size in sizes:
        if not rest:
            break
        batch, rest = rest[:size], rest[size:]
        assert batch_put_message([split], {"messages": batch}) == {
            "BatchPutMessageErrorEntries": []
        }
    assert _outcome(split, batched) == _outcome(single, one_by_one)


def _heartbeat() -> dict[str, Any]:
    """The spec's heartbeat (§2): a message resets the timer; its expiry goes Offline."""
    return {
        "detectorModelName": "heartbeat",
        "roleArn": ROLE_ARN,
        "key": "id",
        "detectorModelDefinition": {
            "initialStateName": "Online",
            "states": [
                {
                    "stateName": "Online",
                    "onEnter": {
                        "events": [
                            {
                                "eventName": "arm",
                                "condition": "true",
                                "actions": [
                                    {
                                        "setTimer": {
                                            "timerName": "hb",
                                            "durationExpression": str(HEARTBEAT_S),
                                        }
                                    }
                                ],
                            }
                        ]
                    },
                    "onInput": {
                        "events": [
                            {
                                "eventName": "beat",
                                "condition": 'currentInput("In")',
                                "actions": [{"resetTimer": {"timerName": "hb"}}],
                            }
                        ],
                        "transitionEvents": [
                            {
                                "eventName": "lost",
                                "condition": 'timeout("hb")',
                                "nextState": "Offline",
                                "actions": [SNS],
                            }
                        ],
                    },
                },
                {
                    "stateName": "Offline",
                    "onInput": {
                        "transitionEvents": [
                            {
                                "eventName": "back",
                                "condition": 'triggerType("Message") && $input.In.v >= 0',
                                "nextState": "Online",
                                "actions": [SNS],
                            }
                        ]
                    },
                },
            ],
        },
    }


def _expected_losses(steps: list[tuple[str, int, bool]]) -> list[float]:
    """Expiry of every lost heartbeat, in time order: a message at t arms t+300, and the
    run ends 300 s after the last message, so every armed timer fires by then."""
    deadline: dict[str, float] = {}
    lost: list[float] = []
    now = START
    for key, gap, _tick in steps:
        now += gap
        if key in deadline and deadline[key] <= now:
            lost.append(deadline[key])
        deadline[key] = now + HEARTBEAT_S
    return sorted(lost + list(deadline.values()))


Run = tuple[list[tuple[Any, ...]], list[float], list[str]]


def _run(steps: list[tuple[str, int, bool]], ticking: str) -> Run:
    """Actions (key, event, trigger), the ``eventTime`` of each ``lost``, final states."""
    clock, sink = ManualClock(START), Recording()
    engine = _engine(_heartbeat(), clock, sink)

    def advance_to(target: float) -> None:
        if ticking == "every expiry":  # as a replay does: tick at each expiry on the way
            while (due := engine.next_timer()) is not None and due <= target:
                clock.set(max(due, clock.now()))
                engine.tick()
        clock.set(target)

    for i, (key, gap, tick) in enumerate(steps):
        advance_to(clock.now() + gap)
        if ticking == "sometimes" and tick:
            engine.tick()
        engine.put_message("In", {"id": key, "v": 1}, f"m{i}")
    advance_to(clock.now() + HEARTBEAT_S)
    engine.tick()
    actions = [
        (r.key_value, r.event_name, r.payload["payload"]["eventTriggerDetails"])
        for r in sink.requests
    ]
    lost = [r.event_time_ms / 1000 for r in sink.requests if r.event_name == "lost"]
    states = [engine.describe(k)["detector"]["state"]["stateName"] for k in engine.key_values()]
    return actions, lost, states


gaps = st.sampled_from([0, 30, 299, 300, 301, 450, 700])


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KEYS[:2]), gaps, st.booleans()), max_size=20))
def test_timers_fire_once_at_their_expiry_however_often_the_runtime_ticks(
    steps: list[tuple[str, int, bool]],
) -> None:
    precise, lost, precise_states = _run(steps, "every expiry")
    lazy, _, lazy_states = _run(steps, "sometimes")
    # ticked at every expiry, each lost heartbeat fires once, at its expiry
    assert sorted(lost) == _expected_losses(steps), steps
    # ticked late or never, the same evaluations happen in the same order per detector
    for key in KEYS[:2]:
        assert [a for a in lazy if a[0] == key] == [a for a in precise if a[0] == key], steps
    assert lazy_states == precise_states
