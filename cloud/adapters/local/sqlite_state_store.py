"""JSON documents in SQLite: state that survives a restart of the local runtime."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from cloud.ports import Versioned
from edge.errors import StorageError, VersionConflictError
from edge.files import private_file
from edge.readonly_sqlite import connect_readonly


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

    def get(self, namespace: str, key: str) -> dict[str, Any] | None:
        found = self.get_versioned(namespace, key)
        return None if found is None else found.value

    def put(self, namespace: str, key: str, value: Mapping[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO state (ns, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value,"
                " version = state.version + 1",
                (namespace, key, _dumps(value)),
            )

    def delete(self, namespace: str, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM state WHERE ns = ? AND key = ?", (namespace, key))

    def items(self, namespace: str) -> Iterator[tuple[str, dict[str, Any]]]:
        return iter([(k, v.value) for k, v in self.items_versioned(namespace)])

    def get_versioned(self, namespace: str, key: str) -> Versioned | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT value, {self._version} FROM state WHERE ns = ? AND key = ?",
                (namespace, key),
            ).fetchone()
        return None if row is None else Versioned(json.loads(row[0]), int(row[1]))

    def put_if_version(
        self, namespace: str, key: str, value: Mapping[str, Any], version: int | None
    ) -> int:
        body = _dumps(value)
        with self._lock:
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

    def items_versioned(self, namespace: str) -> Iterator[tuple[str, Versioned]]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT key, value, {self._version} FROM state WHERE ns = ? ORDER BY key",
                (namespace,),
            ).fetchall()
        return iter([(k, Versioned(json.loads(v), int(n))) for k, v, n in rows])

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


def _dumps(value: Mapping[str, Any]) -> str:
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
