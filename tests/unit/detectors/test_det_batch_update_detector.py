"""BatchUpdateDetector, DescribeDetector and ListDetectors as the IoT Events data plane
(specs/iotevents-contracts.md §6): a request of several updates reports a bad entry by its
messageId and applies the others; what an entry leaves out is cleared; DescribeDetector
prints values as strings and times as epoch seconds; ListDetectors filters by state."""

from __future__ import annotations

import re
from typing import Any

import pytest
from detector_models import ROLE_ARN, RecordingSink
from hypothesis import given
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.messages import batch_update_detector
from cloud.detectors.model import KEY_VALUE_RE
from edge.clock import ManualClock
from edge.errors import DetectorModelError

IN = {"inputName": "In", "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]}}
START = 1_767_225_600.0


def two_state_model(name: str = "m") -> dict[str, Any]:
    """Idle -> Busy when v > 10; Busy keeps v in `last` and arms timer `hb`."""
    return {
        "detectorModelName": name,
        "roleArn": ROLE_ARN,
        "key": "id",
        "detectorModelDefinition": {
            "initialStateName": "Idle",
            "states": [
                {
                    "stateName": "Idle",
                    "onInput": {
                        "transitionEvents": [
                            {
                                "eventName": "go",
                                "condition": "$input.In.v > 10",
                                "nextState": "Busy",
                            }
                        ]
                    },
                },
                {
                    "stateName": "Busy",
                    "onEnter": {
                        "events": [
                            {
                                "eventName": "arm",
                                "actions": [{"setTimer": {"timerName": "hb", "seconds": 60}}],
                            }
                        ]
                    },
                    "onInput": {
                        "events": [
                            {
                                "eventName": "keep",
                                "condition": 'currentInput("In")',
                                "actions": [
                                    {
                                        "setVariable": {
                                            "variableName": "last",
                                            "value": "$input.In.v",
                                        }
                                    }
                                ],
                            }
                        ],
                        "transitionEvents": [
                            {"eventName": "back", "condition": 'timeout("hb")', "nextState": "Idle"}
                        ],
                    },
                },
            ],
        },
    }


def engines(*names: str) -> tuple[list[DetectorEngine], ManualClock]:
    clock = ManualClock(START)
    store = InMemoryStateStore()
    made = [
        DetectorEngine(
            load_detector_model(two_state_model(n)), [load_input(IN)], store, clock, RecordingSink()
        )
        for n in names or ("m",)
    ]
    return made, clock


def entry(message_id: str = "u1", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "messageId": message_id,
        "detectorModelName": "m",
        "keyValue": "pump-01",
        "state": {"stateName": "Busy", "variables": [], "timers": []},
    }
    return base | fields


def state(name: str = "Busy", variables: Any = (), timers: Any = ()) -> dict[str, Any]:
    return {"stateName": name, "variables": list(variables), "timers": list(timers)}


def test_an_update_sets_state_variables_and_timers_and_describe_shows_them() -> None:
    (e,), clock = engines()
    clock.advance(5)
    answer = batch_update_detector(
        [e],
        {
            "detectors": [
                entry(
                    state=state(
                        variables=[{"name": "last", "value": "15.0"}],
                        timers=[{"name": "hb", "seconds": 120}],
                    )
                )
            ]
        },
    )
    assert answer == {"batchUpdateDetectorErrorEntries": []}
    detector = e.describe("pump-01")["detector"]
    assert detector == {
        "detectorModelName": "m",
        "keyValue": "pump-01",
        "detectorModelVersion": e.version,
        "creationTime": START + 5,
        "lastUpdateTime": START + 5,
        "state": {
            "stateName": "Busy",
            "variables": [{"name": "last", "value": "15.0"}],
            "timers": [{"name": "hb", "timestamp": START + 125}],
        },
    }
    assert isinstance(detector["creationTime"], float)
    assert all(isinstance(v["value"], str) for v in detector["state"]["variables"])


def test_what_an_update_leaves_out_is_cleared() -> None:
    (e,), clock = engines()
    e.put_message("In", {"id": "pump-01", "v": 11})
    e.put_message("In", {"id": "pump-01", "v": 12})
    described = e.describe("pump-01")["detector"]["state"]
    assert described["variables"] == [{"name": "last", "value": "12"}]
    assert [t["name"] for t in described["timers"]] == ["hb"]
    batch_update_detector([e], {"detectors": [entry(state=state("Busy"))]})
    described = e.describe("pump-01")["detector"]["state"]
    assert described == {"stateName": "Busy", "variables": [], "timers": []}
    clock.advance(3600)
    e.tick()
    assert e.describe("pump-01")["detector"]["state"]["stateName"] == "Busy"  # hb was cleared


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (entry("bad", detectorModelName="nope"), "ResourceNotFoundException"),
        (entry("bad", state=state("Nowhere")), "InvalidRequestException"),
        (entry("bad", keyValue=None), "InvalidRequestException"),
        (
            entry("bad", state=state(variables=[{"name": "last", "value": "null"}])),
            "InvalidRequestException",
        ),
        (
            entry("bad", state=state(variables=[{"name": "last", "value": "$input.In.v"}])),
            "InvalidRequestException",
        ),
        (
            entry("bad", state=state(timers=[{"name": "hb", "seconds": 59}])),
            "InvalidRequestException",
        ),
        (
            entry("bad", state=state(timers=[{"name": "hb", "seconds": 31_622_401}])),
            "InvalidRequestException",
        ),
    ],
)
def test_a_bad_entry_is_reported_by_its_message_id_and_the_others_apply(
    bad: dict[str, Any], code: str
) -> None:
    (e,), _ = engines()
    before = {"stateName": "Idle", "variables": [{"name": "last", "value": "1"}], "timers": []}
    good_before = entry("g0", keyValue="other", state=before)
    batch_update_detector([e], {"detectors": [good_before]})
    answer = batch_update_detector(
        [e], {"detectors": [entry("g1"), bad, entry("g2", keyValue="pump-02")]}
    )
    errors = answer["batchUpdateDetectorErrorEntries"]
    assert [(x["messageId"], x["errorCode"]) for x in errors] == [("bad", code)]
    assert errors[0]["errorMessage"]
    assert e.describe("pump-01")["detector"]["state"]["stateName"] == "Busy"
    assert e.describe("pump-02")["detector"]["state"]["stateName"] == "Busy"
    assert e.describe("other")["detector"]["state"] == before  # the bad entry changed nothing


@pytest.mark.parametrize("seconds", [60, 31_622_400])
def test_timer_seconds_at_the_bounds_are_accepted(seconds: int) -> None:
    (e,), _ = engines()
    body = entry(state=state(timers=[{"name": "hb", "seconds": seconds}]))
    assert batch_update_detector([e], {"detectors": [body]}) == {
        "batchUpdateDetectorErrorEntries": []
    }
    timers = e.describe("pump-01")["detector"]["state"]["timers"]
    assert timers == [{"name": "hb", "timestamp": START + seconds}]


def shape_error(field: str, value: Any) -> dict[str, Any]:
    """A request whose second entry breaks the API's shape at *field* (a dotted path
    below the entry; ``None`` leaves the member out), after a good first entry."""
    bad = entry("bad", keyValue="pump-02", state=state())
    *parents, last = field.split(".")
    holder = bad
    for name in parents:
        holder = holder[int(name)] if isinstance(holder, list) else holder[name]
    if value is None:
        del holder[last]
    else:
        holder[last] = value
    return {"detectors": [entry("good"), bad]}


def with_variable(**fields: Any) -> dict[str, Any]:
    return state(variables=[{"name": "last", "value": "1"} | fields])


def with_timer(**fields: Any) -> dict[str, Any]:
    return state(timers=[{"name": "hb", "seconds": 60} | fields])


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({}, "detectors"),
        ({"detectors": []}, "detectors"),
        ({"detectors": "x"}, "detectors"),
        ({"detectors": [entry("same"), entry("same", keyValue="b")]}, "duplicate"),
        ({"detectors": [entry("a b")]}, "messageId"),
        ({"detectors": [entry("x" * 65)]}, "messageId"),
        ({"detectors": [{"detectorModelName": "m"}]}, "messageId"),
        ({"detectors": ["x"]}, "object"),
        # UpdateDetectorRequest, DetectorStateDefinition, VariableDefinition and
        # TimerDefinition (iotevents-data API reference): a member outside its documented
        # type, length or pattern, or a required one left out, fails the whole call
        *[
            (shape_error("keyValue", value), r"detectors\[1\]\.keyValue")
            for value in ("", "a b", "x" * 129, "é", 7, ["k"])
        ],
        *[
            (shape_error("detectorModelName", value), r"detectors\[1\]\.detectorModelName")
            for value in (None, "", "a b", "x" * 129, "m:1", 7)
        ],
        *[
            (shape_error("state", value), r"detectors\[1\]\.state")
            for value in (None, "Busy", ["Busy"])
        ],
        *[
            (shape_error(f"state.{name}", None), rf"detectors\[1\]\.state\.{name}")
            for name in ("stateName", "variables", "timers")
        ],
        *[
            (shape_error("state.stateName", value), r"detectors\[1\]\.state\.stateName")
            for value in ("", "x" * 129, 7, ["Busy"])
        ],
        *[
            (shape_error(f"state.{name}", value), rf"detectors\[1\]\.state\.{name}")
            for name in ("variables", "timers")
            for value in ("x", {"name": "a"})
        ],
        (shape_error("state", state(variables=["last=1"])), r"state\.variables\[0\]"),
        *[
            (shape_error("state", with_variable(name=name)), r"state\.variables\[0\]\.name")
            for name in ("", "1x", "a-b", "x" * 129, 7)
        ],
        *[
            (shape_error("state", with_variable(value=v)), r"state\.variables\[0\]\.value")
            for v in ("", "1" * 1025, 15, True)
        ],
        (shape_error("state", state(timers=[7])), r"state\.timers\[0\]"),
        *[
            (shape_error("state", with_timer(name=name)), r"state\.timers\[0\]\.name")
            for name in ("", "x" * 129, 7)
        ],
        *[
            (shape_error("state", with_timer(seconds=s)), r"state\.timers\[0\]\.seconds")
            for s in ("60", 60.5, True)
        ],
    ],
)
def test_a_request_wrong_as_a_whole_is_refused(request_body: Any, message: str) -> None:
    (e,), _ = engines()
    with pytest.raises(DetectorModelError, match=message):
        batch_update_detector([e], request_body)
    assert e.key_values() == []  # no entry ran, not even the good one before the bad


INTEGER_MIN, INTEGER_MAX = -(2**31), 2**31 - 1
"""TimerDefinition.seconds is an Integer (iotevents-data API reference): 32-bit signed."""


@given(
    st.one_of(
        st.integers(max_value=INTEGER_MIN - 1),
        st.integers(min_value=INTEGER_MAX + 1),
        st.sampled_from([INTEGER_MIN - 1, INTEGER_MAX + 1, 2**63, 10**400]),
    )
)
def test_timer_seconds_past_the_api_integer_refuse_the_request(seconds: int) -> None:
    (e,), _ = engines()
    with pytest.raises(DetectorModelError, match=r"detectors\[1\]\.state\.timers\[0\]\.seconds"):
        batch_update_detector([e], shape_error("state", with_timer(seconds=seconds)))
    assert e.key_values() == []


@given(
    st.integers(min_value=INTEGER_MIN, max_value=INTEGER_MAX).filter(
        lambda s: not 60 <= s <= 31_622_400
    )
)
def test_timer_seconds_the_api_takes_but_the_model_cannot_are_an_entry_error(seconds: int) -> None:
    (e,), _ = engines()
    answer = batch_update_detector([e], shape_error("state", with_timer(seconds=seconds)))
    errors = answer["batchUpdateDetectorErrorEntries"]
    assert [(x["messageId"], x["errorCode"]) for x in errors] == [
        ("bad", "InvalidRequestException")
    ]
    assert "60" in errors[0]["errorMessage"], errors
    assert e.key_values() == ["pump-01"]  # the good entry applied, the bad one made nothing


@pytest.mark.parametrize("member", ["variables[0].name", "variables[0].value", "timers[0].name"])
def test_members_missing_from_a_variable_or_timer_refuse_the_request(member: str) -> None:
    parent, name = member.split(".")
    body = state(variables=[{"name": "last", "value": "1"}], timers=[{"name": "hb", "seconds": 60}])
    del body[parent.removesuffix("[0]")][0][name]
    (e,), _ = engines()
    with pytest.raises(DetectorModelError, match=re.escape(f"state.{member}")):
        batch_update_detector([e], {"detectors": [entry("good"), entry("bad", state=body)]})
    assert e.key_values() == []


@given(
    st.text(max_size=140).filter(lambda k: not (k and len(k) <= 128 and KEY_VALUE_RE.fullmatch(k)))
)
def test_any_key_value_outside_the_pattern_refuses_the_request(key: str) -> None:
    (e,), _ = engines()
    with pytest.raises(DetectorModelError, match=r"detectors\[1\]\.keyValue"):
        batch_update_detector([e], {"detectors": [entry("good"), entry("bad", keyValue=key)]})
    assert e.key_values() == []


def test_a_key_value_given_to_a_model_without_key_is_an_entry_error() -> None:
    """Well formed, but no message could ever make it name an instance of that model: the
    entry is refused as invalid, as the alarm requests refuse it, and the others apply."""
    body = two_state_model("single")
    del body["key"]
    e = DetectorEngine(
        load_detector_model(body),
        [load_input(IN)],
        InMemoryStateStore(),
        ManualClock(START),
        RecordingSink(),
    )
    answer = batch_update_detector(
        [e],
        {
            "detectors": [
                entry("bad", detectorModelName="single"),
                entry("good", detectorModelName="single", keyValue=None),
            ]
        },
    )
    [error] = answer["batchUpdateDetectorErrorEntries"]
    assert (error["messageId"], error["errorCode"]) == ("bad", "InvalidRequestException")
    assert "keyValue" in error["errorMessage"]
    assert e.describe(None)["detector"]["state"]["stateName"] == "Busy"


def test_entries_reach_the_model_they_name() -> None:
    (m, n), _ = engines("m", "n")
    batch_update_detector(
        [m, n],
        {"detectors": [entry("a"), entry("b", detectorModelName="n", state=state("Idle"))]},
    )
    assert m.describe("pump-01")["detector"]["state"]["stateName"] == "Busy"
    assert n.describe("pump-01")["detector"]["state"]["stateName"] == "Idle"


@given(
    st.dictionaries(
        st.from_regex(r"[a-zA-Z0-9_:-]{1,8}", fullmatch=True),
        st.sampled_from(["Idle", "Busy"]),
        max_size=6,
    ),
    st.sampled_from([None, "Idle", "Busy", "Gone"]),
)
def test_list_detectors_filters_by_state(instances: dict[str, str], wanted: str | None) -> None:
    (e,), _ = engines()
    for key, name in instances.items():
        e.update_detector(key, state(name))
    summaries = e.list_detectors(state_name=wanted)["detectorSummaries"]
    expected = sorted(k for k, s in instances.items() if wanted is None or s == wanted)
    assert [s["keyValue"] for s in summaries] == expected
    for summary in summaries:
        assert summary == {
            "detectorModelName": "m",
            "keyValue": summary["keyValue"],
            "detectorModelVersion": e.version,
            "state": {"stateName": instances[summary["keyValue"]]},
            "creationTime": START,
            "lastUpdateTime": START,
        }


def test_list_detectors_sees_instances_stored_before_the_engine_started() -> None:
    clock = ManualClock(START)
    store = InMemoryStateStore()
    model = load_detector_model(two_state_model())
    first = DetectorEngine(model, [load_input(IN)], store, clock, RecordingSink())
    first.put_message("In", {"id": "pump-01", "v": 11})
    later = DetectorEngine(model, [load_input(IN)], store, clock, RecordingSink(), preload=False)
    listed = later.list_detectors(state_name="Busy")["detectorSummaries"]
    assert [s["keyValue"] for s in listed] == ["pump-01"]


def test_names_the_model_never_uses_are_kept_and_a_timer_of_them_still_expires() -> None:
    """AWS documents no check of variable or timer names against the model, and its
    analyzer cannot see them; they are held (and shown) like any other, and such a timer
    runs the state's onInput on expiry, where only timeout() of that name answers true."""
    (e,), clock = engines()
    body = entry(
        state=state(
            variables=[{"name": "note", "value": '"checked"'}],
            timers=[{"name": "extra", "seconds": 60}],
        )
    )
    assert batch_update_detector([e], {"detectors": [body]}) == {
        "batchUpdateDetectorErrorEntries": []
    }
    described = e.describe("pump-01")["detector"]["state"]
    assert described["variables"] == [{"name": "note", "value": '"checked"'}]
    assert described["timers"] == [{"name": "extra", "timestamp": START + 60}]
    clock.advance(61)
    e.tick()
    described = e.describe("pump-01")["detector"]["state"]
    assert described["stateName"] == "Busy"  # timeout("hb") stayed false
    assert described["timers"] == []


@pytest.mark.parametrize(("seconds", "accepted"), [(1, True), (5, True), (0, False)])
def test_a_lenient_model_takes_the_timers_it_could_set_itself(seconds: int, accepted: bool) -> None:
    """A lenient model's setTimer runs from 1 s (AWS's 60 s minimum is a structural limit,
    §8); an update restoring such a timer, as DescribeDetector showed it, is taken too."""
    body = two_state_model()
    enter = body["detectorModelDefinition"]["states"][1]["onEnter"]["events"][0]
    enter["actions"] = [{"setTimer": {"timerName": "hb", "seconds": 5}}]
    e = DetectorEngine(
        load_detector_model(body, strict=False),
        [load_input(IN)],
        InMemoryStateStore(),
        ManualClock(START),
        RecordingSink(),
    )
    update = entry(state=state(timers=[{"name": "hb", "seconds": seconds}]))
    errors = batch_update_detector([e], {"detectors": [update]})["batchUpdateDetectorErrorEntries"]
    assert (errors == []) is accepted, errors
    if accepted:
        timers = e.describe("pump-01")["detector"]["state"]["timers"]
        assert timers == [{"name": "hb", "timestamp": START + seconds}]
