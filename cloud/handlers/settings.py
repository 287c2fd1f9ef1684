"""What the handlers read from their environment, and the AWS adapters built from it.

Variable names are fixed by the deployment contract (``docs/aws-data-path.md``); each handler
reads only the ones it needs. A missing or bad value is a ConfigError naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cloud.adapters.aws import (
    DynamoDbStateStore,
    IotDataPublisher,
    S3ObjectStore,
    SnsNotifier,
)
from cloud.l4e.sites import DEFAULT_SITE, SiteLayout
from edge.clock import Clock, ManualClock, SystemClock
from edge.errors import ConfigError

DAY = 86400.0
RETENTION: Mapping[str, float] = {
    "feeder/": 14 * DAY,
    "feeder-quarantine/": 90 * DAY,
    "alerts/sent": 30 * DAY,
    "executions": 90 * DAY,
}
"""Namespaces whose documents DynamoDB TTL expires (``expires_at``): one feeder progress
record per results object would otherwise grow by the fleet size every upload window.
Detector instances, schedulers and the detector registry never expire."""


def required(environ: Mapping[str, str], name: str, meaning: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name}: required ({meaning})")
    return value


def prefix(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, default)
    if value and not value.endswith("/"):
        raise ConfigError(f"{name} {value!r}: must be empty or end in '/'")
    return value


def site_layout(environ: Mapping[str, str]) -> SiteLayout:
    """``DEFAULT_SITE`` (``s1``): the site whose objects keep L4E's flat names; any other
    site has its own folder and ``<site>:<asset>`` detector keys (:mod:`cloud.l4e.sites`).
    Empty gives every site its own folder."""
    try:
        return SiteLayout(environ.get("DEFAULT_SITE", DEFAULT_SITE).strip() or None)
    except ConfigError as exc:
        raise ConfigError(f"DEFAULT_SITE: {exc}") from None


def origin(sites: SiteLayout, key: str | None) -> tuple[str, str | None]:
    """``(site, asset)`` of a detector key (``<asset>`` or ``<site>:<asset>``); ``unknown``
    site for a bare key when every site has its own folder."""
    if not key:
        return sites.default_site or "unknown", None
    try:
        return sites.split(key)
    except ConfigError:
        return "unknown", key


def bucket_store(bucket: str, environ: Mapping[str, str] | None = None) -> S3ObjectStore:
    environ = os.environ if environ is None else environ
    return S3ObjectStore(bucket, endpoint_url=environ.get("S3_ENDPOINT_URL") or None)


def state_store(environ: Mapping[str, str]) -> DynamoDbStateStore:
    table = required(environ, "STATE_TABLE", "the DynamoDB state table")
    return DynamoDbStateStore(table, retention=RETENTION)


def notifier(environ: Mapping[str, str]) -> SnsNotifier:
    topic = required(environ, "ALERTS_TOPIC_ARN", "the SNS topic alerts are published to")
    return SnsNotifier(topic)


def publisher(environ: Mapping[str, str]) -> IotDataPublisher:
    return IotDataPublisher(endpoint=environ.get("IOT_DATA_ENDPOINT") or None)


def event_clock(event: Mapping[str, Any]) -> Clock:
    """The event's ``time`` (ISO 8601, as EventBridge sends it) as a fixed clock, so a run
    is decided by when it was scheduled and tests inject time; otherwise the wall clock."""
    text = event.get("time") if isinstance(event, Mapping) else None
    if text is None:
        return SystemClock()
    if not isinstance(text, str):
        raise ConfigError(f"event time {text!r}: expected an ISO 8601 string")
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"event time {text!r}: expected ISO 8601") from None
    if at.tzinfo is None:
        raise ConfigError(f"event time {text!r}: expected a UTC offset or Z")
    return ManualClock(at.timestamp())
