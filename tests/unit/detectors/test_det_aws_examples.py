"""AWS's published IoT Events examples validate strictly and behave as the developer guide says.

The fixtures in ``data/aws_examples`` are the guide's simple motor example, the HVAC
``areaDetectorModel`` (14 variables), the cranes models and the ISA and simple alarm
blueprints, written out from the guide (see that folder's README).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud.cli.main import main
from cloud.detectors import check_references, load_detector_model, load_input

EXAMPLES = Path(__file__).with_name("data") / "aws_examples"

MODELS = {
    "motor_detector_model": ["motor_pressure_input"],
    "hvac_area_detector_model": ["hvac_seed_input", "hvac_temperature_input"],
    "cranes_crane_detector_model": ["cranes_temperature_input"],
    "cranes_update_crane_detector_model": ["cranes_temperature_input"],
    "cranes_motor_detector_model": ["cranes_pressure_input", "cranes_temperature_input"],
    "cranes_update_motor_detector_model": ["cranes_pressure_input", "cranes_temperature_input"],
    "isa_alarm_detector_model": ["isa_alarm_input"],
    "simple_alarm_detector_model": ["simple_alarm_input"],
}


def _paths(model: str) -> tuple[Path, list[Path]]:
    return EXAMPLES / f"{model}.json", [EXAMPLES / f"{i}.json" for i in MODELS[model]]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_published_example_validates_strictly(name: str) -> None:
    model_path, input_paths = _paths(name)
    model = load_detector_model(model_path, strict=True)
    assert check_references(model, [load_input(p) for p in input_paths]) == []


def test_hvac_sets_14_variables_and_is_accepted() -> None:
    body = json.loads((EXAMPLES / "hvac_area_detector_model.json").read_text())
    names = {
        action["setVariable"]["variableName"]
        for state in body["detectorModelDefinition"]["states"]
        for group in ("onEnter", "onInput", "onExit")
        for kind in ("events", "transitionEvents")
        for event in state.get(group, {}).get(kind, [])
        for action in event.get("actions", [])
        if "setVariable" in action
    }
    assert len(names) == 14
    load_detector_model(body, strict=True)


def replay(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    lines: list[dict[str, Any]],
    *extra: str,
) -> list[dict[str, Any]]:
    model_path, input_paths = _paths(name)
    messages = tmp_path / f"{name}.jsonl"
    messages.write_text("".join(json.dumps(line) + "\n" for line in lines))
    args = ["detectors", "run", str(model_path), "--messages", str(messages), "--jsonl", *extra]
    for path in input_paths:
        args += ["--input", str(path)]
    assert main(args) == 0, capsys.readouterr().err
    return [json.loads(x) for x in capsys.readouterr().out.splitlines()]


def motor_lines() -> list[dict[str, Any]]:
    lines = (EXAMPLES / "motor_messages.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def services(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "action" and e["action"] != "setVariable"]


def test_motor_example_alerts_as_the_guide_shows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """80 psi: Normal -> Dangerous and underPressureAction; three readings of 60: back, cleared."""
    events = replay(capsys, tmp_path, "motor_detector_model", motor_lines())
    sent = services(events)
    assert [e["target"]["targetArn"].rsplit(":", 1)[1] for e in sent] == [
        "underPressureAction",
        "pressureClearedAction",
    ]
    first, cleared = (e["payload"] for e in sent)
    # The guide's two SNS payloads, except eventTime and actionExecutionId.
    assert first["eventName"] == "Pressure Threshold Breached"
    assert first["payload"]["detector"] == {
        "detectorModelName": "motorDetectorModel",
        "keyValue": "Fulton-A32",
        "detectorModelVersion": "1",
    }
    assert first["payload"]["eventTriggerDetails"] == {
        "inputName": "PressureInput",
        "messageId": "00001",
        "triggerType": "Message",
    }
    assert first["payload"]["state"] == {
        "stateName": "Dangerous",
        "variables": {"pressureThresholdBreached": 3},
        "timers": {},
    }
    assert cleared["eventName"] == "Normal Pressure Restored"
    assert cleared["payload"]["eventTriggerDetails"]["messageId"] == "00004"
    assert cleared["payload"]["state"] == {
        "stateName": "Dangerous",
        "variables": {"pressureThresholdBreached": 0},
        "timers": {},
    }
    transitions = [(e["from"], e["to"]) for e in events if e["type"] == "transition"]
    assert transitions == [("Normal", "Dangerous"), ("Dangerous", "Normal")]


def test_serial_and_batch_differ_as_documented(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """BATCH transitions see the counter as the group started; SERIAL sees the decrement."""

    def back_to_normal_on(*extra: str) -> str:
        events = replay(capsys, tmp_path, "motor_detector_model", motor_lines(), *extra)
        inputs = [e for e in events if e["type"] in ("input", "transition")]
        back = next(
            i for i, e in enumerate(inputs) if e["type"] == "transition" and e["to"] == "Normal"
        )
        return next(e["messageId"] for e in reversed(inputs[:back]) if e["type"] == "input")

    assert back_to_normal_on() == "00004"
    assert back_to_normal_on("--evaluation-method", "SERIAL") == "00003"


def test_hvac_seed_and_reading_reproduce_the_guide(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = [json.loads(x) for x in (EXAMPLES / "hvac_messages.jsonl").read_text().splitlines()]
    events = replay(capsys, tmp_path, "hvac_area_detector_model", lines)
    sent = services(events)
    assert [(e["action"], e["event"], next(iter(e["target"].values()))) for e in sent] == [
        ("sns", "resetHeatCool", "arn:aws:sns:us-west-2:123456789012:heatOff"),
        ("sns", "resetHeatCool", "arn:aws:sns:us-west-2:123456789012:coolOff"),
        ("iotTopicPublish", "resetHeatCool", "hvac/Heating/Off"),
        ("iotTopicPublish", "resetHeatCool", "hvac/Cooling/Off"),
    ]
    heat_off = sent[0]["payload"]["payload"]
    assert heat_off["eventTriggerDetails"]["messageId"] == "00001"
    assert heat_off["state"]["stateName"] == "start"
    # The guide's payload lists these (and enteringNewState: true, which no action of the
    # published model sets before the first seed message, so it cannot appear here).
    assert heat_off["state"]["variables"] == {
        "sensorCount": 10,
        "rangeHigh": 30.0,
        "resetMe": False,
        "averageTemperature": 20.0,
        "rangeLow": 15.0,
        "noDelay": False,
        "allowedError": 0.7,
        "desiredTemperature": 20.0,
        "anomalousHigh": 60.0,
        "reportedTemperature": 0.1,
        "anomalousLow": 0.0,
        "sensorId": 0,
    }
    detector = events[-1]["detectors"][0]["detector"]
    assert detector["keyValue"] == "Area51"
    assert detector["state"]["stateName"] == "idle"
    # DescribeDetector as the guide prints it after sensor 01 reported 15.72 (it also shows
    # goodToGo and an idleTimer that the published model never sets on this path).
    assert {v["name"]: v["value"] for v in detector["state"]["variables"]} == {
        "resetMe": "false",
        "rangeLow": "15.0",
        "noDelay": "false",
        "desiredTemperature": "20.0",
        "anomalousLow": "0.0",
        "sensorId": '"01"',
        "sensorCount": "10",
        "rangeHigh": "30.0",
        "averageTemperature": "19.572",
        "allowedError": "0.7",
        "anomalousHigh": "60.0",
        "reportedTemperature": "15.72",
    }


def crane_lines(count: int) -> list[dict[str, Any]]:
    payload = {"craneid": "100009", "temperature": 40, "motorid": "200009"}
    return [
        {"messageId": str(i), "inputName": "TemperatureInput", "payload": payload}
        for i in range(1, count + 1)
    ]


def test_updated_crane_model_stops_duplicate_notifications(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    original = replay(capsys, tmp_path, "cranes_crane_detector_model", crane_lines(8))
    updated = replay(capsys, tmp_path, "cranes_update_crane_detector_model", crane_lines(8))
    assert [
        e["payload"]["payload"]["eventTriggerDetails"]["messageId"] for e in services(original)
    ] == ["7", "8"]
    assert [
        e["payload"]["payload"]["eventTriggerDetails"]["messageId"] for e in services(updated)
    ] == ["7"]
    assert {e["key"] for e in original if "key" in e} == {"100009"}
    assert {e["key"] for e in updated if "key" in e} == {None}  # the update drops the key


def test_crane_motor_model_reads_the_last_message_of_each_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pressure = {
        "inputName": "PressureInput",
        "payload": {"craneid": "100009", "pressure": 80, "motorid": "200009"},
    }
    events = replay(capsys, tmp_path, "cranes_motor_detector_model", [pressure, *crane_lines(7)])
    counts = [
        e["value"] for e in events if e.get("target") == {"variableName": "motorThresholdBreached"}
    ]
    assert counts == [0, 1, 2, 3, 4, 5, 6, 7]
    assert [
        e["payload"]["payload"]["eventTriggerDetails"]["messageId"] for e in services(events)
    ] == ["7"]


def isa(command: str | None = None, value: float = 50.0) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "alarmId": "tank-7",
        "value": value,
        "lower_threshold": 10,
        "higher_threshold": 90,
    }
    if command:
        payload["command"] = command
    return {"inputName": "AWS_IoTEvents_Blueprints_ISA_Alarm_Input", "payload": payload}


def test_isa_alarm_snooze_timer_re_alarms_after_60_s(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = [
        isa(),
        {"advance": "PT1M"},
        isa(value=95),
        {"advance": "PT1M"},
        isa("acknowledge", value=95),
    ]
    events = replay(capsys, tmp_path, "isa_alarm_detector_model", lines, "--advance", "PT5M")
    transitions = [
        (e["t"], e["from"], e["to"], e["event"]) for e in events if e["type"] == "transition"
    ]
    assert transitions == [
        (60.0, "Normal", "Unacknowledged", "abnormal_condition"),
        (120.0, "Unacknowledged", "Acknowledged", "acknowledge"),
        (180.0, "Acknowledged", "Unacknowledged", "re-alarm"),
    ]
    timers = [(e["t"], e["op"], e["name"]) for e in events if e["type"] == "timer"]
    assert timers == [(120.0, "set", "snooze"), (180.0, "fired", "snooze")]
    assert events[-1]["detectors"][0]["detector"]["state"]["stateName"] == "Unacknowledged"


def test_simple_alarm_escalates_an_unacknowledged_alarm(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def msg(**payload: Any) -> dict[str, Any]:
        return {
            "inputName": "AWS_IoTEvents_Blueprints_Simple_Alarm_Input",
            "payload": {"alarmId": "a1", **payload},
        }

    lines = [
        msg(value=1, threshold=10),
        msg(value=12),
        {"advance": "PT6M"},
        msg(command="acknowledge"),
    ]
    events = replay(capsys, tmp_path, "simple_alarm_detector_model", lines, "--advance", "PT3M")
    sent = [(e["t"], e["event"]) for e in services(events)]
    assert sent == [
        (0.0, "Alarm Notification"),
        (300.0, "Escalated Alarm Notification"),
        (360.0 + 120.0, "Alarm Notification"),  # snoozed for 120 s, not fixed: alarms again
    ]


HVAC_RESET_VARIABLES = {
    "desiredTemperature": "22",
    "averageTemperature": "22",
    "allowedError": "1.0",
    "rangeHigh": "30.0",
    "rangeLow": "15.0",
    "anomalousHigh": "60.0",
    "anomalousLow": "0.0",
    "sensorCount": "12",
    "noDelay": "true",
    "goodToGo": "true",
    "sensorId": "0",
    "reportedTemperature": "0.1",
    "resetMe": "true",
}
"""The 13 variables of the guide's areaDM.BUD.json."""


def hvac_reset_request() -> dict[str, Any]:
    """The guide's areaDM.BUD.json: Area51 back in `start`, its variables, no timers."""
    variables = [{"name": n, "value": v} for n, v in HVAC_RESET_VARIABLES.items()]
    state = {"stateName": "start", "variables": variables, "timers": []}
    detector = {"messageId": "0001", "detectorModelName": "areaDetectorModel"}
    return {"detectors": [{**detector, "keyValue": "Area51", "state": state}]}


def test_hvac_batch_update_detector_request_is_applied_as_the_guide_shows() -> None:
    """The guide's areaDM.BUD.json puts Area51 back in `start` with 13 variables and no
    timers; AWS answers with no error entries, and DescribeDetector then shows the values."""
    from detector_models import RecordingSink

    from cloud.adapters.local import InMemoryStateStore
    from cloud.detectors import DetectorEngine, batch_update_detector
    from edge.clock import ManualClock

    model_path, input_paths = _paths("hvac_area_detector_model")
    variables = HVAC_RESET_VARIABLES
    store = InMemoryStateStore()
    engine = DetectorEngine(
        load_detector_model(model_path),
        [load_input(p) for p in input_paths],
        store,
        ManualClock(),
        RecordingSink(),
    )
    request = hvac_reset_request()
    assert batch_update_detector([engine], request) == {"batchUpdateDetectorErrorEntries": []}
    state = engine.describe("Area51")["detector"]["state"]
    assert state["stateName"] == "start" and state["timers"] == []
    assert {v["name"]: v["value"] for v in state["variables"]} == variables
    doc = store.get("detectors/areaDetectorModel", "Area51")
    assert doc is not None
    assert doc["variables"]["sensorCount"] == 12 and doc["variables"]["rangeLow"] == 15.0
    assert doc["variables"]["resetMe"] is True


def guide_request(name: str, message_id: str | None = None) -> dict[str, Any]:
    """One of the guide's ``--cli-input-json`` files: a BatchPutMessage request whose payload
    is the JSON text itself (sent with ``--cli-binary-format raw-in-base64-out``)."""
    request = json.loads((EXAMPLES / f"{name}.json").read_text())
    if message_id is not None:  # "You must change the messageId in the file each time"
        request["messages"][0]["messageId"] = message_id
    return request


def test_the_guides_message_files_replay_as_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The simple example sends highPressureMessage.json, then normalPressureMessage.json
    three times with the messageId changed: as requests, payloads as JSON text, they give
    the same alerts as the guide (and as the same messages written as objects)."""
    lines = [
        guide_request("motor_high_pressure_message"),
        *(guide_request("motor_normal_pressure_message", f"0000{n}") for n in (2, 3, 4)),
    ]
    sent = services(replay(capsys, tmp_path, "motor_detector_model", lines))
    assert [
        (
            e["target"]["targetArn"].rsplit(":", 1)[1],
            e["payload"]["payload"]["eventTriggerDetails"]["messageId"],
        )
        for e in sent
    ] == [("underPressureAction", "00001"), ("pressureClearedAction", "00004")]
    as_objects = services(replay(capsys, tmp_path, "motor_detector_model", motor_lines()))
    assert [e["payload"] for e in sent] == [e["payload"] for e in as_objects]


def test_a_guide_message_file_is_taken_as_the_guide_prints_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """highPressureMessage.json as the guide prints it, over several lines, is the messages
    file itself: the motor goes Dangerous and underPressureAction is sent."""
    model_path, [input_path] = _paths("motor_detector_model")
    args = ["detectors", "run", str(model_path), "--input", str(input_path), "--jsonl"]
    args += ["--messages", str(EXAMPLES / "motor_high_pressure_message.json")]
    assert main(args) == 0, capsys.readouterr().err
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(e["from"], e["to"]) for e in events if e["type"] == "transition"] == [
        ("Normal", "Dangerous")
    ]
    assert [e["target"]["targetArn"] for e in services(events)] == [
        "arn:aws:sns:us-east-1:123456789012:underPressureAction"
    ]


def test_hvac_batch_put_message_examples_run_as_the_guide_sends_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The HVAC example's four request files (seedExample, temperatureExample,
    seedSetDesiredTemp, and the message its topic rule makes of ``{"temp": 24.5}``), sent in
    that order. seedSetDesiredTemp reuses messageId 00001, which AWS ignores within five
    minutes of the first, so it is sent six minutes later. The set point moves to 23.0, and
    sensor 03's 24.5 leaves the average (20.98352) below 23.0 - 0.7: heating goes on."""
    lines = [
        guide_request("hvac_seed_example"),
        guide_request("hvac_temperature_example"),
        {"advance": "PT6M"},
        guide_request("hvac_seed_set_desired_temp"),
        guide_request("hvac_spoof_example"),
    ]
    events = replay(capsys, tmp_path, "hvac_area_detector_model", lines)
    assert [e["messageId"] for e in events if e["type"] == "input"] == [
        "00001",
        "00005",
        "00001",
        "54321",
    ]
    transitions = [
        (e["t"], e["from"], e["to"], e["event"]) for e in events if e["type"] == "transition"
    ]
    assert transitions == [
        (0.0, "start", "idle", "initialize"),
        (360.0, "idle", "heating", "lowTemperatureThreshold"),
    ]
    heat_on = [
        (e["action"], next(iter(e["target"].values())))
        for e in services(events)
        if e["event"] == "lowTemperatureThreshold"
    ]
    assert heat_on == [
        ("sns", "arn:aws:sns:us-west-2:123456789012:heatOn"),
        ("iotTopicPublish", "hvac/Heating/On"),
    ]
    detector = events[-1]["detectors"][0]["detector"]
    variables = {v["name"]: v["value"] for v in detector["state"]["variables"]}
    assert detector["state"]["stateName"] == "heating"
    assert variables["desiredTemperature"] == "23.0"
    assert variables["sensorId"] == '"03"' and variables["reportedTemperature"] == "24.5"
    assert float(variables["averageTemperature"]) == pytest.approx(20.98352)
    assert variables["goodToGo"] == "false" and variables["enteringNewState"] == "false"
    assert [t["name"] for t in detector["state"]["timers"]] == ["heatingTimer"]
    # set on entering heating at +6 min, for the model's 120 s
    assert detector["state"]["timers"][0]["timestamp"] == detector["creationTime"] + 360 + 120


CRANE_FILES = [
    "cranes_high_pressure_message",
    "cranes_high_temperature_message",
    "cranes_low_pressure_message",
    "cranes_low_temperature_message",
]


@pytest.mark.parametrize(
    ("pause", "motor", "crane"),
    [
        # six minutes apart every file is taken: the motor counts the one message that sees
        # both high values (the pressure persists), the crane counts 40 and resets at 20
        ("PT6M", (["1", "2", "1", "2"], [0, 1]), (["2", "2"], [0, 1, 0])),
        # sent at once, the low files reuse messageIds 1 and 2, so AWS ignores them
        ("PT0S", (["1", "2"], [0, 1]), (["2"], [0, 1])),
    ],
)
def test_cranes_message_files_run_as_the_commands_send_them(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    pause: str,
    motor: tuple[list[str], list[int]],
    crane: tuple[list[str], list[int]],
) -> None:
    """The cranes example's "Commands": highPressureMessage, highTemperatureMessage,
    lowPressureMessage and lowTemperatureMessage in that order; the crane model reads only
    TemperatureInput, so it is given the temperature files."""

    def counted(model: str, variable: str, names: list[str]) -> tuple[list[str], list[int]]:
        lines: list[dict[str, Any]] = []
        for name in names:
            lines += [guide_request(name), {"advance": pause}]
        events = replay(capsys, tmp_path, model, lines)
        taken = [e["messageId"] for e in events if e["type"] == "input"]
        values = [e["value"] for e in events if e.get("target") == {"variableName": variable}]
        return taken, values

    temperatures = [name for name in CRANE_FILES if "temperature" in name]
    assert counted("cranes_motor_detector_model", "motorThresholdBreached", CRANE_FILES) == motor
    assert counted("cranes_crane_detector_model", "craneThresholdBreached", temperatures) == crane


def test_hvac_reset_through_batch_update_detector_keeps_the_new_parameters() -> None:
    """The guide's areaDM.BUD.json puts Area51 back in `start` with new parameters and
    resetMe = true "to reset operational parameters ... without having to delete, and
    recreate, or update the detector model"; the next valid temperatureInput then takes the
    `reset` transition to `idle`. BatchUpdateDetector sets the whole detector state, so the
    seed message from before it is not read again: `initialize` does not fire and put the
    old parameters back. sensorCount 12, average 22: (22 * 11 + 23.12) / 12."""
    from detector_models import RecordingSink

    from cloud.adapters.local import InMemoryStateStore
    from cloud.detectors import DetectorEngine, batch_update_detector
    from edge.clock import ManualClock

    model_path, input_paths = _paths("hvac_area_detector_model")
    engine = DetectorEngine(
        load_detector_model(model_path),
        [load_input(p) for p in input_paths],
        InMemoryStateStore(),
        ManualClock(),
        RecordingSink(),
    )

    def send(name: str) -> None:
        [message] = guide_request(name)["messages"]
        engine.put_message(message["inputName"], json.loads(message["payload"]))

    send("hvac_seed_example")
    engine.put_message(
        "temperatureInput",
        {"sensorId": "01", "areaId": "Area51", "sensorData": {"temperature": 15.72}},
    )
    assert batch_update_detector([engine], hvac_reset_request()) == {
        "batchUpdateDetectorErrorEntries": []
    }
    send("hvac_temperature_example")  # sensor 05: 23.12
    state = engine.describe("Area51")["detector"]["state"]
    variables = {v["name"]: v["value"] for v in state["variables"]}
    assert state["stateName"] == "idle"
    assert variables["sensorCount"] == "12" and variables["desiredTemperature"] == "22"
    assert variables["noDelay"] == "true" and variables["allowedError"] == "1.0"
    assert float(variables["averageTemperature"]) == pytest.approx((22 * 11 + 23.12) / 12)


def test_hvac_area_waits_in_start_for_its_seed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The guide's commented model: "If the first message is a 'temperatureInput', we wait
    here until we get a 'seedTemperatureInput' input to ensure our operation parameters are
    set". The reading only runs `start`'s onEnter; the seed takes Area51 to `idle`."""
    lines = [guide_request("hvac_temperature_example"), guide_request("hvac_seed_example")]
    events = replay(capsys, tmp_path, "hvac_area_detector_model", lines)
    steps = [
        e.get("messageId") or e.get("to") or e["event"]
        for e in events
        if e["type"] in ("input", "transition") or e.get("event") == "prepare"
    ]
    assert steps == ["00005", "prepare", "prepare", "prepare", "00001", "idle"]
