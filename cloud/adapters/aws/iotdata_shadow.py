"""Device Shadows in AWS IoT Core through boto3 ``iot-data``, behind the ShadowApi interface.

The CLI's ``--aws`` path: the same calls and errors as the local MQTT and SQLite clients,
so ``plantwatch shadow`` behaves alike against either side.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from cloud.shadow.client import raise_for, update_request
from cloud.shadow.document import Json, valid_version
from edge.errors import StorageError


class IotDataShadowClient:
    """boto3 ``iot-data``; pass a ready client (tests, custom endpoints) or let it build one."""

    def __init__(self, client: Any | None = None, *, region: str | None = None) -> None:
        self._client = (
            client if client is not None else boto3.client("iot-data", region_name=region)
        )

    def close(self) -> None:
        """boto3 clients hold no connection that needs closing."""

    def get(self, thing: str, name: str | None = None) -> Json:
        return self._payload(self._call("get_thing_shadow", thingName=thing, shadowName=name))

    def update(
        self,
        thing: str,
        desired: Json | None = None,
        reported: Json | None = None,
        version: int | None = None,
        name: str | None = None,
    ) -> Json:
        if version is not None and not valid_version(version):
            # AWS answers 400 Invalid version whatever the shadow holds: said without a call
            raise_for(400, f"update_thing_shadow {thing}: Invalid version {version!r}")
        body = json.dumps(update_request(desired, reported, version)).encode()
        response = self._call("update_thing_shadow", thingName=thing, shadowName=name, payload=body)
        return self._payload(response)

    def delete(self, thing: str, name: str | None = None) -> Json:
        return self._payload(self._call("delete_thing_shadow", thingName=thing, shadowName=name))

    def list_named(self, thing: str, page_size: int = 100) -> list[str]:
        """Every named shadow of *thing*, following ``nextToken`` (never the classic one)."""
        names: list[str] = []
        token: str | None = None
        while True:
            response = self._call(
                "list_named_shadows_for_thing", thingName=thing, nextToken=token, pageSize=page_size
            )
            names.extend(response.get("results", []))
            token = response.get("nextToken")
            if not token:
                return names

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        arguments = {k: v for k, v in kwargs.items() if v is not None}
        try:
            return dict(getattr(self._client, operation)(**arguments))
        except ClientError as error:
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
            message = error.response.get("Error", {}).get("Message") or str(error)
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                status = 404
            elif code == "ConflictException":
                status = 409
            raise_for(status, f"{operation} {arguments.get('thingName')}: {message}")
            raise
        except BotoCoreError as error:
            raise StorageError(f"iot-data {operation}: {error}") from error

    @staticmethod
    def _payload(response: dict[str, Any]) -> Json:
        body = response.get("payload")
        if body is None:
            return {}
        raw = body.read() if hasattr(body, "read") else body
        return dict(json.loads(raw)) if raw else {}
