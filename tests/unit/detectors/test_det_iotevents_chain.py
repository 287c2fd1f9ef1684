"""An ``iotEvents`` action that feeds the model's own input: bounded, never a hang."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from detector_models import event, one_state_model

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.actions import LocalActionSink
from cloud.detectors.engine import MAX_CHAINED_MESSAGES
from edge.clock import ManualClock

INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "n"}]},
}


class Notifier:
    def send(self, notification: Any) -> None:
        raise AssertionError("no notification expected")


def feeding_engine(condition: str) -> DetectorEngine:
    """Each message counts itself and, while *condition* holds, sends ``n + 1`` to ``In``."""
    payload = {"contentExpression": '\'{"id": "k1", "n": ${$input.In.n + 1}}\'', "type": "JSON"}
    body = one_state_model(
        event({"setVariable": {"variableName": "last", "value": "$input.In.n"}}, name="count"),
        event(
            {"iotEvents": {"inputName": "In", "payload": payload}},
            condition=condition,
            name="again",
        ),
        name="feeder",
    )
    sink = LocalActionSink(Notifier(), None)
    engine = DetectorEngine(
        load_detector_model(body),
        [load_input(INPUT)],
        InMemoryStateStore(),
        ManualClock(),
        sink,
    )
    sink.bind(engine)
    return engine


def last(engine: DetectorEngine) -> str:
    (variable,) = engine.describe("k1")["detector"]["state"]["variables"]
    return str(variable["value"])


def test_a_finite_chain_runs_to_its_end() -> None:
    engine = feeding_engine("$input.In.n < 25")
    engine.put_message("In", {"id": "k1", "n": 0})
    assert last(engine) == "25"


def test_a_model_feeding_itself_for_ever_stops_at_the_bound_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = feeding_engine('currentInput("In")')
    with caplog.at_level(logging.ERROR, logger="cloud.detectors.engine"):
        engine.put_message("In", {"id": "k1", "n": 0})
    assert last(engine) == str(MAX_CHAINED_MESSAGES)
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "action iotEvents of event 'again' failed" in record.getMessage()
    assert f"more than {MAX_CHAINED_MESSAGES} messages put back" in str(record.exc_info[1])
    # the bound is per outside message: the next one gets its own
    engine.put_message("In", {"id": "k1", "n": 0})
    assert last(engine) == str(MAX_CHAINED_MESSAGES)
