"""What the handlers read from their environment, and the AWS adapters built from it.

Variable names are fixed by the deployment contract (``docs/aws-data-path.md``); each handler
reads only the ones it needs. A missing or bad value is a ConfigError naming the variable,
at cold start: buckets, tables and the topic ARN are checked against AWS's naming rules and
endpoints are parsed, so a setting no request could succeed with is not found only when the
first request fails (for the alerts topic, at the first alert).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

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
    "router/partial": 14 * DAY,
    "alerts/sent": 30 * DAY,
    "executions": 90 * DAY,
}
"""Namespaces whose documents DynamoDB TTL expires (``expires_at``): one feeder progress
record per results object would otherwise grow by the fleet size every upload window, and
the router's record of a failed message's deliveries serves only its retries.
Detector instances, schedulers and the detector registry never expire."""


class Form(NamedTuple):
    """What a setting must look like, and how the error says it."""

    pattern: re.Pattern[str]
    description: str


BUCKET = Form(
    re.compile(r"(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
    "an S3 bucket name (3-63 lowercase letters, digits, '.' and '-')",
)
"""S3's bucket naming rules (general purpose buckets): a URL, a path or capitals is not one."""
TABLE = Form(
    re.compile(
        r"[A-Za-z0-9_.-]{3,255}"
        r"|arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/[A-Za-z0-9_.-]{3,255}"
    ),
    "a DynamoDB table name or ARN (3-255 letters, digits, '_', '.' and '-')",
)
"""DynamoDB's table naming rules; its APIs also take the table's ARN."""
TOPIC = Form(
    re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}"),
    "an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)",
)
"""A standard topic's ARN (CreateTopic: names are 1-256 letters, digits, '_' and '-'); a
bare topic name is refused by every Publish, and only at the first alert."""


def required(
    environ: Mapping[str, str], name: str, meaning: str, *, form: Form | None = None
) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name}: required ({meaning})")
    return checked(name, value, form)


def checked(name: str, value: str, form: Form | None) -> str:
    """*value* if it has *form*; else a ConfigError naming the variable and the form, at
    cold start rather than at the first request AWS refuses."""
    if form is not None and not form.pattern.fullmatch(value):
        raise ConfigError(f"{name} {value!r}: expected {form.description}")
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
    url = environ.get("S3_ENDPOINT_URL") or None
    try:
        return S3ObjectStore(bucket, endpoint_url=url)
    except ValueError as exc:  # botocore: "Invalid endpoint: ..."
        raise ConfigError(f"S3_ENDPOINT_URL {url!r}: {exc}") from None


def state_store(environ: Mapping[str, str]) -> DynamoDbStateStore:
    table = required(environ, "STATE_TABLE", "the DynamoDB state table", form=TABLE)
    return DynamoDbStateStore(table, retention=RETENTION)


def notifier(environ: Mapping[str, str]) -> SnsNotifier:
    topic = required(
        environ, "ALERTS_TOPIC_ARN", "the SNS topic alerts are published to", form=TOPIC
    )
    return SnsNotifier(topic)


def publisher(environ: Mapping[str, str]) -> IotDataPublisher:
    endpoint = environ.get("IOT_DATA_ENDPOINT") or None
    try:
        return IotDataPublisher(endpoint=endpoint)
    except ValueError as exc:  # botocore: "Invalid endpoint: ..."
        raise ConfigError(f"IOT_DATA_ENDPOINT {endpoint!r}: {exc}") from None


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
