"""Hostile HTTP clients against the dashboard app: odd paths, methods, query values and
failures must all get a short, well-formed answer carrying the security headers."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from dash_data import WALL_NOW, build
from starlette.testclient import TestClient

from cloud.dashboard.actions import StoreActions
from cloud.dashboard.api import DashboardApi
from cloud.dashboard.app import SECURITY_HEADERS, Credentials, create_app
from cloud.dashboard.queries import DataView
from cloud.dashboard.server import LOOPBACK_NAMES

BASE = "http://127.0.0.1:8600"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("http") / "data")


@pytest.fixture(scope="module")
def client(data_dir: Path) -> TestClient:
    view = DataView(data_dir, wall=lambda: WALL_NOW)
    app = create_app(DashboardApi(view), allowed_hosts=LOOPBACK_NAMES)
    return TestClient(app, base_url=BASE, raise_server_exceptions=False)


def assert_guarded(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (name, response.status_code)  # type: ignore[attr-defined]


class _Failing(DashboardApi):
    """An API whose overview fails unexpectedly, as a bug in a query would."""

    def overview(self) -> dict:
        raise RuntimeError("boom")


def test_an_unexpected_failure_answers_500_with_the_security_headers(data_dir: Path) -> None:
    view = DataView(data_dir, wall=lambda: WALL_NOW)
    app = create_app(_Failing(view), allowed_hosts=LOOPBACK_NAMES)
    client = TestClient(app, base_url=BASE, raise_server_exceptions=False)
    api = client.get("/api/v1/overview")
    assert api.status_code == 500
    assert api.json() == {"error": "internal error: RuntimeError", "status": 500}
    assert_guarded(api)
    page = client.get("/")
    assert page.status_code == 500 and "<h1>500</h1>" in page.text and "boom" not in page.text
    assert_guarded(page)


def test_the_401_carries_the_security_headers(data_dir: Path) -> None:
    view = DataView(data_dir, wall=lambda: WALL_NOW)
    app = create_app(DashboardApi(view), credentials=Credentials("plantwatch-operator", "pw"))
    client = TestClient(app, base_url=BASE)
    response = client.get("/api/v1/overview")
    assert response.status_code == 401 and "basic" in response.headers["www-authenticate"].lower()
    assert_guarded(response)
    assert client.get("/api/v1/overview", auth=("plantwatch-operator", "pw")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/overview", "GET, HEAD"),
        ("POST", "/api/v1/overview", "GET, HEAD"),
        ("DELETE", "/api/v1/shadows/pump-02", "GET, HEAD"),
        ("GET", "/api/v1/alarms/anomaly/pump-02/acknowledge", "POST"),
        ("OPTIONS", "/", "GET, HEAD"),
        ("TRACE", "/assets/pump-02", "GET, HEAD"),
    ],
)
def test_a_method_a_route_does_not_take_is_405_with_allow(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    """RFC 9110 section 15.5.6: a 405 must name the allowed methods in ``Allow``; an
    existing API path with the wrong method is not an unknown endpoint (404)."""
    response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert set(response.headers["allow"].split(", ")) == set(allow.split(", "))
    assert_guarded(response)
    if path.startswith("/api/"):
        error = response.json()["error"]
        assert error.startswith(f"method {method} not allowed here (allowed: ")


def test_unknown_endpoints_stay_404_for_every_method(client: TestClient) -> None:
    for method in ("GET", "POST", "PUT", "DELETE"):
        response = client.request(method, "/api/v1/nothing")
        assert response.status_code == 404
        assert response.json() == {"error": "no such endpoint: /api/v1/nothing", "status": 404}
        assert_guarded(response)


def test_head_answers_like_get_without_a_body(client: TestClient) -> None:
    for path in ("/", "/api/v1/overview", "/static/dashboard.js"):
        response = client.head(path)
        assert response.status_code == 200 and response.content == b""
        assert_guarded(response)


@pytest.mark.parametrize(
    "key",
    ["%2e%2e", "..%2fstate.db", "..%5cstate.db", "%00", "pump-02%00", "%5c", "%ff%fe"],
)
def test_path_parameters_never_reach_the_file_system(client: TestClient, key: str) -> None:
    """A bare ``..`` is resolved by the client; the real-server test sends it raw."""
    for path in (
        f"/api/v1/assets/{key}",
        f"/api/v1/model-health/{key}",
        f"/api/v1/shadows/{key}",
        f"/api/v1/devices/{key}/{key}",
        f"/assets/{key}",
        f"/static/{key}",
    ):
        response = client.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert_guarded(response)


@pytest.mark.parametrize(
    "value", ["0", "-1", str(10**12), "abc", "", " 5", "5.0", "+5", "0x10", "²", "١٢", "1" * 5000]
)
def test_a_bad_limit_is_400_naming_it(client: TestClient, value: str) -> None:
    """Unicode digits pass ``str.isdigit``: ``²`` made ``int()`` raise (500) and ``١٢`` was
    read as 12; 5000 digits exceed ``int()``'s digit limit."""
    response = client.get("/api/v1/executions", params={"limit": value})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith("limit: expected a whole number from 1 to 1000, got ")
    assert len(error) < 120
    assert_guarded(response)


def test_a_parameter_given_twice_is_refused(client: TestClient) -> None:
    """Which of two values counts would depend on the parser (OWASP WSTG, Testing for HTTP
    Parameter Pollution): ``limit=abc&limit=5`` answered 200 with 5, the reverse 400."""
    for query in ("limit=abc&limit=5", "limit=5&limit=5", "scheduler=a&scheduler=pumps-scheduler"):
        response = client.get(f"/api/v1/executions?{query}")
        assert response.status_code == 400, query
        assert "given 2 times; give it once" in response.json()["error"]
    assert client.get("/?fragment=1&fragment=0").status_code == 400
    assert client.get("/api/v1/executions?limit=5").status_code == 200


def test_an_error_does_not_echo_a_huge_value(client: TestClient) -> None:
    response = client.get("/api/v1/executions", params={"scheduler": "x" * 5000})
    assert response.status_code == 404 and len(response.json()["error"]) <= 301


def test_an_oversize_target_or_header_set_is_refused(client: TestClient) -> None:
    """A 20 KB query string or 20 KB of headers sent in one packet was parsed and served."""
    long_query = client.get("/api/v1/overview", params={"x": "a" * 9000})
    assert long_query.status_code == 414
    assert long_query.json()["error"] == "request target: longer than 8192 bytes"
    assert_guarded(long_query)
    big = client.get("/", headers={f"x-h{i}": "a" * 1000 for i in range(20)})
    assert big.status_code == 431 and "request headers" in big.text
    assert_guarded(big)
    assert client.get("/", headers={"x-h": "a" * 4000}).status_code == 200


@pytest.fixture(scope="module")
def acting(data_dir: Path) -> TestClient:
    api = DashboardApi(DataView(data_dir, wall=lambda: WALL_NOW), actions_enabled=True)
    app = create_app(api, actions=StoreActions(data_dir), allowed_hosts=LOOPBACK_NAMES)
    return TestClient(app, base_url=BASE, raise_server_exceptions=False)


ACK = "/api/v1/alarms/anomaly_score/pump-02/acknowledge"
ACTION = {"x-plantwatch-action": "1"}


@pytest.mark.parametrize(
    ("headers", "refusal"),
    [
        ({"referer": "http://evil.example/page"}, "referer 'http://evil.example/page'"),
        ({"sec-fetch-site": "cross-site"}, "Sec-Fetch-Site 'cross-site'"),
        ({"sec-fetch-site": "same-site"}, "Sec-Fetch-Site 'same-site'"),
        ({"origin": "null"}, "origin 'null'"),
        ({"origin": "http://127.0.0.1:8601"}, "origin 'http://127.0.0.1:8601'"),
    ],
)
def test_an_action_from_another_site_is_refused(
    acting: TestClient, headers: dict[str, str], refusal: str
) -> None:
    """OWASP CSRF Prevention Cheat Sheet: Fetch Metadata first, then Origin, then Referer;
    a foreign Referer without an Origin used to pass."""
    response = acting.post(ACK, headers={**ACTION, **headers}, json={})
    assert response.status_code == 403, response.text
    assert response.json()["error"].startswith(refusal)
    assert_guarded(response)


def test_an_action_from_the_page_itself_gets_past_the_guard(acting: TestClient) -> None:
    own = {"origin": BASE, "referer": f"{BASE}/alarms", "sec-fetch-site": "same-origin"}
    response = acting.post(ACK, headers={**ACTION, **own}, json={})
    assert response.status_code == 404  # no alarm model in this folder: the guard let it by
    assert "anomaly_score" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"[" * 10000, 400, "body: expected a JSON object"),
        (b'{"note": "' + b"a" * 20000 + b'"}', 413, "body: larger than 16384 bytes"),
        (b'{"snooze_s": NaN}', 400, "snooze_s: expected seconds"),
        (b'{"snooze_s": Infinity}', 400, "snooze_s: expected seconds"),
        # snoozeDuration is a whole number of seconds, as the CLI's --for and the API take it
        (b'{"snooze_s": 90.5}', 400, "snooze_s: expected seconds"),
        # a lone surrogate: it could not be written to the state store (a 500 before)
        (b'{"snooze_s": 60, "note": "valve \\ud800"}', 400, "note: position 6 holds"),
    ],
)
def test_a_hostile_action_body_is_a_400_or_413(
    acting: TestClient, body: bytes, status: int, error: str
) -> None:
    """A 10 000-deep JSON body raised RecursionError (a 500); a body had no size limit."""
    path = ACK.replace("acknowledge", "snooze")
    response = acting.post(path, headers={**ACTION, "origin": BASE}, content=body)
    assert response.status_code == status, response.text
    assert response.json()["error"].startswith(error)


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        ("Basic " + base64.b64encode("é:x".encode()).decode(), 401),
        ("Basic " + base64.b64encode("plantwatch-operator:pé".encode()).decode(), 401),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), 401),
        ("Basic !!!", 401),
        ("Basic", 401),
        ("Bearer pw", 401),
        ("basic " + base64.b64encode(b"plantwatch-operator:pw").decode(), 200),
        ("BASIC  " + base64.b64encode(b"plantwatch-operator:pw").decode(), 200),
    ],
)
def test_hostile_credentials_are_a_401_never_a_500(
    data_dir: Path, authorization: str, status: int
) -> None:
    """``hmac.compare_digest`` raises TypeError on a str that is not ASCII: a user name or
    password with an ``é`` was a bare 500. The scheme is case-insensitive (RFC 9110 section
    11.1): ``basic`` was refused."""
    view = DataView(data_dir, wall=lambda: WALL_NOW)
    app = create_app(DashboardApi(view), credentials=Credentials("plantwatch-operator", "pw"))
    client = TestClient(app, base_url=BASE, raise_server_exceptions=False)
    response = client.get("/api/v1/version", headers={"authorization": authorization})
    assert response.status_code == status
    assert_guarded(response)
