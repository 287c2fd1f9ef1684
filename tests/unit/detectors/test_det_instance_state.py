"""Stored detector instances that are not what the engine wrote (a hand-edited or damaged
state file): never a traceback, never a detector evaluating from a state its model lacks.

The engine sets such an instance aside under ``quarantine/detectors/<model>`` with the reason
(naming the detector, the store path and the field) and the key starts again from the
initial state; read-only tools report one line naming the same."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from detector_models import RecordingSink

from cloud.adapters.local import SqliteStateStore
from cloud.cli.main import main
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from edge.clock import ManualClock
from edge.errors import StorageError

INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]},
}
MODEL = {
    "detectorModelName": "m",
    "roleArn": "arn:aws:iam::1:role/r",
    "key": "id",
    "evaluationMethod": "BATCH",
    "detectorModelDefinition": {
        "initialStateName": "Normal",
        "states": [
            {
                "stateName": "Normal",
                "onInput": {
                    "events": [
                        {
                            "eventName": "count",
                            "condition": "true",
                            "actions": [
                                {
                                    "setVariable": {
                                        "variableName": "n",
                                        "value": "$variable.n + 1",
                                    }
                                }
                            ],
                        }
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "hot",
                            "condition": "$input.In.v > 10",
                            "nextState": "Alarm",
                        }
                    ],
                },
                "onEnter": {
                    "events": [
                        {
                            "eventName": "init",
                            "condition": "true",
                            "actions": [{"setVariable": {"variableName": "n", "value": "0"}}],
                        }
                    ]
                },
            },
            {"stateName": "Alarm"},
        ],
    },
}
GOOD = {
    "state": "Normal",
    "variables": {"n": 3},
    "timers": {},
    "expired": [],
    "inputs": {"In": {"id": "p1", "v": 1}},
    "created": 1.0,
    "updated": 2.0,
    "entries": 1,
    "durations": {},
}
CORRUPT: list[tuple[str, Any, str]] = [
    ("a state number", {**GOOD, "state": 5}, "state: expected a state name, got 5"),
    (
        "a state the model lacks",
        {**GOOD, "state": "Gone"},
        "state: expected one of the model's states (Normal, Alarm), got 'Gone'",
    ),
    ("no state", {k: v for k, v in GOOD.items() if k != "state"}, "state: expected"),
    ("variables a list", {**GOOD, "variables": [1, 2]}, "variables: expected an object"),
    ("timers a number", {**GOOD, "timers": 5}, "timers: expected an object"),
    (
        "a timer without expiry",
        {**GOOD, "timers": {"t": {"duration": 60}}},
        "timers.t: expected",
    ),
    (
        "a timer expiring at text",
        {**GOOD, "timers": {"t": {"expiry": "soon", "duration": 60}}},
        "timers.t: expected",
    ),
    ("expired a text", {**GOOD, "expired": "t"}, "expired: expected a list of timer names"),
    ("an input not an object", {**GOOD, "inputs": {"In": 7}}, "inputs.In: expected a message"),
    ("entries negative", {**GOOD, "entries": -1}, "entries: expected a count"),
    ("entries a boolean", {**GOOD, "entries": True}, "entries: expected a count"),
    ("created text", {**GOOD, "created": "yesterday"}, "created: expected epoch seconds"),
    ("created 400 digits", {**GOOD, "created": 10**400}, "created: expected epoch seconds"),
    (
        "a timer expiring at 400 digits",
        {**GOOD, "timers": {"t": {"expiry": 10**400, "duration": 60}}},
        "timers.t: expected",
    ),
    ("durations text", {**GOOD, "durations": {"t": "x"}}, "durations.t: expected a number"),
]
PAST_ANY_DATE: list[tuple[str, Any, str]] = [
    (
        "a timer expiring after year 9999",
        {**GOOD, "timers": {"t": {"expiry": 1e300, "duration": 60}}},
        "timers.t: expected",
    ),
    ("updated after year 9999", {**GOOD, "updated": 1e300}, "updated: expected epoch seconds"),
    ("updated before year 1", {**GOOD, "updated": -1e300}, "updated: expected epoch seconds"),
    ("created after year 9999", {**GOOD, "created": 1e18}, "created: expected epoch seconds"),
    (
        "a duration of a million years",
        {**GOOD, "durations": {"t": 3.2e13}},
        "durations.t: expected a number of seconds",
    ),
]
"""Finite, but no engine writes them and no date can show them: ``detectors list`` stopped
with an internal error printing one."""
CORRUPT += PAST_ANY_DATE
WHERE = "detector 'm' instance 'p1' (state store detectors/m/p1)"


def _engine(store: SqliteStateStore, **options: Any) -> DetectorEngine:
    return DetectorEngine(
        load_detector_model(MODEL),
        [load_input(INPUT)],
        store,
        ManualClock(1_000.0),
        RecordingSink(),
        **options,
    )


def _store_with(tmp_path: Path, doc: Any) -> SqliteStateStore:
    """A state file whose instance p1 of model m holds *doc* (the registry written first by
    an engine, as a running stack leaves it)."""
    store = SqliteStateStore(tmp_path / "state.db")
    _engine(store).put_message("In", {"id": "p1", "v": 1})
    store.put("detectors/m", "p1", doc)
    return store


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "on-first-message"])
@pytest.mark.parametrize(("case", "doc", "expected"), CORRUPT, ids=[c[0] for c in CORRUPT])
def test_a_corrupt_instance_is_set_aside_with_its_reason_and_the_key_starts_again(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: str,
    doc: Any,
    expected: str,
    preload: bool,
) -> None:
    store = _store_with(tmp_path, doc)
    with caplog.at_level(logging.ERROR, logger="cloud.detectors.instances"):
        engine = _engine(store, preload=preload)
        engine.put_message("In", {"id": "p1", "v": 2})
    quarantined = store.get("quarantine/detectors/m", "p1")
    assert quarantined is not None
    assert quarantined["document"] == doc
    assert quarantined["reason"].startswith(f"{WHERE}: ")
    assert expected in quarantined["reason"]
    assert any(expected in r.getMessage() and WHERE in r.getMessage() for r in caplog.records)
    described = engine.describe("p1")["detector"]["state"]
    assert described["stateName"] == "Normal"
    assert described["variables"] == [{"name": "n", "value": "1"}]  # onEnter 0, onInput +1
    assert store.get("detectors/m", "p1")["state"] == "Normal"


def test_a_sound_instance_is_restored_as_stored(tmp_path: Path) -> None:
    store = _store_with(tmp_path, GOOD)
    engine = _engine(store)
    engine.put_message("In", {"id": "p1", "v": 2})
    assert engine.describe("p1")["detector"]["state"]["variables"] == [{"name": "n", "value": "4"}]
    assert store.get("quarantine/detectors/m", "p1") is None


def test_a_row_that_is_not_json_is_named_and_does_not_stop_the_other_instances(
    tmp_path: Path,
) -> None:
    store = _store_with(tmp_path, GOOD)
    store.put("detectors/m", "p2", GOOD)
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute(
            "UPDATE state SET value = '{\"state\": ' WHERE ns = 'detectors/m' AND key = 'p1'"
        )
    engine = _engine(store)  # preload: p2 is restored, p1 left in the file and named
    assert engine.key_values() == ["p2"]
    with pytest.raises(StorageError, match=r"state\.db: detectors/m/p1: not a plantwatch state"):
        engine.put_message("In", {"id": "p1", "v": 2})


@pytest.mark.parametrize(("case", "doc", "expected"), CORRUPT[:5], ids=[c[0] for c in CORRUPT[:5]])
def test_the_detectors_cli_names_a_corrupt_instance_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, doc: Any, expected: str
) -> None:
    store = _store_with(tmp_path, doc)
    store.close()
    capsys.readouterr()
    for command in (["list"], ["describe", "p1"]):
        assert main(["detectors", *command, "--data", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert WHERE in err and expected in err, err


@pytest.mark.parametrize(
    ("case", "doc", "expected"), PAST_ANY_DATE, ids=[c[0] for c in PAST_ANY_DATE]
)
def test_the_detectors_cli_names_a_time_past_any_date_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, doc: Any, expected: str
) -> None:
    test_the_detectors_cli_names_a_corrupt_instance_in_one_line(
        tmp_path, capsys, case, doc, expected
    )


def test_the_quarantine_keeps_a_document_of_any_json_type(tmp_path: Path) -> None:
    store = _store_with(tmp_path, GOOD)
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute(
            "UPDATE state SET value = ? WHERE ns = 'detectors/m' AND key = 'p1'",
            (json.dumps({"state": ["Normal"]}),),
        )
    engine = _engine(store)
    engine.put_message("In", {"id": "p1", "v": 20})
    assert store.get("quarantine/detectors/m", "p1")["document"] == {"state": ["Normal"]}
    assert engine.describe("p1")["detector"]["state"]["stateName"] == "Alarm"


ALARMS = Path(__file__).with_name("data") / "alarms"
ALARM_CORRUPT: list[tuple[str, Any, str]] = [
    ("a state number", {"state": 5}, "state: expected one of DISABLED, NORMAL, ACTIVE"),
    ("a state AWS lacks", {"state": "ON_FIRE"}, "state: expected one of"),
    ("since text", {"state": "ACTIVE", "since": "now"}, "since: expected epoch seconds"),
    ("seq negative", {"state": "ACTIVE", "seq": -2}, "seq: expected a count"),
    ("inputs a list", {"state": "ACTIVE", "inputs": [1]}, "inputs: expected an object or null"),
    ("pending not a list", {"state": "ACTIVE", "pending": {"a": 1}}, "pending: expected a list"),
    (
        "a notice without id",
        {"state": "ACTIVE", "pending": [{"kind": "x"}]},
        "pending[0]: expected",
    ),
    (
        "snooze_until text",
        {"state": "SNOOZE_DISABLED", "snooze_until": "later"},
        "snooze_until: expected epoch seconds or null",
    ),
]


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "on-first-message"])
@pytest.mark.parametrize(
    ("case", "doc", "expected"), ALARM_CORRUPT, ids=[c[0] for c in ALARM_CORRUPT]
)
def test_a_corrupt_alarm_instance_is_set_aside_and_the_alarm_starts_again(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: str,
    doc: Any,
    expected: str,
    preload: bool,
) -> None:
    from cloud.detectors.alarms import AlarmEngine, load_alarm_model

    model = load_alarm_model(ALARMS / "boiler_high.json")
    inputs = [load_input(ALARMS / "boiler_input.json")]
    store = SqliteStateStore(tmp_path / "state.db")

    def engine() -> AlarmEngine:
        return AlarmEngine(
            model, inputs, store, ManualClock(1_000.0), RecordingSink(), preload=preload
        )

    engine().put_message(inputs[0].name, {"boilerId": "b7", "temp": 70})
    namespace = f"alarms/{model.name}"
    assert store.get(namespace, "b7") is not None
    store.put(namespace, "b7", doc)
    where = f"alarm {model.name!r} instance 'b7' (state store {namespace}/b7)"
    with caplog.at_level(logging.ERROR, logger="cloud.detectors.instances"):
        again = engine()
        again.put_message(inputs[0].name, {"boilerId": "b7", "temp": 95})
    quarantined = store.get(f"quarantine/alarms/{model.name}", "b7")
    assert quarantined is not None and quarantined["document"] == doc
    assert quarantined["reason"].startswith(f"{where}: ") and expected in quarantined["reason"]
    assert any(where in r.getMessage() for r in caplog.records)
    assert again.state_of("b7") == "ACTIVE"  # a fresh NORMAL alarm, breached by 95
    assert store.get(namespace, "b7")["state"] == "ACTIVE"


def test_the_alarms_cli_names_a_corrupt_alarm_instance_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloud.detectors.alarms import AlarmEngine, load_alarm_model

    model = load_alarm_model(ALARMS / "boiler_high.json")
    inputs = [load_input(ALARMS / "boiler_input.json")]
    store = SqliteStateStore(tmp_path / "state.db")
    engine = AlarmEngine(model, inputs, store, ManualClock(1_000.0), RecordingSink())
    engine.put_message(inputs[0].name, {"boilerId": "b7", "temp": 85})
    engine.close()
    store.put(f"alarms/{model.name}", "b7", {"state": 5})
    store.close()
    capsys.readouterr()
    assert main(["alarms", "list", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"alarm {model.name!r} instance 'b7' (state store alarms/{model.name}/b7)" in err
    assert "state: expected one of DISABLED" in err
