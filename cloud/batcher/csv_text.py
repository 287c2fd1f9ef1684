"""The text of an input CSV: ``Timestamp`` first, the sensors sorted, one row per timestamp.

Two roads lead to the same bytes:

- The reference: samples -> :func:`merge_rows` -> :func:`render_rows`, cell by cell.
- The fast road: each message's rows are rendered once, when it is accepted, as a
  *fragment* (a header line of its own sensors, then its rows) that the spool keeps as the
  chunk's body. A window whose fragments share one header and no timestamp is then their
  lines, sorted (:func:`join_fragments`); anything else (headers that differ, a timestamp
  given twice, a late file being extended) takes the reference road, reading the fragments
  back (:func:`parse_fragment`).

Why fragments: the batcher used to keep a message's samples as JSON, read them back and
format every value when the window was written. Formatting a row once, as it arrives,
costs no more than that, and it is all the window write has to do: most of the work of a
window becomes sorting lines. A fragment keeps every cell the CSV shows (a null and a
missing sensor are both an empty cell, and merging treats them alike: neither overrides a
value), so the reference road reaches the same file from fragments as from samples.

A row's cells are written by a JSON encoder over the whole message at once (C speed), not
value by value: Python's ``json`` writes a float as ``repr`` does, which is the cell's text
apart from whole numbers (``10.0`` -> ``10``), which are fixed by one substitution. An
encoder that writes small magnitudes differently (msgspec writes ``1e-05`` as
``0.00001``) may be passed; any text that shows an exponent or such a small number, or the
two whole-number exceptions (``-0.0`` and the ``1e15`` bound), goes cell by cell instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from cloud.batcher.spool import Chunk
from cloud.l4e.naming import format_row_timestamp

Rows = dict[int, dict[str, float | None]]
"""One file's content: ``{ts_ms: {sensor: value or None}}``."""

Dumps = Callable[[Any], str]
"""Compact JSON text of a list of lists of numbers, nulls and strings."""

HEADER = "Timestamp"
STAMP_CHARS = len("2000-01-01T00:00:00.000000")
"""Every row timestamp has this width (years 2000 to 2199, ``edge.wire``'s bounds)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATE_MERGE_ID = ""
"""Sorts before every message id, so rows read back from a written file give way to newer
messages on a conflicting sensor."""

json_dumps: Dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
"""The standard library's encoder: ``repr`` for floats, one encoder for every call."""

_CELL_BY_CELL = ("e", "0.0000", "-0.0,", "-0.0]", "000000000000000")
"""Encoder text that substitution might not turn into its cell: an exponent (within the
wire's bounds only magnitudes below 1e-4 have one; ``null`` has no ``e``), a magnitude below 1e-4 written without
one (msgspec writes ``0.00001``), negative zero (the cell is ``0``), and the 1e15 bound
(whole, yet the cell writes it with ``.0``; larger values are off the wire). A few plain
substring tests: a message that only looks suspicious (``10.00001``) goes cell by cell too,
which costs time, never bytes."""


def cell(value: float | None) -> str:
    """Shortest round-trip text of the double; whole numbers without ``.0``, so a reading
    reads the same whether it passed through IoT SQL (which turns ``10.0`` into ``10``) or
    not."""
    if value is None:
        return ""
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


_MINUTES: dict[int, str] = {}
_WITHIN_MINUTE: dict[int, str] = {}


def stamp(ts_ms: int) -> str:
    """:func:`~cloud.l4e.naming.format_row_timestamp` of epoch milliseconds, from two small
    caches (the minute's prefix, the milliseconds within it) instead of a datetime."""
    minute, within = divmod(ts_ms, 60_000)
    head = _MINUTES.get(minute)
    if head is None:
        if len(_MINUTES) > 100_000:
            _MINUTES.clear()
        at = _EPOCH + timedelta(minutes=minute)
        head = _MINUTES[minute] = at.strftime("%Y-%m-%dT%H:%M:")
    tail = _WITHIN_MINUTE.get(within)
    if tail is None:
        tail = _WITHIN_MINUTE[within] = f"{within // 1000:02d}.{within % 1000:03d}000"
    return head + tail


def stamps(times_ms: Sequence[int]) -> list[str]:
    """:func:`stamp` of each time: straight from the caches when both parts are in them
    (the usual case: a message's stamps share their minutes with the messages before)."""
    minutes, within = _MINUTES, _WITHIN_MINUTE
    try:
        return [minutes[ts_ms // 60_000] + within[ts_ms % 60_000] for ts_ms in times_ms]
    except KeyError:
        return [stamp(ts_ms) for ts_ms in times_ms]


def parse_stamp(text: str) -> int:
    at = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    return (at - _EPOCH) // timedelta(milliseconds=1)


# ---- the reference road -----------------------------------------------------------------


def merge_rows(chunks: Iterable[Chunk]) -> Rows:
    """One row per timestamp; on a sensor two messages both give, the larger message id
    wins, and a value wins over a null. Two messages with one id and other content (a
    sender that numbered them alike: an id conflict, both kept) are ordered by their
    content, so the file does not depend on which came first either."""
    rows: Rows = {}
    for chunk in sorted(chunks, key=_merge_order):
        for ts_ms, values in chunk_samples(chunk):
            row = rows.setdefault(ts_ms, {})
            for name, value in values.items():
                if value is not None or name not in row:
                    row[name] = value
    return rows


def _merge_order(chunk: Chunk) -> tuple[str, str]:
    return chunk.msg_id, chunk.body or json.dumps(chunk.samples)


def render_rows(rows: Rows) -> bytes:
    """The CSV of :func:`merge_rows`' output."""
    sensors = sorted({name for row in rows.values() for name in row})
    lines = [",".join([HEADER, *sensors])]
    for ts_ms in sorted(rows):
        row = rows[ts_ms]
        at = format_row_timestamp(_EPOCH + timedelta(milliseconds=ts_ms))
        lines.append(",".join([at, *(cell(row.get(name)) for name in sensors)]))
    return ("\n".join(lines) + "\n").encode("ascii")


def file_sensors(body: bytes) -> list[str]:
    """The sensor columns of a file written by :func:`render_rows` (its header's)."""
    return body.partition(b"\n")[0].decode("ascii").split(",")[1:]


def parse_csv(body: bytes, asset: str, end: int) -> list[Chunk]:
    """Read back a file written by :func:`render_rows` (used only to extend a late file)."""
    samples = parse_fragment(body.decode("ascii"))
    return [Chunk(asset, end, _LATE_MERGE_ID, samples)] if samples else []


def parse_fragment(text: str) -> list[tuple[int, dict[str, Any]]]:
    """Samples of a fragment (or a whole file): an empty cell reads as null; a row with
    another number of cells than the header (a damaged file) is a ValueError."""
    lines = text.splitlines()
    if not lines:
        return []
    sensors = lines[0].split(",")[1:]
    samples: list[tuple[int, dict[str, Any]]] = []
    for line in lines[1:]:
        at, *cells = line.split(",")
        values = {n: _parse_cell(c) for n, c in zip(sensors, cells, strict=True)}
        samples.append((parse_stamp(at), values))
    return samples


def chunk_samples(chunk: Chunk) -> list[tuple[int, Mapping[str, Any]]]:
    """A chunk's samples, whichever form the spool kept: samples, a fragment, or the JSON
    list of ``[ts_ms, values]`` an earlier version wrote."""
    if chunk.samples or not chunk.body:
        return list(chunk.samples)
    if chunk.body.startswith("["):
        return [(int(t), v) for t, v in json.loads(chunk.body)]
    return list(parse_fragment(chunk.body))


def chunk_sensors(chunk: Chunk) -> set[str]:
    """The sensor columns a chunk gives its file (a null counts: it is an empty cell); a
    fragment's are its header's."""
    if not chunk.samples and chunk.body and not chunk.body.startswith("["):
        return set(chunk.body.partition("\n")[0].split(",")[1:])
    return {name for _, values in chunk_samples(chunk) for name in values}


def within_sensor_limit(
    chunks: Iterable[Chunk], limit: int, taken: Iterable[str] = ()
) -> tuple[list[Chunk], list[Chunk]]:
    """*chunks* split, in their order, into those whose sensors together stay within
    *limit* columns (each taken if the sensors it adds still fit) and the rest. *taken*
    are sensors that already count against the limit (the window's earlier files)."""
    kept: list[Chunk] = []
    excess: list[Chunk] = []
    names: set[str] = set(taken)
    for chunk in chunks:
        new = chunk_sensors(chunk) - names
        if len(names) + len(new) > limit:
            excess.append(chunk)
        else:
            names |= new
            kept.append(chunk)
    return kept, excess


def _parse_cell(text: str) -> float | None:
    if not text:
        return None
    if any(ch in text for ch in ".eEni"):
        return float(text)
    return int(text)


# ---- the fast road ----------------------------------------------------------------------


def fragment(
    samples: Sequence[tuple[int, Mapping[str, Any]]],
    dumps: Dumps = json_dumps,
    *,
    columns: list[str] | None = None,
    table: list[tuple[Any, ...]] | None = None,
    times: Sequence[int] | None = None,
) -> str:
    """A message's rows as the window file will show them, under a header of its sensors.

    *samples* are ``(ts_ms, values)`` pairs, as the wire contract checked them; *columns*
    and *table* are :func:`uniform_table`'s answer for them, and *times* their ``ts_ms``,
    when the caller has them."""
    if columns is None or table is None:
        found = uniform_table(samples)
        if found is not None:
            columns, table = found
        else:
            columns = sorted({name for _, values in samples for name in values})
            table = [tuple(map(values.get, columns)) for _, values in samples]
    at = stamps([ts_ms for ts_ms, _ in samples] if times is None else times)
    return _lines(f"{HEADER},{','.join(columns)}", at, table, dumps)


def uniform_table(
    samples: Sequence[tuple[int, Mapping[str, Any]]],
) -> tuple[list[str], list[tuple[Any, ...]]] | None:
    """The sorted sensor names and each sample's values in that order, when every sample has
    the same names; None otherwise. One C-level getter per sample: a sample without one of
    the first sample's names fails it, and one with more shows in the count."""
    first = samples[0][1]
    if not first:
        return None
    columns, pick = _sorted_columns(tuple(first))
    values = list(map(_VALUES, samples))
    try:
        table = list(map(pick, values))
    except KeyError:
        return None
    if sum(map(len, values)) != len(columns) * len(samples):
        return None
    return columns, table


_VALUES = itemgetter(1)
"""A sample's values."""

_COLUMNS: dict[tuple[str, ...], tuple[list[str], Callable[[Mapping[str, Any]], tuple]]] = {}


def _sorted_columns(
    keys: tuple[str, ...],
) -> tuple[list[str], Callable[[Mapping[str, Any]], tuple]]:
    """The sorted sensor names and a C-level getter of a row's values in that order."""
    found = _COLUMNS.get(keys)
    if found is None:
        if len(_COLUMNS) > 10_000:
            _COLUMNS.clear()
        columns = sorted(keys)
        getter = itemgetter(*columns)
        pick = getter if len(columns) > 1 else lambda values: (getter(values),)
        found = _COLUMNS[keys] = (columns, pick)
    return found


def _lines(head: str, at: list[str], table: list[tuple], dumps: Dumps) -> str:
    """*head*, then ``stamp,cell,cell`` lines of *table* (one tuple of values per stamp in
    *at*), joined by newlines in one pass. One encoder call writes every value;
    substitutions turn its text into cells."""
    text = dumps(table)
    if _cell_by_cell(text):
        return "\n".join(
            [
                head,
                *(",".join([when, *map(cell, row)]) for when, row in zip(at, table, strict=True)),
            ]
        )
    text = text.replace(".0,", ",").replace(".0]", "]")
    if "n" in text:
        text = text.replace("null", "")
    return "\n".join([head, *map(",".join, zip(at, text[2:-2].split("],["), strict=True))])


def _cell_by_cell(text: str) -> bool:
    """Whether encoder *text* holds one of :data:`_CELL_BY_CELL`. Plain substring tests, the
    cheapest first: one character (``e``, found by ``memchr``) stands for every exponent, and
    ``0000`` and ``-0.0`` must be there before the longer patterns that hold them are looked
    for, so a usual message costs three scans, not five. A regular expression over every
    position of a message costs more than the rest of its rendering."""
    return (
        "e" in text
        or ("0000" in text and ("0.0000" in text or "000000000000000" in text))
        or ("-0.0" in text and ("-0.0," in text or "-0.0]" in text))
    )


def join_fragments(bodies: Sequence[str]) -> tuple[bytes, int, int] | None:
    """The window file of fragments that share one header and no timestamp, with its row
    and column counts; None when the reference road must merge them."""
    header = None
    parts = []
    for body in bodies:
        head, _, lines = body.partition("\n")
        if header is None:
            if not head.startswith(HEADER + ","):
                return None
            header = head
        elif head != header:
            return None
        if lines:
            parts.append(lines)
    if header is None or not parts:
        return None
    lines = "\n".join(parts).split("\n")
    if len({line[:STAMP_CHARS] for line in lines}) != len(lines):
        return None
    lines.sort()
    body = f"{header}\n" + "\n".join(lines) + "\n"
    return body.encode("ascii"), len(lines), header.count(",")
