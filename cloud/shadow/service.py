"""The local Device Shadow service: an MQTT client of the broker that answers AWS's
reserved shadow topics, so awsiotsdk devices and detector actions work unchanged.

Requests are queued by the network thread and answered, in arrival order, by one worker,
which is what makes the in-flight limit observable: a burst from one thing queues up and
the eleventh waiting request is refused with 429.

No request can stop the service: the network thread checks the size and the names before
anything is parsed or counted against a thing (413 and 400 answer at once), the queue
across all things is bounded (429 when full), every parse failure of a body is an AWS
error document, and every paho callback is guarded. ``counts`` says what was refused and
why.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from cloud.adapters.local.mqtt_url import guard_callbacks, no_delay, parse_broker_url
from cloud.shadow.document import (
    MAX_PAYLOAD_BYTES,
    OPERATIONS,
    Json,
    ShadowError,
    encode_answer,
    lenient_token,
    parse_payload,
    parse_request_topic,
    validate_names,
)
from cloud.shadow.limits import ThingLimiter
from cloud.shadow.operations import ShadowOperations
from cloud.shadow.store import ShadowStore
from edge.clock import Clock
from edge.errors import PlantwatchError
from edge.wire import shadow_topic

log = logging.getLogger(__name__)

REQUEST_FILTERS = [shadow_topic("+", op) for op in OPERATIONS] + [
    shadow_topic("+", op, "+") for op in OPERATIONS
]
"""Classic and named request topics of every thing; never ``shadow/#`` (AWS adds topics)."""
RESPONSE_QOS = 1
MAX_QUEUED = 1_000
"""Requests waiting for the worker, summed over every thing; beyond it a request gets 429."""


@dataclass(frozen=True, slots=True)
class Request:
    thing: str
    name: str | None
    operation: str
    payload: bytes
    limited: bool
    reply: Future[Json] | None = None
    """Set for a REST request: the worker hands it the answer instead of ``/rejected``."""


class ShadowService:
    """Answers get/update/delete for classic and named shadows; documents live in SQLite."""

    def __init__(
        self,
        broker_url: str,
        db_path: str,
        clock: Clock,
        *,
        limits: bool = True,
        client_id: str | None = None,
        max_queued: int = MAX_QUEUED,
        rest_port: int | None = None,
        rest_host: str = "127.0.0.1",
    ) -> None:
        """*rest_port* also serves boto3 ``iot-data`` over HTTP on *rest_host* (0 picks a
        free port; ``rest_url`` names it once started); None serves MQTT only."""
        address = parse_broker_url(broker_url)
        self._host, self._port = address.host, address.port
        self.broker_url = address.url
        self._clock = clock
        self._store = ShadowStore(db_path)
        self.operations = ShadowOperations(self._store, clock)
        self.limiter = ThingLimiter(clock) if limits else None
        self._queue: queue.Queue[Request | None] = queue.Queue(maxsize=max_queued)
        self._worker: threading.Thread | None = None
        self._subscribed = threading.Event()
        self._rest_address = None if rest_port is None else (rest_host, rest_port)
        self._rest: Any = None
        self.rest_url: str | None = None
        self.counts: Counter[str] = Counter()
        """Answered requests by outcome (``accepted``, ``rejected_<code>``), messages on
        other topics (``ignored``), replayed retained requests (``ignored_retained``),
        answers past the MQTT limit left unpublished (``answers_too_large``) and guarded
        callback failures (``callback_errors``)."""
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"plantwatch-shadow-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311,
        )
        address.apply(self._client)
        self._client.max_inflight_messages_set(100)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(0.1, 2.0)
        no_delay(self._client)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        guard_callbacks(self._client, self.counts, log, "shadow service")

    def start(self, timeout: float = 10.0) -> ShadowService:
        self._worker = threading.Thread(target=self._work, name="shadow-service", daemon=True)
        self._worker.start()
        try:
            self._client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            self.stop()
            raise PlantwatchError(f"shadow service: cannot reach {self.broker_url}: {exc}") from exc
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise PlantwatchError(
                f"shadow service: no subscription on {self.broker_url} within {timeout:.0f} s"
            )
        if self._rest_address is not None:
            from cloud.shadow.rest import ShadowRestServer

            try:
                self._rest = ShadowRestServer(self, *self._rest_address).start()
            except OSError as exc:
                self.stop()
                raise PlantwatchError(
                    f"shadow service: cannot serve REST on {self._rest_address}: {exc}"
                ) from exc
            self.rest_url = self._rest.url
        return self

    def stop(self) -> None:
        if self._rest is not None:
            self._rest.stop()
            self._rest = None
        if self._worker is not None:
            self._queue.put(None, timeout=10)
            self._worker.join(10)
            self._worker = None
        self._client.disconnect()
        self._client.loop_stop()
        self._store.close()

    def __enter__(self) -> ShadowService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def get_document(self, thing: str, shadow_name: str | None = None) -> Json | None:
        """The stored ``{"state", "metadata", "version"}`` of a shadow, or None."""
        return self.operations.document(thing, shadow_name)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("shadow service: connect refused: %s", reason)
            return
        client.subscribe([(f, RESPONSE_QOS) for f in REQUEST_FILTERS])

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        if all(not code.is_failure for code in codes):
            self._subscribed.set()
        else:
            log.error("shadow service: subscription refused: %s", codes)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        parsed = parse_request_topic(message.topic)
        if parsed is None:
            self.counts["ignored"] += 1
            return
        if message.retain:
            # A stored (retained) request replayed because this client just subscribed:
            # answering it would apply an old update again on every restart. A live request
            # reaches an existing subscription with the flag clear (MQTT 3.1.1, 3.3.1.3).
            self.counts["ignored_retained"] += 1
            return
        thing, name, operation = parsed
        payload = bytes(message.payload)
        error = self._admit(Request(thing, name, operation, payload, self.limiter is not None))
        if error is not None:
            self._refuse(thing, name, operation, error)

    def submit(
        self, thing: str, name: str | None, operation: str, payload: bytes = b""
    ) -> Future[Json]:
        """Queue a REST request behind the same checks, limits and worker as MQTT ones.

        The Future holds the response document, or raises the request's ShadowError. An
        accepted update or delete is also published on MQTT (spec section 7 Choice); a
        rejection never is.
        """
        reply: Future[Json] = Future()
        error = self._admit(
            Request(thing, name, operation, payload, self.limiter is not None, reply)
        )
        if error is not None:
            reply.set_exception(error)
            self._count_rejected(error.code)
        return reply

    def _admit(self, request: Request) -> ShadowError | None:
        """Queue *request*, or return the error that refuses it at once (413, 400, 429)."""
        thing, name, payload = request.thing, request.name, request.payload
        if len(payload) > MAX_PAYLOAD_BYTES:
            # Not parsed at all: the token of an oversized body is not looked for.
            return ShadowError(413, _TOO_LARGE)
        try:
            validate_names(thing, name)
        except ShadowError as error:
            return error.with_token(_safe_token(payload))
        if self.limiter is not None and not self.limiter.acquire(thing):
            return _too_many(payload)
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            if self.limiter is not None:
                self.limiter.release(thing)
            return _too_many(payload)
        return None

    def named_shadows(self, thing: str) -> list[str]:
        """Live named shadows of *thing*, sorted (ListNamedShadowsForThing), counted
        against the thing's limits like any other request."""
        validate_names(thing, None)
        if self.limiter is None:
            return self._store.named_shadows(thing)
        if not self.limiter.acquire(thing):
            self._count_rejected(429)
            raise ShadowError(429, "Too Many Requests")
        try:
            return self._store.named_shadows(thing)
        finally:
            self.limiter.release(thing)

    def _refuse(self, thing: str, name: str | None, operation: str, error: ShadowError) -> None:
        self._reply(thing, name, f"{operation}/rejected", error.document(self._now()))

    def _work(self) -> None:
        while True:
            request = self._queue.get()
            if request is None:
                return
            try:
                self._handle(request)
            except Exception:
                log.exception("shadow service: %s failed", request.operation)
                error = ShadowError(500, "Internal service failure", _safe_token(request.payload))
                try:
                    if request.reply is not None:
                        self._count_rejected(500)
                        request.reply.set_exception(error)
                    else:
                        self._refuse(request.thing, request.name, request.operation, error)
                except Exception:
                    log.exception("shadow service: cannot answer a failed request")
            finally:
                if request.limited and self.limiter is not None:
                    self.limiter.release(request.thing)

    def _now(self) -> int:
        return int(self._clock.now())

    def _handle(self, request: Request) -> None:
        thing, name, operation = request.thing, request.name, request.operation
        ops = self.operations
        reply = request.reply
        try:
            if operation == "get":
                doc = ops.get(thing, name, self._token(request))
                if reply is None:
                    self._reply(thing, name, "get/accepted", doc)
            elif operation == "delete":
                doc = ops.delete(thing, name, self._token(request))
                self._reply(thing, name, "delete/accepted", doc)
            else:
                result = ops.update(thing, name, parse_payload(request.payload))
                doc = result.accepted
                self._reply(thing, name, "update/accepted", doc)
                if result.delta is not None:
                    self._reply(thing, name, "update/delta", result.delta)
                self._reply(thing, name, "update/documents", result.documents)
        except ShadowError as error:
            if reply is None:
                self._reply(thing, name, f"{operation}/rejected", error.document(self._now()))
            else:
                self._count_rejected(error.code)
                reply.set_exception(error)
            return
        if reply is not None:
            if operation == "get":
                self.counts["accepted"] += 1
            reply.set_result(doc)

    @staticmethod
    def _token(request: Request) -> str | None:
        """Raises 400 ``Invalid clientToken`` for a get/delete body with a bad token."""
        return lenient_token(request.payload)

    def _count_rejected(self, code: int) -> None:
        self.counts[f"rejected_{code}"] += 1

    def _reply(self, thing: str, name: str | None, suffix: str, document: Json) -> None:
        body = encode_answer(document)
        if len(body) > MAX_PAYLOAD_BYTES:
            self._too_large(thing, name, suffix, document, len(body))
            return
        if suffix.endswith("/rejected"):
            self._count_rejected(int(document.get("code", 0)))
        elif suffix.endswith("/accepted"):
            self.counts["accepted"] += 1
        self._client.publish(response_topic(thing, name, suffix), body, qos=RESPONSE_QOS)

    def _too_large(
        self, thing: str, name: str | None, suffix: str, document: Json, size: int
    ) -> None:
        """An answer past the MQTT limit is never published: the broker would cut this
        service's connection for it, and paho would send it again on every reconnection,
        leaving every shadow unanswered. update/documents holds the metadata twice (an
        8 KB state of array elements times each one: about 100 KB), so it can pass the
        limit; it is dropped and counted. A get is answered 413 instead (an update whose
        own answer would pass is refused by the engine before anything is stored)."""
        self.counts["answers_too_large"] += 1
        log.warning(
            "shadow service: %s: a %d-byte answer passes the %d-byte MQTT limit; not published",
            response_topic(thing, name, suffix),
            size,
            MAX_PAYLOAD_BYTES,
        )
        if suffix == "get/accepted":
            token = document.get("clientToken")
            error = ShadowError(413, _TOO_LARGE, token if isinstance(token, str) else None)
            self._reply(thing, name, "get/rejected", error.document(self._now()))


def response_topic(thing: str, name: str | None, suffix: str) -> str:
    """The answer's topic, under the request's own prefix: a named request whose name is
    empty (``.../shadow/name//update``) is answered there, not on the classic shadow's
    topics, whose clients would take its rejection for theirs."""
    if name == "":
        return f"$aws/things/{thing}/shadow/name//{suffix}"
    return shadow_topic(thing, suffix, name)


_TOO_LARGE = "The payload exceeds the maximum size allowed"


def _too_many(payload: bytes) -> ShadowError:
    return ShadowError(429, "Too Many Requests", _safe_token(payload))


def _safe_token(payload: bytes) -> str | None:
    """The request's token for an answer refusing it before it is parsed (bad names, 429,
    500), or None when there is no usable one, or none the parser reads at once: such
    refusals shed load, and a body nested past the parser's reach costs a deep read."""
    try:
        return lenient_token(payload, deep=False)
    except Exception:
        return None
