"""Each comparisonOperator of CreateAlarmModel's simpleRule, below, at and above its threshold,
through an alarm model JSON (API reference SimpleRule: GREATER, GREATER_OR_EQUAL, LESS,
LESS_OR_EQUAL, EQUAL, NOT_EQUAL; breached = inputProperty <operator> threshold)."""

from __future__ import annotations

import pytest

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import load_input
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from edge.clock import ManualClock


class Sink:
    def execute(self, request: object) -> None:
        pass


@pytest.mark.parametrize(
    ("operator", "breached_at"),
    [
        ("GREATER", (False, False, True)),
        ("GREATER_OR_EQUAL", (False, True, True)),
        ("LESS", (True, False, False)),
        ("LESS_OR_EQUAL", (True, True, False)),
        ("EQUAL", (False, True, False)),
        ("NOT_EQUAL", (True, False, True)),
    ],
)
@pytest.mark.parametrize("threshold", ["80", "80.0", "$input.In.limit"])
def test_operator_below_at_and_above_the_threshold(
    operator: str, breached_at: tuple[bool, bool, bool], threshold: str
) -> None:
    model = load_alarm_model(
        {
            "alarmModelName": "op",
            "roleArn": "arn:aws:iam::123456789012:role/r",
            "key": "id",
            "alarmRule": {
                "simpleRule": {
                    "inputProperty": "$input.In.v",
                    "comparisonOperator": operator,
                    "threshold": threshold,
                }
            },
            "alarmCapabilities": {
                "initializationConfiguration": {"disabledOnInitialization": False},
                "acknowledgeFlow": {"enabled": False},
            },
        }
    )
    inputs = [
        load_input(
            {
                "inputName": "In",
                "inputDefinition": {
                    "attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}, {"jsonPath": "limit"}]
                },
            }
        )
    ]
    engine = AlarmEngine(model, inputs, InMemoryStateStore(), ManualClock(), Sink())
    for key, value, breached in zip(
        ("below", "at", "above"), (79.5, 80, 80.5), breached_at, strict=True
    ):
        engine.put_message("In", {"id": key, "v": value, "limit": 80})
        assert engine.state_of(key) == ("ACTIVE" if breached else "NORMAL"), (key, value)
