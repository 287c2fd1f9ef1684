"""JSON documents in SQLite: state that survives a restart of the local runtime.

Documents are written with msgspec's JSON encoder (keys sorted, as before): the detector and
alarm engines write a document per state change, and Python's ``json`` module spent more on
the floats in them (times, scores) than SQLite on storing them. Strict JSON, as the
StateStore contract says: a non-finite float is written as ``null``. A document msgspec
cannot order (a key that is not a string) is written by ``json`` as before. Reads use
``json``, which also reads what older versions wrote.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from cloud.ports import Versioned
from edge.errors import StorageError, VersionConflictError
from edge.files import private_file
from edge.readonly_sqlite import connect_readonly

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the files this store writes (0: a file from before it was
recorded, the same table). A file of a larger version was written by a newer plantwatch,
whose table this one may misread: it is refused, not guessed at."""
COLUMNS = ("ns", "key", "value", "version")
BUSY_TIMEOUT_S = 5.0
"""How long a statement waits for another process's write lock before it fails."""


class SqliteStateStore:
    """One table keyed by (namespace, key); WAL so readers never block the writer.

    Conditional writes are single statements (``UPDATE ... WHERE version = ?``), so they
    stay atomic across processes sharing the file, not only across threads.
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        """*readonly* opens an existing file for commands that only look: they must leave
        the data directory exactly as they found it (no file, no ``-wal``/``-shm`` left)."""
        self.path = str(path)
        self._lock = threading.Lock()
        self._depth = 0
        """Nesting of :meth:`batch` blocks (0: each write commits on its own)."""
        self._open = False
        """A batch's transaction has begun."""
        self._version = "version"
        """The version column, or ``1`` for a file written before versions existed and
        opened read-only (so not upgraded)."""
        if readonly:
            self._db = _open_readonly(self.path)
            try:
                _version, columns = self._check_schema()
            except BaseException:
                self._db.close()
                raise
            if "version" not in columns:
                self._version = "1"
            return
        if os.path.exists(self.path) and not os.path.isfile(self.path):
            # a directory, or a named pipe that opening for writing would wait on for good
            # (a dangling link is followed and its file created, as before)
            raise _not_a_file(self.path)
        try:
            if self.path != ":memory:":
                private_file(self.path)
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
            )
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"{self.path}: cannot open state store: {exc}") from exc
        try:
            self._sql("PRAGMA journal_mode=WAL", what="open", fetch="one")
            self._sql("PRAGMA synchronous=NORMAL", what="open")
            version, columns = self._check_schema()
            if not columns:
                self._sql(
                    "CREATE TABLE IF NOT EXISTS state (ns TEXT NOT NULL, key TEXT NOT NULL,"
                    " value TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1,"
                    " PRIMARY KEY (ns, key))",
                    what="open",
                )
            elif "version" not in columns:  # a state.db written before versions existed
                self._sql(
                    "ALTER TABLE state ADD COLUMN version INTEGER NOT NULL DEFAULT 1", what="open"
                )
            if version != SCHEMA_VERSION:  # written once: an unchanged file stays unchanged
                self._sql(f"PRAGMA user_version = {SCHEMA_VERSION}", what="open")
        except BaseException:
            self._db.close()
            raise

    def _check_schema(self) -> tuple[int, set[str]]:
        """The file's schema version and its state table's columns (empty: no table yet),
        or StorageError when it is of a newer version or its table is not this store's."""
        (version,) = self._sql("PRAGMA user_version", what="open", fetch="one")
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"{self.path}: state store of schema version {version}, written by a newer "
                f"plantwatch (this one reads up to {SCHEMA_VERSION}): use that version, or "
                "move the file aside to start a new one"
            )
        columns = {
            row[1] for row in self._sql("PRAGMA table_info(state)", what="open", fetch="all")
        }
        missing = [c for c in COLUMNS[:3] if c not in columns]
        if columns and missing:
            raise StorageError(
                f"{self.path}: not a plantwatch state store (its state table has no "
                f"{', '.join(missing)} column; it has {', '.join(sorted(columns))}): written "
                "by another version? move it aside to start a new one"
            )
        return version, columns

    def _sql(
        self, statement: str, params: tuple[Any, ...] = (), *, what: str, fetch: str = ""
    ) -> Any:
        """Run one statement (and fetch its rows: ``one`` or ``all``); a SQLite error is a
        StorageError naming the file, with what to do for a lock or a damaged file."""
        try:
            cursor = self._db.execute(statement, params)
            if fetch == "one":
                return cursor.fetchone()
            if fetch == "all":
                return cursor.fetchall()
            return cursor
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {what} failed: {_problem(exc)}") from exc

    def __enter__(self) -> SqliteStateStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def batch(self) -> _Batch:
        """One transaction for the writes of the block, committed at its end (also when it
        raises: grouping saves commits, it does not make the block atomic). It begins at
        the first write, so a block that writes nothing costs nothing, and takes the
        database's write lock then (``BEGIN IMMEDIATE``: other processes wait for the
        block). No Python lock is held across the block, so engines calling each other
        from several threads cannot deadlock on it: another thread's writes meanwhile join
        the transaction, and the last block to end commits."""
        return _Batch(self)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The writes of the block commit together, or, when the block (or the commit)
        raises, none does: an import that fails half way (a full disk) leaves the file as
        it was. Holds the database's write lock for the block; not nestable."""
        with self._lock:
            if self._depth:
                raise RuntimeError("transaction() inside batch() or transaction()")
            self._sql("BEGIN IMMEDIATE", what="BEGIN")
            self._depth, self._open = 1, True
        try:
            yield
            with self._lock:
                self._sql("COMMIT", what="COMMIT")
        except BaseException:
            with self._lock, contextlib.suppress(sqlite3.Error):
                if self._db.in_transaction:  # SQLite rolls back some failures itself
                    self._db.execute("ROLLBACK")
            raise
        finally:
            with self._lock:
                self._depth, self._open = 0, False

    def _enter_batch(self) -> None:
        with self._lock:
            self._depth += 1

    def _exit_batch(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._open:
                self._open = False
                self._execute("COMMIT")

    def _begin(self) -> None:
        """Before a write: open the block's transaction if one is wanted and not open."""
        if self._depth and not self._open:
            self._execute("BEGIN IMMEDIATE")
            self._open = True

    def _execute(self, statement: str) -> None:
        self._sql(statement, what=statement)

    def get(self, namespace: str, key: str) -> dict[str, Any] | None:
        found = self.get_versioned(namespace, key)
        return None if found is None else found.value

    def put(self, namespace: str, key: str, value: Mapping[str, Any]) -> None:
        with self._lock:
            self._begin()
            self._sql(
                "INSERT INTO state (ns, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value,"
                " version = state.version + 1",
                (namespace, key, encode_document(value)),
                what=f"writing {namespace}/{key}",
            )

    def delete(self, namespace: str, key: str) -> None:
        with self._lock:
            self._begin()
            self._sql(
                "DELETE FROM state WHERE ns = ? AND key = ?",
                (namespace, key),
                what=f"deleting {namespace}/{key}",
            )

    def items(self, namespace: str) -> Iterator[tuple[str, dict[str, Any]]]:
        return iter([(k, v.value) for k, v in self.items_versioned(namespace)])

    def get_versioned(self, namespace: str, key: str) -> Versioned | None:
        with self._lock:
            row = self._sql(
                f"SELECT value, {self._version} FROM state WHERE ns = ? AND key = ?",
                (namespace, key),
                what=f"reading {namespace}/{key}",
                fetch="one",
            )
        return None if row is None else self._versioned(namespace, key, row[0], row[1])

    def put_if_version(
        self, namespace: str, key: str, value: Mapping[str, Any], version: int | None
    ) -> int:
        body = encode_document(value)
        with self._lock:
            self._begin()
            if version is None:
                cursor = self._sql(
                    "INSERT INTO state (ns, key, value, version) VALUES (?, ?, ?, 1)"
                    " ON CONFLICT (ns, key) DO NOTHING",
                    (namespace, key, body),
                    what=f"writing {namespace}/{key}",
                )
            else:
                cursor = self._sql(
                    "UPDATE state SET value = ?, version = version + 1"
                    " WHERE ns = ? AND key = ? AND version = ?",
                    (body, namespace, key, version),
                    what=f"writing {namespace}/{key}",
                )
        if cursor.rowcount != 1:
            raise VersionConflictError(namespace, key, version)
        return 1 if version is None else version + 1

    def delete_if_version(self, namespace: str, key: str, version: int) -> None:
        with self._lock:
            self._begin()
            cursor = self._sql(
                "DELETE FROM state WHERE ns = ? AND key = ? AND version = ?",
                (namespace, key, version),
                what=f"deleting {namespace}/{key}",
            )
        if cursor.rowcount != 1:
            raise VersionConflictError(namespace, key, version)

    def items_versioned(self, namespace: str) -> Iterator[tuple[str, Versioned]]:
        with self._lock:
            rows = self._sql(
                f"SELECT key, value, {self._version} FROM state WHERE ns = ? ORDER BY key",
                (namespace,),
                what=f"listing {namespace}",
                fetch="all",
            )
        found: list[tuple[str, Versioned]] = []
        for key, value, version in rows:
            try:
                found.append((key, self._versioned(namespace, key, value, version)))
            except StorageError as exc:
                # one corrupt row must not stop every reader of the namespace (the timers
                # of a whole fleet); it stays in the file, named in the log
                log.error("%s; left out of the listing", exc)
        return iter(found)

    def _versioned(self, namespace: str, key: str, value: Any, version: Any) -> Versioned:
        """A row as a document, or StorageError naming the file, namespace and key: the
        file may have been edited by hand or damaged."""
        try:
            doc = json.loads(value)
            if not isinstance(doc, dict):
                raise TypeError(f"a JSON {type(doc).__name__}, not an object")
            return Versioned(doc, int(version))
        except (TypeError, ValueError, RecursionError) as exc:
            raise StorageError(
                f"{self.path}: {namespace}/{key}: not a plantwatch state document ({exc})"
            ) from exc

    def namespaces(self, prefix: str = "") -> list[str]:
        """Namespaces that start with *prefix*, in order (one per alarm model's history)."""
        with self._lock:
            rows = self._sql(
                "SELECT DISTINCT ns FROM state WHERE substr(ns, 1, ?) = ? ORDER BY ns",
                (len(prefix), prefix),
                what="listing namespaces",
                fetch="all",
            )
        return [r[0] for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


_ENCODER = msgspec.json.Encoder(order="sorted")


class _Batch:
    """``with store.batch():`` (a class, not a generator: it wraps every engine step)."""

    __slots__ = ("_store",)

    def __init__(self, store: SqliteStateStore) -> None:
        self._store = store

    def __enter__(self) -> None:
        self._store._enter_batch()

    def __exit__(self, *_exc: object) -> None:
        self._store._exit_batch()


def encode_document(value: Mapping[str, Any]) -> str:
    """A state document as the stores keep it, so the in-memory store holds exactly what a
    file would (a non-finite float as null, keys sorted) and fails where a file would."""
    try:
        return _ENCODER.encode(value).decode()
    except TypeError:  # a non-string key: json turns it into a string, as it always did
        return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _problem(exc: sqlite3.Error) -> str:
    """SQLite's error, with what to do when it is a lock or a damaged file."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return (
            f"locked by another process for over {BUSY_TIMEOUT_S:g} s (a running `plantwatch "
            "up`, or another command?); try again when it has finished"
        )
    if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text):
        return f"{text}: the file is damaged; restore a backup or move it aside"
    if "disk is full" in text or "disk I/O error" in text:  # SQLITE_FULL, or IOERR writing
        return f"{text}; free space on that disk and run the command again"
    return text


def _not_a_file(path: str) -> StorageError:
    return StorageError(
        f"{path}: not a regular file (a directory or a broken link?); move it aside to "
        "start a new state store"
    )


def _open_readonly(path: str) -> sqlite3.Connection:
    """Reads that leave the folder as it was (see :mod:`edge.readonly_sqlite`)."""
    if os.path.lexists(path) and not os.path.isfile(path):
        raise _not_a_file(path)
    try:
        db = connect_readonly(path)
        db.execute("SELECT 1 FROM state LIMIT 1")
    except FileNotFoundError:
        raise StorageError(f"{path}: no such state store") from None
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot read state store: {_problem(exc)}") from exc
    return db
