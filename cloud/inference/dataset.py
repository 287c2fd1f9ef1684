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
    if not re.fullmatch(
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
    order: list[str] = []
    for frame in frames:
        order += [c for c in frame.columns if c not in order]
        result = frame if result is None else frame.combine_first(result)
    if result is None:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"))
    return result[order]


_COMPONENT_RE = re.compile(r"^[0-9a-zA-Z._\-]{1,200}$")


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

    def component_frame(self, component: str) -> pd.DataFrame:
        """One component's columns with plain sensor names (for template models)."""
        cols = [f"{component}\\{s}" for s in self.components[component]]
        frame = self.frame[cols].dropna(how="all")
        return frame.rename(columns=lambda c: c.partition("\\")[2])


def load_dataset(root: str | Path, *, sep: str = ",") -> Dataset:
    """Read ``root/<component>/*.csv`` per §1.1; a flat ``root/<component>_*.csv`` also works
    (the component is the name up to the first ``_``, since hyphens occur in asset names).

    Several files of one component are merged on the timestamp (later files win on
    duplicates); unreadable files are listed as discarded, as L4E's ingestion does.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder not found")
    groups: dict[str, list[Path]] = {}
    for path in sorted(root.iterdir()):
        if path.is_dir() and _COMPONENT_RE.fullmatch(path.name):
            found = sorted(path.glob("*.csv"))
            if found:
                groups.setdefault(path.name, []).extend(found)
        elif path.suffix == ".csv":
            component = path.stem.partition("_")[0]
            if _COMPONENT_RE.fullmatch(component):
                groups.setdefault(component, []).append(path)
    if not groups:
        raise UserError(
            f"{root}: no component CSVs (expected {root}/<component>/*.csv or "
            f"{root}/<component>_*.csv)"
        )
    parsed: dict[str, CsvFrame] = {}
    components: dict[str, list[str]] = {}
    discarded: list[str] = []
    for component, paths in sorted(groups.items()):
        parts: list[CsvFrame] = []
        for path in paths:
            try:
                parts.append(read_csv(path, str(path), sep=sep))
            except UserError:
                discarded.append(str(path))
        if not parts:
            continue
        merged = merge(p.frame for p in parts)
        invalid: dict[str, int] = {}
        for part in parts:
            for key, value in part.invalid_values.items():
                invalid[key] = invalid.get(key, 0) + value
        parsed[component] = CsvFrame(
            merged,
            sum(p.unsupported_timestamps for p in parts),
            sum(p.duplicate_timestamps for p in parts),
            invalid,
        )
        components[component] = [str(c) for c in merged.columns]
    if not parsed:
        raise UserError(f"{root}: no readable CSV (discarded: {', '.join(discarded)})")
    frame = merge(prefixed(p.frame, c) for c, p in parsed.items()).sort_index()
    return Dataset(
        frame,
        components,
        {c: [str(p) for p in groups[c]] for c in parsed},
        parsed,
        discarded,
    )


@dataclass(frozen=True)
class Label:
    """One known abnormal period (§2); CSV rows count as ``Rating=ANOMALY``."""

    start: pd.Timestamp
    end: pd.Timestamp
    fault_code: str = ""
    equipment: str = ""
    notes: str = ""


def load_labels(source: str | Path) -> list[Label]:
    """A label CSV or a folder of them: no header, ``start,end[,fault_code,equipment,notes]``."""
    source = Path(source)
    paths = sorted(source.rglob("*.csv")) if source.is_dir() else [source]
    if not paths or not all(p.is_file() for p in paths):
        raise UserError(f"{source}: no label CSV found")
    labels: list[Label] = []
    for path in paths:
        try:
            raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
        except pd.errors.EmptyDataError:
            continue
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: not a readable label CSV ({exc})") from None
        if raw.shape[1] < 2 or raw.shape[1] > 5:
            raise UserError(
                f"{path}: expected 2 to 5 columns (start,end[,fault_code,equipment,notes]), "
                f"found {raw.shape[1]}"
            )
        starts, ends = parse_timestamps(raw[0]), parse_timestamps(raw[1])
        for i in range(len(raw)):
            if pd.isna(starts[i]) or pd.isna(ends[i]):
                raise UserError(
                    f"{path}: line {i + 1}: start/end {raw.iloc[i, 0]!r}, {raw.iloc[i, 1]!r}: "
                    "expected a supported timestamp format"
                )
            if ends[i] < starts[i]:
                raise UserError(f"{path}: line {i + 1}: end is before start")
            extra = [str(raw.iloc[i, k]) if k < raw.shape[1] else "" for k in (2, 3, 4)]
            labels.append(Label(starts[i], ends[i], *extra))
    return sorted(labels, key=lambda label: label.start)


def label_mask(index: pd.DatetimeIndex, labels: Iterable[Label]) -> np.ndarray:
    """True for rows inside any label's ``[start, end]``."""
    mask = np.zeros(len(index), dtype=bool)
    for label in labels:
        mask |= (index >= label.start) & (index <= label.end)
    return mask
