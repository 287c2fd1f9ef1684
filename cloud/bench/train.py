"""``plantwatch bench train``: training time and scoring rate on generated plant data.

The data: ``--rows`` (525,600 = one year at one minute) x ``--sensors`` (30), three
operating modes driven by a shared load, correlated sensors, noise, seeded. Training and
scoring run on the full frame through the public ``train`` / ``Model.score`` API
(resampling skipped: the data are already regular).
"""

from __future__ import annotations

import argparse
import os
import time

from cloud.cli.output import print_report, stderr
from edge.cliargs import non_negative_int, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rows", type=positive_int, default=525_600, help="rows of synthetic data (default 525600)"
    )
    parser.add_argument(
        "--sensors", type=positive_int, default=30, help="sensors per row (default 30)"
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=3, help="scoring runs; the median is kept"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")


def generate(rows: int, sensors: int, seed: int = 0):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    modes = np.array([20.0, 50.0, 80.0])
    mode = np.repeat(rng.integers(0, 3, rows // 600 + 1), 600)[:rows]
    load = modes[mode] + rng.normal(0, 2.0, rows)
    gains = rng.uniform(0.2, 3.0, sensors)
    offsets = rng.uniform(-10, 10, sensors)
    noise = rng.uniform(0.2, 2.0, sensors)
    values = load[:, None] * gains + offsets + rng.normal(0, 1, (rows, sensors)) * noise
    index = pd.date_range("2025-01-01", periods=rows, freq="60s", tz="UTC")
    columns = [f"asset\\s{i:02d}" for i in range(sensors)]
    return pd.DataFrame(values, index=index, columns=columns)


def run(args: argparse.Namespace) -> int:
    import statistics

    from cloud.inference.model import TrainConfig, train

    began = time.perf_counter()
    frame = generate(args.rows, args.sensors, args.seed)
    stderr.print(f"generated {args.rows} x {args.sensors} in {time.perf_counter() - began:.1f} s")
    began = time.perf_counter()
    model = train(frame, TrainConfig())
    train_s = time.perf_counter() - began
    rates = []
    for _ in range(max(1, args.repeat)):
        began = time.perf_counter()
        result = model.score(frame)
        rates.append(len(result.index) / (time.perf_counter() - began))
    document = {
        "rows": args.rows,
        "sensors": args.sensors,
        "train_s": round(train_s, 2),
        "score_rows_per_s": round(statistics.median(rates)),
        "score_rows_per_s_runs": [round(r) for r in rates],
        "modes": model.info["modes"],
        "false_alarm_pct_on_training": round(100 * float(result.prediction.mean()), 3),
        "cpus": os.cpu_count(),
        "goal": {"train_s": 60, "score_rows_per_s": 500_000},
    }
    print_report(document, as_json=args.json)
    return 0
