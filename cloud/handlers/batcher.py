"""Lambda batcher: Kinesis records (the telemetry rule's output) -> the batcher -> S3.

AWS shape of the hop: topic rule -> Kinesis (partition key = asset) -> this function. Each
record is the project rule's envelope (``payload`` base64, ``topic``, ``clientid``); the
same :class:`~cloud.batcher.Batcher` as locally decodes, de-duplicates, quarantines and
writes the L4E input files, with its spool in the bucket (:class:`ObjectStoreSpool`).

Partial failures use powertools' BatchProcessor (``batchItemFailures``), so the event
source mapping needs ``FunctionResponseTypes: [ReportBatchItemFailures]``. A record fails
only when storage fails (``StorageError``: it may work on the retry), with an error line
naming its sequence number and partition key. A record that can
never succeed (malformed, out of range, too large, or one the batcher cannot handle at all)
is quarantined with its reason and never reported as failed: Kinesis would retry it
forever and block its shard. An event without ``Records`` (EventBridge schedule, every
minute) flushes due windows of idle assets. Anything else (an event that is not an object,
``Records`` that is not a list, a record that is not an object: a test invoke or a
mis-wired trigger) is quarantined as ``bad_envelope`` too, never raised: an asynchronous
invocation that raises is retried for nothing and then lands in the dead-letter queue.

Each quarantined message gives a ``quarantined`` log line (site, asset when known, reason)
and counts in ``QuarantinedMessages`` for its site.

Environment: ``INPUT_BUCKET`` (required), ``INPUT_PREFIX`` (``input/``),
``QUARANTINE_BUCKET`` (defaults to ``INPUT_BUCKET``), ``QUARANTINE_PREFIX``
(``quarantine/``), ``SPOOL_PREFIX`` (``spool/``), ``UPLOAD_FREQUENCY`` (``PT5M``),
``GRACE_S`` (30), ``COMPONENT_DELIMITER`` (``_``), ``TIMESTAMP_FORMAT``
(``yyyyMMddHHmmss``), ``INPUT_TZ_OFFSET`` (``+00:00``), ``KNOWN_ASSETS`` (comma-separated,
optional), ``MAX_SKEW_S`` (604800), ``DEFAULT_SITE`` (``s1``: the site whose files keep the
flat L4E names; any other site writes under ``<INPUT_PREFIX><site>/``; empty gives every
site its own folder), ``S3_ENDPOINT_URL`` (optional), and the Powertools variables.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
    KinesisStreamRecord,
)

from cloud.batcher import Batcher, BatcherConfig, ObjectStoreSpool
from cloud.handlers import settings
from cloud.handlers.observability import Metric, Observability
from cloud.l4e.naming import InputNaming, upload_frequency_seconds
from cloud.ports import ObjectStore
from edge import wire
from edge.clock import Clock, SystemClock
from edge.errors import ConfigError, PlantwatchError, StorageError, WireFormatError

log = logging.getLogger(__name__)
NOT_A_BATCH = "expected a Kinesis batch {Records: [...]} or a scheduled event without Records"
Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


def config_from_env(environ: Mapping[str, str]) -> BatcherConfig:
    known = environ.get("KNOWN_ASSETS", "").strip()
    try:
        return BatcherConfig(
            prefix=settings.prefix(environ, "INPUT_PREFIX", "input/"),
            upload_frequency_s=_upload_frequency(environ),
            grace_s=_seconds("GRACE_S", environ.get("GRACE_S", ""), 30),
            naming=InputNaming(
                delimiter=environ.get("COMPONENT_DELIMITER", "_"),
                timestamp_format=environ.get("TIMESTAMP_FORMAT", "yyyyMMddHHmmss"),
                tz_offset=environ.get("INPUT_TZ_OFFSET", "+00:00"),
            ),
            quarantine_prefix=_quarantine_prefix(environ),
            known_assets=frozenset(a.strip() for a in known.split(",") if a.strip()) or None,
            max_skew_s=_seconds("MAX_SKEW_S", environ.get("MAX_SKEW_S", ""), 7 * 24 * 3600),
            sites=settings.site_layout(environ),
        )
    except ValueError as exc:
        raise ConfigError(f"batcher environment: {exc}") from None


def _upload_frequency(environ: Mapping[str, str]) -> int:
    text = environ.get("UPLOAD_FREQUENCY", "").strip() or "PT5M"
    try:
        return upload_frequency_seconds(text)
    except ConfigError as exc:
        raise ConfigError(f"UPLOAD_FREQUENCY: {exc}") from None


def _quarantine_prefix(environ: Mapping[str, str]) -> str:
    """Never empty: every key would then count as a quarantined message."""
    value = settings.prefix(environ, "QUARANTINE_PREFIX", "quarantine/")
    if not value:
        raise ConfigError("QUARANTINE_PREFIX: must not be empty (it separates quarantine)")
    return value


def _seconds(name: str, text: str, default: float) -> float:
    text = text.strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} {text!r}: expected a number of seconds, 0 or more")
    return value


class QuarantineTap:
    """The batcher's store, except that objects under the quarantine prefix go to their own
    store (``QUARANTINE_BUCKET``) and each one written is reported."""

    def __init__(
        self,
        store: ObjectStore,
        quarantine_store: ObjectStore,
        quarantine_prefix: str,
        on_quarantined: Callable[[dict[str, Any]], None],
    ) -> None:
        self._store = store
        self._quarantine = quarantine_store
        self._prefix = quarantine_prefix
        self._report = on_quarantined

    def _for(self, key: str) -> ObjectStore:
        return self._quarantine if key.startswith(self._prefix) else self._store

    def put(self, key: str, body: bytes) -> None:
        self._for(key).put(key, body)
        if key.startswith(self._prefix):
            try:
                record = json.loads(body)
            except ValueError:
                record = {}
            self._report(record if isinstance(record, dict) else {})

    def get(self, key: str) -> bytes:
        return self._for(key).get(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        if prefix.startswith(self._prefix) or self._quarantine is self._store:
            return self._for(prefix).list(prefix)
        keys = set(self._store.list(prefix))
        if self._prefix.startswith(prefix):
            keys.update(self._quarantine.list(prefix))
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        self._for(key).delete(key)


def quarantined_origin(record: Mapping[str, Any]) -> tuple[str, str | None]:
    """``(site, asset)`` of a quarantine record: from its topic, else from its payload's
    own fields; ``unknown`` site when neither says. A payload's field counts only when it
    is a name (``NAME_RE``): the message was refused, maybe for that very field, and a
    hostile one would otherwise choose the metric dimension and event field (a path, NUL,
    kilobytes of text, a new value per message)."""
    try:
        return wire.parse_telemetry_topic(str(record.get("topic", "")))
    except WireFormatError:
        pass
    try:
        payload = json.loads(record.get("payload") or "null")
    except (ValueError, RecursionError):
        payload = None
    if isinstance(payload, dict):
        site, asset = payload.get("site"), payload.get("asset")
        return (
            site if isinstance(site, str) and wire.NAME_RE.fullmatch(site) else "unknown",
            asset if isinstance(asset, str) and wire.NAME_RE.fullmatch(asset) else None,
        )
    return "unknown", None


def kinesis_data(record: Mapping[str, Any]) -> bytes:
    """The bytes a Kinesis record carries; ValueError naming the field when it has none or
    they are not base64 (a mis-wired event source or a corrupted record)."""
    kinesis = record.get("kinesis")
    data = kinesis.get("data") if isinstance(kinesis, Mapping) else None
    if not isinstance(data, str):
        raise ValueError("kinesis.data: expected a base64 string")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("kinesis.data: expected base64") from None


def make_handler(
    store: ObjectStore,
    config: BatcherConfig,
    clock: Clock,
    spool_prefix: str = "spool/",
    *,
    quarantine_store: ObjectStore | None = None,
    observability: Observability | None = None,
) -> Handler:
    """A handler over the given adapters (tests pass moto-backed stores and a clock)."""
    obs = observability or Observability()

    def report(record: dict[str, Any]) -> None:
        site, asset = quarantined_origin(record)
        obs.event("quarantined", site=site, asset=asset, reason=record.get("reason", "unknown"))
        obs.count(Metric.QUARANTINED_MESSAGES, site)

    tap = QuarantineTap(store, quarantine_store or store, config.quarantine_prefix, report)
    spool = ObjectStoreSpool(tap, spool_prefix)
    batcher = Batcher(tap, config, clock, spool=spool)

    def set_aside(error: str, value: Any) -> None:
        """Quarantine what is not a telemetry envelope: it cannot decode on a retry either."""
        batcher.quarantine.put(
            "bad_envelope",
            error,
            json.dumps(value, default=str).encode(),
            topic="",
            client_id="n/a",
            received_at=clock.now(),
        )

    def record_handler(record: KinesisStreamRecord) -> None:
        try:
            raw = kinesis_data(record.raw_event)
        except ValueError as exc:  # base64 or shape: it cannot decode on a retry either
            set_aside(str(exc), record.raw_event.get("kinesis"))
            return
        try:
            envelope: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            envelope = None
        try:
            batcher.accept_envelope(envelope, raw)
        except StorageError as exc:
            # the store may take it on the retry; powertools logs a failed record only at
            # debug level, and the response alone shows nowhere in the log
            kinesis = record.raw_event.get("kinesis") or {}
            log.error(
                "kinesis record %s (partition key %s): not stored, retried: %s",
                kinesis.get("sequenceNumber"),
                kinesis.get("partitionKey"),
                exc,
            )
            raise
        except Exception as exc:  # it would fail the same way forever: set it aside
            topic = envelope.get("topic") if isinstance(envelope, dict) else None
            batcher.quarantine.put(
                "unprocessable",
                f"{type(exc).__name__}: {exc}",
                raw,
                topic=topic if isinstance(topic, str) else "",
                client_id="n/a",
                received_at=clock.now(),
            )

    def handle(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        spool.begin()
        try:
            if isinstance(event, Mapping) and "Records" not in event:
                return {"written": _flush(batcher)}  # the EventBridge schedule
            records = event.get("Records") if isinstance(event, Mapping) else None
            if not isinstance(records, list):
                set_aside(f"event: {NOT_A_BATCH}", event)
                return {"batchItemFailures": []}
            kinesis = []
            for index, record in enumerate(records):
                if isinstance(record, Mapping):
                    kinesis.append(record)
                else:
                    set_aside(f"Records[{index}]: expected a Kinesis record object", record)
            processor = BatchProcessor(
                event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False
            )
            with processor(records=kinesis, handler=record_handler):
                processor.process()
            spool.commit()  # a failure here fails the whole batch: Kinesis retries, dedup holds
            _flush(batcher)
            return processor.response()
        finally:
            obs.flush()

    return handle


def _flush(batcher: Batcher) -> list[str]:
    try:
        return batcher.flush_due()
    except PlantwatchError as exc:
        log.error("flush failed; the next invocation retries: %s", exc)
        return []


_handler: Handler | None = None


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point; adapters are built once per execution environment."""
    global _handler
    if _handler is None:
        environ = os.environ
        bucket = settings.required(
            environ, "INPUT_BUCKET", "the L4E input bucket", form=settings.BUCKET
        )
        quarantine = environ.get("QUARANTINE_BUCKET", "").strip() or bucket
        settings.checked("QUARANTINE_BUCKET", quarantine, settings.BUCKET)
        store = settings.bucket_store(bucket, environ)
        _handler = make_handler(
            store,
            config_from_env(environ),
            SystemClock(),
            settings.prefix(environ, "SPOOL_PREFIX", "spool/"),
            quarantine_store=store
            if quarantine == bucket
            else settings.bucket_store(quarantine, environ),
        )
    return _handler(event, context)
