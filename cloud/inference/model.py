"""The anomaly model: operating modes by k-means, one PCA sub-model per mode.

Why this family: explainability matters as much as accuracy. Each mode's PCA combines
Hotelling's T² (inside the normal subspace) and Q/SPE (off it) into one quadratic index
``phi(z) = z' Phi z`` with ``Phi = P L^-1 P' / T2lim + (I - P P') / Qlim``. Its complete
decomposition ``c = (Phi^(1/2) z)²`` gives non-negative per-sensor contributions that add up
to ``phi`` exactly, so diagnostics are the model's own arithmetic, not a post-hoc guess.
Scoring is one matrix product per row.

The anomaly score is ``s / (s + tau)`` where ``s`` is the (optionally EWMA-smoothed) index
and ``tau`` its threshold calibrated on training data: the threshold maps to 0.5, so
``prediction = 1`` exactly when ``anomaly_score > 0.5`` as in L4E.

Component-agnostic ("template") models: when trained on plain column names (``flow``), a
model fits any asset with those columns; callers name diagnostics ``<component>\\<sensor>``
with the actual component (:meth:`Model.sensor_names`). A model trained on full names
(``pump-01\\flow``) also scores a frame whose columns are the plain names.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from cloud.inference.blockwise import (
    BLOCK_ROWS,
    Patched,
    RowBlocks,
    blocks,
    covariance,
    gaps_filled,
    mean_std,
    nanmean_rows,
    selected,
)
from cloud.inference.changes import fit_limit
from cloud.inference.dataset import MAX_MODEL_SENSORS
from cloud.inference.drift import training_profile
from cloud.inference.episodes import DEFAULT_ALARM, AlarmConfig
from cloud.inference.offcondition import OffCondition
from cloud.inference.scratch import fresh, lease
from cloud.inference.scratch import layout as _layout
from cloud.inference.threads import run_all, scoring_threads, split
from cloud.l4e.naming import plain_sensor
from edge.errors import ConfigError, UserError

SAMPLING_RATES = {
    "PT1S": "1s",
    "PT5S": "5s",
    "PT10S": "10s",
    "PT15S": "15s",
    "PT30S": "30s",
    "PT1M": "1min",
    "PT5M": "5min",
    "PT10M": "10min",
    "PT15M": "15min",
    "PT30M": "30min",
    "PT1H": "1h",
}
SAMPLING_SECONDS = {
    "PT1S": 1,
    "PT5S": 5,
    "PT10S": 10,
    "PT15S": 15,
    "PT30S": 30,
    "PT1M": 60,
    "PT5M": 300,
    "PT10M": 600,
    "PT15M": 900,
    "PT30M": 1800,
    "PT1H": 3600,
}
ARTIFACT_FORMAT = 1
SCORE_DECIMALS = 5
"""``anomaly_score`` decimals in results.jsonl (l4e-contracts §5)."""
CHANGE_LIMIT_ROWS = 200_000
"""Training rows the change test's limit is set on, at most (see ``_change_limit``)."""
_NPZ = "model.npz"
_META = "model.json"
ARTIFACT_FILES = (_NPZ, _META)
_Piece = TypeVar("_Piece")
Then = Callable[[np.ndarray, slice], None]
"""Work on a block of rows of deviations just computed: ``then(deviations, rows)``."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train; every field has a default so ``TrainConfig()`` is a sensible model."""

    sampling_rate: str | None = None
    """L4E ``TargetSamplingRate`` (PT1S..PT1H); None keeps the data's own timestamps."""
    off_condition: str | None = None
    """``component\\sensor < 1`` (§7): rows where it holds are not trained on, scored MACHINE_OFF."""
    sensors: Sequence[str] | None = None
    """Columns to use; None = every column of the training frame."""
    max_modes: int = 4
    """Upper bound of operating modes found by k-means; 1 disables mode detection."""
    variance_kept: float = 0.95
    """Share of variance the PCA subspace keeps (at most n-1 components, so Q exists)."""
    smoothing: int = 1
    """Rows in the moving mean of each feature before scoring: sustained small shifts add
    up while noise averages out (a multivariate moving-average chart); 1 = no smoothing."""
    difference: str = "none"
    """``auto``: sensors that wander slowly in training (lag-1 autocorrelation above
    ``difference_above``) are monitored by their change over ``difference_lag`` rows
    instead of their level, so slow drift is not an anomaly; ``none``: levels only."""
    difference_above: float = 0.9
    difference_lag: int = 10
    threshold_quantile: float = 0.999
    """Quantile of the training index that becomes the threshold (before margin)."""
    outlier_z: float | None = 6.0
    """Training rows with a reading beyond this many robust standard deviations are left
    out of the fit (see ``_gross_outliers``); None keeps every row."""
    threshold_margin: float = 1.5
    """Multiplier on that quantile; > 1 because training data are in-sample."""
    seed: int = 0
    alarm: AlarmConfig | None = DEFAULT_ALARM
    """The alarm rules every runtime applies to this model's deviations
    (:mod:`cloud.inference.monitor`); None: ``prediction`` is ``anomaly_score > 0.5``,
    row by row. Models saved before the rules existed load with None."""

    def __post_init__(self) -> None:
        if isinstance(self.alarm, dict):  # as saved in model.json
            object.__setattr__(self, "alarm", AlarmConfig.from_dict(self.alarm))
        if self.sampling_rate is not None and self.sampling_rate not in SAMPLING_RATES:
            raise ConfigError(
                f"TargetSamplingRate {self.sampling_rate!r}: expected one of "
                f"{', '.join(SAMPLING_RATES)}"
            )
        if self.off_condition is not None:
            OffCondition.parse(self.off_condition)
        if self.max_modes < 1:
            raise ConfigError(f"max_modes {self.max_modes}: expected >= 1")
        if not 0 < self.variance_kept <= 1:
            raise ConfigError(f"variance_kept {self.variance_kept}: expected in (0, 1]")
        if int(self.smoothing) != self.smoothing or self.smoothing < 1:
            raise ConfigError(f"smoothing {self.smoothing}: expected a whole number >= 1 (rows)")
        if self.difference not in ("none", "auto"):
            raise ConfigError(f"difference {self.difference!r}: expected 'none' or 'auto'")
        if self.difference_lag < 1:
            raise ConfigError(f"difference_lag {self.difference_lag}: expected >= 1 (rows)")


def predicted(score: np.ndarray) -> np.ndarray:
    """``anomaly_score > 0.5`` for the score as results.jsonl writes it: rounded to
    :data:`SCORE_DECIMALS`, and 1 where the arithmetic overflowed (``inf / inf``), so that
    a reader finds L4E's rule on every line; the unrounded score would predict 1 under a
    written 0.5, and NaN would predict 0 under a written 1."""
    with np.errstate(invalid="ignore"):
        return np.isnan(score) | (np.round(score, SCORE_DECIMALS) > 0.5)


@dataclass
class ScoreResult:
    """Per-row outputs aligned with ``index`` (the resampled index if a rate is set)."""

    index: pd.DatetimeIndex
    score: np.ndarray
    prediction: np.ndarray
    machine_off: np.ndarray
    contributions: np.ndarray
    """(rows, sensors), each row sums to 1 (uniform on MACHINE_OFF rows)."""
    raw: np.ndarray = field(default_factory=lambda: np.empty(0))
    """The index ``s`` before mapping to [0, 1]; for evaluation and plots."""
    state: StreamState | None = None
    """Pass to the next :meth:`Model.score` call to continue the same series (streaming)."""


@dataclass
class StreamState:
    """What scoring needs from earlier rows: the raw tail for differencing and the moving
    mean, and how many rows came before (the warm-up)."""

    tail: np.ndarray
    count: int
    """Rows seen so far."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, for a state store."""
        return {"tail": self.tail.tolist(), "count": self.count}

    @classmethod
    def from_dict(cls, doc: dict[str, Any], width: int) -> StreamState:
        tail = np.asarray(doc.get("tail") or [], dtype=float).reshape(-1, width)
        return cls(tail, int(doc.get("count", len(tail))))


def resample(frame: pd.DataFrame, sampling_rate: str | None) -> pd.DataFrame:
    """Mean per bin ``(t - rate, t]`` labelled ``t`` (so bins fit L4E's ``(S, E]`` windows);
    empty bins take the last value, leading empty bins are dropped."""
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index()
    if sampling_rate is None or frame.empty:
        if frame.index.is_unique:
            return frame  # already regular: no copy of a possibly large frame
        return frame[~frame.index.duplicated(keep="last")]
    rule = SAMPLING_RATES[sampling_rate]
    out = frame.resample(rule, closed="right", label="right").mean()
    return out.ffill().dropna(how="all")


def _kmeans(
    x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 50
) -> tuple[np.ndarray, float]:
    """Lloyd's k-means with k-means++ seeding; returns centroids and inertia."""
    centroids = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.asarray(centroids)[None]) ** 2).sum(-1), axis=1)
        total = d2.sum()
        if total <= 0:
            break
        centroids.append(x[rng.choice(len(x), p=d2 / total)])
    c = np.asarray(centroids)
    labels = np.zeros(len(x), dtype=int)
    for it in range(iters):
        new = _sqdist(x, c).argmin(1)
        if it and np.array_equal(new, labels):
            break
        labels = new
        c = np.asarray(
            [x[labels == j].mean(0) if np.any(labels == j) else c[j] for j in range(len(c))]
        )
    inertia = float(_sqdist(x, c).min(1).sum())
    return c, inertia


def _sqdist(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    return (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None, :]


def _choose_modes(
    x: np.ndarray, max_modes: int, rng: np.random.Generator, min_share: float = 0.05
) -> np.ndarray:
    """Centroids of the operating modes: add a mode while it at least halves the inertia
    and every mode keeps ``min_share`` of the rows (so noise is not split into modes)."""
    best, inertia = x.mean(0, keepdims=True), float(((x - x.mean(0)) ** 2).sum())
    for k in range(2, max_modes + 1):
        c, new_inertia = _kmeans(x, k, rng)
        shares = np.bincount(_sqdist(x, c).argmin(1), minlength=len(c)) / len(x)
        if len(c) < k or new_inertia > 0.5 * inertia or shares.min() < min_share:
            break
        best, inertia = c, new_inertia
    return best


def _fit_mode(z: RowBlocks, variance_kept: float, quantile: float) -> np.ndarray:
    """The matrix ``Phi^(1/2)`` of one mode's combined T²/Q index (see module docstring).

    *z* gives the mode's standardised rows block by block (two passes), so that fitting a
    mode never holds more than one block of temporaries.
    """
    cov = covariance(z)
    n = len(cov)
    cov = cov.reshape(n, n) + 1e-6 * np.eye(n)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = np.maximum(eigval[order], 1e-9), eigvec[:, order]
    if n == 1:
        return np.array([[1.0 / np.sqrt(eigval[0])]])
    share = np.cumsum(eigval) / eigval.sum()
    a = int(min(np.searchsorted(share, variance_kept) + 1, n - 1))
    p = eigvec[:, :a]
    t2_parts, q_parts = [], []
    for part in z():
        t = part @ p
        t2_parts.append(((t * t) / eigval[:a]).sum(1))
        resid = part - t @ p.T
        q_parts.append((resid * resid).sum(1))
    t2, q = np.concatenate(t2_parts), np.concatenate(q_parts)
    t2lim = max(float(np.quantile(t2, quantile)), 1e-9)
    qlim = max(float(np.quantile(q, quantile)), 1e-9)
    proj = p @ p.T
    return p @ np.diag(1 / np.sqrt(eigval[:a] * t2lim)) @ p.T + (np.eye(n) - proj) / np.sqrt(qlim)


class Model:
    """A trained model; arrays only, saved as ``.npz`` plus JSON metadata (no pickle)."""

    def __init__(
        self,
        sensors: Sequence[str],
        config: TrainConfig,
        *,
        fill: np.ndarray,
        differenced: np.ndarray,
        center: np.ndarray,
        scale: np.ndarray,
        centroids: np.ndarray,
        mode_means: np.ndarray,
        mode_scales: np.ndarray,
        mode_phi: np.ndarray,
        threshold: float,
        info: dict[str, Any] | None = None,
        change_limit: float | None = None,
    ) -> None:
        self.sensors: tuple[str, ...] = tuple(sensors)
        self.config = config
        self.fill = fill
        self.differenced = np.asarray(differenced, dtype=bool)
        self.center = center
        self.scale = scale
        self.centroids = centroids
        self.mode_means = mode_means
        self.mode_scales = mode_scales
        self.mode_phi = mode_phi
        self.threshold = float(threshold)
        self.change_limit = None if change_limit is None else float(change_limit)
        """Limit of the change test (:mod:`cloud.inference.changes`) in whitened units,
        set on the training rows; None when the model has no alarm rules."""
        self.info: dict[str, Any] = dict(info or {})
        self.off = OffCondition.parse(config.off_condition) if config.off_condition else None

    # -- naming --------------------------------------------------------------------------

    @property
    def is_template(self) -> bool:
        """True when trained on plain sensor names: fits any component with those columns."""
        return all("\\" not in s for s in self.sensors)

    @property
    def components(self) -> tuple[str, ...]:
        """Components the model's sensors (and off condition) come from; empty for a template."""
        names = [s.partition("\\")[0] for s in self.sensors if "\\" in s]
        if self.off and "\\" in self.off.sensor and names:
            names.append(self.off.sensor.partition("\\")[0])
        return tuple(dict.fromkeys(names))

    def sensor_names(self, component: str | None = None) -> tuple[str, ...]:
        """Diagnostics names: a template's plain names get ``<component>\\`` prepended."""
        if component is None:
            return self.sensors
        return tuple(s if "\\" in s else f"{component}\\{s}" for s in self.sensors)

    def _columns(self, frame: pd.DataFrame) -> list[str]:
        cols = []
        for sensor in self.sensors:
            plain = plain_sensor(sensor)
            if sensor in frame.columns:
                cols.append(sensor)
            elif plain in frame.columns:
                cols.append(plain)
            else:
                raise UserError(
                    f"sensor {sensor} missing from the data (columns: "
                    f"{', '.join(map(str, frame.columns))})"
                )
        return cols

    # -- scoring -------------------------------------------------------------------------

    def prepare(self, frame: pd.DataFrame) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
        """Resample, pick the model's columns, mark machine-off rows, fill gaps."""
        frame = resample(frame, self.config.sampling_rate)
        off = self.off.mask(frame) if self.off else np.zeros(len(frame), dtype=bool)
        x = _matrix(frame, self._columns(frame))
        return pd.DatetimeIndex(frame.index), _fill_gaps(x, self.fill), off

    @contextlib.contextmanager
    def leased_prepare(
        self, frame: pd.DataFrame
    ) -> Iterator[tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, bool]]:
        """:meth:`prepare` with the gaps filled into a buffer of
        :mod:`cloud.inference.scratch` for the block's duration (the same bits), and
        whether it did so: a state computed from those rows must then copy what it keeps
        of them (:func:`kept_apart`). Data with gaps no longer make a fresh full-size copy
        per call."""
        frame = resample(frame, self.config.sampling_rate)
        off = self.off.mask(frame) if self.off else np.zeros(len(frame), dtype=bool)
        x = _matrix(frame, self._columns(frame))
        index = pd.DatetimeIndex(frame.index)
        if not _has_nan(x):
            yield index, x, off, False
            return
        with lease(x.shape, order=_layout(x)) as filled:
            yield index, _fill_gaps(x, self.fill, out=filled), off, True

    def features(
        self, x: np.ndarray, state: StreamState | None = None, window: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, StreamState]:
        """Differenced-where-configured, EWMA-smoothed features, each row's warm-up factor
        (how much wider than steady state the EWMA's spread still is) and the new state.
        *window* (at most the model's smoothing, which *state* carries rows for) takes
        a shorter mean than the model's; the factor is then the model's own rows over the
        rows averaged, so its deviations are in the same threshold units."""
        smoothing = int(self.config.smoothing)
        if window is None or window == smoothing:
            return _features(x, self.differenced, self.config.difference_lag, smoothing, state)
        y, factor, new = _features(x, self.differenced, self.config.difference_lag, window, state)
        factor *= np.sqrt(smoothing / window)
        return y, factor, new

    @contextlib.contextmanager
    def leased_features(
        self, x: np.ndarray, state: StreamState | None = None, window: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, StreamState]]:
        """:meth:`features` (*window* as there), the smoothed or differenced copy in a
        buffer of :mod:`cloud.inference.scratch` for the block's duration (the same bits);
        nothing may keep a view of the features after it. The state's tail is of *x*,
        never of the buffer."""
        smoothing = int(self.config.smoothing)
        rows = smoothing if window is None else window
        lag = self.config.difference_lag
        if x.ndim != 2 or min(x.strides) <= 0:
            yield self.features(x, state, window)
            return
        with contextlib.ExitStack() as leases:

            def like(shape: tuple[int, ...], order: str) -> np.ndarray:
                return leases.enter_context(lease(shape, order=order))

            y, factor, new = _features(x, self.differenced, lag, rows, state, out=like)
            if rows != smoothing:  # in the model's threshold units, as features() gives
                factor *= np.sqrt(smoothing / rows)
            yield y, factor, new

    def modes(self, x: np.ndarray) -> np.ndarray:
        """The operating mode of each row of readings *x* (gaps filled), as training
        clustered them: input drift compares like with like (cloud.inference.drift)."""
        y, _factor, _state = self.features(x)
        if len(self.centroids) == 1:
            return np.zeros(len(y), dtype=int)
        return _sqdist((y - self.center) / self.scale, self.centroids).argmin(1)

    def contributions(self, y: np.ndarray, factor: np.ndarray) -> np.ndarray:
        """Per-sensor terms of the combined T²/Q index, shape (rows, sensors)."""
        return self.deviations(y, factor)[0] ** 2

    def deviations(
        self, y: np.ndarray, factor: np.ndarray, modes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each row's signed deviation ``Phi^(1/2) z`` from its mode, and the mode.

        The squares are :meth:`contributions`; the signs say in which direction the plant
        moved, which the alarm-episode logic (:mod:`cloud.inference.episodes`) needs to
        tell a fault that goes away from one that holds. *modes* given (those of the
        smoothed features) measure other features of the same rows from the same means.

        Large inputs take :func:`_deviations_fast`, which gives the same bits as this
        formula (:func:`_deviations_simple`) with fewer full-size temporaries.
        """
        return self._deviations(y, factor, modes)

    @contextlib.contextmanager
    def leased_deviations(
        self, y: np.ndarray, factor: np.ndarray, modes: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """:meth:`deviations` written into a buffer of :mod:`cloud.inference.scratch` for
        the block's duration (the same bits), for a caller that needs them only there:
        the next call of the same shape faults no new memory in. Nothing may keep a view
        of them after the block."""
        with lease(y.shape, order=_layout(y)) as out:
            yield self._deviations(y, factor, modes, out)

    def _deviations(
        self,
        y: np.ndarray,
        factor: np.ndarray,
        modes: np.ndarray | None = None,
        out: np.ndarray | None = None,
        then: Then | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`deviations`, into *out* (the shape of *y*, in the layout ``empty_like(y)``
        gives) when given; *then* (see :data:`Then`) runs on each block of rows of them."""
        if _fast_applies(y, factor):
            fast = _deviations_fast(self, y, factor, modes, out, then)
            if fast is not None:
                return fast
        deviations, mode = _deviations_simple(self, y, factor, modes, out)
        if then is not None:
            _in_blocks(len(deviations), functools.partial(then, deviations))
        return deviations, mode

    def score(self, frame: pd.DataFrame, state: StreamState | None = None) -> ScoreResult:
        """Score *frame* (UTC DatetimeIndex; full or plain sensor names as columns).

        *state* (``result.state`` of the previous call) continues a series across calls.
        """
        with self.leased_prepare(frame) as (index, x, off, leased):
            result = self.score_arrays(index, x, off, state)
            if leased and result.state is not None:
                result.state.tail = kept_apart(result.state.tail)
            return result

    def score_blocks(self, frame: pd.DataFrame, rows: int = BLOCK_ROWS) -> Iterator[ScoreResult]:
        """Score *frame* as consecutive pieces of at most *rows* rows, each continuing the
        last (gaps are filled from the previous piece, features carry :class:`StreamState`).

        The pieces put together are :meth:`score` of the whole frame (to rounding, when
        smoothing), but memory holds only one piece's intermediates: scoring a year of
        one-minute data this way needs a few MB instead of several copies of the data.
        """
        state: StreamState | None = None
        for index, x, off in self.prepared_blocks(frame, rows):
            result = self.score_arrays(index, x, off, state)
            state = result.state
            yield result

    def prepared_blocks(
        self, frame: pd.DataFrame, rows: int = BLOCK_ROWS
    ) -> Iterator[tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]]:
        """:meth:`prepare` of *frame* as consecutive pieces of at most *rows* rows, gaps
        filled from the previous piece (what :meth:`score_blocks` and the monitor score)."""
        frame = resample(frame, self.config.sampling_rate)
        off = self.off.mask(frame) if self.off else np.zeros(len(frame), dtype=bool)
        x = _matrix(frame, self._columns(frame))
        index = pd.DatetimeIndex(frame.index)
        last: np.ndarray | None = None
        for block in blocks(len(x), rows):
            filled = _fill_gaps(x[block], self.fill, last)
            last = filled[-1]
            yield index[block], filled, off[block]

    def score_arrays(
        self,
        index: pd.DatetimeIndex,
        x: np.ndarray,
        off: np.ndarray,
        state: StreamState | None = None,
    ) -> ScoreResult:
        with self.leased_features(x, state) as (y, factor, new_state):
            if np.asarray(off).dtype == np.bool_:  # shares of each block as it is computed
                s = fresh((len(y),))
                share = self._deviations(y, factor, then=_Sharer(off, s))[0]
            else:
                share, s = _shares(self.deviations(y, factor)[0], off)
        score = fresh(s.shape)
        with lease(s.shape) as below:  # s / (s + threshold) without two new arrays
            np.divide(s, np.add(s, self.threshold, out=below), out=score)
        prediction = predicted(score)
        return ScoreResult(
            index, score, prediction.astype(np.int8), off.copy(), share, s, new_state
        )

    # -- persistence ---------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, body in self.to_artifacts().items():
            (directory / name).write_bytes(body)

    def to_artifacts(self) -> dict[str, bytes]:
        """The artifact files by name (``model.npz``, ``model.json``), for any store."""
        arrays = io.BytesIO()
        np.savez(arrays, **self._arrays())
        meta = {
            "format": ARTIFACT_FORMAT,
            "sensors": list(self.sensors),
            "config": {**asdict(self.config), "sensors": list(self.config.sensors or []) or None},
            "info": self.info,
        }
        text = json.dumps(meta, indent=2, default=str) + "\n"
        return {_NPZ: arrays.getvalue(), _META: text.encode()}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "fill": self.fill,
            "differenced": self.differenced.astype(np.int8),
            "center": self.center,
            "scale": self.scale,
            "centroids": self.centroids,
            "mode_means": self.mode_means,
            "mode_scales": self.mode_scales,
            "mode_phi": self.mode_phi,
            "threshold": np.array(self.threshold),
            **({} if self.change_limit is None else {"change_limit": np.array(self.change_limit)}),
        }

    @classmethod
    def load(cls, directory: str | Path) -> Model:
        directory = Path(directory)
        files: dict[str, bytes] = {}
        for name in ARTIFACT_FILES:
            try:
                files[name] = (directory / name).read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise UserError(f"{directory}: unreadable model artifact: {exc}") from None
        return cls.from_artifacts(files, str(directory))

    @classmethod
    def from_artifacts(cls, files: Mapping[str, bytes], where: str) -> Model:
        """A model from its artifact files' bytes; *where* names them in errors.

        Arrays load with ``allow_pickle=False``: an artifact from a bucket is data, never
        code to run.
        """
        missing = [name for name in ARTIFACT_FILES if name not in files]
        if missing:
            raise UserError(f"{where}: not a model artifact ({missing[0]} missing)")
        try:
            meta = json.loads(files[_META])
            arrays = np.load(io.BytesIO(files[_NPZ]), allow_pickle=False)
        except (ValueError, OSError, EOFError, RecursionError) as exc:
            raise UserError(f"{where}: unreadable model artifact: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != ARTIFACT_FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise UserError(f"{where}/{_META}: format {found!r}, expected {ARTIFACT_FORMAT}")
        try:
            with arrays:
                values = {k: arrays[k] for k in arrays.files}
        except ValueError as exc:  # an object array, which would need pickle
            raise UserError(f"{where}/{_NPZ}: unreadable model artifact: {exc}") from None
        try:
            config = dict(meta["config"])
            config.setdefault("alarm", None)  # saved before alarm rules: the plain threshold
            if config.get("sensors") is not None:
                config["sensors"] = tuple(config["sensors"])
            limit = values.pop("change_limit", None)
            return cls(
                meta["sensors"],
                TrainConfig(**config),
                threshold=float(values.pop("threshold")),
                change_limit=None if limit is None else float(limit),
                info=meta.get("info", {}),
                **values,
            )
        except (KeyError, TypeError, ValueError) as exc:  # a damaged or foreign artifact
            raise UserError(f"{where}: not a usable model artifact: {exc!r}") from None
        except ConfigError as exc:  # a setting out of range, the alarm rules' included
            raise UserError(f"{where}: not a usable model artifact: config {exc}") from None


SCORE_BLOCK_ROWS = 4_096
"""Rows per block of scoring's element-wise passes: 1 MB at 30 sensors, so a block's
temporaries stay in the core's cache between the steps of a pass."""


def _row_blocks(rows: int) -> Iterator[slice]:
    """Blocks of :data:`SCORE_BLOCK_ROWS` rows, the last one taking a single leftover row:
    a one-row block of a Fortran-ordered array is also C-ordered, and numpy would sum
    its row in another order than the whole array's rows."""
    starts = list(range(0, rows, SCORE_BLOCK_ROWS))
    if len(starts) > 1 and rows - starts[-1] == 1:
        starts.pop()
    for i, start in enumerate(starts):
        yield slice(start, starts[i + 1] if i + 1 < len(starts) else rows)


def _deviations_simple(
    model: Model,
    y: np.ndarray,
    factor: np.ndarray,
    modes: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`Model.deviations` as a formula: the reference :func:`_deviations_fast` keeps
    to bit for bit, and the path small inputs take."""
    if modes is not None:
        mode = np.asarray(modes, dtype=int)
    elif len(model.centroids) == 1:
        mode = np.zeros(len(y), dtype=int)
    else:
        mode = _sqdist((y - model.center) / model.scale, model.centroids).argmin(1)
    out = np.empty_like(y) if out is None else out
    if len(model.centroids) == 1:  # one mode: every row, no selection copies
        z = (y - model.mode_means[0]) / (model.mode_scales[0] * factor[:, None])
        np.matmul(z, model.mode_phi[0], out=out)
        return out, mode
    for m in range(len(model.centroids)):
        rows = mode == m
        if rows.any():
            z = (y[rows] - model.mode_means[m]) / (model.mode_scales[m] * factor[rows, None])
            out[rows] = z @ model.mode_phi[m]
    return out, mode


def _fast_applies(y: np.ndarray, factor: np.ndarray) -> bool:
    """Whether :func:`_deviations_fast` takes *y*: large enough to gain, float64, and laid
    out row- or column-major (possibly a block of rows of a larger array: what
    :meth:`Model.score_blocks` passes), the layouts whose temporaries it reproduces."""
    return (
        y.ndim == 2
        and len(y) >= 2 * SCORE_BLOCK_ROWS
        and y.dtype == np.float64
        and min(y.strides) > 0
        and (y.flags.c_contiguous or y.flags.f_contiguous or y.strides[0] != y.strides[1])
        and factor.shape == (len(y),)
    )


def _deviations_fast(
    model: Model,
    y: np.ndarray,
    factor: np.ndarray,
    modes: np.ndarray | None = None,
    out: np.ndarray | None = None,
    then: Then | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`_deviations_simple`, the same bits, with fewer and smaller temporaries, on
    scoring's threads (:mod:`cloud.inference.threads`); *then* (see :data:`Then`) runs on
    each block of rows of the result once it is computed (while it is in cache, when
    there are several modes).

    Every matrix product is the formula's own call: the same operands, rows and memory
    layouts. A BLAS library may compute a row differently in a product of another height
    (OpenBLAS's small-matrix kernels do), so products are never split into blocks; the
    threads share them out by operating mode. The element-wise steps around them go in
    blocks of rows, and each temporary has the layout the formula's would have, so that
    row sums add in the same order. None when a mode has a single row (a matrix-vector
    product, whose sums a BLAS may split over threads): the formula then.

    Products into a new C-ordered array run on :func:`scoring_threads`; a product into a
    Fortran-ordered output (one mode, Fortran-ordered data) keeps the library's threads,
    as numpy may compute it in pieces whose bits depend on them.
    """
    n, k = y.shape
    if out is None:  # a result, the caller's alone, unless the caller leased one
        out = fresh(y.shape, order=_layout(y))
    if len(model.centroids) == 1:
        mean, scale = model.mode_means[0], model.mode_scales[0]
        with lease((n, k)) as z:  # the formula's z is C-ordered whatever the layout of y

            def standardise(block: slice) -> None:
                np.subtract(y[block], mean, out=z[block])
                _divide_rows(z[block], scale, factor[block])

            _in_blocks(n, standardise)
            with scoring_threads(n if out.flags.c_contiguous else 0):
                np.matmul(z, model.mode_phi[0], out=out)
        if then is not None:
            _in_blocks(n, functools.partial(then, out))
        return out, np.zeros(n, dtype=int) if modes is None else np.asarray(modes, dtype=int)
    # the standardised rows (twice the rows first, for the nearest modes) go in the memory
    # of the result, which is written only once the products are done: one full-size
    # array fewer per call (and in the pool)
    reuse = _layout(out) == _layout(y) and (out.flags.c_contiguous or out.flags.f_contiguous)
    with (
        scoring_threads(n),
        contextlib.nullcontext(out) if reuse else lease((n, k), order=_layout(y)) as standardised,
        lease((n * k,)) as products,
    ):
        if modes is None:
            mode = _nearest_modes(model, y, standardised)
        else:
            mode = np.asarray(modes, dtype=int)
        rows = [np.flatnonzero(mode == m) for m in range(len(model.centroids))]
        if any(len(r) == 1 for r in rows):
            return None
        # each mode's standardised rows in the memory of the standardising pass, which
        # has done its work, and its product in a second buffer: C-ordered pieces of two
        # flat buffers, the layout of the formula's new arrays
        flat = standardised.ravel(order="K")
        starts = np.cumsum([0] + [len(r) for r in rows])
        pieces = [(m, b) for m in range(len(rows)) for b in _row_blocks(len(rows[m]))]

        tiles = [_Tiled(model.mode_means[m], model.mode_scales[m]) for m in range(len(rows))]

        def standardise(piece: tuple[int, slice]) -> None:
            m, block = piece
            at = rows[m][block]
            first = starts[m] + block.start
            values = flat[first * k : (first + len(at)) * k]
            _gather_rows(y, at, values.reshape(len(at), k))
            tiles[m].standardise(values, factor[at])

        _in_pieces(pieces, standardise)

        def one_mode(m: int) -> None:
            z = flat[starts[m] * k : starts[m + 1] * k].reshape(-1, k)
            product = products[starts[m] * k : starts[m + 1] * k].reshape(-1, k)
            np.matmul(z, model.mode_phi[m], out=product)

        largest_first = sorted(
            (m for m in range(len(rows)) if len(rows[m])), key=lambda m: -len(rows[m])
        )
        run_all([functools.partial(one_mode, m) for m in largest_first])
        _unsorted(products.reshape(n, k), rows, starts, out, then)
    return out, mode


def _gather_rows(y: np.ndarray, at: np.ndarray, z: np.ndarray) -> None:
    """``z[:] = y[at]`` (*at* ascending) without a temporary. Rows of one operating mode
    come in runs, and a column-major *y* is copied fastest run by run."""
    if y.flags.c_contiguous:
        np.take(y, at, axis=0, out=z, mode="clip")
        return
    cuts = np.flatnonzero(np.diff(at) != 1) + 1
    if 16 * len(cuts) > len(at):  # short runs: one gather
        z[...] = y[at]
        return
    starts, stops = [0, *cuts.tolist()], [*cuts.tolist(), len(at)]
    for a, b in zip(starts, stops, strict=True):
        first = int(at[a])
        z[a:b] = y[first : first + b - a]


def _in_blocks(rows: int, work: Callable[[slice], None]) -> None:
    """``work(block)`` for each of :func:`_row_blocks`, consecutive runs of blocks on
    scoring's threads."""
    _in_pieces(list(_row_blocks(rows)), work)


def _in_pieces(pieces: Sequence[_Piece], work: Callable[[_Piece], None]) -> None:
    """``work(piece)`` for each of *pieces*, consecutive runs of them on scoring's threads."""

    def run(run_: Sequence[_Piece]) -> None:
        for piece in run_:
            work(piece)

    run_all([functools.partial(run, r) for r in split(pieces)])


def _unsorted(
    products: np.ndarray,
    rows: Sequence[np.ndarray],
    starts: np.ndarray,
    out: np.ndarray,
    then: Then | None = None,
) -> None:
    """``out[rows[m]] = products[starts[m]:starts[m + 1]]`` for every mode *m*, a block of
    rows of *out* at a time on scoring's threads, then ``then(out, block)``: each block is
    written once and worked on while it is in the core's cache, instead of a scattered
    pass over all of *out* per mode and another pass after. Rows of a mode come in runs,
    copied run by run."""
    n = len(out)
    with lease((n,), dtype=np.intp) as where:  # each row's place among the products
        for m, at in enumerate(rows):
            where[at] = np.arange(starts[m], starts[m + 1])

        def place(block: slice) -> None:
            at = where[block]
            cuts = np.flatnonzero(np.diff(at) != 1) + 1
            if 16 * len(cuts) > len(at):  # short runs: one gather
                out[block] = products[at]
            else:
                for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(at)], strict=True):
                    first = int(at[a])
                    out[block.start + a : block.start + b] = products[first : first + b - a]
            if then is not None:
                then(out, block)

        _in_blocks(n, place)


def _nearest_modes(model: Model, y: np.ndarray, twice: np.ndarray) -> np.ndarray:
    """``_sqdist((y - center) / scale, centroids).argmin(1)`` in one pass over *y*: the
    standardised rows, their squared lengths and twice the rows, block by block. *twice*
    (the shape of *y*, in the layout of the formula's ``2 * g``) takes the doubled rows;
    the caller may reuse it afterwards."""
    n, k = y.shape
    order = _layout(y)
    lengths = np.empty(n)
    scratch: dict[int, np.ndarray] = {}

    def standardise(block: slice) -> None:
        g = twice[block]
        np.subtract(y[block], model.center, out=g)
        np.divide(g, model.scale, out=g)
        mine = threading.get_ident()
        if mine not in scratch:  # one per thread, in the layout of the formula's g * g
            scratch[mine] = np.empty((SCORE_BLOCK_ROWS + 1, k), order=order)
        sq = scratch[mine][: block.stop - block.start]
        np.square(g, out=sq)  # g * g and 2 * g, exactly, by numpy's quicker loops
        np.add.reduce(sq, axis=1, out=lengths[block])
        np.add(g, g, out=g)

    _in_blocks(n, standardise)
    centroids = model.centroids
    lengths_c = (centroids * centroids).sum(1)[None, :]
    nearest = np.empty(n, dtype=np.intp)
    with lease((n, len(centroids))) as d:  # C-ordered, as the formula's product is
        np.matmul(twice, centroids.T, out=d)

        def closest(block: slice) -> None:  # row by row: the bits of whole-array steps
            part = d[block]
            np.subtract(lengths[block, None], part, out=part)
            part += lengths_c
            np.argmin(part, axis=1, out=nearest[block])

        _in_blocks(n, closest)
    return nearest


class _Tiled:
    """A mode's means and scales repeated for a block of :data:`SCORE_BLOCK_ROWS` rows, so
    that standardising a C-ordered block is two passes over flat memory: numpy would
    otherwise run its inner loop once per row, over 30 values, for each operation. The same
    operations on the same operands: the same bits."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray) -> None:
        self.mean, self.scale = mean, scale
        self.means = np.tile(mean, SCORE_BLOCK_ROWS + 1)
        self.scales = np.tile(scale, SCORE_BLOCK_ROWS + 1)

    def standardise(self, values: np.ndarray, factor: np.ndarray) -> None:
        """``z = (z - mean) / (scale * factor[:, None])`` in place, for the rows *z* of at
        most ``SCORE_BLOCK_ROWS + 1`` readings one after another in the flat array *values*
        (see :func:`_divide_rows`)."""
        z = values.reshape(len(factor), len(self.mean))  # a view: *values* is contiguous
        np.subtract(values, self.means[: values.size], out=values)
        warm = np.flatnonzero(factor != 1.0)
        early = z[warm] / (self.scale * factor[warm, None]) if len(warm) else None
        np.divide(values, self.scales[: values.size], out=values)
        if early is not None:
            z[warm] = early


def _divide_rows(z: np.ndarray, scale: np.ndarray, factor: np.ndarray) -> None:
    """``z /= scale * factor[:, None]`` in place without the full-size divisor: *factor*
    is exactly 1 past the warm-up of a moving mean, and ``scale * 1.0`` is ``scale``."""
    warm = np.flatnonzero(factor != 1.0)
    early = z[warm] / (scale * factor[warm, None]) if len(warm) else None
    np.divide(z, scale, out=z)
    if early is not None:
        z[warm] = early


def _shares(deviations: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's contributions as shares of its index, and the index (its sum), computed
    in place in *deviations* a block at a time. Machine-off rows have index 0 and equal
    shares. The same bits as squaring, zeroing, ``sum(1)`` and dividing whole arrays."""
    n, k = deviations.shape
    total = fresh((n,))
    uniform = 1.0 / k
    if np.asarray(off).dtype != np.bool_:  # row numbers, not a mask: index the whole array
        np.square(deviations, out=deviations)
        deviations[off] = 0.0
        np.add.reduce(deviations, axis=1, out=total)
        positive = total > 0
        np.divide(deviations, total[:, None], out=deviations, where=positive[:, None])
        deviations[~positive] = uniform
        return deviations, total
    _in_blocks(n, functools.partial(_Sharer(off, total), deviations))
    return deviations, total


class _Sharer:
    """:func:`_shares` of one block of rows (a :data:`Then`): *off* the machine-off mask
    of every row, *total* takes each row's index."""

    def __init__(self, off: np.ndarray, total: np.ndarray) -> None:
        self.off, self.total = off, total

    def __call__(self, deviations: np.ndarray, block: slice) -> None:
        c = deviations[block]
        np.square(c, out=c)
        stopped = self.off[block]
        if stopped.any():
            c[stopped] = 0.0
        s = self.total[block]
        np.add.reduce(c, axis=1, out=s)
        positive = s > 0
        if positive.all():  # numpy's masked loop costs more than the division itself
            np.divide(c, s[:, None], out=c)
            return
        np.divide(c, s[:, None], out=c, where=positive[:, None])
        c[~positive] = 1.0 / c.shape[1]


def _matrix(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """The frame's *columns* as one float array: a read-only view, not a copy, when the
    frame already is one float64 block in that order (as a loaded dataset is)."""
    if list(frame.columns) == list(columns):
        return frame.to_numpy(dtype=float)
    return frame[list(columns)].to_numpy(dtype=float)


def _fill_gaps(
    x: np.ndarray,
    fill: np.ndarray,
    carry: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Carry the last reading forward; before any reading, use the training mean.

    *carry* is the row before ``x`` (already filled) when ``x`` continues a series. Returns
    ``x`` itself when it has no gap; otherwise one copy, filled column by column, in *out*
    when given (the shape of *x*, in the layout a copy of it gets).
    """
    if not _has_nan(x):
        return x
    if out is None:
        out = np.array(x, dtype=float)
    else:
        np.copyto(out, x)
    positions = np.arange(len(out))
    for j in range(out.shape[1]):
        column = out[:, j]
        missing = np.isnan(column)
        if not missing.any():
            continue
        source = np.where(missing, 0, positions)
        np.maximum.accumulate(source, out=source)
        filled = column[source]
        before = np.isnan(filled)
        filled[before] = fill[j] if carry is None else carry[j]
        out[:, j] = filled
    return out


def _has_nan(x: np.ndarray) -> bool:
    """``np.isnan(x).any()`` without a full-size mask: NaN carries through a sum, so sums
    that are not NaN rule it out (only infinities of both signs need the mask). A large
    *x* is summed in runs of rows on scoring's threads: a NaN makes its run's sum NaN.

    Contiguous float64 readings take the sum of their squares (the BLAS dot product, a
    third quicker than numpy's sum): it is NaN exactly when a reading is, as squares are
    never negative and infinities of both signs square alike."""
    if x.dtype == np.float64 and (x.flags.c_contiguous or x.flags.f_contiguous):
        flat = x.ravel(order="K")
        runs = split(range(len(flat))) if len(x) >= 2 * SCORE_BLOCK_ROWS else [range(len(flat))]
        sums = np.empty(len(runs))

        def squares(i: int) -> None:
            part = flat[runs[i][0] : runs[i][-1] + 1] if len(runs[i]) else flat[:0]
            with np.errstate(invalid="ignore", over="ignore"):
                sums[i] = np.dot(part, part)

        with scoring_threads(len(x)):
            run_all([functools.partial(squares, i) for i in range(len(runs))])
        return bool(np.isnan(sums).any())
    with np.errstate(invalid="ignore", over="ignore"):
        if not np.isnan(np.add.reduce(x, axis=None)):
            return False
    return bool(np.isnan(x).any())


def kept_apart(rows: np.ndarray) -> np.ndarray:
    """*rows* in memory of their own, laid out as they were, for a state that outlives a
    scratch buffer they are a view of."""
    return np.copy(rows, order="K")


def _features(
    x: np.ndarray,
    differenced: np.ndarray,
    lag: int,
    window: int,
    state: StreamState | None,
    own: bool = False,
    out: Callable[[tuple[int, ...], str], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, StreamState]:
    """Features = levels (or lag differences) averaged over the last *window* rows.

    A moving mean rather than an EWMA: its memory ends after *window* rows, so an alarm
    clears at most *window* rows after the signal is back to normal. The first rows of a
    series average fewer rows; their factor ``sqrt(window / rows)`` widens the limits.
    *state* carries the last ``lag + window`` raw rows, so a series scored in pieces gets
    exactly the features it would get in one piece. With *own*, *x* is a scratch copy the
    caller gives up: the features are computed in it (training: no second copy). *out*
    gives a float array of a shape and order (``"C"`` or ``"F"``) for the block the caller
    holds it, which takes the state's rows stacked before *x* and the features instead of
    new arrays, laid out as those would be; the state's tail is then a copy.
    """
    n, width = x.shape
    history = state.tail if state is not None else np.empty((0, width))
    count = state.count if state is not None else 0
    stacked = out is not None and len(history) > 0 and np.result_type(history, x) == np.float64
    if stacked:
        assert out is not None
        # the order np.vstack gives, which depends on the strides of both parts, not on
        # their lengths: that of a stack of the history and two rows of x
        extended = out((len(history) + n, width), _layout(np.vstack([history, x[:2]])))
        extended[: len(history)], extended[len(history) :] = history, x
    else:
        extended = np.vstack([history, x]) if len(history) else x
    past = len(extended) - n
    rows = np.arange(1, len(extended) + 1)
    if differenced.any() or window > 1:
        if own and extended is x:
            f = extended
        elif out is not None:
            f = out(extended.shape, _layout(extended))
            np.copyto(f, extended)
        else:
            f = extended.astype(float, copy=True)
        for j in np.flatnonzero(differenced):
            column = extended[:, j]
            f[lag:, j] -= column[:-lag]
            f[:lag, j] -= column[:1]
        if window > 1:
            _moving_mean(f, window)
    else:
        f = extended  # levels as they are: no copy
    seen = np.minimum(rows, window)[past:]
    factor = np.sqrt(window / seen) if window > 1 else np.ones(n)
    tail = extended[-(lag + window) :]
    if stacked:  # the state outlives the buffer
        tail = kept_apart(tail)
    return f[past:], factor, StreamState(tail, count + n)


def _moving_mean(f: np.ndarray, window: int) -> None:
    """Replace each row of *f* by the mean of the last *window* rows (fewer at the start),
    in place: a running sum, then differences taken from the last block back, so that
    each block still reads unreplaced sums."""
    np.cumsum(f, axis=0, out=f)
    for block in reversed(list(blocks(len(f)))):
        i = np.arange(block.start, block.stop)
        earlier = np.zeros((len(i), f.shape[1]))
        has = i >= window
        earlier[has] = f[i[has] - window]
        f[block] = (f[block] - earlier) / np.minimum(i + 1, window)[:, None]


def _robust_scale(rows: RowBlocks) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std; a flat sensor gets 0.1 % of its magnitude as scale, so a later change
    registers without every float wiggle becoming infinite."""
    mean, std, _ = mean_std(rows)
    magnitude = np.maximum(np.abs(mean), 1.0)
    return mean, np.where(std > 1e-9 * magnitude, std, 1e-3 * magnitude)


def select_sensors(frame: pd.DataFrame, config: TrainConfig) -> list[str]:
    if config.sensors is not None:
        missing = [s for s in config.sensors if s not in frame.columns]
        if missing:
            raise UserError(
                f"sensors {', '.join(missing)} not in the dataset "
                f"(columns: {', '.join(map(str, frame.columns))})"
            )
        return list(config.sensors)
    return [str(c) for c in frame.columns]


def train(
    frame: pd.DataFrame | Sequence[pd.DataFrame],
    config: TrainConfig = TrainConfig(),
    *,
    exclude: Sequence[tuple[pd.Timestamp, pd.Timestamp]] = (),
) -> Model:
    """Fit on *frame* (UTC DatetimeIndex, ``component\\sensor`` or plain columns).

    *frame* may also be a sequence of frames, one per asset of a fleet sharing a template
    model: each is resampled and featurised on its own (a moving mean or a difference never
    spans two assets, and equal timestamps of different assets are all kept), and their rows
    are pooled. ``info["input_rows"]`` counts the rows after resampling, over all frames.

    *exclude* lists ``(start, end)`` periods that are not normal (labelled faults, §2):
    they are left out of training.

    Rows are never copied as a whole: the rows used are a mask over the features, and every
    pass over them goes block by block (:mod:`cloud.inference.blockwise`), so training
    needs about one copy of the data (none without smoothing or differencing).
    """
    segments = [frame] if isinstance(frame, pd.DataFrame) else list(frame)
    if not segments:
        raise UserError("training data: no frame given")
    sensors = select_sensors(segments[0], config)
    if not sensors:
        raise UserError("training data has no sensor column")
    if len(sensors) > MAX_MODEL_SENSORS:
        raise UserError(
            f"training data: {len(sensors)} sensors; an L4E model takes at most "
            f"{MAX_MODEL_SENSORS} (l4e-contracts §1.4): choose them with --sensors"
        )
    raws, keeps = [], []
    for segment in segments:
        raw, keep = _training_rows(segment, sensors, config, exclude)
        raws.append(raw)
        keeps.append(keep)
    kept = sum(int(k.sum()) for k in keeps)
    need = max(10, 2 * len(sensors))
    if kept < need:
        raise UserError(
            f"training data: {kept} rows with the machine on and outside labels; "
            f"need at least {need} for {len(sensors)} sensors"
        )
    fill = np.nan_to_num(_pooled_nanmean(raws, keeps))
    xs = [gaps_filled(raw, fill) for raw in raws]
    del raws
    differenced = np.zeros(len(sensors), dtype=bool)
    if config.difference == "auto":
        differenced = _lag1_autocorrelation(xs, keeps) > config.difference_above
    warmup = config.smoothing - 1
    if differenced.any():
        warmup += config.difference_lag
    features, fits = [], []
    for x, keep in zip(xs, keeps, strict=True):
        y = x
        if differenced.any() or config.smoothing > 1:
            f, _, _ = _features(
                x.copy(), differenced, config.difference_lag, int(config.smoothing), None, own=True
            )
            y = Patched(f)
        features.append(y)
        fits.append(keep & (np.arange(len(y)) >= min(warmup, int(keep.sum()) // 4)))
    profile_x, profile_at = _profile_sample(xs, fits, config.seed)
    del xs
    change_runs = _change_sample(fits, config)
    if len(features) == 1:  # one frame: its rows are used in place, through the mask
        y, fit = features[0], fits[0]
    else:  # a fleet: the fitted rows of every asset pooled
        y = Patched(
            np.vstack([f.take(np.flatnonzero(k)) for f, k in zip(features, fits, strict=True)])
        )
        fit = np.ones(len(y), dtype=bool)
    del features
    rng = np.random.default_rng(config.seed)
    center, scale = _robust_scale(lambda: selected(y, fit))
    fit_rows = np.flatnonzero(fit)
    if len(fit_rows) > 20_000:
        fit_rows = fit_rows[rng.choice(len(fit_rows), 20_000, replace=False)]
    sample = (y.take(fit_rows) - center) / scale
    if config.max_modes > 1:
        centroids = _choose_modes(sample, config.max_modes, rng)
    else:
        centroids = mean_std(lambda: ((p - center) / scale for p in selected(y, fit)))[0][None]
    mode = np.full(len(y), -1, dtype=np.intp)
    for block in blocks(len(y)):
        rows = fit[block]
        if rows.any():
            g = (y.block(block)[rows] - center) / scale
            mode[block][rows] = _sqdist(g, centroids).argmin(1)
    gross = np.zeros(len(y), dtype=bool)
    for m in range(len(centroids)):
        rows = np.flatnonzero(mode == m)
        flags = _gross_outliers(y, rows, config.outlier_z)
        if len(rows) - flags.sum() >= need:
            gross[rows[flags]] = True
    use = fit & ~gross
    n = len(sensors)
    means, scales, phis = [], [], []
    for m in range(len(centroids)):
        in_mode = use & (mode == m)
        mu, sd = _robust_scale(lambda in_mode=in_mode: selected(y, in_mode))
        means.append(mu)
        scales.append(sd)

        def standardised(
            in_mode: np.ndarray = in_mode, mu: np.ndarray = mu, sd: np.ndarray = sd
        ) -> Iterator[np.ndarray]:
            return ((part - mu) / sd for part in selected(y, in_mode))

        phis.append(
            _fit_mode(standardised, config.variance_kept, config.threshold_quantile).reshape(n, n)
        )
    model = Model(
        sensors,
        config,
        fill=fill,
        differenced=differenced,
        center=center,
        scale=scale,
        centroids=centroids,
        mode_means=np.asarray(means),
        mode_scales=np.asarray(scales),
        mode_phi=np.asarray(phis),
        threshold=1.0,
    )
    s = np.concatenate(
        [model.contributions(part, np.ones(len(part))).sum(1) for part in selected(y, use)]
    )
    model.threshold = max(
        float(np.quantile(s, config.threshold_quantile)) * config.threshold_margin, 1e-9
    )
    model.change_limit = _change_limit(model, y, change_runs)
    model.info.update(
        {
            "input_rows": sum(len(keep) for keep in keeps),
            "training_rows": int(use.sum()),
            "modes": len(centroids),
            "mode_rows": np.bincount(mode[use], minlength=len(centroids)).tolist(),
            "differenced": [sensors[i] for i in np.flatnonzero(differenced)],
            "outlier_rows_left_out": int(gross.sum()),
            "threshold": model.threshold,
            "change_limit": model.change_limit,
            # the readings trained on, per operating mode, for input drift (cloud.inference.drift)
            "profile": training_profile(
                profile_x[use[profile_at]],
                sensors,
                mode[profile_at][use[profile_at]],
                len(centroids),
            ),
        }
    )
    return model


def _change_sample(fits: Sequence[np.ndarray], config: TrainConfig) -> list[np.ndarray]:
    """Where the change test's limit is set: each asset's fitted rows in time order, in
    evenly spaced blocks of consecutive rows, at most ``CHANGE_LIMIT_ROWS`` over all assets
    (a 0.999 quantile needs a few hundred thousand values, not a year of rows). Blocks are
    drawn per asset, so a block never spans two assets of a fleet.

    Each block is an index into the rows training fits on: the frame's own rows for one
    frame, the pooled fitted rows for a fleet. Indices rather than copies, so the sample
    does not sit beside the pooled features for the whole fit (a copy was ~50 MB at a
    year of 3 pumps x 10 sensors)."""
    if config.alarm is None:
        return []
    overlap = 2 * config.alarm.changes.window_rows - 1
    total = sum(int(fit.sum()) for fit in fits)
    block = 10_000
    pooled = len(fits) > 1
    runs, offset = [], 0
    for fit in fits:
        rows = np.flatnonzero(fit)
        share = max(1, round(CHANGE_LIMIT_ROWS * len(rows) / max(total, 1) / block))
        starts = range(0, max(len(rows) - overlap, 1), block)
        if len(starts) > share:
            starts = [starts[i] for i in np.linspace(0, len(starts) - 1, share).astype(int)]
        for start in starts:
            index = rows[start : start + block + overlap]
            if len(index):
                runs.append(offset + np.arange(start, start + len(index)) if pooled else index)
        offset += len(rows)
    return runs


def _change_limit(
    model: Model, y: np.ndarray | Patched, runs: Sequence[np.ndarray]
) -> float | None:
    """The change test's limit on the rows of *y* that *runs* index
    (:func:`_change_sample`), in the whitened units the alarm rules use; None without
    alarm rules or when no run is long enough for the test's two windows."""
    alarm = model.config.alarm
    if alarm is None:
        return None
    scale = 1.0 / np.sqrt(model.threshold)
    rows = (y.take(run) if isinstance(y, Patched) else y[run] for run in runs)
    deviations = (model.deviations(x, np.ones(len(x)))[0] * scale for x in rows)
    return fit_limit(deviations, alarm.changes)


PROFILE_ROWS = 50_000
"""Readings kept for the training profile: deciles need a sample, not every row."""


def _profile_sample(
    xs: list[Patched], fits: list[np.ndarray], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A sample of the fitted readings (gaps filled) for the training profile, and where
    each sits among the rows training pools (the index of ``mode`` and ``use``): a frame's
    own row when there is one frame, its place among every frame's fitted rows otherwise.
    Its own generator, so the model itself is what it would be without it."""
    rows = [np.flatnonzero(fit) for fit in fits]
    total = sum(len(r) for r in rows)
    picked = np.arange(total)
    if total > PROFILE_ROWS:
        picked = np.sort(np.random.default_rng(seed + 1).choice(total, PROFILE_ROWS, replace=False))
    offsets = np.cumsum([0] + [len(r) for r in rows])
    parts, at = [], []
    for i, (x, own) in enumerate(zip(xs, rows, strict=True)):
        mine = picked[(picked >= offsets[i]) & (picked < offsets[i + 1])] - offsets[i]
        parts.append(np.asarray(x.take(own[mine]), dtype=float))
        at.append(own[mine] if len(xs) == 1 else mine + offsets[i])
    width = xs[0].shape[1] if xs else 0
    sample = np.vstack(parts) if parts else np.empty((0, width))
    return sample, np.concatenate(at) if at else np.empty(0, dtype=np.intp)


def _training_rows(
    frame: pd.DataFrame,
    sensors: list[str],
    config: TrainConfig,
    exclude: Sequence[tuple[pd.Timestamp, pd.Timestamp]],
) -> tuple[np.ndarray, np.ndarray]:
    """One asset's resampled sensor rows (a view of the frame when it can be), and which of
    them are normal, machine-on data."""
    missing = [s for s in sensors if s not in frame.columns]
    if missing:
        raise UserError(f"training data: a frame lacks sensors {', '.join(missing)}")
    frame = resample(frame, config.sampling_rate)
    keep = np.ones(len(frame), dtype=bool)
    if config.off_condition:
        keep &= ~OffCondition.parse(config.off_condition).mask(frame)
    for start, end in exclude:
        keep &= ~((frame.index >= start) & (frame.index <= end))
    raw = _matrix(frame, sensors)
    keep &= ~np.isnan(raw).all(1)
    return raw, keep


def _pooled_nanmean(raws: list[np.ndarray], keeps: list[np.ndarray]) -> np.ndarray:
    """Column means over the kept rows of every frame, NaN where a column has none."""
    if len(raws) == 1:
        return nanmean_rows(raws[0], keeps[0])
    pooled = np.vstack([raw[keep] for raw, keep in zip(raws, keeps, strict=True)])
    return nanmean_rows(pooled, np.ones(len(pooled), dtype=bool))


def _gross_outliers(y: Patched, rows: np.ndarray, z: float | None) -> np.ndarray:
    """Flags for ``y[rows]`` (the rows of one operating mode): a feature more than *z*
    robust standard deviations (median, MAD) from the mode's median. Unlabelled faults in
    training data must not widen "normal". Flags nothing when more than 5 % of the rows
    would go (heavy tails, not faults). Medians go column by column, flags block by block:
    no copy of the mode's rows."""
    flags = np.zeros(len(rows), dtype=bool)
    if z is None or len(rows) < 20:
        return flags
    width = y.shape[1]
    median, mad = np.empty(width), np.empty(width)
    for j in range(width):
        column = y.column(j, rows)
        median[j] = np.median(column)
        mad[j] = 1.4826 * np.median(np.abs(column - median[j]))
    usable = mad > 0
    if not usable.any():
        return flags
    for block in blocks(len(rows)):
        part = y.take(rows[block])[:, usable]
        flags[block] = (np.abs(part - median[usable]) / mad[usable] > z).any(1)
    return flags if flags.sum() <= 0.05 * len(rows) else np.zeros(len(rows), dtype=bool)


def _lag1_autocorrelation(xs: list[Patched], keeps: list[np.ndarray]) -> np.ndarray:
    """Lag-1 autocorrelation of each column over the kept rows of every frame, in order
    and pooled (as if the other rows were not there), one column at a time."""
    rows = [np.flatnonzero(keep) for keep in keeps]
    out = np.zeros(xs[0].shape[1])
    if sum(len(r) for r in rows) < 3:
        return out
    for j in range(len(out)):
        column = np.concatenate([x.column(j, r) for x, r in zip(xs, rows, strict=True)])
        a, b = column[:-1] - column[:-1].mean(), column[1:] - column[1:].mean()
        denom = np.sqrt((a * a).sum() * (b * b).sum())
        out[j] = (a * b).sum() / denom if denom > 0 else 0.0
    return out
