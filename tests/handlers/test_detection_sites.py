"""Detector keys of a site other than the default one (``<site>:<asset>``) become the
``site`` and ``asset`` of log lines, metrics and SNS attributes."""

from __future__ import annotations

import contextlib
import io
import json

from cloud.adapters.local import InMemoryNotifier, InMemoryPublisher, InMemoryStateStore
from cloud.detectors import default_detector_paths, load_detector_model, load_input
from cloud.handlers.detection import build_engine
from cloud.handlers.observability import Observability
from cloud.l4e.sites import SiteLayout
from edge.clock import ManualClock


def test_a_site_qualified_key_is_split_into_site_and_asset() -> None:
    model_path, input_path = default_detector_paths()
    notifier, publisher, obs = InMemoryNotifier(), InMemoryPublisher(), Observability()
    engine, _outbox = build_engine(
        load_detector_model(model_path),
        [load_input(input_path)],
        InMemoryStateStore(),
        ManualClock(1_767_596_400),
        notifier,
        publisher,
        obs,
        sites=SiteLayout("s1"),
        target="arn:aws:sns:us-east-1:123456789012:alerts",
        preload=True,
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for minute in (1, 2, 3):
            engine.put_message(
                "AnomalyResults",
                {
                    "asset": "s2:pump-01",
                    "thing": "pump-01",
                    "site": "s2",
                    "timestamp": f"2026-01-05T07:0{minute}:00.000000",
                    "prediction": 1,
                    "anomaly_score": 0.9,
                },
            )
        obs.flush()
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    [change] = [x for x in lines if x.get("message") == "state_change"]
    assert (change["site"], change["asset"], change["to_state"]) == ("s2", "pump-01", "Alarm")
    alerts = [x for x in lines if x.get("message") == "alert"]
    assert [(a["site"], a["asset"], a["channel"]) for a in alerts] == [
        ("s2", "pump-01", "email"),
        ("s2", "pump-01", "sms"),
    ]
    assert {(n.attributes["site"], n.attributes["asset"]) for n in notifier.sent} == {
        ("s2", "pump-01")
    }
    [emf] = [x for x in lines if "_aws" in x]
    assert (emf["site"], emf["AlertsSent"], emf["DetectorStateChanges"]) == ("s2", [2.0], [1.0])
