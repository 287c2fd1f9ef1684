"""JSON documents in SQLite: state that survives a restart of the local runtime."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from edge.errors import StorageError
from edge.readonly_sqlite import connect_readonly


class SqliteStateStore:
    """One table keyed by (namespace, key); WAL so readers never block the writer."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        """*readonly* opens an existing file for commands that only look: they must leave
        the data directory exactly as they found it (no file, no ``-wal``/``-shm`` left)."""
        self.path = str(path)
        self._lock = threading.Lock()
        if readonly:
            self._db = _open_readonly(self.path)
            return
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS state (ns TEXT NOT NULL, key TEXT NOT NULL,"
                " value TEXT NOT NULL, PRIMARY KEY (ns, key))"
            )
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot open state store: {exc}") from exc

    def __enter__(self) -> SqliteStateStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def get(self, namespace: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM state WHERE ns = ? AND key = ?", (namespace, key)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, namespace: str, key: str, value: Mapping[str, Any]) -> None:
        body = json.dumps(value, separators=(",", ":"), sort_keys=True)
        with self._lock:
            self._db.execute(
                "INSERT INTO state (ns, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value",
                (namespace, key, body),
            )

    def delete(self, namespace: str, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM state WHERE ns = ? AND key = ?", (namespace, key))

    def items(self, namespace: str) -> Iterator[tuple[str, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM state WHERE ns = ? ORDER BY key", (namespace,)
            ).fetchall()
        return iter([(k, json.loads(v)) for k, v in rows])

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
