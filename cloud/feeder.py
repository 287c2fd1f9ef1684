"""Feed L4E ``results.jsonl`` rows to the detector engine as ``AnomalyResults`` messages.

Layouts read (l4e-contracts §5): ``<prefix><component>/<yyyy-MM-ddTHH:mm:ssZ>/results.jsonl``,
or ``<prefix><yyyy-MM-ddTHH:mm:ssZ>/results.jsonl`` when the feeder is given the component,
and a site other than the default one adds its folder:
``<prefix><site>/<component>/<yyyy-MM-ddTHH:mm:ssZ>/results.jsonl`` (:mod:`cloud.l4e.sites`).
Each message's ``asset`` is the detector key (``<component>``, or ``<site>:<component>`` for
another site, so two sites' ``pump-01`` are two detector instances); ``thing`` is the
component itself, the thing a command goes to, and ``site`` the site when the key names one.
Progress (rows fed per object) is kept in the StateStore, so a restart neither re-feeds nor
skips rows. A malformed line is quarantined with its reason in the StateStore, not dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from cloud.detectors.model import default_detector_paths
from cloud.l4e.sites import SiteLayout
from cloud.ports import ObjectStore, StateStore
from edge.json_values import finite_number, not_unicode
from edge.wire import NAME_RE

log = logging.getLogger(__name__)

INPUT_NAME: Final = "AnomalyResults"
RESULTS_FILE: Final = "results.jsonl"
TOP_SENSORS: Final = 3
DEFAULT_STALE_AFTER_S: Final = 600.0
"""Twice the default upload frequency (PT5M): no result for this long means "went silent"."""
_FOLDER_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_COMPONENT_RE: Final = re.compile(r"^[a-zA-Z0-9\-_:]{1,128}$")

__all__ = [
    "INPUT_NAME",
    "MessageTarget",
    "ResultsFeeder",
    "default_detector_paths",
    "mark_existing_fed",
    "result_to_message",
]


class MessageTarget(Protocol):
    """What the feeder feeds: a ``DetectorEngine``, or several behind one router."""

    def put_message(
        self, input_name: str, payload: dict[str, Any], message_id: str | None = None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class _Source:
    """Whose rows a results object holds."""

    key: str
    """The detector key: ``<component>`` or ``<site>:<component>``."""
    thing: str
    site: str | None


@dataclass(frozen=True, slots=True)
class _Row:
    timestamp: str
    component: str
    key: str
    line: int
    message_id: str
    message: dict[str, Any]


class ResultsFeeder:
    """Polls an ObjectStore prefix for results objects and feeds their rows in time order."""

    def __init__(
        self,
        store: ObjectStore,
        prefix: str,
        engine: MessageTarget,
        state: StateStore,
        *,
        component: str | None = None,
        input_name: str = INPUT_NAME,
        sites: SiteLayout | None = None,
        stale_after_s: float | None = DEFAULT_STALE_AFTER_S,
        on_quarantined: Callable[[str, int, str], None] | None = None,
    ) -> None:
        self._store = store
        self._on_quarantined = on_quarantined
        """Told ``(key, line, reason)`` once per line newly set aside (line 0: the whole
        object), so a runtime can log and count it where its operators look."""
        self.prefix = prefix
        self._engine = engine
        self._state = state
        self.component = component
        self.input_name = input_name
        self.sites = sites or SiteLayout()
        self.stale_after_s = stale_after_s
        """Sent with every message: the silence after which the default model goes Stale."""
        self.namespace = progress_namespace(prefix)
        self.quarantine_namespace = f"feeder-quarantine/{prefix}"

    def poll(self) -> int:
        """Feed every row not fed yet; return how many rows were fed.

        The newest object of each component may still grow (streaming mode rewrites the
        open window as lines arrive), so it is re-read each poll; an object is settled, and
        never read again, once a later window of the same component exists.
        """
        found: list[tuple[str, _Source, str]] = []
        latest: dict[str, str] = {}
        for key in self._store.list(self.prefix):
            if not key.endswith("/" + RESULTS_FILE):
                continue
            done = self._state.get(self.namespace, key)
            located = self._locate(key, quarantine=done is None)
            if located is None:
                continue
            source, folder = located
            latest[source.key] = max(folder, latest.get(source.key, folder))
            if done is not None and done.get("settled"):
                continue
            found.append((key, source, folder))
        rows: list[_Row] = []
        progress: dict[str, int] = {}
        settled: dict[str, bool] = {}
        for key, source, folder in found:
            done = self._state.get(self.namespace, key)
            progress[key] = int(done.get("rows", 0)) if done else 0
            settled[key] = folder < latest[source.key]
            rows.extend(self._rows(key, source, skip=progress[key]))
        rows.sort(key=lambda r: (r.timestamp, r.component, r.key, r.line))
        count = 0
        for row in rows:
            self._put(row)
            progress[row.key] += 1
            self._state.put(self.namespace, row.key, {"rows": progress[row.key], "settled": False})
            count += 1
        for key, fed in progress.items():
            self._state.put(self.namespace, key, {"rows": fed, "settled": settled[key]})
        return count

    def _put(self, row: _Row) -> None:
        message = row.message
        if self.stale_after_s is not None:
            message = {**message, "stale_after_s": self.stale_after_s}
        self._engine.put_message(self.input_name, message, message_id=row.message_id)

    def feed(self, key: str) -> int:
        """Feed the rows of one results object not fed yet; return how many were fed.

        For event-driven runtimes (the detector Lambda gets one S3 ``ObjectCreated`` per
        object): no listing, the same per-object progress as :meth:`poll`, so a rewritten
        object feeds only its new rows and a redelivered event feeds nothing.
        """
        done = self._state.get(self.namespace, key)
        if done is not None and done.get("settled"):
            return 0
        if not key.startswith(self.prefix) or not key.endswith("/" + RESULTS_FILE):
            self._reject(key, f"not a {RESULTS_FILE} under {self.prefix!r}", done is None)
            return 0
        located = self._locate(key, quarantine=done is None)
        if located is None:
            return 0
        fed = int(done.get("rows", 0)) if done else 0
        rows = self._rows(key, located[0], skip=fed)
        for row in rows:
            self._put(row)
            fed += 1
            self._state.put(self.namespace, key, {"rows": fed, "settled": False})
        if done is None and not rows:
            self._state.put(self.namespace, key, {"rows": 0, "settled": False})
        return len(rows)

    def feed_lines(self, key: str, first_row: int, lines: list[dict[str, Any]]) -> int:
        """Feed rows just written to *key* as rows *first_row*, ... of the object, without
        listing or reading the store (streaming mode: the sink tells the feeder what it
        wrote). If the object's progress is not *first_row* (a restart, a missed call),
        the object itself is read from where the feed stopped (:meth:`feed`)."""
        done = self._state.get(self.namespace, key)
        progress = int(done.get("rows", 0)) if done else 0
        if progress != first_row or (done is not None and done.get("settled")):
            return self.feed(key)
        located = self._locate(key, quarantine=done is None)
        if located is None:
            return 0
        source, _folder = located
        rows = []
        for number, line in enumerate(lines, start=first_row + 1):
            try:
                message = result_to_message(source.key, line, thing=source.thing, site=source.site)
            except ValueError as exc:
                self._quarantine(key, number, str(exc))
                continue
            message_id = hashlib.sha1(f"{key}#{number}".encode()).hexdigest()[:32]
            rows.append(_Row(message["timestamp"], source.key, key, number, message_id, message))
        for row in rows:  # progress per row, as feed(): a failure keeps the rows before it fed
            self._put(row)
            progress += 1
            self._state.put(self.namespace, key, {"rows": progress, "settled": False})
        if not rows:
            self._state.put(self.namespace, key, {"rows": progress, "settled": False})
        return len(rows)

    def _locate(self, key: str, *, quarantine: bool) -> tuple[_Source, str] | None:
        """Where a results key's rows come from, and its folder; a key outside the layout
        is quarantined."""
        parts = key[len(self.prefix) :].split("/")
        site = self.sites.default_site
        if len(parts) == 4 and _FOLDER_RE.fullmatch(parts[2]):
            site, component, folder = parts[0], parts[1], parts[2]
            if not NAME_RE.fullmatch(site):
                return self._reject(key, f"site {site!r} is not a valid site name", quarantine)
        elif len(parts) == 3 and _FOLDER_RE.fullmatch(parts[1]):
            component, folder = parts[0], parts[1]
        elif len(parts) == 2 and _FOLDER_RE.fullmatch(parts[0]) and self.component:
            component, folder = self.component, parts[0]
        else:
            reason = "not [<site>/]<component>/<yyyy-MM-ddTHH:mm:ssZ>/results.jsonl"
            if len(parts) == 2 and _FOLDER_RE.fullmatch(parts[0]):
                reason = "no component in the key and none given to the feeder"
            return self._reject(key, reason, quarantine)
        detector_key = component if site is None else self.sites.key(site, component)
        if not _COMPONENT_RE.fullmatch(component) or not _COMPONENT_RE.fullmatch(detector_key):
            return self._reject(
                key, f"component {component!r} is not a valid detector key", quarantine
            )
        return _Source(detector_key, component, site), folder

    def _reject(self, key: str, reason: str, quarantine: bool) -> None:
        if quarantine:
            self._quarantine(key, 0, reason)
            self._state.put(self.namespace, key, {"rows": 0, "settled": True})
        return None

    def _rows(self, key: str, source: _Source, *, skip: int) -> list[_Row]:
        """Valid rows of one object after the first *skip*, each with its message."""
        text = self._store.get(key).decode("utf-8", errors="replace")
        parsed: list[tuple[str, int, dict[str, Any]]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                message = result_to_message(source.key, doc, thing=source.thing, site=source.site)
            except (ValueError, RecursionError) as exc:
                self._quarantine(key, number, str(exc))
                continue
            parsed.append((message["timestamp"], number, message))
        parsed.sort(key=lambda item: (item[0], item[1]))
        rows: list[_Row] = []
        for index, (timestamp, number, message) in enumerate(parsed):
            if index < skip:
                continue
            message_id = hashlib.sha1(f"{key}#{number}".encode()).hexdigest()[:32]
            rows.append(_Row(timestamp, source.key, key, number, message_id, message))
        return rows

    def _quarantine(self, key: str, line: int, reason: str) -> None:
        record_key = quarantine_key(key, line)
        if self._state.get(self.quarantine_namespace, record_key) is None:
            log.warning("%s line %d quarantined: %s", key, line, reason)
            self._state.put(
                self.quarantine_namespace, record_key, {"reason": reason, "key": key, "line": line}
            )
            if self._on_quarantined is not None:
                self._on_quarantined(key, line, reason)

    def quarantined(self) -> list[tuple[str, str]]:
        return [(k, v["reason"]) for k, v in self._state.items(self.quarantine_namespace)]


BASELINE_NS: Final = "feeder-baseline"
MAX_RECORD_KEY_BYTES: Final = 1023
"""The longest state key every store takes: a DynamoDB sort key holds 1,024 bytes, one of
which the DynamoDB store spends on a key that starts with ``~`` (it escapes them to keep
``""`` storable), and an S3 key may be as long, so ``<key>#<line>`` may not fit."""


def quarantine_key(key: str, line: int) -> str:
    """``<key>#<line>``, or for a key too long for that a digest of it in its place (the
    record keeps the whole key)."""
    record_key = f"{key}#{line}"
    if len(record_key.encode()) <= MAX_RECORD_KEY_BYTES:
        return record_key
    return f"sha256:{hashlib.sha256(key.encode()).hexdigest()}#{line}"


def progress_namespace(prefix: str) -> str:
    """Where a feeder of *prefix* keeps each results object's progress."""
    return f"feeder/{prefix}"


def mark_existing_fed(store: ObjectStore, prefix: str, state: StateStore) -> int:
    """The first time a stack feeds *prefix* (no record of it in *state*), mark the
    results objects already there as fed, without feeding them; return how many.

    Why: a prefix that already holds results (L4E's, from before plantwatch, in a bucket
    carried over) is history, not news. Polled, every row of it would go through the
    detectors and raise alerts for anomalies long past; on AWS the detector function only
    hears of objects created after it (S3 ObjectCreated). Done once per prefix: objects
    written later, a catch-up after a restart included, are fed as usual. Call it before
    anything of the stack can write results (before it announces itself as started).
    """
    if state.get(BASELINE_NS, prefix) is not None:
        return 0
    namespace, marked = progress_namespace(prefix), 0
    if next(iter(state.items(namespace)), None) is not None:
        # A feeder already worked here (a data folder from before this record existed):
        # what it has not fed yet is a catch-up, not history.
        state.put(BASELINE_NS, prefix, {"marked": 0})
        return 0
    for key in store.list(prefix):
        if key.endswith("/" + RESULTS_FILE) and state.get(namespace, key) is None:
            state.put(namespace, key, {"rows": 0, "settled": True, "baseline": True})
            marked += 1
    state.put(BASELINE_NS, prefix, {"marked": marked})
    if marked:
        log.info("%s: %d results objects already there, marked as fed", prefix, marked)
    return marked


def result_to_message(
    component: str, doc: Any, *, thing: str | None = None, site: str | None = None
) -> dict[str, Any]:
    """One results.jsonl object -> an ``AnomalyResults`` message; ValueError names the problem.

    *component* becomes ``asset`` (the detector key); *thing* and *site*, when given, are
    added as ``thing`` (where commands go) and ``site``."""
    if not isinstance(doc, Mapping):
        raise ValueError("expected a JSON object")
    timestamp = doc.get("timestamp")
    if not isinstance(timestamp, str) or not timestamp:
        raise ValueError("'timestamp': expected a string")
    prediction = doc.get("prediction")
    if isinstance(prediction, bool) or prediction not in (0, 1):
        raise ValueError(f"'prediction': expected 0 or 1, got {prediction!r}")
    message: dict[str, Any] = {
        "asset": component,
        "timestamp": timestamp,
        "prediction": int(prediction),
    }
    if thing is not None:
        message["thing"] = thing
    if site is not None:
        message["site"] = site
    reason = doc.get("prediction_reason")
    if reason is None:
        reason = "ANOMALY_DETECTED" if prediction == 1 else "NO_ANOMALY_DETECTED"
    message["prediction_reason"] = str(reason)
    score = doc.get("anomaly_score")
    if score is not None:
        if not finite_number(score):
            raise ValueError(f"'anomaly_score': expected a number, got {score!r}")
        message["anomaly_score"] = float(score)
    diagnostics = doc.get("diagnostics")
    if diagnostics is not None:
        if not isinstance(diagnostics, list):
            raise ValueError("'diagnostics': expected an array")
        shares: list[tuple[str, float]] = []
        for i, item in enumerate(diagnostics):
            name = item.get("name") if isinstance(item, Mapping) else None
            value = item.get("value") if isinstance(item, Mapping) else None
            if not isinstance(name, str) or not finite_number(value):
                raise ValueError(
                    f"'diagnostics[{i}]': expected {{name: string, value: finite number}}"
                )
            shares.append((name, float(value)))
        shares.sort(key=lambda s: -s[1])
        if shares:
            message["top_sensor"] = shares[0][0]
            message["top_share"] = round(shares[0][1], 5)
            message["top_sensors"] = ";".join(
                f"{name}={round(value, 5)}" for name, value in shares[:TOP_SENSORS]
            )
    problem = not_unicode(message)
    if problem:  # a "\ud800" escape: no model could store it, and a retry would fail again
        raise ValueError(problem)
    return message
