"""What the detector and timers handlers share: the detector engine on the state table, its
actions through SNS and iot-data, and the log lines and metrics they produce.

The engine and its action sink are the same ones the local stack runs
(``cloud.detectors.actions.LocalActionSink`` is port-only despite its name: it formats the
email and SMS and deduplicates alerts in the state store); only the adapters differ.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypedDict

from cloud.detectors import (
    DetectorEngine,
    DetectorModel,
    InputDefinition,
    default_detector_paths,
    load_detector_model,
    load_input,
)
from cloud.detectors.actions import LocalActionSink
from cloud.detectors.outbox import DeliveryOutbox
from cloud.detectors.trace import TraceRecord
from cloud.handlers import settings
from cloud.handlers.observability import Metric, Observability
from cloud.l4e.sites import SiteLayout
from cloud.ports import Notification, Notifier, ObjectStore, Publisher, StateStore
from edge.clock import Clock
from edge.errors import ConfigError, DetectorModelError, NotFoundError


class ObservedNotifier:
    """Splits the alert's detector key into ``site`` and ``asset`` attributes, passes the
    notification on, then logs an ``alert`` line and counts ``AlertsSent`` (after the send:
    an alert that failed to go out is not counted)."""

    def __init__(self, inner: Notifier, observability: Observability, sites: SiteLayout) -> None:
        self._inner = inner
        self._obs = observability
        self._sites = sites

    def send(self, notification: Notification) -> None:
        site, asset = settings.origin(self._sites, notification.attributes.get("asset"))
        attributes = {**notification.attributes, "site": site}
        if asset:
            attributes["asset"] = asset
        self._inner.send(replace(notification, attributes=attributes))
        self._obs.event(
            "alert",
            site=site,
            asset=asset,
            channel=notification.channel,
            severity=attributes.get("severity"),
            subject=notification.subject,
        )
        self._obs.count(Metric.ALERTS_SENT, site)


class StateChanges:
    """An engine observer that passes on only the committed state transitions (the engine
    releases an evaluation's records once its state is saved)."""

    def __init__(self, report: Callable[[TraceRecord], None]) -> None:
        self._report = report

    def observe(self, record: TraceRecord) -> None:
        if record.kind == "transition":
            self._report(record)


def build_engine(
    model: DetectorModel,
    inputs: Sequence[InputDefinition],
    state: StateStore,
    clock: Clock,
    notifier: Notifier,
    publisher: Publisher,
    observability: Observability,
    *,
    sites: SiteLayout,
    target: str,
    preload: bool,
) -> tuple[DetectorEngine, DeliveryOutbox]:
    """An engine whose alerts go to *notifier* (both channels to *target*, the topic) and
    whose committed state changes become ``state_change`` lines and metrics.

    Alerts and shadow commands pass through the durable outbox in the state table: one that
    fails (SNS or iot-data throttled) is kept and retried by the timers handler, never
    lost. The outbox is returned for that."""

    def on_transition(record: TraceRecord) -> None:
        site, asset = settings.origin(sites, record.key)
        observability.event(
            "state_change",
            site=site,
            asset=asset,
            detector_model=model.name,
            from_state=record.detail["from"],
            to_state=record.detail["to"],
            event=record.detail["event"],
        )
        observability.count(Metric.DETECTOR_STATE_CHANGES, site)

    sink = LocalActionSink(
        ObservedNotifier(notifier, observability, sites),
        publisher,
        email_target=target,
        sms_target=target,
        state=state,
    )
    outbox = DeliveryOutbox(sink, state, clock)
    engine = DetectorEngine(
        model, inputs, state, clock, outbox, preload=preload, observer=StateChanges(on_transition)
    )
    return engine, outbox


def detector_definitions(
    environ: Mapping[str, str], artifacts: ObjectStore | None = None
) -> tuple[DetectorModel, list[InputDefinition]]:
    """``DETECTOR_MODEL_KEY`` in ``ARTIFACTS_BUCKET`` (a CreateDetectorModel JSON), or the
    bundled default model; the input is always the feeder's ``AnomalyResults``."""
    model_path, input_path = default_detector_paths()
    inputs = [load_input(input_path)]
    key = environ.get("DETECTOR_MODEL_KEY", "").strip()
    if not key:
        return load_detector_model(model_path), inputs
    if artifacts is None:
        bucket = settings.required(environ, "ARTIFACTS_BUCKET", "where DETECTOR_MODEL_KEY lives")
        artifacts = settings.bucket_store(bucket, environ)
    try:
        body: Any = json.loads(artifacts.get(key))
    except NotFoundError as exc:
        raise ConfigError(f"DETECTOR_MODEL_KEY {key!r}: {exc}") from None
    except ValueError as exc:
        raise DetectorModelError(f"{key}: not JSON: {exc}") from None
    return load_detector_model(body, source=key), inputs


class DetectorAdapters(TypedDict):
    """What the detector and timers handlers are built from, in a deployment."""

    state: StateStore
    notifier: Notifier
    publisher: Publisher
    model: DetectorModel
    inputs: Sequence[InputDefinition]
    observability: Observability
    sites: SiteLayout
    target: str


def detector_adapters(environ: Mapping[str, str]) -> DetectorAdapters:
    """The state table, SNS topic, iot-data, detector model and site layout from the
    environment (``STATE_TABLE``, ``ALERTS_TOPIC_ARN``, ``IOT_DATA_ENDPOINT``,
    ``DETECTOR_MODEL_KEY``, ``DEFAULT_SITE``)."""
    notifier = settings.notifier(environ)
    model, inputs = detector_definitions(environ)
    return {
        "state": settings.state_store(environ),
        "notifier": notifier,
        "publisher": settings.publisher(environ),
        "model": model,
        "inputs": inputs,
        "observability": Observability(),
        "sites": settings.site_layout(environ),
        "target": notifier.topic_arn,
    }
