"""Lambda detector: an S3 ``ObjectCreated`` event for a ``results.jsonl`` -> the results
feeder -> the detector engine and the alarm engines on DynamoDB -> SNS alerts and iot-data
shadow commands.

Idempotent: each object is processed under Powertools idempotency keyed on its bucket, key
and ETag, so a redelivered event changes nothing (the stored result is returned). Beneath
that, the feeder's per-object progress in the state table feeds only rows not fed yet, so
a rewritten object (new ETag) feeds only its new rows.

A duplicate that arrives while the first delivery is still being handled, and an
idempotency table that cannot be read or written, fail the invocation with a StorageError
saying which (Lambda retries it, then its dead-letter queue keeps it); nothing is fed twice.
An object that fails (S3 or the state table throttled past the SDK's retries) does not stop
the event's others: they are fed, each failure gets an error line naming its object, and
then the invocation fails with the first, so Lambda retries the whole event and finds the
fed objects done.

Anything else the function is sent feeds nothing and gives a ``skipped`` line with its
reason (and bucket and key where it names them): S3's ``s3:TestEvent``, a record that is
not an ``ObjectCreated:*`` one (a deletion announces nothing to feed), a key that is not a
``results.jsonl``, an event that is not an S3 notification. The notification's filters
send none of these, so a line means the configuration is not what the stack deploys.

Environment: ``OUTPUT_PREFIX`` (``output/``), ``STATE_TABLE``, ``IDEMPOTENCY_TABLE``,
``ALERTS_TOPIC_ARN``, ``ARTIFACTS_BUCKET`` and ``DETECTOR_MODEL_KEY`` (optional: the bundled
model), ``ALARM_MODEL_KEYS`` (optional: the bundled companion alarm model),
``IOT_DATA_ENDPOINT`` (optional), ``DEFAULT_SITE`` (``s1``), and Powertools'
``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``, ``LOG_LEVEL``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    BaseError as IdempotencyError,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from cloud.detectors import DetectorModel, InputDefinition
from cloud.detectors.alarms import AlarmModel
from cloud.feeder import RESULTS_FILE, ResultsFeeder
from cloud.handlers import settings
from cloud.handlers.detection import build_engines, detector_adapters
from cloud.handlers.observability import Metric, Observability
from cloud.l4e.sites import SiteLayout
from cloud.ports import Notifier, ObjectStore, Publisher, StateStore
from edge.clock import Clock, SystemClock
from edge.errors import NotFoundError, StorageError

log = logging.getLogger(__name__)
Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]
CREATED = "ObjectCreated:"
TEST_EVENT = "s3:TestEvent"
IDEMPOTENCY_TTL_S = 24 * 3600
"""How long a processed (bucket, key, ETag) is remembered; S3 redelivers within minutes."""


def s3_object(record: Mapping[str, Any]) -> dict[str, str] | None:
    """``{bucket, key, etag}`` of a results object from one S3 event record, else None."""
    return s3_record(record)[0]


def s3_record(record: Any) -> tuple[dict[str, str] | None, dict[str, Any]]:
    """The results object one S3 event record announces, or None and what the ``skipped``
    line says of it (its bucket and key where it names them, and why)."""
    s3 = record.get("s3") if isinstance(record, Mapping) else None
    if not isinstance(s3, Mapping):
        return None, {"reason": "not an S3 event record"}
    bucket_doc, obj = s3.get("bucket"), s3.get("object")
    if not isinstance(bucket_doc, Mapping) or not isinstance(obj, Mapping):
        return None, {"reason": "not an S3 event record"}
    bucket, key = bucket_doc.get("name"), obj.get("key")
    if not isinstance(bucket, str) or not isinstance(key, str):
        return None, {"reason": "not an S3 event record"}
    key = unquote_plus(key)  # S3 event keys are URL-encoded
    where = {"bucket": bucket, "key": key}
    name = record.get("eventName")
    if isinstance(name, str) and not name.startswith(CREATED):
        return None, {**where, "reason": f"{name}: not an object creation"}
    if not key.endswith(RESULTS_FILE):
        return None, {**where, "reason": f"not a {RESULTS_FILE} key"}
    return {"bucket": bucket, "key": key, "etag": str(obj.get("eTag") or obj.get("etag") or "")}, {}


def event_records(event: Any) -> tuple[list[Any], dict[str, Any] | None]:
    """The records of an S3 notification, or none and what the ``skipped`` line says: S3's
    ``s3:TestEvent`` (sent when the notification is configured) or something else."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if isinstance(records, list):
        return records, None
    if isinstance(event, Mapping) and event.get("Event") == TEST_EVENT:
        bucket = event.get("Bucket")
        return [], {"bucket": bucket if isinstance(bucket, str) else None, "reason": TEST_EVENT}
    return [], {"reason": "not an S3 event: no Records list"}


class _ObjectGone(Exception):
    """The results object of an event no longer exists."""


def results_origin(key: str, prefix: str, sites: SiteLayout) -> tuple[str, str | None]:
    """``(site, asset)`` a results key names (``<prefix>[<site>/]<asset>/<start>/...``),
    as far as it names them; ``unknown`` site otherwise."""
    parts = key[len(prefix) :].split("/") if key.startswith(prefix) else []
    if len(parts) == 4:
        return parts[0], parts[1]
    if len(parts) == 3:
        return sites.default_site or "unknown", parts[0]
    return "unknown", None


def make_handler(
    *,
    open_store: Callable[[str], ObjectStore],
    prefix: str,
    state: StateStore,
    notifier: Notifier,
    publisher: Publisher,
    model: DetectorModel,
    inputs: Sequence[InputDefinition],
    observability: Observability,
    sites: SiteLayout,
    target: str,
    persistence: BasePersistenceLayer | None,
    clock: Clock | None = None,
    alarm_models: Sequence[AlarmModel] = (),
) -> Handler:
    """A handler over the given adapters; ``persistence=None`` turns idempotency off (only
    for tests of what lies beneath it)."""
    config = IdempotencyConfig(
        expires_after_seconds=IDEMPOTENCY_TTL_S, raise_on_no_idempotency_key=True
    )

    def process(obj: dict[str, str]) -> dict[str, Any]:
        engines = build_engines(
            model,
            inputs,
            state,
            clock or SystemClock(),
            notifier,
            publisher,
            observability,
            sites=sites,
            target=target,
            preload=False,
            alarm_models=alarm_models,
        )
        feeder = ResultsFeeder(
            open_store(obj["bucket"]),
            prefix,
            engines.router,
            state,
            sites=sites,
            on_quarantined=report_quarantined,
        )
        try:
            fed = feeder.feed(obj["key"])
        except NotFoundError:
            # raised, not returned: the idempotency record goes, so an object put again
            # under this key with the same ETag is still fed
            raise _ObjectGone from None
        engines.close()
        return {**obj, "rows_fed": fed}

    def report_quarantined(key: str, line: int, reason: str) -> None:
        site, asset = results_origin(key, prefix, sites)
        where = f"{key} line {line}" if line else key
        observability.event("quarantined", site=site, asset=asset, reason=f"{where}: {reason}")
        observability.count(Metric.QUARANTINED_MESSAGES, site)

    once = (
        process
        if persistence is None
        else idempotent_function(
            data_keyword_argument="obj", persistence_store=persistence, config=config
        )(process)
    )

    def feed_once(obj: dict[str, str]) -> dict[str, Any]:
        """*obj* fed at most once; the idempotency layer's own failures as StorageError."""
        try:
            return once(obj=obj)
        except IdempotencyAlreadyInProgressError as exc:
            # S3 delivers at least once: a duplicate may arrive while the first is still
            # being handled; failing it lets Lambda retry once that one ends
            raise StorageError(
                f"s3://{obj['bucket']}/{obj['key']}: its event is being handled by "
                "another invocation; retried later"
            ) from exc
        except IdempotencyError as exc:
            table = getattr(persistence, "table_name", None)
            raise StorageError(f"idempotency table {table!r}: {exc}") from exc

    def skipped(what: Mapping[str, Any]) -> None:
        observability.event(
            "skipped", bucket=what.get("bucket"), key=what.get("key"), reason=what["reason"]
        )

    def handle(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            config.register_lambda_context(context)
        done: list[dict[str, Any]] = []
        failures: list[Exception] = []
        try:
            records, not_s3 = event_records(event)
            if not_s3 is not None:
                skipped(not_s3)
            for index, record in enumerate(records):
                obj, skip = s3_record(record)
                if obj is None:
                    if "key" not in skip:
                        skip["reason"] = f"Records[{index}]: {skip['reason']}"
                    skipped(skip)
                    continue
                try:
                    done.append(feed_once(obj))
                except _ObjectGone:
                    # deleted after the event was sent: no retry could read it
                    reason = "object not found"
                    observability.event(
                        "skipped", bucket=obj["bucket"], key=obj["key"], reason=reason
                    )
                    done.append({**obj, "rows_fed": 0, "skipped": reason})
                except Exception as exc:
                    # the event's other objects are still fed: the retry (the whole event,
                    # again) finds them done, and one that fails every attempt does not take
                    # them to the dead-letter queue with it
                    log.error("s3://%s/%s: not fed, retried: %s", obj["bucket"], obj["key"], exc)
                    failures.append(exc)
        finally:
            observability.flush()
        if failures:
            raise failures[0]
        return {"objects": done}

    return handle


_handler: Handler | None = None


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point; adapters and the detector model are built once per environment."""
    global _handler
    if _handler is None:
        environ = os.environ
        stores: dict[str, ObjectStore] = {}

        def open_store(bucket: str) -> ObjectStore:
            """One client per bucket per environment: building a boto3 client takes longer
            than reading a results object."""
            if bucket not in stores:
                stores[bucket] = settings.bucket_store(bucket, environ)
            return stores[bucket]

        _handler = make_handler(
            **detector_adapters(environ),
            open_store=open_store,
            prefix=settings.prefix(environ, "OUTPUT_PREFIX", "output/"),
            persistence=DynamoDBPersistenceLayer(
                table_name=settings.required(
                    environ,
                    "IDEMPOTENCY_TABLE",
                    "the Powertools idempotency table",
                    form=settings.TABLE,
                )
            ),
        )
    return _handler(event, context)
