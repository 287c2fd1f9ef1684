"""CrtTransport: one awscrt MQTT connection at a time, MQTT 5 or 3.1.1, TCP or mTLS.

The agent owns the reconnect loop (jittered backoff, resubscribe, shadow GET), so each
connection here is opened once and abandoned when it drops; awscrt's own reconnect never
gets to resume a half-known session. Both protocols are driven through awscrt's MQTT 3.1.1
``Connection`` interface (MQTT 5 through ``mqtt5.Client.new_connection``), so the
``iotshadow`` client and the publisher see one API.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from urllib.parse import urlparse

from awscrt import io, mqtt, mqtt5

from edge.connack import UNKNOWN_311, refusal_advice, refusal_advice_311
from edge.errors import ConfigError, PlantwatchError
from edge.files import write_private

log = logging.getLogger("edge.transport")

PROTOCOLS = ("auto", "5", "3.1.1")

PROTOCOL_RECHECK_S = 3600.0
"""How long (wall seconds) ``protocol = "auto"`` trusts what it learnt, that a broker speaks
only MQTT 3.1.1, before its next connection probes MQTT 5 again: a broker upgraded, or one
that was only slow to answer the probe, gets MQTT 5 within the hour."""

MQTT5_NOT_SPOKEN_ERRORS = (
    "AWS_ERROR_MQTT5_DECODE_PROTOCOL_ERROR",
    "AWS_ERROR_MQTT5_CONNACK_TIMEOUT",
)
"""The MQTT 5 client's words for a CONNECT answered with something that is not MQTT 5 (such
as the 3.1.1 CONNACK "unacceptable protocol level" a 3.1.1 broker must send,
MQTT-3.1.2-2), or taken by a listening broker and not answered. A socket that did not
connect, or was closed, says nothing about protocols."""


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """mTLS material for AWS IoT Core (or any TLS broker when only ``ca`` is set)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    alpn: tuple[str, ...] = ()

    def check(self, where: str = "tls") -> None:
        for name in ("ca", "cert", "key"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise ConfigError(f"{where}.{name}: no such file {value!r}")
        if (self.cert is None) != (self.key is None):
            raise ConfigError(f"{where}: cert and key must be given together")


IOT_CORE_DOMAINS = (".amazonaws.com", ".amazonaws.com.cn")
"""Where AWS IoT Core's device endpoints live: its China regions answer on the second."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    tls: bool

    @property
    def iot_core(self) -> bool:
        """An AWS IoT Core endpoint, whose limits and rules (mTLS, MQTT 5) apply."""
        return self.host.lower().rstrip(".").endswith(IOT_CORE_DOMAINS)


def parse_endpoint(url: str) -> Endpoint:
    """``mqtt://host:port``, ``mqtts://host:port`` or a bare IoT Core endpoint host name."""
    if "://" not in url:
        url = f"mqtts://{url}"
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parsed.hostname:
        raise ConfigError(f"broker {url!r}: expected mqtt://HOST:PORT, mqtts://HOST:PORT or HOST")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise ConfigError(f"broker {url!r}: expected no path after HOST:PORT")
    tls = parsed.scheme in ("mqtts", "ssl")
    try:
        port = parsed.port
    except ValueError:
        raise ConfigError(f"broker {url!r}: port is not a number from 1 to 65535") from None
    if port == 0:
        raise ConfigError(f"broker {url!r}: port is not a number from 1 to 65535")
    return Endpoint(parsed.hostname, port or (8883 if tls else 1883), tls)


class LinkDown(PlantwatchError):
    """The broker could not be reached or refused the connection."""

    mqtt5_refused = False
    """An MQTT 5 CONNECT the broker refused as a protocol (UNSUPPORTED_PROTOCOL_VERSION, an
    answer not in MQTT 5) or left unanswered: worth an MQTT 3.1.1 CONNECT at once."""


class CrtTransport:
    """Opens connections; ``protocol='auto'`` uses MQTT 5 unless the broker shows it speaks
    only 3.1.1, which is then remembered for :data:`PROTOCOL_RECHECK_S`."""

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        protocol: str = "auto",
        tls: TlsConfig | None = None,
        keep_alive_s: int = 300,
        ping_timeout_ms: int = 3000,
        connect_timeout_ms: int = 3000,
        operation_timeout_ms: int = 10000,
        remember: Path | None = None,
        will: tuple[str, bytes] | None = None,
        username: str | None = None,
        password: str | None = None,
        protocol_recheck_s: float = PROTOCOL_RECHECK_S,
    ) -> None:
        """*will* is ``(topic, payload)``: the broker publishes it (QoS 1) for this client
        when its connection drops without a DISCONNECT."""
        if protocol not in PROTOCOLS:
            raise ConfigError(f"protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
        self.endpoint = parse_endpoint(url)
        self.client_id = client_id
        self.protocol = protocol
        self.keep_alive_s = keep_alive_s
        self.ping_timeout_ms = ping_timeout_ms
        self.connect_timeout_ms = connect_timeout_ms
        self.operation_timeout_ms = operation_timeout_ms
        self.will = will
        self.username = username
        self._password = password
        self._plain_username = username is not None and not self.endpoint.iot_core
        """awscrt appends SDK metrics (``?SDK=...``) to the CONNECT username for IoT Core; a
        broker checking a username/password would see a different user, so not there."""
        self.negotiated: str | None = None
        """The protocol the last successful connection used."""
        self.disconnect_reason: str | None = None
        """The reason code of the last DISCONNECT the broker sent (MQTT 5), e.g.
        ``SESSION_TAKEN_OVER (142)``; None when it closed the link without one."""
        self._elg = io.EventLoopGroup(1)
        self._bootstrap = io.ClientBootstrap(self._elg, io.DefaultHostResolver(self._elg))
        self._tls_ctx = _tls_context(tls, self.endpoint) if self.endpoint.tls else None
        self._mqtt3 = mqtt.Client(self._bootstrap, self._tls_ctx)
        self._where = f"{self.endpoint.host}:{self.endpoint.port}"
        self._remember = remember if protocol == "auto" else None
        self._recheck_s = protocol_recheck_s
        self._learnt_at: float | None = None
        """Wall time at which the broker was found to speak only MQTT 3.1.1 (auto)."""
        if protocol == "auto" and not self.endpoint.iot_core:
            self._learnt_at = self._remembered()  # IoT Core speaks MQTT 5: never a probe

    def _remembered(self) -> float | None:
        """When this broker was found to speak only 3.1.1, kept across restarts (no probe
        delay); an answer for another broker, or without its time, is not trusted."""
        if self._remember is None:
            return None
        try:
            fields = self._remember.read_text().split()
        except (OSError, UnicodeDecodeError):
            return None
        if len(fields) != 3 or fields[:2] != ["3.1.1", self._where]:
            return None
        try:
            return float(fields[2])
        except ValueError:
            return None

    def _use_311(self) -> bool:
        if self.protocol != "auto":
            return self.protocol == "3.1.1"
        if self._learnt_at is None:
            return False
        age = time.time() - self._learnt_at
        return 0 <= age < self._recheck_s  # a clock stepped back: probe again

    def _learn(self, speaks_311: bool) -> None:
        """Remember (with the time) or forget that the broker speaks only MQTT 3.1.1."""
        self._learnt_at = time.time() if speaks_311 else None
        if self._remember is None:
            return
        try:
            if speaks_311:
                line = f"3.1.1 {self._where} {self._learnt_at:.3f}\n"
                write_private(self._remember, line.encode())
            else:
                with contextlib.suppress(FileNotFoundError):
                    self._remember.unlink()
        except OSError as error:
            log.debug("cannot remember protocol: %s", error)

    def _socket_options(self) -> io.SocketOptions:
        options = io.SocketOptions()
        options.connect_timeout_ms = self.connect_timeout_ms
        options.keep_alive = True
        return options

    def connect(self, on_interrupted: Callable[[Exception], None]) -> mqtt.Connection:
        """Open a connection and return it connected; raise LinkDown when that fails.

        With ``auto``, an MQTT 5 CONNECT refused as a protocol or left unanswered is followed
        at once by an MQTT 3.1.1 one; only if the broker takes that is 3.1.1 remembered. A
        broker silent to both (overloaded, a proxy with no upstream) shows nothing about
        protocols, and the next attempt probes MQTT 5 again."""
        self.disconnect_reason = None
        if not self._use_311():
            try:
                connection = self._connect5(on_interrupted)
            except LinkDown as exc:
                # IoT Core speaks MQTT 5, and takes one CONNECT a second per client id
                if self.protocol == "5" or self.endpoint.iot_core or not exc.mqtt5_refused:
                    raise
                connection = self._connect3(on_interrupted)
                log.info(
                    "MQTT 5 CONNECT refused or unanswered (%s) where MQTT 3.1.1 is taken; "
                    "using MQTT 3.1.1, and MQTT 5 is tried again after %g s",
                    exc,
                    self._recheck_s,
                    extra={"event": "protocol_fallback"},
                )
                self._learn(True)
                self.negotiated = "3.1.1"
                return connection
            if self._learnt_at is not None:
                log.info("the broker now speaks MQTT 5", extra={"event": "protocol_recheck"})
                self._learn(False)
            self.negotiated = "5"
            return connection
        connection = self._connect3(on_interrupted)
        self.negotiated = "3.1.1"
        return connection

    def _connect3(self, on_interrupted: Callable[[Exception], None]) -> mqtt.Connection:
        abandoned = threading.Event()

        def connected(connection: mqtt.Connection, **_: object) -> None:
            if abandoned.is_set():  # given up here: it must not hold the client id
                connection.disconnect()

        connection = mqtt.Connection(
            client=self._mqtt3,
            host_name=self.endpoint.host,
            port=self.endpoint.port,
            client_id=self.client_id,
            clean_session=True,
            keep_alive_secs=self.keep_alive_s,
            ping_timeout_ms=self.ping_timeout_ms,
            protocol_operation_timeout_ms=self.operation_timeout_ms,
            reconnect_min_timeout_secs=1,
            reconnect_max_timeout_secs=2,
            socket_options=self._socket_options(),
            on_connection_interrupted=lambda connection, error, **_: on_interrupted(error),
            will=mqtt.Will(self.will[0], mqtt.QoS.AT_LEAST_ONCE, self.will[1], False)
            if self.will
            else None,
            username=self.username,
            password=self._password,
            disable_metrics=self._plain_username,
            on_connection_success=lambda connection, callback_data: connected(connection),
        )
        try:
            # awscrt's 3.1.1 client waits for a CONNACK as long as for a PINGRESP; waiting
            # less here gave up on a client that went on connecting, then held the client
            # id beside the next connection (its disconnect does nothing while connecting)
            connection.connect().result((self.connect_timeout_ms + self.ping_timeout_ms) / 1000 + 2)
        except Exception as exc:
            abandoned.set()
            _quietly_disconnect(connection)
            raise LinkDown(
                f"connect to {self._where}: {_refusal3(exc, self.ping_timeout_ms, self.client_id)}"
            ) from exc
        return connection

    def _connack_timeout_ms(self) -> int:
        """How long an MQTT 5 CONNECT waits for its CONNACK: shorter while probing, as a
        broker speaking only 3.1.1 may never answer it."""
        if self.protocol == "5":
            return self.connect_timeout_ms
        return min(self.connect_timeout_ms, 1500)

    def _connect5(self, on_interrupted: Callable[[Exception], None]) -> mqtt.Connection:
        outcome: dict[str, object] = {}
        done = threading.Event()

        def failure(data: mqtt5.LifecycleConnectFailureData) -> None:
            outcome.setdefault("error", data.exception)
            outcome.setdefault("connack", data.connack_packet)
            done.set()

        def disconnected(data: mqtt5.LifecycleDisconnectData) -> None:
            code = getattr(data.disconnect_packet, "reason_code", None)
            if code is not None and int(code) >= 0x80:
                self.disconnect_reason = (
                    f"{_code_name(code, mqtt5.DisconnectReasonCode)} ({int(code)})"
                )

        client = mqtt5.Client(
            mqtt5.ClientOptions(
                host_name=self.endpoint.host,
                port=self.endpoint.port,
                bootstrap=self._bootstrap,
                socket_options=self._socket_options(),
                tls_ctx=self._tls_ctx,
                connect_options=mqtt5.ConnectPacket(
                    client_id=self.client_id,
                    keep_alive_interval_sec=self.keep_alive_s,
                    will=mqtt5.PublishPacket(
                        topic=self.will[0], payload=self.will[1], qos=mqtt5.QoS.AT_LEAST_ONCE
                    )
                    if self.will
                    else None,
                    username=self.username,
                    password=self._password,
                ),
                session_behavior=mqtt5.ClientSessionBehaviorType.CLEAN,
                retry_jitter_mode=mqtt5.ExponentialBackoffJitterMode.FULL,
                min_reconnect_delay_ms=500,
                max_reconnect_delay_ms=2000,
                ping_timeout_ms=self.ping_timeout_ms,
                connack_timeout_ms=self._connack_timeout_ms(),
                ack_timeout_sec=max(1, math.ceil(self.operation_timeout_ms / 1000)),
                on_lifecycle_event_connection_failure_fn=failure,
                on_lifecycle_event_disconnection_fn=disconnected,
                disable_metrics=self._plain_username,
            )
        )
        connection = client.new_connection(
            on_connection_interrupted=lambda connection, error, **_: on_interrupted(error),
        )
        try:
            connection.connect().result(self.connect_timeout_ms / 1000 + 2)
        except Exception as exc:
            done.wait(0.5)  # the CONNACK, if any, comes with the failure event
            _quietly_disconnect(connection)
            _stop_client(client)
            connack = outcome.get("connack")
            code = getattr(connack, "reason_code", None)
            if code is not None and int(code) >= 0x80:  # a CONNACK saying no: say why
                why = " ".join(str(getattr(connack, "reason_string", None) or "").split())[:200]
                advice = refusal_advice(
                    int(code), self.client_id, getattr(connack, "server_reference", None)
                )
                error = LinkDown(
                    f"MQTT 5 connect to {self._where}: {REFUSED}: {_code_name(code)} "
                    f"({int(code)}){f' ({why})' if why else ''}; {advice}"
                )
                unsupported = mqtt5.ConnectReasonCode.UNSUPPORTED_PROTOCOL_VERSION
                error.mqtt5_refused = int(code) == int(unsupported)
                raise error from exc
            connack_s = self._connack_timeout_ms() / 1000
            error = LinkDown(f"MQTT 5 connect to {self._where}: {_unanswered(exc, connack_s)}")
            error.mqtt5_refused = _mqtt5_not_spoken(exc, outcome.get("error"))
            raise error from exc
        return connection


def _mqtt5_not_spoken(exc: BaseException, failure: object) -> bool:
    """Whether a failed MQTT 5 connect is worth an MQTT 3.1.1 one at once. *failure* is the
    client's own failure event error; the connection adapter's *exc* names less (a protocol
    error for any refusal), so it decides only when no event came."""
    name = getattr(failure, "name", None)
    if name is not None:
        return name in MQTT5_NOT_SPOKEN_ERRORS
    return isinstance(exc, TimeoutError) or getattr(exc, "name", "") == "AWS_ERROR_MQTT_TIMEOUT"


REFUSED = "the broker refused the connection"


def _code_name(code: object, codes: type[IntEnum] = mqtt5.ConnectReasonCode) -> str:
    """The name of an MQTT 5 reason code (a CONNACK's unless *codes* says otherwise)."""
    try:
        return codes(int(code)).name  # type: ignore[call-overload]
    except ValueError:
        return "UNKNOWN_REASON"


def _refusal3(exc: BaseException, connack_timeout_ms: int, client_id: str) -> str:
    """What a failed MQTT 3.1.1 connect means, in one line. awscrt gives the CONNACK's
    return code when it has one, and otherwise reports a CONNACK that refuses the client
    (wrong credentials, a client id or a certificate the broker does not take) as a
    protocol error: the CONNACK's return code (1 to 5) is lost there, not missing from the
    packet (awscrt 0.36.1). Its 3.1.1 client waits for a CONNACK as long as for a
    PINGRESP (the ping timeout)."""
    code = exc.args[0] if exc.args else None
    if isinstance(code, mqtt.ConnectReturnCode):
        advice = refusal_advice_311(int(code), client_id)
        return f"{REFUSED}: {code.name} ({int(code)}); {advice}"
    if getattr(exc, "name", "") == "AWS_ERROR_MQTT_PROTOCOL_ERROR":
        return (
            f"{REFUSED} or broke MQTT (awscrt: {exc}); awscrt's MQTT 3.1.1 client does not "
            f"pass on the CONNACK's return code (MQTT 5 names the reason): {UNKNOWN_311}"
        )
    return _unanswered(exc, connack_timeout_ms / 1000)


def _unanswered(exc: BaseException, connack_s: float) -> str:
    """A connect that timed out, said as such: awscrt's own words name no packet, and a
    wait that ran out here has no words at all."""
    if isinstance(exc, TimeoutError) or getattr(exc, "name", "") == "AWS_ERROR_MQTT_TIMEOUT":
        return (
            f"no CONNACK within {connack_s:g} s: the broker took the connection and did "
            "not answer the CONNECT"
        )
    return str(exc) or type(exc).__name__


def _quietly_disconnect(connection: mqtt.Connection, wait_s: float = 2.0) -> None:
    try:
        connection.disconnect().result(wait_s)
    except Exception as exc:
        log.debug("disconnect: %s", exc)


def _stop_client(client: mqtt5.Client) -> None:
    """Stop an MQTT 5 client whose first CONNECT failed. The 3.1.1 interface's disconnect
    does not stop a client that never connected: it went on reconnecting by itself with
    the agent's client id, and once the broker answered, each of its CONNECTs took the id
    over from the agent's live connection (a second connection with one client id
    disconnects the first), every couple of seconds for as long as the agent ran."""
    try:
        client.stop()
    except Exception as exc:
        log.debug("stop: %s", exc)


def close_connection(connection: mqtt.Connection) -> None:
    """Stop a connection and its built-in reconnect; errors are expected on a dead link,
    and a half-open one may never confirm, so the wait is short."""
    _quietly_disconnect(connection, wait_s=0.25)


def _tls_context(tls: TlsConfig | None, endpoint: Endpoint) -> io.ClientTlsContext:
    tls = tls or TlsConfig()
    if tls.cert and tls.key:
        options = io.TlsContextOptions.create_client_with_mtls_from_path(tls.cert, tls.key)
    else:
        options = io.TlsContextOptions()
    if tls.ca:
        options.override_default_trust_store_from_path(None, tls.ca)
    alpn = list(tls.alpn) or (["x-amzn-mqtt-ca"] if endpoint.port == 443 else [])
    if alpn:
        options.alpn_list = alpn
    return io.ClientTlsContext(options)
