"""L4E CSVs in, a UTC-indexed frame out: timestamps (§1.2 Choice), datasets (§1.1), labels (§2).

Timestamps: every listed pattern, optional fractional seconds (1-9 digits, after the
seconds), an optional ``Z``/``±HH:MM`` suffix (within ±23:59), and ``M/d/yyyy H:mm[:ss]``. No
zone means UTC. Rows whose timestamp cannot be parsed, or names no real instant (hour 24,
30 February), are dropped and counted.
"""

from __future__ import annotations

import csv
import io
import re
import stat
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cloud.l4e.naming import flat_component
from edge import user_files
from edge.errors import UserError
from edge.user_files import read_document_text, read_header_line

_DATED = r"(?P<y{n}>\d{{4}}){s}(?P<mo{n}>\d{{2}}){s}(?P<d{n}>\d{{2}})[T -]"
_COMPACT = r"(?P<y{n}>\d{{4}})(?P<mo{n}>\d{{2}})(?P<d{n}>\d{{2}})[T ]?"
_CLOCK = r"(?P<h{n}>\d{{2}}){c}(?P<mi{n}>\d{{2}})(?:{c}(?P<s{n}>\d{{2}}))?"
_LAYOUTS = (
    # yyyy-MM-dd, yyyy/MM/dd or yyyy MM dd; 'T', a space or -; HH:mm[:ss] or HH-mm[-ss]
    *(_DATED.replace("{s}", s) + _CLOCK.replace("{c}", c) for s in "-/ " for c in ":-"),
    # yyyyMMdd; 'T', a space or nothing; HH:mm[:ss] or HHmm[ss]
    *(_COMPACT + _CLOCK.replace("{c}", c) for c in (":", "")),
    # M/d/yyyy H:mm[:ss]
    r"(?P<mo{n}>\d{{1,2}})/(?P<d{n}>\d{{1,2}})/(?P<y{n}>\d{{4}}) "
    r"(?P<h{n}>\d{{1,2}}):(?P<mi{n}>\d{{2}})(?::(?P<s{n}>\d{{2}}))?",
)
_BLANK = r"[ \t\n\r\f\v]*"  # ASCII white space only: a no-break space separates nothing
_TS_PATTERN = (
    rf"^{_BLANK}(?:"
    + "|".join(layout.format(n=n) for n, layout in enumerate(_LAYOUTS))
    + r")(?:\.(?P<f>\d{1,9}))?(?P<z>Z|(?P<zs>[+-])(?P<zh>\d{2}):(?P<zm>\d{2}))?"
    + rf"{_BLANK}$"
)
"""Every accepted layout spelt out (no back-references: one separator throughout the
date, one throughout the clock), so that one text serves Python's ``re`` (ASCII digits)
and Arrow's RE2, which reads a whole column in one call. Field ranges (hour 0-23, a real
date, a zone within ±23:59) are checked on the numbers."""
_TS_RE = re.compile(_TS_PATTERN, re.ASCII)


NS_YEARS = (1678, 2261)
"""Whole years a nanosecond timestamp holds (pandas' bounds fall inside 1677 and 2262);
a value outside them is an unsupported timestamp, as garbage is, not a crash."""

_NAT = np.iinfo(np.int64).min
_EMPTY = pa.scalar("", pa.large_string())
_SECOND_NS = 1_000_000_000


def parse_timestamps(values: Iterable[object]) -> pd.DatetimeIndex:
    """UTC instants; NaT where a value matches no accepted format.

    A value's reading is its own: the same whatever the other values of the column are.
    """
    text, column = _texts(values if isinstance(values, pd.Series) else list(values))
    if text.empty:
        return _utc(np.array([], dtype=np.int64))
    fast = _fast_iso(text, column)
    if fast is None:
        return _parse_each(column)
    missed = np.asarray(fast.isna())
    if not missed.any():
        return fast
    stamps = fast.asi8.copy()  # rows laid out otherwise than the first: the listed formats
    stamps[missed] = _parse_each(column.filter(pa.array(missed))).asi8
    return _utc(stamps)


def _utc(nanoseconds: np.ndarray) -> pd.DatetimeIndex:
    """Nanoseconds since the epoch (``_NAT`` for none) as UTC instants."""
    return pd.DatetimeIndex(nanoseconds.view("datetime64[ns]")).tz_localize("UTC")


def _texts(values: pd.Series | list[object]) -> tuple[pd.Series, pa.Array]:
    """Each value as text (a missing one stays missing), and the same as an Arrow column.
    Text that is not UTF-8 (a lone surrogate: bytes from argv that were not UTF-8) names
    no timestamp and is read as missing, not left to fail the conversion."""
    try:
        if isinstance(values, pd.Series) and isinstance(values.dtype, pd.StringDtype):
            text = values  # a CSV column read as text: no round trip through objects
        else:
            text = pd.Series(values, dtype=object).astype(str)
        return text, pa.array(text, type=pa.large_string(), from_pandas=True)
    except UnicodeEncodeError:
        return _texts([v if not isinstance(v, str) or _utf8(v) else None for v in values])


def _utf8(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def one_line(exc: BaseException) -> str:
    """The parser's message on one line (pandas' C reader ends some with a newline and more)."""
    return " ".join(str(exc).split())


def _parse_each(text: pd.Series | pa.Array | pa.ChunkedArray) -> pd.DatetimeIndex:
    """Every accepted format, each value on its own (one RE2 pass over the column): NaT
    where a value is not an accepted timestamp or names no real instant (hour 24, minute
    60, 30 February, a zone past ±23:59)."""
    column = text if isinstance(text, pa.Array | pa.ChunkedArray) else _texts(text)[1]
    parts = pc.extract_regex(column, _TS_PATTERN)
    ok = _numpy(pc.is_valid(parts))

    def field(*names: str, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The number a group holds (0 where absent, right-padded with zeros to *pad*
        digits) and where it is present; of several groups, the one the value matched."""
        cells = [pc.struct_field(parts, name) for name in names]
        text = cells[0] if len(cells) == 1 else pc.binary_join_element_wise(*cells, _EMPTY)
        present = pc.fill_null(pc.not_equal(text, _EMPTY), False)
        if pad:
            text = pc.utf8_rpad(text, width=pad, padding="0")
        number = pc.cast(pc.if_else(present, text, "0"), pa.int64())
        return _numpy(pc.fill_null(number, 0)), _numpy(present)

    def layouts(name: str) -> list[str]:
        return [f"{name}{n}" for n in range(len(_LAYOUTS))]

    year, month, day = (field(*layouts(name))[0] for name in ("y", "mo", "d"))
    hour, minute = (field(*layouts(name))[0] for name in ("h", "mi"))
    second, seconds_given = field(*layouts("s"))
    fraction, fraction_given = field("f", pad=9)  # nanoseconds
    ok &= seconds_given | ~fraction_given  # '12:00.5' is no fraction of a second
    zone_hours, zone_minutes = field("zh")[0], field("zm")[0]
    west = _numpy(pc.fill_null(pc.equal(pc.struct_field(parts, "zs"), "-"), False))
    ok &= (year >= NS_YEARS[0]) & (year <= NS_YEARS[1]) & (month >= 1) & (month <= 12)
    ok &= (day >= 1) & (hour <= 23) & (minute <= 59) & (second <= 59)
    ok &= (zone_hours <= 23) & (zone_minutes <= 59)
    year, month, day = np.where(ok, year, 1970), np.where(ok, month, 1), np.where(ok, day, 1)
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    first = months.astype("datetime64[D]").astype(np.int64)
    ok &= day <= (months + np.timedelta64(1, "M")).astype("datetime64[D]").astype(np.int64) - first
    seconds = (first + day - 1) * 86_400 + hour * 3_600 + minute * 60 + second
    offset = (zone_hours * 3_600 + zone_minutes * 60) * np.where(west, -1, 1)
    return _utc(np.where(ok, (seconds - offset) * _SECOND_NS + fraction, _NAT))


def _numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False))


_ISO_FIRST = re.compile(
    r"\d{4}-\d{2}-\d{2}(?P<sep>[T ])\d{2}:\d{2}:\d{2}(?P<f>\.\d{1,9})?(?P<z>Z|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
_NS_YEAR = r"(?:167[89]|16[89]\d|1[7-9]\d\d|2[01]\d\d|22[0-5]\d|226[01])"  # NS_YEARS
_ZONE = r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)"
_LAYOUT_ROWS = 8
"""Rows looked at for the fast path's layout; which one sets it changes no row's reading."""


def _fast_iso(
    text: pd.Series, column: pa.Array | pa.ChunkedArray | None = None
) -> pd.DatetimeIndex | None:
    """Whole-column parse in the layout of the first ISO row (among the first few, so a
    blank or garbled first cell does not send the column value by value): the common
    case (batcher files, samples) in a few C calls. Only rows in that layout to the
    letter, with every field in range, are read so (pandas' parser alone is lenient:
    one-digit fields, a lower-case ``t``, ``+0530``, a ``.`` without digits, ten fraction
    digits, a 60th second rolled over); any other row is NaT here, for the caller to read
    by the listed formats. None when no such ISO row comes first."""
    if text.empty:
        return _utc(np.array([], dtype=np.int64))
    if column is None:
        text, column = _texts(text)
    heads = (_ISO_FIRST.fullmatch(v) for v in text.iloc[:_LAYOUT_ROWS] if isinstance(v, str))
    first = next((match for match in heads if match is not None), None)
    if first is None:
        return None
    layout = f"%Y-%m-%d{first['sep']}%H:%M:%S"
    layout += (".%f" if first["f"] else "") + ("%z" if first["z"] else "")
    strict = (
        rf"^{_NS_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]){first['sep']}"
        r"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
        + (r"\.\d{1,9}" if first["f"] else "")
        + (_ZONE if first["z"] else "")
        + "$"
    )
    exact = _numpy(pc.fill_null(pc.match_substring_regex(column, strict), False))
    if not exact.any():
        return None
    try:
        stamps = pd.to_datetime(
            text.where(exact), format=layout, exact=True, utc=True, errors="coerce"
        )
        return pd.DatetimeIndex(stamps).as_unit("ns")
    except (ValueError, TypeError, pd.errors.OutOfBoundsDatetime):
        return None


@dataclass
class CsvFrame:
    """One parsed CSV: sensor columns (floats) on a UTC index, plus what was wrong with it."""

    frame: pd.DataFrame
    unsupported_timestamps: int = 0
    duplicate_timestamps: int = 0
    invalid_values: dict[str, int] = field(default_factory=dict)
    timestamp_column: str = "Timestamp"
    """The header of column 1, as a dataset schema names it (§1.3)."""
    invalid_at: dict[str, pd.DatetimeIndex] = field(default_factory=dict)
    """Sensor -> the times of the invalid cells :attr:`frame` kept (not those of a
    duplicate row dropped), so that a gap in the frame can be told apart: invalid where
    it was such a cell, missing otherwise (:func:`missing_values`). *invalid_values*
    counts every invalid cell read."""


def missing_values(parsed: CsvFrame, sensor: str) -> int:
    """Cells of *sensor* in ``parsed.frame`` with no reading that are not invalid ones:
    a gap counts as invalid only where the cell the frame kept was invalid (a duplicate
    row dropped, or a later file's reading, takes the invalid cell away with it)."""
    column = parsed.frame[sensor]
    gaps = column.isna().to_numpy()
    at = parsed.invalid_at.get(sensor)
    if at is None or not len(at) or not gaps.any():
        return int(gaps.sum())
    return int(gaps.sum() - (column.index.isin(at) & gaps).sum())


BLANKS = ("", "nan", "NaN", "null", "NULL")
"""Cells that mean "no reading" (missing, not invalid)."""


CHUNK_ROWS = 65_536
"""Rows parsed at a time: the text of one chunk is all the reader holds besides the floats."""


def read_csv(
    body: bytes | str | Path | BinaryIO,
    name: str,
    *,
    sep: str = ",",
    chunk_rows: int = CHUNK_ROWS,
    component: str | None = None,
) -> CsvFrame:
    """Header row, timestamp first, numeric sensors; *name* appears in error messages.
    *component*, the one the file's folder or name gives, refuses headers that name it
    (:func:`_sensor_columns`).

    Numbers are parsed by pandas' C reader straight to floats, a chunk of rows at a time,
    into one array. Only a column the reader cannot type as numbers (text, ``True``, a
    padded ``" nan"``) is read again as text and checked cell by cell, so the rules for a
    bad cell (invalid, counted) and a blank one (missing) are the same as checking every
    cell, at a fraction of the time and memory.
    """

    if not isinstance(body, bytes | str | Path):
        body.seek(0)
    first_line = read_header_line(body, name)  # a huge one is refused before pandas holds it

    def source() -> _Source:
        if isinstance(body, bytes):
            return io.BytesIO(body)
        if isinstance(body, str | Path):
            return body
        body.seek(0)  # an open file (a large object streamed to disk) is read from the start
        return body

    def chunks(**options: Any) -> Iterator[pd.DataFrame]:
        try:
            yield from pd.read_csv(
                source(), sep=sep, keep_default_na=False, chunksize=chunk_rows, **options
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise UserError(f"{name}: not a readable CSV ({one_line(exc)})") from None

    try:
        header = pd.read_csv(
            source(), sep=sep, nrows=1, header=None, dtype=str, keep_default_na=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{name}: not a readable CSV ({one_line(exc)})") from None
    if header.shape[1] < 2:
        expected = "expected a timestamp column and at least one sensor column"
        other = _other_separator(first_line, sep)
        if other:
            raise UserError(
                f"{name}: line 1 seems to be separated by {other}, not commas; L4E input "
                f"CSVs are comma-separated ({expected})"
            )
        raise UserError(f"{name}: {expected}")
    columns = _sensor_columns(name, [str(c).strip() for c in header.iloc[0, 1:]], component)
    timestamp_column = str(header.iloc[0, 0]).removeprefix("\ufeff").strip() or "Timestamp"
    head = _head(source(), sep)
    if head is not None:
        _first_row_fits(name, head)
        _timestamp_first(name, head)
    values = np.empty((_line_count(source(), name), len(columns)), order="F")  # pages on write
    stamps: list[pd.DatetimeIndex] = []
    kept: list[np.ndarray] = []
    textual: set[int] = set()
    infinite: dict[str, int] = {}  # columns read as numbers; a textual column recounts
    numeric_rows: dict[int, list[np.ndarray]] = {}  # column -> rows of `values` invalid
    text_rows: dict[int, list[np.ndarray]] = {}  # the same for the textual columns
    filled = unsupported = 0
    for chunk in chunks(dtype={0: str}, na_values=list(BLANKS)):
        parsed = parse_timestamps(chunk.iloc[:, 0].fillna(""))  # a blank cell: no timestamp
        good = np.asarray(~parsed.isna())
        unsupported += int((~good).sum())
        count = int(good.sum())
        if filled + count > len(values):
            values = np.concatenate([values, np.empty_like(values)])  # never for real files
        for i in range(len(columns)):
            cells = chunk.iloc[:, i + 1]
            if cells.dtype.kind not in "iuf":
                textual.add(i)
                continue
            column = cells.to_numpy(dtype=float)
            if cells.dtype.kind == "f":
                infinite_rows = _rows_of(np.isinf(column)[good], filled)
                if len(infinite_rows):
                    numeric_rows.setdefault(i, []).append(infinite_rows)
                column = _drop_infinite(column, good, infinite, columns[i])
            values[filled : filled + count, i] = column[good]
        stamps.append(parsed[good])
        kept.append(good)
        filled += count
    invalid = {c: n for i, c in enumerate(columns) if i not in textual and (n := infinite.get(c))}
    if textual:
        ordered = sorted(textual)
        start = 0
        for chunk, good in zip(
            chunks(dtype=str, usecols=[i + 1 for i in ordered]), kept, strict=True
        ):
            count = int(good.sum())
            for k, i in enumerate(ordered):
                cells = chunk.iloc[:, k]
                numeric = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
                numeric = np.where(np.isinf(numeric), np.nan, numeric)
                blank = cells.str.strip().isin(BLANKS).to_numpy(dtype=bool)
                bad_mask = (np.isnan(numeric) & ~blank)[good]
                if bad := int(bad_mask.sum()):
                    invalid[columns[i]] = invalid.get(columns[i], 0) + bad
                    text_rows.setdefault(i, []).append(_rows_of(bad_mask, start))
                values[start : start + count, i] = numeric[good]
            start += count
    index = pd.DatetimeIndex(
        stamps[0].append(stamps[1:]) if stamps else pd.DatetimeIndex([], tz="UTC"),
        name="Timestamp",
    )
    frame = pd.DataFrame(values[:filled], index=index, columns=columns, copy=False)
    duplicated = index.duplicated(keep="last")
    duplicates = int(duplicated.sum())
    invalid_at = {}
    rows_by_column = {i: r for i, r in numeric_rows.items() if i not in textual} | text_rows
    for i, parts in rows_by_column.items():
        rows = np.concatenate(parts)
        rows = rows[~duplicated[rows]]
        if len(rows):
            invalid_at[columns[i]] = index[rows]
    if duplicates:
        frame = frame[~duplicated]
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index()
    return CsvFrame(frame, unsupported, duplicates, invalid, timestamp_column, invalid_at)


_OTHER_SEPARATORS = {";": "';'", "\t": "tabs"}
"""Separators spreadsheets write in place of commas (a ``;`` where ``,`` is the decimal
mark), by how a message names them."""


def _other_separator(first_line: bytes, sep: str) -> str | None:
    """How a message names the separator a one-column header seems to use instead of the
    comma (l4e-contracts §1.1): one of :data:`_OTHER_SEPARATORS`, in it with no comma.
    Read with commas such a file is one column, and a refusal that did not say why would
    leave its user looking for a missing column."""
    text = first_line.decode("utf-8", "replace")
    if sep != "," or "," in text:
        return None
    return next((named for other, named in _OTHER_SEPARATORS.items() if other in text), None)


def _rows_of(mask: np.ndarray, first: int) -> np.ndarray:
    """Rows (of the reader's value block) where *mask*, a chunk's, is true."""
    return np.flatnonzero(mask) + first


SENSOR_NAME_RE = re.compile(r"^[A-Za-z0-9.\\_-]{1,200}$")
"""A sensor column's name (l4e-contracts §1.1 characters, §1.4 length)."""


def _sensor_columns(name: str, columns: list[str], component: str | None = None) -> list[str]:
    """The header's sensor names, each valid and none twice: a blank or repeated name
    would otherwise be renamed by the CSV reader (``Unnamed: 1``, ``flow.1``) and the
    readings filed under a sensor that does not exist.

    A header is the column name alone; the sensor's full name is ``<component>\\<column>``
    (l4e-contracts §1.3), the component being the file's folder or name. A header that
    starts with *component* and ``\\`` is that full name (as results.jsonl diagnostics
    write it), which would become ``pump\\pump\\flow`` and match none of a model's
    sensors: it is refused naming it. Another ``\\`` is a column-name character (§1.1)."""
    seen: dict[str, int] = {}
    for k, column in enumerate(columns, start=2):
        if not SENSOR_NAME_RE.fullmatch(column):
            raise UserError(
                f"{name}: line 1, column {k}: sensor name {column!r}: expected 1 to 200 "
                "characters from A-Z a-z 0-9 . \\ _ -"
            )
        if component and column.startswith(f"{component}\\"):
            # quoted by hand: a repr would double the backslash the message is about
            raise UserError(
                f"{name}: line 1, column {k}: sensor name '{column}' names the component "
                f"too; expected the sensor name alone ('{column[len(component) + 1 :]}'): "
                f"the component, '{component}', is the file's folder or name"
            )
        if column in seen:
            raise UserError(
                f"{name}: line 1, column {k}: sensor name {column!r} repeats column {seen[column]}"
            )
        seen[column] = k
    return columns


@dataclass(frozen=True)
class _Head:
    header: list[str]
    cells: list[str]
    """The first data row's cells (``[]`` if none)."""
    line: int
    """The file's line number of that row."""


def _head(source: _Source, sep: str) -> _Head | None:
    """The header and the first data row, read with the csv module from the file's first
    bytes; None where they cannot be told that way."""
    if len(sep) != 1:
        return None
    if isinstance(source, str | Path):
        with open(source, "rb") as handle:
            raw = handle.read(_HEAD_BYTES)
    else:
        raw = source.read(_HEAD_BYTES)
    lines = csv.reader(io.StringIO(raw.decode("utf-8-sig", "replace"), newline=""), delimiter=sep)
    try:
        rows = (row for row in lines if row)  # blank lines are skipped, as pandas skips them
        header, cells = next(rows, []), next(rows, [])
    except csv.Error:
        return None
    return _Head(header, cells, lines.line_num)


def _first_row_fits(name: str, head: _Head) -> None:
    """Refuse a first data row wider than the header (a trailing comma, say). The CSV
    reader would take its first cell as a row label and read every row's timestamp from
    the first sensor column: the file would yield no rows, all counted as unsupported
    timestamps (a wider row further down is the reader's own one-line error)."""
    if head.header and len(head.cells) > len(head.header):
        raise UserError(
            f"{name}: line {head.line}: {len(head.cells)} cells and the header has "
            f"{len(head.header)}; expected one cell per header column"
        )


def _timestamp_first(name: str, head: _Head) -> None:
    """Refuse a file whose timestamps sit in another column than the first (§1.1: column
    1 is the timestamp). Read as it stands, every row's first cell would be an unsupported
    timestamp and the file would silently yield no rows, and the column holding the
    times would pass for a sensor. Only the first data row is looked at, with the
    accepted formats' regular expression (a cheap test: the main read parses)."""
    header, cells = head.header, head.cells
    if len(cells) < 2 or _TS_RE.fullmatch(cells[0]):
        return
    for k, cell in enumerate(cells[1:], start=2):
        if _TS_RE.fullmatch(cell) and not pd.isna(parse_timestamps([cell])[0]):
            column, first = (
                [*(c.strip() for c in header), "", ""][k - 1],
                [*header, ""][0].strip(),
            )
            raise UserError(
                f"{name}: line {head.line}, column {k}: {column!r} holds the timestamps "
                f"({cell!r}) and column 1 {first!r} does not ({cells[0]!r}); expected the "
                "timestamp in the first column"
            )


_HEAD_BYTES = 1 << 16
"""Enough of a file for its header and first row."""


def _drop_infinite(
    column: np.ndarray, good: np.ndarray, invalid: dict[str, int], sensor: str
) -> np.ndarray:
    """An infinite reading (``inf``, ``1e400``) is no usable double: it becomes a gap and
    counts as an invalid value, as text in a number column does."""
    infinite = np.isinf(column)
    if not infinite.any():
        return column
    if bad := int(infinite[good].sum()):
        invalid[sensor] = invalid.get(sensor, 0) + bad
    return np.where(infinite, np.nan, column)


def _line_count(source: _Source, name: str, *, limit: int | None = None) -> int:
    """At least the number of data rows (line breaks of either kind; quoted line breaks
    only make it larger). A line longer than *limit* (default: the header bound, 1 MiB;
    a row of 3,000 sensors is some 60 KB) is refused naming its number: the CSV parser
    would hold it whole, and a sparse or damaged file's "line" is gigabytes."""
    limit = user_files.MAX_HEADER_BYTES if limit is None else limit
    size = min(1 << 20, limit)  # no line inside one block can be longer than the bound
    newlines = returns = 0
    run = 0
    """Bytes since the last line break, across blocks."""
    with open(source, "rb") if isinstance(source, str | Path) else nullcontext(source) as handle:
        while block := handle.read(size):
            first = min((i for i in (block.find(b"\n"), block.find(b"\r")) if i >= 0), default=-1)
            if first < 0:
                run += len(block)
            else:
                run += first
                last = max(block.rfind(b"\n"), block.rfind(b"\r"))
            if run > limit:
                line = max(newlines, returns) + 1
                raise UserError(
                    f"{name}: line {line}: longer than {user_files.size_text(limit)}; not a "
                    "CSV row (a damaged or binary file?)"
                )
            if first >= 0:
                run = len(block) - last - 1
            newlines += block.count(b"\n")
            returns += block.count(b"\r")
    return max(newlines, returns) + 1


_Source = io.BytesIO | str | Path | BinaryIO


def to_microseconds(frame: pd.DataFrame) -> pd.DataFrame:
    """*frame* with each row time's fraction cut to microseconds, the precision of a
    results.jsonl timestamp (l4e-contracts §5), so that a row is scored at the instant its
    line names: rows nanoseconds apart become one (the later wins, as for duplicates), and
    a row nanoseconds past a window's end is that end's, not a line repeating it in the
    next window. The same frame when no time has a finer fraction."""
    index = pd.DatetimeIndex(frame.index)
    if not len(index) or not (index.asi8 % 1000).any():
        return frame
    cut = frame.set_axis(index.floor("us"))
    return cut[~cut.index.duplicated(keep="last")]


def prefixed(frame: pd.DataFrame, component: str) -> pd.DataFrame:
    """Columns renamed ``<component>\\<sensor>``."""
    return frame.rename(columns={c: f"{component}\\{c}" for c in frame.columns})


def merge(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Outer-join on the timestamp; for the same column, later frames win.

    Frames with distinct columns (one per component) are joined into one float block, so
    that the model reads the merged data without another copy.
    """
    frames = list(frames)
    if not frames:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"))
    if len(frames) == 1:
        return frames[0]
    names = [c for frame in frames for c in frame.columns]
    if len(set(names)) < len(names):
        result = frames[0]
        order = [str(c) for c in result.columns]
        for frame in frames[1:]:
            order += [c for c in frame.columns if c not in order]
            result = frame.combine_first(result)
        return result[order]
    index = frames[0].index
    if all(frame.index.equals(index) for frame in frames[1:]):
        return pd.DataFrame(
            np.hstack([frame.to_numpy(dtype=float) for frame in frames]),
            index=index,
            columns=names,
            copy=False,
        )
    index = frames[0].index
    for frame in frames[1:]:
        index = index.union(frame.index)
    values = np.full((len(index), len(names)), np.nan)
    start = 0
    for frame in frames:
        width = frame.shape[1]
        values[index.get_indexer(frame.index), start : start + width] = frame.to_numpy(float)
        start += width
    return pd.DataFrame(values, index=index, columns=names, copy=False)


_COMPONENT_RE = re.compile(r"^[0-9a-zA-Z._\-]{1,200}$")

# l4e-contracts §1.4: what L4E refused when a dataset was made or a model created from it
MAX_DATASET_FILES = 1_000
"""CSV files in one historical dataset."""
MAX_DATASET_SENSORS = 3_000
"""Sensor columns over every component of a dataset."""
MAX_MODEL_SENSORS = 300
"""Sensors one model is trained on (:func:`cloud.inference.model.train`)."""
MAX_CSV_BYTES = 5 * 1024**3
"""One CSV file: a larger one is discarded with that reason, as the ingestion discards it."""
MAX_DATASET_BYTES = 50 * 1024**3
"""The CSV files of one historical dataset together."""
MIN_DATE_RANGE_DAYS = 180
"""The span L4E wanted across all files. Warned about, not refused: plantwatch's demo and
the SKAB bench train on much less, and a short history still makes a useful model."""


def check_dataset_limits(where: str, *, files: int = 0, sensors: int = 0, size: int = 0) -> None:
    """UserError naming *where* when a historical dataset passes a limit of l4e-contracts
    §1.4 (CSV files, sensor columns over all components, bytes): one message for
    ``model train`` and ``import l4e``, with or without ``--train``."""
    if files > MAX_DATASET_FILES:
        raise UserError(
            f"{where}: {files:,} CSV files; an L4E dataset holds at most {MAX_DATASET_FILES:,} "
            "(l4e-contracts §1.4): join files of one component into fewer"
        )
    if sensors > MAX_DATASET_SENSORS:
        raise UserError(
            f"{where}: {sensors:,} sensors; an L4E dataset holds at most "
            f"{MAX_DATASET_SENSORS:,} (l4e-contracts §1.4): split it into datasets"
        )
    if size > MAX_DATASET_BYTES:
        raise UserError(
            f"{where}: {size:,} bytes of CSV; an L4E dataset holds at most "
            f"{MAX_DATASET_BYTES // 1024**3} GB (l4e-contracts §1.4): split it into datasets"
        )


@dataclass
class Dataset:
    """A historical dataset (§1): ``component\\sensor`` columns on one UTC index."""

    frame: pd.DataFrame
    components: dict[str, list[str]]
    """Component -> its sensor column names (without prefix), in file order."""
    files: dict[str, list[str]]
    """Component -> files read."""
    parsed: dict[str, CsvFrame]
    """Component -> its merged frame and counts, for the quality report."""
    discarded: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    """Why each discarded CSV could not be read, one line each naming the file (the rest
    of ``discarded`` is not a component CSV: another format, or outside a component)."""

    def discard_warnings(self, most: int = 5) -> list[str]:
        """One line per unreadable CSV (at most *most*, then how many more) and one for
        the files that are not component CSVs: nothing is left out of a model unsaid."""
        lines = [f"discarded {reason}" for reason in self.unreadable[:most]]
        if len(self.unreadable) > most:
            lines.append(f"and {len(self.unreadable) - most} more unreadable CSV files discarded")
        others = len(self.discarded) - len(self.unreadable)
        if others:
            files = (
                "file that is not a component CSV"
                if others == 1
                else ("files that are not component CSVs")
            )
            lines.append(f"discarded {others} {files} (first: {self.discarded[0]})")
        return lines

    def component_frame(self, component: str) -> pd.DataFrame:
        """One component's columns with plain sensor names (for template models)."""
        cols = [f"{component}\\{s}" for s in self.components[component]]
        frame = self.frame[cols].dropna(how="all")
        return frame.rename(columns=lambda c: c.partition("\\")[2])


def load_dataset(root: str | Path, *, sep: str = ",", delimiter: str | None = None) -> Dataset:
    """Read ``root/<component>/*.csv`` per §1.1; flat files ``root/<component>_*.csv`` or
    ``root/<component> *.csv`` also work (the component is the name up to the first ``_``
    or space; a hyphen or dot is taken as part of the name, since asset names hold them).
    *delimiter*, one of L4E's KeyPattern delimiters (space, ``.``, ``_``, ``-``), reads
    flat files as ``{component_name}[DELIMITER]*`` instead
    (:func:`cloud.l4e.naming.flat_component`); a flat CSV that pattern does not match is
    discarded.

    Several files of one component are merged on the timestamp (later files win on
    duplicates); unreadable files, and files that are not ``.csv`` (in any case), are
    listed as discarded, as L4E's ingestion does.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder not found")
    groups: dict[str, list[Path]] = {}
    discarded: list[str] = []
    for path in sorted(root.iterdir()):
        if path.is_dir():
            # S3 `{prefix}/{component}/*` spans subfolders; a file of another format is
            # discarded, as L4E's ingestion discards a jpg or pdf, not left out silently
            found = sorted(p for p in path.rglob("*") if not p.is_dir())
            csvs = [p for p in found if _is_csv(p)]
            if _COMPONENT_RE.fullmatch(path.name):
                groups.setdefault(path.name, []).extend(csvs)
                discarded.extend(str(p) for p in found if not _is_csv(p))
            else:  # no component can have this name: listed, not silently left out
                discarded.extend(str(p) for p in found)
        elif _is_csv(path):
            component = flat_component(path.name, delimiter)
            if component is not None:
                groups.setdefault(component, []).append(path)
            else:
                discarded.append(str(path))
        else:
            discarded.append(str(path))
    groups = {c: paths for c, paths in groups.items() if paths}
    check_dataset_limits(str(root), files=sum(len(paths) for paths in groups.values()))
    if not groups:
        raise UserError(
            f"{root}: no component CSVs (expected {root}/<component>/*.csv or "
            f"{root}/<component>_*.csv)"
        )
    sizes = {p: n for paths in groups.values() for p in paths if (n := _file_size(p)) is not None}
    check_dataset_limits(str(root), size=sum(s for s in sizes.values() if s <= MAX_CSV_BYTES))
    parsed: dict[str, CsvFrame] = {}
    components: dict[str, list[str]] = {}
    reasons: list[str] = []
    for component, paths in sorted(groups.items()):
        parts: list[CsvFrame] = []
        for path in paths:
            if path not in sizes:  # a FIFO would block the reader, /dev/zero never ends
                discarded.append(str(path))
                reasons.append(f"{path}: not a regular file")
                continue
            size = sizes[path]
            if size > MAX_CSV_BYTES:
                discarded.append(str(path))
                reasons.append(
                    f"{path}: {size:,} bytes; an L4E input CSV is at most 5 GB "
                    "(l4e-contracts §1.4): split it"
                )
                continue
            try:
                parts.append(read_csv(path, str(path), sep=sep, component=component))
            except UserError as exc:
                discarded.append(str(path))
                reasons.append(str(exc))
        if not parts:
            continue
        merged = merge(p.frame for p in parts)
        invalid: dict[str, int] = {}
        for part in parts:
            for key, value in part.invalid_values.items():
                invalid[key] = invalid.get(key, 0) + value
        invalid_at: dict[str, pd.DatetimeIndex] = {}
        for part in parts:
            for key, at in part.invalid_at.items():
                invalid_at[key] = invalid_at[key].union(at) if key in invalid_at else at
        parsed[component] = CsvFrame(
            merged,
            sum(p.unsupported_timestamps for p in parts),
            sum(p.duplicate_timestamps for p in parts),
            invalid,
            invalid_at=invalid_at,
        )
        components[component] = [str(c) for c in merged.columns]
    if not parsed:
        more = f" (and {len(discarded) - 1} more discarded)" if len(discarded) > 1 else ""
        why = reasons[0] if reasons else f"discarded: {discarded[0]}"
        raise UserError(f"{root}: no readable CSV: {why}{more}")
    check_dataset_limits(str(root), sensors=sum(len(names) for names in components.values()))
    frame = _join(parsed)
    return Dataset(
        frame,
        components,
        {c: [str(p) for p in groups[c]] for c in parsed},
        parsed,
        discarded,
        reasons,
    )


def nested_components_warning(dataset: Dataset, root: str | Path) -> str | None:
    """The one-line ``nested-components`` warning when a component's CSVs lie in several
    subfolders named like components (``history/`` read as ``data`` made of ``data/pump-01``,
    ``data/pump-02`` ...): read as one component, as L4E's ingestion reads
    ``{prefix}/{component}/*``, which is rarely what was meant. None otherwise."""
    root = Path(root)
    for component, paths in dataset.files.items():
        base = root / component
        # a flat root/<component>_*.csv lies beside base, not under it: never nested
        below = [Path(p).relative_to(base).parts for p in paths if Path(p).is_relative_to(base)]
        subfolders = sorted({parts[0] for parts in below if len(parts) > 1})
        named = [name for name in subfolders if _COMPONENT_RE.fullmatch(name)]
        if len(named) >= 2:
            shown = ", ".join(named[:5]) + (f" and {len(named) - 5} more" if len(named) > 5 else "")
            return (
                f"nested-components: {base} holds CSVs in subfolders {shown}, all read as one "
                f"component {component!r} (L4E reads {{prefix}}/{{component}}/*); for one "
                f"component each, pass --dataset {base}"
            )
    return None


def _file_size(path: Path) -> int | None:
    """The size of a regular file (a symlink to one counts); None for anything else, or
    for a file gone since it was listed."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_size if stat.S_ISREG(found.st_mode) else None


def short_range_warning(index: pd.Index, where: str) -> str | None:
    """The one-line ``short-date-range`` warning when *index* spans under 180 days
    (l4e-contracts §1.4); None otherwise. Said once per model created, not refused."""
    span = (index.max() - index.min()) if len(index) else pd.Timedelta(0)
    if span >= pd.Timedelta(days=MIN_DATE_RANGE_DAYS):
        return None
    days = span / pd.Timedelta(days=1)
    return (
        f"short-date-range: {where} spans {days:.1f} days; L4E required at least "
        f"{MIN_DATE_RANGE_DAYS} days of history to create a model (l4e-contracts §1.4); "
        "plantwatch trains on it anyway, but modes and thresholds seen in so little may "
        "not hold for long"
    )


def _is_csv(path: Path) -> bool:
    """A CSV by its name, ``.csv`` in any case (``b.CSV`` from a Windows export)."""
    return path.suffix.lower() == ".csv"


def _join(parsed: dict[str, CsvFrame]) -> pd.DataFrame:
    """Every component's columns (``component\\sensor``) on one sorted index, one float block.

    Where all components have the same timestamps (the usual case), the block is filled a
    component at a time and that component's frame becomes a view of its columns at once,
    so the values are never held twice (a year of one-minute data for 30 sensors is
    126 MB per copy).
    """
    frames = [prefixed(p.frame, c) for c, p in parsed.items()]
    index = frames[0].index
    if len(frames) == 1 or not all(f.index.equals(index) for f in frames[1:]):
        frame = merge(frames)
        return frame if frame.index.is_monotonic_increasing else frame.sort_index()
    names = [str(name) for f in frames for name in f.columns]
    del frames
    values = np.empty((len(index), len(names)), order="F")  # a component: one region
    start = 0
    for part in parsed.values():
        width = part.frame.shape[1]
        values[:, start : start + width] = part.frame.to_numpy(dtype=float)
        part.frame = pd.DataFrame(
            values[:, start : start + width], index=index, columns=part.frame.columns, copy=False
        )
        start += width
    return pd.DataFrame(values, index=index, columns=names, copy=False)


@dataclass(frozen=True)
class Label:
    """One known abnormal period (§2); CSV rows count as ``Rating=ANOMALY``."""

    start: pd.Timestamp
    end: pd.Timestamp
    fault_code: str = ""
    equipment: str = ""
    notes: str = ""


LABEL_COLUMN_LENGTHS = (("fault_code", 100), ("equipment", 200))
"""CreateLabel's lengths for the optional columns 3 and 4 (API reference: FaultCode 1 to
100 characters, Equipment 1 to 200): a label kept here can be sent to a label group."""


def load_labels(source: str | Path) -> list[Label]:
    """A label CSV or a folder of them: no header, ``start,end[,fault_code,equipment,notes]``.

    Each row has its own width (two columns, or up to the three optional ones), blank
    lines are skipped, and an error names the file's own line number.
    """
    source = Path(source)
    paths = sorted(p for p in source.rglob("*") if _is_csv(p)) if source.is_dir() else [source]
    if not paths or not all(p.is_file() for p in paths):
        raise UserError(f"{source}: no label CSV found")
    labels: list[Label] = []
    for path in paths:
        rows = _label_rows(path)
        starts = parse_timestamps([row[0] for _, row in rows])
        ends = parse_timestamps([row[1] for _, row in rows])
        for (line, row), start, end in zip(rows, starts, ends, strict=True):
            if pd.isna(start) or pd.isna(end):
                raise UserError(
                    f"{path}: line {line}: start/end {row[0]!r}, {row[1]!r}: "
                    "expected a supported timestamp format"
                )
            if end < start:
                raise UserError(f"{path}: line {line}: end is before start")
            extra = [*row[2:], "", "", ""][:3]
            for column, (what, most) in enumerate(LABEL_COLUMN_LENGTHS, start=3):
                if len(extra[column - 3]) > most:
                    raise UserError(
                        f"{path}: line {line}, column {column}: {what}: at most {most} characters"
                    )
            labels.append(Label(start, end, *extra))
    return sorted(labels, key=lambda label: label.start)


def _label_rows(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, cells)`` of each non-blank row, every row 2 to 5 cells wide."""
    try:
        text = read_document_text(path, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not a readable label CSV (not UTF-8: {exc.reason})") from None
    except OSError as exc:
        raise UserError(f"{path}: not a readable label CSV ({exc.strerror})") from None
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if not 2 <= len(cells) <= 5:
                raise UserError(
                    f"{path}: line {reader.line_num}: expected 2 to 5 columns "
                    f"(start,end[,fault_code,equipment,notes]), found {len(cells)}"
                )
            rows.append((reader.line_num, [cell.strip() for cell in cells]))
    except csv.Error as exc:
        raise UserError(
            f"{path}: line {reader.line_num}: not a readable label CSV ({exc})"
        ) from None
    return rows


def label_mask(index: pd.DatetimeIndex, labels: Iterable[Label]) -> np.ndarray:
    """True for rows inside any label's ``[start, end]``."""
    mask = np.zeros(len(index), dtype=bool)
    for label in labels:
        mask |= (index >= label.start) & (index <= label.end)
    return mask
