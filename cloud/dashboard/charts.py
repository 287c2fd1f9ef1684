"""Charts drawn on the server as SVG text: no JavaScript library, nothing fetched at run time.

Each function returns one ``<svg>`` element. Colours come from CSS classes (``static/
dashboard.css``), so the markup stays small and a test can read it with an XML parser.
Time axes carry ``data-ts`` (epoch seconds) on their labels: the page's script rewrites
them into the browser's time zone, and each keeps the UTC time in its ``<title>``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 12, 26
DRAWN_MAX = 1e300
_TIME_STEPS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    css: str = "s0"
    dots: bool = False


@dataclass(frozen=True, slots=True)
class Line:
    """A horizontal reference line (a threshold, the 1/N share)."""

    value: float
    label: str
    css: str = "ref"


@dataclass(frozen=True, slots=True)
class Band:
    """A shaded time span (an event)."""

    start: float
    end: float
    label: str = ""
    css: str = "band"


@dataclass(slots=True)
class _Frame:
    x0: float
    x1: float
    y0: float
    y1: float
    width: int
    height: int
    parts: list[str] = field(default_factory=list)

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return PAD_LEFT + (value - self.x0) / span * (self.width - PAD_LEFT - PAD_RIGHT)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        inner = self.height - PAD_TOP - PAD_BOTTOM
        return PAD_TOP + (1 - (value - self.y0) / span) * inner


def _clamp(value: float) -> float:
    """A reading as drawn: within +-1e300, so the span of the axis (1.7e308 minus
    -1.7e308 is infinite) and its ticks stay finite; the API keeps the value itself."""
    return min(max(value, -DRAWN_MAX), DRAWN_MAX)


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _svg(width: int, height: int, label: str, body: list[str], css: str = "chart") -> str:
    return (
        f'<svg class="{css}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def empty(label: str, text: str, width: int = 760, height: int = 60) -> str:
    body = [f'<text class="empty" x="{width / 2}" y="{height / 2}">{escape(text)}</text>']
    return _svg(width, height, label, body)


def time_ticks(start: float, end: float, count: int = 6) -> list[float]:
    """Round times (a whole minute, hour, day ...) about *count* apart in ``[start, end]``."""
    span = max(end - start, 1.0)
    week = _TIME_STEPS[-1]
    step = next(
        (s for s in _TIME_STEPS if span / s <= count), math.ceil(span / count / week) * week
    )
    first = math.ceil(start / step) * step
    if first < start:  # start / step rounded to zero
        first += step
    return [first + i * step for i in range(int((end - first) // step) + 1)]


def value_ticks(low: float, high: float, count: int = 4) -> list[float]:
    span = max(high - low, 1e-9)
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    try:
        first = math.ceil(low / step) * step
        ticks = int((high - first) / step + 1e-9) + 1
    except (OverflowError, ValueError):  # a span too narrow for the values' size
        return [low, high]
    return [round(first + i * step, 10) for i in range(min(ticks, 2 * count + 2))]


def _axes(frame: _Frame, *, time_axis: bool, y_label: str) -> None:
    parts = frame.parts
    bottom = frame.height - PAD_BOTTOM
    parts.append(
        f'<line class="axis" x1="{PAD_LEFT}" y1="{bottom}" x2="{frame.width - PAD_RIGHT}"'
        f' y2="{bottom}"/>'
    )
    for value in value_ticks(frame.y0, frame.y1):
        y = frame.y(value)
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" y1="{_n(y)}" x2="{frame.width - PAD_RIGHT}"'
            f' y2="{_n(y)}"/><text class="tick" x="{PAD_LEFT - 4}" y="{_n(y + 4)}"'
            f' text-anchor="end">{value:g}</text>'
        )
    if y_label:
        parts.append(f'<text class="label" x="4" y="{PAD_TOP - 2}">{escape(y_label)}</text>')
    if time_axis:
        for t in time_ticks(frame.x0, frame.x1):
            x = frame.x(t)
            text = datetime.fromtimestamp(t, UTC).strftime("%H:%M")
            parts.append(
                f'<text class="tick" x="{_n(x)}" y="{bottom + 16}" text-anchor="middle"'
                f' data-ts="{int(t)}" data-fmt="short"><title>{_utc(t)}</title>{text}</text>'
            )


def time_series(
    label: str,
    series: Sequence[Series],
    *,
    start: float | None = None,
    end: float | None = None,
    y_min: float | None = None,
    y_max: float | None = None,
    lines: Sequence[Line] = (),
    bands: Sequence[Band] = (),
    y_label: str = "",
    width: int = 1100,
    height: int = 240,
) -> str:
    """Lines (or dots) over time, with reference lines and shaded bands."""
    series = [Series(s.name, [(t, _clamp(v)) for t, v in s.points], s.css, s.dots) for s in series]
    xs = [p[0] for s in series for p in s.points]
    ys = [p[1] for s in series for p in s.points] + [line.value for line in lines]
    if not xs:
        return empty(label, "no data yet", width)
    x0 = start if start is not None else min(xs)
    x1 = end if end is not None else max(xs)
    lo = y_min if y_min is not None else min(ys)
    hi = y_max if y_max is not None else max(ys)
    if hi - lo < 1e-9 * max(1.0, abs(hi)):  # one flat value: centre it, whatever its size
        pad = max(1.0, abs(hi) * 0.1)
        lo, hi = lo - pad, hi + pad
    frame = _Frame(x0, x1 if x1 > x0 else x0 + 1.0, lo, hi, width, height)
    for band in bands:
        left, right = frame.x(max(band.start, frame.x0)), frame.x(min(band.end, frame.x1))
        frame.parts.append(
            f'<rect class="{band.css}" x="{_n(left)}" y="{PAD_TOP}" width="{_n(max(right - left, 2))}"'
            f' height="{height - PAD_TOP - PAD_BOTTOM}"><title>{escape(band.label)}'
            f" {_utc(band.start)} to {_utc(band.end)}</title></rect>"
        )
    _axes(frame, time_axis=True, y_label=y_label)
    for line in lines:
        y = frame.y(line.value)
        frame.parts.append(
            f'<line class="{line.css}" x1="{PAD_LEFT}" y1="{_n(y)}" x2="{width - PAD_RIGHT}"'
            f' y2="{_n(y)}"><title>{escape(line.label)}</title></line>'
            f'<text class="reflabel" x="{width - PAD_RIGHT}" y="{_n(y - 3)}"'
            f' text-anchor="end">{escape(line.label)}</text>'
        )
    for item in series:
        inside = [(t, v) for t, v in item.points if frame.x0 <= t <= frame.x1]
        if item.dots:
            dots = "".join(
                f'<circle cx="{_n(frame.x(t))}" cy="{_n(frame.y(v))}" r="2.5"/>' for t, v in inside
            )
            frame.parts.append(
                f'<g class="dots {item.css}" data-series="{escape(item.name)}">{dots}</g>'
            )
            continue
        if not inside:
            continue
        path = " ".join(f"{_n(frame.x(t))},{_n(frame.y(v))}" for t, v in inside)
        frame.parts.append(
            f'<polyline class="line {item.css}" data-series="{escape(item.name)}"'
            f' points="{path}"><title>{escape(item.name)}</title></polyline>'
        )
    if len(series) > 1:
        _legend(frame, [s.name for s in series], [s.css for s in series])
    return _svg(width, height, label, frame.parts)


def _legend(frame: _Frame, names: Sequence[str], classes: Sequence[str]) -> None:
    x = PAD_LEFT + 6
    for name, css in zip(names, classes, strict=True):
        frame.parts.append(
            f'<rect class="key {css}" x="{x}" y="{PAD_TOP + 2}" width="10" height="10"/>'
            f'<text class="legend" x="{x + 14}" y="{PAD_TOP + 11}">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)


def ribbon(label: str, cells: Sequence[dict], *, width: int = 360, height: int = 18) -> str:
    """One rectangle per time slice: grey without rows, red in proportion to anomalous rows."""
    if not cells:
        return empty(label, "no results", width, height)
    step = width / len(cells)
    body = []
    for i, cell in enumerate(cells):
        rows, anomalous = cell["rows"], cell["anomalous"]
        if not rows:
            css = "nodata"
        elif anomalous:
            css = "anomalous"
        elif cell.get("off") == rows:
            css = "off"
        else:
            css = "normal"
        share = f"{anomalous}/{rows} anomalous" if rows else "no results"
        opacity = f' fill-opacity="{0.35 + 0.65 * anomalous / rows:.2f}"' if anomalous else ""
        body.append(
            f'<rect class="cell {css}" x="{_n(i * step)}" y="0" width="{_n(step + 0.3)}"'
            f' height="{height}"{opacity}><title>{escape(cell["start"])}: {share}</title></rect>'
        )
    return _svg(width, height, label, body, css="ribbon")


def hbars(
    label: str,
    items: Sequence[tuple[str, float]],
    *,
    reference: Line | None = None,
    width: int = 1100,
    row: int = 20,
    label_width: int = 260,
) -> str:
    """Horizontal bars (shares 0..1), largest first, with an optional vertical reference."""
    if not items:
        return empty(label, "no diagnostics yet", width)
    height = PAD_TOP + row * len(items) + PAD_BOTTOM
    top = max([v for _n2, v in items] + [reference.value if reference else 0.0, 1e-9])
    scale = (width - label_width - PAD_RIGHT - 40) / top
    body = []
    for i, (name, value) in enumerate(items):
        y = PAD_TOP + i * row
        body.append(
            f'<text class="barlabel" x="{label_width - 6}" y="{y + row * 0.7:.1f}"'
            f' text-anchor="end">{escape(name)}</text>'
            f'<rect class="bar" x="{label_width}" y="{y + 3}" width="{_n(max(value * scale, 1))}"'
            f' height="{row - 6}"><title>{escape(name)}: {value:.1%}</title></rect>'
            f'<text class="barvalue" x="{_n(label_width + value * scale + 4)}"'
            f' y="{y + row * 0.7:.1f}">{value:.1%}</text>'
        )
    if reference is not None:
        x = label_width + reference.value * scale
        bottom = PAD_TOP + row * len(items)
        body.append(
            f'<line class="{reference.css}" x1="{_n(x)}" y1="{PAD_TOP - 4}" x2="{_n(x)}"'
            f' y2="{bottom + 4}"><title>{escape(reference.label)}</title></line>'
            f'<text class="reflabel" x="{_n(x)}" y="{bottom + 18}" text-anchor="middle">'
            f"{escape(reference.label)}</text>"
        )
    return _svg(width, height, label, body)


def vbars(
    label: str,
    items: Sequence[tuple[str, float, str]],
    *,
    y_label: str = "",
    width: int = 560,
    height: int = 200,
) -> str:
    """Vertical bars with a category label under each and a note (its title) on hover."""
    if not items:
        return empty(label, "no events", width)
    top = max(max(v for _c, v, _t in items), 1.0)
    frame = _Frame(0, len(items), 0, top, width, height)
    _axes(frame, time_axis=False, y_label=y_label)
    slot = (width - PAD_LEFT - PAD_RIGHT) / len(items)
    for i, (category, value, note) in enumerate(items):
        x = PAD_LEFT + i * slot
        y = frame.y(value)
        frame.parts.append(
            f'<rect class="bar" x="{_n(x + slot * 0.15)}" y="{_n(y)}" width="{_n(slot * 0.7)}"'
            f' height="{_n(frame.y(0) - y)}"><title>{escape(category)}: {escape(note)}</title>'
            f'</rect><text class="tick" x="{_n(x + slot / 2)}" y="{height - 10}"'
            f' text-anchor="middle">{escape(category)}</text>'
        )
    return _svg(width, height, label, frame.parts)
