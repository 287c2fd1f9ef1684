"""Request/response shadow clients with one interface: over MQTT, or straight to SQLite.

``ShadowClient`` speaks the shadow protocol through the broker (the CLI and ``wait`` use
it, and it is what any device sees); ``DirectShadowClient`` writes the store file when no
broker runs, through the same engine. The AWS client in ``cloud.adapters.aws`` matches.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import Counter, OrderedDict
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from cloud.adapters.local.mqtt_url import guard_callbacks, no_delay, parse_broker_url
from cloud.shadow.document import Json, ShadowError, validate_names
from cloud.shadow.operations import ShadowOperations
from cloud.shadow.store import ShadowStore
from edge.clock import Clock
from edge.errors import ConflictError, NotFoundError, PlantwatchError
from edge.wire import MAX_SUBSCRIPTIONS, shadow_topic

log = logging.getLogger(__name__)

HELD_ANSWER_FILTERS = 16
"""Answer filters a ShadowClient keeps subscribed between requests, the most recently used
(two per thing and operation). IoT Core takes 50 subscriptions per connection: a client that
kept every thing's answer topics was refused past that (at the 26th thing with one operation
each, the 9th with get, update and delete), and its requests there timed out. A wildcard such as ``$aws/things/+/shadow/...`` would need no more, but it
would bring every thing's answers in the fleet, each counted against the connection's 100
publishes a second, and device policies grant no such filter."""


class ShadowRejectedError(PlantwatchError):
    """A shadow request was rejected with an AWS error code other than 404 and 409."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"shadow request rejected: {code} {message}")
        self.code = code
        self.message = message


def raise_for(code: int, message: str) -> None:
    """Turn an AWS shadow error into plantwatch's error tree."""
    if code == 404:
        raise NotFoundError(message)
    if code == 409:
        raise ConflictError(message)
    raise ShadowRejectedError(code, message)


def update_request(
    desired: Json | None, reported: Json | None, version: int | None, token: str | None = None
) -> Json:
    state: Json = {}
    if desired is not None:
        state["desired"] = desired
    if reported is not None:
        state["reported"] = reported
    request: Json = {"state": state}
    if version is not None:
        request["version"] = version
    if token is not None:
        request["clientToken"] = token
    return request


class ShadowApi(Protocol):
    """What the CLI needs from any shadow backend (local MQTT, local file, AWS)."""

    def get(self, thing: str, name: str | None = None) -> Json: ...

    def update(
        self,
        thing: str,
        desired: Json | None = None,
        reported: Json | None = None,
        version: int | None = None,
        name: str | None = None,
    ) -> Json: ...

    def delete(self, thing: str, name: str | None = None) -> Json: ...

    def close(self) -> None: ...


class ShadowClient:
    """Shadow requests over MQTT, matched to their answers by ``clientToken``."""

    def __init__(
        self, broker_url: str, client_id: str | None = None, *, timeout: float = 10.0
    ) -> None:
        address = parse_broker_url(broker_url)
        host, port = address.host, address.port
        self.broker_url = address.url
        self.timeout = timeout
        self.counts: Counter[str] = Counter()
        self._pending: dict[str, Future[tuple[str, Json]]] = {}
        self._subscribed: OrderedDict[str, None] = OrderedDict()
        """Held answer filters, least recently used first."""
        self._in_use: Counter[str] = Counter()
        """Answer filters requests are waiting on, which are never given up."""
        self._acks: dict[int, _Ack] = {}
        self._unreadable: Counter[str] = Counter()
        """Unreadable answers by request topic, named when a request there times out."""
        self._lock = threading.Lock()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"plantwatch-shadow-client-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311,
        )
        address.apply(self._client)
        no_delay(self._client)
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, *_p: Any) -> None:
            if getattr(reason, "is_failure", False):
                refused.append(str(reason))
            with self._lock:
                self._subscribed.clear()
            connected.set()

        self._client.on_connect = on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_unsubscribe = self._on_subscribe
        guard_callbacks(self._client, self.counts, log, "shadow client")
        self._client.reconnect_delay_set(0.1, 2.0)
        try:
            self._client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise PlantwatchError(f"cannot reach the broker at {self.broker_url}: {exc}") from exc
        self._client.loop_start()
        if not connected.wait(timeout) or refused:
            self.close()
            why = f"refused ({refused[0]})" if refused else f"no connection in {timeout:.0f} s"
            raise PlantwatchError(f"{self.broker_url}: {why}")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> ShadowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, thing: str, name: str | None = None) -> Json:
        return self._request(thing, name, "get", {})

    def update(
        self,
        thing: str,
        desired: Json | None = None,
        reported: Json | None = None,
        version: int | None = None,
        name: str | None = None,
    ) -> Json:
        return self._request(thing, name, "update", update_request(desired, reported, version))

    def delete(self, thing: str, name: str | None = None) -> Json:
        return self._request(thing, name, "delete", {})

    def request(
        self,
        thing: str,
        name: str | None,
        operation: str,
        payload: bytes,
        token: str | None = None,
    ) -> Json:
        """Send a raw body (conformance tests send malformed ones) carrying *token*, if any."""
        return self._send(thing, name, operation, payload, token)

    def exchange(
        self,
        thing: str,
        name: str | None,
        operation: str,
        payload: bytes,
        token: str | None = None,
    ) -> tuple[bool, Json]:
        """Like :meth:`request`, but return ``(accepted, document)`` instead of raising."""
        topic, doc = self._roundtrip(thing, name, operation, payload, token)
        return not topic.endswith("/rejected"), doc

    def _request(self, thing: str, name: str | None, operation: str, body: Json) -> Json:
        """A get, update or delete; names are checked first, as the service checks them
        (400): one holding ``+``, ``#`` or ``/`` cannot be a topic level, so paho refused it
        with ValueError, or the request went to a topic no service answers."""
        try:
            validate_names(thing, name)
        except ShadowError as error:
            raise_for(error.code, error.message)
        token = uuid.uuid4().hex
        body = {**body, "clientToken": token}
        return self._send(thing, name, operation, json.dumps(body).encode(), token)

    def _send(
        self, thing: str, name: str | None, operation: str, payload: bytes, token: str | None
    ) -> Json:
        topic, doc = self._roundtrip(thing, name, operation, payload, token)
        if topic.endswith("/rejected"):
            raise_for(_error_code(doc), str(doc.get("message", "")))
        return doc

    def _roundtrip(
        self, thing: str, name: str | None, operation: str, payload: bytes, token: str | None
    ) -> tuple[str, Json]:
        if not self._client.is_connected():
            raise PlantwatchError(f"not connected to the broker at {self.broker_url}")
        answers = [shadow_topic(thing, f"{operation}/{r}", name) for r in ("accepted", "rejected")]
        with self._lock:
            self._in_use.update(answers)
        try:
            self._subscribe(answers)
            return self._await_answer(thing, name, operation, payload, token)
        finally:
            with self._lock:
                self._in_use.subtract(answers)
                self._in_use += Counter()  # drops the filters no request waits on

    def _await_answer(
        self, thing: str, name: str | None, operation: str, payload: bytes, token: str | None
    ) -> tuple[str, Json]:
        request_topic = shadow_topic(thing, operation, name)
        key = token if token is not None else f"untokened:{request_topic}"
        future: Future[tuple[str, Json]] = Future()
        with self._lock:
            self._pending[key] = future
            unreadable = self._unreadable[request_topic]
        try:
            self._client.publish(request_topic, payload, qos=1)
            try:
                topic, doc = future.result(self.timeout)
            except FutureTimeout:
                with self._lock:
                    dropped = self._unreadable[request_topic] - unreadable
                why = (
                    f"{dropped} unreadable answer(s) (not a JSON object) came and were dropped"
                    if dropped
                    else "is the shadow service running?"
                )
                raise PlantwatchError(
                    f"no answer to shadow {operation} of {thing!r} from {self.broker_url} "
                    f"within {self.timeout:.0f} s ({why})"
                ) from None
        finally:
            with self._lock:
                self._pending.pop(key, None)
        return topic, doc

    def _subscribe(self, topics: list[str]) -> None:
        """Subscribe to the *topics* not held yet, first giving up the least recently used
        filters no request waits on, so that at most :data:`HELD_ANSWER_FILTERS` are held
        (more only while that many requests wait at once)."""
        with self._lock:
            for topic in topics:
                if topic in self._subscribed:
                    self._subscribed.move_to_end(topic)
            missing = [t for t in topics if t not in self._subscribed]
            if not missing:
                return
            excess = len(self._subscribed) + len(missing) - HELD_ANSWER_FILTERS
            idle = [t for t in self._subscribed if not self._in_use[t]][: max(excess, 0)]
            for topic in idle:
                del self._subscribed[topic]
            # sent under the lock, so a request that subscribes to one of them again
            # goes out after this UNSUBSCRIBE, which the broker handles first
            dropped = self._send_and_register(self._client.unsubscribe, idle) if idle else None
            added = self._send_and_register(
                lambda filters: self._client.subscribe([(f, 1) for f in filters]), missing
            )
        if dropped is not None and not dropped.wait(self.timeout):
            raise PlantwatchError(f"{self.broker_url}: unsubscribe not acknowledged")
        if not added.wait(self.timeout):
            raise PlantwatchError(f"{self.broker_url}: subscription not acknowledged")
        refused = [t for t, ok in zip(missing, added.granted, strict=False) if not ok]
        if refused:
            raise PlantwatchError(
                f"{self.broker_url} refused the subscription to {', '.join(refused)}; a "
                f"connection holds at most {MAX_SUBSCRIPTIONS} (IoT Core's quota), so another client on this "
                "connection may hold the rest"
            )
        with self._lock:
            self._subscribed.update(dict.fromkeys(missing))

    def _send_and_register(self, send: Any, filters: list[str]) -> _Ack:
        """Send a (UN)SUBSCRIBE for *filters*; the event is set when the broker acknowledges
        it. Called with the lock held, so the ack cannot be handled before it is awaited."""
        result, mid = send(filters)
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise PlantwatchError(f"(un)subscribe to {filters} failed: {mqtt.error_string(result)}")
        acked = _Ack()
        self._acks[mid] = acked
        return acked

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, codes: Any, _p: Any) -> None:
        """A SUBACK or an UNSUBACK: the waiting request goes on, knowing which filters the
        broker refused (a refusal is final, so waiting for an answer would only time out)."""
        with self._lock:
            event = self._acks.pop(mid, None)
        if event is not None:
            event.granted = [not getattr(code, "is_failure", False) for code in codes or []]
            event.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            doc = json.loads(message.payload)
        except (ValueError, RecursionError):
            doc = None
        if not isinstance(doc, dict):
            # No token to match it by: the waiting caller times out, and says why.
            with self._lock:
                self._unreadable[message.topic.rsplit("/", 1)[0]] += 1
            self.counts["unreadable_answers"] += 1
            log.warning(
                "shadow client: an unreadable answer on %s (not a JSON object) was dropped",
                message.topic,
            )
            return
        token = doc.get("clientToken")
        if isinstance(token, str):
            key = token
        else:
            request_topic = message.topic.rsplit("/", 1)[0]
            key = f"untokened:{request_topic}"
        with self._lock:
            future = self._pending.get(key)
        if future is not None and not future.done():
            future.set_result((message.topic, doc))


class _Ack(threading.Event):
    """Set when the broker acknowledges a (UN)SUBSCRIBE; ``granted`` holds, per filter in
    order, whether a SUBACK granted it (an UNSUBACK under MQTT 3.1.1 carries no codes)."""

    def __init__(self) -> None:
        super().__init__()
        self.granted: list[bool] = []


def _error_code(doc: Json) -> int:
    """A rejection's ``code``, an integer on AWS; anything else is taken for a service
    failure, so the caller gets ShadowRejectedError rather than a ValueError from ``int``."""
    code = doc.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    return 500


class DirectShadowClient:
    """The same calls straight against the SQLite store, for when no broker is running.

    A device offline at that moment sees the command as a delta when it next GETs.
    """

    def __init__(self, db_path: str | Path, clock: Clock, *, readonly: bool = False) -> None:
        self._store = ShadowStore(db_path, readonly=readonly)
        self._ops = ShadowOperations(self._store, clock)

    def close(self) -> None:
        self._store.close()

    def get(self, thing: str, name: str | None = None) -> Json:
        return self._call(lambda: self._ops.get(thing, name))

    def update(
        self,
        thing: str,
        desired: Json | None = None,
        reported: Json | None = None,
        version: int | None = None,
        name: str | None = None,
    ) -> Json:
        request = update_request(desired, reported, version)
        return self._call(lambda: self._ops.update(thing, name, request).accepted)

    def delete(self, thing: str, name: str | None = None) -> Json:
        return self._call(lambda: self._ops.delete(thing, name))

    def list_named(self, thing: str) -> list[str]:
        """Named shadows of *thing* (never the classic one), as ListNamedShadowsForThing:
        an invalid thing name is 400 ``Invalid thing name`` there too."""
        try:
            validate_names(thing, None)
        except ShadowError as error:
            raise_for(error.code, error.message)
        return self._store.named_shadows(thing)

    @staticmethod
    def _call(action: Any) -> Json:
        try:
            return dict(action())
        except ShadowError as error:
            raise_for(error.code, error.message)
            raise
