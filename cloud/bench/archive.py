"""``bench archive``: archive write rate, a query over 10M readings, and ingest with the
archive on beside ingest with it off.

- **writes** (``readings_per_s``): window files queued as the batcher queues them (the same
  JSON bodies, in a SQLite spool on disk) and turned into Parquet parts by the archive
  writer; timed from the first flush to the queue being empty. A reading here is one
  sensor value, one row of the ``readings`` view.
- **query** (``query_s``): ``--readings`` values written by the writer, compacted, then an
  aggregate over all of them through ``plantwatch query``'s views (median of the runs);
  ``selective_query_s`` reads one asset's one sensor for one hour.
- **ingest** (``ingest``): ``bench ingest``'s end-to-end run (publisher -> broker -> rules
  runner -> batcher -> CSV), alternately without and with the archive, which runs as
  ``plantwatch up`` runs it (its own thread in the runner's process, flushing on the
  200,000-value size bound during the run); ``ratio`` compares readings/s (as
  ``bench ingest`` reports them) and ``cpu_ratio`` the runner process's CPU time per
  reading, which a loaded machine disturbs less. ``archive_drain_s`` is how long the
  archive took, after the run, to write what was still queued.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cloud.cli import status
from edge.cliargs import non_negative_int, positive_int

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
RATE_MS = 1000
WINDOW_MS = 300_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--readings",
        type=positive_int,
        default=10_000_000,
        help="sensor values in the queried archive (default 10,000,000)",
    )
    parser.add_argument(
        "--write-readings",
        type=positive_int,
        default=2_000_000,
        help="sensor values per timed write run (default 2,000,000)",
    )
    parser.add_argument("--assets", type=positive_int, default=10, help="assets (default 10)")
    parser.add_argument(
        "--sensors", type=positive_int, default=10, help="sensors per asset (default 10)"
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=3, help="runs of each part; medians count"
    )
    parser.add_argument(
        "--ingest-readings",
        type=non_negative_int,
        default=100_000,
        help="samples per side-by-side ingest run; 0 skips it (default 100,000)",
    )
    parser.add_argument(
        "--broker",
        choices=("amqtt", "mosquitto"),
        default="amqtt",
        help="broker of the ingest runs (default amqtt)",
    )


def _bodies(readings: int, assets: int, sensors: int) -> list[tuple[str, int, int, bytes]]:
    """``(asset, window_end_s, values, body)`` per window file, as the batcher queues them."""
    import numpy as np

    from cloud.batcher.batcher import render_rows

    per_asset = max(1, readings // (assets * sensors))
    names = [f"s{k}" for k in range(sensors)]
    rng = np.random.default_rng(7)
    out = []
    for a in range(assets):
        stamps = START_MS + np.arange(per_asset, dtype=np.int64) * RATE_MS
        values = np.round(rng.normal(50, 10, (per_asset, sensors)), 3)
        ends = (stamps + WINDOW_MS - 1) // WINDOW_MS * WINDOW_MS
        for end in np.unique(ends):
            mask = ends == end
            rows = {
                int(t): dict(zip(names, row.tolist(), strict=True))
                for t, row in zip(stamps[mask], values[mask], strict=True)
            }
            out.append(
                (f"asset-{a}", int(end) // 1000, int(mask.sum()) * sensors, render_rows(rows))
            )
    out.sort(key=lambda body: (body[1], body[0]))  # window by window, as the batcher writes
    return out


def _write_run(root: Path, bodies: list[tuple[str, int, int, bytes]], batch: int) -> dict[str, Any]:
    from cloud.archive import ArchivePolicy, ArchiveWriter
    from cloud.batcher.spool import Spool
    from edge.clock import SystemClock

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    spool = Spool(str(root / "spool.db"))
    for asset, end, count, body in bodies:
        spool.archive_add("s1", asset, end, 0, count, body, 0.0)
    writer = ArchiveWriter(
        root / "archive", spool, SystemClock(), ArchivePolicy(batch_readings=batch)
    ).open()
    began = time.perf_counter()
    written = writer.flush(everything=True)
    seconds = time.perf_counter() - began
    parts = writer.counts["parts_written"]
    writer.close()
    spool.close()
    size = sum(p.stat().st_size for p in (root / "archive").rglob("part-*.parquet"))
    return {
        "values": written,
        "seconds": round(seconds, 3),
        "readings_per_s": round(written / seconds, 1),
        "parts": parts,
        "bytes_per_value": round(size / max(written, 1), 3),
    }


def _query_runs(archive: Path, repeat: int, assets: int) -> dict[str, Any]:
    from cloud.archive.query import Catalog, Sources

    full = (
        "SELECT asset, sensor, count(*) AS n, avg(value) AS mean, max(value) AS top "
        "FROM readings GROUP BY ALL"
    )
    one_hour = (
        "SELECT ts, value FROM readings WHERE asset = 'asset-{a}' AND sensor = 's1' AND "
        "ts >= TIMESTAMP '2026-01-01 05:00:00' AND ts < TIMESTAMP '2026-01-01 06:00:00'"
    )
    full_s, selective_s, rows = [], [], 0
    for i in range(repeat):
        with Catalog(Sources(archive=archive)) as catalog:
            began = time.perf_counter()
            answer = catalog.query(full)
            full_s.append(time.perf_counter() - began)
            rows = sum(int(r[2]) for r in answer.rows)
            began = time.perf_counter()
            catalog.query(one_hour.format(a=i % assets))
            selective_s.append(time.perf_counter() - began)
    return {
        "query": full,
        "values_scanned": rows,
        "query_s": round(statistics.median(full_s), 3),
        "runs_query_s": [round(s, 3) for s in full_s],
        "selective_query_s": round(statistics.median(selective_s), 4),
    }


def _ingest(args: argparse.Namespace) -> dict[str, Any]:
    from cloud.bench.ingest import _one_run
    from cloud.cli.output import stderr
    from cloud.runtime.broker import EmbeddedBroker

    settings = argparse.Namespace(
        readings=args.ingest_readings,
        per_message=20,
        assets=4,
        sensors=6,
        spool="file",
        keep=False,
        runners=1,
    )
    off, on = [], []
    with EmbeddedBroker(args.broker) as broker:
        for i in range(args.repeat):  # alternate, so both see the same machine load
            for archive, runs in ((False, off), (True, on)):
                settings.archive = archive
                figures = _one_run(broker.url, settings)
                runs.append(figures)
                stderr.print(
                    f"ingest run {i + 1}, archive {'on' if archive else 'off'}: "
                    f"{figures['readings_per_s']:,.0f} readings/s, "
                    f"{figures['runner_cpu_us_per_reading']:.1f} us runner CPU per reading"
                )

    def median(runs: list[dict[str, Any]], key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    base, with_archive = median(off, "readings_per_s"), median(on, "readings_per_s")
    cpu_base = median(off, "runner_cpu_us_per_reading")
    cpu_on = median(on, "runner_cpu_us_per_reading")
    return {
        "broker": args.broker,
        "readings": args.ingest_readings,
        "readings_per_s": with_archive,
        "runner_cpu_us_per_reading": cpu_on,
        "archived_values": on[0]["archived_values"],
        "archive_drain_s": median(on, "archive_drain_s"),
        "lost": sum(r["lost"] for r in on + off),
        "duplicated": sum(r["duplicated"] for r in on + off),
        "runs_readings_per_s": [r["readings_per_s"] for r in on],
        "baseline": {
            "what": "the same ingest without the archive, alternating runs",
            "readings_per_s": base,
            "runner_cpu_us_per_reading": cpu_base,
            "runs_readings_per_s": [r["readings_per_s"] for r in off],
        },
        "ratio": round(with_archive / base, 3) if base else None,
        "cpu_ratio": round(cpu_on / cpu_base, 3) if cpu_base else None,
    }


def run(args: argparse.Namespace) -> int:
    from cloud.archive import ArchivePolicy, ArchiveWriter
    from cloud.archive.layout import committed_files
    from cloud.batcher.spool import Spool
    from cloud.cli.output import print_report, progress, stderr
    from edge.clock import SystemClock

    workdir = Path(tempfile.mkdtemp(prefix="plantwatch-bench-archive-"))
    try:
        with progress(None, "bench archive: generating window files") as bar:
            bodies = _bodies(args.write_readings, args.assets, args.sensors)
            bar.stage("bench archive: timed writes")
            writes = []
            for i in range(args.repeat):
                writes.append(_write_run(workdir / "writes", bodies, 1_000_000))
                stderr.print(
                    f"write run {i + 1}: {writes[-1]['readings_per_s']:,.0f} values/s "
                    f"({writes[-1]['values']:,} values, {writes[-1]['parts']} parts)"
                )
            bar.stage(f"bench archive: building an archive of {args.readings:,} values")
            bodies = _bodies(args.readings, args.assets, args.sensors)
            root = workdir / "query"
            root.mkdir()
            spool = Spool(str(root / "spool.db"))
            for asset, end, count, body in bodies:
                spool.archive_add("s1", asset, end, 0, count, body, 0.0)
            del bodies
            writer = ArchiveWriter(root / "archive", spool, SystemClock(), ArchivePolicy()).open()
            began = time.perf_counter()
            built = writer.flush(everything=True)
            build_s = time.perf_counter() - began
            bar.stage("bench archive: compacting")
            began = time.perf_counter()
            writer.compact(wait=True)
            compact_s = time.perf_counter() - began
            writer.close()
            spool.close()
            files = committed_files(root / "archive")
            bar.stage("bench archive: queries")
            queries = _query_runs(root / "archive", args.repeat, args.assets)
        ingest = _ingest(args) if args.ingest_readings else None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    median = sorted(writes, key=lambda w: w["readings_per_s"])[len(writes) // 2]
    report: dict[str, Any] = {
        "readings_per_s": median["readings_per_s"],
        "runs_readings_per_s": [w["readings_per_s"] for w in writes],
        "write_values": median["values"],
        "bytes_per_value": median["bytes_per_value"],
        "query_s": queries["query_s"],
        "runs_query_s": queries["runs_query_s"],
        "selective_query_s": queries["selective_query_s"],
        "query_values": built,
        "query_values_scanned": queries["values_scanned"],
        "query": queries["query"],
        "build_s": round(build_s, 3),
        "build_readings_per_s": round(built / build_s, 1),
        "compact_s": round(compact_s, 3),
        "files": len(files),
        "assets": args.assets,
        "sensors": args.sensors,
    }
    if ingest is not None:
        report["ingest"] = ingest
    print_report(report, as_json=args.json)
    return status.SUCCESS
