"""The ``/api/v1/`` documents: what every page shows, as JSON (``docs/dashboard.md``).

The HTML pages render these same documents, so the API is the page's data, not a second
reading of it. Times are ISO 8601 UTC strings ending in ``Z``; shares are fractions 0..1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from cloud.dashboard import analysis
from cloud.dashboard.model_health import HealthOptions, asset_health, model_health
from cloud.dashboard.queries import THRESHOLD, DataView, Row, iso, parse_time
from cloud.l4e.naming import upload_frequency_seconds
from cloud.l4e.result_keys import stored_result_keys
from edge.errors import NotFoundError, StorageError, UserError

API_VERSION: Final = "v1"
RIBBON_CELLS: Final = 48
TOP_SENSORS: Final = 4
TRACE_MARGIN_S: Final = 900.0
HEALTH_TTL_S: Final = 30.0
"""Model health reads many input files; it is recomputed at most this often."""


class DashboardApi:
    def __init__(
        self,
        view: DataView,
        *,
        actions_enabled: bool = False,
        health: HealthOptions | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.view = view
        self.actions_enabled = actions_enabled
        self.health_options = health or HealthOptions()
        self._monotonic = monotonic
        self._health: tuple[float, dict[str, Any]] | None = None
        self._health_lock = threading.Lock()

    # ------------------------------------------------------------------ fleet

    def version(self) -> dict[str, Any]:
        devices = self.view.devices()
        liveness = ",".join(f"{d['site']}/{d['sender']}={d['health']}" for d in devices)
        return {
            "api": API_VERSION,
            "version": f"{self.view.fingerprint()}|{liveness}",
            "now": iso(time.time()),
        }

    def overview(self) -> dict[str, Any]:
        files = self.view.result_files()
        rows = {key: self.view.rows(key, files.get(key, [])) for key in self.view.asset_keys()}
        ends = [r[-1].t for r in rows.values() if r]
        end = max(ends) if ends else None
        starts = [r[0].t for r in rows.values() if r]
        span = min(86400.0, max(3600.0, (end - min(starts)) if end else 3600.0))
        assets = []
        for key, asset_rows in rows.items():
            site, asset = self.view.sites.split(key)
            detector = self.view.detector_state(key)
            last = asset_rows[-1] if asset_rows else None
            assets.append(
                {
                    "key": key,
                    "site": site,
                    "asset": asset,
                    "state": _state(detector, last),
                    "state_source": "detector" if detector else "results",
                    "detector_model": detector["detector_model"] if detector else None,
                    "state_updated": detector["updated"] if detector else None,
                    "results": len(asset_rows),
                    "anomalous": sum(r.prediction == 1 for r in asset_rows),
                    "last_result": _result(last),
                    "ribbon": analysis.ribbon(asset_rows, end - span, end + 1e-6, RIBBON_CELLS)
                    if end
                    else [],
                }
            )
        states = [a["state"] for a in assets]
        return {
            "generated_at": iso(time.time()),
            "ribbon_start": iso(end - span) if end else None,
            "ribbon_end": iso(end) if end else None,
            "counts": {s: states.count(s) for s in sorted(set(states))},
            "assets": assets,
        }

    # ------------------------------------------------------------------ one asset

    def asset(self, key: str) -> dict[str, Any]:
        self.view.require_asset(key)
        site, asset = self.view.sites.split(key)
        rows = self.view.rows(key)
        detector = self.view.detector_state(key)
        importance, basis = analysis.signal_importance(rows)
        top = [item["name"] for item in importance[:TOP_SENSORS]]
        found = analysis.events(rows)
        last_scored = next((r for r in reversed(rows) if r.diagnostics), None)
        shown = analysis.downsample(rows)
        return {
            "key": key,
            "site": site,
            "asset": asset,
            "state": _state(detector, rows[-1] if rows else None),
            "detector": detector,
            "threshold": THRESHOLD,
            "results": {
                "rows": len(rows),
                "anomalous": sum(r.prediction == 1 for r in rows),
                "first": iso(rows[0].t) if rows else None,
                "last": iso(rows[-1].t) if rows else None,
                "unreadable": self.view.unreadable_results(key),
            },
            "score": [
                {"t": iso(r.t), "score": r.score, "prediction": r.prediction}
                for r in shown
                if r.score is not None
            ],
            "signal_importance": {
                "basis": basis,
                "one_over_n": round(1 / len(importance), 5) if importance else None,
                "sensors": importance,
            },
            "importance_over_time": {
                "sensors": top,
                "points": analysis.importance_over_time(rows, top),
            },
            "events": [
                {
                    "start": iso(e.start),
                    "end": iso(e.end),
                    "duration_s": e.duration_s,
                    "rows": e.rows,
                    "top_sensor": e.top_sensor,
                }
                for e in found
            ],
            "events_per_day": analysis.events_per_day(found),
            "last_diagnostics": _diagnostics(last_scored),
            "traces": self._traces(key, found, top, rows),
        }

    def _traces(
        self, key: str, found: list[analysis.Event], top: list[str], rows: list[Row]
    ) -> dict[str, Any]:
        """The raw readings of the top sensors around the latest event (or the latest
        results when there is none), from the input CSVs."""
        if found:
            event = found[-1]
            start, end = event.start - TRACE_MARGIN_S, event.end + TRACE_MARGIN_S
            around = {"start": iso(event.start), "end": iso(event.end)}
        elif rows:
            start, end, around = rows[-1].t - 2 * TRACE_MARGIN_S, rows[-1].t, None
        else:
            return {"event": None, "start": None, "end": None, "sensors": {}, "unreadable": []}
        series, unreadable = self.view.traces(key, top[:3], start, end)
        return {
            "event": around,
            "start": iso(start),
            "end": iso(end),
            "sensors": {name: [[iso(t), v] for t, v in points] for name, points in series.items()},
            "unreadable": unreadable,
        }

    # ------------------------------------------------------------------ schedulers

    def _input_files(self) -> Callable[[dict[str, Any]], list[str]]:
        """For an execution, the input files the §4 rule selects for its window: those
        named for a window end within one upload period of the data window."""
        configs = {name: doc.get("config", {}) for name, doc in self.view.schedulers()}
        indexes: dict[str, list[tuple[float, str]]] = {}

        def files(execution: dict[str, Any]) -> list[str]:
            config = configs.get(str(execution.get("scheduler")))
            if not config:
                return []
            prefix = str(config.get("input_prefix", "input/"))
            if prefix not in indexes:
                indexes[prefix] = self.view.input_index(prefix)
            period = upload_frequency_seconds(str(config.get("upload_frequency", "PT5M")))
            try:
                lo = parse_time(str(execution["data_start"])) - period
                hi = parse_time(str(execution["data_end"])) + period
            except (KeyError, ValueError):
                return []
            return [key for t, key in indexes[prefix] if lo <= t <= hi]

        return files

    def schedulers(self) -> dict[str, Any]:
        executions = self.view.executions()
        inputs = self._input_files()
        out = []
        for name, doc in self.view.schedulers():
            config = doc.get("config", {})
            mine = [e for e in executions if e.get("scheduler") == name]
            last = mine[0] if mine else None
            out.append(
                {
                    "name": name,
                    "status": doc.get("status"),
                    "model": config.get("model_name"),
                    "upload_frequency": config.get("upload_frequency"),
                    "delay_offset_min": config.get("delay_offset_min"),
                    "input": f"{config.get('input_bucket')}/{config.get('input_prefix')}",
                    "output": f"{config.get('output_bucket')}/{config.get('output_prefix')}",
                    "last_window_end": iso(doc.get("last_window_end")),
                    "last_execution": _execution(last, inputs) if last else None,
                    "executions": len(mine),
                    "failed": sum(e.get("status") == "FAILED" for e in mine),
                }
            )
        known = {s["name"] for s in out}
        for name in sorted({str(e.get("scheduler")) for e in executions} - known):
            mine = [e for e in executions if str(e.get("scheduler")) == name]
            out.append(
                {
                    "name": name,
                    "status": None,
                    "model": mine[0].get("model_name"),
                    "last_execution": _execution(mine[0], inputs),
                    "executions": len(mine),
                    "failed": sum(e.get("status") == "FAILED" for e in mine),
                }
            )
        return {"schedulers": out}

    def executions(self, scheduler: str | None = None, limit: int = 50) -> dict[str, Any]:
        found = self.view.executions()
        if scheduler is not None:
            found = [e for e in found if e.get("scheduler") == scheduler]
            if not found and scheduler not in {n for n, _d in self.view.schedulers()}:
                raise NotFoundError(f"scheduler {scheduler!r}: not found")
        inputs = self._input_files()
        return {"executions": [_execution(e, inputs) for e in found[:limit]], "total": len(found)}

    # ------------------------------------------------------------------ alarms

    def alarms(self) -> dict[str, Any]:
        detectors = []
        for model, instances in self.view.detector_instances().items():
            for key, doc in instances.items():
                detectors.append(
                    {
                        "detector_model": model,
                        "key": key,
                        "state": doc.get("state"),
                        "updated": iso(doc.get("updated")),
                    }
                )
        return {
            "actions_enabled": self.actions_enabled,
            "actions": ["acknowledge", "snooze"] if self.actions_enabled else [],
            "alarms": self.view.alarm_instances(),
            "detectors": detectors,
            "alerts": self.view.alerts(limit=50),
            "history": self.view.alarm_history(limit=50),
        }

    # ------------------------------------------------------------------ shadows, devices

    def shadows(self, thing: str | None = None) -> dict[str, Any]:
        found = self.view.shadows()
        if thing is not None:
            found = [s for s in found if s["thing"] == thing]
            if not found:
                raise NotFoundError(f"thing {thing!r}: no shadow")
        return {"shadows": found}

    def devices(self, site: str | None = None, sender: str | None = None) -> dict[str, Any]:
        found = self.view.devices()
        if sender is not None:
            found = [d for d in found if d["site"] == site and d["sender"] == sender]
            if not found:
                raise NotFoundError(f"device {site}/{sender}: no status received")
        for doc in found:
            for key in ("last_seen", "first_seen", "last_online", "offline_since"):
                doc[key] = iso(doc.get(key))
            doc.pop("received_clock", None)
        counts = [d["health"] for d in found]
        return {
            "devices": found,
            "counts": {h: counts.count(h) for h in sorted(set(counts))},
        }

    # ------------------------------------------------------------------ model health

    def model_health(self) -> dict[str, Any]:
        with self._health_lock:
            now = self._monotonic()
            if self._health is None or now - self._health[0] > HEALTH_TTL_S:
                with _stored_files():
                    self._health = (now, model_health(self.view, self.health_options))
            return self._health[1]

    def model_health_asset(self, key: str) -> dict[str, Any]:
        with _stored_files():
            return asset_health(self.view, key, self.health_options)


@contextmanager
def _stored_files() -> Iterator[None]:
    """A UserError while reading the data folder (a damaged ``model.json``, say) names a
    file on the server, not a fault in the request: it is a StorageError (503), as the
    ``plantwatch model health`` command's own exit 2 stays for its user's folder."""
    try:
        yield
    except UserError as exc:
        raise StorageError(str(exc)) from None


def _state(detector: dict[str, Any] | None, last: Row | None) -> str:
    """The detector's state when one runs; else what the last result says."""
    if detector and detector.get("state"):
        return str(detector["state"])
    if last is None:
        return "Unknown"
    return "Alarm" if last.prediction == 1 else "Normal"


def _result(row: Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    top = row.top
    return {
        "timestamp": iso(row.t),
        "prediction": row.prediction,
        "prediction_reason": row.reason,
        "anomaly_score": row.score,
        "top_sensor": top[0] if top else None,
        "top_share": top[1] if top else None,
    }


def _diagnostics(row: Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    ordered = sorted(row.diagnostics, key=lambda d: -d[1])
    return {
        "timestamp": iso(row.t),
        "anomaly_score": row.score,
        "prediction": row.prediction,
        "top_sensor": ordered[0][0] if ordered else None,
        "diagnostics": [{"name": n, "value": v} for n, v in ordered],
    }


def _execution(
    doc: dict[str, Any], inputs: Callable[[dict[str, Any]], list[str]]
) -> dict[str, Any]:
    skipped = doc.get("skipped") or []
    return {
        "scheduler": doc.get("scheduler"),
        "status": doc.get("status"),
        "data_start": doc.get("data_start"),
        "data_end": doc.get("data_end"),
        "scheduled_start": doc.get("scheduled_start"),
        "failed_reason": doc.get("failed_reason"),
        "rows": doc.get("rows"),
        "anomalous": doc.get("anomalous"),
        "input_files": inputs(doc),
        "result_keys": stored_result_keys(doc),
        "failures": skipped,
        "invalid_values": doc.get("invalid_values") or [],
    }
