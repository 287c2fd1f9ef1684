"""Helpers for tests of the AWS path under moto: tables as the CDK app declares them,
DynamoDB's per-request atomicity, Kinesis records as Lambda receives them, and what moto
recorded of SNS and iot-data publishes."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iotdata.models import iotdata_backends
from moto.sns.models import sns_backends

REGION = "us-east-1"


def table_resource(keys: list[tuple[str, str]]) -> dict[str, Any]:
    """A CloudFormation DynamoDB table with string *keys* (name, HASH/RANGE), for templates
    that stand in for the deployed stack."""
    return {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": n, "KeyType": t} for n, t in keys],
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n, _ in keys],
        },
    }


def create_state_table(client: Any, name: str) -> None:
    """The state table: pk ``namespace``, sk ``key``, TTL on ``expires_at``."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "namespace", "KeyType": "HASH"},
            {"AttributeName": "key", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "namespace", "AttributeType": "S"},
            {"AttributeName": "key", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )


def create_idempotency_table(client: Any, name: str) -> None:
    """Powertools' idempotency table: pk ``id``, TTL on ``expiration``."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
    )


class AtomicRequests:
    """A boto3 client whose requests run one at a time.

    DynamoDB applies each request atomically (a conditional update checks and writes in one
    step); moto 5 does not when requests arrive on several threads at once, and lets two
    writers of one version both succeed. Serialising requests restores the service's
    guarantee without hiding any interleaving *between* requests, which is what concurrency
    tests exercise.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if name == "get_paginator":
            return lambda operation: _AtomicPaginator(call(operation), self._lock)
        if not callable(call):
            return call

        def atomic(*args: Any, **kwargs: Any) -> Any:
            refuse_empty_key_attributes(name, kwargs)
            with self._lock:
                return call(*args, **kwargs)

        return atomic


STATE_KEY_ATTRIBUTES = ("namespace", "key")


def refuse_empty_key_attributes(operation: str, request: dict[str, Any]) -> None:
    """DynamoDB refuses an empty string in a key attribute (partition or sort key; empty
    values are allowed only in non-key attributes since May 2020); moto 5 stores it. Raised
    here as DynamoDB answers it, for the state table's keys and any ``Key`` argument."""
    values = dict(request.get("Key") or {})
    item = request.get("Item") or {}
    values.update({k: item[k] for k in STATE_KEY_ATTRIBUTES if k in item})
    for name, value in values.items():
        if value == {"S": ""}:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationException",
                        "Message": "One or more parameter values are not valid. The "
                        "AttributeValue for a key attribute cannot contain an empty string "
                        f"value. Key: {name}",
                    },
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                operation,
            )


class _AtomicPaginator:
    """A paginator whose page requests take :class:`AtomicRequests`' lock: a query page read
    while moto is half-way through an ``update_item`` on another thread sees an item with
    its key and version but no document, which DynamoDB never shows."""

    def __init__(self, paginator: Any, lock: threading.Lock) -> None:
        self._paginator = paginator
        self._lock = lock

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        pages = iter(self._paginator.paginate(**kwargs))
        while True:
            with self._lock:
                page = next(pages, None)
            if page is None:
                return
            yield page


def kinesis_event(records: list[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """A Lambda Kinesis event from ``get_records`` output, as the event source mapping
    delivers it (data base64, sequence number, partition key)."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode("ascii"),
                    "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{r['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/plantwatch-batcher",
                "awsRegion": REGION,
                "eventSourceARN": stream_arn,
            }
            for r in records
        ]
    }


def sns_sent(topic_arn: str) -> list[tuple[str, str | None, dict[str, str]]]:
    """``(message, subject, {attribute: value})`` of every publish to the topic."""
    topic = sns_backends[DEFAULT_ACCOUNT_ID][REGION].topics[topic_arn]
    return [
        (message, subject, {k: v["Value"] for k, v in (attributes or {}).items()})
        for _id, message, subject, attributes, _group in topic.sent_notifications
    ]


def iot_published() -> list[tuple[str, bytes]]:
    """Every iot-data Publish moto received: ``(topic, payload)``."""
    return list(iotdata_backends[DEFAULT_ACCOUNT_ID][REGION].published_payloads)


class LambdaContext:
    """The attributes Lambda's context object has that handlers and Powertools read."""

    function_name = "plantwatch-test"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:plantwatch-test"
    memory_limit_in_mb = 512
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name = "/aws/lambda/plantwatch-test"
    log_stream_name = "2026/01/05/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000
