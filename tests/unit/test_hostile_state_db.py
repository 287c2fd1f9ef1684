"""A state.db that is damaged, locked by another process, or written by a newer plantwatch:
every read and write says so in one line naming the file (a StorageError), never an
internal error with SQLite's bare ``OperationalError`` or ``DatabaseError``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.adapters.local import SqliteStateStore
from cloud.adapters.local import sqlite_state_store as module
from cloud.cli.main import main
from cloud.detectors.outbox import DEAD_LETTER_NAMESPACE
from edge.errors import StorageError


def _filled(path: Path, rows: int = 400) -> None:
    with SqliteStateStore(path) as store:
        for i in range(rows):
            store.put("executions/pump", f"{i:05d}", {"n": i, "pad": "x" * 200})
        store.put("schedulers", "pump", {"name": "pump", "status": "STOPPED"})
        store.put(DEAD_LETTER_NAMESPACE, "k1", {"request": {}, "attempts": 5})


def _one_line(exc: pytest.ExceptionInfo[StorageError], path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message and str(path) in message, message
    return message


@pytest.fixture
def locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """state.db with another process holding its write lock."""
    path = tmp_path / "state.db"
    _filled(path, rows=3)
    monkeypatch.setattr(module, "BUSY_TIMEOUT_S", 0.2)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield path
    finally:
        holder.kill()
        holder.wait()


def test_a_write_to_a_database_another_process_locks_says_so(locked: Path) -> None:
    with pytest.raises(StorageError) as caught:
        store = SqliteStateStore(locked)
        store.put("schedulers", "pump", {"status": "RUNNING"})
    message = _one_line(caught, locked)
    assert "locked by another process" in message and "try again" in message


def test_a_command_writing_a_locked_database_exits_with_one_line(
    locked: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["alarms", "redrive", "--all", "--data", str(locked.parent)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert "internal error" not in err and "locked by another process" in err


@pytest.mark.parametrize("readonly", [False, True])
def test_a_database_of_a_newer_schema_version_is_refused(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "state.db"
    _filled(path, rows=3)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {module.SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StorageError) as caught:
        SqliteStateStore(path, readonly=readonly)
    message = _one_line(caught, path)
    assert "newer plantwatch" in message


@pytest.mark.parametrize("readonly", [False, True])
def test_a_state_table_of_another_shape_is_refused(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "state.db"
    _filled(path, rows=3)
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE state RENAME COLUMN value TO document")
    db.close()
    with pytest.raises(StorageError) as caught:
        store = SqliteStateStore(path, readonly=readonly)
        store.get("schedulers", "pump")
    message = _one_line(caught, path)
    assert "not a plantwatch state store" in message and "value" in message


def test_a_new_database_records_its_schema_version(tmp_path: Path) -> None:
    with SqliteStateStore(tmp_path / "state.db"):
        pass
    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == module.SCHEMA_VERSION
    db.close()


@pytest.mark.parametrize("readonly", [False, True])
def test_damaged_pages_fail_reads_and_writes_with_one_line(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "state.db"
    _filled(path)
    body = bytearray(path.read_bytes())
    for offset in range(4096, len(body), 4096):  # every page but the first (the schema)
        body[offset : offset + 64] = os.urandom(64)
    path.write_bytes(bytes(body))
    try:
        store = SqliteStateStore(path, readonly=readonly)
    except StorageError as exc:  # refused at open: as good, if it names the file
        assert str(path) in str(exc)
        return
    calls = [
        lambda: list(store.items_versioned("executions/pump")),
        lambda: store.get("schedulers", "pump"),
        lambda: store.namespaces(),
    ]
    if not readonly:
        calls += [
            lambda: [store.put("executions/pump", f"{i:05d}", {"n": -i}) for i in range(400)],
            lambda: [store.delete("executions/pump", f"{i:05d}") for i in range(400)],
        ]
    failures = 0
    for call in calls:
        try:
            call()
        except StorageError as exc:
            failures += 1
            assert str(path) in str(exc) and "\n" not in str(exc)
    assert failures, "damage across every page went unnoticed"


def test_a_transaction_commits_all_its_writes_or_none(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SqliteStateStore(path) as store:
        store.put("ns", "kept", {"v": 0})
        with pytest.raises(StorageError), store.transaction():
            store.put("ns", "kept", {"v": 1})
            store.delete("ns", "kept")
            store.put("ns", "new", {"v": 1})
            raise StorageError("disk full half way")
        with SqliteStateStore(path, readonly=True) as other:
            assert other.get("ns", "kept") == {"v": 0} and other.get("ns", "new") is None
        with store.transaction():
            store.put("ns", "new", {"v": 2})
        assert store.get("ns", "new") == {"v": 2}


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (sqlite3.OperationalError("database or disk is full"), "free space on that disk"),
        (sqlite3.OperationalError("disk I/O error"), "free space on that disk"),
        (sqlite3.OperationalError("database is locked"), "locked by another process"),
        (sqlite3.DatabaseError("database disk image is malformed"), "restore a backup"),
        (sqlite3.DatabaseError("file is not a database"), "move it aside"),
    ],
)
def test_each_sqlite_failure_says_what_to_do(error: sqlite3.Error, hint: str) -> None:
    """On a 3 MB tmpfs, import l4e said only 'open failed: disk I/O error'."""
    assert hint in module._problem(error)


@pytest.mark.parametrize("kind", ["directory", "loop", "dangling"])
@pytest.mark.parametrize(
    "argv",
    [
        ["schedulers", "list"],
        ["executions", "--scheduler", "pump"],
        ["detectors", "list"],
        ["alarms", "list"],
        ["alarms", "history"],
        ["alarms", "dead-letters"],
        ["model", "health"],
    ],
    ids=" ".join,
)
def test_a_state_db_that_is_no_file_is_named_not_read_as_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, argv: list[str]
) -> None:
    """A state.db that was a directory or a broken link read as 'no schedulers' (exit 0)
    or 'scheduler not found', as if the data directory had never been used."""
    data = tmp_path / "data"
    data.mkdir()
    db = data / "state.db"
    if kind == "directory":
        db.mkdir()
    elif kind == "loop":
        db.symlink_to(db)
    else:
        db.symlink_to(tmp_path / "gone.db")
    code = main([*argv, "--data", str(data)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert f"{db}: not a regular file" in err, err


def test_model_health_on_a_state_db_that_is_not_sqlite_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It read such a file as an empty store: no detectors, no scheduler, exit 0."""
    db = tmp_path / "state.db"
    db.write_bytes(b"not a database " * 100)
    code = main(["model", "health", "--data", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert f"{db}: cannot read state store: file is not a database" in err, err


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_store_opened_for_writing_on_no_regular_file_says_to_move_it_aside(
    tmp_path: Path, kind: str
) -> None:
    """``plantwatch up`` (or ``import l4e``) on a state.db that is a named pipe hung for good
    (opening a pipe for writing waits for a reader), and one that is a directory said only
    'Is a directory'. Run in a child process so a hang fails the test instead of stalling it."""
    db = tmp_path / "state.db"
    if kind == "directory":
        db.mkdir()
    else:
        os.mkfifo(db)
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import sys\n" + _OPEN_FOR_WRITING, str(db)],
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"opening a state.db that is a {kind} for writing hung")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout
        == f"{db}: not a regular file (a directory or a broken link?); move it aside to start a new state store\n"
    )


_OPEN_FOR_WRITING = """
from cloud.adapters.local import SqliteStateStore
from edge.errors import StorageError
try:
    SqliteStateStore(sys.argv[1])
except StorageError as exc:
    print(exc)
"""
