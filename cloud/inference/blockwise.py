"""Passes over large ``(rows, sensors)`` arrays a block of rows at a time.

Why: a year of one-minute data for 30 sensors is 126 MB per float64 copy, and whole-array
numpy expressions make a full-size temporary per operation. Training from a 118 MB CSV
used to peak at 7 GB that way. A pass here holds at most :data:`BLOCK_ROWS` rows of
temporaries, so memory stays one copy of the data plus a few MB, whatever the data size.
Results agree with the whole-array expressions to rounding (the order of additions
differs), not bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

BLOCK_ROWS = 8_192
"""Rows per block: 2 MB of float64 temporaries at 30 sensors, big enough that numpy's
per-call overhead does not show."""


def blocks(rows: int, size: int = BLOCK_ROWS) -> Iterator[slice]:
    """Consecutive row slices covering ``range(rows)``."""
    for start in range(0, rows, size):
        yield slice(start, min(start + size, rows))


class Patched:
    """A read-only ``(rows, columns)`` float array with some cells replaced: *base*, with
    ``values[k]`` at ``(rows[k], columns[k])`` (sorted by row).

    Why: training data with a few gaps needs its gaps filled, and a filled copy of a year
    of data is 126 MB; the patches cost 24 bytes per gap. Read it a block of rows, a set of
    rows or a column at a time; every read returns a new array or a read-only view.
    """

    def __init__(
        self,
        base: np.ndarray,
        rows: np.ndarray | None = None,
        columns: np.ndarray | None = None,
        values: np.ndarray | None = None,
    ) -> None:
        self.base = base
        none = np.zeros(0, dtype=np.intp)
        self.rows = none if rows is None else rows
        self.columns = none if columns is None else columns
        self.values = np.zeros(0) if values is None else values

    def __len__(self) -> int:
        return len(self.base)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.base.shape

    def block(self, rows: slice) -> np.ndarray:
        """Rows ``rows.start`` to ``rows.stop`` (a view when no patch falls inside)."""
        lo, hi = np.searchsorted(self.rows, [rows.start, rows.stop])
        if lo == hi:
            return self.base[rows]
        out = self.base[rows].copy()
        out[self.rows[lo:hi] - rows.start, self.columns[lo:hi]] = self.values[lo:hi]
        return out

    def take(self, index: np.ndarray) -> np.ndarray:
        """The rows at *index* (distinct row numbers, any order)."""
        out = self.base[index]
        where, hit = self._find(index, self.rows)
        out[where[hit], self.columns[hit]] = self.values[hit]
        return out

    def column(self, j: int, index: np.ndarray) -> np.ndarray:
        """Column *j* at the rows *index* (distinct row numbers, any order)."""
        out = self.base[index, j]
        mine = self.columns == j
        where, hit = self._find(index, self.rows[mine])
        out[where[hit]] = self.values[mine][hit]
        return out

    def copy(self) -> np.ndarray:
        """A writable array with the patches applied."""
        out = np.array(self.base, dtype=float)
        out[self.rows, self.columns] = self.values
        return out

    @staticmethod
    def _find(index: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position in *index* of each of *wanted*, and which of them *index* holds."""
        order = np.argsort(index, kind="stable")
        ordered = index[order]
        at = np.searchsorted(ordered, wanted).clip(max=max(len(index) - 1, 0))
        hit = (ordered[at] == wanted) if len(index) else np.zeros(len(wanted), dtype=bool)
        return order[at] if len(index) else at, hit


def selected(y: np.ndarray | Patched, mask: np.ndarray) -> Iterator[np.ndarray]:
    """``y[mask]`` block by block (non-empty blocks only), without the full-size copy."""
    for block in blocks(len(y)):
        rows = mask[block]
        if not rows.any():
            continue
        part = y.block(block) if isinstance(y, Patched) else y[block]
        yield part if rows.all() else part[rows]


RowBlocks = Callable[[], Iterator[np.ndarray]]
"""Something that can iterate over the same rows again, block by block (one per pass)."""


def mean_std(parts: RowBlocks) -> tuple[np.ndarray, np.ndarray, int]:
    """Column means, population standard deviations (two passes, as ``np.std``) and the
    row count."""
    total: np.ndarray | None = None
    count = 0
    for part in parts():
        sums = part.sum(0)
        total = sums if total is None else total + sums
        count += len(part)
    if total is None:
        raise ValueError("no rows")
    mean = total / count
    squares = np.zeros_like(mean)
    for part in parts():
        centred = part - mean
        squares += (centred * centred).sum(0)
    return mean, np.sqrt(squares / count), count


def covariance(parts: RowBlocks) -> np.ndarray:
    """Sample covariance of the columns (``np.cov(rowvar=False)``), two passes."""
    mean, _, count = mean_std(parts)
    width = len(mean)
    gram = np.zeros((width, width))
    for part in parts():
        centred = part - mean
        gram += centred.T @ centred
    with np.errstate(divide="ignore", invalid="ignore"):
        return gram * np.true_divide(1, count - 1 if count > 1 else 0)


def gaps_filled(x: np.ndarray, fill: np.ndarray, dense: float = 0.2) -> Patched:
    """*x* with each gap (NaN) replaced by the column's last reading before it, or by
    ``fill[j]`` before any reading, as patches over *x*; when more than *dense* of the
    cells are gaps, a filled copy is cheaper than patches and is returned instead."""
    rows, columns, values = [], [], []
    positions = np.arange(len(x))
    for j in range(x.shape[1]):
        column = x[:, j]
        missing = np.isnan(column)
        if not missing.any():
            continue
        source = np.where(missing, 0, positions)
        np.maximum.accumulate(source, out=source)
        at = np.flatnonzero(missing)
        filled = column[source[at]]
        filled[np.isnan(filled)] = fill[j]
        rows.append(at)
        columns.append(np.full(len(at), j, dtype=np.intp))
        values.append(filled)
    if not rows:
        return Patched(x)
    patched = Patched(x)
    patched.rows, patched.columns = np.concatenate(rows), np.concatenate(columns)
    patched.values = np.concatenate(values)
    if len(patched.rows) > dense * x.size:
        return Patched(patched.copy())
    order = np.lexsort((patched.columns, patched.rows))
    patched.rows, patched.columns = patched.rows[order], patched.columns[order]
    patched.values = patched.values[order]
    return patched


def nanmean_rows(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``np.nanmean(x[mask], axis=0)`` without copying ``x[mask]``; NaN for a column with
    no value (callers decide what that means)."""
    total = np.zeros(x.shape[1])
    count = np.zeros(x.shape[1])
    for part in selected(x, mask):
        present = ~np.isnan(part)
        total += np.where(present, part, 0.0).sum(0)
        count += present.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return total / count
