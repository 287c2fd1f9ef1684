"""Scoring a detector against labels: point-wise counts, event delays, and NAB as SKAB does it.

NAB here follows SKAB's evaluation (``core/metrics.py``, the ``tsad`` metrics): one
detection window per true changepoint; where windows overlap the right one is cut to start
where the left one ends ("cut right window"). In each window only the first predicted
changepoint counts, scored by a scaled sigmoid from ``A_tp`` at the window start to
``A_fp`` at its end; a window with none costs ``A_fn``; every prediction outside all
windows costs ``A_fp``. Scores add up over files and are normalised to 0 (null detector,
every window missed) .. 100 (perfect detector).

Two window conventions, both SKAB's, from the same predictions:

* ``window=`` a fixed width to the right of each changepoint, ``[cp, cp + 60 s]``: what
  SKAB's leaderboard and notebooks use since 2024 (``window_width="60s"``,
  ``anomaly_window_destination="righter"``);
* :func:`skab_default_width` with ``side="left"``: the scoring function's own defaults when
  no width is given (``portion=0.1``: a tenth of the scored span divided by the number of
  changepoints plus one, ending at the changepoint, ``"lefter"``), which credits
  detections *before* a change and so is much harder for a causal detector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

NAB_PROFILES: dict[str, tuple[float, float, float]] = {
    "standard": (1.0, -0.11, -1.0),
    "lowfp": (1.0, -0.22, -1.0),
    "lowfn": (1.0, -0.11, -2.0),
}
"""Profile -> (A_tp, A_fp, A_fn)."""


@dataclass
class PointCounts:
    """Point-wise confusion counts; add them across files for micro-averaged rates."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @classmethod
    def of(cls, truth: np.ndarray, prediction: np.ndarray) -> PointCounts:
        t, p = np.asarray(truth, dtype=bool), np.asarray(prediction, dtype=bool)
        return cls(
            int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum()), int((~t & ~p).sum())
        )

    def __add__(self, other: PointCounts) -> PointCounts:
        return PointCounts(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """SKAB's form, ``TP / (TP + (FN + FP) / 2)``, equal to the usual harmonic mean."""
        denom = self.tp + (self.fn + self.fp) / 2
        return self.tp / denom if denom else 0.0

    @property
    def far_pct(self) -> float:
        """False-alarm rate: share of normal points flagged."""
        return 100.0 * self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def mar_pct(self) -> float:
        """Missed-alarm rate: share of anomalous points not flagged."""
        return 100.0 * self.fn / (self.fn + self.tp) if self.fn + self.tp else 0.0


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` row of every maximal run of true values."""
    f = np.asarray(flags, dtype=bool).astype(np.int8)
    edges = np.diff(np.concatenate([[0], f, [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True))


def detection_delays(
    index: pd.DatetimeIndex, truth: np.ndarray, prediction: np.ndarray
) -> list[float | None]:
    """Seconds from each true event's start to the first flagged row inside it (None: missed)."""
    delays: list[float | None] = []
    p = np.asarray(prediction, dtype=bool)
    for first, last in runs(truth):
        hits = np.flatnonzero(p[first : last + 1])
        delays.append(
            None if not len(hits) else (index[first + hits[0]] - index[first]).total_seconds()
        )
    return delays


def changepoints_from_alarms(prediction: np.ndarray) -> np.ndarray:
    """1 where the predicted state changes (alarm raised or cleared), else 0."""
    p = np.asarray(prediction, dtype=np.int8)
    change = np.zeros(len(p), dtype=np.int8)
    if len(p):
        change[0] = p[0]
        change[1:] = np.abs(np.diff(p))
    return change


def nab_windows(
    true_cps: Sequence[pd.Timestamp], width: pd.Timedelta, side: str = "right"
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Detection windows of *width* to the right of each changepoint (``side="right"``),
    ending at it (``"left"``) or centred on it (``"center"``); overlaps cut as SKAB does."""
    if side == "right":
        windows = [[cp, cp + width] for cp in sorted(true_cps)]
    elif side == "left":
        windows = [[cp - width, cp] for cp in sorted(true_cps)]
    elif side == "center":
        windows = [[cp - width / 2, cp + width / 2] for cp in sorted(true_cps)]
    else:
        raise ValueError(f"side {side!r}: expected right, left or center")
    for i in range(len(windows) - 1):
        if windows[i][1] >= windows[i + 1][0]:
            windows[i + 1][0] = windows[i][1]  # SKAB's "cut right window"
    return [(a, b) for a, b in windows]


def skab_default_width(
    index: pd.DatetimeIndex, true_cp: np.ndarray, portion: float = 0.1
) -> pd.Timedelta:
    """SKAB's window width when none is given: ``portion`` of the scored span over the
    number of changepoints plus one."""
    if not len(index):
        return pd.Timedelta(0)
    count = int((np.asarray(true_cp) == 1).sum())
    return (index[-1] - index[0]) / (count + 1) * portion


def _sigmoid_score(
    start: pd.Timestamp, hit: pd.Timestamp, end: pd.Timestamp, a_tp: float, a_fp: float
) -> float:
    """SKAB's "improved" scaled sigmoid: A_tp at the window start, A_fp at its end."""
    detail = 1000
    span = (end - start).total_seconds()
    event = 0 if span <= 0 else int((hit - start).total_seconds() / span * detail)
    event = min(event, detail - 1)
    x = -math.pi / 2 + math.pi * event / (detail - 1)
    half = (a_tp - a_fp) / 2
    return half * -math.tanh(x) / math.tanh(math.pi / 2) + half + a_fp


@dataclass
class NabTally:
    """Raw, null and perfect scores per profile; add across files, then :meth:`normalised`."""

    raw: dict[str, float]
    null: dict[str, float]
    perfect: dict[str, float]

    @classmethod
    def zero(cls) -> NabTally:
        return cls(*({p: 0.0 for p in NAB_PROFILES} for _ in range(3)))

    def __add__(self, other: NabTally) -> NabTally:
        return NabTally(
            *(
                {p: a[p] + b[p] for p in NAB_PROFILES}
                for a, b in (
                    (self.raw, other.raw),
                    (self.null, other.null),
                    (self.perfect, other.perfect),
                )
            )
        )

    def normalised(self) -> dict[str, float]:
        out = {}
        for p in NAB_PROFILES:
            span = self.perfect[p] - self.null[p]
            out[p] = round(100 * (self.raw[p] - self.null[p]) / span, 2) if span else 0.0
        return out


def nab_tally(
    index: pd.DatetimeIndex,
    true_cp: np.ndarray,
    predicted_cp: np.ndarray,
    window: pd.Timedelta = pd.Timedelta(seconds=60),  # noqa: B008 - immutable
    side: str = "right",
) -> NabTally:
    """NAB counts of one file, from 0/1 changepoint series on the same *index*."""
    windows = nab_windows(list(index[np.asarray(true_cp) == 1]), window, side)
    predicted = index[np.asarray(predicted_cp) == 1]
    first_hits: list[pd.Timestamp | None] = []
    outside = np.ones(len(predicted), dtype=bool)
    for start, end in windows:
        inside = (predicted >= start) & (predicted <= end)
        outside &= ~inside
        first_hits.append(predicted[inside][0] if inside.any() else None)
    tally = NabTally.zero()
    for profile, (a_tp, a_fp, a_fn) in NAB_PROFILES.items():
        score = a_fp * int(outside.sum())
        for (start, end), hit in zip(windows, first_hits, strict=True):
            score += a_fn if hit is None else _sigmoid_score(start, hit, end, a_tp, a_fp)
        tally.raw[profile] = score
        tally.null[profile] = len(windows) * a_fn
        tally.perfect[profile] = len(windows) * a_tp
    return tally


def evaluate(
    result_index: pd.DatetimeIndex,
    prediction: np.ndarray,
    machine_off: np.ndarray,
    labels: Sequence[tuple[pd.Timestamp, pd.Timestamp]],
) -> dict[str, object]:
    """Point-wise and event-level figures of one scored range against labelled periods.

    MACHINE_OFF rows are left out (the model makes no claim there). An event is detected
    when any row inside its label is flagged; its delay is from the label start to that
    first flagged row.
    """
    on = ~np.asarray(machine_off, dtype=bool)
    truth = np.zeros(len(result_index), dtype=bool)
    for start, end in labels:
        truth |= (result_index >= start) & (result_index <= end)
    flags = np.asarray(prediction, dtype=bool)
    counts = PointCounts.of(truth[on], flags[on])
    delays = detection_delays(result_index, truth & on, flags & on)
    found = [d for d in delays if d is not None]
    false_events = sum(1 for a, b in runs(flags & on) if not truth[a : b + 1].any())
    return {
        "rows": int(on.sum()),
        "labelled_rows": int((truth & on).sum()),
        "precision": round(counts.precision, 4),
        "recall": round(counts.recall, 4),
        "f1": round(counts.f1, 4),
        "false_alarm_rate_pct": round(counts.far_pct, 3),
        "events": len(delays),
        "events_detected": len(found),
        "false_alarm_events": false_events,
        "detection_delay_s": {
            "mean": round(float(np.mean(found)), 1) if found else None,
            "median": round(float(np.median(found)), 1) if found else None,
            "max": round(float(np.max(found)), 1) if found else None,
            "per_event": delays,
        },
        "counts": {"tp": counts.tp, "fp": counts.fp, "fn": counts.fn, "tn": counts.tn},
    }
