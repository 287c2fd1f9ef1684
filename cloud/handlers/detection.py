"""What the detector and timers handlers share: the detector engine and the alarm engines on
the state table, their actions through SNS and iot-data, and the log lines and metrics they
produce.

The engines and their action sink are the same ones the local stack runs
(``cloud.detectors.actions.LocalActionSink`` is port-only despite its name: it formats the
email and SMS, deduplicates alerts in the state store and keeps the per-asset notification
budget); only the adapters differ. As locally, every results row goes to the detector model
and to each alarm model (by default the shipped companion, ``anomaly_score``), and alerts
of both share one budget per asset.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
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
from cloud.detectors.alarms import (
    AlarmEngine,
    AlarmModel,
    NotificationLimiter,
    StaticDirectory,
    check_alarm_references,
    load_alarm_model,
)
from cloud.detectors.alarms.model import default_alarm_path
from cloud.detectors.outbox import DeliveryOutbox
from cloud.detectors.router import MessageRouter
from cloud.detectors.trace import TraceRecord
from cloud.handlers import settings
from cloud.handlers.observability import Metric, Observability
from cloud.l4e.sites import SiteLayout
from cloud.ports import Notification, Notifier, ObjectStore, Publisher, StateStore
from edge.clock import Clock
from edge.errors import ConfigError, DetectorModelError, NotFoundError
from edge.user_files import parse_problem as json_problem

ALARM_MODELS_OFF = "none"
"""``ALARM_MODEL_KEYS=none`` runs no alarm model."""


class ObservedNotifier:
    """Splits the alert's detector key into ``site`` and ``asset`` attributes, passes the
    notification on, then logs an ``alert`` line and counts ``AlertsSent`` (after the send:
    an alert that failed to go out is not counted). Without *observability* (a CLI sending
    an operator's notice) it only splits the key."""

    def __init__(
        self, inner: Notifier, observability: Observability | None, sites: SiteLayout
    ) -> None:
        self._inner = inner
        self._obs = observability
        self._sites = sites

    def send(self, notification: Notification) -> None:
        site, asset = settings.origin(self._sites, notification.attributes.get("asset"))
        attributes = {**notification.attributes, "site": site}
        if asset:
            attributes["asset"] = asset
        self._inner.send(replace(notification, attributes=attributes))
        if self._obs is None:
            return
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


@dataclass(frozen=True, slots=True)
class Engines:
    """One invocation's engines: the detector model and the alarm models, fed by one
    router (every row to each), with their durable action outbox."""

    detector: DetectorEngine
    alarms: tuple[AlarmEngine, ...]
    outbox: DeliveryOutbox
    router: MessageRouter

    def tick(self) -> tuple[int, int, list[Exception]]:
        """Due detector timers, then due alarm reminders and snooze expiries: the counts,
        and what failed. An engine that fails (after running what it could) does not keep
        the others from running theirs."""
        failures: list[Exception] = []

        def run(tick: Callable[[], int]) -> int:
            try:
                return tick()
            except Exception as exc:
                failures.append(exc)
                return 0

        with self.router.holding():  # an iotEvents action waits for the tick to end
            fired = run(self.detector.tick)
            return fired, sum(run(alarm.tick) for alarm in self.alarms), failures

    def close(self) -> None:
        """Write what the alarm engines keep for later (last values, hand-overs): an
        invocation's last step, so the next one does not hand a notice over again."""
        for alarm in self.alarms:
            alarm.close()


def build_engines(
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
    alarm_models: Sequence[AlarmModel] = (),
) -> Engines:
    """Engines whose alerts go to *notifier* (both channels to *target*, the topic) and
    whose committed state changes become ``state_change`` (detector) and
    ``alarm_state_change`` (alarm) lines; detector changes count ``DetectorStateChanges``.

    Alerts and shadow commands pass through the durable outbox in the state table: one that
    fails (SNS or iot-data throttled) is kept and retried by the timers handler, never
    lost. Alarm notifications go to the same topic: every recipient of an alarm model
    resolves to it, and subscriptions pick their channel by attribute."""

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

    def on_alarm(name: str) -> Callable[[TraceRecord], None]:
        def report(record: TraceRecord) -> None:
            site, asset = settings.origin(sites, record.key)
            observability.event(
                "alarm_state_change",
                site=site,
                asset=asset,
                alarm_model=name,
                from_state=record.detail["from"],
                to_state=record.detail["to"],
                event=record.detail["event"],
            )

        return report

    limiter = NotificationLimiter(state)
    sink = LocalActionSink(
        ObservedNotifier(notifier, observability, sites),
        publisher,
        email_target=target,
        sms_target=target,
        state=state,
        limiter=limiter,
        ack_alarm=alarm_models[0].name if alarm_models else None,
    )
    outbox = DeliveryOutbox(sink, state, clock)
    engine = DetectorEngine(
        model, inputs, state, clock, outbox, preload=preload, observer=StateChanges(on_transition)
    )
    alarms = tuple(
        AlarmEngine(
            alarm,
            inputs,
            state,
            clock,
            outbox,
            directory=StaticDirectory(email_address=target, phone_number=target),
            limiter=limiter,
            observer=StateChanges(on_alarm(alarm.name)),
            preload=preload,
        )
        for alarm in alarm_models
    )
    router = MessageRouter([engine, *alarms], state, clock)
    outbox.bind(router)  # an iotEvents action reaches every model reading its input
    return Engines(engine, alarms, outbox, router)


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
    """The detector engine alone (no alarm model), with its outbox."""
    engines = build_engines(
        model,
        inputs,
        state,
        clock,
        notifier,
        publisher,
        observability,
        sites=sites,
        target=target,
        preload=preload,
    )
    return engines.detector, engines.outbox


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
        bucket = settings.required(
            environ, "ARTIFACTS_BUCKET", "where DETECTOR_MODEL_KEY lives", form=settings.BUCKET
        )
        artifacts = settings.bucket_store(bucket, environ)
    try:
        body: Any = json.loads(artifacts.get(key))
    except NotFoundError as exc:
        raise ConfigError(f"DETECTOR_MODEL_KEY {key!r}: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise DetectorModelError(f"{key}: not JSON: {json_problem(exc)}") from None
    return load_detector_model(body, source=key), inputs


def alarm_definitions(
    environ: Mapping[str, str],
    inputs: Sequence[InputDefinition],
    artifacts: ObjectStore | None = None,
) -> list[AlarmModel]:
    """``ALARM_MODEL_KEYS``: comma-separated keys of CreateAlarmModel JSON in
    ``ARTIFACTS_BUCKET``; unset or empty runs the shipped companion ``anomaly_score`` (as
    ``plantwatch up --model`` does), ``none`` runs no alarm model. Each is checked against
    the feeder's input, so a model that reads nothing it is sent fails at cold start."""
    text = environ.get("ALARM_MODEL_KEYS", "").strip()
    if not text:
        return [load_alarm_model(default_alarm_path())]
    if text.lower() == ALARM_MODELS_OFF:
        return []
    keys = [part.strip() for part in text.split(",") if part.strip()]
    if artifacts is None:
        bucket = settings.required(
            environ, "ARTIFACTS_BUCKET", "where ALARM_MODEL_KEYS live", form=settings.BUCKET
        )
        artifacts = settings.bucket_store(bucket, environ)
    models: list[AlarmModel] = []
    for key in keys:
        try:
            body: Any = json.loads(artifacts.get(key))
        except NotFoundError as exc:
            raise ConfigError(f"ALARM_MODEL_KEYS {key!r}: {exc}") from None
        except (ValueError, RecursionError) as exc:
            raise DetectorModelError(f"{key}: not JSON: {json_problem(exc)}") from None
        model = load_alarm_model(body, source=key)
        check_alarm_references(model, list(inputs))
        models.append(model)
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"ALARM_MODEL_KEYS: two keys hold the same alarmModelName ({names})")
    return models


class DetectorAdapters(TypedDict):
    """What the detector and timers handlers are built from, in a deployment."""

    state: StateStore
    notifier: Notifier
    publisher: Publisher
    model: DetectorModel
    inputs: Sequence[InputDefinition]
    alarm_models: Sequence[AlarmModel]
    observability: Observability
    sites: SiteLayout
    target: str


def detector_adapters(environ: Mapping[str, str]) -> DetectorAdapters:
    """The state table, SNS topic, iot-data, detector and alarm models and site layout from
    the environment (``STATE_TABLE``, ``ALERTS_TOPIC_ARN``, ``IOT_DATA_ENDPOINT``,
    ``DETECTOR_MODEL_KEY``, ``ALARM_MODEL_KEYS``, ``DEFAULT_SITE``)."""
    notifier = settings.notifier(environ)
    model, inputs = detector_definitions(environ)
    return {
        "state": settings.state_store(environ),
        "notifier": notifier,
        "publisher": settings.publisher(environ),
        "model": model,
        "inputs": inputs,
        "alarm_models": alarm_definitions(environ, inputs),
        "observability": Observability(),
        "sites": settings.site_layout(environ),
        "target": notifier.topic_arn,
    }
