"""BATCH and SERIAL evaluation order (specs/iotevents-contracts.md §2) on random models.

Random detector models of three states, each with onEnter, onInput events, transition events
and onExit events that set integer variables, are driven with messages; a reference written
from §2's numbered rules computes the state, the variables and the order of every
setVariable from the model's description, and the engine must agree after every message.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import ActionRequest, DetectorEngine, load_detector_model, load_input
from cloud.detectors.trace import TraceRecorder
from edge.clock import ManualClock

STATES = ("S0", "S1", "S2")
VARS = ("a", "b", "c")
INPUT = {"inputName": "In", "inputDefinition": {"attributes": [{"jsonPath": "x"}]}}
OPS = {
    "<": lambda p, q: p < q,
    "<=": lambda p, q: p <= q,
    "==": lambda p, q: p == q,
    "!=": lambda p, q: p != q,
    ">": lambda p, q: p > q,
    ">=": lambda p, q: p >= q,
}

small = st.integers(min_value=-2, max_value=4)
operand = st.one_of(
    st.sampled_from(VARS).map(lambda v: ("var", v)),
    st.sampled_from(VARS).map(lambda v: ("var", v)),
    st.just(("input",)),
    small.map(lambda k: ("const", k)),
)
# A condition is None (always true) or (left operand, operator, right operand).
conditions = st.one_of(st.none(), st.tuples(operand, st.sampled_from(sorted(OPS)), operand))
# An action sets a variable to a constant, to another variable plus a constant, or to the input.
action = st.one_of(
    st.tuples(st.just("const"), st.sampled_from(VARS), small),
    st.tuples(st.just("add"), st.sampled_from(VARS), st.sampled_from(VARS), small),
    st.tuples(st.just("input"), st.sampled_from(VARS)),
)
actions = st.lists(action, min_size=1, max_size=3)
events = st.lists(st.tuples(conditions, actions), max_size=3)
transitions = st.lists(
    st.tuples(conditions, st.lists(action, max_size=2), st.sampled_from(STATES)),
    min_size=1,
    max_size=2,
)
states = st.tuples(
    events, st.lists(st.tuples(conditions, actions), min_size=1, max_size=3), transitions, events
)
"""(onEnter, onInput events, transition events, onExit) of one state."""


def _operand_text(o: tuple[Any, ...]) -> str:
    if o[0] == "var":
        return f"$variable.{o[1]}"
    if o[0] == "input":
        return "$input.In.x"
    return str(o[1])


def _condition_text(c: tuple[Any, ...] | None) -> str | None:
    return None if c is None else f"{_operand_text(c[0])} {c[1]} {_operand_text(c[2])}"


def _action_json(a: tuple[Any, ...]) -> dict[str, Any]:
    if a[0] == "const":
        value = str(a[2])
    elif a[0] == "add":
        value = f"$variable.{a[2]} + {a[3]}"
    else:
        value = "$input.In.x"
    return {"setVariable": {"variableName": a[1], "value": value}}


def _event_json(name: str, condition: Any, acts: list[Any], next_state: str | None = None) -> Any:
    body: dict[str, Any] = {"eventName": name, "actions": [_action_json(a) for a in acts]}
    text = _condition_text(condition)
    if name == "S0.enter0":
        text = "$input.In.x == $input.In.x"  # always true, and the model reads its input
    if text is not None or next_state is not None:
        body["condition"] = text if text is not None else "true"
    if next_state is not None:
        body["nextState"] = next_state
    return body


def model_json(spec: list[Any], method: str) -> dict[str, Any]:
    out = []
    for i, (enter, on_input, trans, exit_) in enumerate(spec):
        name = STATES[i]
        init = [(None, [("const", v, 0) for v in VARS])] if i == 0 else []
        out.append(
            {
                "stateName": name,
                "onEnter": {
                    "events": [
                        _event_json(f"{name}.enter{j}", c, a)
                        for j, (c, a) in enumerate(init + enter)
                    ]
                },
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
    return {
        "detectorModelName": "order",
        "roleArn": "arn:aws:iam::1:role/r",
        "key": "id",
        "evaluationMethod": method,
        "detectorModelDefinition": {"initialStateName": "S0", "states": out},
    }


class NoActions:
    def execute(self, request: ActionRequest) -> None:
        raise AssertionError(f"no service action was defined: {request}")


class Reference:
    """§2 as written: groups, snapshots (BATCH) or one by one (SERIAL), first true transition."""

    def __init__(self, spec: list[Any], method: str) -> None:
        self.spec = spec
        self.serial = method == "SERIAL"
        self.state: str | None = None
        self.vars: dict[str, int] = {}
        self.x = 0
        self.log: list[tuple[str, str, int]] = []

    def value(self, o: tuple[Any, ...], seen: dict[str, int]) -> int | None:
        """None: a variable not set yet, undefined."""
        if o[0] == "var":
            return seen.get(o[1])
        return self.x if o[0] == "input" else o[1]

    def holds(self, c: Any, seen: dict[str, int]) -> bool:
        if c is None:
            return True
        left, right = self.value(c[0], seen), self.value(c[2], seen)
        if left is None or right is None:
            return c[1] == "!="  # §3: == with undefined is false, != true, ordering false
        return bool(OPS[c[1]](left, right))

    def act(self, name: str, acts: list[Any]) -> None:
        for a in acts:
            if a[0] == "const":
                value = a[2]
            elif a[0] == "add":
                if a[2] not in self.vars:
                    continue  # undefined + k is undefined: the variable keeps its value
                value = self.vars[a[2]] + a[3]
            else:
                value = self.x
            self.vars[a[1]] = value
            self.log.append((name, a[1], value))

    def group(self, named: list[tuple[str, Any, list[Any]]]) -> None:
        if self.serial:
            for name, c, acts in named:
                if self.holds(c, self.vars):
                    self.act(name, acts)
            return
        snapshot = dict(self.vars)
        for name, _c, acts in [e for e in named if self.holds(e[1], snapshot)]:
            self.act(name, acts)

    def enter(self, state: str) -> None:
        i = STATES.index(state)
        init = [(None, [("const", v, 0) for v in VARS])] if i == 0 else []
        self.state = state
        self.group([(f"{state}.enter{j}", c, a) for j, (c, a) in enumerate(init + self.spec[i][0])])

    def message(self, x: int) -> None:
        self.x = x
        if self.state is None:
            self.enter("S0")
        assert self.state is not None
        i = STATES.index(self.state)
        _enter, on_input, trans, exit_ = self.spec[i]
        named = [(f"{self.state}.in{j}", c, a) for j, (c, a) in enumerate(on_input)]
        if self.serial:
            self.group(named)
            seen = self.vars
        else:
            seen = dict(self.vars)
            self.group(named)  # conditions on its own snapshot, taken before any action ran
        chosen = next(
            ((j, c, a, nxt) for j, (c, a, nxt) in enumerate(trans) if self.holds(c, seen)), None
        )
        if chosen is None:
            return
        j, _c, acts, nxt = chosen
        self.act(f"{self.state}.go{j}", acts)
        self.group([(f"{self.state}.exit{k}", c, a) for k, (c, a) in enumerate(exit_)])
        self.enter(nxt)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(states, min_size=3, max_size=3),
    st.sampled_from(["BATCH", "SERIAL"]),
    st.lists(small, min_size=1, max_size=6),
)
def test_engine_evaluates_groups_in_the_order_and_with_the_snapshots_of_section_2(
    spec: list[Any], method: str, xs: list[int]
) -> None:
    trace = TraceRecorder()
    engine = DetectorEngine(
        load_detector_model(model_json(spec, method)),
        [load_input(INPUT)],
        InMemoryStateStore(),
        ManualClock(0.0),
        NoActions(),
        observer=trace,
    )
    ref = Reference(spec, method)
    for x in xs:
        engine.put_message("In", {"id": "k", "x": x})
        ref.message(x)
        state = engine.describe("k")["detector"]["state"]
        assert state["stateName"] == ref.state
        assert {v["name"]: v["value"] for v in state["variables"]} == {
            k: str(v) for k, v in ref.vars.items()
        }
    logged = [
        (r.detail["event"], r.detail["target"]["variableName"], r.detail["value"])
        for r in trace.of_kind("action")
    ]
    assert logged == ref.log
