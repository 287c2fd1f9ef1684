"""Agent: readings -> durable queue -> QoS 1 publishes; shadow commands -> handlers.

Three threads: *link* opens connections (jittered exponential backoff) and re-attaches the
shadow client on each; *sender* forms messages from the queue and publishes them within an
in-flight window and a publish-rate limit, deleting a message only when its PUBACK arrives;
*poller* polls registered sources. A message that is not acknowledged (link lost, broker
restarted, ack timeout) stays queued and is re-sent under the same ``msg_id``.

Nothing is refused silently. Every reading ``submit`` does not queue is counted by reason
(``buffer_full``, ``invalid`` for readings outside the wire contract, ``storage_error``,
``unknown_asset`` for an asset not in the configuration,
``mode_stop`` for readings polled while the asset is commanded to stop) in ``refused`` and
``refused_by_reason``. A failure inside the sender (the queue's disk, for one) does not end
it: the sender backs off (the link's backoff settings) and tries again, and ``status()``
shows it as ``sender: backing_off`` with ``sender_errors`` and the last error, or ``stopped``
should the thread ever end, instead of a healthy "connected".
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from awscrt import mqtt

from edge import commands
from edge.buffer import (
    MIN_RESERVE_BYTES,
    RESERVE_BYTES,
    BufferFullError,
    SqliteBuffer,
    check_readings,
)
from edge.clock import Clock
from edge.commands import MODES, CommandError
from edge.errors import ConfigError, StorageError, UserError, WireFormatError
from edge.files import write_private
from edge.logs import LineEvery
from edge.shadow import SUBSCRIPTIONS_PER_THING, Handler, ShadowSync
from edge.sources import Source
from edge.transport import CrtTransport, LinkDown, TlsConfig, close_connection, parse_endpoint
from edge.wire import (
    BASIC_INGEST_PREFIX,
    MAX_PAYLOAD_BYTES,
    MAX_PUBLISHES_PER_S,
    MAX_STATUS_ASSETS,
    MAX_STATUS_BYTES,
    MAX_SUBSCRIPTIONS,
    MAX_TOPIC_BYTES,
    NAME_RE,
    RULE_NAME_RE,
    STATUS_ERROR_ROOM,
    DeviceStatus,
    Sample,
    Telemetry,
    encode,
    encode_status,
    largest_status_bytes,
    status_topic,
    telemetry_topic,
)

log = logging.getLogger("edge.agent")

IDLE_WAIT_S, DUE_WAIT_MIN_S = 0.05, 0.005
"""The sender's longest sleep with nothing due (a submit or an ack wakes it sooner), and
its shortest one before a partial batch falls due (a clock that stands still, as in
tests, must not make it spin)."""


STABLE_LINK_S = 30.0
"""A link must have been up this long (seconds) for the reconnect backoff to start over,
as the AWS IoT Device SDK's ``minConnectedTimeToResetReconnectDelayMs`` (30 s). A link that
drops at once (a second device taking over the same client id, which IoT Core allows once
a second, or a policy refusing its publishes) would otherwise reconnect in a tight loop."""

TAKEOVER_HINT_AFTER = 3
"""Links in a row that dropped within :data:`STABLE_LINK_S` of connecting before the agent
says another client may hold its client id: a second connection with one client id
disconnects the first (IoT Core, and MQTT for any broker), so two agents started with one
sender take turns on the link for good, each seeing only "socket is closed"."""

REFUSAL_LOG_INTERVAL_S = 60.0
"""The least time (seconds) between two lines about publishes the broker refused."""

CONNECT_INTERVAL_S = 1.0
"""The least time (seconds) between the starts of two connection attempts, whatever the
backoff settings: IoT Core takes one CONNECT per second per client id and throttles the
rest, so a broker refusing the agent (wrong credentials, a policy) gets one try a second."""


MIN_ACK_TIMEOUT_S = 1.0
"""The shortest ``ack_timeout_s``: a PUBACK may take hundreds of milliseconds on a busy
broker or a slow link, and a link given less counted as dead and reconnected without end."""
MAX_ACK_TIMEOUT_S = 86_400.0
MAX_OPERATION_TIMEOUT_S = 50.0
"""The longest ``operation_timeout_s``: a publish whose PUBACK was lost is sent again
within the minute, not held as long as a dead link would be."""


def agent_version() -> str:
    """The installed plantwatch version, which the agent reports in its status."""
    from importlib import metadata

    try:
        return metadata.version("plantwatch")
    except metadata.PackageNotFoundError:
        return "0.0.0+local"


@dataclass(frozen=True)
class AgentConfig:
    site: str
    sender: str
    """Client id (= thing name on IoT Core) and the ``sender`` of every message."""
    broker_url: str
    queue_path: str
    assets: tuple[str, ...]
    samples_per_message: int = 20
    max_queue_bytes: int = 256 * 1024 * 1024
    full_policy: str = "drop_oldest"
    protocol: str = "auto"
    tls: TlsConfig | None = None
    shadow: bool = True
    max_queue_age_s: float | None = None
    synchronous: str = "FULL"
    queue_reserve_bytes: int = RESERVE_BYTES
    """Free disk the queue leaves for forming and acknowledging what it holds: below it, new
    readings are refused (at least :data:`MIN_RESERVE_BYTES`)."""
    max_batch_delay_s: float = 1.0
    """A partial message leaves after this long (clock seconds) rather than waiting to fill."""
    send_when_idle: bool = False
    """A partial message also leaves at once while no publish awaits its PUBACK (Nagle's rule).

    Readings then wait only for the link, not for the delay: a lone reading goes out as it
    comes while the link is idle, and readings batch up behind a message in flight. On a
    fast link that is up to one message per reading, each one billed by IoT Core, so it is
    off by default: a latency-first setting, for a user who pays messages for alert time."""
    max_publishes_per_s: float = 80.0
    """IoT Core allows 100 publishes/s per connection, in and out; shadow traffic needs room."""
    max_inflight: int = 50
    """IoT Core allows 100 unacknowledged QoS 1 publishes per client."""
    max_message_bytes: int = MAX_PAYLOAD_BYTES - 512
    keep_alive_s: int = 300
    ping_timeout_ms: int = 3000
    ack_timeout_s: float = 5.0
    """No PUBACK at all for this long (wall seconds, :data:`MIN_ACK_TIMEOUT_S` to
    :data:`MAX_ACK_TIMEOUT_S`) while publishes wait: the link is dead.

    Catches a half-open TCP link within seconds while data flows, even with IoT Core's
    long keep-alive; a throttled link (IoT Core delays past 512 KiB/s) keeps acknowledging."""
    operation_timeout_s: float = 25.0
    """How long (seconds, 1 to :data:`MAX_OPERATION_TIMEOUT_S`) one publish waits for its
    PUBACK before awscrt gives it up and the agent sends it again, on the same link.

    Catches a single lost PUBACK while others keep coming (which ``ack_timeout_s`` does not
    see); without it the reading waited out awscrt's own, far longer, wait."""
    backoff_min_s: float = 0.2
    backoff_max_s: float = 30.0
    sampling_interval_s: float = 1.0
    status_path: str | None = None
    """Where the agent writes its status JSON once a second; default ``<queue_path>.status.json``."""
    status_interval_s: float = 5.0
    """How often (wall seconds) the agent publishes its status to ``dt/<app>/<site>/<sender>/status``
    while connected; it also publishes on every connect, and its MQTT last will says
    ``offline`` when the connection drops."""
    basic_ingest_rule: str | None = None
    """Publish telemetry through IoT Core Basic Ingest to this rule
    (``$aws/rules/<rule>/dt/<app>/<site>/<asset>/telemetry``): the rule alone gets it, with no
    messaging charge, and no subscriber sees it (the streaming scorer does not). The status
    topic stays a plain publish."""
    username: str | None = None
    """Broker credentials (``plantwatch up --auth``); IoT Core uses the mTLS certificate."""
    password: str | None = field(default=None, repr=False)

    def check(self) -> None:
        """Refuse a config the agent cannot run with; each error names its field in
        ``option``, so the file loader can point at the key in the file."""
        names = [("site", self.site), ("sender", self.sender)]
        names += [("assets", asset) for asset in self.assets]
        for option, value in names:
            if not NAME_RE.fullmatch(value):
                raise ConfigError(f"{value!r}: must match {NAME_RE.pattern}", option=option)
        for asset in self.assets:
            topic = telemetry_topic(self.site, asset)
            if len(topic.encode()) > MAX_TOPIC_BYTES:  # IoT Core would refuse every publish
                raise ConfigError(
                    f"{asset!r}: topic {topic} is {len(topic.encode())} bytes; "
                    f"IoT Core takes at most {MAX_TOPIC_BYTES}",
                    option="assets",
                )
        topic = status_topic(self.site, self.sender)
        if len(topic.encode()) > MAX_TOPIC_BYTES:  # also the last will: the CONNECT would fail
            raise ConfigError(
                f"{self.sender!r}: status topic {topic} is {len(topic.encode())} bytes; "
                f"IoT Core takes at most {MAX_TOPIC_BYTES}",
                option="sender",
            )
        self._check_status_size()
        rule = self.basic_ingest_rule
        if rule is not None and not RULE_NAME_RE.fullmatch(rule):
            raise ConfigError(
                f"{rule!r}: an IoT rule name must match {RULE_NAME_RE.pattern}",
                option="basic_ingest_rule",
            )
        if len(set(self.assets)) != len(self.assets):
            raise ConfigError("names must be unique", option="assets")
        if not self.assets:
            raise ConfigError("at least one asset is required", option="assets")
        if self.max_queue_bytes < MAX_PAYLOAD_BYTES:
            raise ConfigError(
                f"{self.max_queue_bytes}: expected at least {MAX_PAYLOAD_BYTES} bytes, what one "
                "publish carries; a smaller queue drops or refuses readings as they come",
                option="max_queue_bytes",
            )
        if self.queue_reserve_bytes < MIN_RESERVE_BYTES:
            raise ConfigError(
                f"{self.queue_reserve_bytes}: expected at least {MIN_RESERVE_BYTES} (6 MiB): "
                "forming and acknowledging messages write up to a 4 MB WAL, and a queue that "
                "keeps less free can fill its disk and never send again",
                option="queue_reserve_bytes",
            )
        if self.samples_per_message < 1:
            raise ConfigError("expected an integer >= 1", option="samples_per_message")
        if not MIN_ACK_TIMEOUT_S <= self.ack_timeout_s <= MAX_ACK_TIMEOUT_S:
            raise ConfigError(
                f"expected seconds from {MIN_ACK_TIMEOUT_S:g} to {MAX_ACK_TIMEOUT_S:g}",
                option="ack_timeout_s",
            )
        if not 1 <= self.operation_timeout_s <= MAX_OPERATION_TIMEOUT_S:
            raise ConfigError(
                f"expected seconds from 1 to {MAX_OPERATION_TIMEOUT_S:g}",
                option="operation_timeout_s",
            )
        if not 0.5 <= self.status_interval_s <= 3600:
            raise ConfigError("expected seconds from 0.5 to 3600", option="status_interval_s")
        if self.tls is not None:
            self.tls.check()
        if parse_endpoint(self.broker_url).iot_core:
            self._check_iot_core_limits()
        if self.keep_alive_s * 1000 <= self.ping_timeout_ms:  # awscrt refuses it, every connect
            why = "0 (no keep-alive)" if self.keep_alive_s == 0 else f"{self.keep_alive_s} s"
            raise ConfigError(
                f"{why} is not longer than ping_timeout_ms ({self.ping_timeout_ms} ms); the "
                "MQTT client needs a keep-alive longer than its ping timeout",
                option="keep_alive_s",
            )

    def _check_status_size(self) -> None:
        """The status document lists every asset, and a reader refuses one over
        :data:`MAX_STATUS_BYTES` or :data:`MAX_STATUS_ASSETS` assets: the agent would never
        be seen online (its last will too large as well)."""
        size = largest_status_bytes(self.site, self.sender, self.assets, agent_version())
        room = MAX_STATUS_BYTES - STATUS_ERROR_ROOM
        if len(self.assets) > MAX_STATUS_ASSETS or size > room:
            raise ConfigError(
                f"{len(self.assets)} assets make the agent's status document up to {size} "
                f"bytes before its error text; a status document takes at most "
                f"{MAX_STATUS_BYTES} bytes ({room} for the names, the rest for the error) and "
                f"{MAX_STATUS_ASSETS} assets: split the assets across gateways, or use "
                "shorter names",
                option="assets",
            )

    def _check_iot_core_limits(self) -> None:
        """IoT Core's per-connection limits (its message broker quotas): 100 publishes a
        second in and out, the excess dropped; 100 unacknowledged QoS 1 publishes; a
        keep-alive of at most 1200 s, which it applies to a client asking more, so that
        client would be dropped after 1800 s of quiet before it pings; and to one asking 0
        (no keep-alive), which then never pings and is dropped the same way. And 50
        subscriptions per connection: with shadows on, the agent subscribes to
        :data:`SUBSCRIPTIONS_PER_THING` topics per asset, and past the limit its SUBACKs
        fail and it never gets connected."""
        quota = self.subscription_quota_problem()
        if quota is not None:
            raise ConfigError(quota, option="assets")
        if self.keep_alive_s == 0:
            raise ConfigError(
                "0 (no keep-alive) is IoT Core's 1200, and a client that never "
                "pings is dropped after 1800 s of quiet; set 30 to 1200 (devices use 300)",
                option="keep_alive_s",
            )
        rate = self.max_publishes_per_s
        per_second = rate + 1 + 1 / self.status_interval_s  # the pace lets rate + 1 in a second
        if rate <= MAX_PUBLISHES_PER_S < per_second:
            raise ConfigError(
                f"{rate:g} a second, with a status every {self.status_interval_s:g} s, makes up "
                f"to {per_second:.4g} publishes in one second; IoT Core takes "
                f"{MAX_PUBLISHES_PER_S} per connection (in and out) and drops the excess "
                "(leave room: devices use 80)",
                option="max_publishes_per_s",
            )
        for name, value, limit in (
            ("max_publishes_per_s", rate, MAX_PUBLISHES_PER_S),
            ("max_inflight", self.max_inflight, 100),
            ("keep_alive_s", self.keep_alive_s, 1200),
        ):
            if value > limit:
                raise ConfigError(
                    f"{value:g} is over IoT Core's {limit} for one connection", option=name
                )

    def subscription_quota_problem(self) -> str | None:
        """Why IoT Core would refuse some of the agent's subscriptions, if it would: the
        local amqtt broker refuses them as it does, where the agent's config is not checked
        (it cannot tell amqtt from mosquitto, which takes any number)."""
        subscriptions = self.subscriptions
        if subscriptions <= MAX_SUBSCRIPTIONS:
            return None
        return (
            f"{len(self.assets)} assets with shadows need {subscriptions} subscriptions "
            f"({SUBSCRIPTIONS_PER_THING} each) on the agent's one connection; IoT Core "
            f"allows {MAX_SUBSCRIPTIONS} per connection, so at most "
            f"{MAX_SUBSCRIPTIONS // SUBSCRIPTIONS_PER_THING} assets per gateway (split "
            "the assets across gateways, or set shadow = false)"
        )

    @property
    def subscriptions(self) -> int:
        """How many topics the agent subscribes to on its connection."""
        return SUBSCRIPTIONS_PER_THING * len(self.assets) if self.shadow else 0

    @property
    def status_file(self) -> Path:
        return Path(self.status_path or f"{self.queue_path}.status.json")


@dataclass
class _Counters:
    sent_messages: int = 0
    resent_messages: int = 0
    connects: int = 0
    refused: int = 0
    refused_by_reason: dict[str, int] = field(default_factory=dict)
    sender_errors: int = 0
    sender_state: str = "running"
    last_error: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Agent:
    def __init__(self, config: AgentConfig, clock: Clock) -> None:
        config.check()
        self.config = config
        self.clock = clock
        self.buffer = SqliteBuffer(
            config.queue_path,
            clock,
            max_bytes=config.max_queue_bytes,
            max_age_s=config.max_queue_age_s,
            full_policy=config.full_policy,
            synchronous=config.synchronous,
            reserve_bytes=config.queue_reserve_bytes,
        )
        self.transport = CrtTransport(
            config.broker_url,
            config.sender,
            protocol=config.protocol,
            tls=config.tls,
            keep_alive_s=config.keep_alive_s,
            ping_timeout_ms=config.ping_timeout_ms,
            operation_timeout_ms=int(config.operation_timeout_s * 1000),
            remember=Path(f"{config.queue_path}.protocol"),
            will=(
                status_topic(config.site, config.sender),
                encode_status(self._offline_status("connection lost")),
            ),
            username=config.username,
            password=config.password,
        )
        self.shadow = (
            ShadowSync(
                config.assets,
                on_error=self._error,
                current_state=lambda _asset: {"sampling_interval_s": self.sampling_interval_s},
            )
            if config.shadow
            else None
        )
        self.sources: list[Source] = []
        self.sampling_interval_s = config.sampling_interval_s
        self._counters = _Counters()
        # re-entrant: dropping the last reference to an abandoned awscrt connection runs its
        # teardown, and so our PUBACK callbacks, synchronously on whichever thread let go
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._wakes = 0
        """Notifications so far: the sender sleeps only if none came since it looked."""
        self._running = False
        self._draining = False
        self._connection: mqtt.Connection | None = None
        self._generation = 0
        self._link_down = threading.Event()
        self._stopping = threading.Event()
        self._cut_flush = threading.Event()
        self._inflight: dict[int, tuple[int, float]] = {}
        """seq -> (connection generation, wall time sent)."""
        self._resend: list[int] = []
        self._acked: list[int] = []
        self._held: dict[int, tuple[float, int]] = {}
        """seq -> (monotonic time before which it is not sent again, refusals so far): a
        publish the broker refused (an MQTT 5 PUBACK with a failure reason code)."""
        self._refusal_lines = LineEvery(REFUSAL_LOG_INTERVAL_S)
        self._takeover_lines = LineEvery(REFUSAL_LOG_INTERVAL_S)
        self._storage_lines = LineEvery(REFUSAL_LOG_INTERVAL_S)
        self._quick_drops = 0
        """Links in a row that the broker or the network closed within :data:`STABLE_LINK_S`
        of connecting."""
        self._lost = False
        """The current link was closed from the far side, not by the agent (its PUBACK
        watchdog, a stop)."""
        self._lost_error: Exception | None = None
        """awscrt's error for the link the far side closed, reported once it is dropped."""
        self._link_acks = 0
        """PUBACKs of telemetry on the current connection."""
        self._link_pending: set[int] = set()
        """Telemetry sent on the current connection and not acknowledged (a publish that
        failed with the connection is no longer in flight, but still here)."""
        self._threads: list[threading.Thread] = []
        self._sender: threading.Thread | None = None
        self._final_status: dict[str, object] | None = None
        self._closing = False
        self._status_failing = False
        self._last_progress = time.monotonic()
        self._local_applied: dict[str, dict[str, object]] = {a: {} for a in config.assets}
        self._register_defaults()

    @property
    def applied(self) -> dict[str, dict[str, object]]:
        """Per asset, the last applied shadow state (e.g. ``{"mode": "safe"}``)."""
        return self.shadow.applied if self.shadow else self._local_applied

    # -- public API -----------------------------------------------------------------------

    def register_command(self, key: str, handler: Handler) -> None:
        """Handle desired ``key``: ``handler(asset, value) -> applied``; ValueError rejects."""
        if self.shadow is not None:
            self.shadow.register(key, handler)

    def add_source(self, source: Source) -> None:
        self.sources.append(source)

    def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._closing = False
        # messages formed before a crash or restart and never acknowledged go first, same seq
        self._resend = [seq for seq, _asset in self.buffer.formed()]
        for name, target in (
            ("edge-link", self._link_loop),
            ("edge-sender", self._send_loop),
            ("edge-poller", self._poll_loop),
            ("edge-status", self._status_loop),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
            if name == "edge-sender":
                self._sender = thread
        log.info("agent started", extra={"event": "start", "sender": self.config.sender})

    def submit(self, asset: str, samples: Sequence[Sample]) -> None:
        """Commit *samples* of *asset* to the on-disk queue; durable when this returns.

        Samples that are not queued are counted under ``refused`` with the reason before
        the error propagates.
        """
        self._submit(asset, samples, count_invalid=True)

    def _submit(self, asset: str, samples: Sequence[Sample], *, count_invalid: bool) -> None:
        if asset not in self.config.assets:
            self._refuse("unknown_asset", len(samples))
            raise ConfigError(f"asset {asset!r}: not one of this agent's assets")
        try:
            self.buffer.put(asset, samples)
        except BufferFullError:
            self._refuse("buffer_full", len(samples))
            raise
        except StorageError:
            self._refuse("storage_error", len(samples))
            raise
        except UserError:  # outside the wire contract (name, number or time out of range)
            if count_invalid:
                self._refuse("invalid", len(samples))
            raise
        except Exception:
            self._refuse("error", len(samples))
            raise
        with self._wake:
            self._notify()

    def _notify(self) -> None:
        """Wake the sender (the caller holds ``_wake``)."""
        self._wakes += 1
        self._wake.notify_all()

    def _refuse(self, reason: str, readings: int) -> None:
        with self._lock:
            counters = self._counters
            counters.refused += readings
            counters.refused_by_reason[reason] = (
                counters.refused_by_reason.get(reason, 0) + readings
            )

    def stop(self, flush: bool = True, timeout: float = 10.0) -> None:
        """Stop polling; with *flush*, keep sending until the queue is empty or *timeout*."""
        if not self._running:
            return
        deadline = time.monotonic() + timeout
        with self._wake:
            self._draining = True
            self._notify()
        if flush:
            try:
                while time.monotonic() < deadline and not self._cut_flush.is_set():
                    if self.buffer.stats().depth == 0:
                        break
                    self._cut_flush.wait(0.05)
            except Exception as exc:  # the queue failed: stop all the same, keep what it holds
                self._error(f"flush: {exc}")
        # a clean DISCONNECT sends no last will, so the agent says it is offline itself,
        # while its connection is still up, and says nothing after that
        self._closing = True
        self._publish_status(self._offline_status("stopped"), wait_s=1.0)
        self._running = False
        self._stopping.set()
        with self._wake:
            self._notify()
        self._link_down.set()
        for thread in self._threads:
            thread.join(max(0.5, deadline - time.monotonic()))
        self._threads.clear()
        self._drop_connection()
        if self.shadow is not None:
            self.shadow.stop()
        self._write_status()
        try:
            self._final_status = self.status()
        except Exception as exc:
            self._final_status = self._unreadable_status(exc)
        self.buffer.close()
        queued = self._final_status["queue_depth"]
        if queued is None:
            log.warning(
                "agent stopped; the queue could not be read (%s)",
                self._final_status["last_error"],
                extra={"event": "stop", "queued": None},
            )
        elif queued:
            log.warning(
                "agent stopped; %s readings stay queued for the next start",
                queued,
                extra={"event": "stop", "queued": queued},
            )
        else:
            log.info("agent stopped; queue empty", extra={"event": "stop", "queued": 0})

    def _unreadable_status(self, exc: Exception) -> dict[str, object]:
        """The final status when the queue cannot be read: what is known without it."""
        self._error(f"queue: {exc}")
        with self._lock:
            return {
                "sender": self.config.sender,
                "connected": False,
                "sender_state": "stopped",
                "queue_depth": None,
                "refused": self._counters.refused,
                "refused_by_reason": dict(sorted(self._counters.refused_by_reason.items())),
                "last_error": self._counters.last_error,
            }

    def cut_flush(self) -> None:
        """End a :meth:`stop`'s flush now (a second SIGTERM): what is unsent stays queued."""
        self._cut_flush.set()

    def status(self) -> dict[str, object]:
        if self._final_status is not None:
            return dict(self._final_status)
        stats = self.buffer.stats()
        with self._lock:
            counters = self._counters
            sender_state = counters.sender_state
            if self._running and (self._sender is None or not self._sender.is_alive()):
                sender_state = "stopped"
            return {
                "sender": self.config.sender,
                "connected": self._connection is not None,
                "sender_state": sender_state,
                "sender_errors": counters.sender_errors,
                "protocol": self.transport.negotiated,
                "queue_depth": stats.depth,
                "queue_bytes": stats.bytes,
                "oldest_age_s": (
                    round(max(0.0, self.clock.now() - stats.oldest_enq), 3)
                    if stats.oldest_enq is not None
                    else None
                ),
                "sent": stats.sent,
                "dropped": stats.dropped,
                "refused": counters.refused,
                "refused_by_reason": dict(sorted(counters.refused_by_reason.items())),
                "inflight": len(self._inflight),
                "messages_sent": counters.sent_messages,
                "messages_resent": counters.resent_messages,
                "connects": counters.connects,
                "link_drops_in_a_row": self._quick_drops,
                "last_error": counters.last_error,
                "applied": {a: dict(v) for a, v in self.applied.items()},
                "updated": self.clock.now(),
            }

    # -- commands ---------------------------------------------------------------------------

    def _register_defaults(self) -> None:
        """The built-in commands, each checked against the shared catalogue
        (:mod:`edge.commands`), the same ranges the cloud side sends within."""

        def sampling(_asset: str, value: object) -> float | int:
            number = commands.parse_value("sampling_interval_s", value)
            if number is None:
                raise CommandError("sampling_interval_s: expected a number, got null")
            self.sampling_interval_s = float(number)
            return number

        def mode(asset: str, value: object) -> str:
            chosen = commands.parse_value("mode", value)
            if chosen is None:
                raise CommandError("mode: expected one of " + ", ".join(MODES) + ", got null")
            self._tell_sources(asset, "mode", chosen)
            return str(chosen)

        def setpoints(asset: str, value: object) -> dict[str, float]:
            if not isinstance(value, dict):
                raise CommandError(
                    f"setpoints: expected an object of numbers, got {commands.shown(value)}"
                )
            checked = {
                name: commands.parse_value(f"setpoints.{name}", v) for name, v in value.items()
            }
            if any(v is None for v in checked.values()):
                raise CommandError(
                    f"setpoints: expected an object of numbers, got {commands.shown(value)}"
                )
            self._tell_sources(asset, "setpoints", checked)
            return checked

        def sensors(asset: str, value: object) -> dict[str, list[str]]:
            if not isinstance(value, dict) or set(value) != {"enabled"}:
                raise CommandError(
                    f'sensors: expected {{"enabled": [sensor names]}}, got {commands.shown(value)}'
                )
            names = commands.parse_value("sensors.enabled", value["enabled"])
            if names is None:
                raise CommandError("sensors.enabled: expected sensor names, got null")
            applied = {"enabled": list(names)}
            self._tell_sources(asset, "sensors", applied)
            return applied

        self.register_command("sampling_interval_s", sampling)
        self.register_command("sensors", sensors)
        self.register_command("mode", mode)
        self.register_command("setpoints", setpoints)

    def _tell_sources(self, asset: str, key: str, value: object) -> None:
        for source in self.sources:
            apply = getattr(source, "apply", None)
            if apply is not None:
                apply(asset, key, value)

    # -- link -------------------------------------------------------------------------------

    def _link_loop(self) -> None:
        attempt = 0
        while self._running:
            started = time.monotonic()
            up_s = 0.0
            try:
                up_s = self._link_once()
            except LinkDown as exc:
                self._error(str(exc))
            except Exception as exc:  # never let the link thread die
                log.exception("link loop failed", extra={"event": "error"})
                self._error(f"link: {exc}")
                self._stopping.wait(self.config.backoff_max_s)
                continue
            else:
                if up_s >= STABLE_LINK_S or not self._running:
                    attempt = 0
                    with self._lock:
                        self._quick_drops = 0
                    continue
                log.warning(
                    "link dropped after %.1f s; reconnecting with backoff",
                    up_s,
                    extra={"event": "error"},
                )
                if self._lost:
                    self._count_quick_drop()
            attempt = min(attempt + 1, 20)
            cap = min(self.config.backoff_max_s, self.config.backoff_min_s * 2**attempt)
            since = max(up_s, time.monotonic() - started)  # since this attempt's CONNECT
            self._stopping.wait(
                max(random.uniform(self.config.backoff_min_s, cap), CONNECT_INTERVAL_S - since)
            )

    def _count_quick_drop(self) -> None:
        """Count a link that dropped soon after connecting; from :data:`TAKEOVER_HINT_AFTER`
        in a row on, say (a line a minute at most, and in ``last_error``) that another
        client may be connected with this agent's client id."""
        with self._lock:
            self._quick_drops += 1
            drops = self._quick_drops
            if drops < TAKEOVER_HINT_AFTER:
                return
            due = self._takeover_lines.add()
            reason = self.transport.disconnect_reason
            sender = self.config.sender
            message = (
                f"the broker closed the connection {drops} times in a row within "
                f"{STABLE_LINK_S:g} s of accepting it"
                + (f" (it said {reason})" if reason else "")
                + f": another client may be connected with client id {sender!r}, and a "
                "second connection with one client id disconnects the first, so the two take "
                "turns for good; give each agent or device its own sender (thing name), or "
                "check the broker's policy for this device"
            )
            self._counters.last_error = message
        if due:
            log.error(message, extra={"event": "client_id_taken", "drops": drops})

    def _link_once(self) -> float:
        """Connect, subscribe, serve until the link drops; how long it was up (seconds).
        Raise LinkDown to back off."""
        with self._lock:
            generation = self._generation + 1
        self._link_down.clear()
        self._lost = False
        connection = self.transport.connect(lambda error: self._on_interrupted(error, generation))
        try:
            if self.shadow is not None:
                self.shadow.attach(connection)
        except Exception as exc:
            close_connection(connection)
            raise LinkDown(f"shadow subscribe failed: {self._subscribe_failure(exc)}") from exc
        with self._wake:
            self._generation = generation
            self._connection = connection
            self._counters.connects += 1
            self._link_acks = 0
            self._link_pending.clear()
            self._last_progress = time.monotonic()
            # anything in flight on an older connection is re-sent from the queue
            self._resend = sorted(set(self._resend) | set(self._inflight))
            self._inflight.clear()
            self._notify()
        log.info(
            "connected",
            extra={"event": "connected", "protocol": self.transport.negotiated},
        )
        self._publish_status()
        up_since = time.monotonic()
        self._link_down.wait()
        up_s = time.monotonic() - up_since
        with self._wake:
            # A broker closes the connection on a publish it refuses (IoT Core, for one its
            # policy does not allow). Sent first again on every new connection, that message
            # would keep every newer one from going: what a link that dropped soon, having
            # acknowledged nothing, left in flight is held back with backoff instead.
            quiet = self._running and not self._link_acks
            suspects = sorted(self._link_pending | set(self._inflight)) if quiet else []
            suspects = suspects if up_s < STABLE_LINK_S else []
        self._drop_connection()
        if self._lost:
            self._report_lost()
        if suspects:
            with self._wake:
                for seq in suspects:
                    self._hold(seq)
                self._log_held(
                    f"the link dropped after {up_s:.1f} s with no PUBACK; %d unacknowledged "
                    "publish%s (seq %d) kept and sent again with backoff, after newer ones "
                    "(a broker closes the connection on a publish its policy refuses)",
                    len(suspects),
                    suspects[0],
                )
        return up_s

    def _subscribe_failure(self, exc: Exception) -> str:
        """Why the shadow subscriptions failed, in words an operator can act on. awscrt
        reports a SUBACK failure code only by the topic's name, which read like a client
        fault; it is the broker's refusal: its policy, or IoT Core's subscription quota."""
        quota = self.config.subscription_quota_problem()
        why = f" ({quota})" if quota is not None else ""
        if not isinstance(exc, mqtt.SubscribeError):
            return f"{exc}{why}"
        return (
            f"the broker refused the subscription to {str(exc)[:200]!r} (SUBACK failure code "
            f"0x80){why}; the readings stay queued and the agent connects again with backoff: "
            f"check that the broker's policy lets {self.config.sender!r} subscribe to and "
            "receive its things' shadow topics, or set shadow = false"
        )

    def _on_interrupted(self, error: Exception, generation: int) -> None:
        with self._lock:
            current = self._generation
        if generation >= current:  # a late callback of an abandoned connection is ignored
            self._lost_error = error
            self._lost = True
            self._link_down.set()

    def _report_lost(self) -> None:
        """The line of a link the broker or the network ended, once the connection is
        closed: awscrt names only the hangup, and an MQTT 5 broker's DISCONNECT, which says
        why it closed the link, reaches the transport after the interruption."""
        reason = self.transport.disconnect_reason
        said = f" (the broker's DISCONNECT said {reason})" if reason else ""
        self._error(f"connection lost: {self._lost_error}{said}")

    def _drop_connection(self) -> None:
        with self._wake:
            connection, self._connection = self._connection, None
            self._resend = sorted(set(self._resend) | set(self._inflight))
            self._inflight.clear()
        if self.shadow is not None:
            self.shadow.detach()
        if connection is not None:
            log.info("disconnected", extra={"event": "disconnected"})
            close_connection(connection)

    def _error(self, message: str) -> None:
        with self._lock:
            self._counters.last_error = message
        log.warning(message, extra={"event": "error"})

    # -- sending ----------------------------------------------------------------------------

    def _send_loop(self) -> None:
        """Supervises :meth:`_send`: an error backs off and retries, never ends the sender."""
        attempt = 0
        while self._running:
            try:
                self._send()
                return
            except Exception as exc:
                with self._lock:
                    if self._counters.sender_state == "running":
                        attempt = 0  # it had recovered: start the backoff over
                    self._counters.sender_errors += 1
                    self._counters.sender_state = "backing_off"
                attempt = min(attempt + 1, 20)
                cap = min(self.config.backoff_max_s, self.config.backoff_min_s * 2**attempt)
                log.exception("sender failed; retrying", extra={"event": "error"})
                self._error(f"sender: {exc}")
                self._stopping.wait(random.uniform(self.config.backoff_min_s, cap))

    def _send(self) -> None:
        tokens = 0.0
        last = time.monotonic()
        healthy = False
        while self._running:
            self._flush_acks()
            with self._wake:
                connection = self._connection
                generation = self._generation
                room = self.config.max_inflight - len(self._inflight)
                idle = not self._inflight
                oldest = min((sent for _g, sent in self._inflight.values()), default=None)
                progress = self._last_progress
            now = time.monotonic()
            timeout = self.config.ack_timeout_s
            if oldest is not None and now - oldest > timeout and now - progress > timeout:
                # a throttled link still acknowledges something; a dead one acknowledges nothing
                self._error(f"no PUBACK for {timeout:g} s; reconnecting")
                with self._wake:
                    self._last_progress = now
                self._link_down.set()
            if connection is None or room <= 0:
                with self._wake:
                    self._wake.wait(0.05)
                continue
            rate = self.config.max_publishes_per_s
            # A bucket of one token paces publishes evenly: any one-second window holds at
            # most rate + 1 of them, even right after a stall, where a bucket of `rate`
            # tokens would let a whole second's worth out at once on top of the pace.
            tokens = min(1.0, tokens + (now - last) * rate)
            last = now
            if tokens < 1:
                time.sleep((1 - tokens) / rate)
                continue
            with self._wake:
                looked = self._wakes
            message, due_in = self._next_message(idle)
            if not healthy:  # the queue answered: this attempt works
                healthy = True
                with self._lock:
                    self._counters.sender_state = "running"
            if message is None:
                # asleep until a submit wakes it or the oldest partial batch falls due,
                # not a fixed pace: a reading must not wait out a tick on top of its delay
                with self._wake:
                    if self._wakes == looked:
                        self._wake.wait(min(IDLE_WAIT_S, max(DUE_WAIT_MIN_S, due_in)))
                continue
            tokens -= 1
            self._publish(connection, generation, message)

    def _next_message(self, idle: bool = False) -> tuple[Telemetry | None, float]:
        """The next message to send, or None and how long (clock seconds, at most
        :data:`IDLE_WAIT_S`) until a partial batch falls due; *idle*: no publish awaits
        its PUBACK."""
        cfg = self.config
        while True:
            with self._lock:
                seq = self._next_resend()
            if seq is None:
                break
            try:
                message = self.buffer.message(cfg.site, cfg.sender, seq)
            except Exception:
                with self._lock:  # still owed: re-sent once the queue answers again
                    self._resend.insert(0, seq)
                raise
            if message is not None:
                with self._lock:
                    self._counters.resent_messages += 1
                return message, 0.0
            with self._lock:  # dropped from the queue meanwhile (drop_oldest, max_age_s)
                self._held.pop(seq, None)
        now = self.clock.now()
        due_in = IDLE_WAIT_S
        for asset, (count, oldest) in sorted(self.buffer.unformed().items(), key=lambda i: i[1][1]):
            backlog = count > cfg.samples_per_message
            due = (
                count >= cfg.samples_per_message
                or now - oldest >= cfg.max_batch_delay_s
                or now < oldest  # the clock stepped back: do not hold the batch for the step
                or self._draining
                or (idle and cfg.send_when_idle)
            )
            if not due:
                due_in = min(due_in, oldest + cfg.max_batch_delay_s - now)
                continue
            limit = 100_000 if backlog else cfg.samples_per_message
            message = self.buffer.form(cfg.site, cfg.sender, asset, limit, cfg.max_message_bytes)
            return message, 0.0 if message is not None else IDLE_WAIT_S
        return None, max(0.0, due_in)

    def _next_resend(self) -> int | None:
        """The oldest seq owed a resend that is not held back after a refusal (the caller
        holds the lock); a held one waits out its backoff while newer messages go."""
        now = time.monotonic()
        for i, seq in enumerate(self._resend):
            hold = self._held.get(seq)
            if hold is None or hold[0] <= now:
                return self._resend.pop(i)
        return None

    def _telemetry_topic(self, message: Telemetry) -> str:
        rule = self.config.basic_ingest_rule
        if rule is None:
            return message.topic
        return f"{BASIC_INGEST_PREFIX}{rule}/{message.topic}"

    def _publish(self, connection: mqtt.Connection, generation: int, message: Telemetry) -> None:
        seq = message.seq
        try:
            payload = encode(message)
        except WireFormatError as exc:  # a reading an older agent queued whole: split it
            self.buffer.unform(seq)
            self._error(
                f"message seq {seq} not sent ({exc}); its readings are formed again in parts"
            )
            with self._lock:
                self._held.pop(seq, None)
            return
        with self._lock:
            self._inflight[seq] = (generation, time.monotonic())
            if generation == self._generation:
                self._link_pending.add(seq)
        try:
            future, _packet_id = connection.publish(
                self._telemetry_topic(message), payload, mqtt.QoS.AT_LEAST_ONCE
            )
        except Exception as exc:
            self._nack(seq, generation, exc)
            return
        future.add_done_callback(lambda f: self._on_puback(seq, generation, f))
        with self._lock:
            self._counters.sent_messages += 1

    def _on_puback(self, seq: int, generation: int, future: object) -> None:
        error = future.exception()  # type: ignore[attr-defined]
        if error is not None:
            self._nack(seq, generation, error)
            return
        with self._wake:
            self._acked.append(seq)
            self._inflight.pop(seq, None)
            self._held.pop(seq, None)
            if generation == self._generation:
                self._link_acks += 1
                self._link_pending.discard(seq)
            self._last_progress = time.monotonic()
            self._notify()

    def _nack(self, seq: int, generation: int, error: BaseException) -> None:
        refused = getattr(error, "name", "") == "AWS_ERROR_MQTT_ACK_REASON_CODE_FAILURE"
        with self._wake:
            entry = self._inflight.get(seq)
            if entry is not None and entry[0] == generation:
                del self._inflight[seq]
                self._resend.append(seq)
                self._resend.sort()
                if refused:  # sent at once, it would be refused again: a loop
                    self._hold(seq)
                    self._log_held(
                        "the broker refused %d publish%s (seq %d); kept in the queue and sent "
                        "again with backoff: check the broker's policy for this device's topics",
                        1,
                        seq,
                    )
            self._counters.last_error = f"publish seq {seq}: {error}"
            self._notify()

    def _hold(self, seq: int) -> None:
        """Hold back a message the broker refused, with the link's backoff doubling per
        refusal, at least :data:`CONNECT_INTERVAL_S` (the caller holds the lock)."""
        refusals = self._held.get(seq, (0.0, 0))[1] + 1
        cap = min(self.config.backoff_max_s, self.config.backoff_min_s * 2 ** min(refusals, 20))
        delay = max(random.uniform(self.config.backoff_min_s, cap), CONNECT_INTERVAL_S)
        self._held[seq] = (time.monotonic() + delay, refusals)

    def _log_held(self, text: str, count: int, seq: int) -> None:
        """One warning line a minute at most about held-back publishes, with the count since
        the last line (the caller holds the lock)."""
        n = self._refusal_lines.add(count)
        if n:
            log.warning(text, n, "" if n == 1 else "es", seq, extra={"event": "publish_refused"})

    def _flush_acks(self) -> None:
        with self._lock:
            acked, self._acked = self._acked, []
        if not acked:
            return
        try:
            self.buffer.ack(acked)
        except Exception:
            with self._lock:  # kept for the next try: an ack lost here would resend them
                self._acked = acked + self._acked
            raise

    # -- sources and status -----------------------------------------------------------------

    def _poll_loop(self) -> None:
        while self._running and not self._draining:
            started = self.clock.now()
            for source in self.sources:
                grouped: dict[str, list[Sample]] = {}
                try:
                    for asset, sample in source.poll(started):
                        grouped.setdefault(asset, []).append(sample)
                except Exception as exc:  # a plugin's bug must not end the poller
                    self._error(f"source {type(source).__name__}: {exc}")
                    continue
                for asset, samples in grouped.items():
                    applied = self.applied.get(asset, {})
                    if applied.get("mode") == "stop":
                        self._refuse("mode_stop", len(samples))
                        continue
                    enabled = (applied.get("sensors") or {}).get("enabled")  # type: ignore[union-attr]
                    if enabled is not None:
                        try:
                            samples = _only(samples, set(enabled))
                        except (AttributeError, TypeError) as exc:  # not a Sample
                            self._refuse("invalid", len(samples))
                            self._error(f"source {type(source).__name__}: {exc}")
                            continue
                    if samples:
                        self._queue_polled(asset, samples)
            if not self.sources:
                with self._wake:
                    self._wake.wait(0.2)
                continue
            # a wall clock stepped back mid-poll must not stretch one interval by the step
            elapsed = max(0.0, self.clock.now() - started)
            self.clock.sleep(max(0.0, self.sampling_interval_s - elapsed))

    def _queue_polled(self, asset: str, samples: Sequence[Sample]) -> None:
        """Queue a poll's readings; one outside the wire contract (a NaN, a clock that
        jumped out of range) is refused alone, not with the good readings polled with it."""
        try:
            self._submit(asset, samples, count_invalid=len(samples) == 1)
            return
        except WireFormatError as exc:
            if len(samples) == 1:
                self._error(f"submit {asset}: {exc}")
                return
        except StorageError as exc:  # counted by _submit
            self._storage_error(asset, exc, len(samples))
            return
        except Exception as exc:  # counted by _submit
            self._error(f"submit {asset}: {exc}")
            return
        good: list[Sample] = []
        for sample in samples:
            try:
                check_readings(asset, [sample])
            except WireFormatError as exc:
                self._refuse("invalid", 1)
                self._error(f"submit {asset}: {exc}")
            else:
                good.append(sample)
        if good:
            try:
                self._submit(asset, good, count_invalid=True)
            except StorageError as exc:
                self._storage_error(asset, exc, len(good))
            except Exception as exc:
                self._error(f"submit {asset}: {exc}")

    def _storage_error(self, asset: str, exc: StorageError, readings: int) -> None:
        """A queue that cannot take polled readings (a full or failing disk) stays so for
        many polls: ``last_error`` always says why, the log a line a minute with the count,
        as that log is likely on the same disk."""
        message = f"submit {asset}: {exc}"
        with self._lock:
            self._counters.last_error = message
        refused = self._storage_lines.add(readings)
        if refused:
            log.warning(
                "%s (%d polled reading%s refused since the last such line)",
                message,
                refused,
                "" if refused == 1 else "s",
                extra={"event": "error"},
            )

    def _status_loop(self) -> None:
        published = time.monotonic()
        while self._running:
            self._write_status()
            if time.monotonic() - published >= self.config.status_interval_s:
                self._publish_status()
                published = time.monotonic()
            self._stopping.wait(min(1.0, self.config.status_interval_s))

    def device_status(self) -> DeviceStatus:
        """The status document the agent publishes (``online`` while connected)."""
        stats = self.buffer.stats()
        now = self.clock.now()
        with self._lock:
            counters = self._counters
            connected = self._connection is not None
            return DeviceStatus(
                site=self.config.site,
                sender=self.config.sender,
                state="online" if connected else "offline",
                interval_s=self.config.status_interval_s,
                assets=self.config.assets,
                agent_version=agent_version(),
                protocol=self.transport.negotiated,
                queue_depth=stats.depth,
                queue_bytes=stats.bytes,
                oldest_age_s=(
                    round(max(0.0, now - stats.oldest_enq), 3)
                    if stats.oldest_enq is not None
                    else None
                ),
                sent=stats.sent,
                dropped=stats.dropped,
                refused=counters.refused,
                connects=counters.connects,
                last_error=counters.last_error,
                ts_ms=int(now * 1000),
            )

    def _offline_status(self, reason: str) -> DeviceStatus:
        return DeviceStatus(
            site=self.config.site,
            sender=self.config.sender,
            state="offline",
            interval_s=self.config.status_interval_s,
            assets=self.config.assets,
            agent_version=agent_version(),
            reason=reason,
        )

    def _publish_status(self, status: DeviceStatus | None = None, wait_s: float = 0.0) -> None:
        """Publish the status (QoS 1); best effort: a lost one is followed by the next."""
        with self._lock:
            connection = self._connection
        if connection is None or (status is None and self._closing):
            return
        try:
            status = status or self.device_status()
            future, _packet_id = connection.publish(
                status.topic, encode_status(status), mqtt.QoS.AT_LEAST_ONCE
            )
            if wait_s:
                future.result(wait_s)
        except Exception as exc:
            log.debug("status publish: %s", exc)

    def _write_status(self) -> None:
        try:
            doc = self.status()
            doc["pid"] = os.getpid()
        except Exception:
            return
        path = self.config.status_file
        try:
            write_private(path, json.dumps(doc, default=str).encode())
        except OSError as exc:
            # rewritten every second: say so once, not a line a second into a full disk
            if not self._status_failing:
                log.warning("status file %s: %s", path, exc, extra={"event": "error"})
            self._status_failing = True
            return
        if self._status_failing:
            self._status_failing = False
            log.info("status file %s written again", path, extra={"event": "recovered"})


def _only(samples: list[Sample], enabled: set[str]) -> list[Sample]:
    """The readings of the sensors commanded on (``sensors.enabled``); a sample left with
    none is not sent."""
    kept = [Sample(s.ts_ms, {k: v for k, v in s.values.items() if k in enabled}) for s in samples]
    return [s for s in kept if s.values]
