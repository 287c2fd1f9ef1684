"""DescribeDetector and DescribeAlarm with a keyValue that does not fit the model.

The iotevents-data API reference gives both calls a ``keyValue`` of 1-128 of
``^[a-zA-Z0-9\\-_:]+$`` and lists InvalidRequestException and ResourceNotFoundException
without saying which a key the model cannot take gets. So a key outside that shape is an
invalid request (``UserError`` naming ``keyValue``), as every call of the API refuses a
parameter outside its pattern; a well-formed key given to a model without ``key``, or none
given to a model with one, names no instance: not found (``NotFoundError``), with a message
saying why, not only that nothing answered.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from detector_models import ROLE_ARN, RecordingSink
from hypothesis import given
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.adapters.local.sqlite_state_store import SqliteStateStore
from cloud.cli.main import main
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from cloud.detectors.model import KEY_VALUE_RE
from cloud.ports import StateStore
from edge.clock import ManualClock
from edge.errors import NotFoundError, UserError

IN = {"inputName": "In", "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]}}


def detector_body(keyed: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "detectorModelName": "m",
        "roleArn": ROLE_ARN,
        "detectorModelDefinition": {
            "initialStateName": "Idle",
            "states": [
                {
                    "stateName": "Idle",
                    "onInput": {
                        "events": [
                            {
                                "eventName": "keep",
                                "condition": "$input.In.v > 0",
                                "actions": [
                                    {"setVariable": {"variableName": "v", "value": "$input.In.v"}}
                                ],
                            }
                        ]
                    },
                }
            ],
        },
    }
    if keyed:
        body["key"] = "id"
    return body


def alarm_body(keyed: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "alarmModelName": "hot",
        "roleArn": ROLE_ARN,
        "severity": 1,
        "alarmRule": {
            "simpleRule": {
                "inputProperty": "$input.In.v",
                "comparisonOperator": "GREATER",
                "threshold": "10",
            }
        },
        "alarmCapabilities": {"initializationConfiguration": {"disabledOnInitialization": False}},
    }
    if keyed:
        body["key"] = "id"
    return body


def detector(keyed: bool, store: StateStore | None = None) -> DetectorEngine:
    engine = DetectorEngine(
        load_detector_model(detector_body(keyed)),
        [load_input(IN)],
        store or InMemoryStateStore(),
        ManualClock(1_000.0),
        RecordingSink(),
    )
    engine.put_message("In", {"id": "p1", "v": 1})
    return engine


def alarm(keyed: bool) -> AlarmEngine:
    engine = AlarmEngine(
        load_alarm_model(alarm_body(keyed)),
        [load_input(IN)],
        InMemoryStateStore(),
        ManualClock(1_000.0),
        RecordingSink(),
    )
    engine.put_message("In", {"id": "p1", "v": 1})
    return engine


def reads(keyed: bool) -> list[tuple[str, Callable[[str | None], Any]]]:
    a = alarm(keyed)
    return [("detector", detector(keyed).describe), ("alarm", a.describe), ("alarm", a.state_of)]


@pytest.mark.parametrize("kind", [0, 1, 2], ids=["describe-detector", "describe-alarm", "state-of"])
def test_no_key_value_for_a_model_with_a_key_is_not_found_saying_it_is_required(kind: int) -> None:
    what, read = reads(keyed=True)[kind]
    with pytest.raises(NotFoundError) as caught:
        read(None)
    message = str(caught.value)
    assert "keyValue" in message and "'id'" in message and "required" in message, message
    assert what in message


@pytest.mark.parametrize("kind", [0, 1, 2], ids=["describe-detector", "describe-alarm", "state-of"])
def test_a_key_value_for_a_model_without_key_is_not_found_saying_to_leave_it_out(
    kind: int,
) -> None:
    what, read = reads(keyed=False)[kind]
    with pytest.raises(NotFoundError) as caught:
        read("p1")
    message = str(caught.value)
    assert "has no key" in message and "leave keyValue out" in message, message
    assert what in message


@pytest.mark.parametrize("keyed", [True, False])
@pytest.mark.parametrize("kind", [0, 1, 2], ids=["describe-detector", "describe-alarm", "state-of"])
@given(
    key=st.text(max_size=140).filter(
        lambda k: k != "" and not (len(k) <= 128 and KEY_VALUE_RE.fullmatch(k))
    )
)
def test_a_key_value_outside_the_api_pattern_is_an_invalid_request(
    keyed: bool, kind: int, key: str
) -> None:
    _, read = READS[keyed][kind]
    with pytest.raises(UserError, match="keyValue"):
        read(key)


def test_an_empty_key_value_for_a_model_with_a_key_is_an_invalid_request() -> None:
    for _, read in reads(keyed=True):
        with pytest.raises(UserError, match="keyValue"):
            read("")


@pytest.mark.parametrize("kind", [0, 1, 2], ids=["describe-detector", "describe-alarm", "state-of"])
def test_an_empty_key_value_for_a_model_without_key_is_an_invalid_request(kind: int) -> None:
    """The API's keyValue is 1-128 characters: "" is no key, even where the model has none
    (its one instance answers a request that leaves keyValue out)."""
    _, read = reads(keyed=False)[kind]
    with pytest.raises(UserError, match="keyValue") as caught:
        read("")
    assert not isinstance(caught.value, NotFoundError)
    assert read(None)


def test_the_detectors_cli_refuses_an_empty_key_value_for_a_model_without_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    detector(False, store)
    store.close()
    capsys.readouterr()
    assert main(["detectors", "describe", "--data", str(tmp_path), ""]) == 2
    err = capsys.readouterr().err
    assert "keyValue" in err and "1-128" in err, err
    assert main(["detectors", "describe", "--data", str(tmp_path), "--json"]) == 0


@pytest.mark.parametrize("kind", [0, 1, 2], ids=["describe-detector", "describe-alarm", "state-of"])
def test_a_fitting_key_value_no_message_brought_yet_is_not_found(kind: int) -> None:
    _, read = reads(keyed=True)[kind]
    with pytest.raises(NotFoundError, match="no instance for key 'p2'"):
        read("p2")
    assert read("p1")


def test_a_keyless_detector_before_any_message_is_not_found_saying_so() -> None:
    engine = DetectorEngine(
        load_detector_model(detector_body(False)),
        [load_input(IN)],
        InMemoryStateStore(),
        ManualClock(1_000.0),
        RecordingSink(),
    )
    with pytest.raises(NotFoundError, match="no message has arrived"):
        engine.describe(None)


@pytest.mark.parametrize(
    ("keyed", "args", "expected"),
    [(False, ["p1"], "leave keyValue out"), (True, [], "keyValue is required")],
)
def test_the_detectors_cli_says_why_a_key_names_no_detector(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    keyed: bool,
    args: list[str],
    expected: str,
) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    detector(keyed, store)
    store.close()
    capsys.readouterr()
    assert main(["detectors", "describe", "--data", str(tmp_path), *args]) != 0
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1, err


READS = {keyed: reads(keyed) for keyed in (True, False)}
