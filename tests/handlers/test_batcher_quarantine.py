"""A Kinesis record that can never succeed is quarantined with its reason and never returned
in ``batchItemFailures`` (a poison record retried forever would block its shard).

The record types are the batcher's own fuzz corpus, each arriving as the telemetry rule
puts it on the stream."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_support import REGION, LambdaContext, kinesis_event
from moto import mock_aws
from unit.batcher import test_fuzz_quarantine as fuzz

from cloud.adapters.aws import S3ObjectStore
from cloud.batcher import BatcherConfig
from cloud.handlers import batcher as batcher_handler
from cloud.handlers.observability import Observability
from cloud.rules.evaluate import Message, evaluate
from cloud.rules.runner import load_rules
from edge.clock import ManualClock


@pytest.fixture
def buckets() -> Iterator[tuple[S3ObjectStore, S3ObjectStore]]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="plantwatch-input")
        client.create_bucket(Bucket="plantwatch-quarantine")
        yield (
            S3ObjectStore("plantwatch-input", client=client),
            S3ObjectStore("plantwatch-quarantine", client=client),
        )


def stream(messages: list[tuple[str, bytes]], raw: list[bytes] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """Kinesis records as the project rule writes them, plus *raw* records that are not."""
    [rule] = load_rules()
    data = []
    for topic, payload in messages:
        output = evaluate(rule.statement, Message(topic, payload, "fuzz", fuzz.T0 * 1000))
        assert output is not None, topic
        data.append(output.to_bytes())
    data += list(raw)
    records = [
        {
            "PartitionKey": "pump",
            "SequenceNumber": f"{49590000000000000000000000000 + i}",
            "Data": body,
            "ApproximateArrivalTimestamp": datetime.fromtimestamp(fuzz.T0, UTC),
        }
        for i, body in enumerate(data)
    ]
    return kinesis_event(records, "arn:aws:kinesis:us-east-1:123456789012:stream/t")


def split_handler(store: S3ObjectStore, quarantine: S3ObjectStore) -> Any:
    """The batcher function with its quarantine in its own bucket, as deployed."""
    return batcher_handler.make_handler(
        store,
        BatcherConfig(),
        ManualClock(fuzz.T0),
        quarantine_store=quarantine,
        observability=Observability(),
    )


def run(handle: Any, payload: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        response = handle(payload, LambdaContext())
    return response, [json.loads(x) for x in out.getvalue().splitlines() if x]


def test_every_fuzz_record_type_is_quarantined_never_failed(buckets) -> None:
    # GIVEN clean messages mixed with three of each malformed record type, and two records
    # that are not the rule's envelope at all
    store, quarantine = buckets
    bad = fuzz.corpus(3 * len(fuzz.MUTATORS))
    clean = fuzz.clean_messages()[:6]
    messages = clean[:3] + [(topic, payload) for _r, topic, payload in bad] + clean[3:]
    event = stream(messages, raw=[b"\xff\x00not json", b'{"topic": 5}'])
    handle = split_handler(store, quarantine)

    # WHEN one batch carries them all
    response, lines = run(handle, event)

    # THEN nothing failed, every bad record sits in the quarantine bucket under its reason
    assert response == {"batchItemFailures": []}
    expected = Counter(reason for reason, _t, _p in bad) + Counter(bad_envelope=2)
    found = Counter(key.split("/")[1] for key in quarantine.list("quarantine/"))
    assert found == expected
    assert list(store.list("quarantine/")) == []
    logged = [x for x in lines if x.get("message") == "quarantined"]
    assert Counter(x["reason"] for x in logged) == expected
    assert all(x["site"] in ("s1", "unknown") for x in logged)
    emf = [x for x in lines if "_aws" in x]
    assert all(m["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["site"]] for m in emf)
    assert {m["site"]: m["QuarantinedMessages"] for m in emf} == {
        site: [float(n)] for site, n in Counter(x["site"] for x in logged).items()
    }
    assert list(store.list("spool/pending/pump/"))  # the clean readings were kept


def test_a_record_the_batcher_cannot_handle_at_all_is_quarantined_as_unprocessable(
    buckets,
) -> None:
    # GIVEN the dedup memory of pump's first window has a shape nothing expects
    store, _quarantine = buckets
    store.put(f"spool/seen/pump/{fuzz.T0 + 300}.json", b'{"ids": 5, "last_ts_ms": 0}')
    handle = batcher_handler.make_handler(
        store, BatcherConfig(), ManualClock(fuzz.T0), observability=Observability()
    )
    # WHEN a clean message for that window arrives
    response, lines = run(handle, stream(fuzz.clean_messages()[:1]))
    # THEN it is set aside with the error, not retried forever
    assert response == {"batchItemFailures": []}
    [key] = store.list("quarantine/unprocessable/")
    record = json.loads(store.get(key))
    assert record["topic"] == "dt/plantwatch/s1/pump/telemetry"
    assert record["error"].startswith("AttributeError: ")
    assert [(x["site"], x["asset"]) for x in lines if x.get("message") == "quarantined"] == [
        ("s1", "pump")
    ]


@pytest.mark.parametrize(
    ("payload", "quarantined"),
    [
        (None, 1),
        (5, 1),
        ("Records", 1),
        ([{"kinesis": {}}], 1),
        ({"Records": None}, 1),
        ({"Records": "x"}, 1),
        ({"Records": {"kinesis": {}}}, 1),
        ({"Records": [5, "x", None]}, 3),
    ],
)
def test_an_event_that_is_not_a_kinesis_batch_is_quarantined_not_a_crash(
    buckets, payload: Any, quarantined: int
) -> None:
    # GIVEN the batcher function, invoked with something neither the Kinesis mapping nor the
    # EventBridge flush rule sends (a hand-made test invoke, a mis-wired trigger)
    store, quarantine = buckets
    handle = split_handler(store, quarantine)
    # WHEN it runs
    response, lines = run(handle, payload)
    # THEN nothing is failed for a retry that could not help: the event (or each record that
    # is not an object) is set aside as bad_envelope with its reason and a quarantined line
    assert response.get("batchItemFailures", []) == []
    keys = list(quarantine.list("quarantine/bad_envelope/"))
    assert len(keys) == quarantined
    reasons = [x["reason"] for x in lines if x.get("message") == "quarantined"]
    assert reasons == ["bad_envelope"] * quarantined
    assert all(json.loads(quarantine.get(k))["error"] for k in keys)
