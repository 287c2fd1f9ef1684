"""L4E CSVs in, a UTC-indexed frame out: timestamps (§1.2 Choice), datasets (§1.1), labels (§2).

Timestamps: every listed pattern, optional fractional seconds (1-9 digits), an optional
``Z``/``±HH:MM`` suffix, and ``M/d/yyyy H:mm[:ss]``. No zone means UTC. Rows whose timestamp
cannot be parsed are dropped and counted.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from edge.errors import UserError

_SEP = r"[-/ ]"
_TS_RE = re.compile(
    r"^\s*(?:"
    # yyyy-MM-dd / yyyy/MM/dd / yyyy MM dd, then T, space or -, then HH:mm or HH-mm
    rf"(?P<y>\d{{4}})(?P<s1>{_SEP})(?P<mo>\d{{2}})(?P=s1)(?P<d>\d{{2}})(?:T| |-)"
    r"(?P<h>\d{2})(?P<s2>[:-])(?P<mi>\d{2})(?:(?P=s2)(?P<s>\d{2}))?"
    # yyyyMMdd, then T, space or nothing, then HH:mm[:ss] or HHmm[ss]
    r"|(?P<y2>\d{4})(?P<mo2>\d{2})(?P<d2>\d{2})(?:T| )?"
    r"(?P<h2>\d{2})(?P<c2>:?)(?P<mi2>\d{2})(?:(?P=c2)(?P<s_2>\d{2}))?"
    # M/d/yyyy H:mm[:ss]
    r"|(?P<mo3>\d{1,2})/(?P<d3>\d{1,2})/(?P<y3>\d{4}) (?P<h3>\d{1,2}):(?P<mi3>\d{2})"
    r"(?::(?P<s3>\d{2}))?"
    r")(?:\.(?P<f>\d{1,9}))?(?P<z>Z|[+-]\d{2}:\d{2})?\s*$"
)


def parse_timestamps(values: Iterable[object]) -> pd.DatetimeIndex:
    """UTC instants; NaT where a value matches no accepted format."""
    text = pd.Series(list(values) if not isinstance(values, pd.Series) else values, dtype=object)
    text = text.astype(str)
    fast = _fast_iso(text)
    if fast is not None:
        return fast
    parts = text.str.extract(_TS_RE)
    year = parts["y"].fillna(parts["y2"]).fillna(parts["y3"])
    month = parts["mo"].fillna(parts["mo2"]).fillna(parts["mo3"])
    day = parts["d"].fillna(parts["d2"]).fillna(parts["d3"])
    hour = parts["h"].fillna(parts["h2"]).fillna(parts["h3"])
    minute = parts["mi"].fillna(parts["mi2"]).fillna(parts["mi3"])
    second = parts["s"].fillna(parts["s_2"]).fillna(parts["s3"]).fillna("0")
    frac = parts["f"].fillna("").str.ljust(9, "0")
    frame = pd.DataFrame(
        {
            "year": pd.to_numeric(year, errors="coerce"),
            "month": pd.to_numeric(month, errors="coerce"),
            "day": pd.to_numeric(day, errors="coerce"),
            "hour": pd.to_numeric(hour, errors="coerce"),
            "minute": pd.to_numeric(minute, errors="coerce"),
            "second": pd.to_numeric(second, errors="coerce"),
            "ns": pd.to_numeric(frac, errors="coerce").fillna(0),
        }
    )
    ok = frame[["year", "month", "day", "hour", "minute", "second"]].notna().all(axis=1)
    stamps = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    if ok.any():
        stamps[ok] = pd.to_datetime(frame[ok], errors="coerce")
    offsets = parts["z"].fillna("Z").map(_offset_ns)
    values_ns = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    shifted = np.where(stamps.isna(), np.iinfo(np.int64).min, values_ns - offsets.to_numpy())
    return pd.DatetimeIndex(shifted.astype("datetime64[ns]")).tz_localize("UTC")


def _fast_iso(text: pd.Series) -> pd.DatetimeIndex | None:
    """Whole-column ISO parse: the common case (batcher files, samples) in one C call."""
    if text.empty:
        return pd.DatetimeIndex([], tz="UTC")
    first = text.iloc[0]
    if not re.match(
        r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?$", first
    ):
        return None
    try:
        stamps = pd.to_datetime(text, format="ISO8601", utc=True)
    except (ValueError, TypeError):
        return None
    return pd.DatetimeIndex(stamps).as_unit("ns")


def _offset_ns(zone: str) -> int:
    if zone == "Z":
        return 0
    sign = -1 if zone[0] == "-" else 1
    return sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * 1_000_000_000


@dataclass
class CsvFrame:
    """One parsed CSV: sensor columns (floats) on a UTC index, plus what was wrong with it."""

    frame: pd.DataFrame
    unsupported_timestamps: int = 0
    duplicate_timestamps: int = 0
    invalid_values: dict[str, int] = field(default_factory=dict)


def read_csv(body: bytes | str | Path, name: str, *, sep: str = ",") -> CsvFrame:
    """Header row, timestamp first, numeric sensors; *name* appears in error messages."""
    source = io.BytesIO(body) if isinstance(body, bytes) else body
    try:
        raw = pd.read_csv(source, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{name}: not a readable CSV ({exc})") from None
    if raw.shape[1] < 2:
        raise UserError(f"{name}: expected a timestamp column and at least one sensor column")
    raw.columns = [str(c).strip() for c in raw.columns]
    stamps = parse_timestamps(raw.iloc[:, 0])
    good = ~stamps.isna()
    unsupported = int((~good).sum())
    values = raw.iloc[:, 1:][good]
    numeric = values.apply(pd.to_numeric, errors="coerce")
    blank = values.apply(lambda col: col.str.strip().isin(["", "nan", "NaN", "null", "NULL"]))
    invalid = (numeric.isna() & ~blank).sum()
    frame = numeric.astype(float)
    frame.index = stamps[good]
    frame.index.name = "Timestamp"
    duplicates = int(frame.index.duplicated(keep="last").sum())
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return CsvFrame(
        frame, unsupported, duplicates, {str(k): int(v) for k, v in invalid.items() if v}
    )


def prefixed(frame: pd.DataFrame, component: str) -> pd.DataFrame:
    """Columns renamed ``<component>\\<sensor>``."""
    return frame.rename(columns={c: f"{component}\\{c}" for c in frame.columns})


def merge(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Outer-join on the timestamp; for the same column, later frames win."""
    result: pd.DataFrame | None = None
    for frame in frames:
        result = frame if result is None else frame.combine_first(result)
    return result if result is not None else pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"))
