"""Private by default: the directories plantwatch creates are 0700, its files 0600.

Readings, alerts, shadows, queues and runtime details are nobody else's business on a shared
machine, and the umask (often 022, world-readable) must not decide that. Directories are
made private only when plantwatch creates them: a directory the user already had (``.`` or
a home folder given as ``--data``) keeps its mode. Files are plantwatch's own, so an
existing one is tightened to 0600. SQLite gives its ``-wal`` and ``-shm`` files the mode of
the database file, so a private database stays private.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create *path* and any missing parents as 0700; return it."""
    path = Path(path)
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile: nothing to protect
            os.chmod(created, DIR_MODE)
    return path


def private_file(path: str | os.PathLike[str]) -> Path:
    """Make sure *path* exists as a 0600 file (its parents created private); return it.

    Also tightens SQLite's ``-wal``/``-shm`` companions when they exist already.
    """
    path = Path(path)
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(companion, FILE_MODE)
    return path


def write_private(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> None:
    """Replace *path* atomically with *data*, as a 0600 file."""
    path = Path(path)
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def damaged_name(path: str | os.PathLike[str]) -> Path:
    """A free name beside *path* for a damaged file set aside: ``<name>.damaged-<UTC time>``
    (``-2``, ``-3`` ... after it when one exists from the same second)."""
    path = Path(path)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    return aside


@contextlib.contextmanager
def directory_lock(
    root: Path,
    *,
    exclusive: bool,
    wait: bool = True,
    waiting: Callable[[], None] | None = None,
) -> Iterator[bool]:
    """``flock`` on the directory *root* itself (no lock file, so readers create
    nothing): the archive's readers and writers, imports into the detector registry.
    Yields False when *wait* is off and another process holds it; otherwise calls
    *waiting* (if given) once before it blocks, so a command can say why it hangs."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(fd, flags | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            if waiting is not None:
                waiting()
            fcntl.flock(fd, flags)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
