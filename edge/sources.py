"""Reading sources: the Source protocol, CSV replay of L4E datasets, and plugin loading.

A source is anything with ``poll(now) -> [(asset, Sample), ...]`` returning what is new
since the last call; the agent polls every ``sampling_interval_s`` and queues the result.
A plugin (Modbus, OPC UA, the simulator) is a ``module:function`` factory taking the
source's TOML table and the agent's assets and returning a Source.
"""

from __future__ import annotations

import csv
import importlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from edge.commands import shown
from edge.errors import ConfigError
from edge.wire import NAME_RE, SENSOR_RE, Sample

log = logging.getLogger(__name__)


class Source(Protocol):
    """Where readings come from; ``poll`` returns what is new since the last call.

    Optionally ``apply(asset, key, value)`` receives applied shadow commands (``mode``,
    ``setpoints``) so the source can act on them.
    """

    def poll(self, now: float) -> Sequence[tuple[str, Sample]]: ...


SourceFactory = Callable[[Mapping[str, Any], tuple[str, ...]], Source]

_ISO = re.compile(
    r"^(\d{4})[-/ ]?(\d{2})[-/ ]?(\d{2})(?:[T -]|'T')?(\d{2})[-:]?(\d{2})"
    r"(?:[-:]?(\d{2})(?:\.(\d{1,9}))?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2})(?::(\d{2}))?$")


def parse_l4e_timestamp(text: str) -> int:
    """Epoch milliseconds from any L4E row-timestamp format; no zone means UTC."""
    text = text.strip()
    match = _ISO.fullmatch(text)
    if match:
        year, month, day, hour, minute, second, frac, zone = match.groups()
        tz = UTC
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        micros = int((frac or "0").ljust(6, "0")[:6])
        at = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micros, tz
        )
    else:
        us = _US.fullmatch(text)
        if not us:
            raise ValueError(f"unsupported timestamp {text!r}")
        month, day, year, hour, minute, second = us.groups()
        at = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=UTC
        )
    return (at - _EPOCH) // timedelta(milliseconds=1)


def sensor_name(column: str) -> str:
    """L4E column names allow what the wire allows, less spaces some datasets carry."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", column.strip())
    if not SENSOR_RE.fullmatch(name):
        raise ValueError(f"column {column!r} cannot be a sensor name")
    return name


Rows = dict[int, dict[str, float | None]]
"""Epoch milliseconds -> sensor -> value (None = a blank cell)."""


def read_component(folder: Path, exclude: frozenset[str] = frozenset()) -> list[Sample]:
    """All CSVs of one component folder, merged on the timestamp, oldest first.

    The readings are those model training reads from the same files
    (``cloud.inference.dataset``), so a replayed dataset sends what a model learnt from: in
    one file a row repeating an instant replaces the earlier row whole (L4E counts it in
    DuplicateTimestamps), and across files, read in name order, a sensor's value at an
    instant comes from the later file unless its cell is blank. Either way the readings
    replaced are counted and named, one line per file: nothing is lost silently.
    """
    rows: Rows = {}
    had_row: dict[int, tuple[int, ...]] = {}
    """Instant -> the files (indexes) with a row there, to name whose reading a later file
    replaces without keeping where each value came from."""
    columns: list[frozenset[str]] = []
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else [folder]
    if not files:
        raise ConfigError(f"{folder}: no .csv files")
    for index, file in enumerate(files):
        try:
            names, own = _read_file(file, exclude)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: not a readable CSV ({exc})") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read ({exc.strerror or exc})") from None
        except ValueError as exc:  # a column that cannot be a sensor name
            raise ConfigError(f"{file}: {exc}") from None
        replaced, first = _merge(rows, own)
        if first is not None:
            ts, name = first
            earlier = next(files[i] for i in reversed(had_row[ts]) if name in columns[i])
            log.warning(
                "%s: %d reading%s replace%s what %s gave for the same sensor and instant "
                "(first: %r at %s); the later file's value is kept, and a blank cell keeps "
                "the earlier one, as model training merges a component's files",
                file,
                replaced,
                "" if replaced == 1 else "s",
                "s" if replaced == 1 else "",
                earlier.name,
                name,
                _utc(ts),
                extra={"event": "source_readings_replaced"},
            )
        columns.append(names)
        for ts in own:
            had_row[ts] = (*had_row.get(ts, ()), index)
    return [Sample(ts, v) for ts, v in sorted(rows.items()) if v]


def _merge(rows: Rows, own: Rows) -> tuple[int, tuple[int, str] | None]:
    """Merge one file's rows into *rows*: a value replaces, a blank only fills a gap.
    Returns how many values were replaced and the first (instant, sensor) of them."""
    replaced = 0
    first: tuple[int, str] | None = None
    for ts, values in own.items():
        merged = rows.setdefault(ts, {})
        for name, value in values.items():
            if value is None:
                merged.setdefault(name, None)
                continue
            if merged.get(name) is not None:
                replaced += 1
                first = first or (ts, name)
            merged[name] = value
    return replaced, first


def _utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _read_file(file: Path, exclude: frozenset[str]) -> tuple[frozenset[str], Rows]:
    """The sensor columns of one CSV and its rows by instant; a row repeating an instant
    replaces the earlier one whole, as training's reader keeps the last (``keep="last"``)."""
    rows: Rows = {}
    with file.open(newline="") as handle:
        sample = handle.read(4096)
        handle.seek(0)
        delimiter = ";" if sample.count(";") > sample.count(",") else ","
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if not header or len(header) < 2:
            raise ConfigError(f"{file}: expected a header 'Timestamp,<sensor>,...'")
        names = [None if c.strip() in exclude else sensor_name(c) for c in header[1:]]
        seen = [n for n in names if n is not None]
        if len(set(seen)) != len(seen):
            twice = sorted({n for n in seen if seen.count(n) > 1})[0]
            raise ConfigError(f"{file}: column {twice!r} appears twice in the header")
        skipped: list[tuple[int, str]] = []
        line_of: dict[int, int] = {}
        repeats: list[tuple[int, int]] = []
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                ts = parse_l4e_timestamp(row[0])
            except ValueError:
                skipped.append((line_no, row[0]))  # L4E drops and counts them; so do we
                continue
            if ts in line_of:
                repeats.append((line_no, line_of[ts]))
            line_of[ts] = line_no
            values: dict[str, float | None] = {}
            for name, cell in zip(names, row[1:], strict=False):
                if name is None:
                    continue
                try:
                    values[name] = float(cell) if cell.strip() else None
                except ValueError:
                    raise ConfigError(
                        f"{file}:{line_no}: column {name!r}: {cell!r} is not a number"
                    ) from None
            rows[ts] = values
    if skipped:
        line_no, text = skipped[0]
        log.warning(
            "%s: %d row%s skipped: unparsable timestamp (first at line %d: %r)",
            file,
            len(skipped),
            "" if len(skipped) == 1 else "s",
            line_no,
            shown(text, 40),
            extra={"event": "source_rows_skipped"},
        )
    if repeats:
        line_no, earlier = repeats[0]
        log.warning(
            "%s: %d row%s the timestamp of an earlier row and replace%s it (first at "
            "line %d, repeating line %d); the later row is kept, as model training reads "
            "the file (L4E's DuplicateTimestamps)",
            file,
            len(repeats),
            " repeats" if len(repeats) == 1 else "s repeat",
            "s" if len(repeats) == 1 else "",
            line_no,
            earlier,
            extra={"event": "source_rows_replaced"},
        )
    return frozenset(n for n in names if n is not None), rows


class CsvReplaySource:
    """Replays an L4E dataset (``<path>/<component>/*.csv``), one component per asset.

    Rows are released at *speed* times their recorded pace from the first poll; with
    *restamp* each sample gets the poll time instead of its recorded time, so historical
    data looks live. *loop* starts over at the end.
    """

    def __init__(
        self,
        path: str | Path,
        assets: Sequence[str],
        *,
        speed: float = 1.0,
        restamp: bool = False,
        loop: bool = False,
        asset_map: Mapping[str, str] | None = None,
        exclude: Sequence[str] = (),
        max_per_poll: int = 10_000,
    ) -> None:
        root = Path(path)
        if not root.exists():
            raise ConfigError(f"csv source: no such path {str(root)!r}")
        if speed <= 0:
            raise ConfigError("csv source: speed must be > 0")
        mapping = dict(asset_map or {})
        if root.is_dir() and any(p.is_dir() for p in root.iterdir()):
            folders = {p.name: p for p in sorted(root.iterdir()) if p.is_dir()}
        else:
            folders = {root.stem: root}
        self._data: dict[str, list[Sample]] = {}
        for component, folder in folders.items():
            asset = mapping.get(component, component)
            if asset not in assets:
                continue
            if not NAME_RE.fullmatch(asset):
                raise ConfigError(f"csv source: asset {asset!r} must match {NAME_RE.pattern}")
            self._data[asset] = read_component(folder, frozenset(exclude))
        if not self._data:
            raise ConfigError(
                f"csv source {str(root)!r}: no component folder matches the agent's assets "
                f"({', '.join(assets)}); set asset_map"
            )
        self.speed = speed
        self.restamp = restamp
        self.loop = loop
        self.max_per_poll = max_per_poll
        self._pos = {asset: 0 for asset in self._data}
        self._start: float | None = None
        self._last: float | None = None
        self._origin = min(rows[0].ts_ms for rows in self._data.values() if rows) / 1000

    def poll(self, now: float) -> list[tuple[str, Sample]]:
        if self._start is None:
            self._start = now
        if self._last is not None and now < self._last:
            # the clock stepped back: replay time stands still instead of running backwards
            # and holding every row for the length of the step
            self._start -= self._last - now
        self._last = now
        horizon = self._origin + (now - self._start) * self.speed
        out: list[tuple[str, Sample]] = []
        for asset, rows in self._data.items():
            pos = self._pos[asset]
            while len(out) < self.max_per_poll:
                if pos >= len(rows):
                    if not self.loop or not rows:
                        break
                    pos = 0
                    self._start = now
                    horizon = self._origin
                sample = rows[pos]
                if sample.ts_ms / 1000 > horizon:
                    break
                stamped = Sample(int(now * 1000), sample.values) if self.restamp else sample
                out.append((asset, stamped))
                pos += 1
            self._pos[asset] = pos
        return out

    @property
    def done(self) -> bool:
        return not self.loop and all(self._pos[a] >= len(r) for a, r in self._data.items())


def load_plugin(factory: str, options: Mapping[str, Any], assets: tuple[str, ...]) -> Source:
    """``package.module:function`` -> ``function(options, assets)``: a Source."""
    module_name, _, attr = factory.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"source factory {factory!r}: expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"source factory {factory!r}: cannot import ({exc})") from None
    make = getattr(module, attr, None)
    if not callable(make):
        raise ConfigError(f"source factory {factory!r}: {attr} is not a function of {module_name}")
    source = make(options, assets)
    if not callable(getattr(source, "poll", None)):
        raise ConfigError(f"source factory {factory!r}: returned an object without poll(now)")
    return source
