"""The shadow service's REST face: boto3 ``iot-data`` against the local service.

The four Device Shadow operations of AWS's rest-json API (signing name ``iotdata``), so
``boto3.client("iot-data", endpoint_url=service.rest_url)`` works unchanged. Requests go
through the service's own checks, limits and worker (``ShadowService.submit``), so a REST
update is ordered with MQTT ones and publishes the same ``/update/*`` messages. SigV4
signatures are not verified: the face listens on loopback, like the broker.

Errors follow the API: the HTTP status, header ``x-amzn-ErrorType`` (botocore reads the
error code from it) and body ``{"message": <the MQTT error text>}``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import socket
import sys
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from cloud.shadow.document import MAX_PAYLOAD_BYTES, Json, ShadowError

if TYPE_CHECKING:
    from cloud.shadow.service import ShadowService

log = logging.getLogger(__name__)

ERROR_TYPES = {
    400: "InvalidRequestException",
    401: "UnauthorizedException",
    404: "ResourceNotFoundException",
    405: "MethodNotAllowedException",
    409: "ConflictException",
    413: "RequestEntityTooLargeException",
    415: "UnsupportedDocumentEncodingException",
    429: "ThrottlingException",
    500: "InternalFailureException",
    503: "ServiceUnavailableException",
}
OPERATIONS = {"GET": "get", "POST": "update", "DELETE": "delete"}
LIST_PREFIX = "/api/things/shadow/ListNamedShadowsForThing/"
MAX_PAGE_SIZE = 100
_DIGITS = re.compile(r"[0-9]{1,9}")
ANSWER_TIMEOUT_S = 10.0
"""How long a request waits for the worker before it is answered 503."""
SOCKET_TIMEOUT_S = 10.0
"""A client that stalls mid-request loses its connection instead of holding a thread."""
REQUEST_DEADLINE_S = 10.0
"""A request (line, headers and body) must arrive whole this long after the connection
starts waiting for it. ``SOCKET_TIMEOUT_S`` bounds each read only, so a client trickling a
byte at a time held its connection's slot for good: MAX_CONNECTIONS of them and every
other client was answered 503."""
_TIMED_OUT_BODY = b'{"message":"Request Timeout"}'
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
    b"x-amzn-ErrorType: RequestTimeoutException\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_TIMED_OUT_BODY), _TIMED_OUT_BODY)
)
MAX_CONNECTIONS = 64
"""Connections served at once (one thread each); more are answered 503 and closed."""
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"x-amzn-ErrorType: ServiceUnavailableException\r\nConnection: close\r\n"
    b'Content-Length: 33\r\n\r\n{"message":"Service Unavailable"}'
)


class _BoundedServer(ThreadingHTTPServer):
    """ThreadingHTTPServer starts a thread per connection without limit; this one serves at
    most MAX_CONNECTIONS, so opening thousands of idle connections cannot exhaust threads."""

    daemon_threads = True
    request_queue_size = 128
    """listen() backlog: socketserver's 5 makes a burst of clients wait for SYN retries."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up before its answer is written is no fault of the service:
        one debug line, where socketserver would print a traceback on the operator's
        terminal for every such client."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.debug("shadow rest: %s left before its answer: %s", client_address, error)
            return
        log.exception("shadow rest: a request from %s failed", client_address)


class ShadowRestServer:
    """A threaded HTTP server on *host*:*port* (0 picks a free port) in front of *service*."""

    def __init__(self, service: ShadowService, host: str, port: int) -> None:
        handler = type("BoundHandler", (_Handler,), {"service": service})
        self._server = _BoundedServer((host, port), handler)
        self._thread: threading.Thread | None = None
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host}:{bound_port}"

    def start(self) -> ShadowRestServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="shadow-rest", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None


class _Handler(BaseHTTPRequestHandler):
    service: ShadowService
    protocol_version = "HTTP/1.1"
    server_version = "plantwatch-shadow"
    timeout = SOCKET_TIMEOUT_S

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("shadow rest: " + format, *args)

    def handle_one_request(self) -> None:
        """One request under REQUEST_DEADLINE_S: when it passes before the request is read
        whole, the connection is cut (a timer thread per request; a connection holds one
        of MAX_CONNECTIONS slots anyway)."""
        self.raw_requestline = b""
        self._deadline = threading.Timer(REQUEST_DEADLINE_S, self._cut)
        self._deadline.daemon = True
        self._deadline.start()
        try:
            super().handle_one_request()
        finally:
            self._deadline.cancel()

    def _cut(self) -> None:
        """The deadline passed: 408 to a client whose request line came (an idle
        keep-alive connection, or one still on its first line, is just closed), then no
        more reading or writing, which ends the handler's blocked read."""
        with contextlib.suppress(OSError):
            if self.raw_requestline:
                self.connection.sendall(_TIMED_OUT)
            self.connection.shutdown(socket.SHUT_RDWR)
        log.debug(
            "shadow rest: %s: request not whole in %g s; closed",
            self.client_address,
            REQUEST_DEADLINE_S,
        )

    def _serve(self, method: str) -> None:
        self._consumed = False
        try:
            status, body = self._route(method)
        except ShadowError as error:
            self._send_error(error.code, error.message)
        except Exception:
            log.exception("shadow rest: %s %s failed", method, self.path)
            self._send_error(500, "Internal service failure")
        else:
            self._send(status, body)

    def _route(self, method: str) -> tuple[int, Json]:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        parts = url.path.split("/")
        if url.path.startswith(LIST_PREFIX) and len(parts) == 6:
            if method != "GET":
                raise ShadowError(405, "Method Not Allowed")
            return 200, self._list(unquote(parts[5]), query)
        if len(parts) != 4 or parts[:2] != ["", "things"] or parts[3] != "shadow":
            raise ShadowError(404, "Not Found")
        operation = OPERATIONS.get(method)
        if operation is None:
            raise ShadowError(405, "Method Not Allowed")
        names = query.get("name")
        name = names[-1] if names else None
        payload = self._body() if operation == "update" else self._discard_body()
        future = self.service.submit(unquote(parts[2]), name, operation, payload)
        try:
            return 200, future.result(ANSWER_TIMEOUT_S)
        except FutureTimeout:
            raise ShadowError(503, "Service Unavailable") from None

    def _list(self, thing: str, query: dict[str, list[str]]) -> Json:
        """ListNamedShadowsForThing: sorted names, ``nextToken`` absent on the last page."""
        self._discard_body()
        page = query.get("pageSize", [str(MAX_PAGE_SIZE)])[-1]
        if not _DIGITS.fullmatch(page) or not 1 <= int(page) <= MAX_PAGE_SIZE:
            raise ShadowError(400, "Invalid pageSize")
        after = _decode_token(query.get("nextToken", [""])[-1])
        named = self.service.named_shadows(thing)
        names = [n for n in named if after is None or n > after]
        size = int(page)
        doc: Json = {"results": names[:size]}
        if len(names) > size:
            doc["nextToken"] = base64.urlsafe_b64encode(names[size - 1].encode()).decode()
        doc["timestamp"] = int(self.service.operations.now())
        return doc

    def _length(self) -> int:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise ShadowError(400, "Chunked bodies are not supported; send Content-Length")
        if len(set(self.headers.get_all("Content-Length", []))) > 1:
            raise ShadowError(400, "Several different Content-Length headers")
        text = self.headers.get("Content-Length", "0").strip() or "0"
        if not text.isascii() or not text.isdigit():
            raise ShadowError(400, "Invalid Content-Length")
        if len(text) > 9 or int(text) > MAX_PAYLOAD_BYTES:
            # Left unread: _send_error closes the connection.
            raise ShadowError(413, "The payload exceeds the maximum size allowed")
        return int(text)

    def _body(self) -> bytes:
        length = self._length()
        try:
            body = self.rfile.read(length) if length else b""
        except OSError:  # TimeoutError included: a client stalled mid-body
            body = b""
        if len(body) < length:
            self.close_connection = True
            raise ShadowError(400, "The request body ended before its Content-Length")
        self._consumed = True
        self._deadline.cancel()  # read whole: the answer may wait ANSWER_TIMEOUT_S
        return body

    def _discard_body(self) -> bytes:
        self._body()
        return b""

    def _send_error(self, code: int, message: str) -> None:
        if not self._consumed:
            # A body left unread would be taken for the next request on this connection.
            self.close_connection = True
        self._send(code, {"message": message}, ERROR_TYPES.get(code, "InternalFailureException"))

    def _send(self, status: int, body: Json, error_type: str | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error_type is not None:
            self.send_header("x-amzn-ErrorType", error_type)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


def _decode_token(token: str) -> str | None:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, ValueError):
        raise ShadowError(400, "Invalid nextToken") from None
