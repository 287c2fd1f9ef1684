"""Alarm episodes: when an alarm is raised, how long it is held, and when it ends.

The model measures how far each row is from the normal operating point it learnt in
training; an alarm on "above threshold" alone never clears once the plant has moved to
another operating point. After a fault that is what real plants often do: a valve is
re-set, water has been added to the loop, a temperature relaxes for an hour. Measured on
SKAB files the model was not tuned on, 89 % of the false-alarm rows came after the fault
had ended, most of them from alarms that held to the end of the file.

The tracker follows one series row by row (causal, resumable with :class:`EpisodeState`):

* **normal**: an alarm is raised after ``raise_rows`` consecutive rows above threshold,
  or sooner for a larger excursion (inverse time, as a protection relay trips): with
  ``trip_ratio``, ``trip_rows`` consecutive rows whose squared distance is at least
  ``trip_ratio`` times the threshold raise it at once, and on the ``inverse``
  ``trip_curve`` a run whose summed excess over the threshold reaches what those rows
  would sum raises it too. Until it has been up for
  ``raise_rows`` rows, a trip is withdrawn at its first row back within the threshold: a
  glitch of one or two wild readings shows as that many anomalous rows, not as an alarm
  held for ``clear_rows`` rows, long enough for a detector model's count to confirm it.
  A marginal excursion still needs the full count, so the debounce against noise is unchanged where it matters;
* **alarm**: it is cleared after ``clear_rows`` consecutive rows at or below threshold (the
  plant is back). Or the *fault has ended*, in one of two ways:

  - *it came back*: the plant's level (the mean deviation of the last ``end_rows`` rows)
    has come back from the episode's furthest level, towards where it left normal
    operation, by at least ``end_back`` of that displacement, and has stayed so for
    ``end_rows`` rows;
  - *it turned* (``turn_cos``): once the alarm has been up for ``turn_lookback`` rows,
    the plant made a second move (the change detector's *moving* flags,
    :mod:`cloud.inference.changes`) at least ``turn_size`` as large as the displacement
    it started from, in a direction that does not continue the fault (cosine with it at
    most ``turn_cos``), and has been still for ``turn_still`` rows since. Someone acted
    on the plant: a repair, a re-set valve, a changed speed;

  either way the cause of the excursion has gone although the plant has not returned, so
  the episode ends and that level becomes a normal operating point;
* **quiet** (``fast_rows``, off by default): the model's moving mean remembers a fault
  for its whole window after the plant is back, and the clear needs ``clear_rows`` more.
  An alarm is reported off while the mean of the last ``fast_rows`` rows has been within
  the threshold for ``fast_clear_rows`` rows and the moving mean is coming down; the
  episode itself goes on, so it still ends by the rules above and is reported again at
  once if the short mean leaves the threshold;
* **settling**: for ``settle_rows`` rows after a fault ended, the new operating point
  follows the plant (a transition still under way), then it is fixed. With
  ``clear_settle_rows``, a cleared alarm settles too: for that many rows the newest
  normal point follows the plant wherever it comes to rest, as long as that is not back
  towards the fault (at most ``settle_guard`` of the episode's displacement), and a new
  alarm may be raised meanwhile. A plant that returns from a fault a little past where
  it started is then not a new fault.

The normal set is the training operating point plus the segments from it to each accepted
operating point, so a plant anywhere between the old and the new point (a temperature
relaxing back) is normal too. Only a move *back* or a *turn* is ever accepted: a fault
that grows or holds its level never becomes normal, which is the guard against learning
the fault.

Everything is measured in the model's whitened coordinates (``Phi^(1/2) z``, see
:meth:`cloud.inference.model.Model.deviations`): a squared length of 1 is the threshold.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from cloud.inference.changes import ChangeConfig
from cloud.inference.scratch import fresh, layout
from edge.errors import ConfigError

NORMAL, ALARM, SETTLING = "normal", "alarm", "settling"
TRIP_CURVES = ("step", "inverse")


@dataclass(frozen=True)
class EpisodeConfig:
    raise_rows: int = 12
    """Consecutive rows above threshold that raise an alarm."""
    clear_rows: int = 12
    """Consecutive rows at or below threshold that clear it."""
    end_back: float | None = None
    """Share of the episode's displacement the plant must come back by for the fault to
    count as ended at a new operating point; None: an alarm only clears by returning."""
    end_rows: int = 30
    """Rows in the level mean, and rows the move back must hold."""
    end_back_min: float = 0.0
    """Least distance the level must come back by, in whitened units (1: the threshold's
    radius), whatever share of the displacement that is. A weak fault's level wanders
    near the threshold by more than ``end_back`` of its small displacement, and the move
    back would accept the fault as a normal point; 0: the share alone decides."""
    settle_rows: int = 60
    """Rows after a fault ended during which the new operating point follows the plant."""
    max_points: int = 4
    """Accepted operating points kept per mode (the oldest goes first)."""
    clear_settle_rows: int = 0
    """Rows after a clear during which the newest normal point follows the plant where
    it comes to rest; 0: a clear accepts nothing."""
    settle_guard: float = 0.3
    """How far back towards the fault (share of the episode's displacement) a point that
    settles after a clear may sit."""
    turn_cos: float | None = None
    """A move in an alarm whose direction has at most this cosine with the fault's
    displacement ends the fault; None: moves end nothing."""
    turn_size: float = 0.5
    """...if its squared length is at least this share of the displacement's."""
    turn_still: int = 10
    """...once the plant has been still for this many rows after it."""
    turn_lookback: int = 20
    """Rows between the level a move is measured from and its detected start (the change
    detector's window); also the rows an alarm must be up before a move counts."""
    trip_ratio: float | None = None
    """Squared distance, in thresholds, from which an excursion is gross: ``trip_rows``
    such rows in a row raise the alarm before ``raise_rows``; None: only the count
    raises."""
    trip_rows: int = 2
    """Consecutive gross rows that raise the alarm at once."""
    trip_curve: str = "step"
    """How the raise shortens with the excursion's size. ``step``: ``trip_rows`` rows in a
    row at or above ``trip_ratio``, a single step below which only the count raises.
    ``inverse``: a protection relay's inverse-time curve: a run of rows above threshold
    raises once its summed excess over the threshold (squared distance less 1, row by row)
    reaches ``trip_rows * (trip_ratio - 1)``. A row at ``trip_ratio`` still trips in
    ``trip_rows`` rows; one just under it takes one row more instead of falling back to the
    full count, so how soon a fault raises does not jump at one score."""
    fast_rows: int = 0
    """Rows in the short mean the quiet rule reads: an alarm goes quiet (reported off,
    while its episode goes on) once the mean of the last ``fast_rows`` rows, rather
    than the model's longer moving mean that remembers the fault for its whole window,
    has been within the threshold for ``fast_clear_rows`` rows; 0: off."""
    fast_clear_rows: int = 5
    """...rows the short mean must stay within the threshold."""
    fast_level: float = 1.0
    """...the squared distance (threshold units, widened as for the moving mean's
    warm-up) the short mean must stay within."""
    fast_drop: float = 1.0
    """...while the moving mean's squared distance is at most this share of its largest
    in the episode (on its way back, not holding a weak fault whose short mean is lost
    in noise)."""

    def __post_init__(self) -> None:
        for name in (
            "raise_rows",
            "clear_rows",
            "end_rows",
            "max_points",
            "turn_still",
            "turn_lookback",
            "trip_rows",
            "fast_clear_rows",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} {getattr(self, name)}: expected a whole number >= 1")
        for name in ("settle_rows", "clear_settle_rows", "fast_rows"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} {getattr(self, name)}: expected >= 0")
        if self.end_back is not None and not 0 < self.end_back <= 1:
            raise ConfigError(f"end_back {self.end_back}: expected in (0, 1] or None")
        if not 0 <= self.end_back_min < float("inf"):
            raise ConfigError(f"end_back_min {self.end_back_min}: expected a number >= 0")
        if self.turn_cos is not None and not -1 <= self.turn_cos <= 1:
            raise ConfigError(f"turn_cos {self.turn_cos}: expected in [-1, 1] or None")
        if self.turn_size <= 0:
            raise ConfigError(f"turn_size {self.turn_size}: expected > 0")
        if self.settle_guard < 0:
            raise ConfigError(f"settle_guard {self.settle_guard}: expected >= 0")
        if self.trip_ratio is not None and not self.trip_ratio > 1:
            raise ConfigError(f"trip_ratio {self.trip_ratio}: expected > 1 or None")
        if self.trip_curve not in TRIP_CURVES:
            raise ConfigError(
                f"trip_curve {self.trip_curve!r}: expected one of {', '.join(TRIP_CURVES)}"
            )
        if not 0 < self.fast_drop <= 1:
            raise ConfigError(f"fast_drop {self.fast_drop}: expected in (0, 1]")
        if self.fast_level <= 0:
            raise ConfigError(f"fast_level {self.fast_level}: expected > 0")


@dataclass(frozen=True)
class AlarmConfig:
    """The alarm rules a model runs with: episodes over its deviations, and the change
    test whose moves they use. Stored with the model, so every runtime applies the same
    rules (the scheduler, streaming, ``bench skab``)."""

    episodes: EpisodeConfig = field(default_factory=EpisodeConfig)
    changes: ChangeConfig = field(default_factory=ChangeConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"episodes": asdict(self.episodes), "changes": asdict(self.changes)}

    @classmethod
    def from_dict(cls, doc: Any, where: str = "alarm") -> AlarmConfig:
        """From :meth:`to_dict`'s shape; unknown or missing keys are a one-line error."""
        if not isinstance(doc, dict) or set(doc) - {"episodes", "changes"}:
            raise ConfigError(f"{where}: expected an object with 'episodes' and 'changes'")
        parts: dict[str, Any] = {}
        for key, kind in (("episodes", EpisodeConfig), ("changes", ChangeConfig)):
            given = doc.get(key, {})
            known = {f.name for f in fields(kind)}
            if not isinstance(given, dict) or set(given) - known:
                extra = sorted(set(given) - known) if isinstance(given, dict) else [key]
                raise ConfigError(f"{where}.{key}: unknown setting {extra[0]!r}")
            try:
                parts[key] = kind(**given)
            except TypeError as exc:
                raise ConfigError(f"{where}.{key}: {exc}") from None
        return cls(**parts)


DEFAULT_ALARM = AlarmConfig(
    EpisodeConfig(
        raise_rows=12,
        clear_rows=24,
        end_back=0.3,
        end_rows=20,
        settle_rows=60,
        clear_settle_rows=100,
        turn_cos=0.0,
        turn_size=0.5,
        turn_still=10,
        turn_lookback=20,
        trip_ratio=3.0,
        trip_rows=1,
        trip_curve="inverse",
    ),
    ChangeConfig(window_rows=20, quantile=0.999, margin=2.0, hold_rows=3),
)
"""The rules a model trains with unless told otherwise: chosen by ``plantwatch bench skab
--cv`` (``docs/model.md``). Counts are rows, so they were chosen for SKAB's 1 Hz data."""


@dataclass
class EpisodeState:
    """What the next call needs to continue the same series."""

    phase: str = NORMAL
    streak: int = 0
    gross: int = 0
    """Consecutive rows at or above ``trip_ratio`` (counted while an alarm may be raised)."""
    excess: float = 0.0
    """The current run's summed excess over the threshold (the ``inverse`` trip curve)."""
    tripped: bool = False
    """The alarm was raised by the trip and has not yet been up for ``raise_rows`` rows: it
    is withdrawn at its first row back within the threshold."""
    back: int = 0
    settle_left: int = 0
    points: dict[int, list[np.ndarray]] = field(default_factory=dict)
    """Accepted operating points per mode, as whitened deviations from the mode's mean."""
    far_level: np.ndarray | None = None
    far_base: np.ndarray | None = None
    far_sq: float = 0.0
    far_mode: int = -1
    recent: deque[np.ndarray] = field(default_factory=deque)
    """The last ``end_rows`` deviations, for the level mean."""
    recent_sum: np.ndarray | None = None
    same_mode_rows: int = 0
    """How many rows in a row have had the current row's mode."""
    last_mode: int = -1
    settle_mode: int = -1
    """The mode whose newest point follows the plant while settling."""
    settle_guarded: bool = False
    """Settling after a clear: the point only follows where it is not back at the fault,
    and alarms may be raised."""
    settle_point: bool = False
    """Whether the settling point has been added to the normal set yet."""
    displacement: np.ndarray | None = None
    """The last episode's furthest displacement (from ``far_base``), for the guard."""
    alarm_rows: int = 0
    """Rows since the alarm was raised."""
    levels: deque[np.ndarray | None] = field(default_factory=deque)
    """The level of each of the last ``turn_lookback`` rows (None where it had none)."""
    was_moving: bool = False
    still_rows: int = 0
    """Rows since the change detector last said the plant was moving."""
    move_from: np.ndarray | None = None
    """The level a move in the current alarm started from."""
    move_mode: int = -1
    fast_streak: int = 0
    """Rows in a row the short mean has been within the threshold in this alarm."""
    fast_peak: float = 0.0
    """The largest squared distance of the moving mean in this alarm."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (arrays as lists), for a state store."""
        return {
            "phase": self.phase,
            "streak": self.streak,
            "gross": self.gross,
            "excess": self.excess,
            "tripped": self.tripped,
            "back": self.back,
            "settle_left": self.settle_left,
            "points": {str(m): [p.tolist() for p in ps] for m, ps in self.points.items()},
            "far_level": _listed(self.far_level),
            "far_base": _listed(self.far_base),
            "far_sq": self.far_sq,
            "far_mode": self.far_mode,
            "recent": [r.tolist() for r in self.recent],
            "recent_sum": _listed(self.recent_sum),
            "same_mode_rows": self.same_mode_rows,
            "last_mode": self.last_mode,
            "settle_mode": self.settle_mode,
            "settle_guarded": self.settle_guarded,
            "settle_point": self.settle_point,
            "displacement": _listed(self.displacement),
            "alarm_rows": self.alarm_rows,
            "levels": [_listed(v) for v in self.levels],
            "was_moving": self.was_moving,
            "still_rows": self.still_rows,
            "move_from": _listed(self.move_from),
            "move_mode": self.move_mode,
            "fast_streak": self.fast_streak,
            "fast_peak": self.fast_peak,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> EpisodeState:
        arrays = ("far_level", "far_base", "recent_sum", "displacement", "move_from")
        values = {k: v for k, v in doc.items() if k in {f.name for f in fields(cls)}}
        for key in arrays:
            values[key] = _array(values.get(key))
        values["points"] = {
            int(m): [np.asarray(p, dtype=float) for p in ps]
            for m, ps in values.get("points", {}).items()
        }
        values["recent"] = deque(np.asarray(r, dtype=float) for r in values.get("recent", []))
        values["levels"] = deque(_array(v) for v in values.get("levels", []))
        return cls(**values)


def _listed(value: np.ndarray | None) -> list[float] | None:
    return None if value is None else np.asarray(value, dtype=float).tolist()


def _array(value: Any) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=float)


@dataclass
class EpisodeResult:
    alarm: np.ndarray
    """Alarm state after each row (bool)."""
    ratio: np.ndarray
    """Squared distance to the normal set over the threshold: > 1 is abnormal."""
    residual: np.ndarray
    """Each row's deviation from the nearest normal point (its squares are the
    per-sensor contributions)."""
    ended: np.ndarray
    """Rows where a fault was judged to have ended at a new operating point."""
    state: EpisodeState


FIRST_STRETCH, STRETCH_ROWS = 64, 16_384
"""Rows of normal operation handled in one go: few just after an alarm (another may come
soon), more while the plant stays normal, never more than the second (bounds the
temporaries)."""


def distances(w: np.ndarray, points: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each row of *w* (rows x sensors) less its nearest point of the normal set (origin
    plus segments to *points*), and that residual's squared length. Element-wise sums only,
    so a row gets the same bits alone or among many (the row-by-row rules and a stretch of
    normal rows must agree exactly)."""
    best = np.array(w, dtype=float)
    best_sq = (best * best).sum(1)
    for u in points:
        uu = float((u * u).sum())
        if uu <= 0.0:
            continue
        along = np.clip((w * u).sum(1) / uu, 0.0, 1.0)
        d = w - along[:, None] * u
        dd = (d * d).sum(1)
        closer = dd < best_sq
        best[closer], best_sq[closer] = d[closer], dd[closer]
    return best, best_sq


def _runs(flags: np.ndarray, carried: int) -> np.ndarray:
    """Length of the run of true *flags* ending at each row (*carried* true rows before)."""
    n = len(flags)
    count = np.arange(1, n + 1)
    reset = np.where(~flags, count, 0)
    np.maximum.accumulate(reset, out=reset)
    runs = count - reset
    if n:
        before = reset == 0
        runs[before] += carried
    return runs


def _run_sums(values: np.ndarray, flags: np.ndarray, carried: float) -> np.ndarray:
    """Sum of *values* over the run of true *flags* ending at each row (0 where a flag is
    false; *carried* before the first row), added one row after another as the row-by-row
    rules add them, so both give the same bits. Runs are few in normal operation."""
    sums = np.zeros(len(values))
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags.view(np.int8), [0]))))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        head = carried if start == 0 else 0.0
        sums[start:stop] = np.add.accumulate(np.concatenate(([head], values[start:stop])))[1:]
    return sums


def _same_mode_rows(modes: np.ndarray, last: int, carried: int) -> np.ndarray:
    """How many rows in a row have had each row's mode (*carried* rows of *last* before)."""
    n = len(modes)
    count = np.arange(1, n + 1)
    changed = np.concatenate([[modes[0] != last], modes[1:] != modes[:-1]]) if n else modes
    start = np.where(changed, count, 0)
    np.maximum.accumulate(start, out=start)
    same = count - start + 1
    if n:
        same[start == 0] = carried + count[start == 0]
    return same


def _present(modes: np.ndarray) -> np.ndarray:
    """``np.unique(modes)``: operating modes, small whole numbers, are counted rather than
    hashed (numpy's hash of 16,384 rows took 0.4 ms, a twentieth of that counted)."""
    if len(modes) and modes.min() >= 0 and modes.max() < 1_024:
        return np.flatnonzero(np.bincount(modes))
    return np.unique(modes)


def _mean_of(rows: list[np.ndarray], count: int) -> np.ndarray:
    return np.sum(np.stack(rows), axis=0) / count


def nearest_point(w: np.ndarray, points: list[np.ndarray]) -> np.ndarray:
    """The point of the normal set (origin plus segments to *points*) nearest to *w*."""
    best = np.zeros_like(w)
    best_sq = float(w @ w)
    for u in points:
        uu = float(u @ u)
        if uu <= 0.0:
            continue
        q = min(max(float(w @ u) / uu, 0.0), 1.0) * u
        d = w - q
        dd = float(d @ d)
        if dd < best_sq:
            best, best_sq = q, dd
    return best


class EpisodeTracker:
    """Runs the episode rules over whitened deviations (see the module docstring)."""

    def __init__(self, config: EpisodeConfig = EpisodeConfig()) -> None:
        self.config = config

    def run(
        self,
        deviations: np.ndarray,
        modes: np.ndarray,
        off: np.ndarray | None = None,
        state: EpisodeState | None = None,
        moving: np.ndarray | None = None,
        fast: np.ndarray | None = None,
        residual: np.ndarray | None = None,
    ) -> EpisodeResult:
        """Track *deviations* (rows x sensors, whitened so that 1 is the threshold) with
        each row's operating *modes*; rows where *off* is true (machine off) hold the
        state and never alarm. *moving* (the change detector's flags) feeds the turn
        rule; without it no move is ever seen. *fast* (the same deviations from a mean of
        ``fast_rows`` rows, see :meth:`cloud.inference.monitor.Monitor`) feeds the quiet
        rule; it is read only in alarm rows, so it may be None where no alarm can be up
        (:meth:`may_need_fast`). *residual* (float, the shape of *deviations*), when
        given, takes the residuals instead of an array from the scratch pool."""
        cfg = self.config
        state = state if state is not None else EpisodeState()
        n = len(deviations)
        off = np.zeros(n, dtype=bool) if off is None else np.asarray(off, dtype=bool)
        moves = np.zeros(n, dtype=bool) if moving is None else np.asarray(moving, dtype=bool)
        alarm = np.zeros(n, dtype=bool)
        # the full-size results from the scratch pool (a year of one-minute rows: 126 MB of
        # residuals, faulted in and zeroed afresh on every call as new arrays); every row
        # that is on is written below, so only the machine-off rows need their zeros
        ratio = fresh((n,))
        if residual is None:
            residual = fresh(deviations.shape, order=layout(deviations))
        ratio[off] = 0.0
        residual[off] = 0.0
        ended = np.zeros(n, dtype=bool)
        t, size, due = 0, FIRST_STRETCH, False
        while t < n:
            if state.phase == NORMAL and not due:
                taken, due = self._normal_stretch(
                    state, t, size, deviations, modes, off, moves, ratio, residual
                )
                t += taken
                size = FIRST_STRETCH if due else min(4 * size, STRETCH_ROWS)
                continue
            due = False
            if off[t]:
                t += 1
                continue
            w, mode = deviations[t], int(modes[t])
            points = state.points.setdefault(mode, [])
            d, sq = distances(w[None, :], points)
            residual[t] = d[0]
            r = float(sq[0])
            ratio[t] = r
            self._remember(state, mode, w)
            level = self._level(state, mode)
            if state.phase == ALARM:
                state.alarm_rows += 1
            self._watch_moves(state, mode, level, bool(moves[t]))
            quiet = False
            if state.phase == SETTLING:
                self._settle(state, mode, level, r)
            elif state.phase == NORMAL:
                if self._counted(state, r):
                    self._open(state, tripped=state.streak < cfg.raise_rows)
            elif state.tripped and r <= 1.0:
                state.phase, state.streak, state.gross, state.tripped = NORMAL, 0, 0, False
                state.excess = 0.0
            else:
                state.tripped = state.tripped and state.alarm_rows < cfg.raise_rows
                state.streak = state.streak + 1 if r <= 1.0 else 0
                back = self._retreat(state, mode, points, level)
                quiet = self._quiet(state, points, fast, t, r)
                if state.streak >= cfg.clear_rows:
                    self._cleared(state, mode)
                elif back or self._turned(state, mode, points, level):
                    assert level is not None
                    state.displacement = self._displacement(state)
                    points.append(level)
                    del points[: -cfg.max_points]
                    ended[t] = True
                    state.phase, state.streak, state.back, state.gross = SETTLING, 0, 0, 0
                    state.excess = 0.0
                    state.tripped = False
                    state.settle_left, state.settle_mode = cfg.settle_rows, mode
                    state.settle_guarded, state.settle_point = False, True
                    if cfg.settle_rows == 0:
                        state.phase = NORMAL
            alarm[t] = state.phase == ALARM and not quiet
            t += 1
        return EpisodeResult(alarm, ratio, residual, ended, state)

    def _normal_stretch(
        self,
        state: EpisodeState,
        start: int,
        size: int,
        deviations: np.ndarray,
        modes: np.ndarray,
        off: np.ndarray,
        moves: np.ndarray,
        ratio: np.ndarray,
        residual: np.ndarray,
    ) -> tuple[int, bool]:
        """Up to *size* rows from *start* that stay normal, all at once (most rows of a
        healthy plant): their distances, and the state as the row-by-row rules would leave
        it. Returns how many rows were taken, and whether the next one raises an alarm
        (the row-by-row rules take that one)."""
        cfg = self.config
        stop = min(len(deviations), start + size)
        idx = start + np.flatnonzero(~off[start:stop])
        if not len(idx):
            return stop - start, False
        unbroken = len(idx) == stop - start  # no machine-off row: a slice, not a gather
        # the rows C-ordered, as a gather gives them (row sums then add in that order)
        w = np.ascontiguousarray(deviations[start:stop], dtype=float) if unbroken else None
        if w is None:
            w = np.asarray(deviations[idx], dtype=float)
        m = np.asarray(modes[idx], dtype=int)
        # rows of a mode without accepted points are their own residuals: the squared
        # lengths of all rows at once (row by row the same sums as :func:`distances`'), and
        # the distances only for the modes that have points
        d, sq = w, np.add.reduce(w * w, axis=1)
        for mode in _present(m):
            points = state.points.get(int(mode), [])
            if not any(float((u * u).sum()) > 0.0 for u in points):
                continue
            if d is w:  # w may be a view of the caller's deviations
                d = np.array(w)
            rows = m == mode
            d[rows], sq[rows] = distances(w[rows], points)
        run = _runs(sq > 1.0, state.streak)
        due = run >= cfg.raise_rows
        if cfg.trip_ratio is not None and cfg.trip_curve == "inverse":
            excess = _run_sums(sq - 1.0, sq > 1.0, state.excess)
            due |= excess >= cfg.trip_rows * (cfg.trip_ratio - 1.0)
        elif cfg.trip_ratio is not None:
            gross = _runs(sq >= cfg.trip_ratio, state.gross)
            due |= gross >= cfg.trip_rows
        raised = np.flatnonzero(due)
        take = int(raised[0]) if len(raised) else len(idx)
        taken = int(idx[take]) - start if len(raised) else stop - start
        if take == 0:
            return taken, True
        rows, w, m = idx[:take], w[:take], m[:take]
        if unbroken:  # rows that are their own residuals come from the caller's layout
            kept = deviations[start : start + take] if d is w else d[:take]
            ratio[start : start + take], residual[start : start + take] = sq[:take], kept
        else:
            ratio[rows], residual[rows] = sq[:take], d[:take]
        state.streak = int(run[take - 1])
        if cfg.trip_ratio is not None and cfg.trip_curve == "inverse":
            state.excess = float(excess[take - 1])
        elif cfg.trip_ratio is not None:
            state.gross = int(gross[take - 1])
        for mode in _present(m):
            state.points.setdefault(int(mode), [])
        same = _same_mode_rows(m, state.last_mode, state.same_mode_rows)
        keep = cfg.end_rows + (cfg.turn_lookback if cfg.turn_cos is not None else 0)
        # rows of their own: the state outlives the deviations (often a scratch buffer)
        history = list(state.recent)[-keep:] + list(np.array(w[-keep:]))
        if cfg.turn_cos is not None:
            for j in range(max(0, take - cfg.turn_lookback), take):
                back = take - 1 - j  # rows after j in this stretch
                end = len(history) - back
                window = history[max(0, end - cfg.end_rows) : end]
                full = same[j] >= cfg.end_rows and len(window) == cfg.end_rows
                state.levels.append(_mean_of(window, cfg.end_rows) if full else None)
                if len(state.levels) > cfg.turn_lookback:
                    state.levels.popleft()
            flags = moves[rows]
            starts = np.flatnonzero(flags & ~np.concatenate([[state.was_moving], flags[:-1]]))
            if len(starts):  # a move that starts in normal operation counts for nothing
                state.move_from, state.move_mode = None, int(m[starts[-1]])
            moved = np.flatnonzero(flags)
            state.still_rows = take - 1 - int(moved[-1]) if len(moved) else state.still_rows + take
            state.was_moving = bool(flags[-1])
        state.recent = deque(history[-cfg.end_rows :])
        state.recent_sum = np.sum(np.stack(state.recent), axis=0)
        state.same_mode_rows, state.last_mode = int(same[-1]), int(m[-1])
        return taken, bool(len(raised))

    def _counted(self, state: EpisodeState, r: float) -> bool:
        """Count one row towards a raise; whether it raises (the full count of rows above
        threshold, or the shorter one of gross rows, or the run's summed excess)."""
        cfg = self.config
        state.streak = state.streak + 1 if r > 1.0 else 0
        if cfg.trip_ratio is not None and cfg.trip_curve == "inverse":
            state.excess = state.excess + (r - 1.0) if r > 1.0 else 0.0
            budget = cfg.trip_rows * (cfg.trip_ratio - 1.0)
            return state.streak >= cfg.raise_rows or state.excess >= budget
        if cfg.trip_ratio is not None:
            state.gross = state.gross + 1 if r >= cfg.trip_ratio else 0
        return state.streak >= cfg.raise_rows or state.gross >= cfg.trip_rows

    def may_need_fast(self, state: EpisodeState | None, ratio_bound: np.ndarray) -> bool:
        """Whether :meth:`run` may read *fast* for rows whose squared distances to the
        origin are *ratio_bound* (an upper bound of their distances to the normal set):
        only if the quiet rule is on and an alarm is up or a row may raise one."""
        if self.config.fast_rows == 0:
            return False
        if state is not None and state.phase != NORMAL:
            return True
        return bool((ratio_bound > 1.0).any())

    @staticmethod
    def _fast_sq(w: np.ndarray, points: list[np.ndarray]) -> float:
        return float(distances(w[None, :], points)[1][0])

    def _quiet(
        self,
        state: EpisodeState,
        points: list[np.ndarray],
        fast: np.ndarray | None,
        t: int,
        r: float,
    ) -> bool:
        """Whether the alarm is quiet: the short mean has been within the threshold for
        ``fast_clear_rows`` rows while the moving mean came down from its peak. The plant
        is back although the moving mean still holds the fault's rows; the episode goes
        on (a plant that comes to rest elsewhere is still accepted there, and one whose
        short mean leaves the threshold again is alarmed at once, with no new raise)."""
        cfg = self.config
        if cfg.fast_rows == 0 or fast is None:
            return False
        state.fast_peak = max(state.fast_peak, r)
        within = r <= cfg.fast_drop * state.fast_peak
        within = within and self._fast_sq(fast[t], points) <= cfg.fast_level
        state.fast_streak = state.fast_streak + 1 if within else 0
        return state.fast_streak >= cfg.fast_clear_rows

    @staticmethod
    def _open(state: EpisodeState, *, tripped: bool) -> None:
        state.phase, state.streak, state.back, state.gross = ALARM, 0, 0, 0
        state.excess = 0.0
        state.tripped = tripped
        state.fast_streak, state.fast_peak = 0, 0.0
        state.far_level, state.far_base, state.far_sq, state.far_mode = None, None, 0.0, -1
        # a move that began in an earlier alarm still counts when it ends in this one: the
        # plant that overshot its old point on the way back from a fault and alarmed
        # again has turned away from that fault
        state.alarm_rows = 0

    @staticmethod
    def _displacement(state: EpisodeState) -> np.ndarray | None:
        if state.far_level is None or state.far_base is None:
            return None
        return state.far_level - state.far_base

    def _cleared(self, state: EpisodeState, mode: int) -> None:
        """Back within the threshold: normal again, or settling where the plant rests."""
        state.phase, state.streak, state.gross, state.excess = NORMAL, 0, 0, 0.0
        displacement = self._displacement(state)
        if self.config.clear_settle_rows > 0 and displacement is not None:
            state.phase, state.settle_left = SETTLING, self.config.clear_settle_rows
            state.settle_mode, state.settle_guarded, state.settle_point = mode, True, False
            state.displacement = displacement

    def _settle(self, state: EpisodeState, mode: int, level: np.ndarray | None, r: float) -> None:
        """One settling row: the newest point follows the plant's level (after a clear,
        only where that is not back towards the fault), and after a clear an alarm may be
        raised as in normal operation."""
        cfg = self.config
        follow = level is not None and mode == state.settle_mode
        if follow and state.settle_guarded and state.displacement is not None:
            assert level is not None and state.far_base is not None
            size = float(state.displacement @ state.displacement)
            towards = float((level - state.far_base) @ state.displacement) / size if size else 0
            follow = towards <= cfg.settle_guard
        if follow:
            assert level is not None
            points = state.points.setdefault(state.settle_mode, [])
            if state.settle_point and points:
                points[-1] = level
            else:
                points.append(level)
                del points[: -cfg.max_points]
                state.settle_point = True
        state.settle_left -= 1
        if state.settle_left <= 0:
            state.phase, state.streak, state.gross, state.excess = NORMAL, 0, 0, 0.0
        elif state.settle_guarded and self._counted(state, r):
            self._open(state, tripped=state.streak < self.config.raise_rows)

    def _remember(self, state: EpisodeState, mode: int, w: np.ndarray) -> None:
        state.same_mode_rows = state.same_mode_rows + 1 if mode == state.last_mode else 1
        state.last_mode = mode
        state.recent.append(w.copy())  # not a view: the deviations may be a scratch buffer
        if len(state.recent) > self.config.end_rows:
            state.recent.popleft()
        # summed afresh, oldest first, as a stretch of normal rows sums it: the same bits
        state.recent_sum = np.sum(np.stack(state.recent), axis=0)

    def _level(self, state: EpisodeState, mode: int) -> np.ndarray | None:
        """Mean deviation of the last ``end_rows`` rows, if they all share *mode*."""
        rows = self.config.end_rows
        if state.same_mode_rows < rows or state.last_mode != mode or state.recent_sum is None:
            return None
        return state.recent_sum / rows

    def _watch_moves(
        self, state: EpisodeState, mode: int, level: np.ndarray | None, moving: bool
    ) -> None:
        """Keep the recent levels; note where a move in the current alarm started from."""
        cfg = self.config
        if cfg.turn_cos is None:
            return
        state.levels.append(None if level is None else level.copy())
        earlier = state.levels.popleft() if len(state.levels) > cfg.turn_lookback else None
        if moving and not state.was_moving:
            counts = state.phase == ALARM and state.alarm_rows >= cfg.turn_lookback
            # and the level it starts from is of this mode (deviations of two modes are
            # measured from two different means)
            counts = counts and state.same_mode_rows >= cfg.turn_lookback + cfg.end_rows
            state.move_from = earlier if counts else None
            state.move_mode = mode
        state.still_rows = 0 if moving else state.still_rows + 1
        state.was_moving = moving

    def _turned(
        self,
        state: EpisodeState,
        mode: int,
        points: list[np.ndarray],
        level: np.ndarray | None,
    ) -> bool:
        """Whether a move since the alarm was raised has turned away from the fault and
        the plant has been still for ``turn_still`` rows after it."""
        cfg = self.config
        start = state.move_from
        if (
            cfg.turn_cos is None
            or start is None
            or level is None
            or state.far_level is None
            or state.move_mode != mode
            or state.was_moving
            or state.still_rows != cfg.turn_still
        ):
            return False
        fault = start - nearest_point(start, points)
        move = level - start
        fault_sq, move_sq = float(fault @ fault), float(move @ move)
        if fault_sq <= 1.0 or move_sq < cfg.turn_size * fault_sq:
            return False
        return float(move @ fault) / np.sqrt(fault_sq * move_sq) <= cfg.turn_cos

    def _retreat(
        self,
        state: EpisodeState,
        mode: int,
        points: list[np.ndarray],
        level: np.ndarray | None,
    ) -> bool:
        """Follow the episode's furthest level; True once the plant has come back by
        ``end_back`` of that displacement, and by at least ``end_back_min``, for
        ``end_rows`` rows (counted in ``state.back``)."""
        cfg = self.config
        if level is None:
            state.back = 0
            return False
        base = nearest_point(level, points)
        gap = level - base
        gap_sq = float(gap @ gap)
        if state.far_level is None or state.far_base is None or state.far_mode != mode:
            state.far_level, state.far_base, state.far_sq, state.far_mode = (
                level,
                base,
                gap_sq,
                mode,
            )
        elif gap_sq > state.far_sq:
            state.far_level, state.far_base, state.far_sq = level, base, gap_sq
        if cfg.end_back is None:
            return False
        displacement = state.far_level - state.far_base
        size = float(displacement @ displacement)
        moved = float((level - state.far_level) @ displacement) / size if size > 0 else 0.0
        if moved < -cfg.end_back and -moved * np.sqrt(size) >= cfg.end_back_min:
            state.back += 1
            return state.back >= cfg.end_rows
        state.back = 0
        return False
