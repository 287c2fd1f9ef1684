"""Lambda timers: an EventBridge ``rate(1 minute)`` event -> every due detector timer fires,
every due alarm reminder and snooze expiry runs, and every due retry of a failed alert or
shadow command goes out again.

Exactly once even when two invocations overlap (a slow run and the next minute's): each
engine reads the instances with their versions, and firing a timer (or sending a reminder)
is saved conditionally on that version, which is the claim. The invocation that loses
re-reads the instance, finds nothing due, and does nothing; actions run only after the
claim is saved. Retries from the action outbox are claimed the same way
(``cloud.detectors.outbox``).

An instance that cannot be saved (throttled past the SDK's retries, or grown past
DynamoDB's 400 KB item limit) keeps its timer due and is named in the log; every other
timer, reminder and retry still runs, and then the invocation fails with that error, so
EventBridge retries it and its dead-letter queue shows what keeps failing.

Environment: ``STATE_TABLE``, ``ALERTS_TOPIC_ARN``, ``ARTIFACTS_BUCKET``,
``DETECTOR_MODEL_KEY`` and ``ALARM_MODEL_KEYS`` (optional), ``IOT_DATA_ENDPOINT``
(optional), ``DEFAULT_SITE``, and the Powertools variables. The event's ``time`` is the
time timers are judged at.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cloud.detectors import DetectorModel, InputDefinition
from cloud.detectors.alarms import AlarmModel
from cloud.handlers import settings
from cloud.handlers.detection import build_engines, detector_adapters
from cloud.handlers.observability import Observability
from cloud.l4e.sites import SiteLayout
from cloud.ports import Notifier, Publisher, StateStore

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


def make_handler(
    *,
    state: StateStore,
    notifier: Notifier,
    publisher: Publisher,
    model: DetectorModel,
    inputs: Sequence[InputDefinition],
    observability: Observability,
    sites: SiteLayout,
    target: str,
    alarm_models: Sequence[AlarmModel] = (),
) -> Handler:
    def handle(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        engines = build_engines(
            model,
            inputs,
            state,
            settings.event_clock(event),
            notifier,
            publisher,
            observability,
            sites=sites,
            target=target,
            preload=True,
            alarm_models=alarm_models,
        )
        try:
            fired, reminded, failures = engines.tick()
            engines.close()
            retried = engines.outbox.retry_due()
        finally:
            observability.flush()
        if failures:
            raise failures[0]  # after every other timer and retry ran: EventBridge retries
        return {"timers_fired": fired, "alarm_timers_fired": reminded, "actions_retried": retried}

    return handle


_handler: Handler | None = None


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point; adapters and the detector model are built once per environment."""
    global _handler
    if _handler is None:
        _handler = make_handler(**detector_adapters(os.environ))
    return _handler(event, context)
