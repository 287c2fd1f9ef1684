"""Two shadow backends behind one interface: the local service over MQTT, and moto's iot-data."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from cloud.shadow.client import ShadowClient
from edge.clock import ManualClock

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Outcome:
    """HTTP-style result: 200 and the response document, or the error code and its body."""

    code: int
    doc: dict[str, Any]


class Backend(Protocol):
    name: str

    def new_thing(self) -> str: ...

    def update(
        self, thing: str, payload: bytes | dict[str, Any], shadow: str | None = None
    ) -> Outcome: ...

    def get(self, thing: str, shadow: str | None = None) -> Outcome: ...

    def delete(self, thing: str, shadow: str | None = None) -> Outcome: ...

    def advance(self, seconds: int) -> None: ...


def _body(payload: bytes | dict[str, Any]) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


class LocalBackend:
    name = "local"

    def __init__(self, client: ShadowClient, clock: ManualClock) -> None:
        self._client = client
        self._clock = clock

    def new_thing(self) -> str:
        return f"conf-{uuid.uuid4().hex[:10]}"

    def _call(
        self, thing: str, shadow: str | None, op: str, payload: bytes | dict[str, Any]
    ) -> Outcome:
        token = None
        if isinstance(payload, dict) and "clientToken" in payload:
            # The request's own token, sent as it is: answers to a valid one echo it, and
            # one the service refuses is not echoed (matched by the request topic instead).
            given = payload["clientToken"]
            valid = isinstance(given, str) and len(given.encode()) <= 64
            token = given if valid else None
        elif isinstance(payload, dict):
            token = uuid.uuid4().hex
            payload = {**payload, "clientToken": token}
        accepted, doc = self._client.exchange(thing, shadow, op, _body(payload), token)
        if token is not None:
            assert doc.get("clientToken") == token
        return Outcome(200, doc) if accepted else Outcome(int(doc["code"]), doc)

    def update(
        self, thing: str, payload: bytes | dict[str, Any], shadow: str | None = None
    ) -> Outcome:
        return self._call(thing, shadow, "update", payload)

    def get(self, thing: str, shadow: str | None = None) -> Outcome:
        return self._call(thing, shadow, "get", {})

    def delete(self, thing: str, shadow: str | None = None) -> Outcome:
        return self._call(thing, shadow, "delete", {})

    def advance(self, seconds: int) -> None:
        self._clock.advance(seconds)


class MotoBackend:
    name = "moto"

    def __init__(self, iot: Any, data: Any) -> None:
        self._iot = iot
        self._data = data

    def new_thing(self) -> str:
        name = f"conf-{uuid.uuid4().hex[:10]}"
        self._iot.create_thing(thingName=name)
        return name

    def _call(self, action: Callable[..., Any], **kwargs: Any) -> Outcome:
        from botocore.exceptions import ClientError

        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        try:
            response = action(**kwargs)
        except ClientError as error:
            return Outcome(
                int(error.response["ResponseMetadata"]["HTTPStatusCode"]),
                {"message": error.response["Error"].get("Message", "")},
            )
        return Outcome(200, json.loads(response["payload"].read()))

    def update(
        self, thing: str, payload: bytes | dict[str, Any], shadow: str | None = None
    ) -> Outcome:
        return self._call(
            self._data.update_thing_shadow,
            thingName=thing,
            payload=_body(payload),
            shadowName=shadow,
        )

    def get(self, thing: str, shadow: str | None = None) -> Outcome:
        return self._call(self._data.get_thing_shadow, thingName=thing, shadowName=shadow)

    def delete(self, thing: str, shadow: str | None = None) -> Outcome:
        return self._call(self._data.delete_thing_shadow, thingName=thing, shadowName=shadow)

    def advance(self, seconds: int) -> None:
        """moto stamps with the wall clock, so its time can only pass for real."""
        time.sleep(seconds)


def local_iot_data(rest_url: str) -> Any:
    """boto3 ``iot-data`` for the local service's REST face; a 429 is seen, not retried."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "iot-data",
        endpoint_url=rest_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1}),
    )


class RestBackend(MotoBackend):
    """boto3 ``iot-data`` against the local service's REST face (no thing registry)."""

    name = "rest"

    def __init__(self, data: Any, clock: ManualClock) -> None:
        super().__init__(None, data)
        self._clock = clock

    def new_thing(self) -> str:
        return f"conf-{uuid.uuid4().hex[:10]}"

    def advance(self, seconds: int) -> None:
        self._clock.advance(seconds)


def moto_deviation(reason: str) -> Callable[[F], F]:
    def mark(test: F) -> F:
        test._moto_deviation = reason  # type: ignore[attr-defined]
        return test

    return mark
