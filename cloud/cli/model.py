"""``plantwatch model train|evaluate|list|describe|health|push``: L4E datasets in, versioned models out."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cloud.cli import aws_target
from cloud.cli.output import (
    Column,
    print_fields,
    print_json,
    print_line,
    print_table,
    progress,
    stderr,
)
from cloud.cli.times import TIMESTAMP_FORMATS
from cloud.cli.times import parse_time_option as _timestamp
from cloud.runtime.layout import DEFAULT_DATA_DIR as DEFAULT_DATA
from cloud.runtime.layout import DataLayout
from edge.cliargs import add_subcommands, float_range, int_range, positive_int

NO_LABELS = "no labels: quality not measured"
NO_LABELS_IN_RANGE = "no labelled period in the scored range: quality not measured"
GRADE_LEGEND = (
    "grades: High = no issue found; Medium = a potential issue (listed); "
    "Low = no data, under 14 days of data, or over 50 % missing or invalid values"
)


def model_name(text: str) -> str:
    """A ModelName (L4E's pattern), checked before any data is read: the name becomes a
    folder, and a bad one used to fail only after minutes of reading and training."""
    from cloud.inference.registry import MODEL_NAME_RE

    if not MODEL_NAME_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"expected a model name of 1-200 letters, digits, '_' or '-', got {text!r}"
        )
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_subcommands(parser, "action")
    train = sub.add_parser(
        "train",
        help="train a model version from an L4E dataset folder",
        description="Train a new model version from an L4E dataset folder; prints the data "
        "grade of every sensor and, with labels, the model's quality.",
    )
    _common(train)
    train.add_argument("--dataset", required=True, help="folder of <component>/*.csv")
    _flat_delimiter(train)
    train.add_argument(
        "--labels",
        help="label CSV or folder of them (start,end per line); without labels "
        "quality is not measured",
    )
    train.add_argument(
        "--name", "--model", dest="name", required=True, type=model_name, help="model name"
    )
    train.add_argument("--sampling-rate", help="TargetSamplingRate, PT1S..PT1H")
    train.add_argument(
        "--off-condition", help="rows where this holds are off, e.g. 'pump\\motor_current < 1'"
    )
    train.add_argument("--sensors", help="comma-separated component\\sensor names to use")
    train.add_argument(
        "--template",
        metavar="COMPONENT",
        help="train a component-agnostic model on this component's sensors (fleet use)",
    )
    train.add_argument(
        "--train-start", metavar="TIME", help=f"training range start: {TIMESTAMP_FORMATS}"
    )
    train.add_argument("--train-end", metavar="TIME", help="training range end (same forms)")
    train.add_argument(
        "--eval-start",
        metavar="TIME",
        help="evaluation range start (same forms); default: evaluate on the training range",
    )
    train.add_argument("--eval-end", metavar="TIME", help="evaluation range end (same forms)")
    train.add_argument(
        "--smoothing",
        type=int_range(1, 100_000, what="a whole number from 1 to 100000"),
        default=1,
        help="rows in the moving mean before scoring, at most 100000; 1 = none (default 1)",
    )
    train.add_argument(
        "--difference",
        choices=("none", "auto"),
        default="none",
        help="auto: score slowly wandering sensors by their change, not their level (default none)",
    )
    train.add_argument(
        "--threshold-margin",
        type=float_range(1.0, what="a number of at least 1"),
        default=1.5,
        help="multiplier on the training threshold; higher = fewer alarms (default 1.5)",
    )
    train.add_argument(
        "--max-modes",
        type=positive_int,
        default=4,
        help="most operating modes to find; 1 = one mode (default 4)",
    )
    train.add_argument(
        "--no-alarm-rules",
        action="store_true",
        help="predict row by row (anomaly_score > 0.5) instead of with alarm episodes "
        "(raise, hold, and end at a new operating point; see docs/model.md)",
    )

    evaluate = sub.add_parser(
        "evaluate",
        help="score labelled data; precision, recall, F1 and detection delay",
        description="Score a labelled dataset with a trained model and compare with the labels.",
    )
    _common(evaluate)
    evaluate.add_argument(
        "--name", "--model", dest="name", required=True, type=model_name, help="model name"
    )
    evaluate.add_argument(
        "--version", type=positive_int, help="model version (default: the active one)"
    )
    evaluate.add_argument("--dataset", required=True, help="folder of <component>/*.csv")
    _flat_delimiter(evaluate)
    evaluate.add_argument(
        "--labels", required=True, help="label CSV or folder of them (start,end per line)"
    )
    evaluate.add_argument("--component", help="component to score with a template model")
    evaluate.add_argument(
        "--start", "--from", dest="start", metavar="TIME", help=f"range start: {TIMESTAMP_FORMATS}"
    )
    evaluate.add_argument(
        "--end", "--to", dest="end", metavar="TIME", help="range end (same forms)"
    )

    listing = sub.add_parser(
        "list", help="models and their versions", description="List models and their versions."
    )
    _common(listing)
    describe = sub.add_parser(
        "describe",
        help="one model: config, sensors, evaluation",
        description="Show one model: its versions, configuration, sensors and evaluation.",
    )
    _common(describe)
    describe.add_argument("name", type=model_name, help="model name")

    health = sub.add_parser(
        "health",
        help="per asset: anomaly rate per day, input drift, retrain suggestion",
        description="Model health in production, from a data directory: per asset, the share"
        " of anomalous results per day and each sensor's input drift (population stability"
        " index of the recent input CSVs against the training distribution). Suggests"
        " retraining when a sensor's PSI or the latest day's anomaly rate reaches its"
        " threshold. Reads only.",
    )
    _common(health)
    health.add_argument(
        "--model", help="model to judge against (default: the scheduler's, or the only one)"
    )
    health.add_argument(
        "--window-hours",
        type=float_range(1 / 60, 24 * 365, what="hours from 1/60 to 8760"),
        default=24.0,
        help="recent input compared with the training data, ending at the newest input "
        "file (default 24)",
    )
    health.add_argument(
        "--psi-threshold",
        type=float_range(0.01, 10, what="a PSI from 0.01 to 10"),
        default=0.25,
        help="suggest retraining at this PSI or more (default 0.25: a significant shift)",
    )
    health.add_argument(
        "--rate-threshold",
        type=float_range(0.0001, 1, what="a share from 0.0001 to 1"),
        default=0.2,
        help="suggest retraining when the latest day's anomaly rate reaches this (default 0.2)",
    )

    push = sub.add_parser(
        "push",
        help="copy a model version to the AWS deployment (where the inference function reads it)",
        description="Copy a model version (the active one by default) from --data to models/ "
        "in the deployment's artifacts bucket, as the newest active version there. Pushing "
        "the same version again adds nothing.",
    )
    _common(push)
    push.add_argument("name", type=model_name, help="model name")
    push.add_argument(
        "--version", type=positive_int, help="local version to push (default: the active one)"
    )
    aws_target.add_arguments(push, aws_target.ARTIFACTS, required=True)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA,
        metavar="DIR",
        help="data directory holding models/ (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    if args.action == "train":
        return _train(args, DataLayout.planned(args.data).registry())
    hint = f"train a model with `plantwatch model train --data {args.data}`"
    registry = DataLayout.existing(args.data, hint).registry()
    if args.action == "push":
        return _push(args, registry)
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
            print_table(
                [{**r, "Versions": ", ".join(f"v{v}" for v in r["Versions"])} for r in rows],
                [
                    Column("model", "ModelName"),
                    Column("active", "ActiveModelVersion", "right"),
                    Column("versions", "Versions"),
                ],
                empty=f"no models found in {registry.where}",
            )
        return 0
    if args.action == "health":
        return _health(args)
    if args.action == "describe":
        document = registry.describe(args.name)
        if args.json:
            print_json(document)
        else:
            _print_description(document)
        return 0
    return _evaluate(args, registry)


def _config_fields(config: dict[str, Any]) -> dict[str, Any]:
    """One line per setting; the alarm rules one line per part, as ``name=value`` pairs."""
    fields: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            for part, settings in value.items():
                text = settings
                if isinstance(settings, dict):
                    text = ", ".join(f"{k}={v}" for k, v in settings.items())
                fields[f"config {key}.{part}"] = text
        else:
            fields[f"config {key}"] = value
    return fields


def _push(args: argparse.Namespace, local: Any) -> int:
    version = args.version or local.active_version(args.name)
    target = aws_target.AwsTarget(args)
    remote = target.registry()
    stderr.print(
        f"pushing {local.location(args.name, version)} to {remote.where} ...", markup=False
    )
    pushed, copied = remote.copy_from(local, args.name, version)
    document = {
        "ModelName": args.name,
        "LocalVersion": version,
        "ModelVersion": pushed,
        "Copied": copied,
        "Path": remote.location(args.name, pushed),
    }
    if args.json:
        print_json(document)
    else:
        print_fields(
            {
                "model": f"{args.name} v{version} (local)",
                "on AWS": f"{document['Path']} (active)",
                "copied": "yes" if copied else "no: already the active version there",
            }
        )
    stderr.print(f"next: plantwatch schedulers create NAME --model {args.name} --aws", markup=False)
    return 0


def _print_description(document: dict[str, Any]) -> None:
    info = document.get("Info") or {}
    fields = {
        "model": document["ModelName"],
        "active version": document["ActiveModelVersion"],
        "versions": ", ".join(f"v{v}" for v in document["Versions"]),
        "template": "yes" if document.get("Template") else "no",
        "sensors": ", ".join(document["Sensors"]),
        **_config_fields(document.get("Config") or {}),
        **{f"info {k}": v for k, v in info.items() if k != "profile"},
    }
    if "profile" in info:
        fields["info profile"] = (
            f"training distribution of {len(info['profile'])} sensors (`model health` drift)"
        )
    print_fields(fields)
    evaluation = document.get("Evaluation")
    if evaluation:
        print_line()
        labelled = evaluation.get("model_quality") != "CANNOT_DETERMINE_QUALITY"
        _print_evaluation(evaluation, labelled=labelled)


def _health(args: argparse.Namespace) -> int:
    from cloud.dashboard.model_health import HealthOptions, model_health
    from cloud.dashboard.queries import DataView

    options = HealthOptions(
        model=args.model,
        window_s=args.window_hours * 3600,
        psi_threshold=args.psi_threshold,
        rate_threshold=args.rate_threshold,
    )
    doc = model_health(DataView(args.data), options)
    if args.json:
        print_json(doc)
        return 0
    rows = [
        {
            "asset": a["key"],
            "rate": "" if a["latest_anomaly_rate"] is None else f"{a['latest_anomaly_rate']:.1%}",
            "psi": "" if a["max_psi"] is None else f"{a['max_psi']:.3f}",
            "drifted": ", ".join(a["drifted"]),
            "retrain": "yes" if a["retrain"] else "no",
            "why": "; ".join(
                [
                    *a["reasons"],
                    *([a["note"]] if a["note"] else []),
                    *(f"left out, unreadable: {u['file']}: {u['error']}" for u in a["unreadable"]),
                ]
            ),
        }
        for a in doc["assets"]
    ]
    print_line(
        f"model {doc['model'] or '(none)'}: PSI threshold {args.psi_threshold:g}, "
        f"anomaly-rate threshold {args.rate_threshold:.0%}, window {args.window_hours:g} h"
    )
    print_table(
        rows,
        [
            Column("asset", "asset"),
            Column("anomaly rate (last day)", "rate", "right"),
            Column("max PSI", "psi", "right"),
            Column("drifted sensors", "drifted"),
            Column("retrain", "retrain"),
            Column("why", "why"),
        ],
        empty="no assets with results or input files found",
    )
    return 0


def _slice(frame: Any, start: Any, end: Any) -> Any:
    if start is not None:
        frame = frame[frame.index >= start]
    if end is not None:
        frame = frame[frame.index <= end]
    return frame


def check_csv_headers(dataset: str | Path) -> None:
    """Refuse a dataset CSV whose first line is too long to be a header before any is
    parsed: the CSV reader takes a line whole, so a gigabyte first line cost gigabytes of
    memory and minutes before it was discarded. Only the first line of each file is read."""
    from edge import user_files

    root = Path(dataset)
    if not root.is_dir():
        return  # the dataset reader names a missing folder
    for path in sorted(root.rglob("*.csv")):
        if path.is_file():  # the reader discards what is not a regular file, with its reason
            user_files.read_header_line(path, str(path), limit=user_files.MAX_HEADER_BYTES)


def _flat_delimiter(parser: argparse.ArgumentParser) -> None:
    from cloud.l4e.naming import KEY_PATTERN_DELIMITERS

    parser.add_argument(
        "--flat-delimiter",
        choices=KEY_PATTERN_DELIMITERS,
        help="read CSVs flat in the dataset folder as <component><D>*.csv, the component "
        "being the name up to the first D (L4E's KeyPattern {prefix}/{component_name}"
        "[DELIMITER]*: '_', ' ', '.' or '-'); default: up to the first '_' or space",
    )


def _train(args: argparse.Namespace, registry: Any) -> int:
    from cloud.inference.model import TrainConfig
    from cloud.inference.train_job import TrainJob, run_train_job

    check_csv_headers(args.dataset)
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
        **({"alarm": None} if args.no_alarm_rules else {}),
    )
    job = TrainJob(
        dataset=Path(args.dataset),
        flat_delimiter=args.flat_delimiter,
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
    with progress(None, f"model train {args.name}") as bar:
        outcome = run_train_job(job, registry, bar)
    for warning in outcome.warnings:  # JSON or not: stdout stays the document
        stderr.print(f"warning: {warning}", markup=False, soft_wrap=True)
    model, version, quality, evaluation = (
        outcome.model,
        outcome.version,
        outcome.quality,
        outcome.evaluation,
    )
    train_s, labels = outcome.train_s, outcome.labels
    document = {
        "ModelName": args.name,
        "ModelVersion": version,
        "Path": registry.location(args.name, version),
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
        return 0
    stderr.print(f"trained {args.name} v{version} in {train_s:.2f} s", markup=False)
    print_table(
        [
            {
                "sensor": stats["Name"],
                "grade": stats["Grade"],
                "issues": "; ".join(sensor_issues(stats)) or "none",
            }
            for stats in quality["SensorStatistics"]
        ],
        [Column("sensor", "sensor"), Column("grade", "grade"), Column("issues", "issues")],
        title="data quality by sensor",
    )
    print_line(GRADE_LEGEND)
    print_line()
    print_fields(
        {
            "model": f"{args.name} v{version}",
            "path": document["Path"],
            "training rows": document["TrainingRows"],
            "operating modes": document["Modes"],
        }
    )
    if labels:
        print_line(f"quality ({evaluation['range']} range): {evaluation['model_quality']}")
    _print_evaluation(evaluation, labelled=bool(labels))
    return 0


def sensor_issues(stats: dict[str, Any]) -> list[str]:
    """Why a sensor is not graded High, in words (``SensorStatisticsSummary`` in, phrases out)."""
    issues = []
    if not stats["DataExists"]:
        return ["no data"]
    if stats.get("ShortDateRange"):
        issues.append("under 14 days of data")
    for key, label in (
        ("MissingValues", "missing"),
        ("InvalidValues", "invalid"),
        ("InvalidDateEntries", "bad timestamps"),
        ("DuplicateTimestamps", "duplicate timestamps"),
    ):
        count = stats[key]
        if count["Count"]:
            issues.append(f"{label} {count['Count']} ({count['Percentage']:g} %)")
    if stats["CategoricalValues"]["Status"] != "NO_ISSUE_DETECTED":
        issues.append(f"categorical ({stats['CategoricalValues']['NumberOfCategory']} values)")
    if stats["MultipleOperatingModes"]["Status"] != "NO_ISSUE_DETECTED":
        issues.append("multiple operating modes")
    gaps = stats["LargeTimestampGaps"]
    if gaps["Status"] != "NO_ISSUE_DETECTED":
        issues.append(
            f"{gaps['NumberOfLargeTimestampGaps']} large gaps (max "
            f"{gaps['MaxTimestampGapInDays']:g} days)"
        )
    monotonic = stats["MonotonicValues"]
    if monotonic["Status"] != "NO_ISSUE_DETECTED":
        issues.append(f"monotonic ({monotonic.get('Monotonicity', '').lower() or 'one way'})")
    return issues


def _print_evaluation(evaluation: dict[str, Any], *, labelled: bool) -> None:
    """Precision, recall, F1 and delays; without labels there is nothing to compare with."""
    if not labelled or (not evaluation.get("events") and not evaluation.get("labelled_rows")):
        print_line(NO_LABELS_IN_RANGE if labelled else NO_LABELS)
        print_fields(
            {
                "scored rows": evaluation.get("rows"),
                "rows flagged anomalous": f"{evaluation.get('false_alarm_rate_pct', 0):g} %",
            }
        )
        return
    delay = evaluation.get("detection_delay_s") or {}

    def seconds(value: Any) -> str:
        return "-" if value is None else f"{value:g} s"

    print_fields(
        {
            "precision": evaluation["precision"],
            "recall": evaluation["recall"],
            "F1": evaluation["f1"],
            "false alarm rate": f"{evaluation['false_alarm_rate_pct']:g} %",
            "events detected": f"{evaluation['events_detected']} of {evaluation['events']}",
            "false alarm events": evaluation.get("false_alarm_events"),
            "detection delay": f"mean {seconds(delay.get('mean'))}, "
            f"median {seconds(delay.get('median'))}, max {seconds(delay.get('max'))}",
        }
    )


def _evaluate(args: argparse.Namespace, registry: Any) -> int:
    from cloud.inference.dataset import load_dataset, load_labels
    from cloud.inference.evaluation import evaluate
    from cloud.inference.monitor import Monitor
    from edge.errors import UserError

    model = registry.load(args.name, args.version)
    check_csv_headers(args.dataset)
    with progress(2, f"model evaluate {args.name}: loading {args.dataset}") as bar:
        dataset = load_dataset(args.dataset, delimiter=args.flat_delimiter)
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
        bar.advance()
        bar.stage(f"model evaluate {args.name}: scoring {len(frame):,} rows")
        result = Monitor(model).score(frame).result  # as the scheduler predicts
        bar.advance()
    document = evaluate(
        result.index,
        result.prediction,
        result.machine_off,
        [(label.start, label.end) for label in labels],
    )
    if args.json:
        print_json(document)
    else:
        _print_evaluation(document, labelled=bool(labels))
    return 0
