"""The dashboard's routes: HTML pages, the ``/api/v1/`` JSON documents, static files.

Every page is rendered on the server from the same document its API endpoint returns,
charts included (:mod:`cloud.dashboard.charts`). The page script asks ``/api/v1/version``
once a second and, when it changed, fetches the page again as a fragment (``?fragment=1``)
and swaps it in, so a page follows new results within about a second without a reload.

Safety: GET only, unless alarm actions are enabled; a POST must carry the
``X-Plantwatch-Action`` header, which a cross-site form cannot send, and come from the
page's own origin. Host names are checked (no DNS rebinding onto a loopback dashboard),
every response forbids framing and outside scripts, and with credentials configured
every request needs HTTP Basic auth.
"""

from __future__ import annotations

import base64
import getpass
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from cloud.dashboard import charts
from cloud.dashboard.actions import ACTIONS, AlarmActions
from cloud.dashboard.api import DashboardApi
from cloud.dashboard.queries import parse_time
from edge.errors import NotFoundError, PlantwatchError, UserError
from edge.json_values import not_unicode

log = logging.getLogger("plantwatch.dashboard")

HERE: Final = Path(__file__).parent
ACTION_HEADER: Final = "x-plantwatch-action"
SECURITY_HEADERS: Final = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
}
"""On every response, errors included (OWASP HTTP Headers and Clickjacking Defense cheat
sheets): ``X-Frame-Options`` for browsers without ``frame-ancestors``, and the
cross-origin policies so another site can neither embed these documents nor keep a handle
on a dashboard window it opened."""
PAGES: Final = (
    ("/", "Fleet"),
    ("/schedulers", "Schedulers"),
    ("/alarms", "Alarms"),
    ("/shadows", "Shadows"),
    ("/devices", "Devices"),
    ("/model-health", "Model health"),
)
SNOOZE_MAX_S: Final = 7 * 86400
MESSAGE_MAX: Final = 300
BODY_MAX: Final = 16 * 1024
"""An action's JSON body (a note and a snooze time) at most."""
TARGET_MAX: Final = 8 * 1024
"""Request target (path and query) at most, as common servers' default line limits."""
HEADERS_MAX: Final = 16 * 1024
"""All request header names and values together at most."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """HTTP Basic credentials every request must carry (a dashboard off loopback)."""

    username: str
    password: str = ""

    def check(self, header: str | None) -> bool:
        """The scheme name is case-insensitive (RFC 9110 section 11.1); the credentials
        are compared as UTF-8 bytes (RFC 7617 section 2.1), since ``compare_digest``
        raises TypeError on a str that is not ASCII."""
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(token.strip(), validate=True).partition(b":")
        except ValueError:
            return False
        return hmac.compare_digest(user, self.username.encode()) & hmac.compare_digest(
            password, self.password.encode()
        )


ErrorPage = Callable[[Request, Exception], Awaitable[Response]]


def _oversize(scope: Scope) -> tuple[int, str] | None:
    """414 or 431 (RFC 9110 section 15.5.15, RFC 6585 section 5) for a request target or
    headers far beyond anything the pages send: uvicorn bounds only a request still
    arriving, so one sent whole in a single packet was parsed and served at any size."""
    target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    if target > TARGET_MAX:
        return 414, f"request target: longer than {TARGET_MAX} bytes"
    headers = sum(len(k) + len(v) for k, v in scope.get("headers") or [])
    if headers > HEADERS_MAX:
        return 431, f"request headers: larger than {HEADERS_MAX} bytes together"
    return None


class _Guard:
    """Basic auth (when configured) and the security headers, on every response: the 401,
    and a 500 too. Starlette answers an unexpected exception in its outermost layer,
    outside any middleware, so the guard turns it into the error page itself."""

    def __init__(self, app: ASGIApp, credentials: Credentials | None, on_error: ErrorPage) -> None:
        self.app = app
        self.credentials = credentials
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        oversize = _oversize(scope)

        async def with_headers(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                raw = list(message.get("headers") or [])
                raw += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message["headers"] = raw
            await send(message)

        if oversize is not None:
            await _error(*oversize)(scope, receive, with_headers)
            return
        if self.credentials is not None:
            headers = dict(scope.get("headers") or [])
            header = headers.get(b"authorization", b"").decode("latin-1") or None
            if not self.credentials.check(header):
                response = Response(
                    "authentication required\n",
                    status_code=401,
                    headers={"www-authenticate": 'Basic realm="plantwatch", charset="UTF-8"'},
                )
                await response(scope, receive, with_headers)
                return
        try:
            await self.app(scope, receive, with_headers)
        except Exception as exc:
            if started:
                raise
            log.exception("dashboard: %s %r failed", scope.get("method"), scope.get("path"))
            response = await self.on_error(Request(scope), exc)
            await response(scope, receive, with_headers)


def create_app(
    api: DashboardApi,
    *,
    actions: AlarmActions | None = None,
    allowed_hosts: list[str] | None = None,
    credentials: Credentials | None = None,
) -> Starlette:
    """The ASGI app; *actions* is only used when *api* says actions are enabled."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["pages"] = PAGES

    def render(request: Request, name: str, **context: Any) -> HTMLResponse:
        fragment = _param(request, "fragment") == "1"
        template = env.get_template(name)
        html = template.render(
            fragment=fragment,
            path=request.url.path,
            actions_enabled=api.actions_enabled,
            **context,
        )
        return HTMLResponse(scrub(html))

    # Pages and documents are plain functions: Starlette runs them in its thread pool, so
    # one slow read (a long history, model health over many CSVs) does not hold the event
    # loop, and every other client's request (the pages' once-a-second version poll
    # included) is still answered meanwhile.

    def overview_page(request: Request) -> Response:
        doc = api.overview()
        ribbons = {
            a["key"]: Markup(charts.ribbon(f"anomaly ribbon of {a['key']}", a["ribbon"]))
            for a in doc["assets"]
        }
        return render(request, "overview.html", doc=doc, ribbons=ribbons, title="Fleet")

    def asset_page(request: Request) -> Response:
        doc = api.asset(request.path_params["key"])
        return render(
            request, "asset.html", doc=doc, svg=_asset_charts(doc), title=f"Asset {doc['key']}"
        )

    def schedulers_page(request: Request) -> Response:
        return render(
            request,
            "schedulers.html",
            doc=api.schedulers(),
            executions=api.executions(limit=30),
            title="Schedulers",
        )

    def alarms_page(request: Request) -> Response:
        return render(request, "alarms.html", doc=api.alarms(), title="Alarms")

    def shadows_page(request: Request) -> Response:
        return render(request, "shadows.html", doc=api.shadows(), title="Shadows")

    def devices_page(request: Request) -> Response:
        return render(request, "devices.html", doc=api.devices(), title="Devices")

    def model_health_page(request: Request) -> Response:
        doc = api.model_health()
        rates = {
            a["key"]: Markup(_rate_chart(a["key"], a["anomaly_rate_per_day"]))
            for a in doc["assets"]
        }
        return render(request, "model_health.html", doc=doc, rates=rates, title="Model health")

    def json_route(producer: Any) -> Any:
        def endpoint(request: Request) -> Response:
            return TextSafeJSONResponse(producer(request))

        return endpoint

    async def alarm_action(request: Request) -> Response:
        if not api.actions_enabled or actions is None:
            return _error(403, "alarm actions are not enabled (start with --alarm-actions)")
        if request.headers.get(ACTION_HEADER) != "1":
            return _error(403, f"missing header {ACTION_HEADER}: 1")
        refused = _foreign(request)
        if refused:
            return _error(403, refused)
        action = request.path_params["action"]
        if action not in ACTIONS:
            return _error(404, f"unknown action {action!r} (expected: {', '.join(ACTIONS)})")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > BODY_MAX:
                return _error(413, f"body: larger than {BODY_MAX} bytes")
        try:
            body = json.loads(raw) if raw else {}
        except (ValueError, RecursionError):
            return _error(400, "body: expected a JSON object")
        if not isinstance(body, dict):
            return _error(400, "body: expected a JSON object")
        snooze_s = body.get("snooze_s")
        if action == "snooze" and (
            isinstance(snooze_s, bool)
            or not isinstance(snooze_s, int | float)
            or not 1 <= snooze_s <= SNOOZE_MAX_S
            or not float(snooze_s).is_integer()  # snoozeDuration: whole seconds
        ):
            return _error(400, f"snooze_s: expected seconds from 1 to {SNOOZE_MAX_S}")
        note = body.get("note", "")
        if not isinstance(note, str):
            return _error(400, "note: expected a string")
        problem = not_unicode(note)
        if problem:  # it could not be stored (a 500 before)
            return _error(400, f"note: {problem}")
        key = request.path_params["key"]
        alarm = actions.apply(
            action,
            request.path_params["model"],
            None if key == "-" else key,
            note=note,
            who=_who(request, credentials),
            snooze_s=float(snooze_s) if action == "snooze" else None,
        )
        return TextSafeJSONResponse(alarm)

    async def on_error(request: Request, exc: Exception) -> Response:
        status = 500
        if isinstance(exc, NotFoundError):
            status = 404
        elif isinstance(exc, UserError):
            status = 409 if getattr(exc, "state", None) else 400
        elif isinstance(exc, HTTPException):
            status = exc.status_code
        elif isinstance(exc, PlantwatchError):
            status = 503
        message = exc.detail if isinstance(exc, HTTPException) else str(exc)
        headers = (exc.headers or {}) if isinstance(exc, HTTPException) else {}
        if status == 500:
            message = f"internal error: {type(exc).__name__}"
        elif status == 404 and isinstance(exc, HTTPException):
            message = f"no such endpoint: {request.url.path}"
        elif status == 405:
            message = f"method {request.method} not allowed here (allowed: {headers.get('Allow')})"
        if len(message) > MESSAGE_MAX:  # a 60 KB asset key is not echoed back whole
            message = message[:MESSAGE_MAX] + "…"
        if request.url.path.startswith("/api/"):
            return _error(status, message, headers)
        html = env.get_template("error.html").render(
            status=status, message=message, path=request.url.path, title=f"{status}"
        )
        return HTMLResponse(scrub(html), status_code=status, headers=headers)

    routes = [
        Route("/", overview_page),
        Route("/assets/{key}", asset_page),
        Route("/schedulers", schedulers_page),
        Route("/alarms", alarms_page),
        Route("/shadows", shadows_page),
        Route("/devices", devices_page),
        Route("/model-health", model_health_page),
        Route("/api/v1/version", json_route(lambda _r: api.version())),
        Route("/api/v1/overview", json_route(lambda _r: api.overview())),
        Route("/api/v1/assets", json_route(lambda _r: api.overview())),
        Route("/api/v1/assets/{key}", json_route(lambda r: api.asset(r.path_params["key"]))),
        Route("/api/v1/schedulers", json_route(lambda _r: api.schedulers())),
        Route(
            "/api/v1/executions",
            json_route(
                lambda r: api.executions(_param(r, "scheduler"), _limit(_param(r, "limit")))
            ),
        ),
        Route("/api/v1/alarms", json_route(lambda _r: api.alarms())),
        Route("/api/v1/alarms/{model}/{key}/{action}", alarm_action, methods=["POST"]),
        Route("/api/v1/shadows", json_route(lambda _r: api.shadows())),
        Route("/api/v1/shadows/{thing}", json_route(lambda r: api.shadows(r.path_params["thing"]))),
        Route("/api/v1/devices", json_route(lambda _r: api.devices())),
        Route(
            "/api/v1/devices/{site}/{sender}",
            json_route(lambda r: api.devices(r.path_params["site"], r.path_params["sender"])),
        ),
        Route("/api/v1/model-health", json_route(lambda _r: api.model_health())),
        Route(
            "/api/v1/model-health/{key}",
            json_route(lambda r: api.model_health_asset(r.path_params["key"])),
        ),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [Middleware(_Guard, credentials=credentials, on_error=on_error)]
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={PlantwatchError: on_error, HTTPException: on_error},
    )


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return TextSafeJSONResponse(
        {"error": message, "status": status}, status_code=status, headers=headers
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub(text: str) -> str:
    """*text* with each lone surrogate as U+FFFD. One has no UTF-8 form, so one in a stored
    document (JSON's ``"\\ud800"`` escape reads as one) or a file name that is not UTF-8
    made the whole page fail to encode, a 500."""
    return _SURROGATE.sub("\ufffd", text)


class TextSafeJSONResponse(JSONResponse):
    """Starlette's JSON response, with lone surrogates as U+FFFD (see :func:`scrub`)."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(
            content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        )
        return scrub(text).encode("utf-8")


def _param(request: Request, name: str) -> str | None:
    """A query parameter given at most once: with two values, which one counts would
    depend on the parser reading it (OWASP WSTG, Testing for HTTP Parameter Pollution)."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise UserError(f"{name}: given {len(values)} times; give it once")
    return values[0] if values else None


def _limit(text: str | None) -> int:
    if text is None:
        return 50
    if not (text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= 1000):
        raise UserError(f"limit: expected a whole number from 1 to 1000, got {text[:20]!r}")
    return int(text)


def _foreign(request: Request) -> str | None:
    """Why an action request does not come from this dashboard's own page, or None.

    Besides the action header (which a cross-site form cannot send and a cross-site script
    cannot send without a CORS preflight this server never grants), the request's source
    is checked as the OWASP CSRF Prevention Cheat Sheet describes: ``Sec-Fetch-Site``
    when the browser sends it, then ``Origin``, then the ``Referer``'s origin."""
    own = f"{request.url.scheme}://{request.url.netloc}"
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site {site!r}: actions come from this dashboard's own pages"
    origin = request.headers.get("origin")
    if origin is not None:
        return None if origin == own else f"origin {origin!r} is not this dashboard"
    referer = request.headers.get("referer")
    if referer is not None:
        parts = urlsplit(referer)
        if f"{parts.scheme}://{parts.netloc}" != own:
            return f"referer {referer[:100]!r} is not this dashboard"
    return None


def _who(request: Request, credentials: Credentials | None) -> str:
    if credentials is not None:
        return f"{credentials.username} (dashboard)"
    try:
        return f"{getpass.getuser()} (dashboard)"
    except (KeyError, OSError):
        return "operator (dashboard)"


def _points(items: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    return [(parse_time(i["t"]), float(i[key])) for i in items if i.get(key) is not None]


def _asset_charts(doc: dict[str, Any]) -> dict[str, Markup]:
    """The asset page's SVG widgets, drawn from its API document."""
    key = doc["key"]
    score = doc["score"]
    bands = [
        charts.Band(parse_time(e["start"]), parse_time(e["end"]) + 1, "event")
        for e in doc["events"]
    ]
    flagged = [p for p in score if p["prediction"] == 1]
    score_svg = charts.time_series(
        f"anomaly score of {key}",
        [
            charts.Series("anomaly score", _points(score, "score"), "s0"),
            charts.Series("anomalous", _points(flagged, "score"), "alarm", dots=True),
        ],
        y_min=0.0,
        y_max=max([1.0] + [p["score"] for p in score]),
        lines=[charts.Line(doc["threshold"], f"threshold {doc['threshold']:g}")],
        bands=bands,
        y_label="score",
    )
    over_time = doc["importance_over_time"]
    importance_svg = charts.time_series(
        f"top sensors' importance over time, {key}",
        [
            charts.Series(
                name,
                [(parse_time(p["t"]), p["shares"][name]) for p in over_time["points"]],
                f"s{i}",
            )
            for i, name in enumerate(over_time["sensors"])
        ],
        y_min=0.0,
        y_max=1.0,
        y_label="share",
    )
    signal = doc["signal_importance"]
    one_over_n = signal["one_over_n"]
    signal_svg = charts.hbars(
        f"signal importance of {key}",
        [(s["name"], s["value"]) for s in signal["sensors"]],
        reference=charts.Line(one_over_n, f"1/N = {one_over_n:.1%}") if one_over_n else None,
    )
    per_day = doc["events_per_day"]
    events_svg = charts.vbars(
        f"events per day, {key}",
        [
            (
                d["day"],
                d["events"],
                f"{d['events']} events, mean {d['mean_duration_s'] / 60:.1f} min",
            )
            for d in per_day
        ],
        y_label="events",
    )
    traces = doc["traces"]
    trace_svgs = []
    band = []
    if traces["event"]:
        band = [
            charts.Band(
                parse_time(traces["event"]["start"]),
                parse_time(traces["event"]["end"]) + 1,
                "event",
            )
        ]
    for i, (name, points) in enumerate(traces["sensors"].items()):
        series = [(parse_time(t), v) for t, v in points]
        trace_svgs.append(
            Markup(
                charts.time_series(
                    f"raw {name}",
                    [charts.Series(name, series, f"s{i}")],
                    start=parse_time(traces["start"]),
                    end=parse_time(traces["end"]),
                    bands=band,
                    y_label=name,
                    height=150,
                )
            )
        )
    return {
        "score": Markup(score_svg),
        "importance": Markup(importance_svg),
        "signal": Markup(signal_svg),
        "events": Markup(events_svg),
        "traces": trace_svgs,  # type: ignore[dict-item]
    }


def _rate_chart(key: str, rates: list[dict[str, Any]]) -> str:
    return charts.vbars(
        f"anomaly rate per day, {key}",
        [
            (r["day"], r["anomaly_rate"] * 100, f"{r['anomalous']} of {r['rows']} rows")
            for r in rates
        ],
        y_label="% anomalous",
        height=140,
    )
