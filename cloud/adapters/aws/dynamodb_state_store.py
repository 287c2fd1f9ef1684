"""The StateStore port on one DynamoDB table: detector instances, schedulers, executions.

Table shape (the CDK app creates it): partition key ``namespace`` (S), sort key ``key`` (S;
``""`` is stored as ``~``, see :func:`sort_key`),
the document as a JSON string in ``doc``, a numeric ``version`` raised by every write, and
the TTL attribute ``expires_at`` (epoch seconds) on namespaces given a retention.

The document is stored as one JSON string rather than as a DynamoDB map: it round-trips
exactly what the local SQLite store keeps (floats stay floats, no ``Decimal``), and nothing
queries inside it. Conditional writes use ``ConditionExpression`` on ``version``, so two
Lambdas updating one detector instance cannot overwrite each other; the loser gets
``VersionConflictError`` and re-reads.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from cloud.ports import Versioned
from edge.errors import StorageError, VersionConflictError

if TYPE_CHECKING:
    DynamoDBClient = Any

log = logging.getLogger(__name__)
MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item size limit: attribute names and values together (DynamoDB constraints,
"Items"; 1 KB = 1024 bytes). Over it every write fails with a ValidationException, so the
store refuses before sending and says by how much."""
_NAMES = {"#ns": "namespace", "#k": "key", "#d": "doc", "#v": "version", "#x": "expires_at"}


class DynamoDbStateStore:
    """*retention* maps a namespace prefix to seconds: documents written under it get
    ``expires_at = now + seconds``, so DynamoDB TTL removes progress records that would
    otherwise grow without bound (one per results object). The longest matching prefix wins.
    """

    def __init__(
        self,
        table: str,
        client: DynamoDBClient | None = None,
        *,
        retention: Mapping[str, float] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self._db = client if client is not None else boto3.client("dynamodb")
        self._retention = sorted((retention or {}).items(), key=lambda kv: -len(kv[0]))
        self._now = now

    # ---- StateStore ---------------------------------------------------------------------

    def get(self, namespace: str, key: str) -> dict[str, Any] | None:
        found = self.get_versioned(namespace, key)
        return None if found is None else found.value

    def put(self, namespace: str, key: str, value: Mapping[str, Any]) -> None:
        self._write(namespace, key, value, condition=None, version=None)

    def delete(self, namespace: str, key: str) -> None:
        try:
            self._db.delete_item(TableName=self.table, Key=_key(namespace, key))
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"{self._where(namespace, key)}: delete failed: {exc}") from exc

    def delete_if_version(self, namespace: str, key: str, version: int) -> None:
        self._conditional(
            lambda: self._db.delete_item(
                TableName=self.table,
                Key=_key(namespace, key),
                ConditionExpression="#v = :expected",  # false for an absent item too
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":expected": {"N": str(version)}},
            ),
            namespace,
            key,
            version,
            "delete",
        )

    def items(self, namespace: str) -> Iterator[tuple[str, dict[str, Any]]]:
        return iter([(k, v.value) for k, v in self.items_versioned(namespace)])

    def get_versioned(self, namespace: str, key: str) -> Versioned | None:
        try:
            response = self._db.get_item(
                TableName=self.table,
                Key=_key(namespace, key),
                ConsistentRead=True,
                ProjectionExpression="#d, #v",
                ExpressionAttributeNames={"#d": "doc", "#v": "version"},
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"{self._where(namespace, key)}: get failed: {exc}") from exc
        item = response.get("Item")
        return None if item is None else self._versioned(namespace, key, item)

    def put_if_version(
        self, namespace: str, key: str, value: Mapping[str, Any], version: int | None
    ) -> int:
        if version is None:
            return self._write(
                namespace, key, value, condition="attribute_not_exists(#k)", version=None
            )
        return self._write(namespace, key, value, condition="#v = :expected", version=version)

    def items_versioned(self, namespace: str) -> Iterator[tuple[str, Versioned]]:
        found: list[tuple[str, Versioned]] = []
        try:
            pages = self._db.get_paginator("query").paginate(
                TableName=self.table,
                KeyConditionExpression="#ns = :ns",
                ExpressionAttributeNames={"#ns": "namespace"},
                ExpressionAttributeValues={":ns": {"S": namespace}},
                ConsistentRead=True,
            )
            for page in pages:
                for item in page.get("Items", ()):
                    key = stored_key_of(item["key"]["S"])
                    try:
                        found.append((key, self._versioned(namespace, key, item)))
                    except StorageError as exc:
                        # one corrupt item must not stop every reader of the namespace (the
                        # timers of a whole fleet); it stays in the table, named in the log
                        log.error("%s; left out of the listing", exc)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"dynamodb://{self.table}/{namespace}: query failed: {exc}") from exc
        found.sort(key=lambda kv: kv[0])
        return iter(found)

    # ---- helpers ------------------------------------------------------------------------

    def _write(
        self,
        namespace: str,
        key: str,
        value: Mapping[str, Any],
        *,
        condition: str | None,
        version: int | None,
    ) -> int:
        values: dict[str, Any] = {
            ":d": {"S": json.dumps(value, separators=(",", ":"), sort_keys=True)},
            ":one": {"N": "1"},
        }
        if condition is None:
            update = "SET #d = :d, #v = if_not_exists(#v, :zero) + :one"
            values[":zero"] = {"N": "0"}
        elif version is None:
            update = "SET #d = :d, #v = :one"
        else:
            update = "SET #d = :d, #v = :expected + :one"
            values[":expected"] = {"N": str(version)}
        keep = self._keep_for(namespace)
        if keep is not None:
            update += ", #x = :x"
            values[":x"] = {"N": str(int(self._now() + keep))}
        self._check_size(namespace, key, values)
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "Key": _key(namespace, key),
            "UpdateExpression": update,
            "ExpressionAttributeNames": _names(update, condition),
            "ExpressionAttributeValues": values,
            "ReturnValues": "UPDATED_NEW",
        }
        if condition is not None:
            arguments["ConditionExpression"] = condition
        response = self._conditional(
            lambda: self._db.update_item(**arguments), namespace, key, version, "put"
        )
        return int(response["Attributes"]["version"]["N"])

    def _conditional(
        self, request: Callable[[], Any], namespace: str, key: str, version: int | None, verb: str
    ) -> Any:
        """*request*'s response; its failed condition as VersionConflictError, any other
        failure as StorageError naming the item."""
        try:
            return request()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise VersionConflictError(namespace, key, version) from exc
            raise StorageError(f"{self._where(namespace, key)}: {verb} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{self._where(namespace, key)}: {verb} failed: {exc}") from exc

    def _check_size(self, namespace: str, key: str, values: Mapping[str, Any]) -> None:
        """StorageError when the item would pass :data:`MAX_ITEM_BYTES`: an upper bound
        (names, key and document as UTF-8, each number as at most 21 bytes)."""
        size = sum(len(n) for n in _NAMES.values()) + len((namespace + sort_key(key)).encode())
        size += len(values[":d"]["S"].encode()) + 21 * 2
        if size > MAX_ITEM_BYTES:
            raise StorageError(
                f"{self._where(namespace, key)}: not written: the item would be about {size:,}"
                f" bytes; a DynamoDB item holds at most {MAX_ITEM_BYTES:,} (400 KB)"
            )

    def _keep_for(self, namespace: str) -> float | None:
        for prefix, seconds in self._retention:
            if namespace.startswith(prefix):
                return seconds
        return None

    def _versioned(self, namespace: str, key: str, item: Mapping[str, Any]) -> Versioned:
        try:
            doc = json.loads(item["doc"]["S"])
            if not isinstance(doc, dict):
                raise TypeError(f"doc is a JSON {type(doc).__name__}, not an object")
            return Versioned(doc, int(item["version"]["N"]))
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            raise StorageError(
                f"{self._where(namespace, key)}: not a plantwatch state item ({exc})"
            ) from exc

    def _where(self, namespace: str, key: str) -> str:
        return f"dynamodb://{self.table}/{namespace}/{key}"


def _key(namespace: str, key: str) -> dict[str, Any]:
    return {"namespace": {"S": namespace}, "key": {"S": sort_key(key)}}


ESCAPE = "~"


def sort_key(key: str) -> str:
    """The sort key a state *key* is stored under. DynamoDB refuses an empty string in a key
    attribute (ValidationException on every read and write; empty values are allowed only
    in non-key attributes), and the one instance of a detector or alarm model without a
    ``key`` is kept under ``""``. So ``""`` is stored as ``~`` and a key that starts with
    ``~`` gets one more in front; every other key is stored as it is."""
    return ESCAPE + key if not key or key.startswith(ESCAPE) else key


def stored_key_of(stored: str) -> str:
    """The state key of a stored sort key (inverse of :func:`sort_key`)."""
    return stored[len(ESCAPE) :] if stored.startswith(ESCAPE) else stored


def _names(*expressions: str | None) -> dict[str, str]:
    """Only the placeholders an expression uses: DynamoDB rejects unused names."""
    text = " ".join(e for e in expressions if e)
    return {k: v for k, v in _NAMES.items() if k in text}
