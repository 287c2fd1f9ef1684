"""Deployment settings from CDK context (``cdk.json``, ``-c key=value``), validated once.

Context values given on the command line arrive as strings, so lists are accepted as
JSON or comma-separated text. Every error names the context key and what was expected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cloud.l4e.naming import UPLOAD_FREQUENCIES
from cloud.l4e.sites import DEFAULT_SITE
from edge.errors import ConfigError
from edge.wire import NAME_RE

STACK_NAME = "plantwatch"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
"""E.164, as SNS SMS subscriptions require."""
DETECTORS_PREFIX = "detectors/"
"""Where detector models live in the artifacts bucket (the functions may read only there)."""
DETECTOR_KEY_RE = re.compile(r"^detectors/[0-9A-Za-z_.\-/]{1,200}\.json$")
ALARMS_PREFIX = "alarms/"
"""Where alarm models live in the artifacts bucket (``plantwatch alarms push``)."""
ALARM_KEY_RE = re.compile(r"^alarms/[0-9A-Za-z_.\-/]{1,200}\.json$")


@dataclass(frozen=True, slots=True)
class SchedulerSpec:
    """One inference scheduler: one EventBridge schedule that wakes it once per window."""

    name: str
    upload_frequency: str = "PT5M"
    delay_offset_min: int = 2

    def schedule_expression(self) -> str:
        """A cron that fires at each window end plus the delay offset (UTC).

        Windows are aligned to the hour (L4E), so a PT5M scheduler with a 2-minute offset
        fires at :02, :07, :12 ...; PT1H with offset 60 fires on the hour.
        """
        period_min = UPLOAD_FREQUENCIES[self.upload_frequency] // 60
        if period_min >= 60:
            return f"cron({self.delay_offset_min % 60} * * * ? *)"
        first = self.delay_offset_min % period_min
        return f"cron({first}/{period_min} * * * ? *)"


@dataclass(frozen=True, slots=True)
class DeployConfig:
    alert_emails: tuple[str, ...] = ()
    alert_phones: tuple[str, ...] = ()
    schedulers: tuple[SchedulerSpec, ...] = (SchedulerSpec("plantwatch"),)
    kinesis_shards: int = 1
    detector_concurrency: int = 1
    """Reserved concurrency of the detector function: 1 keeps each asset's inputs in
    order. 0 leaves it unreserved (new accounts with a concurrency quota of 10 cannot
    reserve any)."""
    timers_concurrency: int = 1
    log_retention_days: int = 30
    spool_expiry_days: int = 8
    """The batcher's S3 spool records (``seen/``, ``written/``) are needed for
    ``MAX_SKEW_S`` (7 days) plus one window; the lifecycle rule is the batcher's
    ``forget_before``."""
    quarantine_expiry_days: int = 30
    pandas_layer_arn: str | None = None
    """Overrides the AWS SDK for pandas layer looked up for the Region."""
    retention: tuple[tuple[str, int], ...] = ()
    """``(key prefix, days)``: the local ``retention.toml`` table, as lifecycle rules on the
    bucket holding each prefix (``infra/parts/storage.py``)."""
    default_site: str | None = DEFAULT_SITE
    """The functions' ``DEFAULT_SITE``: the site whose objects keep L4E's flat names and
    whose detector keys are bare asset names. None (context ``""``) gives every site its
    own folder (``docs/layout.md``)."""
    detector_model_key: str | None = None
    """The functions' ``DETECTOR_MODEL_KEY``: a CreateDetectorModel JSON in the artifacts
    bucket (``plantwatch detectors push``); None runs the bundled default model."""
    alarm_model_keys: tuple[str, ...] = ()
    """The functions' ``ALARM_MODEL_KEYS``: CreateAlarmModel JSON in the artifacts bucket
    (``plantwatch alarms push``); empty runs the bundled companion ``anomaly_score``, and
    ``("none",)`` runs no alarm model."""


def from_context(get: Callable[[str], Any]) -> DeployConfig:
    """Build the config from a context getter (``node.try_get_context``)."""
    emails = tuple(_list(get("alert_emails"), "alert_emails"))
    for email in emails:
        if not EMAIL_RE.fullmatch(email):
            raise ConfigError(f"context alert_emails: {email!r} is not an email address")
    phones = tuple(_list(get("alert_phones"), "alert_phones"))
    for phone in phones:
        if not PHONE_RE.fullmatch(phone):
            raise ConfigError(
                f"context alert_phones: {phone!r}: expected E.164, e.g. +4915112345678"
            )
    raw_schedulers = get("schedulers")
    schedulers = DeployConfig().schedulers
    if raw_schedulers is not None:
        schedulers = tuple(
            _scheduler(s, i) for i, s in enumerate(_list(raw_schedulers, "schedulers"))
        )
    names = [s.name for s in schedulers]
    if len(set(names)) != len(names):
        raise ConfigError("context schedulers: scheduler names must be unique")
    layer = get("pandas_layer_arn")
    if layer is not None and not str(layer).startswith("arn:"):
        raise ConfigError(f"context pandas_layer_arn: {layer!r}: expected a layer version ARN")
    site = get("default_site")
    default_site: str | None = DEFAULT_SITE
    if site is not None:
        default_site = str(site).strip() or None
        if default_site is not None and not NAME_RE.fullmatch(default_site):
            raise ConfigError(
                f"context default_site: {default_site!r} must match {NAME_RE.pattern} "
                "(or be empty: every site in its own folder)"
            )
    key = get("detector_model_key")
    detector_key = (str(key).strip() or None) if key is not None else None
    if detector_key is not None and not DETECTOR_KEY_RE.fullmatch(detector_key):
        raise ConfigError(
            f"context detector_model_key: {detector_key!r}: expected a key like "
            "detectors/NAME.json (as `plantwatch detectors push` prints it)"
        )
    alarm_keys = tuple(str(k).strip() for k in _list(get("alarm_model_keys"), "alarm_model_keys"))
    if alarm_keys != ("none",):
        for alarm_key in alarm_keys:
            if not ALARM_KEY_RE.fullmatch(alarm_key):
                raise ConfigError(
                    f"context alarm_model_keys: {alarm_key!r}: expected keys like "
                    "alarms/NAME/DIGEST.json (as `plantwatch alarms push` prints them), or none"
                )
    return DeployConfig(
        alert_emails=emails,
        alert_phones=phones,
        schedulers=schedulers,
        kinesis_shards=_int(get, "kinesis_shards", 1, 1, 500),
        detector_concurrency=_int(get, "detector_concurrency", 1, 0, 1000),
        timers_concurrency=_int(get, "timers_concurrency", 1, 0, 1000),
        log_retention_days=_int(get, "log_retention_days", 30, 1, 3653),
        spool_expiry_days=_int(get, "spool_expiry_days", 8, 8, 3653),
        quarantine_expiry_days=_int(get, "quarantine_expiry_days", 30, 1, 3653),
        pandas_layer_arn=str(layer) if layer is not None else None,
        retention=_retention(get("retention")),
        default_site=default_site,
        detector_model_key=detector_key,
        alarm_model_keys=alarm_keys,
    )


def _retention(value: Any) -> tuple[tuple[str, int], ...]:
    """``{"archive/": 365, "input/": 30}`` (JSON text on the command line)."""
    from cloud.archive.retention import rules_from_mapping

    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"context retention: not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError('context retention: expected {"<prefix>/": days, ...}')
    return tuple((r.prefix, r.days) for r in rules_from_mapping(value, "context retention"))


def _list(value: Any, key: str) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ConfigError(f"context {key}: not JSON: {exc}") from None
        else:
            return [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, list):
        raise ConfigError(f"context {key}: expected a list")
    return value


def _int(get: Callable[[str], Any], key: str, default: int, low: int, high: int) -> int:
    value = get(key)
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"context {key}: expected an integer, got {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"context {key}: {number} is outside {low}..{high}")
    return number


def _scheduler(raw: Any, index: int) -> SchedulerSpec:
    where = f"context schedulers[{index}]"
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ConfigError(f"{where}: expected {{'name': ..., 'upload_frequency': 'PT5M', ...}}")
    if not NAME_RE.fullmatch(raw["name"]):
        raise ConfigError(f"{where}.name: {raw['name']!r} must match {NAME_RE.pattern}")
    frequency = raw.get("upload_frequency", "PT5M")
    if frequency not in UPLOAD_FREQUENCIES:
        raise ConfigError(
            f"{where}.upload_frequency: {frequency!r}, expected one of {', '.join(UPLOAD_FREQUENCIES)}"
        )
    offset = raw.get("delay_offset_min", 2)
    if not isinstance(offset, int) or not 0 <= offset <= 60:
        raise ConfigError(f"{where}.delay_offset_min: expected 0 to 60, got {offset!r}")
    return SchedulerSpec(raw["name"], frequency, offset)
