"""Alarm episodes: when an alarm is raised, how long it is held, and when it ends.

The model measures how far each row is from the normal operating point it learnt in
training; an alarm on "above threshold" alone never clears once the plant has moved to
another operating point. After a fault that is what real plants often do: a valve is
re-set, water has been added to the loop, a temperature relaxes for an hour. Measured on
SKAB files the model was not tuned on, 89 % of the false-alarm rows came after the fault
had ended, most of them from alarms that held to the end of the file.

The tracker follows one series row by row (causal, resumable with :class:`EpisodeState`):

* **normal**: an alarm is raised after ``raise_rows`` consecutive rows above threshold;
* **alarm**: it is cleared after ``clear_rows`` consecutive rows at or below threshold (the
  plant is back). Or the *fault has ended*: the plant's level (the mean deviation of the
  last ``end_rows`` rows) has come back from the episode's furthest level, towards where
  it left normal operation, by at least ``end_back`` of that displacement, and has stayed
  so for ``end_rows`` rows. The cause of the excursion has gone even though the plant has
  not returned, so the episode ends and that level becomes a normal operating point;
* **settling**: for ``settle_rows`` rows after a fault ended the new operating point
  follows the plant (a transition still under way), then it is fixed.

The normal set is the training operating point plus the segments from it to each accepted
operating point, so a plant anywhere between the old and the new point (a temperature
relaxing back) is normal too. Only a move *back* is ever accepted: a fault that grows or
holds its level never becomes normal, which is the guard against learning the fault.

Everything is measured in the model's whitened coordinates (``Phi^(1/2) z``, see
:meth:`cloud.inference.model.Model.deviations`): a squared length of 1 is the threshold.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from edge.errors import ConfigError

NORMAL, ALARM, SETTLING = "normal", "alarm", "settling"


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
    settle_rows: int = 60
    """Rows after a fault ended during which the new operating point follows the plant."""
    max_points: int = 4
    """Accepted operating points kept per mode (the oldest goes first)."""

    def __post_init__(self) -> None:
        for name in ("raise_rows", "clear_rows", "end_rows", "max_points"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} {getattr(self, name)}: expected a whole number >= 1")
        if self.settle_rows < 0:
            raise ConfigError(f"settle_rows {self.settle_rows}: expected >= 0")
        if self.end_back is not None and not 0 < self.end_back <= 1:
            raise ConfigError(f"end_back {self.end_back}: expected in (0, 1] or None")


@dataclass
class EpisodeState:
    """What the next call needs to continue the same series."""

    phase: str = NORMAL
    streak: int = 0
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
    updates: int = 0
    same_mode_rows: int = 0
    """How many rows in a row have had the current row's mode."""
    last_mode: int = -1


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
    ) -> EpisodeResult:
        """Track *deviations* (rows x sensors, whitened so that 1 is the threshold) with
        each row's operating *modes*; rows where *off* is true (machine off) hold the
        state and never alarm."""
        cfg = self.config
        state = state if state is not None else EpisodeState()
        n = len(deviations)
        off = np.zeros(n, dtype=bool) if off is None else np.asarray(off, dtype=bool)
        alarm = np.zeros(n, dtype=bool)
        ratio = np.zeros(n)
        residual = np.zeros_like(deviations, dtype=float)
        ended = np.zeros(n, dtype=bool)
        for t in range(n):
            if off[t]:
                continue
            w, mode = deviations[t], int(modes[t])
            points = state.points.setdefault(mode, [])
            d = w - nearest_point(w, points) if points else w
            residual[t] = d
            r = float(d @ d)
            ratio[t] = r
            self._remember(state, mode, w)
            if state.phase == SETTLING:
                level = self._level(state, mode)
                if level is not None and points:
                    points[-1] = level
                state.settle_left -= 1
                if state.settle_left <= 0:
                    state.phase, state.streak = NORMAL, 0
            elif state.phase == NORMAL:
                state.streak = state.streak + 1 if r > 1.0 else 0
                if state.streak >= cfg.raise_rows:
                    self._open(state)
            else:
                state.streak = state.streak + 1 if r <= 1.0 else 0
                level = self._retreat(state, mode, points)
                if state.streak >= cfg.clear_rows:
                    state.phase, state.streak = NORMAL, 0
                elif level is not None and state.back >= cfg.end_rows:
                    points.append(level)
                    del points[: -cfg.max_points]
                    ended[t] = True
                    state.phase, state.streak, state.back = SETTLING, 0, 0
                    state.settle_left = cfg.settle_rows
                    if cfg.settle_rows == 0:
                        state.phase = NORMAL
            alarm[t] = state.phase == ALARM
        return EpisodeResult(alarm, ratio, residual, ended, state)

    @staticmethod
    def _open(state: EpisodeState) -> None:
        state.phase, state.streak, state.back = ALARM, 0, 0
        state.far_level, state.far_base, state.far_sq, state.far_mode = None, None, 0.0, -1

    def _remember(self, state: EpisodeState, mode: int, w: np.ndarray) -> None:
        state.same_mode_rows = state.same_mode_rows + 1 if mode == state.last_mode else 1
        state.last_mode = mode
        state.recent.append(w)
        dropped = state.recent.popleft() if len(state.recent) > self.config.end_rows else None
        state.updates += 1
        if state.recent_sum is None or state.updates % 1024 == 0:
            state.recent_sum = np.sum(state.recent, axis=0)  # exact now and then: no creep
        elif dropped is None:
            state.recent_sum = state.recent_sum + w
        else:
            state.recent_sum = state.recent_sum + (w - dropped)

    def _level(self, state: EpisodeState, mode: int) -> np.ndarray | None:
        """Mean deviation of the last ``end_rows`` rows, if they all share *mode*."""
        rows = self.config.end_rows
        if state.same_mode_rows < rows or state.last_mode != mode or state.recent_sum is None:
            return None
        return state.recent_sum / rows

    def _retreat(
        self, state: EpisodeState, mode: int, points: list[np.ndarray]
    ) -> np.ndarray | None:
        """The plant's level if it has come back by ``end_back`` of the episode's furthest
        displacement (counting the rows in a row in ``state.back``), else None."""
        end_back = self.config.end_back
        level = self._level(state, mode) if end_back is not None else None
        if level is None:
            state.back = 0
            return None
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
        displacement = state.far_level - state.far_base
        size = float(displacement @ displacement)
        moved = float((level - state.far_level) @ displacement) / size if size > 0 else 0.0
        if moved < -end_back:
            state.back += 1
            return level
        state.back = 0
        return None
