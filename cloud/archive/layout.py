"""Where the archive keeps its files, and the two marks that make it crash-safe.

``<root>/site=<site>/asset=<asset>/date=<YYYY-MM-DD>/part-<n>.parquet``: Hive partitions,
the layout Firehose writes on AWS (``infra/parts/archive.py``), so one ``readings`` query
reads both. ``date`` is the UTC date of each reading.

``n`` is the archive-queue id of the first window in the flush that wrote the part, so the
parts of one flush share a number and a flush repeated after a crash rewrites the same
names. ``<root>/_committed`` holds the highest queue id whose parts are complete; a part
numbered above it is a leftover of an interrupted flush, which readers skip and the next
writer deletes before it writes that flush again.

A partition folder holding ``_compaction.json`` is a merge a crash interrupted
(:mod:`cloud.archive.compaction`): once its merged part has replaced the target, the
sources it names are left out of what readers read, so a query between the crash and the
next writer or ``archive compact`` counts each cell once.

Locks (``flock``): a writer holds ``<root>/_writer.lock`` for its whole life, so two
processes never flush one archive. Readers hold a shared lock on the ``<root>`` directory
while they read and compaction an exclusive one while it replaces parts, so a query never
sees a merged part beside its sources. Readers create nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from edge.errors import StorageError
from edge.files import FILE_MODE, write_private

COMMITTED_FILE = "_committed"
WRITER_LOCK = "_writer.lock"
JOURNAL_FILE = "_compaction.json"
PART_RE = re.compile(r"^part-(\d+)\.parquet$")
_PARTITION_RE = re.compile(r"^(site|asset|date)=(.+)$")
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True, order=True)
class Partition:
    site: str
    asset: str
    date: str
    """``YYYY-MM-DD`` (UTC)."""

    def path(self, root: Path) -> Path:
        return root / f"site={self.site}" / f"asset={self.asset}" / f"date={self.date}"


def date_of_day(day: int) -> str:
    """``YYYY-MM-DD`` of a day number (days since 1970-01-01, UTC)."""
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")


def part_name(number: int) -> str:
    return f"part-{number}.parquet"


def part_number(name: str) -> int | None:
    match = PART_RE.fullmatch(name)
    return int(match.group(1)) if match else None


def read_committed(root: Path) -> int:
    """The highest queue id whose parts are complete (0 for a new archive)."""
    try:
        text = (root / COMMITTED_FILE).read_text().strip()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise StorageError(f"{root / COMMITTED_FILE}: cannot read: {exc.strerror}") from exc
    if not text.isdigit():
        raise StorageError(f"{root / COMMITTED_FILE}: expected a whole number, got {text[:40]!r}")
    return int(text)


def write_committed(root: Path, last_id: int, *, durable: bool = False) -> None:
    write_private(root / COMMITTED_FILE, f"{last_id}\n".encode(), fsync=durable)


def create_private(path: Path) -> BinaryIO:
    """A new (or truncated) 0600 file open for writing: archive files are as private as
    the rest of the data directory (:mod:`edge.files`)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "wb")


def partitions(root: Path) -> Iterator[Partition]:
    """Every partition folder under *root*, in name order."""
    if not root.is_dir():
        return
    for site_dir in sorted(root.iterdir()):
        site = _value(site_dir, "site")
        if site is None:
            continue
        for asset_dir in sorted(site_dir.iterdir()):
            asset = _value(asset_dir, "asset")
            if asset is None:
                continue
            for date_dir in sorted(asset_dir.iterdir()):
                date = _value(date_dir, "date")
                if date is not None:
                    yield Partition(site, asset, date)


def _value(path: Path, key: str) -> str | None:
    match = _PARTITION_RE.fullmatch(path.name)
    if match is None or match.group(1) != key or not path.is_dir():
        return None
    return match.group(2)


def parts(folder: Path, committed: int | None = None) -> list[tuple[int, Path]]:
    """``(number, path)`` of the parts in one partition folder, oldest first; with
    *committed*, only those at or below it."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            number = part_number(entry.name)
            if number is not None and (committed is None or number <= committed):
                found.append((number, Path(entry.path)))
    return sorted(found)


def committed_files(root: Path) -> list[Path]:
    """Every complete part of the archive (what a reader reads)."""
    committed = read_committed(root)
    return [path for p in partitions(root) for path in readable_parts(p.path(root), committed)]


def readable_parts(folder: Path, committed: int) -> list[Path]:
    """One partition's complete parts, less the sources of an interrupted merge whose
    merged part is already in place (they hold nothing the merged part does not)."""
    found = [path for _n, path in parts(folder, committed)]
    journal = read_journal(folder)
    if journal is None or (folder / f".compact-{journal['target']}.tmp").exists():
        return found  # no merge, or one that never replaced its target: the sources stand
    merged = set(journal["sources"]) - {journal["target"]}
    return [path for path in found if path.name not in merged]


class DamagedJournal(StorageError):
    """A ``_compaction.json`` that cannot be read or is not a journal. A reader cannot tell
    which parts it merged, so it stops; ``plantwatch up`` and ``archive compact`` set it
    aside and repair the partition (:func:`cloud.archive.compaction.recover`)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"{path}: unreadable compaction journal ({problem}); `plantwatch archive compact` "
            "or `plantwatch up` sets it aside and repairs the partition"
        )
        self.path = path
        self.problem = problem


def read_journal(folder: Path) -> dict[str, Any] | None:
    """The interrupted merge of *folder*: ``{target: name, sources: [names]}``, or None.
    Raises :class:`DamagedJournal` when there is one that cannot be read."""
    path = folder / JOURNAL_FILE
    try:
        journal = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DamagedJournal(path, exc.strerror or str(exc)) from exc
    except (ValueError, RecursionError) as exc:
        raise DamagedJournal(path, " ".join(str(exc).split())[:200]) from exc
    if (
        not isinstance(journal, dict)
        or not isinstance(journal.get("target"), str)
        or not isinstance(journal.get("sources"), list)
        or not all(isinstance(name, str) for name in journal["sources"])
    ):
        raise DamagedJournal(path, "expected {target: name, sources: [names]}")
    return journal
