"""The scoring stage every runtime shares: the model, then its alarm rules, per asset.

The model says how far each row is from normal; the alarm rules
(:mod:`cloud.inference.episodes`, fed by the change test of :mod:`cloud.inference.changes`)
say whether there is an alarm, which needs the series' past: an episode raised in one
upload window is still up in the next, a new operating point accepted an hour ago is
still normal. :class:`Monitor` scores rows with that past, kept in a
:class:`MonitorState` per asset: in memory for streaming, in the state store between
scheduler windows (``to_dict`` / ``from_dict``), and once for a whole file in
``plantwatch bench skab``. The three therefore run exactly the same rules.

What lands in a result line (L4E's format is kept):

* ``prediction`` is the alarm;
* ``anomaly_score`` is ``r / (1 + r)``, ``r`` the squared distance to the normal set over
  the threshold, held at 0.5 on the side of the alarm where the two disagree (an alarm
  held through a dip below the threshold scores just above 0.5, a row above the
  threshold that raises nothing yet scores 0.5), so ``prediction = 1`` exactly when
  ``anomaly_score > 0.5`` as in L4E;
* the diagnostics are each sensor's share of that distance: the squares of the row's
  deviation from the nearest normal point, adding up to 1.

Machine-off rows (the model's off condition) are left out of the series: not averaged
into the moving means, not a move of the plant, and they hold the alarm state.

A model trained without alarm rules (``TrainConfig.alarm = None``, or saved before they
existed) is scored row by row as before: ``prediction`` is ``anomaly_score > 0.5``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cloud.inference.changes import ChangeDetector, ChangeState
from cloud.inference.episodes import AlarmConfig, EpisodeState, EpisodeTracker
from cloud.inference.model import Model, ScoreResult, StreamState, kept_apart
from cloud.inference.scratch import fresh, layout, lease
from edge.errors import ConfigError

HELD_SCORE = 0.50001
"""An alarm row's lowest score: above 0.5 after rounding to L4E's 5 decimals."""


@dataclass
class MonitorState:
    """One asset's past as the next call needs it."""

    stream: StreamState | None = None
    changes: ChangeState | None = None
    episodes: EpisodeState | None = None
    through: float | None = None
    """Epoch seconds of the last row scored."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, for a state store."""
        return {
            "stream": None if self.stream is None else self.stream.to_dict(),
            "changes": None if self.changes is None else self.changes.to_dict(),
            "episodes": None if self.episodes is None else self.episodes.to_dict(),
            "through": self.through,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any], width: int) -> MonitorState:
        """*width*: the model's sensor count (an empty tail keeps its shape)."""
        stream, changes, episodes = doc.get("stream"), doc.get("changes"), doc.get("episodes")
        through = doc.get("through")
        return cls(
            None if stream is None else StreamState.from_dict(stream, width),
            None if changes is None else ChangeState.from_dict(changes),
            None if episodes is None else EpisodeState.from_dict(episodes),
            None if through is None else float(through),
        )


@dataclass
class MonitorResult:
    result: ScoreResult
    """The result lines' content: prediction (the alarm), score, diagnostics."""
    ratio: np.ndarray
    """Squared distance to the normal set over the threshold, per row."""
    moving: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """The change test's flags: the plant is moving to another level."""
    changepoint: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    """1 where a move starts or stops."""
    ended: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """Rows where a fault was judged over at a new operating point."""
    state: MonitorState = field(default_factory=MonitorState)


class Monitor:
    """Scores one asset's rows with its :class:`MonitorState` (see the module docstring).

    *alarm* replaces the model's own rules (the selection protocol tries many on one
    model); it needs the model's change limit, so it cannot add rules to a model
    trained without them.
    """

    def __init__(self, model: Model, alarm: AlarmConfig | None = None) -> None:
        self.model = model
        self.alarm = alarm if alarm is not None else model.config.alarm
        self.tracker = EpisodeTracker(self.alarm.episodes) if self.alarm is not None else None
        self.detector = (
            ChangeDetector(model.change_limit, self.alarm.changes)
            if self.alarm is not None and model.change_limit is not None
            else None
        )
        self._scale = 1.0 / np.sqrt(model.threshold)
        if self.alarm is not None and self.alarm.episodes.fast_rows > model.config.smoothing:
            raise ConfigError(
                f"fast_rows {self.alarm.episodes.fast_rows}: expected at most the model's"
                f" smoothing ({model.config.smoothing} rows)"
            )

    def _fast(
        self,
        leases: contextlib.ExitStack,
        x_on: np.ndarray,
        stream: StreamState | None,
        modes_on: np.ndarray,
        on: np.ndarray,
        everything: bool,
    ) -> np.ndarray:
        """The deviations of a mean of the last ``fast_rows`` rows (the quiet rule's input),
        from the same stream state, modes and threshold units as the model's: scratch
        buffers held by *leases*."""
        assert self.alarm is not None
        window = self.alarm.episodes.fast_rows
        y, factor, _ = leases.enter_context(self.model.leased_features(x_on, stream, window))
        fast_on, _ = leases.enter_context(self.model.leased_deviations(y, factor, modes_on))
        fast_on *= self._scale
        if everything:
            return fast_on
        fast = leases.enter_context(lease((len(on), fast_on.shape[1])))
        fast[~on] = 0.0
        fast[on] = fast_on
        return fast

    def score(self, frame: pd.DataFrame, state: MonitorState | None = None) -> MonitorResult:
        """Score *frame* (as :meth:`Model.score` takes it), continuing *state*."""
        with self.model.leased_prepare(frame) as (index, x, off, leased):
            out = self.score_arrays(index, x, off, state)
            if leased and out.state.stream is not None:  # it outlives the filled rows
                out.state.stream.tail = kept_apart(out.state.stream.tail)
            return out

    def score_blocks(self, frame: pd.DataFrame) -> Iterator[MonitorResult]:
        """Score *frame* piece by piece, each piece continuing the last (what scoring it
        at once gives, with one piece's intermediates in memory: a year of data)."""
        state: MonitorState | None = None
        for index, x, off in self.model.prepared_blocks(frame):
            out = self.score_arrays(index, x, off, state)
            state = out.state
            yield out

    # a reading whose square overflows scores its limit, 1 (see _rules): numpy's warnings
    # about that arithmetic would only reach the operator's terminal as noise
    @np.errstate(over="ignore", invalid="ignore")
    def score_arrays(
        self,
        index: pd.DatetimeIndex,
        x: np.ndarray,
        off: np.ndarray,
        state: MonitorState | None = None,
    ) -> MonitorResult:
        # the rules update their states in place; the caller's copy stays as it was until
        # it takes the new one (a result that could not be stored is scored again)
        state = copy.deepcopy(state) if state is not None else MonitorState()
        through = float(index[-1].timestamp()) if len(index) else state.through
        n = len(index)
        if self.tracker is None:
            result = self.model.score_arrays(index, x, off, state.stream)
            return MonitorResult(
                result,
                result.raw / self.model.threshold,
                np.zeros(n, dtype=bool),
                np.zeros(n, dtype=np.int8),
                np.zeros(n, dtype=bool),
                MonitorState(stream=result.state, through=through),
            )
        # machine-off rows stay out of the series: a stop is neither averaged into the
        # moving means after it nor a move of the plant
        on = ~np.asarray(off, dtype=bool)
        everything = bool(on.all())
        # the rows that are on, their features and deviations are temporaries here (the
        # results are the tracker's own arrays): scratch buffers, so that scoring window
        # after window faults no new memory in
        with contextlib.ExitStack() as leases:
            x_on = x
            if not everything:  # x[on], C-ordered as a boolean index makes it
                x_on = leases.enter_context(lease((int(on.sum()), x.shape[1]), dtype=x.dtype))
                _rows_into(x, on, x_on)
            y, factor, stream = leases.enter_context(self.model.leased_features(x_on, state.stream))
            # the residuals handed back as shares, laid out as the tracker would lay them
            # out; taken before the deviations' scratch buffers, so that a run of calls
            # whose results stay alive until the next (bench train's) has every buffer it
            # needs after the first call instead of taking one more in a later call
            residual = fresh((n, y.shape[1]), order=layout(y) if everything else "C")
            w_on, modes_on = leases.enter_context(self.model.leased_deviations(y, factor))
            if x_on is not x:  # the state outlives the buffer its tail may be a view of
                stream.tail = kept_apart(stream.tail)
            w_on *= self._scale
            w, modes = w_on, modes_on
            if not everything:  # every row's deviations, 0 where the machine is off
                w = leases.enter_context(lease((n, len(self.model.sensors))))
                modes = leases.enter_context(lease((n,), dtype=int))
                w[~on], modes[~on] = 0.0, 0
                w[on], modes[on] = w_on, modes_on
            return self._rules(
                index, x_on, off, state, stream, through, on, w_on, modes_on, w, modes, residual
            )

    def _rules(
        self,
        index: pd.DatetimeIndex,
        x_on: np.ndarray,
        off: np.ndarray,
        state: MonitorState,
        stream: StreamState,
        through: float,
        on: np.ndarray,
        w_on: np.ndarray,
        modes_on: np.ndarray,
        w: np.ndarray,
        modes: np.ndarray,
        residual: np.ndarray,
    ) -> MonitorResult:
        """The change test and the episodes over the deviations *w_on* (threshold units)
        of the rows *on* (*x_on*), *w* and *modes* those of every row (machine-off rows 0);
        none of their results or states keeps a view of any of them. *residual* takes the
        tracker's residuals (the shares)."""
        assert self.tracker is not None
        n, everything = len(index), len(w_on) == len(index)
        moving, changepoint = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int8)
        changes = state.changes
        if self.detector is not None:
            change = self.detector.run(w_on, state.changes)
            moving[on], changepoint[on], changes = change.moving, change.changepoint, change.state
        sq = np.einsum("ij,ij->i", w, w)
        with contextlib.ExitStack() as leases:
            fast = None
            if self.tracker.may_need_fast(state.episodes, sq):
                fast = self._fast(leases, x_on, state.stream, modes_on, on, everything)
            episodes = self.tracker.run(w, modes, off, state.episodes, moving, fast, residual)
        alarm, ratio = episodes.alarm, episodes.ratio
        # r / (1 + r), held at HELD_SCORE or 0.5 on the alarm's side, in one array
        score = fresh((n,))
        with lease((n,)) as plus_one:
            np.divide(ratio, np.add(ratio, 1.0, out=plus_one), out=score)
        # an overflowed deviation (inf, or inf - inf = NaN) scores its limit, 1, then is
        # held like any other score: written as a number that agrees with the alarm
        score[~np.isfinite(ratio)] = 1.0
        np.maximum(score, HELD_SCORE, out=score, where=alarm)
        np.minimum(score, 0.5, out=score, where=~alarm)
        shares = episodes.residual  # the tracker's own array: squared into shares in place
        np.square(shares, out=shares)
        positive = ratio > 0
        if positive.all():  # numpy's masked loop costs more than the division itself
            np.divide(shares, ratio[:, None], out=shares)
        else:  # rows that are not positive are all overwritten: the same bits either way
            np.divide(shares, ratio[:, None], out=shares, where=positive[:, None])
            shares[~positive] = 1.0 / max(shares.shape[1], 1)
        raw = np.multiply(sq, self.model.threshold, out=sq)  # sq is read no more
        result = ScoreResult(index, score, alarm.astype(np.int8), off.copy(), shares, raw, stream)
        return MonitorResult(
            result,
            ratio,
            moving,
            changepoint,
            episodes.ended,
            MonitorState(stream, changes, episodes.state, through),
        )


ROWS_AT_ONCE = 4_096
"""Rows :func:`_rows_into` copies at a time (1 MB at 30 sensors)."""


def _rows_into(x: np.ndarray, on: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = x[on]``, a block of rows at a time: a boolean index (``np.compress``,
    ``np.take``) of a whole array not C-ordered makes a full-size temporary copy first."""
    at = 0
    for start in range(0, len(x), ROWS_AT_ONCE):
        rows = x[start : start + ROWS_AT_ONCE][on[start : start + ROWS_AT_ONCE]]
        out[at : at + len(rows)] = rows
        at += len(rows)
