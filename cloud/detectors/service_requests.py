"""What an AWS-only detector action would send, as the IoT Events docs describe each action.

plantwatch records ``lambda`` (without a local callable), ``sqs``, ``firehose``,
``dynamoDB``, ``dynamoDBv2`` and ``iotSiteWise`` actions instead of performing them
(:mod:`cloud.detectors.actions`). :func:`service_request` says what the service would have
received, in the parameter names of its API, so a record shows the bytes and the columns
AWS would write, not only the action's fields (iotevents-contracts §4; API reference
SqsAction, FirehoseAction, DynamoDBAction, DynamoDBv2Action, IotSiteWiseAction):

- ``sqs``: the payload as the message body, base64 encoded when ``useBase64`` is true
  (false by default);
- ``firehose``: the payload followed by ``separator`` (nothing when none is given);
- ``dynamoDB``: ``operation`` ``INSERT`` (default), ``UPDATE`` or ``DELETE`` of the item
  whose hash key (and range key, when given) is typed by ``hashKeyType``/``rangeKeyType``,
  ``STRING`` by default; the payload goes to the ``payloadField`` column (``payload`` by
  default), a STRING payload as binary to ``<payloadField>_raw``;
- ``dynamoDBv2``: one column per top-level key of the payload, which must be an object;
- ``lambda``: the payload is the invocation's event;
- ``iotSiteWise``: one entry of ``BatchPutAssetPropertyValue``; a value without a
  timestamp takes the event time.

Values are plain JSON: a NUMBER key as a number, binary as base64 text. The text of a
DEFAULT or JSON payload is its compact JSON. Pure: no AWS client is imported here.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

from cloud.detectors import expr as ex
from cloud.detectors.engine import ActionRequest

SITEWISE_VARIANTS = ("stringValue", "integerValue", "doubleValue", "booleanValue")
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,38}")
"""A DynamoDB number holds up to 38 significant digits."""


class ServiceRequestError(ValueError):
    """AWS would refuse the action as evaluated; the message names the field and why."""


def service_request(request: ActionRequest) -> dict[str, Any]:
    """The request the service would receive for *request*, an AWS-only action."""
    try:
        return _service_request(request)
    except KeyError as exc:
        # the model loader requires these fields: only a request made elsewhere lacks one
        raise ServiceRequestError(f"{exc.args[0]}: required by a {request.kind} action") from None


def _service_request(request: ActionRequest) -> dict[str, Any]:
    target = request.target
    if request.kind == "sqs":
        body = payload_text(request)
        if target.get("useBase64") is True:
            body = base64.b64encode(body.encode()).decode()
        return {"QueueUrl": target["queueUrl"], "MessageBody": body}
    if request.kind == "firehose":
        data = payload_text(request) + str(target.get("separator") or "")
        return {"DeliveryStreamName": target["deliveryStreamName"], "Record": {"Data": data}}
    if request.kind == "lambda":
        return {"FunctionName": target["functionArn"], "Payload": payload_text(request)}
    if request.kind == "dynamoDB":
        return _dynamodb(request)
    if request.kind == "dynamoDBv2":
        if not isinstance(request.payload, Mapping):
            raise ServiceRequestError(
                "payload: a dynamoDBv2 payload must be a JSON object (one column per key),"
                f" not {_json_kind(request.payload)}"
            )
        return {"TableName": target["tableName"], "Item": dict(request.payload)}
    if request.kind == "iotSiteWise":
        return {"entries": [_sitewise_entry(request)]}
    raise ServiceRequestError(f"{request.kind}: not an AWS-only action")


def payload_text(request: ActionRequest) -> str:
    """The payload as the service receives it: a STRING payload as it is, else compact JSON."""
    if isinstance(request.payload, str) and request.payload_type == "STRING":
        return request.payload
    return json.dumps(request.payload, separators=(",", ":"), allow_nan=False)


def _dynamodb(request: ActionRequest) -> dict[str, Any]:
    target = request.target
    key = {
        str(target["hashKeyField"]): _key_value(
            "hashKeyValue", target["hashKeyValue"], target.get("hashKeyType")
        )
    }
    if target.get("rangeKeyField") is not None:
        if target.get("rangeKeyValue") is None:
            raise ServiceRequestError("rangeKeyValue: required with rangeKeyField")
        key[str(target["rangeKeyField"])] = _key_value(
            "rangeKeyValue", target["rangeKeyValue"], target.get("rangeKeyType")
        )
    operation = str(target.get("operation") or "INSERT")
    out: dict[str, Any] = {"TableName": target["tableName"], "operation": operation, "Key": key}
    if operation == "DELETE":
        return out
    column = str(target.get("payloadField") or "payload")
    if request.payload_type == "STRING":
        value: Any = base64.b64encode(payload_text(request).encode()).decode()
        column += "_raw"
    else:
        value = request.payload
    out["Item"] = {**key, column: value}
    return out


def _key_value(field: str, value: Any, key_type: Any) -> Any:
    """A key as its type stores it: ``STRING`` (the default) as text, ``NUMBER`` a number."""
    if (key_type or "STRING") == "STRING":
        return value if isinstance(value, str) else ex.format_value(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        return int(value.strip())  # exactly: a long id would lose digits as a double
    number = ex.decimal_text(value) if isinstance(value, str) else None
    if number is None:
        raise ServiceRequestError(
            f"{field}: {ex.format_value(value)[:40]!r} is not a NUMBER, as its key type says"
        )
    return number


def _sitewise_entry(request: ActionRequest) -> dict[str, Any]:
    target = request.target
    entry: dict[str, Any] = {
        name: target[name]
        for name in ("entryId", "assetId", "propertyId", "propertyAlias")
        if target.get(name) is not None
    }
    variants = {
        name: target[f"propertyValue.value.{name}"]
        for name in SITEWISE_VARIANTS
        if f"propertyValue.value.{name}" in target
    }
    seconds = target.get("propertyValue.timestamp.timeInSeconds")
    if seconds is None:
        seconds, millis = divmod(request.event_time_ms, 1000)
        nanos = millis * 1_000_000
    else:
        nanos = target.get("propertyValue.timestamp.offsetInNanos", 0)
    value: dict[str, Any] = {
        "value": variants,
        "timestamp": {"timeInSeconds": seconds, "offsetInNanos": nanos},
    }
    if target.get("propertyValue.quality") is not None:
        value["quality"] = target["propertyValue.quality"]
    entry["propertyValues"] = [value]
    return entry


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return ex.type_name(value)
