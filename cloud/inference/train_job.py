"""Train a model version from an L4E dataset folder, end to end: read, grade, train, score
the training (or evaluation) range, save the model, its reports and its diagnostics.

This is ``plantwatch model train`` without the command line. It is written for datasets
of a year and more: the CSVs are parsed straight to one float block, the model trains on
it without copying it (:mod:`cloud.inference.blockwise`), and the scored range goes to
``model_diagnostics_results.json.gz`` block by block while it is scored
(:mod:`cloud.inference.diagnostics`). A year of one-minute data for 30 sensors (118 MB of
CSV) takes seconds and about twice the CSV's size in memory.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from cloud.inference.dataset import (
    load_dataset,
    load_labels,
    nested_components_warning,
    short_range_warning,
    to_microseconds,
)
from cloud.inference.diagnostics import DIAGNOSTICS_FILE, GzipLineWriter
from cloud.inference.evaluation import evaluate
from cloud.inference.heap import release_free_memory
from cloud.inference.model import Model, TrainConfig, train
from cloud.inference.monitor import Monitor
from cloud.inference.quality import quality_report
from cloud.inference.registry import ModelRegistry
from cloud.inference.results import iter_result_rows
from edge.errors import UserError

TimeRange = tuple[pd.Timestamp | None, pd.Timestamp | None]


class Progress(Protocol):
    """What the job reports as it goes (the CLI draws it on stderr)."""

    def stage(self, description: str, total: float | None = None) -> None: ...

    def advance(self, amount: float = 1.0) -> None: ...


class _Trimming:
    """Passes progress on, and returns freed memory to the OS at every step of it."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def stage(self, description: str, total: float | None = None) -> None:
        release_free_memory()
        self.progress.stage(description, total)

    def advance(self, amount: float = 1.0) -> None:
        release_free_memory()
        self.progress.advance(amount)


class _Silent:
    def stage(self, description: str, total: float | None = None) -> None:
        pass

    def advance(self, amount: float = 1.0) -> None:
        pass


@dataclass(frozen=True)
class TrainJob:
    dataset: Path
    name: str
    config: TrainConfig
    labels: Path | None = None
    flat_delimiter: str | None = None
    """How CSVs flat in *dataset* name their component (:func:`load_dataset`'s *delimiter*)."""
    template: str | None = None
    """Train a component-agnostic model on this component's sensors."""
    train_range: TimeRange = (None, None)
    eval_range: TimeRange = (None, None)


@dataclass
class TrainOutcome:
    model: Model
    version: int
    path: str
    """Where the version lives, for people (``<models>/<name>/v<N>``)."""
    quality: dict[str, Any]
    evaluation: dict[str, Any]
    train_s: float
    scored_rows: int
    labels: int
    """Labelled periods read (0: quality cannot be determined)."""
    warnings: list[str] = field(default_factory=list)
    """One line each, for the user (``short-date-range``: under 180 days of history)."""


def run_train_job(
    job: TrainJob, registry: ModelRegistry, progress: Progress | None = None
) -> TrainOutcome:
    """Train, save and describe one new version of ``job.name`` (it becomes active)."""
    progress = _Trimming(progress or _Silent())
    progress.stage(f"reading {job.dataset}")
    dataset = load_dataset(job.dataset, delimiter=job.flat_delimiter)
    labels = load_labels(job.labels) if job.labels else []
    periods = [(label.start, label.end) for label in labels]
    if job.template:
        if job.template not in dataset.components:
            raise UserError(
                f"--template {job.template}: no such component in {job.dataset} "
                f"(components: {', '.join(dataset.components)})"
            )
        frame = dataset.component_frame(job.template)
    else:
        frame = dataset.frame
    frame = to_microseconds(frame)  # the diagnostics lines name times to the microsecond
    training = _between(frame, *job.train_range)
    if training.empty:
        raise UserError(f"{job.dataset}: no rows in the training range")
    warnings = dataset.discard_warnings() + [
        w
        for w in [
            nested_components_warning(dataset, job.dataset),
            short_range_warning(training.index, f"the training data of {job.dataset}"),
        ]
        if w
    ]
    progress.stage(f"grading {sum(map(len, dataset.components.values()))} sensors")
    quality = quality_report(dataset)
    progress.stage(f"training on {len(training):,} rows x {training.shape[1]} sensors")
    began = time.perf_counter()
    model = train(training, job.config, exclude=periods)
    train_s = time.perf_counter() - began
    model.info["train_s"] = round(train_s, 3)
    model.info["template_component"] = job.template
    has_eval_range = any(t is not None for t in job.eval_range)
    scored = _between(frame, *job.eval_range) if has_eval_range else training
    names = model.sensor_names(job.template)
    staging = registry.staging()
    if staging is not None:
        staging.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{job.name}-", dir=staging))
    try:
        index, prediction, machine_off = _score_into(
            folder / DIAGNOSTICS_FILE, model, scored, names, progress
        )
        evaluation = evaluate(index, prediction, machine_off, periods)
        evaluation["range"] = "evaluation" if has_eval_range else "training"
        evaluation["model_quality"] = (
            "CANNOT_DETERMINE_QUALITY"
            if not labels
            else ("QUALITY_THRESHOLD_MET" if evaluation["f1"] >= 0.5 else "POOR_QUALITY_DETECTED")
        )
        progress.stage("saving", total=1)
        version = registry.save(job.name, model, {"quality": quality, "evaluation": evaluation})
        registry.put_file_from(job.name, version, DIAGNOSTICS_FILE, folder / DIAGNOSTICS_FILE)
        progress.advance()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    path = registry.location(job.name, version)
    return TrainOutcome(
        model, version, path, quality, evaluation, train_s, len(scored), len(labels), warnings
    )


def _score_into(
    path: Path, model: Model, frame: pd.DataFrame, names: tuple[str, ...], progress: Progress
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Score *frame* piece by piece into the gzipped lines at *path*, with the model's alarm
    rules as the scheduler applies them (:mod:`cloud.inference.monitor`); what evaluation
    needs."""
    progress.stage(f"scoring {len(frame):,} rows", total=len(frame))
    index, prediction, machine_off = [], [], []
    with GzipLineWriter(path) as diagnostics:
        for watched in Monitor(model).score_blocks(frame):
            result = watched.result
            for lines in iter_result_rows(result, names):
                diagnostics.write(lines)
            index.append(result.index)
            prediction.append(result.prediction)
            machine_off.append(result.machine_off)
            progress.advance(len(result.index))
    return (
        _concat_index(index),
        np.concatenate(prediction) if prediction else np.zeros(0, dtype=np.int8),
        np.concatenate(machine_off) if machine_off else np.zeros(0, dtype=bool),
    )


def _between(frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None) -> Any:
    """Rows with ``start <= t <= end``; the frame itself (no copy) when unbounded."""
    if start is not None:
        frame = frame[frame.index >= start]
    if end is not None:
        frame = frame[frame.index <= end]
    return frame


def _concat_index(parts: list[pd.DatetimeIndex]) -> pd.DatetimeIndex:
    if not parts:
        return pd.DatetimeIndex([], tz="UTC")
    return parts[0].append(parts[1:]) if len(parts) > 1 else parts[0]
