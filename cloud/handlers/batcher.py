"""Lambda batcher: Kinesis records (the telemetry rule's output) -> the batcher -> S3.

AWS shape of the hop: topic rule -> Kinesis (partition key = asset) -> this function. Each
record is the project rule's envelope (``payload`` base64, ``topic``, ``clientid``); the
same :class:`~cloud.batcher.Batcher` as locally decodes, de-duplicates, quarantines and
writes the L4E input files, with its spool in the bucket (:class:`ObjectStoreSpool`).

Partial failures use powertools' BatchProcessor (``batchItemFailures``), so the event
source mapping needs ``FunctionResponseTypes: [ReportBatchItemFailures]``. A record fails
only when storage fails; malformed data is quarantined, not failed. An event without
``Records`` (EventBridge schedule, every minute) flushes due windows of idle assets.

Environment: ``INPUT_BUCKET`` (required), ``INPUT_PREFIX`` (``input/``),
``UPLOAD_FREQUENCY`` (``PT5M``), ``GRACE_S`` (30), ``COMPONENT_DELIMITER`` (``_``),
``TIMESTAMP_FORMAT`` (``yyyyMMddHHmmss``), ``INPUT_TZ_OFFSET`` (``+00:00``),
``QUARANTINE_PREFIX`` (``quarantine/``), ``SPOOL_PREFIX`` (``spool/``), ``KNOWN_ASSETS``
(comma-separated, optional), ``MAX_SKEW_S`` (604800), ``DEFAULT_SITE`` (``s1``: the site
whose files keep the flat L4E names; any other site writes under ``<INPUT_PREFIX><site>/``;
empty gives every site its own folder), ``S3_ENDPOINT_URL`` (optional).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
    KinesisStreamRecord,
)

from cloud.adapters.aws import S3ObjectStore
from cloud.batcher import Batcher, BatcherConfig, ObjectStoreSpool
from cloud.l4e.naming import InputNaming, upload_frequency_seconds
from cloud.l4e.sites import DEFAULT_SITE, SiteLayout
from cloud.ports import ObjectStore
from edge.clock import Clock, SystemClock
from edge.errors import ConfigError, PlantwatchError

log = logging.getLogger(__name__)
Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


def config_from_env(environ: Mapping[str, str]) -> BatcherConfig:
    known = environ.get("KNOWN_ASSETS", "").strip()
    try:
        return BatcherConfig(
            prefix=environ.get("INPUT_PREFIX", "input/"),
            upload_frequency_s=upload_frequency_seconds(environ.get("UPLOAD_FREQUENCY", "PT5M")),
            grace_s=float(environ.get("GRACE_S", "30")),
            naming=InputNaming(
                delimiter=environ.get("COMPONENT_DELIMITER", "_"),
                timestamp_format=environ.get("TIMESTAMP_FORMAT", "yyyyMMddHHmmss"),
                tz_offset=environ.get("INPUT_TZ_OFFSET", "+00:00"),
            ),
            quarantine_prefix=environ.get("QUARANTINE_PREFIX", "quarantine/"),
            known_assets=frozenset(a.strip() for a in known.split(",") if a.strip()) or None,
            max_skew_s=float(environ.get("MAX_SKEW_S", str(7 * 24 * 3600))),
            sites=SiteLayout(environ.get("DEFAULT_SITE", DEFAULT_SITE).strip() or None),
        )
    except ValueError as exc:
        raise ConfigError(f"batcher environment: {exc}") from None


def make_handler(
    store: ObjectStore, config: BatcherConfig, clock: Clock, spool_prefix: str = "spool/"
) -> Handler:
    """A handler over the given adapters (tests pass a moto-backed store and a clock)."""
    spool = ObjectStoreSpool(store, spool_prefix)
    batcher = Batcher(store, config, clock, spool=spool)

    def record_handler(record: KinesisStreamRecord) -> None:
        raw = record.kinesis.data_as_bytes()
        try:
            envelope: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            envelope = None
        batcher.accept_envelope(envelope, raw)

    def handle(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        spool.begin()
        if "Records" not in event:
            return {"written": _flush(batcher)}
        processor = BatchProcessor(
            event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False
        )
        with processor(records=list(event["Records"]), handler=record_handler):
            processor.process()
        spool.commit()  # a failure here fails the whole batch: Kinesis retries, dedup holds
        _flush(batcher)
        return processor.response()

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
        bucket = os.environ.get("INPUT_BUCKET")
        if not bucket:
            raise ConfigError("INPUT_BUCKET: required (the L4E input bucket)")
        store = S3ObjectStore(bucket, endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None)
        _handler = make_handler(
            store,
            config_from_env(os.environ),
            SystemClock(),
            os.environ.get("SPOOL_PREFIX", "spool/"),
        )
    return _handler(event, context)
