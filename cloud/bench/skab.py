"""``plantwatch bench skab``: the SKAB protocol on every labelled CSV under ``--dataset``.

Per file: train on the first ``--train-rows`` rows (400), then score every row with the
model and its alarm rules through :class:`cloud.inference.monitor.Monitor`, the stage the
scheduler and streaming run (:mod:`cloud.inference.episodes`): no label of the file is
read until its predictions are made. One configuration for every file, no per-file
setting. The predicted changepoints are the rows where an alarm is raised or cleared and
where a move starts or stops (:mod:`cloud.inference.changes`). Reports micro-averaged
F1/FAR/MAR over the scored rows and NAB standard/LowFP/LowFN with SKAB's leaderboard
window (60 s to the right of each true changepoint), the same from alarm edges alone (how
SKAB's published detectors get their changepoints), and with its scoring function's
default window (see :mod:`cloud.inference.evaluation`).

``--cv`` runs the selection protocol instead (:mod:`cloud.bench.skab_cv`).

The model configuration below and the alarm rules every model trains with by default
(``DEFAULT_ALARM``) were chosen by that protocol (worst fold and mean across folds of
valve1 leave-one-file-out, the simulator's SKAB-shaped fault set and the anomaly-free
file), not by the best total on valve1; ``docs/model.md`` has the figures.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud.cli.output import print_report, stderr
from cloud.inference.episodes import DEFAULT_ALARM
from edge.cliargs import float_range, int_range, non_negative_int, positive_int

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from cloud.inference.episodes import AlarmConfig
    from cloud.inference.evaluation import NabTally, PointCounts
    from cloud.inference.model import Model

SKAB_CONFIG_FIELDS: dict[str, Any] = {
    "smoothing": 15,
    "difference": "auto",
    "difference_above": 0.75,
    "difference_lag": 10,
    "variance_kept": 0.7,
    "threshold_quantile": 0.999,
    "threshold_margin": 2.0,
    "max_modes": 1,
    "outlier_z": None,  # the protocol's training rows are normal: keep their tails
}
SKAB_EPISODE_FIELDS: dict[str, Any] = asdict(DEFAULT_ALARM.episodes)
"""The alarm rules a model trains with by default (``cloud.inference.episodes``)."""
SKAB_CHANGE_FIELDS: dict[str, Any] = asdict(DEFAULT_ALARM.changes)
LABELS = ("anomaly", "changepoint")
PUBLISHED_BEST = {"f1": 0.78, "far_pct": 13.55, "nab_standard": 32.42}
"""SKAB's leaderboard (all groups, 60 s window): best F1/FAR (Conv-AE), best NAB (MSCRED)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", help="folder searched for SKAB CSVs (required)")
    # --data was this option's old name; it means the state directory everywhere else
    parser.add_argument("--data", dest="dataset_deprecated", help=argparse.SUPPRESS)
    parser.add_argument(
        "--predictions",
        help="write file,datetime,anomaly,changepoint,score of every scored row here",
    )
    parser.add_argument(
        "--plot",
        metavar="DIR",
        help="write one PNG per scored file here (with --cv: per experiment, from its "
        "held-out predictions): score, threshold, labels, alarms, standardised sensors",
    )
    parser.add_argument(
        "--train-rows",
        type=int_range(10, what="a whole number of at least 10"),
        default=400,
        help="leading rows of each file to train on (default 400)",
    )
    parser.add_argument(
        "--window-s",
        type=float_range(0.0, 31_536_000.0, low_open=True, what="seconds above 0, at most a year"),
        default=60.0,
        help="NAB window to the right of each changepoint, seconds, at most a year (default 60)",
    )
    parser.add_argument(
        "--cv",
        action="store_true",
        help="run the selection protocol: leave-one-file-out, anomaly-free and simulator folds",
    )
    parser.add_argument(
        "--sim-per-type",
        type=non_negative_int,
        default=3,
        help="with --cv: simulated SKAB-shaped files per fault type (default 3; 0: none)",
    )
    parser.add_argument(
        "--sim-seed", type=non_negative_int, default=0, help="with --cv: simulator seed"
    )
    parser.add_argument(
        "--slice-rows",
        type=positive_int,
        default=1150,
        help="with --cv: rows per experiment cut from an unlabelled (anomaly-free) file",
    )


@dataclass
class Experiment:
    """One SKAB-shaped series: sensors, and labels the detector never sees."""

    name: str
    group: str
    frame: pd.DataFrame
    """Naive ``datetime`` index; sensor columns, then ``anomaly`` and ``changepoint``
    when labelled."""

    @property
    def labelled(self) -> bool:
        return set(LABELS) <= set(self.frame.columns)

    def sensors(self) -> pd.DataFrame:
        """The sensor columns on a UTC index: all the detector gets."""
        import pandas as pd

        sensors = self.frame.drop(columns=[c for c in LABELS if c in self.frame.columns])
        sensors.index = pd.DatetimeIndex(sensors.index).tz_localize("UTC")
        return sensors


@dataclass
class Detection:
    """Predictions for the scored rows (after the training head)."""

    anomaly: np.ndarray
    changepoint: np.ndarray
    """Alarm raised or cleared, or a move started or stopped."""
    score: np.ndarray
    alarm_edges: np.ndarray
    """Only where the alarm is raised or cleared (how SKAB's published detectors get
    their changepoints)."""


@dataclass
class Tally:
    """Counts of one or more files; add them, then :meth:`figures`."""

    counts: PointCounts = field(default_factory=lambda: _zero_counts())
    nab: NabTally = field(default_factory=lambda: _zero_nab())
    nab_skab_default: NabTally = field(default_factory=lambda: _zero_nab())
    nab_alarm_edges: NabTally = field(default_factory=lambda: _zero_nab())
    files: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.counts + other.counts,
            self.nab + other.nab,
            self.nab_skab_default + other.nab_skab_default,
            self.nab_alarm_edges + other.nab_alarm_edges,
            self.files + other.files,
        )

    def figures(self) -> dict[str, Any]:
        c = self.counts
        nab = self.nab.normalised()
        default = self.nab_skab_default.normalised()
        edges = self.nab_alarm_edges.normalised()
        return {
            "files": self.files,
            "scored_rows": c.tp + c.fp + c.fn + c.tn,
            "f1": round(c.f1, 4),
            "far_pct": round(c.far_pct, 2),
            "mar_pct": round(c.mar_pct, 2),
            "precision": round(c.precision, 4),
            "recall": round(c.recall, 4),
            "nab_standard": nab["standard"],
            "nab_lowfp": nab["lowfp"],
            "nab_lowfn": nab["lowfn"],
            "nab_skab_default": {
                "standard": default["standard"],
                "lowfp": default["lowfp"],
                "lowfn": default["lowfn"],
            },
            "nab_alarm_edges": {
                "standard": edges["standard"],
                "lowfp": edges["lowfp"],
                "lowfn": edges["lowfn"],
            },
        }


def _zero_counts() -> PointCounts:
    from cloud.inference.evaluation import PointCounts

    return PointCounts()


def _zero_nab() -> NabTally:
    from cloud.inference.evaluation import NabTally

    return NabTally.zero()


def alarm_config(
    episode_fields: Mapping[str, Any] = SKAB_EPISODE_FIELDS,
    change_fields: Mapping[str, Any] = SKAB_CHANGE_FIELDS,
) -> AlarmConfig:
    from cloud.inference.changes import ChangeConfig
    from cloud.inference.episodes import AlarmConfig, EpisodeConfig

    return AlarmConfig(EpisodeConfig(**episode_fields), ChangeConfig(**change_fields))


def train_head(
    sensors: pd.DataFrame,
    train_rows: int,
    model_fields: Mapping[str, Any] = SKAB_CONFIG_FIELDS,
    alarm: AlarmConfig = DEFAULT_ALARM,
) -> Model:
    """The model of one file, trained on its head as ``plantwatch model train`` would (the
    alarm rules' change limit is set on the same rows)."""
    from cloud.inference.model import TrainConfig, train

    return train(sensors.iloc[:train_rows], TrainConfig(**model_fields, alarm=alarm))


def watch(
    model: Model, sensors: pd.DataFrame, train_rows: int, alarm: AlarmConfig | None = None
) -> Detection:
    """Score the whole series as one, as the scheduler and streaming do (the moving mean of
    the first scored rows needs the head's rows), with the model's alarm rules or
    *alarm* (which must use the same change test); predictions of the rows after the
    head."""
    import numpy as np

    from cloud.inference.evaluation import changepoints_from_alarms
    from cloud.inference.monitor import Monitor

    out = Monitor(model, alarm).score(sensors)
    anomaly = out.result.prediction[train_rows:].astype(np.int8)
    edges = changepoints_from_alarms(anomaly)
    moves = out.changepoint[train_rows:]
    return Detection(
        anomaly, np.maximum(edges, moves).astype(np.int8), out.result.score[train_rows:], edges
    )


def detect(
    sensors: pd.DataFrame,
    train_rows: int,
    model_fields: Mapping[str, Any] = SKAB_CONFIG_FIELDS,
    episode_fields: Mapping[str, Any] = SKAB_EPISODE_FIELDS,
    change_fields: Mapping[str, Any] = SKAB_CHANGE_FIELDS,
) -> Detection:
    """The whole detector on one series of sensor columns (no labels)."""
    model = train_head(
        sensors, train_rows, model_fields, alarm_config(episode_fields, change_fields)
    )
    return watch(model, sensors, train_rows)


def tally(experiment: Experiment, detection: Detection, train_rows: int, window_s: float) -> Tally:
    """Score *detection* against the experiment's labels (the only place labels are read);
    an unlabelled experiment counts every scored row as normal and has no changepoint."""
    import numpy as np
    import pandas as pd

    from cloud.inference.evaluation import PointCounts, nab_tally, skab_default_width

    scored = experiment.frame.iloc[train_rows:]
    index = pd.DatetimeIndex(scored.index)
    if experiment.labelled:
        truth = scored["anomaly"].to_numpy() == 1
        true_cp = (scored["changepoint"].to_numpy() == 1).astype(np.int8)
    else:
        truth = np.zeros(len(scored), dtype=bool)
        true_cp = np.zeros(len(scored), dtype=np.int8)
    flags = detection.anomaly == 1
    window = pd.Timedelta(seconds=window_s)
    return Tally(
        PointCounts.of(truth, flags),
        nab_tally(index, true_cp, detection.changepoint, window),
        nab_tally(
            index, true_cp, detection.changepoint, skab_default_width(index, true_cp), "left"
        ),
        nab_tally(index, true_cp, detection.alarm_edges, window),
        1,
    )


def find_files(root: Path) -> tuple[list[Path], list[Path]]:
    """SKAB CSVs under *root*: (labelled, unlabelled), in a stable order."""
    labelled, unlabelled = [], []
    paths = sorted(root.rglob("*.csv"), key=lambda p: (str(p.parent), _numeric(p.stem)))
    for path in paths:
        if not path.is_file():  # a named pipe or a device would block or never end
            continue
        header = _header(path)
        if header[:1] != ["datetime"] or len(header) < 2:
            continue
        (labelled if set(LABELS) <= set(header) else unlabelled).append(path)
    return labelled, unlabelled


def _relative(path: Path, root: Path) -> str:
    """A file's name as the report gives it: relative to ``--dataset``, with '/'."""
    return path.relative_to(root).as_posix() if path != root else path.name


def read_experiment(path: Path, root: Path, train_rows: int) -> Experiment:
    """One SKAB CSV; bad content is a one-line error naming the file."""
    import pandas as pd

    from edge.errors import UserError

    rel = _relative(path, root)
    try:
        frame = pd.read_csv(path, sep=";", index_col="datetime")
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise UserError(f"{path}: not a SKAB CSV ({str(exc).splitlines()[0]})") from None
    try:
        frame.index = pd.to_datetime(frame.index, format="%Y-%m-%d %H:%M:%S")
    except ValueError:
        try:  # SKAB writes YYYY-MM-DD hh:mm:ss; accept other unambiguous ISO forms too
            frame.index = pd.to_datetime(frame.index, format="ISO8601")
        except ValueError:
            raise UserError(
                f"{path}: datetime: expected YYYY-MM-DD hh:mm:ss on every row"
            ) from None
    if getattr(frame.index, "tz", None) is not None:
        frame.index = frame.index.tz_convert(None)
    bad = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise UserError(f"{path}: column {bad[0]!r} is not numeric")
    if not frame.index.is_monotonic_increasing or frame.index.has_duplicates:
        raise UserError(f"{path}: datetime must increase strictly from row to row")
    if len(frame) <= train_rows:
        raise UserError(f"{path}: {len(frame)} rows; need more than --train-rows {train_rows}")
    group = rel.rsplit("/", 1)[0] if "/" in rel else (root.name or ".")
    return Experiment(rel, group, frame)


def run(args: argparse.Namespace) -> int:
    from edge.errors import UserError

    if (args.dataset or args.dataset_deprecated) is None:
        raise UserError("--dataset: required (a folder of SKAB CSVs)")
    args.dataset = args.dataset or args.dataset_deprecated
    if args.predictions and not Path(args.predictions).absolute().parent.is_dir():
        raise UserError(f"--predictions {args.predictions}: its folder does not exist")
    if args.plot:
        plot_folder(args.plot)
    if args.cv:
        from cloud.bench import skab_cv

        if args.predictions:
            raise UserError("--predictions: not with --cv (it scores many settings)")
        return skab_cv.run(args)
    root = Path(args.dataset)
    labelled, unlabelled = find_files(root)
    if not labelled:
        raise UserError(f"{root}: no labelled SKAB CSV (';'-separated with anomaly, changepoint)")
    skipped = [_relative(path, root) for path in unlabelled]
    for name in skipped:
        stderr.print(f"not scored (no {', '.join(LABELS)} columns): {name}")
    from cloud.bench.skab_plot import plot, plot_names
    from cloud.cli.output import progress

    total, groups, frames = Tally(), {}, []
    with progress(len(labelled), f"bench skab: reading {len(labelled)} files") as bar:
        experiments = []
        for path in labelled:
            experiments.append(read_experiment(path, root, args.train_rows))
            bar.advance()
        bar.stage(f"bench skab: scoring {len(experiments)} files", len(experiments))
        plots = plot_names(experiments) if args.plot else []
        for k, exp in enumerate(experiments):
            sensors = exp.sensors()
            model = train_head(sensors, args.train_rows)
            detection = watch(model, sensors, args.train_rows)
            file_tally = tally(exp, detection, args.train_rows, args.window_s)
            total += file_tally
            groups[exp.group] = groups.get(exp.group, Tally()) + file_tally
            c = file_tally.counts
            stderr.print(
                f"{exp.name}: tp={c.tp} fp={c.fp} fn={c.fn} "
                f"alarm edges={int(detection.alarm_edges.sum())} "
                f"changepoints={int(detection.changepoint.sum())} "
                f"differenced={model.info['differenced']}"
            )
            frames.append(_prediction_frame(exp, detection, args.train_rows))
            if args.plot:
                plot(
                    Path(args.plot) / plots[k],
                    exp,
                    detection,
                    args.train_rows,
                    file_tally.figures(),
                )
            bar.advance()
    if args.predictions:
        import pandas as pd

        pd.concat(frames).to_csv(args.predictions, index=False)
    document = {
        **total.figures(),
        "nab_window_s": args.window_s,
        "train_rows": args.train_rows,
        "unlabelled": skipped,
        "groups": {name: t.figures() for name, t in groups.items()},
        "config": SKAB_CONFIG_FIELDS,
        "episodes": SKAB_EPISODE_FIELDS,
        "changes": SKAB_CHANGE_FIELDS,
        "published_best": PUBLISHED_BEST,
    }
    print_report(document, as_json=args.json)
    return 0


def plot_folder(name: str) -> Path:
    """The ``--plot`` folder, made if missing; checked before any long work."""
    from edge.errors import UserError

    folder = Path(name)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--plot {folder}: not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--plot {folder}: cannot make it ({exc.strerror})") from None
    return folder


def _prediction_frame(
    experiment: Experiment, detection: Detection, train_rows: int
) -> pd.DataFrame:
    import pandas as pd

    scored = experiment.frame.iloc[train_rows:]
    return pd.DataFrame(
        {
            "file": experiment.name,
            "datetime": pd.DatetimeIndex(scored.index).strftime("%Y-%m-%d %H:%M:%S"),
            "anomaly": detection.anomaly,
            "changepoint": detection.changepoint,
            "score": detection.score.round(5),
        }
    )


HEADER_CHARS = 64 * 1024
"""Enough for any SKAB header; a file whose first line is longer is no SKAB CSV."""


def _header(path: Path) -> list[str]:
    try:
        with path.open() as fh:
            line = fh.readline(HEADER_CHARS)
    except (OSError, UnicodeDecodeError):
        return []
    if len(line) == HEADER_CHARS and not line.endswith("\n"):
        return []
    return line.strip().split(";")


def _numeric(stem: str) -> tuple[int, str]:
    return (int(stem), "") if stem.isdigit() else (1 << 30, stem)
