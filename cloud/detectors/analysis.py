"""Detector model analysis: what AWS's StartDetectorModelAnalysis reports, on a valid model.

Each finding mirrors AWS's ``AnalysisResult``: a ``type`` (``referenced-data``,
``structure``, ``data-type``), a ``level`` (``ERROR``, ``WARNING``, ``INFO``), a message and
the JSON path of the field. Checks:

- no input in any condition (ERROR, as AWS's structure check);
- a variable or timer used but never set (ERROR), a timer set but never checked with
  ``timeout()`` (WARNING), a variable that may be read before any action sets it (WARNING);
- a state no transition can reach (WARNING);
- a condition that can never be true because it compares incompatible types (ERROR), and
  with it any state only such a transition leads to;
- an input attribute read by a condition that a timer expiry can also trigger (WARNING),
  AWS's advice being to guard it with ``triggerType("Message")``.

"May be read before it is set" is a must-be-set data flow over the state graph: a variable
counts as set at a point only if every path from a new instance to that point runs an
unconditional ``setVariable`` of it. Reads inside ``isUndefined()`` and the blueprint idiom
``$variable.x != $variable.x`` are deliberate checks for "not set yet" and are not reported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from cloud.detectors import expr as ex
from cloud.detectors.model import (
    DetectorModel,
    Event,
    InputDefinition,
    State,
    inputs_read,
    reference_problems,
    set_names,
)

LEVELS: Final = ("ERROR", "WARNING", "INFO")
_COMPARISONS: Final = ("==", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True, slots=True)
class Finding:
    level: str
    type: str
    path: str
    message: str

    def as_dict(self) -> dict[str, object]:
        """AWS's AnalysisResult shape."""
        return {
            "type": self.type,
            "level": self.level,
            "message": self.message,
            "locations": [{"path": self.path}],
        }


def analyze(model: DetectorModel, inputs: Sequence[InputDefinition] = ()) -> list[Finding]:
    """Every finding for *model*, errors first, then in definition order."""
    findings: list[Finding] = [
        Finding("ERROR", "referenced-data", path, message)
        for path, message in reference_problems(model)
    ]
    findings += _no_input_in_a_condition(model)
    findings += _timers_never_checked(model)
    var_types = _variable_types(model)
    never = _never_true_conditions(model, var_types)
    findings += [
        Finding("ERROR", "data-type", f"{event.path}.condition", f"can never be true: {reason}")
        for event, reason in never
    ]
    findings += _unreachable_states(model, {id(e) for e, _ in never})
    findings += _read_before_set(model)
    findings += _input_read_on_timer(model)
    order = {level: i for i, level in enumerate(LEVELS)}
    return sorted(findings, key=lambda f: order[f.level])


# ---------------------------------------------------------------- structure


def _no_input_in_a_condition(model: DetectorModel) -> list[Finding]:
    """AWS's structure error: without an input in some condition it "doesn't evaluate
    incoming data" (analyze-diagnostic-information)."""
    if any(inputs_read(event.condition) for event in model.events() if event.condition is not None):
        return []
    message = (
        "Detector Model Definition must use at least one Input in a condition"
        ' ($input.<Input>.<path> or currentInput("<Input>"))'
    )
    return [Finding("ERROR", "structure", "$.detectorModelDefinition", message)]


# ---------------------------------------------------------------- timers


def _timers_never_checked(model: DetectorModel) -> list[Finding]:
    checked: set[str] = set()
    first_set: dict[str, str] = {}
    for event in model.events():
        if event.condition is not None:
            for ref in ex.references(event.condition):
                if isinstance(ref, ex.Call) and ref.name == "timeout":
                    arg = ref.args[0]
                    if isinstance(arg, ex.Literal) and isinstance(arg.value, str):
                        checked.add(arg.value)
        for action in event.actions:
            if action.kind == "setTimer":
                first_set.setdefault(action.fields["timerName"], action.path)
    return [
        Finding(
            "WARNING",
            "referenced-data",
            path,
            f'timer {name!r} is set but no condition checks timeout("{name}");'
            " its expiry only re-runs onInput",
        )
        for name, path in first_set.items()
        if name not in checked
    ]


# ---------------------------------------------------------------- types


def _variable_types(model: DetectorModel) -> dict[str, str]:
    """Type family (``number``, ``string``, ``boolean``) of variables whose sets agree."""
    seen: dict[str, set[str]] = {}
    for event in model.events():
        for action in event.actions:
            if action.kind == "setVariable":
                family = _family(ex.static_type(action.expressions["value"]))
                seen.setdefault(action.fields["variableName"], set()).add(family or "unknown")
    return {name: kinds.pop() for name, kinds in seen.items() if len(kinds) == 1}


def _family(kind: str) -> str | None:
    if kind in ("integer", "decimal"):
        return "number"
    return kind if kind in ("string", "boolean") else None


def _infer(node: ex.Expr, var_types: Mapping[str, str]) -> str | None:
    """Type family of *node*, or None when it depends on data."""
    if isinstance(node, ex.VariableRef):
        family = var_types.get(node.name)
        return family if family in ("number", "string", "boolean") else None
    if isinstance(node, ex.Binary) and node.op in ("+", "-", "*", "/"):
        left, right = _infer(node.left, var_types), _infer(node.right, var_types)
        if node.op == "+" and left == right == "string":
            return "string"
        return "number" if left == right == "number" else None
    if isinstance(node, ex.Unary) and node.op == "-":
        return "number" if _infer(node.operand, var_types) == "number" else None
    return _family(ex.static_type(node))


def _never_reason(node: ex.Expr, var_types: Mapping[str, str]) -> str | None:
    """Why *node* can never be Boolean true, or None if it might be."""
    if isinstance(node, ex.Literal) and node.value is False:
        return "the condition is the literal false"
    if isinstance(node, ex.Binary):
        if node.op == "&&":
            return _never_reason(node.left, var_types) or _never_reason(node.right, var_types)
        if node.op == "||":
            left = _never_reason(node.left, var_types)
            right = _never_reason(node.right, var_types)
            return f"{left}; and {right}" if left and right else None
        if node.op in _COMPARISONS and node.op != "!=":
            left, right = _infer(node.left, var_types), _infer(node.right, var_types)
            if left and right and left != right:
                return (
                    f"'{node.op}' compares a {left} with a {right}; only integers and decimals mix"
                )
            if node.op != "==" and left == right == "boolean":
                return f"'{node.op}' orders Booleans, which never compare"
    return None


def _never_true_conditions(
    model: DetectorModel, var_types: Mapping[str, str]
) -> list[tuple[Event, str]]:
    out: list[tuple[Event, str]] = []
    for event in model.events():
        if event.condition is None:
            continue
        reason = _never_reason(event.condition, var_types)
        if reason is not None:
            out.append((event, reason))
    return out


# ---------------------------------------------------------------- reachability


def _unreachable_states(model: DetectorModel, dead: set[int]) -> list[Finding]:
    reached = {model.initial_state}
    frontier = [model.initial_state]
    while frontier:
        state = model.states[frontier.pop()]
        for transition in state.transitions:
            target = transition.next_state
            if id(transition) in dead or target is None or target in reached:
                continue
            reached.add(target)
            frontier.append(target)
    findings = []
    for index, name in enumerate(model.states):
        if name not in reached:
            findings.append(
                Finding(
                    "WARNING",
                    "structure",
                    f"$.detectorModelDefinition.states[{index}]",
                    f"state {name!r} is unreachable: no transition that can fire leads to it"
                    f" from {model.initial_state!r}",
                )
            )
    return findings


# ---------------------------------------------------------------- read before set


def _always(event: Event) -> bool:
    return event.condition is None or (
        isinstance(event.condition, ex.Literal) and event.condition.value is True
    )


def _sets(events: Sequence[Event], *, only_always: bool = True) -> set[str]:
    return {
        a.fields["variableName"]
        for e in events
        if not only_always or _always(e)
        for a in e.actions
        if a.kind == "setVariable"
    }


def _after_enter(state: State, entry: frozenset[str]) -> frozenset[str]:
    return entry | _sets(state.on_enter)


def _after_input(state: State, entry: frozenset[str]) -> frozenset[str]:
    return _after_enter(state, entry) | _sets(state.on_input)


def _leaving(state: State, transition: Event, entry: frozenset[str]) -> frozenset[str]:
    return (
        _after_input(state, entry) | _sets([transition], only_always=False) | _sets(state.on_exit)
    )


def _entries(model: DetectorModel) -> dict[str, frozenset[str]]:
    """Variables set on every path into each state (the must-be-set fixpoint)."""
    every = frozenset(set_names(model)[0])
    entry = {name: every for name in model.states}
    entry[model.initial_state] = frozenset()
    changed = True
    while changed:
        changed = False
        incoming: dict[str, frozenset[str]] = {}
        for name, state in model.states.items():
            for transition in state.transitions:
                target = transition.next_state
                assert target is not None
                out = _leaving(state, transition, entry[name])
                incoming[target] = incoming[target] & out if target in incoming else out
        for name in model.states:
            new = incoming.get(name, every)
            if name == model.initial_state:
                new = frozenset()
            if new != entry[name]:
                entry[name] = new
                changed = True
    return entry


def _reads(node: ex.Expr) -> Iterator[str]:
    """Variables *node* reads, leaving out deliberate "is it set yet" checks."""
    stack: list[ex.Expr | str] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            continue
        if isinstance(item, ex.VariableRef):
            yield item.name
        elif isinstance(item, ex.Call):
            if item.name != "isUndefined":
                stack.extend(item.args)
        elif isinstance(item, ex.Binary):
            if (
                item.op in ("==", "!=")
                and isinstance(item.left, ex.VariableRef)
                and item.left == item.right
            ):
                continue
            stack.extend((item.left, item.right))
        elif isinstance(item, ex.Unary):
            stack.append(item.operand)
        elif isinstance(item, ex.Template):
            stack.extend(item.parts)


def _group_reads(
    events: Sequence[Event],
    known: frozenset[str],
    serial: bool,
    actions_known: frozenset[str] = frozenset(),
) -> Iterator[tuple[str, str, frozenset[str]]]:
    """``(path, variable read, variables surely set there)`` for a group's expressions.

    *known* is what the group's conditions see; actions also see *actions_known* (for
    transitions: the writes of the unconditional events that ran before them).
    """
    before = set(known)
    for event in events:
        if event.condition is not None:
            seen = frozenset(before) if serial else known
            for name in _reads(event.condition):
                yield f"{event.path}.condition", name, seen
        done = before | actions_known
        for action in event.actions:
            for field, node in action.expressions.items():
                for name in _reads(node):
                    yield f"{action.path}.{field}", name, frozenset(done)
            if action.payload is not None:
                for name in _reads(action.payload.content):
                    yield f"{action.path}.payload.contentExpression", name, frozenset(done)
            if action.kind == "setVariable":
                done.add(action.fields["variableName"])
        if _always(event):
            before |= _sets([event])


def _read_before_set(model: DetectorModel) -> list[Finding]:
    every = set_names(model)[0]
    entry = _entries(model)
    serial = model.evaluation_method == "SERIAL"
    findings: list[Finding] = []
    reported: set[tuple[str, str]] = set()

    def check(points: Iterator[tuple[str, str, frozenset[str]]]) -> None:
        for path, name, known in points:
            if name in every and name not in known and (path, name) not in reported:
                reported.add((path, name))
                findings.append(
                    Finding(
                        "WARNING",
                        "referenced-data",
                        path,
                        f"variable {name!r} may be read before any action sets it"
                        " (it reads as undefined then)",
                    )
                )

    for name, state in model.states.items():
        check(_group_reads(state.on_enter, entry[name], serial))
        ready = _after_enter(state, entry[name])
        check(_group_reads(state.on_input, ready, serial))
        after_events = _after_input(state, entry[name])
        check(
            _group_reads(state.transitions, after_events if serial else ready, serial, after_events)
        )
        if state.transitions:
            leaving = frozenset.intersection(
                *(after_events | _sets([t], only_always=False) for t in state.transitions)
            )
            check(_group_reads(state.on_exit, leaving, serial))
    return findings


# ---------------------------------------------------------------- timer-triggered reads


def _input_read_on_timer(model: DetectorModel) -> list[Finding]:
    if not set_names(model)[1]:
        return []
    findings = []
    for state in model.states.values():
        for event in state.on_input + state.transitions:
            if event.condition is None:
                continue
            refs = ex.references(event.condition)
            reads_input = any(isinstance(r, ex.InputRef) for r in refs)
            guarded = any(
                isinstance(r, ex.Call) and r.name in ("currentInput", "triggerType") for r in refs
            )
            if reads_input and not guarded:
                findings.append(
                    Finding(
                        "WARNING",
                        "structure",
                        f"{event.path}.condition",
                        "an input attribute is read here, but a timer expiry also runs this"
                        " condition with the last message's data; guard it with"
                        ' triggerType("Message")',
                    )
                )
    return findings
