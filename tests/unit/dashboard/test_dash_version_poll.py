"""The page's once-a-second ``/api/v1/version`` poll and its live badge, in headless Chromium.

A server answering 503 (its state unreadable, too many connections) left the badge on "live":
the JSON error body parsed, and only a network failure turned it to "offline". The badge now
shows the server's state and goes back to "live" when the server answers again.

The page is the dashboard's own script on a minimal page from a tiny server whose version
answer the test sets; Chromium is Debian's, never a download.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import cloud.dashboard

pytestmark = pytest.mark.requires_tool("chromium")

CHROMIUM = "/usr/bin/chromium"
SCRIPT = Path(cloud.dashboard.__file__).with_name("static") / "dashboard.js"
PAGE = b"""<!doctype html><html><head><meta charset="utf-8"></head><body>
<span id="live" class="live">live</span><div id="content"></div>
<script src="/static/dashboard.js"></script></body></html>"""


class _Server:
    """Answers the version poll with whatever :attr:`answer` holds: (status, body)."""

    def __init__(self) -> None:
        self.answer: tuple[int, bytes] = (200, json.dumps({"version": "v1"}).encode())
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/":
                    self._send(200, "text/html", PAGE)
                elif self.path == "/static/dashboard.js":
                    self._send(200, "text/javascript", SCRIPT.read_bytes())
                elif self.path == "/api/v1/version":
                    status, body = server.answer
                    self._send(status, "application/json", body)
                else:
                    self._send(404, "text/plain", b"")

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _Server()
    thread = threading.Thread(target=running.httpd.serve_forever, daemon=True)
    thread.start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


@pytest.fixture
def page(server: _Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-proxy-server"]
        )
        try:
            opened = browser.new_page()
            opened.goto(server.url)
            yield opened
        finally:
            browser.close()


def _badge(page: Any, text: str) -> tuple[str, str]:
    page.wait_for_function(
        "want => document.getElementById('live').textContent.includes(want)",
        arg=text,
        timeout=5000,
    )
    return page.inner_text("#live"), page.get_attribute("#live", "class") or ""


@pytest.mark.parametrize(
    "body",
    [json.dumps({"error": "state store unreadable"}).encode(), b""],
    ids=["json error", "empty"],
)
def test_a_503_shows_on_the_badge_and_live_returns_after(
    server: _Server, page: Any, body: bytes
) -> None:
    text, classes = _badge(page, "live")
    assert "stale" not in classes
    server.answer = (503, body)
    text, classes = _badge(page, "503")
    assert "live" not in text and "stale" in classes.split()
    server.answer = (200, json.dumps({"version": "v1"}).encode())
    text, classes = _badge(page, "live")
    assert text == "live" and "stale" not in classes.split()
