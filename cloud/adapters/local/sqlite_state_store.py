"""JSON documents in SQLite: state that survives a restart of the local runtime.

Documents are written with msgspec's JSON encoder (keys sorted, as before): the detector and
alarm engines write a document per state change, and Python's ``json`` module spent more on
the floats in them (times, scores) than SQLite on storing them. Strict JSON, as the
StateStore contract says: a non-finite float is written as ``null``. A document msgspec
cannot order (a key that is not a string) is written by ``json`` as before. Reads use
``json``, which also reads what older versions wrote.
"""

from __future__ import annotations

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
            if "version" not in {row[1] for row in self._db.execute("PRAGMA table_info(state)")}:
                self._version = "1"
            return
        try:
            if self.path != ":memory:":
                private_file(self.path)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS state (ns TEXT NOT NULL, key TEXT NOT NULL,"
                " value TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1,"
                " PRIMARY KEY (ns, key))"
            )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(state)")}
            if "version" not in columns:  # a state.db written before versions existed
                self._db.execute("ALTER TABLE state ADD COLUMN version INTEGER NOT NULL DEFAULT 1")
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"{self.path}: cannot open state store: {exc}") from exc

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
        try:
            self._db.execute(statement)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {statement} failed: {exc}") from exc

    def get(self, namespace: str, key: str) -> dict[str, Any] | None:
        found = self.get_versioned(namespace, key)
        return None if found is None else found.value

    def put(self, namespace: str, key: str, value: Mapping[str, Any]) -> None:
        with self._lock:
            self._begin()
            self._db.execute(
                "INSERT INTO state (ns, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value,"
                " version = state.version + 1",
                (namespace, key, encode_document(value)),
            )

    def delete(self, namespace: str, key: str) -> None:
        with self._lock:
            self._begin()
            self._db.execute("DELETE FROM state WHERE ns = ? AND key = ?", (namespace, key))

    def items(self, namespace: str) -> Iterator[tuple[str, dict[str, Any]]]:
        return iter([(k, v.value) for k, v in self.items_versioned(namespace)])

    def get_versioned(self, namespace: str, key: str) -> Versioned | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT value, {self._version} FROM state WHERE ns = ? AND key = ?",
                (namespace, key),
            ).fetchone()
        return None if row is None else self._versioned(namespace, key, row[0], row[1])

    def put_if_version(
        self, namespace: str, key: str, value: Mapping[str, Any], version: int | None
    ) -> int:
        body = encode_document(value)
        with self._lock:
            self._begin()
            if version is None:
                cursor = self._db.execute(
                    "INSERT INTO state (ns, key, value, version) VALUES (?, ?, ?, 1)"
                    " ON CONFLICT (ns, key) DO NOTHING",
                    (namespace, key, body),
                )
            else:
                cursor = self._db.execute(
                    "UPDATE state SET value = ?, version = version + 1"
                    " WHERE ns = ? AND key = ? AND version = ?",
                    (body, namespace, key, version),
                )
        if cursor.rowcount != 1:
            raise VersionConflictError(namespace, key, version)
        return 1 if version is None else version + 1

    def delete_if_version(self, namespace: str, key: str, version: int) -> None:
        with self._lock:
            self._begin()
            cursor = self._db.execute(
                "DELETE FROM state WHERE ns = ? AND key = ? AND version = ?",
                (namespace, key, version),
            )
        if cursor.rowcount != 1:
            raise VersionConflictError(namespace, key, version)

    def items_versioned(self, namespace: str) -> Iterator[tuple[str, Versioned]]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT key, value, {self._version} FROM state WHERE ns = ? ORDER BY key",
                (namespace,),
            ).fetchall()
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
            rows = self._db.execute(
                "SELECT DISTINCT ns FROM state WHERE substr(ns, 1, ?) = ? ORDER BY ns",
                (len(prefix), prefix),
            ).fetchall()
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


def _open_readonly(path: str) -> sqlite3.Connection:
    """Reads that leave the folder as it was (see :mod:`edge.readonly_sqlite`)."""
    try:
        db = connect_readonly(path)
        db.execute("SELECT 1 FROM state LIMIT 1")
    except FileNotFoundError:
        raise StorageError(f"{path}: no such state store") from None
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot read state store: {exc}") from exc
    return db
