"""Broker URLs, credentials and socket options shared by every paho client on the cloud side.

Request/response traffic needs TCP_NODELAY: paho leaves Nagle's algorithm on, and a PUBACK
followed by a small PUBLISH then waits for the peer's delayed ACK, which measured as a
40 ms stall per shadow round trip on loopback.

A URL may carry ``user:password@`` (``plantwatch up --auth`` hands each service its own);
``BrokerAddress.url`` never shows the password, so it is the form for logs and errors.

A paho callback that raises ends paho's network thread, and with it every later message
of that client. :func:`guard_callbacks` wraps them so an exception is logged and counted
and the thread lives on.
"""

from __future__ import annotations

import logging
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlparse

import paho.mqtt.client as mqtt

from edge.errors import ConfigError

CALLBACK_ERRORS = "callback_errors"
"""The counter key :func:`guard_callbacks` increments."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Scheme, host and port: safe to print (no credentials)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def url_with_credentials(self) -> str:
        """The URL a service is handed; it includes the password when there is one."""
        if self.username is None:
            return self.url
        user = quote(self.username, safe="")
        secret = f":{quote(self.password, safe='')}" if self.password is not None else ""
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{user}{secret}@{self.host}:{self.port}"

    def apply(self, client: mqtt.Client) -> None:
        """TLS and username/password on a paho client, before it connects."""
        if self.tls:
            client.tls_set()
        if self.username is not None:
            client.username_pw_set(self.username, self.password)


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://[user:pass@]host:port`` or ``mqtts://...``; names the problem on bad input."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parsed.hostname:
        raise ConfigError(
            f"broker URL {redact(url)!r}: expected mqtt://HOST:PORT or mqtts://HOST:PORT"
        )
    tls = parsed.scheme in ("mqtts", "ssl")
    try:
        port = parsed.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"broker URL {redact(url)!r}: port is not a number") from None
    username = unquote(parsed.username) if parsed.username is not None else None
    password = unquote(parsed.password) if parsed.password is not None else None
    return BrokerAddress(parsed.hostname, port, tls, username or None, password)


def with_credentials(url: str, username: str, password: str) -> str:
    """*url* with ``username:password@`` in place of any it had."""
    address = parse_broker_url(url)
    return BrokerAddress(
        address.host, address.port, address.tls, username, password
    ).url_with_credentials


def redact(url: str) -> str:
    """*url* with any password replaced by ``***``, for messages."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)
    return parsed._replace(netloc=netloc).geturl()


def no_delay(client: mqtt.Client) -> None:
    """Set TCP_NODELAY on every socket *client* opens, reconnects included."""

    def on_socket_open(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    client.on_socket_open = on_socket_open


def stop_client(client: mqtt.Client) -> None:
    """Disconnect *client*, then stop its network thread.

    The other order (``loop_stop`` first) leaves the thread in paho's ``select()`` until its
    1 s timeout whenever it went back into it before seeing the stop flag: a race, so a
    close took either milliseconds or a second (the raw-broker baseline of ``bench ingest``
    timed that second in most runs). Disconnecting first wakes the thread at once."""
    client.disconnect()
    client.loop_stop()


_CALLBACKS = (
    "on_connect",
    "on_disconnect",
    "on_message",
    "on_subscribe",
    "on_unsubscribe",
    "on_publish",
    "on_socket_open",
)


def guard_callbacks(
    client: mqtt.Client, counts: Counter[str], logger: logging.Logger, what: str
) -> None:
    """Wrap every callback set on *client* so an exception is logged and counted under
    ``counts["callback_errors"]`` instead of ending paho's network thread. Call it after
    the callbacks are assigned."""
    for name in _CALLBACKS:
        callback = getattr(client, name, None)
        if callback is not None:
            setattr(client, name, _guarded(callback, counts, logger, f"{what}: {name}"))


def _guarded(
    callback: Callable[..., Any], counts: Counter[str], logger: logging.Logger, where: str
) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except Exception:
            counts[CALLBACK_ERRORS] += 1
            logger.exception("%s raised; the client keeps running", where)
            return None

    guarded.__wrapped__ = callback  # type: ignore[attr-defined]
    return guarded
