"""``plantwatch bench skab --cv``: choose the detector's settings so they hold on new files.

A setting chosen on the files it is scored on does not hold: chosen on SKAB's valve1
group, the false-alarm rate tripled on the groups it had not seen. So settings are
chosen here on many folds and judged by the folds they were not chosen on.

Folds (each scored with SKAB's protocol: train on the head, score the rest):

* every labelled SKAB file under ``--dataset`` on its own (leave one file out);
* every unlabelled SKAB file (``anomaly-free.csv``) cut into experiments of
  ``--slice-rows`` rows: a pure false-alarm check, one fold per file;
* the simulator's SKAB-shaped set (:mod:`simulator.skab`): its nine fault types, faults
  that end, and a plant that often settles at a different operating point afterwards;
  one fold per fault type.

Each setting of a small grid gets a score per fold, ``J = min(1, F1/0.85) +
min(1, NAB/35) + min(1, (100 - FAR)/90)`` (each goal counts up to its target; a fold
without anomalies counts ``3 min(1, (100 - FAR)/90)``). A setting's merit is the mean of
the group means of ``J`` less its worst fold's shortfall from the best ``J`` any setting
reaches on that fold: a setting must do well on average *and* never be far behind what is
possible on any fold, and the best total never decides. (The shortfall rather than the
raw worst ``J``: otherwise the worst fold is always a file no setting can detect.)

Every fold is reported with the setting chosen *without* it (nested leave-one-fold-out),
so its figures are out of sample for that choice; the totals pool those held-out
predictions. The setting chosen on all folds is reported too, with its figures marked
in-sample.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud.bench.skab import (
    SKAB_CHANGE_FIELDS,
    SKAB_CONFIG_FIELDS,
    SKAB_EPISODE_FIELDS,
    Detection,
    Experiment,
    Tally,
    alarm_config,
    find_files,
    read_experiment,
    tally,
    train_head,
    watch,
)
from cloud.cli.output import Column, print_fields, print_json, print_table, stderr

if TYPE_CHECKING:
    from cloud.cli.output import Progress

MODEL_GRID: dict[str, tuple[Any, ...]] = {"threshold_margin": (2.0, 2.5)}
EPISODE_GRID: dict[str, tuple[Any, ...]] = {
    "raise_rows": (8, 12),
    "clear_rows": (12, 24),
    "end_back": (None, 0.3),
    "clear_settle_rows": (0, 100),
    "turn_cos": (None, 0.0),
    "trip_ratio": (None, 3.0, 2.0),
    "trip_rows": (1, 2),
    "trip_curve": ("step", "inverse"),
}
CHANGE_GRID: dict[str, tuple[Any, ...]] = {"window_rows": (20,)}
UNUSED_UNLESS: dict[str, tuple[str, Any]] = {
    "settle_guard": ("clear_settle_rows", 0),
    "turn_size": ("turn_cos", None),
    "turn_still": ("turn_cos", None),
    "trip_rows": ("trip_ratio", None),
    "trip_curve": ("trip_ratio", None),
}
"""Episode settings that change nothing while another one has the value given."""
GOALS = {"f1": 0.85, "nab_standard": 35.0, "far_pct": 10.0}
SIMULATOR_GROUP = "simulator"


@dataclass(frozen=True)
class Setting:
    model: tuple[tuple[str, Any], ...]
    episodes: tuple[tuple[str, Any], ...]
    changes: tuple[tuple[str, Any], ...] = ()

    def fields(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        return (
            {**SKAB_CONFIG_FIELDS, **dict(self.model)},
            {**SKAB_EPISODE_FIELDS, **dict(self.episodes)},
            {**SKAB_CHANGE_FIELDS, **dict(self.changes)},
        )

    def describe(self) -> dict[str, Any]:
        return {
            "model": dict(self.model),
            "episodes": dict(self.episodes),
            "changes": dict(self.changes),
        }


@dataclass(frozen=True)
class Fold:
    group: str
    name: str
    experiments: tuple[int, ...]
    """Indexes into the experiment list."""
    labelled: bool


def settings(
    model_grid: Mapping[str, Iterable[Any]] = MODEL_GRID,
    episode_grid: Mapping[str, Iterable[Any]] = EPISODE_GRID,
    change_grid: Mapping[str, Iterable[Any]] = CHANGE_GRID,
) -> list[Setting]:
    """Every combination, without duplicates that cannot differ (:data:`UNUSED_UNLESS`:
    the guard of settling after a clear means nothing without it, nor the size of a turn
    without the turn rule; on the inverse trip curve only ``trip_rows * (trip_ratio - 1)``
    matters, and the first combination in grid order stands for each)."""
    episodes: list[tuple[tuple[str, Any], ...]] = []
    seen = set()
    for combo in _product(episode_grid):
        fields = dict(combo)
        for name, (other, off) in UNUSED_UNLESS.items():
            if fields.get(other, SKAB_EPISODE_FIELDS[other]) == off:
                fields.pop(name, None)
        ratio = fields.get("trip_ratio", SKAB_EPISODE_FIELDS["trip_ratio"])
        if fields.get("trip_curve") == "inverse" and ratio is not None:
            rows = fields.pop("trip_rows", SKAB_EPISODE_FIELDS["trip_rows"])
            fields["trip_ratio"] = rows * (ratio - 1.0)
        key = tuple(sorted(fields.items(), key=lambda kv: kv[0]))
        if key not in seen:
            seen.add(key)
            episodes.append(combo)
    return [
        Setting(model, combo, change)
        for model in _product(model_grid)
        for combo in episodes
        for change in _product(change_grid)
    ]


def _product(grid: Mapping[str, Iterable[Any]]) -> list[tuple[tuple[str, Any], ...]]:
    return list(itertools.product(*([(k, v) for v in vs] for k, vs in grid.items())))


def fold_score(figures: Mapping[str, Any], labelled: bool) -> float:
    """``J`` of one fold (see the module docstring): 3 when every goal is met."""
    far = min(1.0, (100.0 - figures["far_pct"]) / (100.0 - GOALS["far_pct"]))
    if not labelled:
        return 3.0 * far
    return (
        min(1.0, figures["f1"] / GOALS["f1"])
        + min(1.0, figures["nab_standard"] / GOALS["nab_standard"])
        + far
    )


def merit(scores: Mapping[Fold, float], best: Mapping[Fold, float]) -> float:
    """Mean of the group means of ``J``, less the largest shortfall from the best ``J`` any
    setting reaches on a fold (the worst fold, judged by what is possible there: a fold
    that no setting can detect, such as a fault that moves no sensor, decides nothing)."""
    groups: dict[str, list[float]] = {}
    for fold, value in scores.items():
        groups.setdefault(fold.group, []).append(value)
    mean = sum(sum(v) / len(v) for v in groups.values()) / len(groups)
    return mean - max(best[f] - v for f, v in scores.items())


def experiments(args: argparse.Namespace) -> tuple[list[Experiment], list[Fold]]:
    """The development experiments and their folds."""
    from edge.errors import UserError

    root = Path(args.dataset)
    if args.slice_rows <= args.train_rows:
        raise UserError(
            f"--slice-rows {args.slice_rows}: expected more than --train-rows {args.train_rows}"
        )
    labelled, unlabelled = find_files(root)
    found: list[Experiment] = []
    folds: list[Fold] = []
    for path in labelled:
        exp = read_experiment(path, root, args.train_rows)
        folds.append(Fold(exp.group, exp.name, (len(found),), True))
        found.append(exp)
    for path in unlabelled:
        whole = read_experiment(path, root, args.train_rows)
        pieces = _slices(whole, args.slice_rows)
        if not pieces:
            raise UserError(
                f"{path}: {len(whole.frame)} rows; need --slice-rows {args.slice_rows} or more"
            )
        folds.append(
            Fold(whole.group, whole.name, tuple(range(len(found), len(found) + len(pieces))), False)
        )
        found.extend(pieces)
    if args.sim_per_type > 0:
        from simulator import skab as simulated

        by_type: dict[str, list[int]] = {}
        for case, frame in simulated.iter_frames(args.sim_per_type, args.sim_seed):
            by_type.setdefault(case.fault.value, []).append(len(found))
            found.append(Experiment(f"{SIMULATOR_GROUP}/{case.name}", SIMULATOR_GROUP, frame))
        for fault, members in by_type.items():
            folds.append(Fold(SIMULATOR_GROUP, f"{SIMULATOR_GROUP}/{fault}", tuple(members), True))
    if not any(f.labelled for f in folds):
        raise UserError(f"{root}: no labelled SKAB CSV and no simulated files (--sim-per-type 0)")
    if len(folds) < 2:
        raise UserError(f"{root}: cross-validation needs at least two folds, found {len(folds)}")
    return found, folds


def _slices(whole: Experiment, rows: int) -> list[Experiment]:
    frame = whole.frame
    count = len(frame) // rows
    return [
        Experiment(f"{whole.name}#{k}", whole.group, frame.iloc[k * rows : (k + 1) * rows])
        for k in range(count)
    ]


def evaluate(
    found: list[Experiment],
    grid: list[Setting],
    train_rows: int,
    window_s: float,
    scored: Callable[[], None] | None = None,
) -> list[list[Tally]]:
    """``tallies[setting][experiment]``: one model per experiment and model setting
    (trained on the head as the product trains), each setting's alarm rules run on it
    through the monitor the scheduler and streaming use. *scored* is called after each
    setting on each experiment: the long part of ``--cv``, so a caller can show progress."""
    tallies: list[list[Tally]] = [[] for _ in grid]
    for exp in found:
        sensors = exp.sensors()
        models = {}
        for i, setting in enumerate(grid):
            model_fields, episode_fields, change_fields = setting.fields()
            alarm = alarm_config(episode_fields, change_fields)
            key = (setting.model, setting.changes)
            if key not in models:
                models[key] = train_head(sensors, train_rows, model_fields, alarm)
            detection = watch(models[key], sensors, train_rows, alarm)
            tallies[i].append(tally(exp, detection, train_rows, window_s))
            if scored is not None:
                scored()
    return tallies


def held_out_detections(
    found: list[Experiment],
    folds: list[Fold],
    grid: list[Setting],
    chosen: Sequence[int],
    train_rows: int,
) -> Iterator[tuple[Experiment, Detection]]:
    """Each experiment's predictions under the setting chosen without its fold
    (``chosen[k]`` for ``folds[k]``): the predictions the report's held-out figures count,
    made again as :func:`evaluate` made them, since keeping every setting's would not fit."""
    for fold, index in zip(folds, chosen, strict=True):
        model_fields, episode_fields, change_fields = grid[index].fields()
        alarm = alarm_config(episode_fields, change_fields)
        for i in fold.experiments:
            sensors = found[i].sensors()
            model = train_head(sensors, train_rows, model_fields, alarm)
            yield found[i], watch(model, sensors, train_rows, alarm)


def fold_tally(tallies: list[Tally], fold: Fold) -> Tally:
    total = Tally()
    for i in fold.experiments:
        total += tallies[i]
    return total


def fold_scores(tallies: list[list[Tally]], folds: list[Fold]) -> list[dict[Fold, float]]:
    """``J`` of every fold under every setting."""
    return [
        {f: fold_score(fold_tally(per_experiment, f).figures(), f.labelled) for f in folds}
        for per_experiment in tallies
    ]


def merit_of(scores: list[dict[Fold, float]], index: int) -> float:
    """The merit of setting *index* over every fold, as :func:`select` ranks it: shows how
    far the shipped setting is from the one chosen, when they differ."""
    best = {f: max(per_fold[f] for per_fold in scores) for f in scores[0]}
    return merit(scores[index], best)


def select(scores: list[dict[Fold, float]], leave_out: Fold | None = None) -> tuple[int, float]:
    """Index of the setting with the best merit over the folds but *leave_out*; the first
    in grid order wins a tie."""
    folds = [f for f in scores[0] if f != leave_out]
    best = {f: max(per_fold[f] for per_fold in scores) for f in folds}
    chosen, chosen_merit = 0, float("-inf")
    for i, per_fold in enumerate(scores):
        value = merit({f: per_fold[f] for f in folds}, best)
        if value > chosen_merit + 1e-12:
            chosen, chosen_merit = i, value
    return chosen, chosen_merit


def run(args: argparse.Namespace) -> int:
    from cloud.cli.output import progress

    with progress(None, "cross-validation: reading the experiments") as bar:
        found, folds = experiments(args)
        grid = settings()
        stderr.print(
            f"cross-validation: {len(found)} experiments in {len(folds)} folds, "
            f"{len(grid)} settings"
        )
        bar.stage(
            f"cross-validation: evaluating {len(grid)} settings on {len(found)} experiments",
            len(grid) * len(found),
        )
        tallies = evaluate(found, grid, args.train_rows, args.window_s, bar.advance)
        bar.stage("cross-validation: scoring the folds", None)
        scores = fold_scores(tallies, folds)
        bar.stage("cross-validation: selecting per fold", len(folds))
        fold_rows: list[dict[str, Any]] = []
        held_out: dict[str, Tally] = {}
        for fold in folds:
            chosen, _ = select(scores, leave_out=fold)
            figures = fold_tally(tallies[chosen], fold).figures()
            held_out[fold.group] = held_out.get(fold.group, Tally()) + fold_tally(
                tallies[chosen], fold
            )
            fold_rows.append(
                {
                    "group": fold.group,
                    "fold": fold.name,
                    "labelled": fold.labelled,
                    "setting": chosen,
                    **figures,
                }
            )
            bar.advance()
        bar.stage("cross-validation: selecting on all folds")
        best, best_merit = select(scores)
        if args.plot:
            _plot_held_out(args, found, folds, grid, [row["setting"] for row in fold_rows], bar)
    shipped = _shipped_index(grid)
    document = {
        "protocol": {
            "train_rows": args.train_rows,
            "nab_window_s": args.window_s,
            "slice_rows": args.slice_rows,
            "sim_per_type": args.sim_per_type,
            "sim_seed": args.sim_seed,
            "fold_score": "J = min(1, F1/0.85) + min(1, NAB/35) + min(1, (100-FAR)/90); "
            "no anomalies: 3 min(1, (100-FAR)/90)",
            "merit": "mean of group means of J - max over folds of (best J on the fold - J); "
            "each fold reported with the setting chosen without it",
        },
        "settings": [s.describe() for s in grid],
        "folds": fold_rows,
        "total": {group: t.figures() for group, t in held_out.items()},
        "selected": {
            "setting": best,
            "fields": grid[best].describe(),
            "merit": round(best_merit, 4),
            "in_sample": _by_group(tallies[best], folds),
        },
        "shipped": {
            "setting": shipped,
            "fields": {
                "model": SKAB_CONFIG_FIELDS,
                "episodes": SKAB_EPISODE_FIELDS,
                "changes": SKAB_CHANGE_FIELDS,
            },
            "merit": round(merit_of(scores, shipped), 4) if shipped is not None else None,
            "in_sample": _by_group(tallies[shipped], folds) if shipped is not None else None,
        },
    }
    if args.json:
        print_json(document)
        return 0
    figures = [
        Column("f1", "f1", "right"),
        Column("far_pct", "far_pct", "right"),
        Column("mar_pct", "mar_pct", "right"),
        Column("nab_standard", "nab_standard", "right"),
        Column("nab_lowfp", "nab_lowfp", "right"),
        Column("nab_lowfn", "nab_lowfn", "right"),
    ]
    print_table(
        fold_rows,
        [Column("fold", "fold"), Column("setting", "setting", "right"), *figures],
        title="each fold, with the setting chosen without it",
    )
    print_table(
        [{"group": group, **f} for group, f in document["total"].items()],
        [Column("group", "group"), *figures],
        title="total of the held-out folds",
    )
    print_fields(
        {"setting": best, **{k: v for k, v in grid[best].describe().items()}},
        title="chosen on all folds",
    )
    return 0


def _plot_held_out(
    args: argparse.Namespace,
    found: list[Experiment],
    folds: list[Fold],
    grid: list[Setting],
    chosen: list[int],
    bar: Progress,
) -> None:
    from cloud.bench.skab_plot import plot, plot_names

    names = dict(zip(map(id, found), plot_names(found), strict=True))
    bar.stage(f"cross-validation: plotting {len(found)} experiments", len(found))
    for exp, detection in held_out_detections(found, folds, grid, chosen, args.train_rows):
        figures = tally(exp, detection, args.train_rows, args.window_s).figures()
        plot(Path(args.plot) / names[id(exp)], exp, detection, args.train_rows, figures)
        bar.advance()


def _by_group(per_experiment: list[Tally], folds: list[Fold]) -> dict[str, Any]:
    groups: dict[str, Tally] = {}
    for fold in folds:
        groups[fold.group] = groups.get(fold.group, Tally()) + fold_tally(per_experiment, fold)
    return {group: t.figures() for group, t in groups.items()}


def _shipped_index(grid: list[Setting]) -> int | None:
    """The grid entry that behaves as the shipped configuration, if any."""
    shipped = (SKAB_CONFIG_FIELDS, SKAB_EPISODE_FIELDS, SKAB_CHANGE_FIELDS)
    for i, setting in enumerate(grid):
        fields = setting.fields()
        own = (dict(setting.model), dict(setting.episodes), dict(setting.changes))
        if fields[0] != shipped[0]:
            continue
        episode_keys = set(own[1])
        for name, (other, off) in UNUSED_UNLESS.items():
            if SKAB_EPISODE_FIELDS.get(other) == off:
                episode_keys.discard(name)
        if all(fields[1][k] == shipped[1].get(k) for k in episode_keys) and all(
            fields[2][k] == shipped[2].get(k) for k in own[2]
        ):
            return i
    return None
