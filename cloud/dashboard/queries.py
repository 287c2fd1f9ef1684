"""The dashboard's read side: what a data directory holds, as plain Python documents.

Everything here reads and nothing writes: the state and shadow stores are opened read-only
for each question (a live stack's WAL is shared, a stopped one's file is read as it is), the
bucket is walked on disk, and no file or folder is ever created, so ``plantwatch dashboard``
leaves a stopped stack's or a demo's folder exactly as it found it.

Results files are parsed once and kept while their size and modification time stay the
same, so a page that refreshes every second re-reads only the window that grew.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cloud.devices.health import STATUS_NS, judge
from cloud.l4e.naming import InputNaming, plain_sensor
from cloud.l4e.sites import DEFAULT_SITE, SiteLayout
from cloud.runtime.layout import INPUT_PREFIX, OUTPUT_PREFIX, DataLayout
from edge.errors import NotFoundError, StorageError
from edge.json_values import finite_number, not_unicode

STREAM_PREFIX: Final = "stream/"
"""Where streaming mode writes results (``cloud.runtime.streaming``)."""
RESULT_PREFIXES: Final = (OUTPUT_PREFIX, STREAM_PREFIX)
RESULTS_FILE: Final = "results.jsonl"
THRESHOLD: Final = 0.5
"""L4E's calibrated score threshold: a row is anomalous exactly when its score is above it."""
DETECTOR_REGISTRY: Final = "detectors"
ALARM_REGISTRY: Final = "alarm-models"
ALARM_HISTORY: Final = "alarm-history/"
EXECUTIONS_NS: Final = "executions"
SCHEDULERS_NS: Final = "schedulers"
EVENT_GAP_S: Final = 900.0
"""Two anomalous rows further apart than this are two events, whatever lies between."""
LATEST_TIME: Final = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
"""Times are shown from 1970 up to here: far enough from year 9999 that a chart's margin
around an event still has a date."""
MAX_WHY: Final = 300
"""Characters of a reader's error shown for an unreadable file."""
MAX_SHADOW_DEPTH: Final = 12
"""A stored shadow deeper than this is shown as unreadable: the shadow service refuses
more than 6 levels in desired or reported, so only a damaged or hand-made file gets here,
and rendering it must not recurse without end."""


@dataclass(frozen=True, slots=True)
class Row:
    """One results line: epoch seconds, prediction, reason, score, diagnostics by share."""

    t: float
    prediction: int
    reason: str
    score: float | None
    diagnostics: tuple[tuple[str, float], ...]

    @property
    def top(self) -> tuple[str, float] | None:
        return max(self.diagnostics, key=lambda d: d[1]) if self.diagnostics else None


def iso(t: Any) -> str | None:
    """Epoch seconds as ISO 8601 UTC with a ``Z``: what every API time looks like.

    None for anything that is not a time from 1970 to year 9000: stored documents are read
    as they are, and one odd value must not take a whole page down."""
    if not finite_number(t) or not 0 <= t < LATEST_TIME:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_of(doc: dict[str, Any], now: float) -> dict[str, Any]:
    """A stored alarm instance as it stands at *now* (the alarm engine's reading of it,
    imported only when there is an alarm to read)."""
    from cloud.detectors.alarms.engine import as_of

    return dict(as_of(doc, now))


def _obj(value: Any) -> dict[str, Any]:
    """A stored document where an object is expected; anything else reads as empty, so a
    damaged entry shows as unknown instead of failing the page."""
    return value if isinstance(value, dict) else {}


def parse_time(text: str) -> float:
    """An L4E results or CSV timestamp (naive means UTC) as epoch seconds."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class DataView:
    """Read-only questions about one data directory (``plantwatch up --data`` or demo ``--out``)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        default_site: str = DEFAULT_SITE,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.layout = DataLayout(Path(root))
        self.sites = SiteLayout(default_site)
        self._wall = wall
        self._lock = threading.Lock()
        self._rows: dict[Path, tuple[tuple[int, int], list[Row]]] = {}
        self._naming = InputNaming()

    # ------------------------------------------------------------------ stores

    @contextmanager
    def state(self) -> Iterator[Any]:
        """The state store opened read-only, or None when the stack never wrote one (or is
        only now creating it). A file that is no state store (not SQLite, a folder, a broken
        link) is a StorageError naming it (503): read as empty, it showed a stack that had
        run as one that never had."""
        from cloud.adapters.local.sqlite_state_store import SqliteStateStore

        path = self.layout.state_db
        if not os.path.lexists(path):
            yield None
            return
        try:
            store = SqliteStateStore(path, readonly=True)
        except StorageError as exc:
            if _no_table_yet(exc):
                yield None
                return
            raise
        try:
            yield store
        finally:
            store.close()

    def _items(self, namespace: str) -> list[tuple[str, dict[str, Any]]]:
        with self.state() as store:
            return [] if store is None else list(store.items(namespace))

    def _namespaces(self, prefix: str) -> list[str]:
        """Namespaces starting with *prefix* (alarm models register under one each)."""
        with self.state() as store:
            return [] if store is None else store.namespaces(prefix)

    # ------------------------------------------------------------------ results

    def _bucket_files(self, prefix: str, filename: str) -> Iterator[tuple[str, Path]]:
        """Objects named *filename* anywhere under *prefix*, as (key, path)."""
        base = self.layout.bucket / prefix
        if not base.is_dir():
            return
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name == filename:
                    path = Path(dirpath) / name
                    yield _text(path.relative_to(self.layout.bucket).as_posix()), path

    def result_files(self) -> dict[str, list[Path]]:
        """Per asset key, its results objects under ``output/`` and ``stream/``."""
        found: dict[str, list[Path]] = {}
        for prefix in RESULT_PREFIXES:
            for key, path in self._bucket_files(prefix, RESULTS_FILE):
                parts = key[len(prefix) :].split("/")
                if len(parts) == 3:
                    asset_key = parts[0]
                elif len(parts) == 4:
                    asset_key = self.sites.key(parts[0], parts[1])
                else:
                    continue
                found.setdefault(asset_key, []).append(path)
        return found

    def _read_rows(self, path: Path) -> list[Row]:
        try:
            stat = _regular(path).stat()
        except OSError:  # gone, or a named pipe whose reading would wait for good
            return []
        signature = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._rows.get(path)
        if cached is not None and cached[0] == signature:
            return cached[1]
        rows: list[Row] = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            row = _row(line)
            if row is not None:
                rows.append(row)
        with self._lock:
            self._rows[path] = (signature, rows)
        return rows

    def unreadable_results(self, asset_key: str) -> list[dict[str, str]]:
        """The asset's results objects whose rows :meth:`rows` leaves out because the file
        cannot be read (a broken link, a named pipe), named (:meth:`unreadable`)."""
        found = []
        for path in sorted(self.result_files().get(asset_key, [])):
            try:
                _regular(path)
            except OSError as exc:
                found.append(self.unreadable(path, exc))
        return found

    def rows(self, asset_key: str, files: list[Path] | None = None) -> list[Row]:
        """Every result row of an asset in time order (one per timestamp)."""
        paths = files if files is not None else self.result_files().get(asset_key, [])
        by_time: dict[float, Row] = {}
        for path in sorted(paths):
            for row in self._read_rows(path):
                by_time[row.t] = row
        return [by_time[t] for t in sorted(by_time)]

    # ------------------------------------------------------------------ detectors

    def detector_models(self) -> list[str]:
        return [name for name, _doc in self._items(DETECTOR_REGISTRY)]

    def detector_instances(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per detector model, its instances by key."""
        return {
            name: dict(self._items(f"{DETECTOR_REGISTRY}/{name}"))
            for name in self.detector_models()
        }

    # ------------------------------------------------------------------ assets

    def asset_keys(self) -> list[str]:
        keys = set(self.result_files())
        for instances in self.detector_instances().values():
            keys.update(instances)
        for path in self._input_files():
            parsed = self._naming.parse(_text(path.name))
            if parsed is not None:
                inside = path.parent != self.layout.bucket / "input"
                site = _text(path.parent.name) if inside else None
                keys.add(parsed[0] if site is None else self.sites.key(site, parsed[0]))
        return sorted(keys)

    def _input_files(self) -> list[Path]:
        base = self.layout.bucket / INPUT_PREFIX
        if not base.is_dir():
            return []
        out = [p for p in base.iterdir() if p.is_file() and p.suffix == ".csv"]
        for child in base.iterdir():
            if child.is_dir():
                out.extend(p for p in child.iterdir() if p.is_file() and p.suffix == ".csv")
        return out

    def input_files(self, asset_key: str) -> list[tuple[float, Path]]:
        """``(window end, path)`` of an asset's input CSVs, oldest first."""
        site, asset = self.sites.split(asset_key)
        folder = self.layout.bucket / self.sites.prefix(INPUT_PREFIX, site)
        if not folder.is_dir():
            return []
        found = []
        for path in folder.iterdir():
            parsed = self._naming.parse(_text(path.name))
            if parsed is not None and parsed[0] == asset:
                found.append((parsed[1].timestamp(), path))
        return sorted(found)

    def input_index(self, prefix: str) -> list[tuple[float, str]]:
        """``(window end, key)`` of every input file directly under *prefix*, oldest first."""
        folder = self.layout.bucket / prefix
        if not folder.is_dir():
            return []
        found = []
        for path in folder.iterdir():
            name = _text(path.name)
            parsed = self._naming.parse(name)
            if parsed is not None and path.is_file():
                found.append((parsed[1].timestamp(), f"{prefix}{name}"))
        return sorted(found)

    def detector_state(self, asset_key: str) -> dict[str, Any] | None:
        """The first detector model's instance for the asset: its state and since when."""
        for model, instances in self.detector_instances().items():
            doc = instances.get(asset_key)
            if doc is not None:
                return {
                    "detector_model": model,
                    "state": doc.get("state"),
                    "updated": iso(doc.get("updated")),
                    "variables": doc.get("variables", {}),
                }
        return None

    # ------------------------------------------------------------------ schedulers

    def schedulers(self) -> list[tuple[str, dict[str, Any]]]:
        """Each scheduler's stored document, its ``config`` always an object."""
        out = []
        for name, doc in self._items(SCHEDULERS_NS):
            doc = _obj(doc)
            out.append((name, {**doc, "config": _obj(doc.get("config"))}))
        return out

    def executions(self) -> list[dict[str, Any]]:
        """Newest first, as ``ListInferenceExecutions``; a demo folder's ``executions.json``
        when the state store has none."""
        found = [doc for _key, doc in self._items(EXECUTIONS_NS)]
        if not found:
            exported = self.layout.root / "executions.json"
            if exported.is_file():
                try:
                    loaded = json.loads(exported.read_text(), parse_constant=_reject_constant)
                    found = [d for d in loaded if isinstance(d, dict)]
                except (OSError, ValueError, TypeError, RecursionError):
                    found = []
        found.sort(key=lambda d: (str(d.get("data_start")), str(d.get("scheduler"))), reverse=True)
        return found

    # ------------------------------------------------------------------ alarms and alerts

    def alerts(self, limit: int = 200) -> list[dict[str, Any]]:
        """The newest outbox lines (email and SMS), newest first; targets are left out."""
        path = self.layout.alerts
        if not os.path.lexists(path):
            return []
        # The outbox only grows: keep the last *limit* lines, parse only those.
        tail: deque[tuple[int, str]] = deque(maxlen=limit)
        try:
            with open(_regular(path), encoding="utf-8", errors="replace") as fh:
                tail.extend(enumerate(fh, start=1))
        except OSError as exc:  # a folder, a broken link: named, not read as no alerts
            return [{"line": None, "error": self.unreadable_line(path, exc)}]
        return [_alert(number, line) for number, line in reversed(tail)]

    def alarm_models(self) -> dict[str, dict[str, Any]]:
        return dict(self._items(ALARM_REGISTRY))

    def alarm_instances(self) -> list[dict[str, Any]]:
        """Alarm-model instances (IoT Events alarms), one per model and key, as DescribeAlarm
        reports them: a snooze that has run out is NORMAL even if no timer has run it."""
        now = self._wall()
        out = []
        for name, registered in self.alarm_models().items():
            definition = _obj(_obj(registered).get("definition"))
            for key, doc in self._items(f"alarms/{name}"):
                doc = _as_of(_obj(doc), now)
                action = _obj(doc.get("customer_action"))
                out.append(
                    {
                        "alarm_model": name,
                        "key": key,
                        "state": doc.get("state"),
                        "since": iso(doc.get("since")),
                        "updated": iso(doc.get("updated")),
                        "value": doc.get("value"),
                        "threshold": doc.get("threshold"),
                        "severity": definition.get("severity"),
                        "snoozed_until": iso(doc.get("snooze_until")),
                        "last_action": action.get("actionName"),
                        "last_action_by": action.get("who"),
                    }
                )
        return out

    def alarm_history(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = []
        for namespace in self._namespaces(ALARM_HISTORY):
            name = namespace[len(ALARM_HISTORY) :]
            for _id, entry in self._items(namespace):
                rows.append({"alarm_model": name, **entry, "time": iso(entry.get("time"))})
        rows.sort(key=lambda r: str(r.get("time")), reverse=True)
        return rows[:limit]

    # ------------------------------------------------------------------ shadows

    def shadows(self) -> list[dict[str, Any]]:
        """Every live shadow: desired, reported and delta, the last command and its state."""
        from cloud.shadow.document import get_document
        from cloud.shadow.store import ShadowStore

        path = self.layout.shadow_db
        if not os.path.lexists(path):
            return self._exported_shadows()
        if not path.is_file():  # read as no store, it showed a stack with shadows as one without
            raise StorageError(
                f"{path}: not a regular file (a directory or a broken link?); move it aside"
            )
        store = ShadowStore(path, readonly=True)
        now = int(self._wall())
        out = []
        try:
            try:
                names = store.shadows()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):  # a stack creating its store
                    return []
                raise StorageError(f"{path}: cannot read shadow store: {exc}") from None
            except sqlite3.Error as exc:  # not a database, or not the shadow store's
                raise StorageError(f"{path}: cannot read shadow store: {exc}") from None
            for thing, name in names:
                try:
                    shadow = store.get(thing, name or None, now)
                    if shadow is not None:
                        out.append(shadow_summary(thing, name or None, get_document(shadow, now)))
                except _DAMAGED as exc:
                    out.append(_unreadable(thing, name or None, exc))
        finally:
            store.close()
        return out

    def _exported_shadows(self) -> list[dict[str, Any]]:
        """A demo ``--out`` folder keeps ``shadows/<thing>.json`` even without the store."""
        folder = self.layout.root / "shadows"
        if not folder.is_dir():
            return []
        out = []
        for path in sorted(folder.glob("*.json")):
            thing = _text(path.stem)
            try:
                out.append(shadow_summary(thing, None, json.loads(_regular(path).read_text())))
            except OSError as exc:
                out.append(_unreadable(thing, None, self.unreadable_line(path, exc)))
            except _DAMAGED as exc:
                out.append(_unreadable(thing, None, exc))
        return out

    # ------------------------------------------------------------------ devices

    def devices(self) -> list[dict[str, Any]]:
        """Every device's judged status; a damaged stored status is listed as ``unknown``
        with why, rather than failing the devices page and every page's version poll."""
        with self.state() as store:
            if store is None:
                return []
            wall = self._wall()
            out = []
            for key, doc in store.items(STATUS_NS):
                try:
                    out.append(judge(doc, wall))
                except (ValueError, TypeError, AttributeError) as exc:
                    site, _, sender = key.partition("/")
                    reason = f"stored status unreadable ({type(exc).__name__})"
                    out.append(
                        {"site": site, "sender": sender, "health": "unknown", "reason": reason}
                    )
            return out

    # ------------------------------------------------------------------ raw traces

    def traces(
        self, asset_key: str, sensors: list[str], start: float, end: float
    ) -> tuple[dict[str, list[tuple[float, float]]], list[dict[str, str]]]:
        """Raw readings of *sensors* between *start* and *end* from the input CSVs, and the
        files of the window that could not be read (:meth:`unreadable`)."""
        wanted = {plain_sensor(s): s for s in sensors}
        series: dict[str, list[tuple[float, float]]] = {s: [] for s in sensors}
        unreadable: list[dict[str, str]] = []
        for window_end, path in self.input_files(asset_key):
            if window_end < start or window_end - 3600 > end:
                continue
            try:
                reader = csv.reader(io.StringIO(_regular(path).read_text(encoding="utf-8")))
                header = next(reader)
            except StopIteration:
                continue
            except (OSError, UnicodeDecodeError, csv.Error) as exc:
                unreadable.append(self.unreadable(path, exc))
                continue
            columns = {i: wanted[name] for i, name in enumerate(header) if name in wanted}
            refused: list[tuple[int, str]] = []
            for record in _csv_rows(reader, refused):
                try:
                    t = parse_time(record[0])
                except (ValueError, IndexError):
                    continue
                if not start <= t <= end:
                    continue
                for i, sensor in columns.items():
                    try:
                        value = float(record[i])
                    except (ValueError, IndexError):
                        continue
                    if math.isfinite(value):  # "nan", "inf" and 1e999 parse, but JSON has none
                        series[sensor].append((t, value))
            if refused:
                line, why = refused[0]
                more = f" and {len(refused) - 1} more" if len(refused) > 1 else ""
                unreadable.append(
                    {"file": self.shown(path), "error": f"line {line}{more} left out: {why}"}
                )
        for points in series.values():
            points.sort()
        return series, unreadable

    # ------------------------------------------------------------------ change detection

    def fingerprint(self) -> str:
        """Changes whenever anything a page shows may have changed: the stores' files (a
        live writer's WAL grows with every write), the outbox and the newest results."""
        parts = []
        for path in (
            self.layout.state_db,
            Path(f"{self.layout.state_db}-wal"),
            self.layout.shadow_db,
            Path(f"{self.layout.shadow_db}-wal"),
            self.layout.alerts,
        ):
            try:
                stat = path.stat()
                parts.append(f"{stat.st_mtime_ns}:{stat.st_size}")
            except OSError:
                parts.append("-")
        for prefix in RESULT_PREFIXES:
            try:
                parts.append(str((self.layout.bucket / prefix).stat().st_mtime_ns))
            except OSError:
                parts.append("-")
        return "/".join(parts)

    def require_asset(self, asset_key: str) -> None:
        if asset_key not in self.asset_keys():
            raise NotFoundError(f"asset {asset_key!r}: no results, input files or detector")

    def unreadable(self, path: Path, exc: BaseException) -> dict[str, str]:
        """A file left out of what a page shows, named so the operator can see why a
        figure is short: its path in the data folder and why it could not be read."""
        return {"file": self.shown(path), "error": _why(exc, path)}

    def unreadable_line(self, path: Path, exc: BaseException) -> str:
        """:meth:`unreadable` as one ``file: why`` text, for a document that has one."""
        unreadable = self.unreadable(path, exc)
        return f"{unreadable['file']}: {unreadable['error']}"

    def shown(self, path: Path) -> str:
        """*path* as the pages name it: relative to the data folder when it is inside."""
        try:
            return _text(path.relative_to(self.layout.root).as_posix())
        except ValueError:
            return _text(str(path))


def _row(line: str) -> Row | None:
    """One results line, or None for a line the feeder would quarantine
    (:func:`cloud.feeder.result_to_message`): a prediction other than 0 or 1, a score or
    diagnostic share that is not a finite number, a reason or sensor name holding a lone
    surrogate (no page could be encoded with it), or a time the page cannot place."""
    try:
        doc = json.loads(line)
        t = parse_time(doc["timestamp"])
        prediction = doc.get("prediction", 0)
        score = doc.get("anomaly_score")
        diagnostics = tuple((str(d["name"]), d["value"]) for d in doc.get("diagnostics") or ())
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    if (
        not 0 <= t < LATEST_TIME
        or isinstance(prediction, bool)
        or prediction not in (0, 1)
        or (score is not None and not finite_number(score))
        or not all(finite_number(value) for _name, value in diagnostics)
        or not_unicode([doc.get("prediction_reason"), [name for name, _value in diagnostics]])
    ):
        return None
    return Row(
        t=t,
        prediction=int(prediction),
        reason=str(doc.get("prediction_reason") or ""),
        score=None if score is None else float(score),
        diagnostics=tuple((name, float(value)) for name, value in diagnostics),
    )


class NotRegularFileError(OSError):
    """A path in the data folder that is no regular file where one is read: a named pipe
    (opening one waits for a writer, holding the request's worker thread for good), a
    folder or a broken link."""


def _regular(path: Path) -> Path:
    """*path*, once it is known to be a regular file (:class:`NotRegularFileError`)."""
    if not path.is_file():
        raise NotRegularFileError(
            errno.EINVAL, "not a regular file (a named pipe, a folder or a broken link?)", str(path)
        )
    return path


def _text(name: str) -> str:
    """A file or folder name as text a page can carry: bytes that are not UTF-8 (read by
    Python as lone surrogates, which no response can encode) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _no_table_yet(exc: StorageError) -> bool:
    """The file is SQLite without the state table: a stack that is creating its store
    (an empty file, then the table a moment later)."""
    cause = exc.__cause__
    return isinstance(cause, sqlite3.OperationalError) and "no such table" in str(cause)


def _csv_rows(reader: Any, refused: list[tuple[int, str]]) -> Iterator[list[str]]:
    """The reader's rows. A row the csv module refuses (a field over its 128 KiB limit,
    ``csv.field_size_limit``, which is process-wide and so left alone) is left out and
    recorded in *refused* with its line number; reading goes on at the next line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if refused and refused[-1][0] == reader.line_num:
                return  # no progress past this line: stop rather than loop
            refused.append((reader.line_num, str(exc)))


def _why(exc: BaseException, path: Path) -> str:
    """Why a file could not be read, on one line and without repeating its path."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split())
    for prefix in (f"{path}: ", f"{path.name}: "):
        text = text.removeprefix(prefix)
    if len(text) > MAX_WHY:  # a reader's message may quote a 128 KiB header cell whole
        text = text[:MAX_WHY] + "…"
    return text or type(exc).__name__


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _alert(number: int, line: str) -> dict[str, Any]:
    """One outbox line as the alarms page lists it, or the line number and what is wrong
    with it: a damaged line is shown, not skipped, and not allowed to break the page."""
    try:
        doc = json.loads(line, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return {"line": number, "error": "not JSON"}
    if not isinstance(doc, dict):
        return {"line": number, "error": "not a JSON object"}
    attributes = doc.get("attributes") or {}
    texts = {k: doc.get(k) for k in ("channel", "subject", "body")}
    if not isinstance(attributes, dict):
        return {"line": number, "error": "attributes: expected an object"}
    for key in ("asset", "key"):
        texts[key] = attributes.get(key)
    severity = attributes.get("severity")
    wrong = [k for k, v in texts.items() if v is not None and not isinstance(v, str)]
    if wrong:
        return {"line": number, "error": f"{wrong[0]}: expected a string"}
    return {
        "line": number,
        "sent_at": iso(doc.get("sent_at")),
        "channel": texts["channel"],
        "subject": texts["subject"],
        "body": texts["body"],
        "asset": texts["asset"] or texts["key"],
        "severity": severity if isinstance(severity, str) or finite_number(severity) else None,
    }


_DAMAGED = (ValueError, KeyError, TypeError, AttributeError, RecursionError)
"""What reading a damaged stored shadow document raises (UnicodeDecodeError is a
ValueError); the shadows page lists such a shadow as unreadable rather than failing."""


def _unreadable(thing: str, name: str | None, exc: BaseException | str) -> dict[str, Any]:
    if isinstance(exc, str):
        reason = exc
    elif isinstance(exc, _ShapeError):
        reason = str(exc)
    else:
        reason = f"not a shadow document ({type(exc).__name__})"
    return {
        "thing": thing,
        "shadow": name or "classic",
        "version": None,
        "desired": {},
        "reported": {},
        "delta": {},
        "last_command": None,
        "error": reason,
    }


class _ShapeError(ValueError):
    """A stored shadow document JSON could not carry, or too deep to show."""


def _check_shape(document: Any) -> None:
    """Walk the document without recursion: no NaN or infinity (json.loads accepts them,
    a JSON response cannot carry them) and no more than :data:`MAX_SHADOW_DEPTH` levels."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_SHADOW_DEPTH:
                raise _ShapeError(f"nested deeper than {MAX_SHADOW_DEPTH} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(value, float) and not math.isfinite(value):
            raise _ShapeError(f"holds {value}, which JSON cannot carry")


def shadow_summary(thing: str, name: str | None, document: dict[str, Any]) -> dict[str, Any]:
    """A shadow document as the shadows page shows it: the newest desired key is the last
    command, and its state says whether the device has applied it."""
    _check_shape(document)
    state = document.get("state") or {}
    desired = state.get("desired") or {}
    reported = state.get("reported") or {}
    delta = state.get("delta") or {}
    meta_desired = (document.get("metadata") or {}).get("desired") or {}
    last_key, last_at = None, None
    for key, meta in meta_desired.items():
        stamp = _newest_timestamp(meta)
        if stamp is not None and (last_at is None or stamp > last_at):
            last_key, last_at = key, stamp
    command = None
    if last_key is not None:
        errors = reported.get("errors") if isinstance(reported.get("errors"), dict) else {}
        if last_key in errors:
            status = "rejected"
        elif last_key in delta:
            status = "pending"
        else:
            status = "applied"
        command = {
            "key": last_key,
            "value": desired.get(last_key),
            "at": iso(last_at),
            "status": status,
        }
    return {
        "thing": thing,
        "shadow": name or "classic",
        "version": document.get("version"),
        "desired": desired,
        "reported": reported,
        "delta": delta,
        "last_command": command,
        "error": None,
    }


def _newest_timestamp(meta: Any) -> float | None:
    if isinstance(meta, dict):
        if isinstance(meta.get("timestamp"), int | float):
            return float(meta["timestamp"])
        stamps = [_newest_timestamp(v) for v in meta.values()]
        found = [s for s in stamps if s is not None]
        return max(found) if found else None
    if isinstance(meta, list):
        found = [s for s in map(_newest_timestamp, meta) if s is not None]
        return max(found) if found else None
    return None
