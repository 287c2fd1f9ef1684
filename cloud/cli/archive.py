"""``plantwatch archive status|compact``: the Parquet archive of a data directory.

``status`` only reads. ``compact`` merges each partition's parts into one; it is safe
beside a running ``plantwatch up`` (which also compacts busy partitions by itself) and
waits for running queries to finish. A partition holding a part it cannot read is left as
it is and named (exit 1); the others are merged.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from cloud.cli.output import print_fields, print_json, progress
from cloud.runtime.layout import DEFAULT_DATA_DIR
from edge.cliargs import add_subcommands


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_subcommands(parser, "action")
    for name, summary in (
        ("status", "partitions, parts, size and what still waits in the queue (read-only)"),
        ("compact", "merge each partition's parts into one file"),
    ):
        child = sub.add_parser(name, help=summary, description=summary)
        child.add_argument(
            "--data",
            default=DEFAULT_DATA_DIR,
            metavar="DIR",
            help="data directory of `plantwatch up` (default: %(default)s)",
        )
        child.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    from cloud.runtime.layout import DataLayout

    layout = DataLayout.existing(args.data)
    document = _compact(layout.archive) if args.action == "compact" else status(layout)
    if args.json:
        print_json(document)
    else:
        print_fields({k: v for k, v in document.items() if k != "unreadable"})
    for path in document.get("unreadable", []):
        print(
            f"plantwatch: error: {path}: unreadable archive part, its partition was left "
            "as it is (move the file out of the archive to merge the rest)",
            file=sys.stderr,
        )
    return 1 if document.get("unreadable") else 0


def status(layout: Any) -> dict[str, Any]:
    """Counts over the archive's folders and the spool's queue; creates nothing."""
    from cloud.archive.layout import partitions, parts, read_committed

    root = layout.archive
    committed = read_committed(root) if root.is_dir() else 0
    found = list(partitions(root)) if root.is_dir() else []
    files = [path for p in found for _n, path in parts(p.path(root), committed)]
    dates = sorted({p.date for p in found})
    queued_files, queued_readings = _queue(layout.spool_db)
    return {
        "archive": str(root),
        "sites": len({p.site for p in found}),
        "assets": len({(p.site, p.asset) for p in found}),
        "partitions": len(found),
        "parts": len(files),
        "bytes": sum(f.stat().st_size for f in files),
        "first_date": dates[0] if dates else None,
        "last_date": dates[-1] if dates else None,
        "queued_files": queued_files,
        "queued_readings": queued_readings,
    }


def _queue(spool_db: Any) -> tuple[int, int]:
    """Window files waiting in the batcher spool's archive queue."""
    import sqlite3

    from edge.readonly_sqlite import connect_readonly

    if not spool_db.is_file():
        return 0, 0
    db = connect_readonly(spool_db)
    try:
        files, readings = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(readings), 0) FROM archive_queue"
        ).fetchone()
    except sqlite3.OperationalError:  # a spool from before the archive
        return 0, 0
    finally:
        db.close()
    return int(files), int(readings)


def waiting_for_readers(command: str) -> Callable[[], None]:
    """What *command* says before it waits for running queries to let go of the archive."""

    def say() -> None:
        print(
            f"plantwatch: {command}: waiting for running queries or exports of this archive "
            "to finish (Ctrl-C stops)",
            file=sys.stderr,
            flush=True,
        )

    return say


def _compact(root: Any) -> dict[str, Any]:
    from cloud.archive import compaction
    from cloud.archive.layout import partitions, parts, read_committed
    from edge.files import directory_lock

    if not root.is_dir():
        return {
            "archive": str(root),
            "partitions_merged": 0,
            "parts_before": 0,
            "parts_after": 0,
            "unreadable": [],
        }
    committed = read_committed(root)
    found = list(partitions(root))
    before = sum(len(parts(p.path(root), committed)) for p in found)
    merged = 0
    unreadable: list[str] = []
    with (
        directory_lock(root, exclusive=True, waiting=waiting_for_readers("archive compact")),
        progress(len(found), "archive compact: merging partitions") as bar,
    ):
        for partition in found:
            try:
                merged += compaction.compact(partition.path(root), committed)
            except compaction.UnreadablePart as exc:
                unreadable.append(str(exc.path))
            bar.advance()
    after = sum(len(parts(p.path(root), committed)) for p in found)
    return {
        "archive": str(root),
        "partitions_merged": merged,
        "parts_before": before,
        "parts_after": after,
        "unreadable": unreadable,
    }
