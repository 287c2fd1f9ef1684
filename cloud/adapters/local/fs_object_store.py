"""An object store in a directory, with S3's string-prefix listing and atomic puts."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import stat
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from edge.errors import NotFoundError, RefusedError, StorageError
from edge.files import FILE_MODE, private_dir

FSYNC_THREADS = 8
"""Files synced at once by :meth:`FsObjectStore.put_many`."""
_TEMP_NUMBERS = itertools.count()
MAX_KEY_BYTES = 1024
"""S3's limit on a key's UTF-8 bytes; a longer key is refused before anything is made."""
_TEMP_PREFIX = ".tmp-"
"""A temporary file's name starts so; list() leaves such files out."""
_POOL_LOCK = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


class FsObjectStore:
    """Keys are relative paths under *root*; a put is visible whole or not at all.

    A key that cannot be one file under *root* is refused (``RefusedError``, never
    retried): one that is not a relative path of UTF-8 segments other than ``.`` and
    ``..``, without NUL, within S3's 1,024 bytes (:func:`_check_key`), and one the file
    system refuses for that key alone (a segment over its 255 bytes, a key below an
    existing object, a key that is the folder of other objects). An empty segment inside
    a key (``errors//x``, which ``errors/${topic(4)}/...`` makes of a short topic) is
    taken, as the file system takes it: the object is listed as ``errors/x``. Anything else, a root that is not a folder among it, fails the
    whole store and stays a ``StorageError``, retried.

    With ``fsync`` (the default) a put is durable when it returns: the file's data, and
    its directory after the rename, since the name is what a power cut can otherwise lose
    on a filesystem that does not order the rename before later commits.

    Objects are private, like a bucket: files 0600 and the folders it creates 0700,
    whatever the umask (:mod:`edge.files`).
    """

    def __init__(
        self, root: str | os.PathLike[str], *, fsync: bool = True, create: bool = True
    ) -> None:
        """``create=False`` leaves a missing *root* alone until the first put (read-only
        commands create nothing)."""
        self.root = private_dir(root) if create else Path(root)
        self._fsync = fsync

    def _path(self, key: str) -> Path:
        _check_key(key)
        return self.root / key

    def put(self, key: str, body: bytes) -> None:
        path = self._path(key)
        tmp: str | None = None
        try:
            fd, tmp = self._open_temp(str(path))
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
                if self._fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
            tmp = None
            if self._fsync:
                _fsync_dir(path.parent)
        except OSError as exc:
            if tmp is not None:  # a full disk: no part of the object is left beside it
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise self._failed(key, path, "put", exc) from exc

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> list[Exception | None]:
        """:meth:`put` each item, with the files' fsyncs run side by side: the filesystem
        then commits its journal for several files at once, where one fsync after the other
        pays a commit each (several times faster for a flush of window files on ext4).

        Called for every flush of window files, so it keeps its cost per file down: the
        fsync threads are kept between calls (starting eight threads per call cost more
        CPU than the fsyncs' own system time), a temporary name is made from a counter
        rather than drawn at random, and a folder is created only when opening in it
        finds it missing."""
        errors: list[Exception | None] = []
        staged: list[tuple[int, str, str] | None] = []
        root = str(self.root)
        for key, body in items:
            try:
                _check_key(key)
                path = f"{root}/{key}"
                fd, tmp = self._open_temp(path)
            except StorageError as exc:
                errors.append(exc)
                staged.append(None)
                continue
            except OSError as exc:
                errors.append(self._failed(key, self.root / key, "put", exc))
                staged.append(None)
                continue
            staged.append((fd, tmp, path))
            try:
                os.fchmod(fd, FILE_MODE)
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view) :]
                errors.append(None)
            except OSError as exc:
                errors.append(StorageError(f"{path}: put failed: {exc}"))
        try:
            if self._fsync:
                live = [(i, s) for i, s in enumerate(staged) if s and errors[i] is None]
                synced = _fsync_pool().map(_fsync, [fd for _, (fd, _, _) in live])
                for (i, (_, _, path)), error in zip(live, synced, strict=True):
                    if error is not None:
                        errors[i] = StorageError(f"{path}: put failed: {error}")
        finally:
            for entry in staged:
                if entry is not None:
                    os.close(entry[0])
        renamed: dict[str, list[int]] = {}
        for i, entry in enumerate(staged):
            if entry is None:
                continue
            _, tmp, path = entry
            try:
                if errors[i] is None:
                    os.replace(tmp, path)
                    renamed.setdefault(os.path.dirname(path), []).append(i)
                else:
                    os.unlink(tmp)
            except OSError as exc:
                if errors[i] is None:
                    errors[i] = self._failed(items[i][0], path, "put", exc)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        if self._fsync:
            for folder, done in renamed.items():  # once per folder, after all its renames
                try:
                    _fsync_dir(Path(folder))
                except OSError as exc:
                    for i in done:
                        errors[i] = StorageError(f"{folder}: put failed: {exc}")
        return errors

    def _open_temp(self, path: str) -> tuple[int, str]:
        """A new private file beside *path* (its folder made if missing), open for writing."""
        folder, name = os.path.split(path)
        # at most 80 bytes of the name, so the temporary name fits wherever the name does
        stem = name.encode("utf-8", "surrogateescape")[:80].decode("utf-8", "ignore")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        made = False
        for _ in range(100):
            # a name left by a killed process with this pid is skipped, as mkstemp would
            tmp = f"{folder}/{_TEMP_PREFIX}{stem}.{os.getpid()}.{next(_TEMP_NUMBERS)}"
            try:
                return os.open(tmp, flags, FILE_MODE), tmp
            except FileNotFoundError:
                if made:
                    raise
                private_dir(folder)
                made = True
            except FileExistsError:
                continue
        raise FileExistsError(f"{folder}: no free temporary name")

    def append(self, key: str, body: bytes) -> None:
        """Add *body* to the end of the object (fsynced when the store is). Unlike
        :meth:`put` this is not atomic: a crash can leave part of *body*, which a reader
        that appends line by line must tolerate (the streaming results sink does)."""
        path = self._path(key)
        try:
            private_dir(path.parent)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view) :]
                if self._fsync:
                    os.fdatasync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise self._failed(key, path, "append", exc) from exc

    def put_path(self, key: str, source: str | os.PathLike[str]) -> None:
        """Move the finished file *source* in as *key* (renamed when it is on the same
        filesystem, copied otherwise): a large object without holding it in memory."""
        path = self._path(key)
        try:
            private_dir(path.parent)
            os.chmod(source, FILE_MODE)
            try:
                os.replace(source, path)
            except OSError:  # another filesystem: copy beside the target, then rename
                fd, tmp = self._open_temp(str(path))
                with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
                    out.flush()
                    if self._fsync:
                        os.fsync(out.fileno())
                os.replace(tmp, path)
                os.unlink(source)
        except OSError as exc:
            raise self._failed(key, path, "put", exc) from exc

    def get(self, key: str) -> bytes:
        path = self._path(key)
        fd = self._open_object(path)
        with os.fdopen(fd, "rb") as fh:
            try:
                return fh.read()
            except OSError as exc:
                raise StorageError(f"{path}: get failed: {exc}") from exc

    @contextmanager
    def open_file(self, key: str) -> Iterator[BinaryIO]:
        """The object's own file, open: a put meanwhile replaces the name, not what the
        open file reads."""
        path = self._path(key)
        fd = self._open_object(path)
        with os.fdopen(fd, "rb") as handle:
            yield handle

    def list(self, prefix: str = "") -> Iterator[str]:
        head, _, _ = prefix.rpartition("/")
        base = self.root / head if head else self.root
        if not base.is_dir():
            return iter(())
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in files:
                if name.startswith(_TEMP_PREFIX):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if not (exc.errno in _KEY_ERRNOS and self._root_is_folder()):
                raise StorageError(f"{path}: delete failed: {exc}") from exc
            # a key that cannot be an object (a folder, below an object): none to delete

    def _open_object(self, path: Path) -> int:
        """The object's file, open for reading; NotFoundError for what holds no object."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO: no wait
        except FileNotFoundError:
            raise NotFoundError(f"{path}: no such object") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink loop, like a dangling link, holds nothing
                raise NotFoundError(f"{path}: no such object (a symlink loop)") from None
            if exc.errno in _KEY_ERRNOS and self._root_is_folder():
                raise NotFoundError(f"{path}: no such object ({exc.strerror})") from None
            raise StorageError(f"{path}: get failed: {exc}") from exc
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"{path}: get failed: {exc}") from exc
        if not regular:  # a folder, a FIFO or /dev/zero is no object
            os.close(fd)
            raise NotFoundError(f"{path}: no such object (not a regular file)")
        return fd

    def _root_is_folder(self) -> bool:
        try:
            return stat.S_ISDIR(os.stat(self.root).st_mode)
        except OSError:
            return False

    def _failed(self, key: str, path: str | os.PathLike[str], what: str, exc: OSError) -> Exception:
        """The error for a write of *key* that failed with *exc*: RefusedError when the file
        system refuses this key alone (the store's root is a folder, so other keys work),
        else StorageError (retried)."""
        if exc.errno in _KEY_ERRNOS and self._root_is_folder():
            return RefusedError(
                f"object key {_short(key)}: the file system refuses it: "
                f"{_KEY_ERRNOS[exc.errno]} ({exc.strerror}); not stored, not retried",
                reason=errno.errorcode[exc.errno],
            )
        hint = "; free space on that disk and run it again" if exc.errno == errno.ENOSPC else ""
        return StorageError(f"{path}: {what} failed: {exc}{hint}")


_KEY_ERRNOS = {
    errno.ENAMETOOLONG: "a part of it is longer than the 255 bytes a file name takes",
    errno.ENOTDIR: "a part of it before the last '/' is an object, not a folder",
    errno.EEXIST: "a part of it before the last '/' is an object, not a folder",
    errno.EISDIR: "it is the folder that holds other objects",
}
"""What each error means for the key that met it, when the store's root is a folder."""


def _short(key: str) -> str:
    return repr(key) if len(key) <= 256 else f"{key[:256]!r}... ({len(key)} characters)"


def _check_key(key: str) -> None:
    """RefusedError for a key that is not one file below the root: empty, absolute,
    ending with ``/``, a ``.`` or ``..`` segment (``a/./b`` and ``a/.`` would alias other
    keys, ``..`` leave the root), NUL, not UTF-8 (a lone surrogate), over S3's 1,024 bytes, or a name
    that starts as the store's temporary files do (it would be stored out of sight of
    list)."""
    problem = None
    if not key:
        problem = "it is empty"
    elif key.startswith("/"):
        problem = "it starts with '/'"
    elif "\x00" in key:
        problem = "it holds a NUL character"
    elif key.endswith("/"):
        problem = "it ends with '/' (a folder here, never an object)"
    elif any(part in (".", "..") for part in key.split("/")):
        problem = "it has a '.' or '..' part"
    elif key.rpartition("/")[2].startswith(_TEMP_PREFIX):
        problem = f"its name starts with {_TEMP_PREFIX!r}, which the store keeps for its own"
    else:
        try:
            size = len(key.encode("utf-8"))
        except UnicodeEncodeError:
            problem = "it is not UTF-8 (a lone surrogate)"
        else:
            if size > MAX_KEY_BYTES:
                problem = f"it is {size:,} bytes of UTF-8; S3 takes at most {MAX_KEY_BYTES:,}"
    if problem is not None:
        raise RefusedError(
            f"object key {_short(key)}: not a valid key for a folder store: {problem}",
            reason="InvalidKey",
        )


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync(fd: int) -> OSError | None:
    try:
        os.fsync(fd)
    except OSError as exc:
        return exc
    return None


def _fsync_pool() -> ThreadPoolExecutor:
    """This process's fsync threads, shared by its stores and kept between flushes (a
    pool inherited through fork has no threads: the child makes its own)."""
    global _pool
    pool = _pool
    if pool is None or pool[0] != os.getpid():
        with _POOL_LOCK:
            pool = _pool
            if pool is None or pool[0] != os.getpid():
                executor = ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="store-fsync")
                pool = _pool = (os.getpid(), executor)
    return pool[1]
