"""SQLite persistence for shadows: documents, versions and 48-hour delete tombstones.

Every change runs inside ``BEGIN IMMEDIATE``, so two writers (the service and a CLI run
against the same file, or two threads) serialise and each sees the other's version.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cloud.shadow.document import Shadow
from edge.errors import StorageError
from edge.files import private_file
from edge.readonly_sqlite import connect_readonly

TOMBSTONE_SECONDS = 48 * 3600
"""AWS continues a deleted shadow's version if it is re-created within 48 hours."""

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shadows (
    thing TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT,
    version INTEGER NOT NULL,
    deleted_at INTEGER,
    PRIMARY KEY (thing, name)
)
"""


@dataclass(frozen=True, slots=True)
class Stored:
    """What a transaction sees: the live shadow, or the version a missing one continues from."""

    shadow: Shadow | None
    missing_version: int


class ShadowStore:
    """One SQLite file; ``name`` '' is the classic shadow."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        """*readonly* opens an existing file for one-shot reads (``get``, ``list``) that
        leave its folder untouched; writes then fail with StorageError."""
        self.path = Path(path)
        self._lock = threading.RLock()
        if readonly:
            try:
                self._db = connect_readonly(self.path)
            except (OSError, sqlite3.Error) as exc:
                raise StorageError(f"{self.path}: cannot read shadow store: {exc}") from exc
            return
        try:
            private_file(self.path)
            self._db = sqlite3.connect(
                str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"{self.path}: cannot open shadow store: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: {exc}") from exc
            try:
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(f"{self.path}: {exc}") from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _read(self, db: sqlite3.Connection, thing: str, name: str | None, now: int) -> Stored:
        row = db.execute(
            "SELECT document, version, deleted_at FROM shadows WHERE thing = ? AND name = ?",
            (thing, name or ""),
        ).fetchone()
        if row is None:
            return Stored(None, 0)
        document, version, deleted_at = row
        if deleted_at is not None:
            live = now - int(deleted_at) < TOMBSTONE_SECONDS
            return Stored(None, int(version) if live else 0)
        return Stored(Shadow.from_json(json.loads(document)), int(version))

    def load(self, thing: str, name: str | None, now: int) -> Stored:
        """A read needs no write lock: WAL readers see the last committed version."""
        with self._lock:
            try:
                return self._read(self._db, thing, name, now)
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: {exc}") from exc

    def get(self, thing: str, name: str | None, now: int) -> Shadow | None:
        return self.load(thing, name, now).shadow

    def modify(
        self,
        thing: str,
        name: str | None,
        now: int,
        change: Callable[[Stored], tuple[Shadow | None, T]],
    ) -> T:
        """Read, let *change* decide, write its shadow (None = delete) in one transaction.

        An exception from *change* rolls back and leaves the store untouched.
        """
        with self._transaction() as db:
            stored = self._read(db, thing, name, now)
            new, result = change(stored)
            if new is not None:
                db.execute(
                    "INSERT OR REPLACE INTO shadows (thing, name, document, version, deleted_at)"
                    " VALUES (?, ?, ?, ?, NULL)",
                    (thing, name or "", json.dumps(new.to_json()), new.version),
                )
            elif stored.shadow is not None:
                db.execute(
                    "UPDATE shadows SET document = NULL, deleted_at = ? WHERE thing = ? AND name = ?",
                    (now, thing, name or ""),
                )
            return result

    def shadows(self) -> list[tuple[str, str]]:
        """Every live ``(thing, name)``, classic shadows with name ``''``, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT thing, name FROM shadows WHERE deleted_at IS NULL ORDER BY thing, name"
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def named_shadows(self, thing: str) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name FROM shadows WHERE thing = ? AND name != '' AND deleted_at IS NULL"
                " ORDER BY name",
                (thing,),
            ).fetchall()
        return [r[0] for r in rows]
