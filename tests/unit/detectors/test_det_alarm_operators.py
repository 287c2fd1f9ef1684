"""Each comparisonOperator of CreateAlarmModel's simpleRule, below, at and above its threshold,
through an alarm model JSON (API reference SimpleRule: GREATER, GREATER_OR_EQUAL, LESS,
LESS_OR_EQUAL, EQUAL, NOT_EQUAL; breached = inputProperty <operator> threshold)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import load_input
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from edge.clock import ManualClock
from edge.errors import DetectorModelError


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
@pytest.mark.parametrize("threshold", ["80", "80.0", "'80'", "'80.0'", "$input.In.limit"])
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


def _quoted_threshold_engine(threshold: str) -> AlarmEngine:
    model = load_alarm_model(
        {
            "alarmModelName": "q",
            "roleArn": "arn:aws:iam::123456789012:role/r",
            "key": "id",
            "alarmRule": {
                "simpleRule": {
                    "inputProperty": "$input.In.v",
                    "comparisonOperator": "GREATER",
                    "threshold": threshold,
                }
            },
            "alarmCapabilities": {
                "initializationConfiguration": {"disabledOnInitialization": False}
            },
        }
    )
    inputs = [
        load_input(
            {
                "inputName": "In",
                "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]},
            }
        )
    ]
    return AlarmEngine(model, inputs, InMemoryStateStore(), ManualClock(), Sink())


@given(
    limit=st.integers(-(10**6), 10**6) | st.floats(-1e6, 1e6, allow_nan=False),
    offset=st.sampled_from([-1, 0, 1]),
)
def test_a_quoted_number_threshold_is_that_number(limit: float, offset: int) -> None:
    """The threshold is "a number or ... an input attribute" (SimpleRule), and AWS writes a
    number literal in single quotes ("'123' # Integer, '123.12' # Decimal", expression
    usage): ``'80'`` compares as 80, numerically, and DescribeAlarm shows it as one."""
    text = repr(limit)
    quoted, bare = _quoted_threshold_engine(f"'{text}'"), _quoted_threshold_engine(text)
    reading = limit + offset
    for engine in (quoted, bare):
        engine.put_message("In", {"id": "k", "v": reading})
    assert quoted.state_of("k") == bare.state_of("k")
    assert quoted.state_of("k") == ("ACTIVE" if reading > limit else "NORMAL")
    shown = quoted.describe("k")["alarm"]["alarmState"]["ruleEvaluation"]
    assert shown == bare.describe("k")["alarm"]["alarmState"]["ruleEvaluation"]


def test_a_quoted_text_threshold_stays_text() -> None:
    """Only a number is coerced: ``'OPEN'`` is compared as the string it is."""
    engine = _quoted_threshold_engine("'OPEN'")
    engine.put_message("In", {"id": "k", "v": "OPEN"})
    assert engine.state_of("k") == "NORMAL"  # 'OPEN' > 'OPEN' is false
    engine.put_message("In", {"id": "k", "v": "PARTLY"})
    assert engine.state_of("k") == "ACTIVE"  # strings order as strings


def test_a_threshold_from_another_input_is_that_inputs_latest_message_across_engines() -> None:
    """threshold: "a number or ... an AWS IoT Events input attribute" (SimpleRule), here
    one of another input than inputProperty's: the rule waits for both, and a function
    built later (``preload=False``) compares against the stored latest of each."""
    readings = load_input(
        {
            "inputName": "A",
            "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]},
        }
    )
    limits = load_input(
        {
            "inputName": "B",
            "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "lim"}]},
        }
    )
    model = load_alarm_model(
        {
            "alarmModelName": "m",
            "roleArn": "arn:aws:iam::123456789012:role/r",
            "key": "id",
            "alarmRule": {
                "simpleRule": {
                    "inputProperty": "$input.A.v",
                    "comparisonOperator": "GREATER_OR_EQUAL",
                    "threshold": "$input.B.lim",
                }
            },
            "alarmCapabilities": {
                "initializationConfiguration": {"disabledOnInitialization": False}
            },
        }
    )
    store, clock = InMemoryStateStore(), ManualClock()
    engine = AlarmEngine(model, [readings, limits], store, clock, Sink())
    engine.put_message("A", {"id": "k", "v": 15})
    state = engine.describe("k")["alarm"]["alarmState"]
    assert (state["stateName"], "ruleEvaluation" in state) == ("NORMAL", False)  # no limit yet
    engine.put_message("B", {"id": "k", "lim": 15})
    assert engine.describe("k")["alarm"]["alarmState"] == {
        "stateName": "ACTIVE",
        "ruleEvaluation": {
            "simpleRuleEvaluation": {
                "inputPropertyValue": "15",
                "operator": "GREATER_OR_EQUAL",
                "thresholdValue": "15",
            }
        },
    }
    engine.close()
    function = AlarmEngine(model, [readings, limits], store, clock, Sink(), preload=False)
    function.put_message("A", {"id": "k", "v": 14})
    assert function.state_of("k") == "LATCHED"
    evaluation = function.describe("k")["alarm"]["alarmState"]["ruleEvaluation"]
    assert evaluation["simpleRuleEvaluation"]["thresholdValue"] == "15"


@pytest.mark.parametrize("operator", ["IN", "CONTAINS", "GREATER_THAN", "greater"])
def test_an_operator_aws_does_not_take_is_refused_naming_the_six(operator: str) -> None:
    """ComparisonOperator is an enum of six (API reference SimpleRule); IN and CONTAINS are
    IoT SQL's, not IoT Events', and AWS's API refuses them."""
    with pytest.raises(DetectorModelError) as raised:
        load_alarm_model(
            {
                "alarmModelName": "m",
                "roleArn": "arn:aws:iam::123456789012:role/r",
                "alarmRule": {
                    "simpleRule": {
                        "inputProperty": "$input.In.v",
                        "comparisonOperator": operator,
                        "threshold": "1",
                    }
                },
            }
        )
    message = str(raised.value)
    assert f"$.alarmRule.simpleRule.comparisonOperator: {operator!r}" in message
    assert "GREATER, GREATER_OR_EQUAL, LESS, LESS_OR_EQUAL, EQUAL, NOT_EQUAL" in message


def test_a_substring_alarm_compares_contains_with_true() -> None:
    """What IN/CONTAINS would say is written with the expression language's contains()."""
    model = load_alarm_model(
        {
            "alarmModelName": "m",
            "roleArn": "arn:aws:iam::123456789012:role/r",
            "key": "id",
            "alarmRule": {
                "simpleRule": {
                    "inputProperty": "contains($input.In.text, 'err')",
                    "comparisonOperator": "EQUAL",
                    "threshold": "true",
                }
            },
            "alarmCapabilities": {
                "initializationConfiguration": {"disabledOnInitialization": False},
                "acknowledgeFlow": {"enabled": False},
            },
        }
    )
    raw = {
        "inputName": "In",
        "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "text"}]},
    }
    engine = AlarmEngine(model, [load_input(raw)], InMemoryStateStore(), ManualClock(), Sink())
    states = []
    for text in ("ok", "disk error", "fine"):
        engine.put_message("In", {"id": "k", "text": text})
        states.append(engine.state_of("k"))
    assert states == ["NORMAL", "ACTIVE", "NORMAL"]


def test_a_numeric_string_reading_is_text_unless_converted() -> None:
    """Only convert() converts (spec §3): the reading "95" is text, which no number
    breaches, and DescribeAlarm shows it as it came; convert(Decimal, ...) compares it as
    the number it spells."""
    plain = _quoted_threshold_engine("90")
    plain.put_message("In", {"id": "k", "v": 95})
    plain.put_message("In", {"id": "k", "v": "95"})
    assert plain.state_of("k") == "LATCHED"  # "95" > 90 is not true: back in range
    evaluation = plain.describe("k")["alarm"]["alarmState"]["ruleEvaluation"]
    assert evaluation["simpleRuleEvaluation"]["inputPropertyValue"] == "95"
    model = load_alarm_model(
        {
            "alarmModelName": "c",
            "roleArn": "arn:aws:iam::123456789012:role/r",
            "key": "id",
            "alarmRule": {
                "simpleRule": {
                    "inputProperty": "convert(Decimal, $input.In.v)",
                    "comparisonOperator": "GREATER",
                    "threshold": "90",
                }
            },
            "alarmCapabilities": {
                "initializationConfiguration": {"disabledOnInitialization": False}
            },
        }
    )
    raw = {
        "inputName": "In",
        "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]},
    }
    converted = AlarmEngine(model, [load_input(raw)], InMemoryStateStore(), ManualClock(), Sink())
    states = []
    for reading in ("95", "85", " 91.5 "):
        converted.put_message("In", {"id": "k", "v": reading})
        states.append(converted.state_of("k"))
    assert states == ["ACTIVE", "LATCHED", "ACTIVE"]
