"""A TCP relay tests put between the agent and the broker.

Killing a non-persistent broker also loses messages it acknowledged but had not yet
delivered; that is the broker's durability, not the agent's. The gate lets the test hold
the agent's traffic just before a kill (so its in-flight publishes are never acknowledged
and must be re-sent), and keep the agent out after a restart until the receiver has
resubscribed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class TcpGate:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.is_open = True
        self.held = False
        self.accepted = 0
        """Connections accepted so far (refused ones included)."""
        self._blackholed: set[int] = set()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if not self.is_open:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, server))
            key = id(client)
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst, key), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, key: int) -> None:
        src.settimeout(0.05)
        while True:
            if self.held or key in self._blackholed:
                time.sleep(0.01)
                continue
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                dst.sendall(data)
            except OSError:
                break
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.close()

    def hold(self) -> None:
        """Stop relaying; bytes wait in the kernel buffers."""
        self.held = True

    def blackhole(self) -> None:
        """Current connections go silent for good, with no FIN or RST: a half-open link.
        New connections relay normally."""
        with self._lock:
            self._blackholed |= {id(client) for client, _server in self._pairs}

    def cut_and_close(self) -> None:
        """Drop every relayed connection and refuse new ones."""
        self.is_open = False
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
        self.held = False

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.cut_and_close()
        self._listener.close()
