"""Broker URLs and socket options shared by every paho client on the cloud side.

Request/response traffic needs TCP_NODELAY: paho leaves Nagle's algorithm on, and a PUBACK
followed by a small PUBLISH then waits for the peer's delayed ACK, which measured as a
40 ms stall per shadow round trip on loopback.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt

from edge.errors import ConfigError


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://host:port`` or ``mqtts://host:port``; names the problem on bad input."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parsed.hostname:
        raise ConfigError(f"broker URL {url!r}: expected mqtt://HOST:PORT or mqtts://HOST:PORT")
    tls = parsed.scheme in ("mqtts", "ssl")
    try:
        port = parsed.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"broker URL {url!r}: port is not a number") from None
    return BrokerAddress(parsed.hostname, port, tls)


def no_delay(client: mqtt.Client) -> None:
    """Set TCP_NODELAY on every socket *client* opens, reconnects included."""

    def on_socket_open(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    client.on_socket_open = on_socket_open
