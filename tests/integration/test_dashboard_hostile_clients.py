"""The dashboard's real server (uvicorn on a free port) against clients that send nothing,
trickle a request, never read, or send what no browser would: none may hold a connection
for ever or keep another client waiting."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from cloud.dashboard.api import DashboardApi
from cloud.dashboard.app import create_app
from cloud.dashboard.server import LOOPBACK_NAMES, DashboardConfig, DashboardServer

TIMEOUT_S = 1.0


SLOW_S = 1.5


class _SlowApi(DashboardApi):
    """Model health over a long history takes a while; here it simply takes SLOW_S."""

    def model_health_asset(self, key: str) -> dict:
        time.sleep(SLOW_S)
        return {"key": key}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    root = tmp_path_factory.mktemp("clients") / "data"
    results = root / "buckets/plantwatch/output/pump-01/2026-01-05T06:00:00Z"
    results.mkdir(parents=True)
    line = {"timestamp": "2026-01-05T06:00:10", "prediction": 0, "anomaly_score": 0.1}
    (results / "results.jsonl").write_text(json.dumps(line) + "\n")
    running = DashboardServer(root, DashboardConfig(port=0, request_timeout_s=TIMEOUT_S))
    running.app = create_app(_SlowApi(running.view), allowed_hosts=LOOPBACK_NAMES)
    with running.start():
        yield running


def connect(server: DashboardServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def request(server: DashboardServer, raw: bytes) -> bytes:
    with connect(server) as sock:
        sock.sendall(raw)
        return read_all(sock)


def get(server: DashboardServer, path: str) -> tuple[float, bytes]:
    start = time.monotonic()
    answer = request(
        server, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )
    return time.monotonic() - start, answer


def test_a_client_that_sends_nothing_gets_408_and_is_closed(server: DashboardServer) -> None:
    with connect(server) as idle:
        start = time.monotonic()
        elapsed, answer = get(server, "/api/v1/version")  # served while one waits
        assert answer.startswith(b"HTTP/1.1 200 ") and elapsed < TIMEOUT_S
        reply = read_all(idle)
        waited = time.monotonic() - start
    assert reply.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"content-security-policy: default-src 'self'" in reply
    assert TIMEOUT_S * 0.9 <= waited < TIMEOUT_S + 2.0


def closed_by_server(sock: socket.socket, wait_s: float) -> tuple[bool, bytes]:
    """Whether the server ended the connection within *wait_s* (EOF or reset), and what
    it sent before."""
    sock.settimeout(wait_s)
    try:
        return True, read_all(sock)
    except TimeoutError:
        return False, b""
    except OSError:  # reset: the server closed while we were still writing
        return True, b""


def test_a_request_trickled_byte_by_byte_is_cut_at_the_deadline(server: DashboardServer) -> None:
    """Slowloris: every byte used to cancel uvicorn's only timer, so a client sending a
    header byte every 50 ms held its connection as long as it liked."""
    text = b"GET /api/v1/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
    with connect(server) as slow:
        start = time.monotonic()
        for byte in text:
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.05)
            if time.monotonic() - start > TIMEOUT_S + 1.5:
                break
        closed, reply = closed_by_server(slow, 1.0)
        assert closed and time.monotonic() - start < TIMEOUT_S + 2.5
        assert reply == b"" or reply.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def test_a_slow_body_is_cut_too(server: DashboardServer) -> None:
    """The action is refused (403) before its body is read; the connection, still
    waiting for 998 bytes that never come, is then closed at the deadline."""
    with connect(server) as slow:
        slow.sendall(
            b"POST /api/v1/alarms/a/b/acknowledge HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"x-plantwatch-action: 1\r\nContent-Length: 1000\r\n\r\nxx"
        )
        start = time.monotonic()
        closed, reply = closed_by_server(slow, TIMEOUT_S + 2.0)
        assert closed and time.monotonic() - start < TIMEOUT_S + 2.0
        assert reply == b"" or reply.startswith(b"HTTP/1.1 403 ")


def test_many_idle_clients_and_one_that_never_reads_block_no_one(server: DashboardServer) -> None:
    idle = [connect(server) for _ in range(50)]
    hoarder = connect(server)
    hoarder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hoarder.sendall(b"GET /?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 200)  # never read
    try:
        for _ in range(3):
            elapsed, answer = get(server, "/api/v1/overview")
            assert answer.startswith(b"HTTP/1.1 200 ") and elapsed < 1.0
    finally:
        hoarder.close()
        for sock in idle:
            sock.close()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /assets/.. HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"404"),
        (b"GET /assets/../state.db HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"404"),
        (b"GET /static/../app.py HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"404"),
        (b"GET /static/..\\app.py HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"404"),
        (b"GET /api/v1/assets/..%2f..%2fstate.db HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"404"),
        (b"GET / HTTP/1.0\r\n", b"400"),  # no Host: not a loopback name
        (b"GET / HTTP/1.1\r\n", b"400"),  # no Host in HTTP/1.1: h11 refuses it
        (b"GET /\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nHost: evil.example\r\n", b"400"),
        (b"GET http://evil.example/ HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"404"),
    ],
)
def test_raw_requests_a_client_library_would_normalise(
    server: DashboardServer, raw: bytes, status: bytes
) -> None:
    answer = request(server, raw + b"Connection: close\r\n\r\n")
    head = answer.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 " + status), head[:60]
    assert b"content-security-policy: default-src 'self'" in head
    assert b"x-content-type-options: nosniff" in head


def test_a_slow_request_does_not_hold_the_others(server: DashboardServer) -> None:
    """Every page and document was an ``async`` function doing blocking reads, so one
    slow request held uvicorn's only event loop and every other client waited for it."""
    slow: list[bytes] = []
    worker = threading.Thread(target=lambda: slow.append(get(server, "/api/v1/model-health/x")[1]))
    worker.start()
    time.sleep(0.2)
    elapsed, answer = get(server, "/api/v1/version")
    worker.join(timeout=10)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert elapsed < SLOW_S / 2, f"version took {elapsed:.2f} s behind a {SLOW_S} s request"
    assert slow and slow[0].startswith(b"HTTP/1.1 200 ")


def test_a_websocket_upgrade_is_answered_as_plain_http(server: DashboardServer) -> None:
    """No route takes a WebSocket; uvicorn accepted the upgrade and sent a bare 403,
    without the security headers, before the app could answer."""
    answer = request(
        server,
        b"GET /api/v1/version HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade, close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n",
    )
    head = answer.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 200 ") and b"content-security-policy" in head


def test_a_loopback_address_other_than_the_usual_serves_its_own_url(
    server: DashboardServer,
) -> None:
    """The Host check allowed only 127.0.0.1, localhost and ::1: a dashboard on another
    loopback address (all of 127.0.0.0/8 is, on Linux) answered 400 "Invalid host header"
    to its own printed URL. The same held for ::1 written out as 0:0:0:0:0:0:0:1."""
    host = "127.0.0.2"
    family = socket.AF_INET
    other = DashboardServer(server.view.layout.root, DashboardConfig(host=host, port=0))

    def ask(host_header: str) -> bytes:
        with socket.socket(family) as sock:
            sock.settimeout(5)
            sock.connect((host, other.port))
            sock.sendall(f"GET /api/v1/version HTTP/1.1\r\nHost: {host_header}\r\n\r\n".encode())
            return sock.recv(65536)

    with other.start():
        netloc = other.url.removeprefix("http://")
        assert ask(netloc).startswith(b"HTTP/1.1 200 ")
        assert ask("evil.example").startswith(b"HTTP/1.1 400 ")


def test_connections_beyond_the_cap_get_503_and_the_cap_frees_up(
    server: DashboardServer,
) -> None:
    """Nothing bounded how many connections the dashboard held open, in a process it
    shares with the broker and stores under ``plantwatch up``."""
    capped = DashboardServer(server.view.layout.root, DashboardConfig(port=0, max_connections=5))
    with capped.start():
        held = [connect(capped) for _ in range(5)]  # accepted in order, before the next
        with connect(capped) as extra:
            refused = read_all(extra)
            assert refused.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert b"retry-after: 10\r\n" in refused and b"x-content-type-options" in refused
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 5
        answer = b""
        while time.monotonic() < deadline:  # until the server has seen the closes
            answer = get(capped, "/api/v1/version")[1]
            if answer.startswith(b"HTTP/1.1 200 "):
                break
        assert answer.startswith(b"HTTP/1.1 200 ")
