"""The local rules engine: subscribe to every rule's FROM filter, evaluate, run actions.

A message is acknowledged (PUBACK, under manual control) only after its actions returned
and the batcher committed it to its spool, so a killed runner loses nothing the broker
considers delivered. The network thread only queues messages; a worker takes what has
queued (up to ``max_batch``), runs the rules, commits the spool once and then acknowledges
them all. The persistent session (clean_session=False, or an MQTT 5 session expiry) keeps
what arrives while the runner is down; unacknowledged messages are redelivered when it
reconnects (mosquitto does; amqtt 0.12 drops a dead connection's in-flight messages).

The MQTT client is ``transport.CrtTransport`` (awscrt, MQTT 5, parsing and PUBACKs in C)
where the broker speaks MQTT 5, else ``transport.PahoTransport``; ``client="auto"`` picks
by trying an MQTT 5 CONNECT first (``cloud/rules/transport.py`` says why).

With ``shared_group`` the runner subscribes to ``$share/<group>/<filter>`` so several
runners split the load (mosquitto; amqtt has no shared subscriptions); their batchers must
share one spool file (``Batcher(..., shared_spool=True)``).

Overlapping FROM filters make a broker deliver a message once per matching subscription;
the batcher's de-duplication absorbs that, other actions would run twice.

The inbox between the two threads is bounded (messages and bytes). When it is full the
network thread waits for room: it stops reading, nothing more is acknowledged, and the
broker keeps the rest, so a flood costs the broker's queue, not the runner's memory, and
nothing acknowledged is dropped. A payload over the wire limit (IoT Core never delivers
one) is quarantined as ``oversize`` without running the rules on it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cloud.adapters.local.mqtt_url import parse_broker_url
from cloud.batcher import Batcher
from cloud.ports import Publisher
from cloud.rules.actions import ActionRunner, forwards_to_batcher, is_transient
from cloud.rules.compiled import Compiled, compile_statement
from cloud.rules.definitions import TopicRule
from cloud.rules.definitions import load_rules as _load_rules
from cloud.rules.evaluate import Message, RuleOutput, evaluate
from cloud.rules.topic_filter import topic_matches
from cloud.rules.transport import (
    CrtTransport,
    PahoTransport,
    Transport,
    check_client,
    speaks_mqtt5,
)
from edge.clock import Clock
from edge.errors import ConfigError, PlantwatchError
from edge.wire import (
    BASIC_INGEST_PREFIX,
    MAX_PAYLOAD_BYTES,
    client_id_problem,
    split_basic_ingest,
)

log = logging.getLogger(__name__)

UNKNOWN_RULE_LOG_S = 60.0
"""A Basic Ingest rule name the runner does not run is logged at most this often."""

INBOX_MESSAGES = 2_000
INBOX_BYTES = 32 * 1024 * 1024

_Item = tuple[int, Any]
"""(connection generation, message): a paho ``MQTTMessage`` or a ``transport.Delivery``,
both with ``topic`` and ``payload``."""


class Inbox:
    """A FIFO bounded by message count and payload bytes; ``put`` waits while it is full.

    One message larger than the byte bound is still admitted when the inbox is empty, so a
    big message cannot wedge it. After ``close`` nothing new is admitted (such messages stay
    unacknowledged and come back with the session) and ``get`` returns None once drained.

    Each side wakes the other only when it waits (``_getters``, ``_putters``): the network
    thread puts a message at a time, and a notify per message, mostly for nobody, was a
    good part of what it spent in Python.
    """

    def __init__(self, max_messages: int = INBOX_MESSAGES, max_bytes: int = INBOX_BYTES) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._items: deque[tuple[_Item, int]] = deque()
        self._bytes = 0
        self._closed = False
        self._cond = threading.Condition(threading.Lock())
        self._getters = 0
        self._putters = 0
        self.waits = 0
        """How often ``put`` had to wait for room (back-pressure was applied)."""

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item: _Item, size: int) -> bool:
        """Queue *item*, waiting while the inbox is full; False if it was closed meanwhile."""
        with self._cond:
            if self._full(size) and not self._closed:
                self.waits += 1
                self._putters += 1
                try:
                    while not self._closed and self._full(size):
                        self._cond.wait()
                finally:
                    self._putters -= 1
            if self._closed:
                return False
            self._items.append((item, size))
            self._bytes += size
            if self._getters:
                self._cond.notify_all()
            return True

    def _full(self, size: int) -> bool:
        if not self._items:
            return False
        return len(self._items) >= self.max_messages or self._bytes + size > self.max_bytes

    def _wait_for_items(self) -> None:
        self._getters += 1
        try:
            while not self._items and not self._closed:
                self._cond.wait()
        finally:
            self._getters -= 1

    def get(self) -> _Item | None:
        """The next item, waiting for one; None once closed and drained."""
        with self._cond:
            self._wait_for_items()
            return self._pop()

    def get_nowait(self) -> _Item | None:
        """The next item if one is queued; raises ``queue.Empty`` if none; None once closed."""
        with self._cond:
            if not self._items and not self._closed:
                raise queue.Empty
            return self._pop()

    def get_many(self, limit: int) -> list[_Item] | None:
        """Up to *limit* items, waiting for the first; None once closed and drained. One
        lock and at most one wake-up for all of them, where ``get_nowait`` takes one each."""
        with self._cond:
            self._wait_for_items()
            items = self._items
            if not items:
                return None
            taken: list[_Item] = []
            freed = 0
            while items and len(taken) < limit:
                item, size = items.popleft()
                taken.append(item)
                freed += size
            self._bytes -= freed
            if self._putters:
                self._cond.notify_all()
            return taken

    def _pop(self) -> _Item | None:
        if not self._items:
            return None
        item, size = self._items.popleft()
        self._bytes -= size
        if self._putters:
            self._cond.notify_all()
        return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def load_rules(path: str | None = None) -> list[TopicRule]:
    """Rules from *path*, or the project's ``cloud/rules/default_rules.json``."""
    return _load_rules(Path(path) if path else None)


def rule_filters(rules: Sequence[TopicRule]) -> list[str]:
    """The FROM filters of the enabled *rules*, each once (a rule without FROM runs on
    Basic Ingest topics only)."""
    return sorted(
        {
            r.statement.topic_filter
            for r in rules
            if not r.disabled and r.statement.topic_filter is not None
        }
    )


def ingest_filters(rules: Sequence[TopicRule]) -> list[str]:
    """Each enabled rule's Basic Ingest topics (``#`` in a FROM filter never matches a
    ``$`` topic, so they need subscriptions of their own)."""
    return [f"{BASIC_INGEST_PREFIX}{r.name}/#" for r in rules if not r.disabled]


def rule_subscriptions(rules: Sequence[TopicRule], shared_group: str | None = None) -> list[str]:
    """What a runner of *rules* subscribes to; the embedded mosquitto subscribes the
    runner's session to the same before any device can connect."""
    filters = rule_filters(rules) + ingest_filters(rules)
    if shared_group:
        return [f"$share/{shared_group}/{f}" for f in filters]
    return filters


class RulesRunner:
    """One MQTT client for all rules; ``start``/``stop`` bracket its life."""

    def __init__(
        self,
        broker_url: str,
        rules: Sequence[TopicRule],
        batcher: Batcher,
        clock: Clock,
        *,
        client_id: str = "plantwatch-rules",
        republisher: Publisher | None = None,
        shared_group: str | None = None,
        protocol: str = "3.1.1",
        client: str = "auto",
        pump_interval_s: float = 0.5,
        connect_timeout_s: float = 10.0,
        max_batch: int = 256,
        inbox_messages: int = INBOX_MESSAGES,
        inbox_bytes: int = INBOX_BYTES,
        max_message_bytes: int = MAX_PAYLOAD_BYTES,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """*on_batch*, if given, is called on the worker thread after each batch with how
        many of its messages were acknowledged: whoever waits for a count (``bench
        ingest``) is woken by it instead of polling the batcher."""
        self.on_batch = on_batch
        self.rules = [r for r in rules if not r.disabled]
        if not republisher and any(
            a is not None and a.kind == "republish"
            for r in self.rules
            for a in (*r.actions, r.error_action)
        ):
            raise ConfigError("a rule has a republish action or errorAction: pass a republisher")
        if protocol not in ("3.1.1", "5"):
            raise ConfigError(f"protocol {protocol!r}: expected '3.1.1' or '5'")
        # the session is persistent, so it needs an id (MQTT-3.1.3-8), and one IoT Core's
        # rules would take: a broker refuses others with a CONNACK that names no reason
        problem = (
            "client id is empty; its persistent session needs one"
            if not client_id
            else client_id_problem(client_id)
        )
        if problem:
            raise ConfigError(f"rules runner: {problem}")
        self.address = parse_broker_url(broker_url)
        self.url = self.address.url
        self.batcher = batcher
        self.clock = clock
        self.actions = ActionRunner(batcher, republisher)
        self.filters = rule_filters(self.rules)
        self._compiled = [
            (r, compile_statement(r.statement, defer_encoding=True), forwards_to_batcher(r))
            for r in self.rules
        ]
        """Each rule, its compiled form if it has one, and whether its output is only the
        envelope the batcher would take apart again: then the message goes to the batcher
        directly (:meth:`ActionRunner.forward`)."""
        self._routes: dict[str, list[tuple[TopicRule, Compiled | None, bool]]] = {}
        self._by_name = {entry[0].name: entry for entry in self._compiled}
        self.ingest_filters = ingest_filters(self.rules)
        """Each enabled rule's Basic Ingest topics (``#`` in a FROM filter never matches a
        ``$`` topic, so they need subscriptions of their own)."""
        self.shared_group = shared_group
        self.pump_interval_s = pump_interval_s
        self.connect_timeout_s = connect_timeout_s
        self.messages = 0
        self.failures = 0
        self.batches = 0
        """Batches the worker took from the inbox (each one spool commit)."""
        self._thread_ids: dict[str, int] = {}
        self.counts: Counter[str] = Counter()
        """``oversize`` messages quarantined unread, ``callback_errors`` of paho callbacks,
        ``unknown_rule``: Basic Ingest messages naming a rule the runner does not run."""
        self._unknown_logged: dict[str, float] = {}
        """Rule name -> when an unknown Basic Ingest rule was last logged."""
        self.max_message_bytes = max_message_bytes
        self._inbox_bounds = (inbox_messages, inbox_bytes)
        self._stop = threading.Event()
        self._pump_thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self.inbox = Inbox(*self._inbox_bounds)
        self.max_batch = max_batch
        check_client(client)
        self.client_kind = client
        """``auto``, ``paho`` or ``crt`` until ``start``; then the client in use."""
        self._client_id = client_id
        self._protocol = protocol
        self.transport: Transport | None = None

    @property
    def thread_ids(self) -> dict[str, int]:
        """Native ids of the ``network`` (the MQTT client's), ``worker`` and ``flush`` (the
        pump's: it writes the due windows) threads, for CPU accounting."""
        ids = dict(self._thread_ids)
        pump = self._pump_thread
        if pump is not None and pump.native_id is not None:
            ids["flush"] = pump.native_id
        if self.transport is not None and self.transport.thread_id is not None:
            ids["network"] = self.transport.thread_id
        return ids

    def subscriptions(self) -> list[str]:
        return rule_subscriptions(self.rules, self.shared_group)

    def start(self) -> None:
        self.inbox = Inbox(*self._inbox_bounds)
        self._worker = threading.Thread(target=self._work_loop, name="rules-worker", daemon=True)
        self._worker.start()
        # The worker acknowledges through ``self.transport``: it must be set before the
        # CONNACK, since a resumed session's redeliveries can arrive, be stored and be
        # acknowledged before ``connect`` returns (an ack without a transport is dropped).
        self.transport = self._transport()
        try:
            self.transport.connect(self.connect_timeout_s)
        except BaseException:
            self.transport = None
            self.inbox.close()
            self._worker.join()
            self._worker = None
            raise
        self.client_kind = self.transport.kind
        self._stop.clear()
        self._pump_thread = threading.Thread(target=self._pump_loop, name="rules-pump", daemon=True)
        self._pump_thread.start()

    def _transport(self) -> Transport:
        """The chosen client, not yet connected. ``auto`` is awscrt's MQTT 5 client where a
        probe CONNECT gets an MQTT 5 answer, else paho (amqtt answers at once)."""
        kind = self.client_kind
        if kind == "auto":
            kind = "crt" if speaks_mqtt5(self.address, min(self.connect_timeout_s, 2.0)) else "paho"
            log.info("%s: rules runner uses the %s MQTT client", self.url, kind)
        if kind == "crt":
            return CrtTransport(
                self.address,
                self._client_id,
                self.subscriptions(),
                self._on_message,
                self.counts,
                connack_timeout_ms=int(1000 * self.connect_timeout_s),
            )
        return PahoTransport(
            self.address,
            self._client_id,
            self.subscriptions(),
            self._on_message,
            self.counts,
            protocol=self._protocol,
        )

    def stop(self) -> None:
        """Finish the queued messages, disconnect, then write every pending window
        (``Batcher.flush_all``)."""
        self._stop.set()
        if self._pump_thread is not None:
            self._pump_thread.join()
            self._pump_thread = None
        if self._worker is not None:
            self.inbox.close()
            self._worker.join()
            self._worker = None
        if self.transport is not None:
            self.transport.close()
        self.batcher.flush_all()

    def pump(self) -> None:
        """Write the windows that are due; the runner's own thread calls this too."""
        self.batcher.flush_due()

    def _pump_loop(self) -> None:
        while not self._stop.wait(self.pump_interval_s):
            try:
                self.pump()
            except PlantwatchError as exc:
                log.error("batcher flush failed (will retry): %s", exc)

    # the MQTT client's thread
    def _on_message(self, generation: int, msg: Any) -> None:
        # Waits while the inbox is full: back-pressure through the broker, nothing acked.
        self.inbox.put((generation, msg), len(msg.payload))

    # worker thread
    def _work_loop(self) -> None:
        self._thread_ids["worker"] = threading.get_native_id()
        while True:
            batch = self.inbox.get_many(self.max_batch)
            if batch is None:  # closed and drained
                return
            self.batches += 1
            try:
                self._process(batch)
            except Exception:  # the worker outlives any one batch; those stay unacknowledged
                self.failures += len(batch)
                log.exception("a batch of %d messages failed; not acknowledged", len(batch))

    def _process(self, batch: list[_Item]) -> None:
        done = self.process(batch)
        transport = self.transport
        if transport is not None:
            for generation, msg in done:
                transport.ack(generation, msg)
        if self.on_batch is not None:
            self.on_batch(len(done))

    def process(self, batch: Sequence[_Item]) -> list[_Item]:
        """Run the rules on a batch of received messages with one spool commit; returns the
        messages that may now be acknowledged (none when the commit failed)."""
        done: list[_Item] = []
        try:
            with self.batcher.batch():
                for generation, msg in batch:
                    try:
                        self.handle(msg.topic, msg.payload, client_id="n/a")
                    except Exception as exc:
                        if is_transient(exc):  # the store or broker is down: redelivered
                            raise
                        self._set_aside(msg.topic, msg.payload, exc)
                    done.append((generation, msg))
        except PlantwatchError as exc:
            self.failures += len(batch)
            log.error(
                "storage or broker failed; %d messages not acknowledged (redelivered): %s",
                len(batch),
                exc,
            )
            return []
        return done

    def _set_aside(
        self, topic: str, payload: bytes, exc: Exception, client_id: str = "n/a"
    ) -> None:
        """Quarantine a message whose rules raised: left unacknowledged, it would come back
        after every reconnect and fail the same way, forever (so would a refusal,
        ``RefusedError``, or bad input, ``UserError``). Transient storage errors are not
        taken here: those leave the batch unacknowledged, to be redelivered once the store
        works again."""
        self.failures += 1
        self.counts["rule_failed"] += 1
        log.error(
            "message on %s: the rules raised %s: %s; quarantined", topic, type(exc).__name__, exc
        )
        self._quarantine(
            "rule_failed",
            f"the rules raised {type(exc).__name__}: {exc}",
            payload,
            topic,
            client_id,
        )

    def handle(self, topic: str, payload: bytes, *, client_id: str = "n/a") -> None:
        """Evaluate every matching rule on one message and run its actions."""
        self.messages += 1
        if len(payload) > self.max_message_bytes:
            self.counts["oversize"] += 1
            self._quarantine(
                "oversize",
                f"payload is {len(payload)} bytes; the limit is {self.max_message_bytes}",
                payload,
                topic,
                client_id,
            )
            return
        received_ms = int(self.clock.now() * 1000)
        if topic.startswith(BASIC_INGEST_PREFIX):
            self._basic_ingest(topic, payload, client_id, received_ms)
            return
        routes = self._routes.get(topic)
        if routes is None:
            routes = self._route(topic)
        message: Message | None = None
        for rule, compiled, forward in routes:
            # IoT Core runs each matching rule on its own: one that fails for good is set
            # aside alone, and the rules after it still get the message
            try:
                if forward:
                    self.actions.forward(rule, topic, payload, client_id, received_ms)
                    continue
                if message is None:
                    message = Message(topic, payload, client_id, received_ms)
                if compiled is not None:
                    output: RuleOutput | None = compiled(message)
                else:
                    output = evaluate(rule.statement, message, defer_encoding=True)
                if output is not None:
                    self.actions.run(rule, output, message)
            except Exception as exc:
                if is_transient(exc):  # the store or broker is down: redelivered
                    raise
                self._set_aside(topic, payload, exc, client_id)

    def _quarantine(
        self, reason: str, error: str, payload: bytes, topic: str, client_id: str
    ) -> None:
        self.batcher.quarantine.put(
            reason,
            error,
            bytes(payload),
            topic=topic,
            client_id=client_id,
            received_at=self.clock.now(),
        )

    def _route(self, topic: str) -> list[tuple[TopicRule, Compiled | None, bool]]:
        """The rules whose FROM filter matches *topic*, remembered per topic (a fleet has
        few), each with its compiled form if it has one and whether it forwards."""
        routes = [
            (rule, compiled, forward)
            for rule, compiled, forward in self._compiled
            if rule.statement.topic_filter is not None
            and topic_matches(rule.statement.topic_filter, topic)
        ]
        if len(self._routes) >= 100_000:
            self._routes.clear()
        self._routes[topic] = routes
        return routes

    def _log_unknown_rule(self, name: str, topic: str) -> None:
        """One line per rule name per minute (IoT Core counts these as ``RuleNotFound``): a
        device publishing to a wrong name all day is a counter, not a flooded log."""
        now = self.clock.now()
        last = self._unknown_logged.get(name)
        if last is not None and now - last < UNKNOWN_RULE_LOG_S:
            return
        if len(self._unknown_logged) >= 10_000:  # names seen within the minute are kept
            self._unknown_logged = {
                n: t for n, t in self._unknown_logged.items() if now - t < UNKNOWN_RULE_LOG_S
            }
        self._unknown_logged[name] = now
        log.warning(
            "Basic Ingest: %r names rule %r, which is not loaded or is disabled: no rule gets "
            "it (counted and quarantined as unknown_rule, logged once a minute per rule name); "
            "add or enable the rule, or correct the device's topic",
            topic,
            name,
        )

    def _basic_ingest(self, topic: str, payload: bytes, client_id: str, received_ms: int) -> None:
        """IoT Core Basic Ingest (``$aws/rules/<rule>/<topic>``): the named rule alone runs,
        on the topic without the prefix, whatever its FROM filter says (AWS makes FROM
        optional for such rules). Only enabled rules are subscribed; a delivery naming any
        other rule is quarantined rather than dropped unseen."""
        name, inner = split_basic_ingest(topic) or ("", topic)
        entry = self._by_name.get(name)
        if entry is None:
            self.counts["unknown_rule"] += 1
            self._log_unknown_rule(name, topic)
            self._quarantine(
                "unknown_rule",
                f"Basic Ingest topic names rule {name!r}, which is not loaded or is disabled",
                payload,
                topic,
                client_id,
            )
            return
        rule, compiled, forward = entry
        if forward:
            self.actions.forward(rule, inner, payload, client_id, received_ms)
            return
        message = Message(inner, payload, client_id, received_ms)
        if compiled is not None:
            output: RuleOutput | None = compiled(message)
        else:
            output = evaluate(rule.statement, message, defer_encoding=True, match_from=False)
        if output is not None:
            self.actions.run(rule, output, message)
