"""``plantwatch query "SQL"``: DuckDB over a data directory (read-only).

Views: ``readings`` (ts, site, asset, sensor, value, date) from the Parquet archive,
``results`` (every results.jsonl row), ``alerts`` (the outbox) and ``executions``
(scheduler executions). ``docs/query.md`` lists the columns and what differs on Athena.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from cloud.cli.output import Column, print_json, print_table
from cloud.runtime.layout import DEFAULT_DATA_DIR

_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sql",
        help="one SQL statement over the views readings, results, alerts and executions",
    )
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="data directory of `plantwatch up` or `demo --out` (default: %(default)s)",
    )
    form = parser.add_mutually_exclusive_group()
    form.add_argument(
        "--json",
        action="store_true",
        help="print one JSON array of row objects (at most 100,000 rows, as the table)",
    )
    form.add_argument(
        "--csv", action="store_true", help="print CSV with a header row (streams any number)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        with open_catalog(args.data) as catalog:
            if args.csv:  # streams: any number of rows
                columns, rows = catalog.stream(args.sql)
                write_csv(columns, ([plain(v) for v in row] for row in rows))
                return 0
            answer = catalog.query(args.sql)
    except KeyboardInterrupt:
        print("plantwatch: query interrupted (Ctrl-C)", file=sys.stderr)
        raise
    rows = [[plain(v) for v in row] for row in answer.rows]
    if args.json:
        print_json([dict(zip(answer.columns, _finite(row), strict=True)) for row in rows])
    else:
        columns = [
            Column(name, f"c{i}", "right" if kind.startswith(_NUMERIC) else "left")
            for i, (name, kind) in enumerate(zip(answer.columns, answer.types, strict=True))
        ]
        print_table(
            [{f"c{i}": v for i, v in enumerate(row)} for row in rows],
            columns,
            empty="no rows",
        )
    return 0


def open_catalog(data: str | Path) -> Any:
    """The views over an existing data directory; creates nothing in it."""
    from cloud.archive.query import Catalog, Sources
    from cloud.cli.schedulers import LocalStack
    from cloud.inference.scheduler import list_executions
    from cloud.runtime.layout import DataLayout

    layout = DataLayout.existing(data)
    with LocalStack(layout.root, readonly=True) as stack:
        executions = [e.to_dict() for e in list_executions(stack.state)]
    return Catalog(
        Sources(
            archive=layout.archive,
            buckets=layout.bucket.parent,
            alerts=layout.alerts,
            executions=executions,
        )
    )


def plain(value: Any) -> Any:
    """A JSON- and CSV-friendly form: ISO times, floats for decimals."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _finite(value: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers (Python would print NaN,
    which strict parsers such as jq refuse)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def write_csv(columns: list[str], rows: Iterable[list[Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            ["" if v is None else json.dumps(v) if isinstance(v, list | dict) else v for v in row]
        )
    sys.stdout.flush()
