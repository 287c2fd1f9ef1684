"""Change points: where the plant starts moving to another level, and where it stops.

An alarm says *that* a row is abnormal; its raise and clear come late at a change,
because the level must first build up past the threshold, and a change inside an alarm
(the end of a fault's transition, the start of its recovery) raises or clears nothing.
SKAB labels those changes, and NAB scores how early each is found.

The statistic is a two-window mean-shift test on the model's whitened deviations: the
squared length of the difference between the mean of the last ``window_rows`` rows and the
mean of the ``window_rows`` rows before them. Its limit is set on training rows as the
model's is: a quantile of the statistic there times a margin. The plant is *moving* once
the statistic has been above the limit for ``hold_rows`` rows and *still* once it has been
below for as many; every start and every stop of a move is a changepoint. The test is a
difference, so it is the same whatever operating point the plant sits at: an accepted new
operating point or a drifting origin changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cloud.inference.alarm import Debouncer
from cloud.inference.scratch import lease
from cloud.inference.threads import run_all, split
from edge.errors import ConfigError, UserError


@dataclass(frozen=True)
class ChangeConfig:
    window_rows: int = 15
    quantile: float = 0.999
    margin: float = 2.0
    hold_rows: int = 3

    def __post_init__(self) -> None:
        if self.window_rows < 1 or self.hold_rows < 1:
            raise ConfigError("window_rows and hold_rows: expected whole numbers >= 1")
        if not 0 < self.quantile < 1:
            raise ConfigError(f"quantile {self.quantile}: expected in (0, 1)")
        if self.margin <= 0:
            raise ConfigError(f"margin {self.margin}: expected > 0")


@dataclass
class ChangeState:
    tail: np.ndarray | None = None
    """The last ``2 * window_rows - 1`` deviations."""
    seen: int = 0
    debouncer: Debouncer = field(default_factory=Debouncer)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (arrays as lists), for a state store."""
        return {
            "tail": None if self.tail is None else self.tail.tolist(),
            "seen": self.seen,
            "debouncer": {
                "rows": self.debouncer.rows,
                "active": self.debouncer.active,
                "streak": self.debouncer.streak,
            },
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ChangeState:
        tail = doc.get("tail")
        return cls(
            None if tail is None else np.asarray(tail, dtype=float),
            int(doc.get("seen", 0)),
            Debouncer(**doc.get("debouncer", {})),
        )


@dataclass
class ChangeResult:
    statistic: np.ndarray
    """The two-window statistic over its limit (> 1: a change in progress); 0 while the
    windows are not yet full."""
    moving: np.ndarray
    changepoint: np.ndarray
    """1 where a move starts or stops."""
    state: ChangeState


def shift_statistic(deviations: np.ndarray, window: int) -> np.ndarray:
    """Squared length of (mean of the last *window* rows - mean of the *window* before);
    NaN until ``2 * window`` rows have been seen.

    The running sum is laid out as *deviations* is, so that numpy sums along contiguous
    memory (a running sum adds row after row in any layout: the same bits), its columns
    shared out among scoring's threads. The rest goes :data:`STATISTIC_BLOCK_ROWS` rows at
    a time into C-ordered blocks, the layout the whole-array expression
    (``_shift_statistic_simple``) has, whose bits it keeps; runs of blocks per thread."""
    n, width = deviations.shape
    out = np.full(n, np.nan)
    if n < 2 * window:
        return out
    fortran = deviations.flags.f_contiguous and not deviations.flags.c_contiguous
    with lease((n + 1, width), order="F" if fortran else "C") as cum:
        cum[0] = 0.0

        def running_sum(columns: slice) -> None:
            np.cumsum(deviations[:, columns], axis=0, out=cum[1:, columns])

        # (S[t] - S[t-k]) - (S[t-k] - S[t-2k]) for every t, on views of one running sum
        # with a column-major running sum, the element-wise steps go in a column-major
        # block (long runs of contiguous memory, where numpy is quick) and the result is
        # copied once into the C-ordered block the row sums need
        def differences(blocks: Sequence[tuple[int, int]]) -> None:
            longest = max(stop - start for start, stop in blocks)
            diff = np.empty((longest, width))
            steps = np.empty((longest, width), order="F") if fortran else diff
            for start, stop in blocks:
                e = steps[: stop - start]
                middle = cum[window + start : window + stop]
                np.add(middle, middle, out=e)  # 2.0 * middle, exactly, by a quicker loop
                np.subtract(cum[2 * window + start : 2 * window + stop], e, out=e)
                np.add(e, cum[start:stop], out=e)
                e /= window
                d = diff[: stop - start]
                if fortran:
                    d[...] = e
                out[2 * window - 1 + start : 2 * window - 1 + stop] = np.einsum("ij,ij->i", d, d)

        threads = None if n >= 2 * STATISTIC_BLOCK_ROWS else 1  # small inputs: the caller's
        columns = [slice(c[0], c[-1] + 1) for c in split(range(width), threads)]
        run_all([functools.partial(running_sum, c) for c in columns])
        runs = split(_statistic_blocks(n + 1 - 2 * window), threads)
        run_all([functools.partial(differences, r) for r in runs])
    return out


STATISTIC_BLOCK_ROWS = 4_096
"""Rows per block of the statistic's element-wise steps (1 MB at 30 sensors)."""


def _statistic_blocks(rows: int) -> list[tuple[int, int]]:
    """``(start, stop)`` blocks of :data:`STATISTIC_BLOCK_ROWS` rows; a single leftover
    row joins the block before it (numpy may sum a lone row in another order)."""
    starts = list(range(0, rows, STATISTIC_BLOCK_ROWS))
    if len(starts) > 1 and rows - starts[-1] == 1:
        starts.pop()
    return [(a, starts[i + 1] if i + 1 < len(starts) else rows) for i, a in enumerate(starts)]


def _shift_statistic_simple(deviations: np.ndarray, window: int) -> np.ndarray:
    """:func:`shift_statistic` as whole-array expressions: the reference its bits keep."""
    n, width = deviations.shape
    out = np.full(n, np.nan)
    if n < 2 * window:
        return out
    cum = np.empty((n + 1, width))
    cum[0] = 0.0
    np.cumsum(deviations, axis=0, out=cum[1:])
    diff = cum[2 * window :] - 2.0 * cum[window:-window] + cum[: -2 * window]
    diff /= window
    out[2 * window - 1 :] = np.einsum("ij,ij->i", diff, diff)
    return out


def fit_limit(runs: Iterable[np.ndarray], config: ChangeConfig) -> float | None:
    """The test's limit from training deviations: a quantile of the statistic over
    *runs* (each a stretch of consecutive normal rows) times the margin; None when fewer
    than 10 window pairs fit in them."""
    values = []
    for run in runs:
        stat = shift_statistic(np.asarray(run, dtype=float), config.window_rows)
        values.append(stat[~np.isnan(stat)])
    pooled = np.concatenate(values) if values else np.empty(0)
    if len(pooled) < 10:
        return None
    return max(float(np.quantile(pooled, config.quantile)) * config.margin, 1e-12)


class ChangeDetector:
    def __init__(self, limit: float, config: ChangeConfig = ChangeConfig()) -> None:
        self.limit = float(limit)
        self.config = config

    @classmethod
    def fit(cls, deviations: np.ndarray, config: ChangeConfig = ChangeConfig()) -> ChangeDetector:
        """Set the limit on training rows' *deviations* (rows that are all normal)."""
        limit = fit_limit([deviations], config)
        if limit is None:
            raise UserError(
                f"change detection: {len(deviations)} training rows; need at least "
                f"{2 * config.window_rows + 9} for a {config.window_rows}-row window"
            )
        return cls(limit, config)

    def run(self, deviations: np.ndarray, state: ChangeState | None = None) -> ChangeResult:
        """Follow the series on from *state* (pieces give the same result as one call)."""
        if state is None:
            state = ChangeState(debouncer=Debouncer(self.config.hold_rows))
        deviations = np.asarray(deviations)
        n = len(deviations)
        past = state.tail if state.tail is not None else np.empty((0, deviations.shape[1]))
        if not len(past):
            return self._run(deviations, deviations, 0, state)
        # the last call's rows before this call's (C-ordered, as np.vstack lays them out):
        # a scratch buffer, not a new full-size copy per call
        shape = (len(past) + n, deviations.shape[1])
        dtype = np.result_type(past, deviations)
        with lease(shape, dtype=dtype) as extended:
            extended[: len(past)], extended[len(past) :] = past, deviations
            return self._run(extended, deviations, len(past), state)

    def _run(
        self, extended: np.ndarray, deviations: np.ndarray, past: int, state: ChangeState
    ) -> ChangeResult:
        """:meth:`run` over *extended*: *past* rows of the state's tail, then *deviations*."""
        k, n = self.config.window_rows, len(deviations)
        stat = shift_statistic(extended, k)[past:]
        stat /= self.limit
        np.nan_to_num(stat, copy=False, nan=0.0)
        before = state.debouncer.active
        moving = state.debouncer.run(stat > 1.0)
        changepoint = np.zeros(n, dtype=np.int8)
        if n:
            flips = np.diff(np.concatenate([[before], moving]).astype(np.int8)) != 0
            changepoint[flips] = 1
        # a copy: the deviations may be a scratch buffer that the next call overwrites
        state.tail = extended[-(2 * k - 1) :].copy() if k > 1 else extended[:0].copy()
        state.seen += n
        return ChangeResult(stat, moving, changepoint, state)
