"""Any JSON a device sends leaves the detector running (specs/iotevents-contracts.md §1, §3).

A payload is JSON bytes, so its values are whatever a device wrote: integers of hundreds of
digits, ``1e400`` (read as infinity), nulls, arrays, objects, numbers spelled as text. Every
operator and built-in is applied to them, and each must give a value of the language
(integer or decimal in range, string, Boolean, null or undefined) without raising; and in
the engine every event of the message must still run, since an evaluation that cannot
be made is undefined (false as a condition), not a failed message.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import ActionRequest, DetectorEngine, load_detector_model, load_input
from cloud.detectors import expr as ex
from edge.clock import ManualClock

huge_ints = st.integers(min_value=300, max_value=420).flatmap(
    lambda digits: st.sampled_from([10**digits - 1, -(10**digits) + 1])
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    huge_ints,
    st.sampled_from([1e308, -1e308, 5e-324, 0.0, -0.0, 2**63, -(2**63) - 1]),
    st.sampled_from([math.inf, -math.inf]),  # sent as 1e400 and -1e400
)
scalars = st.one_of(
    numbers,
    st.none(),
    st.booleans(),
    st.sampled_from(["", "5", "2.5", "1e400", "true", "abc", "-0"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("xyz"), inner, max_size=3)
    ),
    max_leaves=6,
)

X = "$input.In.x"
Y = "$input.In.y"
EXPRESSIONS = [
    *(f"{X} {op} {Y}" for op in ("+", "-", "*", "/", "<", "<=", ">", ">=", "==", "!=")),
    *(f"{X} {op} {Y}" for op in ("&", "|", "^", "&&", "||")),
    *(f"{X} {op} 1.5" for op in ("+", "-", "*", "/", "<", "==")),
    *(f"{op}{X}" for op in ("-", "!", "~")),
    f"{X} * {X} * {X}",
    f"'${{{X}}}:${{{Y}}}'",
    f"{X}[0] + {Y}.x",
    *(f"convert({t}, {X})" for t in ("String", "Boolean", "Decimal")),
    *(f"{f}({X})" for f in ("isUndefined", "isNull", "bitnot")),
    *(f"{f}({X}, {Y})" for f in ("startsWith", "endsWith", "contains", "bitand", "bitor")),
    f"bitxor({X}, {Y})",
    f"timeout({X}) || triggerType({X}) || currentInput({X})",
]
PARSED = [ex.parse(text) for text in EXPRESSIONS]


class Ctx:
    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def input_value(self, input_name: str, path: tuple[str | int, ...]) -> Any:
        return ex.lookup_path(self.payload, path) if input_name == "In" else ex.UNDEFINED

    def variable(self, name: str) -> Any:
        return ex.UNDEFINED

    def timeout(self, timer_name: str) -> bool:
        return False

    def trigger_type(self) -> str:
        return "Message"

    def current_input(self) -> str | None:
        return "In"


def _is_language_value(value: Any) -> bool:
    if value is ex.UNDEFINED or value is None or isinstance(value, bool | str | list | dict):
        return True
    if isinstance(value, int):
        return abs(value) <= ex.MAX_INTEGER
    return isinstance(value, float) and math.isfinite(value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=values, y=values)
def test_every_operator_and_function_gives_a_language_value(x: Any, y: Any) -> None:
    ctx = Ctx({"x": x, "y": y})
    for text, tree in zip(EXPRESSIONS, PARSED, strict=True):
        value = ex.evaluate(tree, ctx)
        assert _is_language_value(value), (text, x, y, value)
        assert ex.is_true(tree, ctx) is (value is True)


INPUT = {
    "inputName": "In",
    "inputDefinition": {
        "attributes": [
            {"jsonPath": "id"},
            *({"jsonPath": f"{c}{i}"} for i in range(len(EXPRESSIONS)) for c in "xy"),
        ]
    },
}


def _own(text: str, i: int) -> str:
    """*text* reading attributes of its own: an attribute has one type per model (§3)."""
    return text.replace(X, f"{X}{i}").replace(Y, f"{Y}{i}")


def _model() -> dict[str, Any]:
    events = [
        {
            "eventName": f"e{i}",
            "condition": f"({_own(text, i)}) == ({_own(text, i)}) || true",
            "actions": [{"setVariable": {"variableName": f"v{i}", "value": _own(text, i)}}],
        }
        for i, text in enumerate(EXPRESSIONS)
    ]
    events.append(
        {
            "eventName": "last",
            "condition": "currentInput('In')",
            "actions": [{"setVariable": {"variableName": "ran", "value": "$variable.ran + 1"}}],
        }
    )
    first = {
        "eventName": "init",
        "actions": [{"setVariable": {"variableName": "ran", "value": "0"}}],
    }
    return {
        "detectorModelName": "values",
        "roleArn": "arn:aws:iam::1:role/r",
        "key": "id",
        "detectorModelDefinition": {
            "initialStateName": "S",
            "states": [
                {"stateName": "S", "onEnter": {"events": [first]}, "onInput": {"events": events}}
            ],
        },
    }


class NoActions:
    def execute(self, request: ActionRequest) -> None:
        raise AssertionError(f"no service action was defined: {request}")


ENGINE = DetectorEngine(
    load_detector_model(_model(), strict=False),
    [load_input(INPUT)],
    InMemoryStateStore(),
    ManualClock(1_700_000_000.0),
    NoActions(),
)


KEYS = iter(range(10**9))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=values, y=values)
def test_a_message_with_any_values_runs_every_event(x: Any, y: Any) -> None:
    key = f"k{next(KEYS)}"
    document: dict[str, Any] = {"id": key}
    for i in range(len(EXPRESSIONS)):
        document[f"x{i}"] = x
        document[f"y{i}"] = y
    # The payload as it arrives: JSON text (1e400 reads as infinity), decoded once; put to
    # the engine directly, since BatchPutMessage's 1 KiB would not hold one value per event.
    text = json.dumps(document).replace("Infinity", "1e400")
    ENGINE.put_message("In", json.loads(text), "m")
    state = ENGINE.describe(key)["detector"]["state"]
    assert {v["name"]: v["value"] for v in state["variables"]}["ran"] == "1"


BITWISE = [
    ex.parse(text)
    for text in (
        f"({X} | {Y}) * 1.5",
        f"({X} & {Y}) * 1.5",
        f"({X} ^ {Y}) * 1.5",
        f"~{X} * 1.5",
        f"bitor({X}, {Y}) * 1.5",
        f"bitxor({X}, {Y}) - 0.5",
        f"bitnot({X}) / 2.0",
    )
]
in_range = st.one_of(
    st.integers(min_value=-ex.MAX_INTEGER, max_value=ex.MAX_INTEGER),
    st.sampled_from([ex.MAX_INTEGER, -ex.MAX_INTEGER, ex.MAX_INTEGER - 1, 2**1023]),
)


@settings(max_examples=150, deadline=None)
@given(x=in_range, y=in_range)
def test_bitwise_results_stay_in_the_number_range(x: int, y: int) -> None:
    """``~``, ``|``, ``^`` and their functions can leave the range of the integers they take
    (``~MAX`` is one past it); such a result is undefined, so arithmetic on it cannot raise."""
    ctx = Ctx({"x": x, "y": y})
    for tree in BITWISE:
        assert _is_language_value(ex.evaluate(tree, ctx)), (tree, x, y)


ROUND_TRIP = ex.parse(f"convert(Decimal, convert(String, {X})) == {X}")
BOOL_TRIP = ex.parse(f"convert(Boolean, convert(String, {X})) == {X}")
TEMPLATE = ex.parse(f"'${{{X}}}' == convert(String, {X})")


@settings(max_examples=200, deadline=None)
@given(x=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**53), 2**53)))
def test_a_number_printed_by_convert_reads_back_as_the_same_number(x: float | int) -> None:
    """convert(String) prints a decimal shortest round-trip (spec §3), and convert(Decimal)
    reads that text back to the same number; a template prints it as convert(String) does.
    Integers up to 2**53 only: convert(Decimal) gives a decimal, which holds no more."""
    ctx = Ctx({"x": x})
    assert ex.evaluate(ROUND_TRIP, ctx) is True, (x, ex.format_value(x))
    assert ex.evaluate(TEMPLATE, ctx) is True


@given(x=st.booleans())
def test_a_boolean_printed_by_convert_reads_back(x: bool) -> None:
    ctx = Ctx({"x": x})
    assert ex.evaluate(BOOL_TRIP, ctx) is True
    assert ex.evaluate(TEMPLATE, ctx) is True


paths = st.tuples(
    st.sampled_from("xyz"),
    st.lists(st.one_of(st.sampled_from("xyz"), st.integers(0, 3)), max_size=3),
).map(lambda p: [p[0], *p[1]])
"""A path starts with a name, then names and array indexes."""


def _walk(document: Any, path: list[str | int]) -> Any:
    """The reference: a key of an object or an index of an array, else undefined."""
    node = document
    for seg in path:
        in_array = isinstance(seg, int) and isinstance(node, list) and seg < len(node)
        in_object = isinstance(seg, str) and isinstance(node, dict) and seg in node
        if not (in_array or in_object):
            return ex.UNDEFINED
        node = node[seg]
    return node


def _reference_text(path: list[str | int]) -> str:
    return "$input.In" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path)


def _out_of_range(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > ex.MAX_INTEGER


@settings(max_examples=150, deadline=None)
@given(document=values, path=paths)
def test_a_reference_reads_the_document_or_is_undefined(
    document: Any, path: list[str | int]
) -> None:
    """``$input.In.a.b[2]``: missing keys, indexes past the end, indexes into objects and
    keys into arrays or scalars are undefined; JSON null is null, not undefined (spec §1,
    §3); a number the language cannot hold is undefined."""
    payload = {"x": document, "y": document, "z": document}
    expected = _walk(payload, path)
    ctx = Ctx(payload)
    text = _reference_text(path)
    is_undefined = ex.evaluate(ex.parse(f"isUndefined({text})"), ctx)
    is_null = ex.evaluate(ex.parse(f"isNull({text})"), ctx)
    if expected is ex.UNDEFINED or _out_of_range(expected):
        assert (is_undefined, is_null) == (True, False), (text, document)
    else:
        assert (is_undefined, is_null) == (False, expected is None), (text, document)
        assert ex.evaluate(ex.parse(text), ctx) == expected
