"""Runners that share one spool file may start together (``rules run`` twice,
``bench ingest --runners 2``): each must open it, even when the file is new and they all
switch it to WAL at the same moment (SQLite answers the losers at once, without waiting)."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

from cloud.batcher.spool import Spool

OPENERS = 4
TRIALS = 20


def _open(path: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        Spool(path, shared=True)
        results.put("")
    except Exception as exc:  # reported to the test, which names it
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_one_new_shared_spool_at_once_all_succeed(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    errors: list[str] = []
    for trial in range(TRIALS):
        path = str(tmp_path / f"spool-{trial}.db")
        barrier, results = ctx.Barrier(OPENERS), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(path, barrier, results)) for _ in range(OPENERS)]
        for proc in procs:
            proc.start()
        errors += [error for error in (results.get(timeout=60) for _ in procs) if error]
        for proc in procs:
            proc.join(10)
    assert errors == []
