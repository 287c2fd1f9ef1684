"""ShadowSync: desired state from each thing's classic shadow -> command handlers -> reported.

Speaks AWS's shadow MQTT protocol through awsiotsdk's ``iotshadow`` client, so it works
unchanged against IoT Core and the local shadow service. On every (re)connection it
subscribes again and GETs each full shadow, so deltas published while the agent was offline
are never missed. A desired value is handed to its handler once per value, a delta version
once (values compare as JSON: ``true`` is not ``1``); a handler's ValueError is reported
under ``reported.errors.<key>`` instead of crashing; a 409 on our report means desired moved
meanwhile, so we GET and reconcile. A GET or report refused with 429 or a 5xx is made again,
and a delta older than the version held (a re-created shadow counts again from 1) makes us
GET rather than ignore every later command. A delta naming a value the device already
runs (an app cleared it from reported) makes us GET, and the reconcile reports it again. A
GET answered 404 (no shadow yet, or one an operator deleted) is followed by a report of the device's current state, which creates the
shadow, as AWS's device guide says a device should. A handler always gets a whole value: a
delta naming only part of an object (AWS sends just the leaves that differ) is applied from
the document instead. Answers to other clients' requests (every subscriber of a shadow gets
them) are told apart by clientToken and left alone.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from awscrt import mqtt
from awsiot import iotshadow

from edge.commands import shown
from edge.json_values import deeper_than, same_value

log = logging.getLogger("edge.shadow")

Handler = Callable[[str, object], object]
"""``(thing, desired value) -> applied value``; raise ValueError to reject the value."""

QOS = mqtt.QoS.AT_LEAST_ONCE
_STOP = object()
MAX_DEPTH = 6
"""A shadow document's nesting limit, ``desired`` being level 1 (shadow-contracts §5)."""
VALUE_LEVELS = MAX_DEPTH - 1
"""Levels of containers a desired key's value may hold: it sits at level 2."""
TOO_DEEP_TEXT = f"<a value nested deeper than {MAX_DEPTH} levels>"
_TOO_DEEP = object()
"""Stands for a refused too-deep value as the last desired one: unequal to any value."""


SUBSCRIPTIONS_PER_THING = 4
"""What :meth:`ShadowSync.attach` subscribes to per thing (get/accepted, get/rejected,
update/delta, update/rejected): with IoT Core's 50 a connection, one agent follows the
shadows of at most 12 things."""


class ShadowSync:
    def __init__(
        self,
        things: Iterable[str],
        *,
        on_error: Callable[[str], None] | None = None,
        subscribe_timeout_s: float = 10.0,
        get_retry_s: float = 5.0,
        current_state: Callable[[str], dict[str, object]] | None = None,
    ) -> None:
        """*current_state* gives, per thing, device state no command set (such as a
        configured sampling interval); it is reported, under what was applied, when a thing
        has no shadow."""
        self.things = tuple(things)
        self.applied: dict[str, dict[str, object]] = {t: {} for t in self.things}
        self.errors: dict[str, dict[str, dict[str, object]]] = {t: {} for t in self.things}
        self.reports = 0
        self._handlers: dict[str, Handler] = {}
        self._last_desired: dict[str, dict[str, object]] = {t: {} for t in self.things}
        self._version: dict[str, int] = {t: -1 for t in self.things}
        self._client: iotshadow.IotShadowClient | None = None
        self._on_error = on_error or (lambda _msg: None)
        self._current_state = current_state or (lambda _thing: {})
        self._subscribe_timeout_s = subscribe_timeout_s
        self._get_retry_s = get_retry_s
        self._get_tokens: dict[str, OrderedDict[str, int]] = {t: OrderedDict() for t in self.things}
        """clientTokens of this agent's unanswered GETs, each with the version held when it
        went out: a get/accepted carrying none of them (a stale or forged document) is
        ignored, and one that does is authoritative unless a newer delta overtook it."""
        self._sent: OrderedDict[str, tuple[str, dict[str, object], int]] = OrderedDict()
        """clientToken -> (thing, reported, version) of recent reports, so a refused one
        can be made again in parts (bounded: accepted reports are never answered here)."""
        self._pending_get: dict[str, float] = {}
        """thing -> when its unanswered GET went out; re-sent after get_retry_s (a GET
        published before the shadow service resubscribed after a broker restart is lost)."""
        self._events: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._worker = threading.Thread(target=self._run, name="edge-shadow", daemon=True)
        self._worker.start()

    def register(self, key: str, handler: Handler) -> None:
        self._handlers[key] = handler

    def handler(self, key: str) -> Handler | None:
        """The handler registered for desired *key*, if any."""
        return self._handlers.get(key)

    def attach(self, connection: mqtt.Connection) -> None:
        """Subscribe on a fresh connection, then GET every shadow (raises if a SUBACK fails)."""
        client = iotshadow.IotShadowClient(connection)
        futures = []
        for thing in self.things:
            futures += [
                client.subscribe_to_get_shadow_accepted(
                    iotshadow.GetShadowSubscriptionRequest(thing_name=thing),
                    QOS,
                    lambda r, t=thing: self._events.put(("get", t, r)),
                )[0],
                client.subscribe_to_get_shadow_rejected(
                    iotshadow.GetShadowSubscriptionRequest(thing_name=thing),
                    QOS,
                    lambda r, t=thing: self._events.put(("rejected", t, "get", r)),
                )[0],
                client.subscribe_to_shadow_delta_updated_events(
                    iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing),
                    QOS,
                    lambda r, t=thing: self._events.put(("delta", t, r)),
                )[0],
                client.subscribe_to_update_shadow_rejected(
                    iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing),
                    QOS,
                    lambda r, t=thing: self._events.put(("rejected", t, "update", r)),
                )[0],
            ]
        for future in futures:
            future.result(self._subscribe_timeout_s)
        self._client = client
        for thing in self.things:
            self._get(thing)

    def detach(self) -> None:
        self._client = None
        self._pending_get.clear()

    def stop(self) -> None:
        self._client = None
        self._events.put(_STOP)
        self._worker.join(5)

    def wait_applied(self, thing: str, key: str, value: object, timeout: float) -> bool:
        """Block until *key* of *thing* has been applied as *value* (tests and the demo)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self.applied.get(thing, {}).get(key) == value, timeout
            )

    def _get(self, thing: str) -> None:
        client = self._client
        if client is None:
            return
        self._pending_get[thing] = time.monotonic()
        token = str(uuid.uuid4())
        tokens = self._get_tokens[thing]
        tokens[token] = self._version[thing]
        while len(tokens) > 16:  # bounded: a GET retried for days stays small
            tokens.popitem(last=False)
        client.publish_get_shadow(
            iotshadow.GetShadowRequest(thing_name=thing, client_token=token), QOS
        )

    def _run(self) -> None:
        while True:
            try:
                event = self._events.get(timeout=0.5)
            except queue.Empty:
                self._retry_gets()
                continue
            if event is _STOP:
                return
            try:
                self._handle(event)
                self._retry_gets()
            except Exception as exc:
                log.exception("shadow event failed", extra={"event": "shadow_error"})
                self._on_error(f"shadow: {exc}")

    def _retry_gets(self) -> None:
        now = time.monotonic()
        for thing, sent in list(self._pending_get.items()):
            if now - sent > self._get_retry_s and self._client is not None:
                log.info("shadow GET unanswered; asking again", extra={"thing": thing})
                self._get(thing)

    def _ignore(self, thing: str, what: str, reason: str) -> None:
        message = f"shadow {what} for {thing} ignored: {reason}"
        log.warning(message, extra={"event": "shadow_ignored", "thing": thing})
        self._on_error(message)

    def _handle(self, event: Any) -> None:
        kind, thing = event[0], event[1]
        body = event[3] if kind == "rejected" else event[2]
        if body is None:  # the SDK hands over None for a payload that is not a document
            what = {"get": "get/accepted", "delta": "delta"}.get(kind, f"{event[2]}/rejected")
            self._ignore(thing, what, "not a JSON object of the shadow protocol")
            return
        if kind == "rejected" and not self._asked(thing, event[2], event[3].client_token):
            # Answers go to every subscriber of the shadow: this one refused another
            # client's request (an app's malformed update, a 429 for an operator's GET).
            log.debug(
                "shadow %s/rejected for %s answers another client; ignored",
                event[2],
                thing,
                extra={"event": "shadow_foreign_answer", "thing": thing},
            )
            return
        if kind == "rejected" and event[2] == "get":
            if event[3].code == 404:
                self._no_shadow(thing, event[3].client_token)
                return
            if not _transient(event[3].code):
                # 429 and 5xx say nothing about the shadow: the GET stays pending and is
                # sent again after get_retry_s, else desired state set meanwhile would
                # never arrive.
                self._pending_get.pop(thing, None)
        if kind == "get":
            response: iotshadow.GetShadowResponse = event[2]
            if response.client_token not in self._get_tokens[thing]:
                # Another client's GET (an operator's ``shadow get``) is answered on the
                # same topic: normal traffic, not an error of this device.
                log.debug(
                    "shadow get/accepted for %s answers another client; ignored",
                    thing,
                    extra={"event": "shadow_foreign_answer", "thing": thing},
                )
                return
            held_when_asked = self._get_tokens[thing][response.client_token]
            self._get_tokens[thing].clear()
            self._pending_get.pop(thing, None)
            state = response.state
            version = _version(response.version)
            desired = (state.desired if state else None) or {}
            reported = (state.reported if state else None) or {}
            if version is None or not isinstance(desired, dict) or not isinstance(reported, dict):
                self._ignore(thing, "get/accepted", "state or version of the wrong type")
                return
            if version < self._version[thing] and held_when_asked < self._version[thing]:
                # IoT Core does not order messages across topics: a delta of a later update
                # came before this answer, which would run the older command again. Only
                # an answer to a GET sent while the higher version was already held says
                # the count went back (a re-created shadow); ask once more for that one.
                log.info(
                    "shadow document older than a delta already applied; asking again",
                    extra={"event": "shadow_stale_document", "thing": thing},
                )
                self._get(thing)
                return
            self._version[thing] = version  # the service's answer: it may restart the count
            self._apply(thing, dict(desired), version, dict(reported))
        elif kind == "delta":
            delta: iotshadow.ShadowDeltaUpdatedEvent = event[2]
            version = _version(delta.version)
            if version is None or not isinstance(delta.state, dict):
                self._ignore(thing, "delta", "state or version of the wrong type")
                return
            if version <= self._version[thing]:
                if version < self._version[thing] and thing not in self._pending_get:
                    # The count went back: the shadow was re-created after its 48-hour
                    # tombstone (versions start again at 1), or the version tracked came
                    # from a forged delta. Dropping every delta until the next reconnect
                    # would leave the device deaf; the service's own document settles it.
                    log.info(
                        "shadow delta older than the tracked version; asking for the document",
                        extra={"event": "shadow_version_back", "thing": thing},
                    )
                    self._get(thing)
                return
            self._version[thing] = version
            wanted = dict(delta.state)
            # AWS's delta holds only the leaves of an object that differ, on their path
            # from the root: after setpoints {a: 1, b: 2}, ``shadow set setpoints.b=3``
            # gives {"setpoints": {"b": 3}}, not the whole desired setpoints. A handler
            # takes whole values, so a delta with an object that says something new is
            # applied from the document instead (one GET at a time: a pending one answers
            # with this change too). An object the last desired value already holds (the
            # delta is published again after every accepted update) is old news, and one
            # too deep for any shadow is refused here as it is.
            parts = [
                key
                for key, value in wanted.items()
                if key in self._handlers
                and isinstance(value, dict)
                and value
                and not deeper_than(value, VALUE_LEVELS)
            ]
            if any(not _within(wanted[k], self._last_desired[thing].get(k)) for k in parts):
                if thing not in self._pending_get:
                    self._get(thing)
                return
            held = [
                k
                for k in parts
                if k not in self.errors[thing] and _within(wanted[k], self.applied[thing].get(k))
            ]
            for key in parts:
                del wanted[key]
            held += [k for k, v in wanted.items() if self._runs(thing, k, v)]
            self._apply(thing, wanted, version, None)
            ours = delta.client_token in self._sent
            if held and not ours and thing not in self._pending_get:
                # AWS keeps a desired key in the delta while reported lacks it or differs,
                # e.g. after an app cleared the reported value. This device already runs
                # that value, so only the shadow is out of step: the document's reconcile
                # reports again what differs (a value the handler changed or refused is
                # not "run", so it asks nothing, and nothing can loop). A delta caused by
                # one of our own reports says nothing new: another report of ours may
                # still be on its way (a report split after a 413).
                log.info(
                    "shadow delta names values already applied; asking for the document",
                    extra={"event": "shadow_resync", "thing": thing},
                )
                self._get(thing)
        elif kind == "rejected":
            operation, error = event[2], event[3]
            sent = self._sent.pop(error.client_token, None) if operation == "update" else None
            if operation == "update" and error.code == 409:
                log.info(
                    "shadow version conflict; reconciling",
                    extra={"event": "shadow_conflict", "thing": thing},
                )
                self._get(thing)
            else:
                message = f"shadow {operation} {thing}: {error.code} {error.message}"
                log.warning(message, extra={"event": "shadow_rejected", "thing": thing})
                self._on_error(message)
                if operation == "update" and _transient(error.code):
                    # The report is lost, so the shadow shows an old reported state: GET
                    # after get_retry_s (not at once, which would add to a throttle) and
                    # the reconcile reports again what differs.
                    self._pending_get.setdefault(thing, time.monotonic())
                elif operation == "update" and error.code == 413 and sent is not None:
                    self._report_in_parts(*sent, f"{error.code} {error.message}")

    def _runs(self, thing: str, key: str, value: object) -> bool:
        """Whether *value*, a delta's value of *key*, is the one last desired and applied
        as it is: the device runs it, so the delta names it only because reported lacks it.
        Not for a key with an error entry: a value the shadow refused to record (413) would
        be reported, refused and recorded as refused again after every delta."""
        if key not in self._handlers or key in self.errors[thing]:
            return False
        if deeper_than(value, VALUE_LEVELS):
            return False
        last, applied = self._last_desired[thing], self.applied[thing]
        return (
            key in last
            and key in applied
            and same_value(last[key], value)
            and same_value(applied[key], value)
        )

    def _asked(self, thing: str, operation: str, token: object) -> bool:
        """Whether this agent sent the request a ``/rejected`` answers: AWS echoes the
        clientToken, and every request this agent makes carries one."""
        if operation == "get":
            return token in self._get_tokens[thing]
        return token in self._sent

    def _no_shadow(self, thing: str, token: object) -> None:
        """A 404 to this agent's GET: the thing has no shadow. AWS's device guide ("Using
        shadows in devices": a /get/rejected at start-up means the shadow should be created
        by an /update with the current device state) has the device report what it is
        doing; without a version, so a shadow made meanwhile is merged with, not refused."""
        if token not in self._get_tokens[thing]:
            return  # a stale or forged answer: the pending GET still decides
        self._get_tokens[thing].clear()
        self._pending_get.pop(thing, None)
        report: dict[str, object] = {**self._current_state(thing), **self.applied[thing]}
        if self.errors[thing]:
            report["errors"] = dict(self.errors[thing])
        log.info(
            "no shadow; creating it with the device's state",
            extra={"event": "shadow_create", "thing": thing},
        )
        self._report(thing, report, 0)

    def _apply(
        self, thing: str, wanted: dict[str, object], version: int, reported: dict[str, Any] | None
    ) -> None:
        report: dict[str, object] = {}
        error_report: dict[str, object] = {}
        errors = self.errors[thing]
        self._log_unhandled(thing, [key for key in wanted if key not in self._handlers])
        for key, value in wanted.items():
            handler = self._handlers.get(key)
            if handler is not None and deeper_than(value, VALUE_LEVELS):
                self._refuse_too_deep(thing, key, version)
                error_report[key] = errors[key]
                continue
            if handler is None or (
                key in self._last_desired[thing]
                and same_value(self._last_desired[thing][key], value)
            ):
                continue
            self._last_desired[thing][key] = value
            try:
                result = handler(thing, value)
            except Exception as exc:
                errors[key] = {
                    "desired": _echo(value),
                    "message": shown(str(exc), 300),
                    "version": version,
                }
                error_report[key] = errors[key]
                log.warning(
                    "rejected desired %s=%s: %s",
                    key,
                    _echo(value),  # one short line, however big the value
                    errors[key]["message"],
                    extra={"event": "command_rejected", "thing": thing},
                )
                continue
            with self._changed:
                self.applied[thing][key] = result
                self._changed.notify_all()
            report[key] = result
            if errors.pop(key, None) is not None:
                error_report[key] = None
            log.info(
                "applied %s=%s",
                key,
                _echo(result),
                extra={"event": "command_applied", "thing": thing},
            )
        if reported is not None:
            for key, value in self.applied[thing].items():
                if not same_value(reported.get(key), value):
                    report[key] = value
            on_shadow = reported.get("errors") or {}
            if not isinstance(on_shadow, dict):
                on_shadow = {}
            for key in set(on_shadow) | set(errors):
                if not same_value(on_shadow.get(key), errors.get(key)):
                    error_report[key] = errors.get(key)
        if error_report:
            report["errors"] = error_report
        if report:
            self._report(thing, report, version)

    def _log_unhandled(self, thing: str, keys: list[str]) -> None:
        """Desired keys no handler takes are left alone, not reported as errors (the same
        desired state may serve devices whose handlers know them), but named in one line
        per document, however many there are."""
        if not keys:
            return
        names = ", ".join(shown(key, 40) for key in keys[:5])
        more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
        log.info(
            "%d desired key%s with no handler ignored: %s%s",
            len(keys),
            "" if len(keys) == 1 else "s",
            names,
            more,
            extra={"event": "command_unhandled", "thing": thing},
        )

    def _refuse_too_deep(self, thing: str, key: str, version: int) -> None:
        """A value nested past the shadow's depth limit can only come from a forged
        document (the service refuses it with 400). It is refused before anything compares,
        prints or hands it on: those recurse, and a RecursionError there used to abandon
        the whole document, the valid commands beside it included."""
        self._last_desired[thing][key] = _TOO_DEEP
        self.errors[thing][key] = {
            "desired": TOO_DEEP_TEXT,
            "message": f"{key}: nested deeper than a shadow allows ({MAX_DEPTH} levels)",
            "version": version,
        }
        log.warning(
            "rejected desired %s: nested deeper than %d levels",
            key,
            MAX_DEPTH,
            extra={"event": "command_rejected", "thing": thing},
        )

    def _report_in_parts(
        self, thing: str, reported: dict[str, object], version: int, refusal: str
    ) -> None:
        """A report the shadow refused as too large (413: desired plus reported over 8 KB,
        as when a big desired object is applied and echoed back) is never sent again as
        it was: the service would refuse it every time, and the small values that rode
        with it (a mode change) would never show. Each key goes in its own report; a
        single key still refused is recorded under ``reported.errors.<key>`` instead,
        applied but not recordable. Each step sends fewer keys, so this ends."""
        if len(reported) > 1:
            for key, value in reported.items():
                self._report(thing, {key: value}, 0)
            return
        key = next(iter(reported), "errors")
        if key == "errors":
            return  # the error entries alone do not fit: logged, nothing smaller to send
        self.errors[thing][key] = {
            "desired": _echo(self._last_desired[thing].get(key)),
            "message": f"applied, but the shadow refused to record it: {shown(refusal, 200)}",
            "version": version,
        }
        self._report(thing, {"errors": {key: self.errors[thing][key]}}, 0)

    def _report(self, thing: str, reported: dict[str, object], version: int) -> None:
        client = self._client
        if client is None:
            return
        token = str(uuid.uuid4())
        request = iotshadow.UpdateShadowRequest(
            thing_name=thing,
            state=iotshadow.ShadowState(reported=reported),
            version=version if version > 0 else None,
            client_token=token,
        )
        self._sent[token] = (thing, reported, version)
        while len(self._sent) > 64:
            self._sent.popitem(last=False)
        client.publish_update_shadow(request, QOS)
        self.reports += 1


def _within(part: dict[str, Any], whole: object) -> bool:
    """Whether every leaf of *part* (a delta's object) is already in *whole* on the same
    path, as JSON compares (both within the shadow's depth limit)."""
    if not isinstance(whole, dict):
        return False
    for key, value in part.items():
        if key not in whole:
            return False
        below = whole[key]
        if isinstance(value, dict) and value and isinstance(below, dict):
            if not _within(value, below):
                return False
        elif not same_value(value, below):
            return False
    return True


def _version(value: object) -> int | None:
    """A document's version: an integer >= 0 (0 when absent), or None when malformed."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _transient(code: object) -> bool:
    """An error answer worth asking again: throttled (429) or a service failure (5xx)."""
    return isinstance(code, int) and (code == 429 or code >= 500)


def _echo(value: object) -> object:
    """The rejected value as ``reported.errors.<key>.desired`` shows it: scalars as they
    are, anything long or nested as a short text, so the report stays within the shadow's
    depth (6) and size (8 KB) limits and the values that did apply are not refused with it."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int) and value.bit_length() <= 64:
        return value
    if isinstance(value, str) and len(value) <= 64:
        return value
    return shown(value, 64)
