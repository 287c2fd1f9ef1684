"""Route one message to every engine that reads its input, as BatchPutMessage does (§1)."""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, Protocol

from cloud.detectors.engine import MAX_CHAINED_MESSAGES, too_many_put_back, unknown_input
from cloud.ports import StateStore
from edge.cliargs import one_line
from edge.clock import Clock, SystemClock
from edge.errors import VersionConflictError

log = logging.getLogger(__name__)

PARTIAL_NAMESPACE: Final = "router/partial"
"""Where the router keeps, per ``<input>/<messageId>``, the models a message reached while
another failed it, so that a retry of the message reaches only the others."""
PARTIAL_RETENTION_S: Final = 14 * 86400.0
"""How long such a record holds a retry back: as long as the feeder keeps its own progress
(DynamoDB TTL expires both); a retry later than that is news to every model."""
PARTIAL_SWEEP_S: Final = 86400.0
"""How often, at most, a router writing a record removes the expired ones: DynamoDB TTL does
it on AWS, nothing does it in SQLite or in memory, and a failure is rare enough that a daily
look at the namespace costs nothing."""
ID_WINDOW_S: Final = 300.0
"""AWS "ignores a message if it has the same messageID as another message that was sent
within the last five minutes" (developer guide, "Send messages as inputs to a detector")."""
MAX_REMEMBERED_IDS: Final = 100_000
"""Ids kept at most; past it the oldest is forgotten early, so a flood cannot exhaust memory."""


class MessageEngine(Protocol):
    inputs: Mapping[str, Any]

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None: ...


class MessageRouter:
    """Feeds detector and alarm engines from one source (the results feeder), and takes back
    the messages their ``iotEvents`` actions send (bind the action sink to it), so such a
    message reaches every model reading its input, alarm models included (§1, §4).

    Engines run in the order given; each sees the message as sent, so an alarm model and a
    detector model on the same input evaluate the same row. A message put while the router
    routes one, or while it is held (``holding``: an engine's timers or requests at work), is
    routed after it, so no engine is entered again in the middle of an evaluation; the
    messages put back that way are bounded per outside message, as in one engine.

    A message goes to every model reading its input, whatever another did (BatchPutMessage
    ingests it "into any detectors that monitor that input"); the first failure is raised
    after all were tried. The caller retries such a message with the same ``messageId``:
    the models it reached are kept in *state* (:data:`PARTIAL_NAMESPACE`; in memory without
    a store), so the retry reaches only the others and no model evaluates it twice.

    A message is ignored when a message with its ``messageId`` was sent in the last
    :data:`ID_WINDOW_S`, as AWS ignores it: the first one processed wins, and each repeat,
    ignored or not, starts the five minutes again. A message that failed a model was not
    taken, so its retry goes through (docs/detectors.md, Decision). The ids are kept in
    memory, per router.
    """

    def __init__(
        self,
        engines: Sequence[MessageEngine],
        state: StateStore | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.engines = list(engines)
        self._state = state
        self._clock = clock or SystemClock()
        self._partial: dict[str, dict[str, Any]] = {}
        """The partial-delivery records when there is no state store."""
        self._swept_at = float("-inf")
        """When (clock time) expired partial-delivery records were last removed."""
        self._processed: OrderedDict[str, float] = OrderedDict()
        """``messageId`` -> when a message with it was last sent (monotonic), oldest first;
        an id enters once its message was processed."""
        self.inputs: dict[str, Any] = {}
        for engine in self.engines:
            self.inputs.update(engine.inputs)
        self._lock = threading.RLock()
        self._depth = 0
        self._queue: deque[tuple[str, dict[str, Any], str | None]] = deque()
        self._chained = 0

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> bool:
        """Route the message (or hold it, while the router is held); False when it was
        ignored, its ``messageId`` having been sent within the last five minutes."""
        if input_name not in self.inputs:
            raise unknown_input(input_name, self.inputs)
        with self._lock:
            if self._depth:
                self._chained += 1
                if self._chained > MAX_CHAINED_MESSAGES:
                    raise too_many_put_back("router", input_name)
                self._queue.append((input_name, dict(payload), message_id))
                return True
            with self.holding():
                return self._route(input_name, payload, message_id)

    def note_sent(self, message_id: str | None) -> bool:
        """Count a message sent to an input none of these engines reads (a replay's other
        inputs): AWS's five-minute rule takes the id alone, whatever the input. False when
        its id was sent within the window, as :meth:`put_message` answers."""
        if not message_id:
            return True
        with self._lock:
            if self._sent_again(message_id):
                return False
            self._remember(message_id)
            return True

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Hold messages put meanwhile until the outermost hold ends, then route them.

        They are routed even when what was held failed: they come from evaluations already
        saved (another model's, or another timer's in the same tick), so their actions were
        taken. Each is routed whatever another did; the hold's own failure, else the first
        of theirs, is raised once all are routed, and any other failure is logged."""
        with self._lock:
            self._depth += 1
            try:
                try:
                    yield
                except Exception:
                    if self._depth == 1:
                        self._route_held()
                    raise
                if self._depth == 1:
                    failure = self._route_held()
                    if failure is not None:
                        raise failure
            finally:
                self._depth -= 1
                if not self._depth:
                    self._queue.clear()
                    self._chained = 0

    def _route_held(self) -> Exception | None:
        """Route every held message (and those they put back); log each failure, return
        the first."""
        first: Exception | None = None
        while self._queue:
            input_name, payload, message_id = self._queue.popleft()
            try:
                self._route(input_name, payload, message_id)
            except Exception as exc:
                log.error(
                    "message put back to input %r (%s) not routed to every model: %s",
                    input_name,
                    one_line(json.dumps(payload, default=str))[:300],
                    one_line(f"{type(exc).__name__}: {exc}"),
                )
                first = first or exc
        return first

    def _route(self, input_name: str, payload: Mapping[str, Any], message_id: str | None) -> bool:
        message_id = message_id or None  # "" is no id, as the engines take it
        if message_id is not None and self._sent_again(message_id):
            log.debug(
                "message %s to input %r: id already processed; ignored", message_id, input_name
            )
            return False
        record_key = None if message_id is None else f"{input_name}/{message_id}"
        before = self._reached(record_key)
        reached = list(before)
        failures: list[tuple[str, Exception]] = []
        for index, engine in enumerate(self.engines):
            if input_name not in engine.inputs:
                continue
            name = engine_name(index, engine)
            if name in before:
                continue
            try:
                engine.put_message(input_name, dict(payload), message_id)
            except Exception as exc:
                failures.append((name, exc))
            else:
                reached.append(name)
        if record_key is not None:
            self._record(record_key, before, reached, complete=not failures)
        for name, exc in failures[1:]:
            log.error(
                "message %s to input %r not taken by %s: %s",
                message_id or "(no id)",
                input_name,
                name,
                one_line(f"{type(exc).__name__}: {exc}"),
            )
        if failures:
            raise failures[0][1]
        if message_id is not None:
            self._remember(message_id)
        return True

    def _remember(self, message_id: str) -> None:
        self._processed[message_id] = self._clock.monotonic()
        while len(self._processed) > MAX_REMEMBERED_IDS:
            self._processed.popitem(last=False)

    def _sent_again(self, message_id: str) -> bool:
        """Whether a message with this id was sent within the window; if so this one, sent
        now, starts the window again (older ids are dropped on the way)."""
        now = self._clock.monotonic()
        while self._processed and next(iter(self._processed.values())) <= now - ID_WINDOW_S:
            self._processed.popitem(last=False)
        if message_id not in self._processed:
            return False
        self._processed[message_id] = now
        self._processed.move_to_end(message_id)
        return True

    def _reached(self, record_key: str | None) -> list[str]:
        """The models an earlier try of this message reached (none once its record expired;
        such a record is removed, as DynamoDB TTL would have removed it)."""
        if record_key is None:
            return []
        version = None
        if self._state is None:
            record = self._partial.get(record_key)
        else:
            found = self._state.get_versioned(PARTIAL_NAMESPACE, record_key)
            record, version = (None, None) if found is None else (found.value, found.version)
        if record is None:
            return []
        if self._expired(record):
            self._forget_expired(record_key, version)
            return []
        delivered = record.get("delivered") if isinstance(record, Mapping) else None
        if not isinstance(delivered, list):
            return []
        return [name for name in delivered if isinstance(name, str)]

    def _expired(self, record: Any) -> bool:
        """A record without a readable expiry counts as expired: it holds nothing back."""
        expires_at = record.get("expires_at") if isinstance(record, Mapping) else None
        return not isinstance(expires_at, int | float) or expires_at <= self._clock.now()

    def _sweep(self) -> None:
        """Remove every expired record, at most once per :data:`PARTIAL_SWEEP_S`: a message
        that failed and was never retried leaves its record behind."""
        now = self._clock.now()
        if now - self._swept_at < PARTIAL_SWEEP_S:
            return
        self._swept_at = now
        try:
            if self._state is None:
                stale = [(key, None) for key, doc in self._partial.items() if self._expired(doc)]
            else:
                items = self._state.items_versioned(PARTIAL_NAMESPACE)
                stale = [(key, doc.version) for key, doc in items if self._expired(doc.value)]
            for key, version in stale:
                self._forget_expired(key, version)
        except Exception as exc:
            log.error(
                "%s: expired records not removed: %s",
                PARTIAL_NAMESPACE,
                one_line(f"{type(exc).__name__}: {exc}"),
            )

    def _forget_expired(self, record_key: str, version: int | None) -> None:
        """Remove an expired record unless another router rewrote it since it was read.
        This is housekeeping: a failure is logged and the message routed all the same."""
        try:
            if self._state is None:
                self._partial.pop(record_key, None)
            elif version is not None:
                self._state.delete_if_version(PARTIAL_NAMESPACE, record_key, version)
        except VersionConflictError:
            pass
        except Exception as exc:
            log.error(
                "%s/%s: expired record not removed: %s",
                PARTIAL_NAMESPACE,
                record_key,
                one_line(f"{type(exc).__name__}: {exc}"),
            )

    def _record(
        self, record_key: str, before: list[str], reached: list[str], *, complete: bool
    ) -> None:
        """Remember what a failed message reached; forget it once it reached every model.

        A record that cannot be written is logged: the delivery failure it would serve is
        the one the caller needs, and its retry then reaches the models again."""
        try:
            if complete:
                if before:
                    self._forget(record_key)
            elif reached != before:
                record = {
                    "delivered": reached,
                    "expires_at": self._clock.now() + PARTIAL_RETENTION_S,
                }
                if self._state is None:
                    self._partial[record_key] = record
                else:
                    self._state.put(PARTIAL_NAMESPACE, record_key, record)
        except Exception as exc:
            log.error(
                "%s/%s: which models the message reached not recorded: %s",
                PARTIAL_NAMESPACE,
                record_key,
                one_line(f"{type(exc).__name__}: {exc}"),
            )
        if not complete:
            self._sweep()

    def _forget(self, record_key: str) -> None:
        if self._state is None:
            self._partial.pop(record_key, None)
        else:
            self._state.delete(PARTIAL_NAMESPACE, record_key)


def engine_name(index: int, engine: MessageEngine) -> str:
    """The name a model's deliveries are recorded under: its state namespace
    (``detectors/<model>``, ``alarms/<model>``), which no other model shares, else its place."""
    namespace = getattr(engine, "namespace", None)
    return namespace if isinstance(namespace, str) and namespace else f"engine#{index}"
