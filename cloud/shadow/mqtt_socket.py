"""paho connection details for the shadow clients: broker URLs and TCP_NODELAY.

Request/response traffic needs TCP_NODELAY: paho leaves Nagle's algorithm on; a PUBACK followed by a small PUBLISH then waits for the
peer's delayed ACK, which measured as a 40 ms stall per shadow round trip on loopback.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt

from edge.errors import ConfigError


def no_delay(client: mqtt.Client) -> None:
    """Set TCP_NODELAY on every socket *client* opens, reconnects included."""

    def on_socket_open(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    client.on_socket_open = on_socket_open


def broker_address(url: str) -> tuple[str, int, bool]:
    """``(host, port, tls)`` of ``mqtt://HOST:PORT`` or ``mqtts://HOST:PORT``.

    Parsed here rather than borrowed from the local runtime, so the shadow package stays
    free of runtime imports (it is also what an AWS-side caller would use).
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parsed.hostname:
        raise ConfigError(f"broker URL {url!r}: expected mqtt://HOST:PORT or mqtts://HOST:PORT")
    tls = parsed.scheme in ("mqtts", "ssl")
    try:
        port = parsed.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"broker URL {url!r}: port is not a number") from None
    return parsed.hostname, port, tls
