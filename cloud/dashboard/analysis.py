"""What the widgets show, computed from result rows: pure functions, no I/O.

The seeds' L4E dashboard widgets, as plantwatch computes them:

- the anomaly ribbon: the share of anomalous rows in each slice of time;
- signal importance: each sensor's mean diagnostic share over the anomalous rows (all rows
  when none is anomalous), against ``1/N``, the share every sensor would have if none
  stood out;
- importance over time: the top sensors' mean share in each slice of time;
- events: maximal runs of anomalous rows (a gap of more than ``gap_s`` ends a run), per
  day with their mean duration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloud.dashboard.queries import EVENT_GAP_S, Row, iso


@dataclass(frozen=True, slots=True)
class Event:
    start: float
    end: float
    rows: int
    top_sensor: str | None

    @property
    def duration_s(self) -> float:
        return self.end - self.start


def ribbon(rows: Sequence[Row], start: float, end: float, cells: int = 48) -> list[dict[str, Any]]:
    """*cells* equal slices of ``[start, end)``: rows, anomalous rows, machine-off rows."""
    width = max((end - start) / cells, 1e-9)
    out = [
        {"start": iso(start + i * width), "rows": 0, "anomalous": 0, "off": 0} for i in range(cells)
    ]
    for row in rows:
        if not start <= row.t < end:
            continue
        cell = out[min(cells - 1, int((row.t - start) / width))]
        cell["rows"] += 1
        cell["anomalous"] += row.prediction == 1
        cell["off"] += row.reason == "MACHINE_OFF"
    return out


def downsample(rows: Sequence[Row], limit: int = 600) -> list[Row]:
    """At most about *limit* rows for a chart: in each slice, the highest-scoring row, so
    a short spike survives the thinning."""
    if len(rows) <= limit:
        return list(rows)
    step = len(rows) / limit
    out = []
    for i in range(limit):
        chunk = rows[int(i * step) : int((i + 1) * step)]
        if chunk:
            out.append(max(chunk, key=lambda r: -1.0 if r.score is None else r.score))
    return out


def signal_importance(rows: Sequence[Row]) -> tuple[list[dict[str, Any]], str]:
    """Mean share per sensor, largest first, and which rows it was taken over."""
    anomalous = [r for r in rows if r.prediction == 1 and r.diagnostics]
    basis, what = (anomalous, "anomalous rows") if anomalous else (rows, "all rows")
    sums: dict[str, float] = {}
    count = 0
    for row in basis:
        if not row.diagnostics:
            continue
        count += 1
        for name, value in row.diagnostics:
            sums[name] = sums.get(name, 0.0) + value
    if not count:
        return [], what
    items = [{"name": n, "value": round(v / count, 5)} for n, v in sums.items()]
    items.sort(key=lambda i: (-i["value"], i["name"]))
    return items, what


def importance_over_time(
    rows: Sequence[Row], sensors: Sequence[str], cells: int = 60
) -> list[dict[str, Any]]:
    """Each slice's mean share of each of *sensors* (slices without rows are left out)."""
    scored = [r for r in rows if r.diagnostics]
    if not scored or not sensors:
        return []
    start, end = scored[0].t, scored[-1].t
    width = max((end - start) / cells, 1.0)
    slices: dict[int, list[Row]] = {}
    for row in scored:
        slices.setdefault(min(cells - 1, int((row.t - start) / width)), []).append(row)
    out = []
    for index in sorted(slices):
        chunk = slices[index]
        shares = {}
        for sensor in sensors:
            total = sum(dict(r.diagnostics).get(sensor, 0.0) for r in chunk)
            shares[sensor] = round(total / len(chunk), 5)
        out.append({"t": iso(start + (index + 0.5) * width), "shares": shares})
    return out


def events(rows: Sequence[Row], gap_s: float = EVENT_GAP_S) -> list[Event]:
    """Maximal runs of anomalous rows, oldest first."""
    found: list[Event] = []
    run: list[Row] = []

    def close() -> None:
        if run:
            sums: dict[str, float] = {}
            for row in run:
                for name, value in row.diagnostics:
                    sums[name] = sums.get(name, 0.0) + value
            top = max(sums, key=lambda n: sums[n]) if sums else None
            found.append(Event(run[0].t, run[-1].t, len(run), top))

    for row in rows:
        if row.prediction == 1:
            if run and row.t - run[-1].t > gap_s:
                close()
                run = []
            run.append(row)
        elif run:
            close()
            run = []
    close()
    return found


def events_per_day(found: Sequence[Event]) -> list[dict[str, Any]]:
    """Per UTC day with events: how many began and their mean duration."""
    days: dict[str, list[Event]] = {}
    for event in found:
        day = datetime.fromtimestamp(event.start, UTC).strftime("%Y-%m-%d")
        days.setdefault(day, []).append(event)
    return [
        {
            "day": day,
            "events": len(group),
            "mean_duration_s": round(sum(e.duration_s for e in group) / len(group), 1),
        }
        for day, group in sorted(days.items())
    ]


def anomaly_rate_per_day(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Per UTC day: scored rows (machine on) and the share of them that were anomalous."""
    days: dict[str, list[int]] = {}
    for row in rows:
        if row.reason == "MACHINE_OFF":
            continue
        day = datetime.fromtimestamp(row.t, UTC).strftime("%Y-%m-%d")
        counts = days.setdefault(day, [0, 0])
        counts[0] += 1
        counts[1] += row.prediction == 1
    return [
        {"day": day, "rows": n, "anomalous": a, "anomaly_rate": round(a / n, 5) if n else 0.0}
        for day, (n, a) in sorted(days.items())
    ]
