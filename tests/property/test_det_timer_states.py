"""Timers across states, BATCH and SERIAL, against a reference written from
specs/iotevents-contracts.md §2, §4 and §5.

Random models of three states set, reset and clear two timers from onEnter, onInput events,
transition actions and onExit, and test ``timeout()``, ``triggerType("Timer")``,
``currentInput("In")`` and the last message in conditions. Messages arrive between timer
expiries, and the clock stops at every expiry on the way (as ``detectors run`` moves it), so
each expiry is evaluated at its own time. The reference keeps, per §5 and the engine's
documented reading of AWS's "true only the first time it's checked following the actual
timer expiration": an expiry waits, unchecked, for the first condition that checks it
(``setTimer`` or ``clearTimer`` of that timer forget it, except while its own expiry is being
evaluated); every check of the evaluation that first sees it is true. After every message and
every expiry the engine's state, variables and timers must be the reference's.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import ActionRequest, DetectorEngine, load_detector_model, load_input
from edge.clock import ManualClock

STATES = ("S0", "S1", "S2")
TIMERS = ("T", "U")
VARS = ("a", "b")
START = 1_700_000_000.0
INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "x"}]},
}

condition = st.one_of(
    st.none(),
    st.none(),
    st.sampled_from(TIMERS).map(lambda t: ("timeout", t)),
    st.sampled_from(TIMERS).map(lambda t: ("timeout", t)),
    st.sampled_from(TIMERS).map(lambda t: ("timeout", t)),
    st.just(("timer",)),
    st.just(("message",)),
    st.integers(0, 2).map(lambda k: ("x", k)),
    st.tuples(st.sampled_from(VARS), st.integers(0, 3)).map(lambda p: ("var", *p)),
)
"""None (no condition), a timeout, triggerType('Timer'), currentInput('In'), the last
message's x == k, or a variable > k."""
set_timer = st.tuples(st.just("set"), st.sampled_from(TIMERS), st.sampled_from([60, 61, 90, 120]))
action = st.one_of(
    set_timer,
    set_timer,
    set_timer,
    st.tuples(st.just("reset"), st.sampled_from(TIMERS)),
    st.tuples(st.just("clear"), st.sampled_from(TIMERS)),
    st.tuples(st.just("inc"), st.sampled_from(VARS)),
)
actions = st.lists(action, min_size=1, max_size=3)
events = st.lists(st.tuples(condition, actions), max_size=2)
transitions = st.lists(
    st.tuples(condition, st.lists(action, max_size=2), st.sampled_from(STATES)), max_size=2
)
state_spec = st.tuples(events, events, transitions, events)
"""(onEnter, onInput events, transition events, onExit) of one state."""
steps = st.lists(
    st.tuples(st.sampled_from([0, 30, 59, 60, 61, 90, 120, 200]), st.integers(0, 2)),
    min_size=1,
    max_size=12,
)
"""(seconds to wait before the message, its x)."""


def _condition_text(c: Any) -> str | None:
    if c is None:
        return None
    if c[0] == "timeout":
        return f"timeout('{c[1]}')"
    if c[0] == "timer":
        return "triggerType('Timer')"
    if c[0] == "message":
        return "currentInput('In')"
    if c[0] == "x":
        return f"$input.In.x == {c[1]}"
    return f"$variable.{c[1]} > {c[2]}"


def _action_json(a: Any) -> dict[str, Any]:
    if a[0] == "set":
        return {"setTimer": {"timerName": a[1], "seconds": a[2]}}
    if a[0] == "reset":
        return {"resetTimer": {"timerName": a[1]}}
    if a[0] == "clear":
        return {"clearTimer": {"timerName": a[1]}}
    return {"setVariable": {"variableName": a[1], "value": f"$variable.{a[1]} + 1"}}


def _event_json(name: str, c: Any, acts: list[Any], nxt: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"eventName": name, "actions": [_action_json(a) for a in acts]}
    text = _condition_text(c)
    if text is not None or nxt is not None:
        body["condition"] = text if text is not None else "true"
    if nxt is not None:
        body["nextState"] = nxt
    return body


SETUP = [(None, [("zero", v) for v in VARS])]
"""S0's first onEnter event: every variable starts at 0."""


def model_json(spec: list[Any], method: str) -> dict[str, Any]:
    states = []
    for i, (enter, on_input, trans, exit_) in enumerate(spec):
        name = STATES[i]
        enter_events = [_event_json(f"{name}.enter{j}", c, a) for j, (c, a) in enumerate(enter)]
        if i == 0:
            zero = [{"setVariable": {"variableName": v, "value": "0"}} for v in VARS]
            # always true; the model reads its input in a condition, as AWS requires
            always = "$input.In.x >= 0"
            enter_events.insert(0, {"eventName": "zero", "condition": always, "actions": zero})
        states.append(
            {
                "stateName": name,
                "onEnter": {"events": enter_events},
                "onInput": {
                    "events": [
                        _event_json(f"{name}.in{j}", c, a) for j, (c, a) in enumerate(on_input)
                    ],
                    "transitionEvents": [
                        _event_json(f"{name}.go{j}", c, a, nxt)
                        for j, (c, a, nxt) in enumerate(trans)
                    ],
                },
                "onExit": {
                    "events": [
                        _event_json(f"{name}.exit{j}", c, a) for j, (c, a) in enumerate(exit_)
                    ]
                },
            }
        )
    # An unreachable state setting every timer, so no model is refused for a timer that is
    # tested, reset or cleared but never set.
    arm = [{"setTimer": {"timerName": t, "seconds": 60}} for t in TIMERS]
    states.append(
        {"stateName": "Setup", "onEnter": {"events": [{"eventName": "arm", "actions": arm}]}}
    )
    return {
        "detectorModelName": "timerStates",
        "roleArn": "arn:aws:iam::1:role/r",
        "key": "id",
        "evaluationMethod": method,
        "detectorModelDefinition": {"initialStateName": "S0", "states": states},
    }


class Reference:
    """One instance, as §2 and §5 describe it."""

    def __init__(self, spec: list[Any], method: str) -> None:
        self.spec = spec
        self.serial = method == "SERIAL"
        self.state: str | None = None
        self.vars: dict[str, int] = {}
        self.timers: dict[str, float] = {}
        self.durations: dict[str, int] = {}
        self.expired: list[str] = []
        self.x: int | None = None
        self.now = START
        self.trigger: str | None = None
        """None for a message, else the timer whose expiry is evaluated."""
        self.seen: set[str] = set()
        """Timers whose timeout() was true in this evaluation."""
        self.spent = False

    # ---------------------------------------------------------------- conditions

    def timeout(self, name: str) -> bool:
        if name in self.seen:
            return True
        if name in self.expired:
            self.expired.remove(name)
            self.seen.add(name)
            return True
        return False

    def holds(self, c: Any, variables: dict[str, int]) -> bool:
        if c is None:
            return True
        if c[0] == "timeout":
            return self.timeout(c[1])
        if c[0] == "timer":
            return self.trigger is not None
        if c[0] == "message":
            return self.trigger is None
        if c[0] == "x":
            return self.x == c[1]
        return c[1] in variables and variables[c[1]] > c[2]

    # ---------------------------------------------------------------- actions

    def start(self, name: str, seconds: int) -> None:
        self.timers[name] = self.now + seconds
        self.durations[name] = seconds
        self.forget(name)

    def forget(self, name: str) -> None:
        if self.trigger == name:
            self.spent = True
        elif name in self.expired:
            self.expired.remove(name)

    def act(self, acts: list[Any]) -> None:
        for a in acts:
            if a[0] == "set":
                self.start(a[1], a[2])
            elif a[0] == "reset":
                if a[1] in self.durations:
                    self.start(a[1], self.durations[a[1]])
            elif a[0] == "clear":
                self.timers.pop(a[1], None)
                self.forget(a[1])
            elif a[0] == "zero":
                self.vars[a[1]] = 0
            else:
                self.vars[a[1]] = self.vars[a[1]] + 1

    def group(self, evs: list[tuple[Any, list[Any]]]) -> None:
        if self.serial:
            for c, acts in evs:
                if self.holds(c, self.vars):
                    self.act(acts)
            return
        snapshot = dict(self.vars)
        for _c, acts in [e for e in evs if self.holds(e[0], snapshot)]:
            self.act(acts)

    # ---------------------------------------------------------------- evaluation

    def enter(self, state: str) -> None:
        self.state = state
        i = STATES.index(state)
        self.group((SETUP if i == 0 else []) + list(self.spec[i][0]))

    def on_input(self) -> None:
        assert self.state is not None
        _enter, evs, trans, exit_ = self.spec[STATES.index(self.state)]
        if self.serial:
            for c, acts in evs:
                if self.holds(c, self.vars):
                    self.act(acts)
            chosen = next((t for t in trans if self.holds(t[0], self.vars)), None)
        else:
            snapshot = dict(self.vars)
            firing = [e for e in evs if self.holds(e[0], snapshot)]
            chosen = next((t for t in trans if self.holds(t[0], snapshot)), None)
            for _c, acts in firing:
                self.act(acts)
        if chosen is None:
            return
        self.act(chosen[1])
        self.group(list(exit_))
        self.enter(chosen[2])

    def expire(self, name: str) -> None:
        del self.timers[name]
        if name not in self.expired:
            self.expired.append(name)
        self.trigger, self.seen, self.spent = name, set(), False
        self.on_input()
        if self.spent and name in self.expired:
            self.expired.remove(name)

    def next_due(self) -> tuple[float, str] | None:
        return min(((e, n) for n, e in self.timers.items()), default=None)

    def message(self, x: int) -> None:
        self.x = x
        self.trigger, self.seen, self.spent = None, set(), False
        if self.state is None:
            self.enter("S0")
        self.on_input()


class NoActions:
    def execute(self, request: ActionRequest) -> None:
        raise AssertionError(f"no service action was defined: {request}")


def _observed(engine: DetectorEngine) -> tuple[str, dict[str, str], dict[str, float]]:
    state = engine.describe("k")["detector"]["state"]
    return (
        state["stateName"],
        {v["name"]: v["value"] for v in state["variables"]},
        {t["name"]: t["timestamp"] for t in state["timers"]},
    )


def _expected(ref: Reference) -> tuple[str, dict[str, str], dict[str, float]]:
    assert ref.state is not None
    return ref.state, {k: str(v) for k, v in ref.vars.items()}, dict(ref.timers)


@settings(max_examples=400, deadline=None)
@given(
    spec=st.tuples(state_spec, state_spec, state_spec).map(list),
    method=st.sampled_from(["BATCH", "SERIAL"]),
    sequence=steps,
)
def test_timers_across_states_match_the_reference(
    spec: list[Any], method: str, sequence: list[tuple[int, int]]
) -> None:
    clock = ManualClock(START)
    engine = DetectorEngine(
        load_detector_model(model_json(spec, method)),
        [load_input(INPUT)],
        InMemoryStateStore(),
        clock,
        NoActions(),
    )
    ref = Reference(spec, method)
    for wait, x in sequence:
        target = clock.now() + wait
        while (due := ref.next_due()) is not None and due[0] <= target:
            # the clock stops at each expiry; the engine evaluates every timer due there
            clock.set(due[0])
            ref.now = due[0]
            while (due := ref.next_due()) is not None and due[0] <= ref.now:
                ref.expire(due[1])
            engine.tick()
            assert _observed(engine) == _expected(ref), (spec, method, sequence)
        clock.set(target)
        ref.now = target
        engine.put_message("In", {"id": "k", "x": x})
        ref.message(x)
        assert _observed(engine) == _expected(ref), (spec, method, sequence)
