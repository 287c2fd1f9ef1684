"""``plantwatch detectors run``: offline replay of the project's own models, timers, bad input."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from detector_models import ROLE_ARN

from cloud.cli.main import main
from cloud.detectors import default_detector_paths

DATA = Path(__file__).with_name("data")
HEARTBEAT = DATA / "motor_heartbeat.json"
PRESSURE = DATA / "pressure_input.json"
MODEL, RESULTS_INPUT = default_detector_paths()


def run_jsonl(
    capsys: pytest.CaptureFixture[str],
    model: Path,
    inputs: list[Path],
    lines: list[dict[str, Any]] | list[str],
    tmp_path: Path,
    *extra: str,
) -> list[dict[str, Any]]:
    messages = tmp_path / "messages.jsonl"
    messages.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    args = ["detectors", "run", str(model), "--messages", str(messages), "--jsonl", *extra]
    for path in inputs:
        args += ["--input", str(path)]
    assert main(args) == 0, capsys.readouterr().err
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def model_file(
    tmp_path: Path,
    name: str,
    *states: dict[str, Any],
    key: str = "motorid",
) -> Path:
    """A CreateDetectorModel body named *name* of *states* (the first is the initial one),
    written to ``<name>.json`` in *tmp_path* for ``detectors run`` to read."""
    body = {
        "detectorModelName": name,
        "key": key,
        "roleArn": ROLE_ARN,
        "detectorModelDefinition": {
            "initialStateName": states[0]["stateName"],
            "states": list(states),
        },
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(body))
    return path


def state(
    name: str,
    events: list[dict[str, Any]] | None = None,
    transitions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One state; its onInput holds *events* and *transitions*, when given."""
    on_input: dict[str, Any] = {}
    if events is not None:
        on_input["events"] = events
    if transitions is not None:
        on_input["transitionEvents"] = transitions
    return {"stateName": name, "onInput": on_input} if on_input else {"stateName": name}


def without_time(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "time"} for e in events]


def result_row(asset: str, prediction: int, score: float) -> dict[str, Any]:
    return {
        "inputName": "AnomalyResults",
        "payload": {
            "thing": asset,
            "site": "s1",
            "asset": asset,
            "timestamp": "2026-01-01T00:00:00.000000",
            "prediction": prediction,
            "prediction_reason": "ANOMALY_DETECTED" if prediction else "NO_ANOMALY_DETECTED",
            "anomaly_score": score,
            "top_sensor": "pump-01\\bearing_temp_c",
            "top_share": 0.5,
            "top_sensors": "pump-01\\bearing_temp_c=0.5",
            "stale_after_s": 600,
        },
    }


def test_default_model_alarm_lines_are_exact(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Three anomalous results: the third confirms the alarm, which alerts and commands safe mode."""
    lines = [result_row("pump-01", 1, 0.8) for _ in range(3)]
    events = run_jsonl(capsys, MODEL, [RESULTS_INPUT], lines, tmp_path)
    transitions = [e for e in events if e["type"] == "transition"]
    assert without_time(transitions) == [
        {
            "type": "transition",
            "t": 0.0,
            "key": "pump-01",
            "from": "Normal",
            "to": "Alarm",
            "event": "anomaly confirmed",
        }
    ]
    services = [e for e in events if e["type"] == "action" and e["action"] != "setVariable"]
    assert [(e["action"], e["event"], e["state"], e["target"]) for e in services] == [
        (
            "sns",
            "alarm raised",
            "Alarm",
            {"targetArn": "arn:aws:sns:us-east-1:123456789012:plantwatch-alerts"},
        ),
        (
            "iotTopicPublish",
            "alarm raised",
            "Alarm",
            {"mqttTopic": "$aws/things/pump-01/shadow/update"},
        ),
    ]
    assert services[1]["payload"] == {"state": {"desired": {"mode": "safe"}}}
    assert services[1]["payloadType"] == "JSON"
    sns_payload = services[0]["payload"]["payload"]
    assert sns_payload["state"]["variables"]["last_score"] == 0.8
    assert sns_payload["eventTriggerDetails"] == {
        "inputName": "AnomalyResults",
        "messageId": "line-3",
        "triggerType": "Message",
    }
    counts = [
        e["value"]
        for e in events
        if e["type"] == "action" and e.get("target") == {"variableName": "abnormal_count"}
    ]
    assert counts == [0, 1, 2, 3]  # BATCH: the third message's transition sees 2
    final = events[-1]
    assert final["type"] == "detectors"
    state = final["detectors"][0]["detector"]["state"]
    assert state["stateName"] == "Alarm"
    assert state["timers"] == [{"name": "heartbeat", "timestamp": 1767225600.0 + 600}]


def test_timer_fires_at_its_expiry_on_the_manual_clock(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    message = {
        "inputName": "PressureInput",
        "messageId": "m1",
        "payload": {"motorid": "M1", "sensorData": {"pressure": 42}},
    }
    events = run_jsonl(capsys, HEARTBEAT, [PRESSURE], [message], tmp_path, "--advance", "PT10M")
    assert without_time(events[:-1]) == [
        {"type": "input", "t": 0.0, "key": "M1", "input": "PressureInput", "messageId": "m1"},
        {"type": "created", "t": 0.0, "key": "M1", "state": "Online"},
        {
            "type": "timer",
            "t": 0.0,
            "key": "M1",
            "op": "set",
            "name": "hb",
            "seconds": 300,
            "expires": "2026-01-01T00:05:00Z",
        },
        {
            "type": "timer",
            "t": 0.0,
            "key": "M1",
            "op": "reset",
            "name": "hb",
            "seconds": 300,
            "expires": "2026-01-01T00:05:00Z",
        },
        {
            "type": "action",
            "t": 0.0,
            "key": "M1",
            "event": "beat",
            "state": "Online",
            "action": "setVariable",
            "target": {"variableName": "last"},
            "value": 42,
        },
        {
            "type": "timer",
            "t": 300.0,
            "key": "M1",
            "op": "fired",
            "name": "hb",
            "expires": "2026-01-01T00:05:00Z",
        },
        {
            "type": "action",
            "t": 300.0,
            "key": "M1",
            "event": "lost",
            "state": "Online",
            "action": "sns",
            "target": {"targetArn": "arn:aws:sns:us-east-1:123456789012:alerts"},
            "payload": {
                "eventTime": 1767225900000,
                "eventName": "lost",
                "payload": {
                    "actionExecutionId": events[6]["payload"]["payload"]["actionExecutionId"],
                    "detector": {
                        "detectorModelName": "motorHeartbeat",
                        "keyValue": "M1",
                        "detectorModelVersion": "1",
                    },
                    "eventTriggerDetails": {"triggerType": "Timer", "timerName": "hb"},
                    "state": {"stateName": "Online", "variables": {"last": 42}, "timers": {}},
                },
            },
            "payloadType": "DEFAULT",
        },
        {
            "type": "transition",
            "t": 300.0,
            "key": "M1",
            "from": "Online",
            "to": "Offline",
            "event": "lost",
        },
    ]
    assert events[5]["time"] == "2026-01-01T00:05:00Z"
    assert events[-1]["detectors"][0]["detector"]["lastUpdateTime"] == 1767225900.0


def test_advance_line_between_messages_and_no_early_fire(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    beat = {
        "inputName": "PressureInput",
        "payload": {"motorid": "M1", "sensorData": {"pressure": 1}},
    }
    lines = [beat, {"advance": "PT4M59S"}, beat, {"advance": "PT5M"}, beat]
    events = run_jsonl(capsys, HEARTBEAT, [PRESSURE], lines, tmp_path)
    fired = [e["t"] for e in events if e["type"] == "timer" and e["op"] == "fired"]
    assert fired == [299.0 + 300.0]  # the second beat reset the timer a second before expiry
    transitions = [(e["t"], e["from"], e["to"]) for e in events if e["type"] == "transition"]
    assert transitions == [(599.0, "Online", "Offline"), (599.0, "Offline", "Online")]


def test_actions_are_recorded_not_performed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = [result_row("pump-01", 1, 0.8) for _ in range(3)]
    run_jsonl(capsys, MODEL, [RESULTS_INPUT], lines, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["messages.jsonl"]


def test_json_document_and_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    messages = tmp_path / "m.jsonl"
    messages.write_text(json.dumps(result_row("pump-01", 0, 0.1)) + "\n")
    base = ["detectors", "run", str(MODEL), "--input", str(RESULTS_INPUT)]
    assert main([*base, "--messages", str(messages), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["detectorModelName"] == "equipment_anomaly"
    assert doc["evaluationMethod"] == "BATCH"
    assert [e["type"] for e in doc["events"]][:2] == ["input", "created"]
    assert doc["detectors"][0]["detector"]["state"]["stateName"] == "Normal"
    assert main([*base, "--messages", str(messages)]) == 0
    out = capsys.readouterr().out
    assert "equipment_anomaly (BATCH) from 2026-01-01T00:00:00Z" in out
    assert "pump-01  Normal" in out


def test_messages_from_stdin_with_timestamps_and_base64(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    body = base64.b64encode(b'{"motorid": "M7", "sensorData": {"pressure": 5}}').decode()
    text = (
        json.dumps(
            {"inputName": "PressureInput", "payload": body, "timestamp": {"timeInMillis": 1_000}}
        )
        + "\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    args = ["detectors", "run", str(HEARTBEAT), "--input", str(PRESSURE), "--messages", "-"]
    assert main([*args, "--jsonl"]) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert events[0]["time"] == "1970-01-01T00:00:01Z" and events[0]["key"] == "M7"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "{not json",
            "m.jsonl:2: not valid JSON: Expecting property name enclosed in double quotes",
        ),
        (
            '{"inputName": "no such input", "payload": {}}',
            "m.jsonl:2: inputName 'no such input': not an input name"
            " (1-128 of ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$, as BatchPutMessage takes it)",
        ),
        (
            '{"inputName": "' + "a" * 129 + '", "payload": {}}',
            "m.jsonl:2: inputName 'aaaa",
        ),
        ('{"inputName": 7, "payload": {}}', "m.jsonl:2: inputName: expected a string"),
        (
            '{"inputName": "TemperatureIn", "payload": [1]}',
            "m.jsonl:2: payload: expected a JSON object",
        ),
        ('{"inputName": "PressureInput"}', "m.jsonl:2: missing required field 'payload'"),
        ('{"inputName": "PressureInput", "payload": [1]}', "m.jsonl:2: payload: expected a JSON"),
        ('{"advance": "soon"}', "m.jsonl:2: advance: expected a duration like PT5M"),
        (
            '{"inputName": "PressureInput", "payload": {}, "timestamp": {"timeInMillis": 5}}',
            "m.jsonl:2: timestamp 1970-01-01T00:00:00.005Z is before the replay clock",
        ),
        ('{"advance": "PT99999999999H"}', "m.jsonl:2: advance: moves the clock past 9000-01-01"),
        (
            '{"inputName": "PressureInput", "payload": {"motorid": "M1", "p": NaN}}',
            "m.jsonl:2: not usable JSON: NaN is not JSON",
        ),
        (
            '{"inputName": "PressureInput", "payload": {}, "timestamp": {"timeInMillis": '
            + "9" * 20
            + "}}",
            "m.jsonl:2: timestamp is after 9000-01-01T00:00:00Z",
        ),
        (
            '{"inputName": "PressureInput", "payload": {}, "timestamp": "9999-12-31T00:00:00Z"}',
            "m.jsonl:2: timestamp is after 9000-01-01T00:00:00Z",
        ),
        (
            '{"inputName": "PressureInput", "payload": {"motorid": ' + "9" * 5000 + "}}",
            "m.jsonl:2: not usable JSON: a number with too many digits",
        ),
        (
            '{"inputName": "PressureInput", "payload": ' + "[" * 50_000 + "]" * 50_000 + "}",
            "m.jsonl:2: not usable JSON: nested too deeply",
        ),
        (  # a lone surrogate: valid JSON, but no text a detector's state can hold
            '{"inputName": "PressureInput", "payload": {"motorid": "M1",'
            ' "sensorData": {"pressure": "\\ud800"}}}',
            "m.jsonl:2: payload: $.sensorData.pressure: position 0 holds '\\ud800', not a"
            " Unicode character",
        ),
        (
            '{"inputName": "PressureInput", "payload": "'
            + base64.b64encode(b'{"motorid": "M1", "x\\udcff": 1}').decode()
            + '"}',
            "m.jsonl:2: payload: $: the name 'x\\udcff'",
        ),
        (
            '{"messages": [{"messageId": "a", "inputName": "PressureInput", "payload": {}},'
            ' {"messageId": "a", "inputName": "PressureInput", "payload": {}}]}',
            "m.jsonl:2: messages[1]: messageId 'a' is repeated within the request",
        ),
        ('{"messages": []}', "m.jsonl:2: messages: expected a list of at least one message"),
        (
            '{"messages": [{"inputName": "PressureInput", "payload": {}}], "x": 1}',
            "m.jsonl:2: a BatchPutMessage request holds only 'messages' (found 'x')",
        ),
        (
            '{"messages": [{"inputName": "PressureInput", "payload": "{not json"}]}',
            "m.jsonl:2: messages[0]: payload: expected a JSON object, its JSON text",
        ),
    ],
)
def test_bad_lines_exit_2_with_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, line: str, expected: str
) -> None:
    other = tmp_path / "temperature.json"
    other.write_text(
        json.dumps(
            {"inputName": "TemperatureIn", "inputDefinition": {"attributes": [{"jsonPath": "t"}]}}
        )
    )
    messages = tmp_path / "m.jsonl"
    first = {"inputName": "PressureInput", "payload": {"motorid": "M1"}}
    messages.write_text(json.dumps(first) + "\n" + line + "\n")
    code = main(
        [
            "detectors",
            "run",
            str(HEARTBEAT),
            "--input",
            str(PRESSURE),
            "--input",
            str(other),
            "--messages",
            str(messages),
        ]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"plantwatch: error: {expected}"), err


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--start", "9999-12-31T23:59:59Z"], "--start: after 9000-01-01T00:00:00Z"),
        (["--advance", "PT99999999999H"], "--advance: moves the clock past 9000-01-01T00:00:00Z"),
    ],
)
def test_a_clock_past_the_printable_years_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, options: list[str], expected: str
) -> None:
    messages = tmp_path / "m.jsonl"
    messages.write_text(json.dumps({"inputName": "PressureInput", "payload": {"motorid": "M1"}}))
    args = ["detectors", "run", str(HEARTBEAT), "--input", str(PRESSURE), "--messages"]
    assert main([*args, str(messages), *options]) == 2
    assert capsys.readouterr().err == f"plantwatch: error: {expected}\n"


def test_evaluation_error_is_reported_with_its_expression(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    parse = {
        "eventName": "parse",
        "condition": 'currentInput("PressureInput")',
        "actions": [
            {
                "setVariable": {
                    "variableName": "p",
                    "value": "convert(Decimal, $input.PressureInput.motorid)",
                }
            }
        ],
    }
    path = model_file(tmp_path, "conv", state("S", [parse]))
    line = {"inputName": "PressureInput", "payload": {"motorid": "abc"}}
    events = run_jsonl(capsys, path, [PRESSURE], [line], tmp_path)
    errors = [e for e in events if e["type"] == "error"]
    assert without_time(errors) == [
        {
            "type": "error",
            "t": 0.0,
            "key": "abc",
            "event": "parse",
            "state": "S",
            "path": "$.detectorModelDefinition.states[0].onInput.events[0].actions[0]"
            ".setVariable.value",
            "expression": "convert(Decimal, $input.PressureInput.motorid)",
            "message": "convert('Decimal', 'abc') failed; variable 'p' unchanged",
        }
    ]


def test_message_without_the_key_is_shown_as_skipped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    line = {"inputName": "PressureInput", "payload": {"sensorData": {"pressure": 1}}}
    events = run_jsonl(capsys, HEARTBEAT, [PRESSURE], [line], tmp_path)
    assert without_time(events[:1]) == [
        {
            "type": "skipped",
            "t": 0.0,
            "key": None,
            "input": "PressureInput",
            "messageId": "line-1",
            "reason": "no valid key 'motorid' in the payload",
        }
    ]
    assert events[1] == {"type": "detectors", "detectors": []}


def test_a_message_id_sent_again_within_five_minutes_is_shown_as_skipped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """As BatchPutMessage: AWS "ignores a message if it has the same messageID as another
    message that was sent within the last five minutes"."""

    def line(minute: int, pressure: int) -> dict[str, Any]:
        return {
            "inputName": "PressureInput",
            "messageId": "m1",
            "timestamp": {"timeInMillis": 1_767_225_600_000 + minute * 60_000},
            "payload": {"motorid": "M1", "sensorData": {"pressure": pressure}},
        }

    events = run_jsonl(
        capsys, HEARTBEAT, [PRESSURE], [line(0, 1), line(4, 2), line(10, 3)], tmp_path
    )
    seen = [
        (e["type"], e["t"], e.get("messageId"), e.get("reason"))
        for e in events
        if e["type"] in ("input", "skipped")
    ]
    assert seen == [
        ("input", 0.0, "m1", None),
        ("skipped", 240.0, "m1", "messageId 'm1' was sent within the last five minutes"),
        ("input", 600.0, "m1", None),  # five minutes after the repeat, which was sent too
    ]


def test_timer_ops_and_iot_events_re_entry_are_traced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """resetTimer before any setTimer is an error line; clearTimer says whether it ran; an
    iotEvents action to an input the model reads comes back as a message."""
    first = {
        "eventName": "first",
        "condition": "$input.PressureInput.sensorData.pressure == 1",
        "actions": [
            {"resetTimer": {"timerName": "t"}},
            {"clearTimer": {"timerName": "t"}},
            {
                "iotEvents": {
                    "inputName": "PressureInput",
                    "payload": {
                        "contentExpression": '\'{"motorid": "${$input.PressureInput.motorid}", "sensorData": {"pressure": 2}}\'',
                        "type": "JSON",
                    },
                }
            },
        ],
    }
    echoed = {
        "eventName": "echoed",
        "condition": "$input.PressureInput.sensorData.pressure == 2",
        "actions": [{"setTimer": {"timerName": "t", "seconds": 60}}],
        "nextState": "B",
    }
    path = model_file(tmp_path, "ops", state("A", [first], [echoed]), state("B"))
    line = {
        "inputName": "PressureInput",
        "payload": {"motorid": "M1", "sensorData": {"pressure": 1}},
    }
    events = run_jsonl(capsys, path, [PRESSURE], [line], tmp_path)
    kinds = [
        (e["type"], e.get("op") or e.get("action") or e.get("message") or e.get("to"))
        for e in events[:-1]
    ]
    assert kinds == [
        ("input", None),
        ("created", None),
        ("error", "resetTimer 't': timer never set"),
        ("timer", "cleared"),
        ("action", "iotEvents"),
        ("input", None),
        ("timer", "set"),
        ("transition", "B"),
    ]
    assert events[3]["running"] is False
    assert events[5]["messageId"] != "line-1"


def test_a_lenient_timer_too_long_to_show_is_an_error_line_not_a_crash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A duration read from data in a lenient model: refused with its reason, as a 0 s one
    is, rather than set to expire past any printable date (an internal error before)."""
    arm = {
        "setTimer": {
            "timerName": "t",
            "durationExpression": "$input.PressureInput.sensorData.pressure",
        }
    }
    events = [{"eventName": "arm", "condition": 'currentInput("PressureInput")', "actions": [arm]}]
    late = {"eventName": "late", "condition": 'timeout("t")', "nextState": "S"}
    path = model_file(tmp_path, "long", state("S", events, [late]))
    line = {
        "inputName": "PressureInput",
        "payload": {"motorid": "M1", "sensorData": {"pressure": 10**12}},
    }
    events = run_jsonl(capsys, path, [PRESSURE], [line], tmp_path, "--lenient")
    errors = [e for e in events if e["type"] == "error"]
    assert [e["message"] for e in errors] == [
        "setTimer 't': 1000000000000 s; a timer must be at most 3153600000 s (100 years)"
    ]
    assert not [e for e in events if e["type"] == "timer"]


def test_a_request_line_runs_its_messages_in_array_order_each_with_its_own_id(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A BatchPutMessage request on one line runs its entries in array order (spec §1
    Decision); entries without a messageId get one each, so none is taken for a repeat."""
    entry = {"inputName": "PressureInput", "payload": {"motorid": "M1"}}
    request = {"messages": [entry, {**entry, "payload": {"motorid": "M2"}}, entry]}
    events = run_jsonl(capsys, HEARTBEAT, [PRESSURE], [request], tmp_path)
    assert [(e["key"], e["messageId"]) for e in events if e["type"] == "input"] == [
        ("M1", "line-1-1"),
        ("M2", "line-1-2"),
        ("M1", "line-1-3"),
    ]
    assert not [e for e in events if e["type"] == "skipped"]


def test_an_error_inside_a_request_printed_over_lines_is_named_at_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A request file printed as the guide prints it, with a stray comma on its third line:
    the error names that line, not the opening brace."""
    messages = tmp_path / "request.json"
    messages.write_text(
        '{\n  "messages": [\n'
        '    {"inputName": "PressureInput", "payload": {"motorid": "M1"},}\n  ]\n}\n'
    )
    args = ["detectors", "run", str(HEARTBEAT), "--input", str(PRESSURE)]
    assert main([*args, "--messages", str(messages)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("plantwatch: error: request.json:3: not valid JSON: "), err


def test_messages_for_inputs_the_model_does_not_read_are_skipped_and_counted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """BatchPutMessage ingests a message "into any detectors that monitor that input": a
    recorded file holds messages for many inputs, and a model ignores those it does not read,
    whether or not an ``--input`` defines them. The count is shown once, not per message."""
    other = tmp_path / "temperature.json"
    other.write_text(
        json.dumps(
            {"inputName": "TemperatureIn", "inputDefinition": {"attributes": [{"jsonPath": "t"}]}}
        )
    )
    lines = [
        {"inputName": "TemperatureIn", "payload": {"motorid": "M1", "t": 1}},
        {"inputName": "PressureInput", "payload": {"motorid": "M1", "sensorData": {"pressure": 4}}},
        {"inputName": "Valve_2", "payload": {"motorid": "M1"}},
        {"messages": [{"inputName": "Valve_2", "payload": {"x": 1}}]},
    ]
    messages = tmp_path / "m.jsonl"
    messages.write_text("".join(json.dumps(x) + "\n" for x in lines))
    base = ["detectors", "run", str(HEARTBEAT), "--input", str(PRESSURE), "--input", str(other)]
    base += ["--messages", str(messages)]
    assert main([*base, "--json"]) == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)
    assert [(e["type"], e.get("input")) for e in doc["events"] if "input" in e] == [
        ("input", "PressureInput")
    ]
    assert doc["messagesNotRead"] == 3
    assert doc["inputsNotRead"] == {"TemperatureIn": 1, "Valve_2": 2}
    state = doc["detectors"][0]["detector"]["state"]
    assert state["variables"] == [{"name": "last", "value": "4"}]
    assert main(base) == 0
    out = capsys.readouterr().out
    summary = [x for x in out.splitlines() if "not read" in x]
    assert summary == [
        "3 messages skipped: inputs model 'motorHeartbeat' does not read:"
        " TemperatureIn (1), Valve_2 (2)"
    ]


def test_a_skipped_message_still_moves_the_clock_and_uses_its_message_id(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Time passes while other inputs' messages arrive, and AWS's five-minute messageId rule
    counts the id whatever the input (docs/detectors.md, messageId)."""
    minute = 60_000
    lines = [
        {
            "inputName": "PressureInput",
            "messageId": "a",
            "timestamp": {"timeInMillis": 1_767_225_600_000},
            "payload": {"motorid": "M1", "sensorData": {"pressure": 1}},
        },
        {
            "inputName": "Elsewhere",
            "messageId": "b",
            "timestamp": {"timeInMillis": 1_767_225_600_000 + 6 * minute},
            "payload": {"motorid": "M1"},
        },
        {
            "inputName": "PressureInput",
            "messageId": "b",
            "timestamp": {"timeInMillis": 1_767_225_600_000 + 7 * minute},
            "payload": {"motorid": "M1", "sensorData": {"pressure": 2}},
        },
    ]
    events = run_jsonl(capsys, HEARTBEAT, [PRESSURE], lines, tmp_path)
    seen = [(e["type"], e["t"], e.get("name") or e.get("messageId")) for e in events[:-1]]
    assert ("timer", 300.0, "hb") in seen  # fired before the 6-minute line, not after it
    assert [x for x in seen if x[0] == "skipped"] == [("skipped", 420.0, "b")]
    assert events[-1]["detectors"][0]["detector"]["state"]["stateName"] == "Offline"


TEMPLATES_INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "t"}, {"jsonPath": "n"}]},
}


def test_an_undefined_value_in_a_template_leaves_the_whole_text_undefined(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """AWS documents substitution templates (``${...}`` in single quotes) only with defined
    values; here an undefined one leaves the whole string undefined, as it does any
    expression holding it (spec §3): the action is not taken and its field is named, the
    variable keeps its value. JSON ``null`` prints as ``null``."""
    actions = [
        {
            "sns": {
                "targetArn": "arn:aws:sns:us-east-1:123456789012:x",
                "payload": {"contentExpression": "'temp ${$input.In.t} end'", "type": "STRING"},
            }
        },
        {
            "iotTopicPublish": {
                "mqttTopic": "a/${$input.In.t}",
                "payload": {"contentExpression": "'{\"v\": ${$input.In.n}}'", "type": "JSON"},
            }
        },
        {"setVariable": {"variableName": "v", "value": "'x${$input.In.t}'"}},
    ]
    event = {"eventName": "e", "condition": 'currentInput("In")', "actions": actions}
    model = model_file(tmp_path, "tpl", state("S", [event]), key="id")
    inp = tmp_path / "in.json"
    inp.write_text(json.dumps(TEMPLATES_INPUT))
    lines = [
        {"inputName": "In", "payload": {"id": "a", "t": 5, "n": None}},
        {"inputName": "In", "payload": {"id": "a", "n": 1}},
    ]
    events = run_jsonl(capsys, model, [inp], lines, tmp_path)
    taken = [
        (e["action"], e.get("payload"), e.get("value")) for e in events if e["type"] == "action"
    ]
    assert taken == [
        ("sns", "temp 5 end", None),
        ("iotTopicPublish", {"v": None}, None),
        ("setVariable", None, "x5"),
    ]
    errors = [(e["path"].rsplit(".", 2)[-2:], e["message"]) for e in events if e["type"] == "error"]
    assert errors == [
        (["payload", "contentExpression"], "contentExpression gave no value; action not taken"),
        (["iotTopicPublish", "mqttTopic"], "evaluated to undefined; action not taken"),
        (["setVariable", "value"], "value is undefined; variable 'v' unchanged"),
    ]
    [detector] = events[-1]["detectors"]
    assert detector["detector"]["state"]["variables"] == [{"name": "v", "value": '"x5"'}]
