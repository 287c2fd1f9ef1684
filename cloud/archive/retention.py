"""How long the local bucket keeps each prefix: ``retention.toml``, applied like S3 lifecycle.

```toml
[retention]          # days to keep what lies under each key prefix of the bucket
"archive/" = 365
"input/" = 30
"quarantine/" = 30
```

An object expires once it is *days* old; where two rules cover one object, the shorter
one wins (as S3 honours the shorter of two overlapping expirations). Objects are aged by
their modification time, as S3 ages them by their creation time, except in ``archive/``:
compaction rewrites parts, so there a partition is aged by its ``date``, and it expires
whole once its last day is *days* behind. A prefix with no rule is kept forever. The AWS
deployment reads the same table (CDK context ``retention``) as bucket lifecycle rules.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud.archive.layout import partitions
from edge.errors import ConfigError
from edge.files import directory_lock, write_private
from edge.user_files import parse_problem

ARCHIVE_PREFIX = "archive/"
DAY_S = 86_400
MAX_DAYS = 36_500
_PREFIX_RE = re.compile(r"^((?!\.{1,2}/)[A-Za-z0-9_.=:-]+/)*$")
"""Whole folders: ``archive/``, ``input/s2/``, or ``""`` for the whole bucket; never ``.``
or ``..`` (no key of the local bucket has such a folder: the rule would match nothing)."""
_EXPIRED = ".expired-"
"""Prefix of a partition folder being deleted (hidden from readers by the rename)."""
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True, order=True)
class RetentionRule:
    prefix: str
    """A key prefix of the bucket, ending in ``/`` (``archive/``, ``input/s2/``); ``""``
    is the whole bucket."""
    days: int

    def __post_init__(self) -> None:
        check_rule(self.prefix, self.days, "retention")


def check_rule(prefix: Any, days: Any, where: str) -> None:
    """One rule's prefix and days, named in the error with *where*."""
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
        raise ConfigError(
            f"{where}: prefix {prefix!r}: expected a key prefix ending in '/', e.g. 'archive/'"
        )
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ConfigError(f"{where}: {prefix!r} = {days!r}: expected whole days 1-{MAX_DAYS}")


def rules_from_mapping(table: Mapping[str, Any], where: str) -> list[RetentionRule]:
    for prefix, days in table.items():
        check_rule(prefix, days, where)
    return sorted(RetentionRule(prefix, days) for prefix, days in table.items())


def load_rules(path: Path) -> list[RetentionRule]:
    """The rules in *path*; none when the file does not exist."""
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return []
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # not UTF-8, or past tomllib's own checks
        raise ConfigError(f"{path}: not valid TOML: {parse_problem(exc)}") from None
    table = document.get("retention", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [retention] must be a table of prefix = days")
    return rules_from_mapping(table, str(path))


def save_rules(path: Path, rules: list[RetentionRule]) -> None:
    lines = [
        "# days to keep what lies under each key prefix of the local bucket",
        "# (plantwatch retention set|clear|show|apply; docs/query.md)",
        "[retention]",
        *(f'"{rule.prefix}" = {rule.days}' for rule in sorted(rules)),
    ]
    write_private(path, ("\n".join(lines) + "\n").encode())


@dataclass
class Expired:
    """What one pass deletes (or would, in a dry run)."""

    objects: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)
    """Archive partitions kept because their ``date`` is not a ``YYYY-MM-DD`` day."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "objects": len(self.objects),
            "partitions": len(self.partitions),
            "bytes": self.bytes,
            "keys": [*self.partitions, *self.objects],
            "skipped": self.skipped,
        }


def apply(
    bucket: Path,
    rules: list[RetentionRule],
    now: float,
    *,
    dry_run: bool = False,
    waiting: Callable[[], None] | None = None,
) -> Expired:
    """Delete (or with *dry_run* only list) what the rules expire under *bucket*;
    *waiting* is called if running queries hold the archive (it waits for them)."""
    found = Expired()
    if not rules or not bucket.is_dir():
        return found
    for key, path, stat in _objects(bucket):
        days = _days(rules, key)
        if days is not None and now - stat.st_mtime >= days * DAY_S:
            found.objects.append(key)
            found.bytes += stat.st_size
            if not dry_run:
                path.unlink(missing_ok=True)
    archive = bucket / ARCHIVE_PREFIX.rstrip("/")
    if archive.is_dir():
        expired = []
        for partition in partitions(archive):
            key = f"{ARCHIVE_PREFIX}{partition.path(Path()).as_posix()}/"
            days = _days(rules, key)
            if days is None:
                continue
            day_start = _day_start(partition.date)
            if day_start is None:  # not written by plantwatch: not ours to age
                found.skipped.append(key)
                continue
            if now - (day_start + DAY_S) >= days * DAY_S:
                expired.append((key, partition.path(archive)))
        if expired or (not dry_run and _leftovers(archive)):
            # no reader in the middle of it
            with directory_lock(archive, exclusive=True, waiting=waiting):
                if not dry_run:
                    for leftover in _leftovers(archive):  # of a pass killed half way
                        shutil.rmtree(leftover)
                        _prune_empty(leftover.parent, archive)
                for key, folder in expired:
                    if not folder.is_dir():  # another pass removed it while we waited
                        continue
                    found.partitions.append(key)
                    found.bytes += sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
                    if not dry_run:
                        _remove(folder)
                        _prune_empty(folder.parent, archive)
    return found


def _remove(folder: Path) -> None:
    """Out of readers' sight in one rename (no longer ``date=...``), then deleted: a pass
    killed half way leaves no partial partition a query would read."""
    hidden = folder.with_name(f"{_EXPIRED}{folder.name}")
    folder.rename(hidden)
    shutil.rmtree(hidden)


def _leftovers(archive: Path) -> list[Path]:
    """Partitions a killed pass had hidden but not yet deleted."""
    return sorted(archive.glob(f"site=*/asset=*/{_EXPIRED}*"))


def _day_start(date: str) -> float | None:
    """The UTC start of a partition's ``YYYY-MM-DD`` day; None for anything else."""
    if not _DATE_RE.fullmatch(date):
        return None
    try:
        return datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _days(rules: list[RetentionRule], key: str) -> int | None:
    matching = [rule.days for rule in rules if key.startswith(rule.prefix)]
    return min(matching) if matching else None


def _objects(bucket: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Every object outside the archive: ``(key, path, stat)``; temporaries skipped, and
    objects deleted by someone else since the folder was listed."""
    for dirpath, dirs, files in os.walk(bucket):
        rel = Path(dirpath).relative_to(bucket)
        if rel.parts[:1] == (ARCHIVE_PREFIX.rstrip("/"),):
            dirs.clear()
            continue
        for name in files:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            yield (rel / name).as_posix(), path, stat


def _prune_empty(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
