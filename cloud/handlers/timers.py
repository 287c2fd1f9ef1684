"""Lambda timers: an EventBridge ``rate(1 minute)`` event -> every due detector timer fires,
and every due retry of a failed alert or shadow command goes out again.

Exactly once even when two invocations overlap (a slow run and the next minute's): each
engine reads the instances with their versions, and firing a timer is saved conditionally
on that version, which is the claim. The invocation that loses re-reads the instance,
finds the timer gone, and does nothing; actions run only after the claim is saved. Retries
from the action outbox are claimed the same way (``cloud.detectors.outbox``).

Environment: ``STATE_TABLE``, ``ALERTS_TOPIC_ARN``, ``ARTIFACTS_BUCKET`` and
``DETECTOR_MODEL_KEY`` (optional), ``IOT_DATA_ENDPOINT`` (optional), ``DEFAULT_SITE``,
and the Powertools variables. The event's ``time`` is the time timers are judged at.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cloud.detectors import DetectorModel, InputDefinition
from cloud.handlers import settings
from cloud.handlers.detection import build_engine, detector_adapters
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
) -> Handler:
    def handle(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        engine, outbox = build_engine(
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
        )
        try:
            fired = engine.tick()
            retried = outbox.retry_due()
        finally:
            observability.flush()
        return {"timers_fired": fired, "actions_retried": retried}

    return handle


_handler: Handler | None = None


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point; adapters and the detector model are built once per environment."""
    global _handler
    if _handler is None:
        _handler = make_handler(**detector_adapters(os.environ))
    return _handler(event, context)
