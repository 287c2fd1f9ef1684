"""One-state detector models for engine tests: the shape CreateDetectorModel takes, with only
the events a test is about, so each test file shows its events and not the scaffolding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

DETECTOR_DATA = Path(__file__).parent / "unit" / "detectors" / "data"
"""The detector tests' model and input files (``motor_heartbeat.json``, ``pressure_input.json``)."""
ROLE_ARN = "arn:aws:iam::123456789012:role/r"


def event(
    *actions: dict[str, Any], condition: str | None = 'currentInput("In")', name: str = "e"
) -> dict[str, Any]:
    """One event; ``condition=None`` leaves the condition out (the event always fires)."""
    body: dict[str, Any] = {"eventName": name, "actions": list(actions)}
    if condition is not None:
        body["condition"] = condition
    return body


def one_state_model(
    *events: dict[str, Any], name: str = "m", key: str | None = "id"
) -> dict[str, Any]:
    """A model of one state whose onInput holds *events*; ``key=None``: one instance."""
    body: dict[str, Any] = {
        "detectorModelName": name,
        "roleArn": ROLE_ARN,
        "detectorModelDefinition": {
            "initialStateName": "A",
            "states": [{"stateName": "A", "onInput": {"events": list(events)}}],
        },
    }
    if key is not None:
        body["key"] = key
    return body


class RecordingSink:
    """An action sink that keeps every request the engine hands over, in order, with no
    de-duplication (a repeat would show)."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def execute(self, request: Any) -> None:
        self.requests.append(request)


class EventSink:
    """An action sink that raises *error* while it is set, and otherwise keeps each
    request's event name in ``done``, in order: what was delivered, and how often."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.done: list[str] = []

    def execute(self, request: Any) -> None:
        if self.error is not None:
            raise self.error
        self.done.append(request.event_name)


def heartbeat_engine() -> Any:
    """The spec's ``motorHeartbeat`` model (key ``motorid``) reading ``PressureInput``, in
    memory, on a manual clock, its requests kept in a :class:`RecordingSink`: the engine the
    data-plane request tests send BatchPutMessage and BatchUpdateDetector requests to."""
    from cloud.adapters.local import InMemoryStateStore
    from cloud.detectors import DetectorEngine, load_detector_model, load_input
    from edge.clock import ManualClock

    return DetectorEngine(
        load_detector_model(DETECTOR_DATA / "motor_heartbeat.json"),
        [load_input(DETECTOR_DATA / "pressure_input.json")],
        InMemoryStateStore(),
        ManualClock(),
        RecordingSink(),
    )


ALERTS_ARN = "arn:aws:sns:us-east-1:123456789012:alerts"


def action_request(**fields: Any) -> Any:
    """An action request as the engine hands it to its sink: an ``sns`` alert of model
    ``m`` for pump-01, with *fields* changed."""
    from cloud.detectors.engine import ActionRequest

    base: dict[str, Any] = {
        "kind": "sns",
        "target": {"targetArn": ALERTS_ARN},
        "payload": {},
        "payload_type": "DEFAULT",
        "detector_model": "m",
        "key_value": "pump-01",
        "event_name": "alarm raised",
        "state_name": "Alarm",
        "state_entry": 2,
        "event_time_ms": 1_767_225_600_000,
    }
    return ActionRequest(**(base | fields))


def alert_request(key_value: str = "pump-01", *, event_time_ms: int = 1_767_225_600_000) -> Any:
    """An ``sns`` action request as the detector engine hands it to its sink."""
    from cloud.detectors.engine import ActionRequest

    return ActionRequest(
        kind="sns",
        target={"targetArn": "arn:aws:sns:us-east-1:123456789012:alerts"},
        payload={"eventTime": 1, "eventName": "alarm", "payload": {"detector": {}}},
        payload_type="DEFAULT",
        detector_model="equipment_anomaly",
        key_value=key_value,
        event_name="alarm",
        state_name="Alarm",
        state_entry=1,
        event_time_ms=event_time_ms,
    )


def boiler_alarm_files(folder: Path, input_name: str) -> Path:
    """Write an input named *input_name* (``input.json``) and the alarm model ``boilerHot``
    watching its ``temp`` above 90 (``alarm.json``) into *folder*, made if need be."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "input.json").write_text(
        json.dumps(
            {
                "inputName": input_name,
                "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "temp"}]},
            }
        )
    )
    (folder / "alarm.json").write_text(
        json.dumps(
            {
                "alarmModelName": "boilerHot",
                "roleArn": "arn:aws:iam::1:role/r",
                "key": "id",
                "alarmRule": {
                    "simpleRule": {
                        "inputProperty": f"$input.{input_name}.temp",
                        "comparisonOperator": "GREATER",
                        "threshold": "90",
                    }
                },
            }
        )
    )
    return folder


PUMP_INPUT_YAML = """\
  PumpInput:
    Type: AWS::IoTEvents::Input
    Properties:
      InputName: PumpInput
      InputDefinition:
        Attributes:
          - JsonPath: pumpId
          - JsonPath: rpm
"""
"""The ``PumpInput`` resource (``pumpId``, ``rpm``) of the YAML templates the import tests
read, indented to stand under ``Resources:``."""


RELAY_INPUT = "Relay"


def relay_chain_files(folder: Path, source: str = "AnomalyResults") -> Path:
    """Write two detector models into *folder*, made if need be: ``spotter`` reads *source*
    (by default the scoring results, the shipped input; another name gets an input file of
    its own) and sends each message's asset to the input ``Relay`` with an ``iotEvents``
    action; ``relayed`` reads ``Relay`` (key ``asset``). ``relayed`` hears of a message
    only through ``spotter``'s action."""
    from cloud.feeder import INPUT_NAME, default_detector_paths

    folder.mkdir(parents=True, exist_ok=True)
    _model, results_input = default_detector_paths()
    (folder / results_input.name).write_text(results_input.read_text())
    for name, file in ((RELAY_INPUT, "relay_input.json"), (source, "source_input.json")):
        if name != INPUT_NAME:
            body = {"inputName": name, "inputDefinition": {"attributes": [{"jsonPath": "asset"}]}}
            (folder / file).write_text(json.dumps(body))
    payload = {
        "contentExpression": f'\'{{"asset": "${{$input.{source}.asset}}"}}\'',
        "type": "JSON",
    }
    spotter = one_state_model(
        event(
            {"iotEvents": {"inputName": RELAY_INPUT, "payload": payload}},
            condition=f'currentInput("{source}")',
            name="relay",
        ),
        name="spotter",
        key="asset",
    )
    relayed = one_state_model(
        event(
            {"setVariable": {"variableName": "seen", "value": "1"}},
            condition=f'currentInput("{RELAY_INPUT}")',
            name="seen",
        ),
        name="relayed",
        key="asset",
    )
    (folder / "spotter.json").write_text(json.dumps(spotter))
    (folder / "relayed.json").write_text(json.dumps(relayed))
    return folder


def cdk_detector_model(name: str, key: str, role: Any, condition: Any) -> dict[str, Any]:
    """An ``AWS::IoTEvents::DetectorModel`` resource as ``cdk synth`` writes it: states
    ``cool`` and ``hot``, ``cool`` moving to ``hot`` when *condition* (a template value,
    functions and all) holds."""
    return {
        "Type": "AWS::IoTEvents::DetectorModel",
        "Properties": {
            "DetectorModelName": name,
            "Key": key,
            "RoleArn": role,
            "DetectorModelDefinition": {
                "InitialStateName": "cool",
                "States": [
                    {
                        "StateName": "cool",
                        "OnInput": {
                            "TransitionEvents": [
                                {"EventName": "heat", "Condition": condition, "NextState": "hot"}
                            ]
                        },
                    },
                    {"StateName": "hot"},
                ],
            },
        },
        "Metadata": {"aws:cdk:path": f"{name}/Watch/Resource"},
    }


def replay_registered(
    data: Path, name: str, message: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """``plantwatch detectors run`` of the model an import registered under *data* as *name*,
    on one message: the run's JSON document. Replaying is how the import tests show that
    what was registered behaves as the template meant, not only that it was stored."""
    from cloud.cli.main import main
    from cloud.migrate.iotevents import registered

    found = registered(data / "detectors", name)
    assert found is not None, f"{name} is not registered"
    model, inputs, _ = found
    messages = data.parent / f"{name}-messages.jsonl"
    messages.write_text(json.dumps(message) + "\n")
    command = ["detectors", "run", str(model), "--input", str(inputs[0]), "--json"]
    code = main([*command, "--messages", str(messages)])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)
