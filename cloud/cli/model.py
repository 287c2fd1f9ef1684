"""``plantwatch model train|evaluate|list|describe``: L4E datasets in, versioned models out."""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any

from cloud.cli.output import print_json, stderr
from cloud.runtime.layout import DEFAULT_DATA_DIR as DEFAULT_DATA
from cloud.runtime.layout import DataLayout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="train a model version from an L4E dataset folder")
    _common(train)
    train.add_argument("--dataset", required=True, help="folder of <component>/*.csv")
    train.add_argument("--labels", help="label CSV or folder of them (start,end per line)")
    train.add_argument("--name", required=True, help="model name")
    train.add_argument("--sampling-rate", help="TargetSamplingRate, PT1S..PT1H")
    train.add_argument("--off-condition", help="e.g. 'pump\\motor_current < 1'")
    train.add_argument("--sensors", help="comma-separated component\\sensor names to use")
    train.add_argument(
        "--template",
        metavar="COMPONENT",
        help="train a component-agnostic model on this component's sensors (fleet use)",
    )
    for which in ("train", "eval"):
        train.add_argument(f"--{which}-start", help=f"{which}ing range start (any §1.2 format)")
        train.add_argument(f"--{which}-end", help=f"{which}ing range end")
    train.add_argument("--smoothing", type=int, default=1, help="moving-mean rows")
    train.add_argument("--difference", choices=("none", "auto"), default="none")
    train.add_argument("--threshold-margin", type=float, default=1.5)
    train.add_argument("--max-modes", type=int, default=4)

    evaluate = sub.add_parser("evaluate", help="score labelled data; precision/recall/F1")
    _common(evaluate)
    evaluate.add_argument("--name", required=True)
    evaluate.add_argument("--version", type=int)
    evaluate.add_argument("--dataset", required=True)
    evaluate.add_argument("--labels", required=True)
    evaluate.add_argument("--component", help="component to score with a template model")
    evaluate.add_argument("--start")
    evaluate.add_argument("--end")

    listing = sub.add_parser("list", help="models and their versions")
    _common(listing)
    describe = sub.add_parser("describe", help="one model: config, sensors, evaluation")
    _common(describe)
    describe.add_argument("name")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=DEFAULT_DATA, help="state folder (models/, state.db)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    from cloud.inference.registry import ModelRegistry

    registry = ModelRegistry(DataLayout(Path(args.data)).models)
    if args.action == "list":
        rows = [
            {
                "ModelName": name,
                "ActiveModelVersion": registry.active_version(name),
                "Versions": registry.versions(name),
            }
            for name in registry.names()
        ]
        if args.json:
            print_json(rows)
        else:
            for row in rows:
                print(f"{row['ModelName']}\tv{row['ActiveModelVersion']}\t{row['Versions']}")
        return 0
    if args.action == "describe":
        document = registry.describe(args.name)
        if args.json:
            print_json(document)
        else:
            for key, value in document.items():
                print(f"{key}: {value}")
        return 0
    if args.action == "train":
        return _train(args, registry)
    return _evaluate(args, registry)


def _timestamp(text: str | None, option: str) -> Any:
    if text is None:
        return None
    import pandas as pd

    from cloud.inference.dataset import parse_timestamps
    from edge.errors import UserError

    parsed = parse_timestamps([text])[0]
    if pd.isna(parsed) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        parsed = pd.Timestamp(text.strip(), tz="UTC")
    if pd.isna(parsed):
        raise UserError(
            f"--{option} {text!r}: expected a date (2026-01-01) or timestamp (2026-01-01T00:00:00)"
        )
    return parsed


def _slice(frame: Any, start: Any, end: Any) -> Any:
    if start is not None:
        frame = frame[frame.index >= start]
    if end is not None:
        frame = frame[frame.index <= end]
    return frame


class _StageLines:
    """Progress of ``model train`` as one stderr line per stage (and per 10 s of scoring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.began = time.monotonic()
        self.last = self.began
        self.total: float | None = None
        self.done = 0.0

    def stage(self, description: str, total: float | None = None) -> None:
        self.total, self.done = total, 0.0
        self._line(description)

    def advance(self, amount: float = 1.0) -> None:
        self.done += amount
        if self.total and time.monotonic() - self.last >= 10:
            self._line(f"  {self.done / self.total:.0%}")

    def _line(self, text: str) -> None:
        self.last = time.monotonic()
        stderr.print(
            f"model train {self.name}: {text} [{self.last - self.began:.1f} s]", markup=False
        )


def _train(args: argparse.Namespace, registry: Any) -> int:
    from cloud.inference.model import TrainConfig
    from cloud.inference.train_job import TrainJob, run_train_job

    sensors = tuple(s.strip() for s in args.sensors.split(",")) if args.sensors else None
    off = args.off_condition
    if args.template and off and "\\" in off:
        off = off.split("\\", 1)[1]
    config = TrainConfig(
        sampling_rate=args.sampling_rate,
        off_condition=off,
        sensors=sensors,
        smoothing=args.smoothing,
        difference=args.difference,
        threshold_margin=args.threshold_margin,
        max_modes=args.max_modes,
    )
    job = TrainJob(
        dataset=Path(args.dataset),
        name=args.name,
        config=config,
        labels=Path(args.labels) if args.labels else None,
        template=args.template,
        train_range=(
            _timestamp(args.train_start, "train-start"),
            _timestamp(args.train_end, "train-end"),
        ),
        eval_range=(
            _timestamp(args.eval_start, "eval-start"),
            _timestamp(args.eval_end, "eval-end"),
        ),
    )
    outcome = run_train_job(job, registry, _StageLines(args.name))
    model, version, quality, evaluation = (
        outcome.model,
        outcome.version,
        outcome.quality,
        outcome.evaluation,
    )
    train_s = outcome.train_s
    document = {
        "ModelName": args.name,
        "ModelVersion": version,
        "Path": str(registry.path(args.name, version)),
        "Sensors": list(model.sensors),
        "TrainingRows": model.info["training_rows"],
        "Modes": model.info["modes"],
        "train_s": model.info["train_s"],
        "Grades": quality["Grades"],
        "ModelQuality": evaluation["model_quality"],
        "Evaluation": {k: v for k, v in evaluation.items() if k != "counts"},
    }
    if args.json:
        print_json(document)
    else:
        stderr.print(f"trained {args.name} v{version} in {train_s:.2f} s ({document['Path']})")
        for name, grade in quality["Grades"].items():
            print(f"{name}\t{grade}")
        print(f"quality: {evaluation['model_quality']}  F1 {evaluation['f1']}")
    return 0


def _evaluate(args: argparse.Namespace, registry: Any) -> int:
    from cloud.inference.dataset import load_dataset, load_labels
    from cloud.inference.evaluation import evaluate
    from edge.errors import UserError

    model = registry.load(args.name, args.version)
    dataset = load_dataset(args.dataset)
    labels = load_labels(args.labels)
    if model.is_template:
        component = args.component or next(iter(dataset.components))
        if component not in dataset.components:
            raise UserError(f"--component {component}: not in {args.dataset}")
        frame = dataset.component_frame(component)
    else:
        frame = dataset.frame
    frame = _slice(frame, _timestamp(args.start, "start"), _timestamp(args.end, "end"))
    if frame.empty:
        raise UserError(f"{args.dataset}: no rows in the evaluation range")
    result = model.score(frame)
    document = evaluate(
        result.index,
        result.prediction,
        result.machine_off,
        [(label.start, label.end) for label in labels],
    )
    if args.json:
        print_json(document)
    else:
        for key in ("precision", "recall", "f1", "false_alarm_rate_pct"):
            print(f"{key}: {document[key]}")
        delay = document["detection_delay_s"]
        print(
            f"events detected: {document['events_detected']}/{document['events']}  "
            f"delay mean {delay['mean']} s, max {delay['max']} s"
        )
    return 0
