"""Small-packet latency for paho: request/response traffic needs TCP_NODELAY.

paho leaves Nagle's algorithm on; a PUBACK followed by a small PUBLISH then waits for the
peer's delayed ACK, which measured as a 40 ms stall per shadow round trip on loopback.
"""

from __future__ import annotations

import socket
from typing import Any

import paho.mqtt.client as mqtt


def no_delay(client: mqtt.Client) -> None:
    """Set TCP_NODELAY on every socket *client* opens, reconnects included."""

    def on_socket_open(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    client.on_socket_open = on_socket_open
