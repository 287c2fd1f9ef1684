"""``plantwatch export``: one asset's archived readings for a time range, without SQL.

Wide (the default) is the L4E CSV layout, ``Timestamp`` then one column per sensor, so an
export can go straight back into ``plantwatch model train``; long is the ``readings`` view's
rows. The data directory is only read; the output goes to ``--out`` (or stdout for CSV),
through a temporary file beside it that is created before any work (an unwritable target
fails first) and renamed only once complete (an interrupted export leaves no half file).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from cloud.cli.output import print_json, stderr
from cloud.cli.times import TIMESTAMP_FORMATS
from cloud.runtime.layout import DEFAULT_DATA_DIR

WIDE_TIME = "Timestamp"
"""The wide layout's time column (L4E's)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--asset", required=True, help="asset name, as in the telemetry topic")
    parser.add_argument(
        "--from",
        "--start",
        dest="start",
        required=True,
        metavar="TIME",
        help=f"first time included: {TIMESTAMP_FORMATS}",
    )
    parser.add_argument(
        "--to",
        "--end",
        dest="end",
        required=True,
        metavar="TIME",
        help="end, excluded (same forms)",
    )
    parser.add_argument(
        "--format", choices=("csv", "parquet"), default="csv", help="file format (default csv)"
    )
    parser.add_argument(
        "--shape",
        choices=("wide", "long"),
        default="wide",
        help="wide: Timestamp then one column per sensor (L4E's layout); long: ts, site, "
        "asset, sensor, value rows (default wide)",
    )
    parser.add_argument("--site", help="the asset's site (needed when two sites share the name)")
    parser.add_argument("--sensors", help="comma-separated sensor names (default: all)")
    parser.add_argument(
        "--out", type=Path, help="output file; CSV goes to stdout when omitted, Parquet needs it"
    )
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="data directory holding the archive (default: %(default)s)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON summary (rows, sensors, file)"
    )


def run(args: argparse.Namespace) -> int:
    from cloud.cli.query import open_catalog
    from cloud.cli.times import parse_time_option
    from cloud.runtime.layout import DataLayout
    from edge.errors import UserError

    DataLayout.existing(args.data)  # a missing --data is named before anything else
    start = parse_time_option(args.start, "from")
    end = parse_time_option(args.end, "to")
    if end <= start:
        raise UserError(f"--to {args.end}: must be after --from {args.start}")
    if args.out is None and args.format == "parquet":
        raise UserError("--format parquet needs --out FILE")
    if args.out is None and args.json:
        raise UserError("--json needs --out FILE (without it the CSV goes to stdout)")
    wanted = [s.strip() for s in args.sensors.split(",") if s.strip()] if args.sensors else None
    bounds = [start.tz_convert(None).to_pydatetime(), end.tz_convert(None).to_pydatetime()]
    with _target(args.out) as handle, open_catalog(args.data) as catalog:
        site = _site(catalog, args.asset, args.site)
        where = "site = ? AND asset = ? AND ts >= ? AND ts < ?"
        params: list[Any] = [site, args.asset, *bounds]
        if wanted:
            where += f" AND sensor IN ({', '.join('?' for _ in wanted)})"
            params += wanted
        sensors = [
            row[0]
            for row in catalog.query(
                f"SELECT DISTINCT sensor FROM readings WHERE {where} ORDER BY sensor", params
            ).rows
        ]
        if not sensors:
            raise UserError(
                f"--asset {args.asset}: no readings from {args.start} to {args.end} in "
                f"{Path(args.data) / 'buckets'}"
            )
        if args.shape == "long":
            sql = (
                f"SELECT ts, site, asset, sensor, value FROM readings WHERE {where} "
                "ORDER BY ts, sensor"
            )
            header = ["ts", "site", "asset", "sensor", "value"]
        else:
            if WIDE_TIME in sensors:
                raise UserError(
                    f"--asset {args.asset}: sensor {WIDE_TIME!r} would be a second "
                    f"{WIDE_TIME} column of the wide layout; use --shape long, or --sensors "
                    "without it"
                )
            pivot = ", ".join(
                f"max(value) FILTER (WHERE sensor = ?) AS {_quote(name)}" for name in sensors
            )
            sql = (
                f"SELECT ts AS Timestamp, {pivot} FROM readings WHERE {where} "
                "GROUP BY ts ORDER BY ts"
            )
            params = [*sensors, *params]
            header = [WIDE_TIME, *sensors]
        if args.format == "parquet":
            rows = _parquet(catalog, sql, params, handle)
        else:
            rows = _csv(catalog, sql, params, header, handle)
    summary = {
        "asset": args.asset,
        "site": site,
        "rows": rows,
        "sensors": sensors,
        "format": args.format,
        "shape": args.shape,
        "out": str(args.out) if args.out else "-",
    }
    if args.json:
        print_json(summary)
    else:
        stderr.print(
            f"exported {rows:,} rows of {args.asset} ({len(sensors)} sensors) to {summary['out']}",
            markup=False,
            soft_wrap=True,
        )
    return 0


def _site(catalog: Any, asset: str, site: str | None) -> str:
    from edge.errors import UserError

    if site is not None:
        return site
    sites = [
        row[0]
        for row in catalog.query(
            "SELECT DISTINCT site FROM readings WHERE asset = ? ORDER BY site", [asset]
        ).rows
    ]
    if not sites:
        raise UserError(f"--asset {asset}: not in the archive")
    if len(sites) > 1:
        raise UserError(f"--asset {asset}: found in sites {', '.join(sites)}; pass --site")
    return str(sites[0])


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextlib.contextmanager
def _target(out: Path | None) -> Iterator[IO[Any]]:
    """The output file's temporary twin, open before any work and renamed over *out* only
    when the export completes; stdout when there is no *out*."""
    if out is None:
        try:
            yield sys.stdout
        finally:
            sys.stdout.flush()
        return
    if out.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(out))
    tmp = out.with_name(f".{out.name}.tmp")
    handle = open(tmp, "w+b")  # noqa: SIM115 - closed below, renamed on success only
    try:
        yield handle
        handle.close()
        tmp.replace(out)
    finally:
        handle.close()
        tmp.unlink(missing_ok=True)


def _parquet(catalog: Any, sql: str, params: list[Any], handle: IO[Any]) -> int:
    """Record batch by record batch: memory stays bounded however long the range."""
    import pyarrow.parquet as pq

    relation = catalog.interruptible(lambda: catalog.db.sql(sql, params=params))
    # duckdb 2 names it to_arrow_reader; 1.x fetch_record_batch
    to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
    reader = catalog.interruptible(lambda: to_reader(100_000))
    count = 0
    with pq.ParquetWriter(handle, reader.schema) as writer:
        while True:
            try:
                batch = catalog.interruptible(reader.read_next_batch)
            except StopIteration:
                break
            writer.write_batch(batch)
            count += batch.num_rows
    return count


def _csv(catalog: Any, sql: str, params: list[Any], header: list[str], handle: IO[Any]) -> int:
    import io

    from cloud.cli.output import progress

    text = handle if handle is sys.stdout else io.TextIOWrapper(handle, newline="")
    count = 0
    try:
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(header)
        _columns, rows = catalog.stream(sql, params)
        with progress(None, "export: writing rows") as bar:
            for row in rows:
                writer.writerow(_cells(row))
                count += 1
                if count % 10_000 == 0:
                    bar.advance(10_000)
    finally:
        text.flush()
        if text is not handle:
            text.detach()
    return count


def _cells(row: tuple[Any, ...]) -> list[str]:
    """The timestamp as the batcher writes it; values in their shortest exact form."""
    first, *rest = row
    stamp = first.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return [stamp, *("" if v is None else v if isinstance(v, str) else repr(v) for v in rest)]
