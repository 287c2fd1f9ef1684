"""boto3 ``iot-data`` against the local shadow service's REST face (spec section 7):
the 200 bodies, the error status/header/body, what is published on MQTT, paging, limits,
and hostile HTTP that must not stop the face."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from raw_mqtt import RawClient

from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.service import ShadowService
from edge.clock import ManualClock

START = 1_750_000_000
BASE = "$aws/things/pump-7/shadow"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(float(START))


@pytest.fixture
def service(broker: EmbeddedBroker, tmp_path: Path, clock: ManualClock) -> Iterator[ShadowService]:
    with ShadowService(
        broker.url, str(tmp_path / "shadows.db"), clock, limits=False, rest_port=0
    ) as running:
        yield running


def iot_data(service: ShadowService) -> Any:
    assert service.rest_url is not None
    return boto3.client(
        "iot-data",
        endpoint_url=service.rest_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1}),  # a 429 is seen, not retried
    )


@pytest.fixture
def listener(broker: EmbeddedBroker) -> Iterator[RawClient]:
    client = RawClient(broker.host, broker.port)
    assert client.subscribe(
        ["$aws/things/pump-7/shadow/+/+", "$aws/things/pump-7/shadow/name/+/+/+"]
    ) == [True, True]
    yield client
    client.close()


def payload(response: dict[str, Any]) -> dict[str, Any]:
    return json.loads(response["payload"].read())


def error_of(call: Any, **kwargs: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_a_rest_update_answers_3_2_and_publishes_accepted_delta_documents_in_order(
    service: ShadowService, listener: RawClient
) -> None:
    data = iot_data(service)
    body = b'{"state":{"desired":{"mode":"safe"}},"clientToken":"rest-1"}'
    accepted = payload(data.update_thing_shadow(thingName="pump-7", payload=body))
    assert accepted == {
        "state": {"desired": {"mode": "safe"}},
        "metadata": {"desired": {"mode": {"timestamp": START}}},
        "version": 1,
        "timestamp": START,
        "clientToken": "rest-1",
    }
    listener.wait(lambda: len(listener.messages) >= 3, "three messages")
    topics = [t for t, _ in listener.messages]
    assert topics == [f"{BASE}/update/accepted", f"{BASE}/update/delta", f"{BASE}/update/documents"]
    published = {t: json.loads(p) for t, p in listener.messages}
    assert published[f"{BASE}/update/accepted"] == accepted
    assert published[f"{BASE}/update/delta"]["state"] == {"mode": "safe"}
    assert published[f"{BASE}/update/documents"]["previous"] is None
    assert all(doc["clientToken"] == "rest-1" for doc in published.values())

    got = payload(data.get_thing_shadow(thingName="pump-7"))
    assert got["state"] == {"desired": {"mode": "safe"}, "delta": {"mode": "safe"}}
    listener.quiet(0.3)
    assert len(listener.messages) == 3, "a REST get publishes nothing"

    listener.messages.clear()
    assert payload(data.delete_thing_shadow(thingName="pump-7")) == {
        "version": 1,
        "timestamp": START,
    }
    assert json.loads(listener.wait_for_message(f"{BASE}/delete/accepted")) == {
        "version": 1,
        "timestamp": START,
    }


def test_rest_errors_carry_status_error_type_and_the_mqtt_text_and_publish_nothing(
    service: ShadowService, listener: RawClient
) -> None:
    data = iot_data(service)
    cases = [
        (
            data.get_thing_shadow,
            {"thingName": "pump-7"},
            404,
            "ResourceNotFoundException",
            "No shadow exists with name: 'pump-7'",
        ),
        (
            data.get_thing_shadow,
            {"thingName": "pump-7", "shadowName": "cfg"},
            404,
            "ResourceNotFoundException",
            "No shadow exists with name: 'cfg'",
        ),
        (
            data.delete_thing_shadow,
            {"thingName": "pump-7"},
            404,
            "ResourceNotFoundException",
            "No shadow exists with name: 'pump-7'",
        ),
        (
            data.update_thing_shadow,
            {"thingName": "pump-7", "payload": b"{nope"},
            400,
            "InvalidRequestException",
            "Invalid JSON",
        ),
        (
            data.update_thing_shadow,
            {"thingName": "pump-7", "payload": b'{"state":{"x":{}}}'},
            400,
            "InvalidRequestException",
            "State contains an invalid node: 'x'",
        ),
        (
            data.update_thing_shadow,
            {"thingName": "pump-7", "payload": b'{"state":{"desired":{"a":1}},"version":3}'},
            409,
            "ConflictException",
            "Version conflict",
        ),
        (
            data.update_thing_shadow,
            {"thingName": "pump-7", "payload": b'{"state":"\xff"}'},
            415,
            "UnsupportedDocumentEncodingException",
            "Unsupported documented encoding; supported encoding is UTF-8",
        ),
        (
            data.update_thing_shadow,
            {"thingName": "pump-7", "payload": b" " * (128 * 1024 + 1)},
            413,
            "RequestEntityTooLargeException",
            "The payload exceeds the maximum size allowed",
        ),
        (
            data.get_thing_shadow,
            {"thingName": "pump-7", "shadowName": "a b"},
            400,
            "InvalidRequestException",
            "Invalid shadow name",
        ),
        (
            data.get_thing_shadow,
            {"thingName": "p" * 129},
            400,
            "InvalidRequestException",
            "Invalid thing name",
        ),
    ]
    for call, kwargs, status, error_type, message in cases:
        assert error_of(call, **kwargs) == (status, error_type, message), kwargs
    listener.quiet(0.3)
    assert listener.messages == [], "a REST error never publishes on MQTT"


def test_list_named_shadows_pages_with_next_token_and_never_lists_the_classic_shadow(
    service: ShadowService,
) -> None:
    data = iot_data(service)
    for name in ("c", "a", "b"):
        data.update_thing_shadow(
            thingName="pump-7", shadowName=name, payload=b'{"state":{"reported":{"x":1}}}'
        )
    data.update_thing_shadow(thingName="pump-7", payload=b'{"state":{"reported":{"x":1}}}')
    data.delete_thing_shadow(thingName="pump-7", shadowName="b")
    first = data.list_named_shadows_for_thing(thingName="pump-7", pageSize=1)
    assert first["results"] == ["a"] and first["timestamp"] == START
    second = data.list_named_shadows_for_thing(
        thingName="pump-7", pageSize=1, nextToken=first["nextToken"]
    )
    assert second["results"] == ["c"] and "nextToken" not in second
    everything = data.list_named_shadows_for_thing(thingName="pump-7")
    assert everything["results"] == ["a", "c"] and "nextToken" not in everything
    assert data.list_named_shadows_for_thing(thingName="nobody")["results"] == []
    for bad in ("0", "101", "x"):  # botocore itself refuses these; a raw client need not
        answer = raw_http(
            service,
            b"GET /api/things/shadow/ListNamedShadowsForThing/pump-7?pageSize=%s HTTP/1.1\r\n"
            b"Connection: close\r\n\r\n" % bad.encode(),
        )
        assert answer.startswith(b"HTTP/1.1 400") and b"InvalidRequestException" in answer


def test_rest_and_mqtt_requests_share_the_per_thing_rate_limit(
    broker: EmbeddedBroker, tmp_path: Path, clock: ManualClock, listener: RawClient
) -> None:
    with ShadowService(broker.url, str(tmp_path / "limited.db"), clock, rest_port=0) as limited:
        data = iot_data(limited)
        for i in range(10):
            listener.publish(f"{BASE}/name/m{i}/get", b"")
        listener.wait(lambda: len(listener.messages) >= 10, "ten MQTT answers")
        statuses = []
        for i in range(11):
            try:
                data.get_thing_shadow(thingName="pump-7", shadowName=f"r{i}")
            except ClientError as error:
                statuses.append(error.response["Error"]["Code"])
        assert statuses.count("ResourceNotFoundException") == 10
        assert statuses.count("ThrottlingException") == 1, "20/s per thing, MQTT and REST summed"
        assert error_of(data.list_named_shadows_for_thing, thingName="pump-7")[:2] == (
            429,
            "ThrottlingException",
        )
        clock.advance(2)
        assert error_of(data.get_thing_shadow, thingName="pump-7")[0] == 404


def raw_http(service: ShadowService, request: bytes) -> bytes:
    assert service.rest_url is not None
    host, port = service.rest_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_hostile_http_gets_a_clear_error_and_the_face_keeps_serving(service: ShadowService) -> None:
    assert service.rest_url is not None
    host, port = service.rest_url.removeprefix("http://").split(":")
    cases = [
        ("PUT", "/things/pump-7/shadow", {}, 405, "MethodNotAllowedException"),
        ("GET", "/nowhere", {}, 404, "ResourceNotFoundException"),
        (
            "POST",
            "/things/pump-7/shadow",
            {"Content-Length": "99999999999"},
            413,
            "RequestEntityTooLargeException",
        ),
        ("POST", "/things/pump-7/shadow", {"Content-Length": "-1"}, 400, "InvalidRequestException"),
        (
            "POST",
            "/things/pump-7/shadow",
            {"Transfer-Encoding": "chunked"},
            400,
            "InvalidRequestException",
        ),
        ("GET", "/things/%FF%FE/shadow", {}, 400, "InvalidRequestException"),
        (
            "GET",
            "/api/things/shadow/ListNamedShadowsForThing/pump-7?pageSize=%C2%B2",
            {},
            400,
            "InvalidRequestException",
        ),
    ]
    for method, path, headers, status, error_type in cases:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.putrequest(method, path, skip_accept_encoding=True)
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.endheaders()
        response = connection.getresponse()
        body = json.loads(response.read())
        assert (response.status, response.getheader("x-amzn-ErrorType")) == (status, error_type)
        assert isinstance(body["message"], str) and body["message"]
        connection.close()
    # A stalled client holds a connection, not the face.
    with socket.create_connection((host, int(port)), timeout=10) as stalled:
        stalled.sendall(b"POST /things/pump-7/shadow HTTP/1.1\r\nContent-Length: 10\r\n\r\n{")
        reply = iot_data(service).update_thing_shadow(
            thingName="pump-7", payload=b'{"state":{"reported":{"ok":true}}}'
        )
        assert payload(reply)["version"] == 1
    with socket.create_connection((host, int(port)), timeout=10) as short:
        short.sendall(b"POST /things/pump-7/shadow HTTP/1.1\r\nContent-Length: 50\r\n\r\n{")
        short.shutdown(socket.SHUT_WR)  # the body ends 49 bytes early
        cut = short.recv(65536)
    assert cut.startswith(b"HTTP/1.1 400") and b"InvalidRequestException" in cut
    answer = raw_http(service, b"GET /things/pump-7/shadow HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and b'"reported":{"ok":true}' in answer


def test_idle_connections_beyond_the_bound_are_turned_away_and_freed_slots_serve_again(
    service: ShadowService,
) -> None:
    from cloud.shadow.rest import MAX_CONNECTIONS

    assert service.rest_url is not None
    host, port = service.rest_url.removeprefix("http://").split(":")
    request = b"GET /things/pump-7/shadow HTTP/1.1\r\nConnection: close\r\n\r\n"

    def answer_becomes(status: bytes) -> bytes:
        deadline = time.monotonic() + 10
        while True:
            answer = raw_http(service, request)
            if answer.startswith(b"HTTP/1.1 " + status) or time.monotonic() > deadline:
                return answer
            time.sleep(0.05)

    idle = [socket.create_connection((host, int(port)), timeout=10) for _ in range(MAX_CONNECTIONS)]
    try:
        busy = answer_becomes(b"503")
        assert busy.startswith(b"HTTP/1.1 503") and b"ServiceUnavailableException" in busy
    finally:
        for sock in idle:
            sock.close()
    assert answer_becomes(b"404").startswith(b"HTTP/1.1 404"), "closed connections free slots"


def test_a_client_gone_before_its_answer_costs_no_traceback(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # a hostile client that sends half a body and hangs up made the error answer's write
    # fail with BrokenPipeError, and socketserver printed a traceback on stderr for it
    from http.server import BaseHTTPRequestHandler

    from cloud.shadow.rest import _BoundedServer

    server = _BoundedServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        for gone in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
            try:
                raise gone
            except OSError:
                server.handle_error(None, ("127.0.0.1", 50000))
        assert capfd.readouterr().err == ""
        try:
            raise RuntimeError("a real fault")
        except RuntimeError:
            server.handle_error(None, ("127.0.0.1", 50000))
    finally:
        server.server_close()
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "a real fault" in str(record.exc_info[1])


def test_clients_trickling_requests_cannot_hold_every_slot(
    service: ShadowService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The socket timeout bounds each read only: MAX_CONNECTIONS clients sending a header
    byte every half second held every slot for as long as they kept it up, and every other
    client was answered 503. A request must now arrive whole within REQUEST_DEADLINE_S;
    a client whose request line came gets 408, and the slot serves others again."""
    from cloud.shadow import rest

    monkeypatch.setattr(rest, "REQUEST_DEADLINE_S", 1.0, raising=False)
    assert service.rest_url is not None
    host, port = service.rest_url.removeprefix("http://").split(":")
    slow = [
        socket.create_connection((host, int(port)), timeout=10) for _ in range(rest.MAX_CONNECTIONS)
    ]
    answers: list[bytes] = []
    try:
        for sock in slow:  # the request line whole, then a header byte every half second
            sock.sendall(b"GET /things/pump-7/shadow HTTP/1.1\r\nX-Slow: ")
        for _ in range(8):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"x")
            time.sleep(0.5)
        request = b"GET /things/pump-7/shadow HTTP/1.1\r\nConnection: close\r\n\r\n"
        answer = raw_http(service, request)
        for sock in slow:
            sock.settimeout(2)
            with contextlib.suppress(OSError):
                answers.append(sock.recv(65536))
    finally:
        for sock in slow:
            sock.close()
    assert answer.startswith(b"HTTP/1.1 404"), answer[:80]
    assert len(answers) == len(slow)
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), set(answers)


def test_a_request_with_two_different_content_lengths_is_refused(service: ShadowService) -> None:
    """RFC 9112 section 6.3: differing Content-Length values are an unrecoverable error
    (request smuggling); the face took the first and read the rest as the next request."""
    body = b'{"state":{"desired":{"a":1}}}'
    answer = raw_http(
        service,
        b"POST /things/pump-7/shadow HTTP/1.1\r\nContent-Length: %d\r\nContent-Length: 0\r\n\r\n"
        % len(body)
        + body,
    )
    assert answer.startswith(b"HTTP/1.1 400") and b"Content-Length" in answer, answer
    get = b"GET /things/pump-7/shadow HTTP/1.1\r\nConnection: close\r\n\r\n"
    assert raw_http(service, get).startswith(b"HTTP/1.1 404"), "nothing was stored"


def test_a_request_read_whole_may_wait_for_its_answer_past_the_deadline(
    service: ShadowService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REQUEST_DEADLINE_S bounds how long the request takes to arrive, not the answer: once
    the body is read the deadline is off, and a worker slower than the rest of it (up to
    ANSWER_TIMEOUT_S) still answers instead of the client getting 408 and a cut link."""
    from cloud.shadow import rest

    monkeypatch.setattr(rest, "REQUEST_DEADLINE_S", 0.5)
    submit = service.submit

    def slow_submit(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.5)  # the worker is busy past the request's deadline
        return submit(*args, **kwargs)

    monkeypatch.setattr(service, "submit", slow_submit)
    answer = raw_http(service, b"GET /things/pump-7/shadow HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 404"), answer[:80]


def test_an_unexpected_failure_is_500_internal_failure_and_publishes_nothing(
    service: ShadowService, listener: RawClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Section 3.6 (500 ``Internal service failure``) and section 7 (InternalFailureException,
    a REST error publishes nothing); the next request is served as usual."""
    data = iot_data(service)
    data.update_thing_shadow(thingName="pump-7", payload=b'{"state":{"desired":{"a":1}}}')
    listener.quiet(0.3)
    listener.messages.clear()

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service.operations, "get", broken)
    assert error_of(data.get_thing_shadow, thingName="pump-7") == (
        500,
        "InternalFailureException",
        "Internal service failure",
    )
    listener.quiet(0.3)
    assert listener.messages == []
    monkeypatch.undo()
    assert payload(data.get_thing_shadow(thingName="pump-7"))["version"] == 1


def test_limits_are_on_by_default(broker: EmbeddedBroker, tmp_path: Path, clock: ManualClock):
    """Section 5 Choice: the rate and in-flight limits are on unless switched off (tests):
    for the service and for ``plantwatch up``'s stack alike."""
    from cloud.runtime.layout import DataLayout
    from cloud.runtime.stack import StackConfig

    assert StackConfig(data=DataLayout(tmp_path)).shadow_limits is True
    with ShadowService(broker.url, str(tmp_path / "on.db"), clock, rest_port=0) as limited:
        data = iot_data(limited)
        statuses = []
        for _ in range(21):
            try:
                data.get_thing_shadow(thingName="pump-7")
            except ClientError as error:
                statuses.append(error.response["Error"]["Code"])
        assert statuses == ["ResourceNotFoundException"] * 20 + ["ThrottlingException"]
