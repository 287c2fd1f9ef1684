"""Open a SQLite file for reading without creating anything next to it.

Status and listing commands must leave a data directory exactly as they found it. A plain
``mode=ro`` connection to a WAL database creates ``-wal`` and ``-shm`` files and leaves
them behind, and a read-write one creates and deletes them (changing the folder). When no
``-wal`` file exists, no writer has the database open and everything is in the main file,
so ``immutable=1`` reads it with no side files at all; when a writer is live its ``-wal``
and ``-shm`` already exist and a ``mode=ro`` reader shares them.

For one-shot reads only: an immutable connection does not see later writes.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path


def connect_readonly(path: str | os.PathLike[str], *, timeout: float = 5.0) -> sqlite3.Connection:
    """A read-only connection to an existing database file (``FileNotFoundError`` if none)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(2, "no such file", str(file))
    quoted = urllib.parse.quote(str(file.resolve()))
    live_writer = Path(f"{file}-wal").exists()
    flags = "mode=ro" if live_writer else "mode=ro&immutable=1"
    return sqlite3.connect(
        f"file:{quoted}?{flags}",
        uri=True,
        timeout=timeout,
        check_same_thread=False,
        isolation_level=None,
    )
