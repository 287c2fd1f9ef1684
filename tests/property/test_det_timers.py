"""Timers on random sequences against a reference of specs/iotevents-contracts.md §4-§5.

Messages set, reset and clear two timers with random durations; between messages the clock
moves by a random amount and the engine's timer tick runs. The reference, written from the
spec: setting a running timer restarts it, ``resetTimer`` restarts with the last duration
(and does nothing for a timer never set), ``clearTimer`` deletes; a timer fires never early,
once, in expiry order (a tie in either order), and ``timeout("t")`` is true in the evaluation its
expiry causes, at every check of that evaluation and at none after it. The model appends the
name of each timer whose ``timeout()`` it sees to a string variable (once per check), which
must hold the reference's firings, in order, after every step.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import ActionRequest, DetectorEngine, load_detector_model, load_input
from edge.clock import ManualClock

NAMES = ("A", "B")
INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "op"}, {"jsonPath": "d"}]},
}


def _event(name: str, condition: str, action: dict[str, Any]) -> dict[str, Any]:
    return {"eventName": name, "condition": condition, "actions": [action]}


def _model() -> dict[str, Any]:
    events = [
        _event(
            "init",
            "isUndefined($variable.log)",
            {"setVariable": {"variableName": "log", "value": "''"}},
        )
    ]
    for t in NAMES:
        is_op = f"currentInput('In') && $input.In.op == '{{}}{t}'"
        events += [
            _event(
                f"set{t}",
                is_op.format("set"),
                {"setTimer": {"timerName": t, "durationExpression": "$input.In.d"}},
            ),
            _event(f"reset{t}", is_op.format("reset"), {"resetTimer": {"timerName": t}}),
            _event(f"clear{t}", is_op.format("clear"), {"clearTimer": {"timerName": t}}),
        ]
    # SERIAL, so the appends of two timeouts in one evaluation would both be kept. Each
    # expiry is checked twice, as AWS's detection sample checks it in an event and then a
    # transition: both checks of the evaluation see it (upper case, then lower case).
    events += [
        _event(
            f"{again}fired{t}",
            f"timeout('{t}')",
            {"setVariable": {"variableName": "log", "value": f"$variable.log + '{mark}'"}},
        )
        for again, mark_of in (("", str.upper), ("again", str.lower))
        for t in NAMES
        for mark in [mark_of(t)]
    ]
    return {
        "detectorModelName": "timers",
        "roleArn": "arn:aws:iam::1:role/r",
        "key": "id",
        "evaluationMethod": "SERIAL",
        "detectorModelDefinition": {
            "initialStateName": "S",
            "states": [{"stateName": "S", "onInput": {"events": events}}],
        },
    }


class NoActions:
    def execute(self, request: ActionRequest) -> None:
        raise AssertionError(f"no service action was defined: {request}")


steps = st.lists(
    st.tuples(
        st.sampled_from(["setA", "setB", "resetA", "resetB", "clearA", "clearB", "none"]),
        st.sampled_from([60, 61, 90, 120, 150]),  # few values, so expiries meet and tie
        st.sampled_from([0, 0, 30, 59, 60, 61, 90, 120, 150, 500]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=80, deadline=None)
@given(sequence=steps)
def test_timers_fire_once_in_expiry_order(sequence: list[tuple[str, int, int]]) -> None:
    clock = ManualClock(1_700_000_000.0)
    engine = DetectorEngine(
        load_detector_model(_model()),
        [load_input(INPUT)],
        InMemoryStateStore(),
        clock,
        NoActions(),
    )
    timers: dict[str, float] = {}
    durations: dict[str, int] = {}
    fired = ""
    for op, seconds, wait in sequence:
        engine.put_message("In", {"id": "k", "op": op, "d": seconds}, None)
        now = clock.now()
        name = op[-1]
        if op.startswith("set"):
            timers[name], durations[name] = now + seconds, seconds
        elif op.startswith("reset") and name in durations:
            timers[name] = now + durations[name]
        elif op.startswith("clear"):
            timers.pop(name, None)
        clock.advance(wait)
        engine.tick()
        due = {n: expiry for n, expiry in timers.items() if expiry <= clock.now()}
        for n in due:
            del timers[n]
        variables = engine.describe("k")["detector"]["state"]
        log = json.loads({v["name"]: v["value"] for v in variables["variables"]}["log"])
        assert log.startswith(fired), (sequence, log, fired)
        checks = log[len(fired) :]
        new = checks[::2]
        # every evaluation of an expiry sees timeout() at both of its checks, and only it
        assert checks == "".join(n + n.lower() for n in new), (sequence, log)
        # Each due timer once, in expiry order; the spec leaves the order of a tie open.
        assert sorted(new) == sorted(due), (sequence, log, due)
        assert [due[n] for n in new] == sorted(due[n] for n in new), (sequence, log, due)
        fired = log
        assert sorted(t["name"] for t in variables["timers"]) == sorted(timers)
