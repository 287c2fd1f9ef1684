"""BatchUpdateDetector reads a variable's value as DescribeDetector prints it (numbers as their
text, strings as JSON string literals), so describe -> update gives back every value exactly."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from detector_models import RecordingSink, event, one_state_model
from hypothesis import given
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.engine import MAX_VARIABLE_CHARS, value_chars
from cloud.detectors.expr import MAX_INTEGER
from edge.clock import ManualClock
from edge.errors import DetectorModelError

IN = {"inputName": "In", "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]}}


def engine() -> tuple[DetectorEngine, InMemoryStateStore]:
    store = InMemoryStateStore()
    body = one_state_model(
        event({"setVariable": {"variableName": "x", "value": "$input.In.v"}}, name="keep")
    )
    e = DetectorEngine(
        load_detector_model(body), [load_input(IN)], store, ManualClock(), RecordingSink()
    )
    return e, store


def stored(store: InMemoryStateStore, name: str = "x") -> Any:
    doc = store.get("detectors/m", "k")
    assert doc is not None
    return doc["variables"][name]


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down; -0.0 is not 0.0, 1 is not 1.0 or true."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def round_trip(value: Any) -> None:
    e, store = engine()
    e.put_message("In", {"id": "k", "v": value})
    assert same(stored(store), value)
    described = e.describe("k")["detector"]["state"]
    e.update_detector("k", {"stateName": "A", "variables": described["variables"]})
    assert same(stored(store), value), (value, described["variables"], stored(store))
    assert e.describe("k")["detector"]["state"] == described


@pytest.mark.parametrize(
    "value",
    [
        'say "hi"',
        "line\nbreak\ttab",
        "back\\slash",
        "\\n",
        "é ü 漢字 🚀",
        "it's",
        "${not a template}",
        "",
        "15.0",
        "true",
        -0.0,
        0.0,
        1e-7,
        1e300,
        -1.7976931348623157e308,
        5e-324,
        MAX_INTEGER,
        -MAX_INTEGER,
        0,
        True,
        False,
        {"a": [1, 1.5, "x", None, True], "b": {"c": 'd"e'}},
        [],
    ],
)
def test_describe_then_update_gives_back_the_value(value: Any) -> None:
    round_trip(value)


scalars = st.one_of(
    st.integers(min_value=-MAX_INTEGER, max_value=MAX_INTEGER),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=1024),  # a variable holds at most 1,024 characters
    st.booleans(),
)
finite_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(value=scalars)
def test_every_scalar_round_trips(value: Any) -> None:
    round_trip(value)


@given(
    value=(
        st.lists(finite_json, max_size=3)
        | st.dictionaries(st.text(max_size=4), finite_json, max_size=3)
    ).filter(lambda v: value_chars(v) <= MAX_VARIABLE_CHARS)  # what a variable holds
)
def test_every_object_value_round_trips(value: Any) -> None:
    round_trip(value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("22", 22),
        ("1.0", 1.0),
        ("-3", -3),
        ("true", True),
        ("false", False),
        ('"Area51"', "Area51"),
        ('"a\\"b"', 'a"b'),
        ('"\\u00e9"', "é"),
        (" 15.5 ", 15.5),
        ("1e3", 1000.0),
        ("'single quoted'", "single quoted"),  # an expression's string literal, as before
    ],
)
def test_update_reads_the_values_aws_examples_and_describe_print(text: str, value: Any) -> None:
    e, store = engine()
    e.update_detector("k", {"stateName": "A", "variables": [{"name": "x", "value": text}]})
    assert same(stored(store), value)


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999",
        "null",
        str(MAX_INTEGER * 10),
        "9" * 5000,
        "abc",
        '"unterminated',
        "'${$variable.y}'",
        "1 + 2",
        "[1, NaN]",
        "",
    ],
)
def test_update_refuses_what_no_variable_can_hold(text: str) -> None:
    e, _ = engine()
    with pytest.raises(DetectorModelError, match=r"variables\[0\]\.value"):
        e.update_detector("k", {"stateName": "A", "variables": [{"name": "x", "value": text}]})


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("x" * 1024, True), ("x" * 1025, False), ("\u6f22" * 1024, True), (["x" * 1030], False)],
)
def test_update_holds_a_value_to_1024_characters(value: Any, accepted: bool) -> None:
    """VariableDefinition.value: at most 1,024 characters (a string's own characters, not
    the escapes of its JSON text), as setVariable holds it."""
    e, store = engine()
    request = {"stateName": "A", "variables": [{"name": "x", "value": json.dumps(value)}]}
    if accepted:
        e.update_detector("k", request)
        assert stored(store) == value
        return
    with pytest.raises(DetectorModelError, match=r"variables\[0\]\.value: .*at most 1024"):
        e.update_detector("k", request)


@pytest.mark.parametrize("name", ["", "1x", "x y", "$x", "a-b", "x" * 129, "é"])
def test_update_refuses_a_name_no_variable_can_have(name: str) -> None:
    """VariableDefinition.name is a setVariable name: ^[a-zA-Z][a-zA-Z0-9_]*$, 1-128."""
    e, _ = engine()
    with pytest.raises(
        DetectorModelError, match=r"variables\[0\]\.name: .* is not a variable name"
    ):
        e.update_detector("k", {"stateName": "A", "variables": [{"name": name, "value": "1"}]})
    for timer in ("", "t" * 129):
        with pytest.raises(DetectorModelError, match=r"timers\[0\]"):
            e.update_detector("k", {"stateName": "A", "timers": [{"name": timer, "seconds": 60}]})


@given(
    value=st.recursive(
        st.floats() | st.integers(-(2**60), 2**60) | st.text(max_size=4),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=8,
    )
)
def test_whatever_a_message_sets_a_variable_to_round_trips(value: Any) -> None:
    """NaN or Infinity anywhere in it leaves the variable unset, so what a describe prints
    always goes back through an update."""
    e, store = engine()
    e.put_message("In", {"id": "k", "v": value})
    variables = e.describe("k")["detector"]["state"]["variables"]
    e.update_detector("k", {"stateName": "A", "variables": variables})
    assert e.describe("k")["detector"]["state"]["variables"] == variables
    doc = store.get("detectors/m", "k")
    assert doc is not None and (doc["variables"] == {} or same(doc["variables"]["x"], value))


@pytest.mark.parametrize("key", [None, "", "a b", "a.b", "x" * 129, "é"])
def test_update_refuses_a_key_no_message_could_give(key: str | None) -> None:
    """A keyed model's instances have key values of ^[a-zA-Z0-9\\-_:]+$ (at most 128), as a
    message's key is read; an update for any other would make an instance no message reaches."""
    e, store = engine()
    with pytest.raises(DetectorModelError, match="keyValue"):
        e.update_detector(key, {"stateName": "A"})
    assert list(store.items("detectors/m")) == []


def keyless_engine() -> tuple[DetectorEngine, InMemoryStateStore]:
    """A model without ``key`` whose one detector has seen ``{"v": 1}``."""
    store = InMemoryStateStore()
    body = one_state_model(
        event({"setVariable": {"variableName": "x", "value": "$input.In.v"}}), key=None
    )
    e = DetectorEngine(
        load_detector_model(body), [load_input(IN)], store, ManualClock(), RecordingSink()
    )
    e.put_message("In", {"v": 1})
    return e, store


def test_a_model_without_a_key_updates_its_one_instance() -> None:
    e, store = keyless_engine()
    with pytest.raises(DetectorModelError, match="has no key"):
        e.update_detector("k", {"stateName": "A", "variables": [{"name": "x", "value": "2"}]})
    e.update_detector(None, {"stateName": "A", "variables": [{"name": "x", "value": "3"}]})
    assert e.describe()["detector"]["state"]["variables"] == [{"name": "x", "value": "3"}]
    assert [key for key, _ in store.items("detectors/m")] == [""]


@given(st.text(max_size=140))
def test_a_model_without_a_key_refuses_every_key_value_the_empty_one_too(key: str) -> None:
    """UpdateDetectorRequest.keyValue is 1-128 characters, and a model without ``key`` has no
    key value at all: "" names no detector, as DescribeDetector refuses it; only an update
    that leaves keyValue out reaches the model's one detector."""
    e, store = keyless_engine()
    with pytest.raises(DetectorModelError, match="keyValue") as caught:
        e.update_detector(key, {"stateName": "A", "variables": [{"name": "x", "value": "2"}]})
    assert "has no key" in str(caught.value) or "1-128" in str(caught.value), caught.value
    assert e.describe()["detector"]["state"]["variables"] == [{"name": "x", "value": "1"}]
    assert [stored_key for stored_key, _ in store.items("detectors/m")] == [""]
