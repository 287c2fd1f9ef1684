"""BatchUpdateDetector, DescribeDetector and ListDetectors as the IoT Events data plane
(specs/iotevents-contracts.md §6): a request of several updates reports a bad entry by its
messageId and applies the others; what an entry leaves out is cleared; DescribeDetector
prints values as strings and times as epoch seconds; ListDetectors filters by state."""

from __future__ import annotations

from typing import Any

import pytest
from detector_models import ROLE_ARN, RecordingSink
from hypothesis import given
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.messages import batch_update_detector
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
        (entry("bad", keyValue="a b"), "InvalidRequestException"),
        (entry("bad", state={"stateName": "Busy", "timers": []}), "InvalidRequestException"),
        (entry("bad", state={"stateName": "Busy", "variables": []}), "InvalidRequestException"),
        (entry("bad", state={"variables": [], "timers": []}), "InvalidRequestException"),
        (entry("bad", state=None), "InvalidRequestException"),
        (
            {"messageId": "bad", "detectorModelName": "m", "keyValue": "k"},
            "InvalidRequestException",
        ),
        ({"messageId": "bad", "keyValue": "k", "state": state()}, "InvalidRequestException"),
        (
            entry("bad", state=state(variables=[{"name": "last", "value": "null"}])),
            "InvalidRequestException",
        ),
        (
            entry("bad", state=state(variables=[{"name": "1x", "value": "1"}])),
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
        (entry("bad", state=state(timers=[{"name": "hb"}])), "InvalidRequestException"),
        (
            entry("bad", state=state(timers=[{"name": "", "seconds": 60}])),
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
    ],
)
def test_a_request_wrong_as_a_whole_is_refused(request_body: Any, message: str) -> None:
    (e,), _ = engines()
    with pytest.raises(DetectorModelError, match=message):
        batch_update_detector([e], request_body)
    assert e.key_values() == []


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
