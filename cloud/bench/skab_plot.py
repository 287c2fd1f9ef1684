"""``plantwatch bench skab --plot DIR``: one PNG per scored file, to see what the detector did.

The figures of ``bench skab`` say how often the detector was right; a picture of one file
says where and why it was wrong (an alarm that came late, a false alarm after the plant
settled elsewhere, a fault no sensor shows). Only what the report already computed is
drawn, so ``--plot`` changes no figure. matplotlib is imported when a plot is written
(with the Agg backend, as :mod:`cloud.runtime.report` does): ``--help`` and runs without
``--plot`` do not pay for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloud.bench.skab import Detection, Experiment

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_STEM_CHARS = 100
"""Long enough for any SKAB or simulator name; keeps a file name well under 255 bytes."""


def plot_names(experiments: Sequence[Experiment]) -> list[str]:
    """``group_file.png`` per experiment, in order: only letters, digits, ``.``, ``_`` and
    ``-`` (a slice's ``#k`` reads ``-k``), a ``.csv`` dropped; a name that repeats gets
    ``-2``, ``-3`` and so on, so no plot overwrites another."""
    names: list[str] = []
    taken: set[str] = set()
    for exp in experiments:
        base, _, piece = exp.name.split("/")[-1].partition("#")
        base = base.removesuffix(".csv") + (f"-{piece}" if piece else "")
        stem = _safe(f"{_safe(exp.group)}_{_safe(base)}")
        name, k = f"{stem}.png", 1
        while name.lower() in taken:
            k += 1
            name = f"{stem}-{k}.png"
        taken.add(name.lower())
        names.append(name)
    return names


def _safe(text: str) -> str:
    cleaned = _UNSAFE.sub("_", text).lstrip("._-")[:_STEM_CHARS].rstrip(".")
    return cleaned or "file"


def plot(
    path: Path,
    experiment: Experiment,
    detection: Detection,
    train_rows: int,
    figures: Mapping[str, Any],
) -> None:
    """Score, threshold, labelled anomalies, alarms and changepoints above; the sensors in
    units of their spread over the training head below, on one time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    frame = experiment.frame
    sensors = experiment.sensors()
    head = sensors.iloc[:train_rows]
    spread = head.std().replace(0.0, 1.0).fillna(1.0)
    standardised = ((sensors - head.mean()) / spread).iloc[train_rows:]
    times = frame.index[train_rows:]
    labelled = experiment.labelled
    scored = frame.iloc[train_rows:]

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 6.5), sharex=True)
    top.plot(times, detection.score, color="tab:red", lw=1, label="anomaly score")
    top.axhline(0.5, color="grey", ls="--", lw=0.8, label="threshold (0.5)")
    if labelled:
        truth = scored["anomaly"].to_numpy() == 1
        top.fill_between(
            times,
            0,
            1,
            where=truth,
            step="mid",
            color="tab:orange",
            alpha=0.2,
            transform=top.get_xaxis_transform(),
            label="labelled anomaly",
        )
        for k, when in enumerate(times[scored["changepoint"].to_numpy() == 1]):
            label = "labelled changepoint" if k == 0 else None
            top.axvline(when, color="black", lw=1, alpha=0.7, label=label)
            bottom.axvline(when, color="black", lw=1, alpha=0.7)
    alarm = detection.anomaly == 1
    top.fill_between(
        times, 1.04, 1.1, where=alarm, step="mid", color="tab:purple", label="alarm (prediction 1)"
    )
    top.set_ylim(0, 1.12)
    top.set_ylabel("score")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    for column in standardised.columns:
        bottom.plot(times, standardised[column].to_numpy(dtype=np.float64), lw=0.8, label=column)
    bottom.set_ylabel("sensor, sigmas of the head")
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    top.set_title(_title(experiment, figures))
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _title(experiment: Experiment, figures: Mapping[str, Any]) -> str:
    name = experiment.name
    if "/" not in name:  # --dataset was the group's own folder
        name = f"{experiment.group}/{name}"
    if not experiment.labelled:
        return f"{name}: no anomalies labelled, FAR {figures['far_pct']:.2f} %"
    return (
        f"{name}: F1 {figures['f1']:.3f}, FAR {figures['far_pct']:.2f} %, "
        f"MAR {figures['mar_pct']:.2f} %"
    )
