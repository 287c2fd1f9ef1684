"""The dashboard as a component: uvicorn serving the app in a thread, started and stopped
with the stack (``plantwatch up``, the demo) or on its own (``plantwatch dashboard``).

The listening socket is bound here, before uvicorn starts, so port 0 gives a free port
whose number is known at once and a busy port is a one-line error naming the option.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.dashboard.actions import AlarmActions
from cloud.dashboard.api import DashboardApi
from cloud.dashboard.app import SECURITY_HEADERS, Credentials, create_app
from cloud.dashboard.model_health import HealthOptions
from cloud.dashboard.queries import DataView
from cloud.l4e.sites import DEFAULT_SITE
from cloud.runtime.broker import is_loopback
from edge.errors import ConfigError, PlantwatchError

log = logging.getLogger("plantwatch.dashboard")

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]
DEFAULT_PORT = 8600
REQUEST_TIMEOUT_S = 10.0
"""How long a client may take to send a whole request (headers and body), counted from
the connection or from its first byte after the previous response."""
MAX_CONNECTIONS = 256
"""Connections open at once; a browser tab keeps about six."""


def _closing(status: str, *extra: str) -> bytes:
    """A whole empty response that ends the connection, with the security headers."""
    lines = [f"HTTP/1.1 {status}", *extra, "content-length: 0", "connection: close"]
    lines += [f"{name}: {value}" for name, value in SECURITY_HEADERS.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_TIMED_OUT = _closing("408 Request Timeout")
_TOO_MANY = _closing("503 Service Unavailable", "retry-after: 10")


def request_deadline_protocol(
    timeout_s: float, max_connections: int = MAX_CONNECTIONS
) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a deadline for receiving each request, and a cap on
    open connections.

    uvicorn times out only the idle time between requests (``timeout_keep_alive``, armed
    when a response completes and cancelled by any byte received), so a connection that
    sends nothing, or trickles a request a byte at a time, stayed open forever: enough of
    them exhaust the process's file descriptors (Slowloris). Here a request must arrive
    whole within *timeout_s*; otherwise the client gets 408 and the connection is closed.

    The deadline reclaims such connections, but a client opening hundreds at once could
    still use up the descriptors of the process the dashboard shares with the broker, the
    rules runner and the stores under ``plantwatch up``. Beyond *max_connections* open at
    once, a new one gets 503 with ``Retry-After`` and is closed straight away.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DeadlineProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.write(_TOO_MANY)
                transport.close()
                return
            self._watch()

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing():  # refused above, or timed out
                return
            super().data_received(data)
            self._watch()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel()
            super().connection_lost(exc)

        def _receiving(self) -> bool:
            return self.conn.their_state in (h11.IDLE, h11.SEND_BODY)

        def _watch(self) -> None:
            if not self._receiving():
                self._cancel()
            elif self._deadline is None:
                self._deadline = self.loop.call_later(timeout_s, self._expire)

        def _cancel(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def send_400_response(self, msg: str) -> None:
            """uvicorn's own answer to a request h11 cannot parse (no Host in HTTP/1.1, a
            NUL in the target, headers still arriving past h11's size limit), with the
            security headers every other answer carries."""
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"connection", b"close"),
                *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()),
            ]
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=msg.encode("ascii")),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
            self.transport.close()

        def _expire(self) -> None:
            self._deadline = None
            if not self._receiving() or self.transport.is_closing():
                return
            idle = self.cycle is None or self.cycle.response_complete
            if idle and self.conn.their_state is h11.IDLE:
                self.transport.write(_TIMED_OUT)
            self.transport.close()

    return DeadlineProtocol


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    """0 picks a free port."""
    alarm_actions: bool = False
    """Offer acknowledge and snooze (POST); otherwise every page is read-only."""
    credentials: Credentials | None = None
    """HTTP Basic credentials; required for a host other than loopback."""
    option: str = "--dashboard-port"
    """The option that sets the port, named when it is busy."""
    any_port_if_busy: bool = False
    """The port is only the default: when it is busy, take a free one (the URL printed and
    recorded says which) rather than refuse to start a second stack on this machine."""
    request_timeout_s: float = REQUEST_TIMEOUT_S
    """A client has this long to send a whole request (see request_deadline_protocol)."""
    max_connections: int = MAX_CONNECTIONS
    """Connections open at once; more get 503 (see request_deadline_protocol)."""

    def check(self) -> None:
        if not is_loopback(self.host) and self.credentials is None:
            raise ConfigError(
                f"dashboard host {self.host}: a dashboard reachable from other machines needs"
                " credentials (--auth); keep the default 127.0.0.1 otherwise"
            )


class DashboardServer:
    def __init__(
        self,
        data_root: Path,
        config: DashboardConfig,
        *,
        default_site: str = DEFAULT_SITE,
        actions: AlarmActions | None = None,
        health: HealthOptions | None = None,
    ) -> None:
        config.check()
        self.config = config
        self.view = DataView(data_root, default_site=default_site)
        self.api = DashboardApi(
            self.view, actions_enabled=config.alarm_actions and actions is not None, health=health
        )
        allowed = None
        if is_loopback(config.host):
            # the bound address too: 127.0.0.2 or [0:0:0:0:0:0:0:1] is loopback, and the
            # URL printed for it names it (Host header is compared lower-case, bracketed)
            own = f"[{config.host}]" if ":" in config.host else config.host
            allowed = [*LOOPBACK_NAMES, own.lower()]
        self.app = create_app(
            self.api, actions=actions, allowed_hosts=allowed, credentials=config.credentials
        )
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = 0

    @property
    def url(self) -> str:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    def start(self, timeout: float = 15.0) -> DashboardServer:
        import uvicorn

        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            try:
                sock.bind((self.config.host, self.config.port))
            except OSError:
                if not self.config.any_port_if_busy:
                    raise
                log.info("dashboard: port %d is busy; using a free one", self.config.port)
                sock.bind((self.config.host, 0))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"{self.config.option} {self.config.port}: cannot listen on {self.config.host}"
                f" ({exc.strerror}); pick another port or 0 for a free one"
            ) from None
        sock.listen(64)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=request_deadline_protocol(
                self.config.request_timeout_s, self.config.max_connections
            ),
            ws="none",  # no route takes a WebSocket: an upgrade request is plain HTTP
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name="plantwatch-dashboard",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise PlantwatchError(f"dashboard: did not start on {self.url}")
            time.sleep(0.02)
        log.info("dashboard on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
