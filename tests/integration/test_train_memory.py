"""``plantwatch model train`` from CSV keeps memory in proportion to the data: each extra
megabyte of CSV costs at most three megabytes of peak RSS, the issue's bound (the data held
once as floats is about 1.2 MB per CSV MB, 8 bytes for the ~7 characters of a CSV value;
the allocator's timing adds a varying margin, measured 2.0-2.2). Whole-array copies, or the
diagnostics built in memory, cost 10-60 MB per CSV megabyte and fail this test.

Both runs are larger than the fixed-size samples training keeps (at most 200,000 rows for the
change test's limit, 50,000 readings for the drift profile). Below those caps the samples
grow with the data and read as a steeper slope (3.1 between 20 and 60 days) although they
stop growing beyond them (60 to 120 days: 2.2; 120 to 180 days: 1.7).

The command runs in child processes, as users run it; peak RSS is the kernel's figure for
each child (its ``VmHWM``), so the interpreter's own size cancels out between the two runs.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from cloud.bench.train import run_measured

MB = 2**20


def plantwatch(*argv: str) -> int:
    """Run the CLI in a child; its peak RSS in bytes."""
    return run_measured(list(argv))[1]


def train_peak(tmp_path: Path, days: int) -> tuple[int, int, Path]:
    """Peak RSS of training on *days* of one-minute history for 3 pumps, and CSV bytes."""
    history = tmp_path / f"history-{days}"
    plantwatch(
        "sim", "history", "--assets", "3", "--days", str(days), "--rate", "1min",
        "--seed", "1", "--out", str(history),
    )  # fmt: skip
    csv_bytes = sum(p.stat().st_size for p in (history / "data").rglob("*.csv"))
    state = tmp_path / f"state-{days}"
    peak = plantwatch(
        "model", "train", "--data", str(state), "--dataset", str(history / "data"),
        "--name", "mem", "--json",
    )  # fmt: skip
    return peak, csv_bytes, state / "models" / "mem" / "v1"


def test_peak_memory_grows_at_most_three_times_as_fast_as_the_csv(tmp_path: Path) -> None:
    small_peak, small_csv, _ = train_peak(tmp_path, 60)
    large_peak, large_csv, model = train_peak(tmp_path, 120)
    slope = (large_peak - small_peak) / (large_csv - small_csv)
    assert large_csv - small_csv > 12 * MB
    assert slope <= 3.0, (
        f"peak RSS {small_peak / MB:.0f} MB for {small_csv / MB:.1f} MB of CSV, "
        f"{large_peak / MB:.0f} MB for {large_csv / MB:.1f} MB: {slope:.2f} MB per CSV MB"
    )
    with gzip.open(model / "model_diagnostics_results.json.gz") as lines:
        assert sum(1 for _ in lines) == 120 * 1440
