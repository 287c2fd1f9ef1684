"""An ``iotEvents`` action that feeds the model's own input: bounded, never a hang."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from detector_models import event, one_state_model

from cloud.adapters.local import InMemoryNotifier, InMemoryPublisher, InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.actions import LocalActionSink
from cloud.detectors.alarms import load_alarm_model
from cloud.detectors.engine import MAX_CHAINED_MESSAGES
from cloud.handlers.detection import Engines, build_engines
from cloud.handlers.observability import Observability
from cloud.l4e.sites import SiteLayout
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


ALARMS = Path(__file__).with_name("data") / "alarms"


def runtime_engines(body: dict[str, Any]) -> Engines:
    """A detector model and the boiler alarm model wired as the Lambdas wire them."""
    return build_engines(
        load_detector_model(body),
        [load_input(INPUT), load_input(ALARMS / "boiler_input.json")],
        InMemoryStateStore(),
        ManualClock(1_000.0),
        InMemoryNotifier(),
        InMemoryPublisher(),
        Observability(),
        sites=SiteLayout(),
        target="ops@example.com",
        preload=True,
        alarm_models=[load_alarm_model(ALARMS / "boiler_high.json")],
    )


def test_an_iot_events_action_reaches_the_alarm_models_reading_its_input() -> None:
    """§1: a message goes to every detector and alarm model using its input; an iotEvents
    action's message is a message like any other (§4)."""
    payload = {
        "contentExpression": '\'{"boilerId": "b7", "temp": ${$input.In.n}}\'',
        "type": "JSON",
    }
    body = one_state_model(
        event({"iotEvents": {"inputName": "BoilerInput", "payload": payload}}), name="relay"
    )
    engines = runtime_engines(body)
    (alarm,) = engines.alarms
    engines.router.put_message("In", {"id": "k1", "n": 85})
    assert alarm.state_of("b7") == "ACTIVE"


def test_through_the_router_a_model_feeding_itself_still_stops_at_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload = {"contentExpression": '\'{"id": "k1", "n": ${$input.In.n + 1}}\'', "type": "JSON"}
    body = one_state_model(
        event({"setVariable": {"variableName": "last", "value": "$input.In.n"}}, name="count"),
        event({"iotEvents": {"inputName": "In", "payload": payload}}, name="again"),
        name="feeder",
    )
    engines = runtime_engines(body)
    with caplog.at_level(logging.ERROR):
        engines.router.put_message("In", {"id": "k1", "n": 0})
    assert last(engines.detector) == str(MAX_CHAINED_MESSAGES)
    assert any(
        f"more than {MAX_CHAINED_MESSAGES} messages put back" in str(r.exc_info and r.exc_info[1])
        for r in caplog.records
    )


def test_a_string_payload_holding_nan_is_not_put_back(caplog: pytest.LogCaptureFixture) -> None:
    """A STRING payload goes back in as a message does, and NaN is not JSON there either."""
    payload = {"contentExpression": '\'{"id": "k1", "n": 2, "x": NaN}\'', "type": "STRING"}
    body = one_state_model(
        event({"setVariable": {"variableName": "last", "value": "$input.In.n"}}, name="count"),
        event(
            {"iotEvents": {"inputName": "In", "payload": payload}},
            condition="$input.In.n == 1",
            name="again",
        ),
        name="feeder",
    )
    sink = LocalActionSink(Notifier(), None)
    engine = DetectorEngine(
        load_detector_model(body), [load_input(INPUT)], InMemoryStateStore(), ManualClock(), sink
    )
    sink.bind(engine)
    with caplog.at_level(logging.ERROR):
        engine.put_message("In", {"id": "k1", "n": 1})
    assert "NaN is not JSON" in caplog.text
    assert last(engine) == "1"  # nothing came back in
