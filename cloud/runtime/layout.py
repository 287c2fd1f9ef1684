"""Where the local runtime keeps things under its data directory.

One layout shared by ``up``, ``demo`` and every CLI command taking ``--data DIR``, so a
command run beside a live stack finds the same buckets, state and outbox.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import ConfigError
from edge.files import private_dir, write_private
from edge.signals import process_alive

if TYPE_CHECKING:
    from cloud.inference.registry import ModelRegistry

DEFAULT_DATA_DIR = "plantwatch-data"
BUCKET = "plantwatch"
INPUT_PREFIX = "input/"
OUTPUT_PREFIX = "output/"
QUARANTINE_PREFIX = "quarantine/"
ARCHIVE_PREFIX = "archive/"


def check_creatable_dir(path: Path, option: str) -> None:
    """Raise ConfigError unless *path* is a directory or could be made one, creating nothing.

    For output folders written after slow or costly work (training, AWS calls), so that a
    mistyped path fails first instead of losing the result. A name is not enough: a folder
    nobody may write in (a read-only mount, ``/sys``) is found by writing a temporary file
    there, removed at once; permission bits alone do not stop root.
    """
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{option} {path}: {ancestor} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{option} {path}: cannot write in {ancestor} ({exc.strerror or exc})"
        ) from None


@dataclass(frozen=True, slots=True)
class DataLayout:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str]) -> DataLayout:
        """Create the directory if needed, private (0700): for commands that write (``up``,
        ``demo``)."""
        return cls(private_dir(root))

    @classmethod
    def planned(cls, root: str | os.PathLike[str]) -> DataLayout:
        """A directory a command will create when it first writes, checked now so that bad
        input fails before any work and leaves no empty folder behind."""
        path = Path(root)
        check_creatable_dir(path, "--data")
        return cls(path)

    @classmethod
    def existing(cls, root: str | os.PathLike[str], hint: str | None = None) -> DataLayout:
        """An existing data directory, for commands that only read: they create nothing,
        so a mistyped ``--data`` is an error with a hint, not a new empty directory."""
        path = Path(root)
        if not path.is_dir():
            what = "not a directory" if path.exists() else "no such data directory"
            hint = hint or f"start the local stack with `plantwatch up --data {path}`"
            raise ConfigError(f"--data {path}: {what}; {hint} or pass --data DIR")
        return cls(path)

    @property
    def bucket(self) -> Path:
        """The local stand-in for the S3 bucket holding input/, output/ and quarantine/."""
        return self.root / "buckets" / BUCKET

    @property
    def archive(self) -> Path:
        """The Parquet archive, under the bucket as Firehose writes it under S3's."""
        return self.bucket / ARCHIVE_PREFIX.rstrip("/")

    @property
    def retention_file(self) -> Path:
        return self.root / "retention.toml"

    @property
    def state_db(self) -> Path:
        return self.root / "state.db"

    @property
    def shadow_db(self) -> Path:
        return self.root / "shadows.db"

    @property
    def spool_db(self) -> Path:
        return self.root / "batcher-spool.db"

    @property
    def broker_state(self) -> Path:
        """The embedded mosquitto's persistence folder (``mosquitto.db``: sessions,
        subscriptions, queued and retained messages)."""
        return self.root / "broker"

    @property
    def alerts(self) -> Path:
        return self.root / "alerts.jsonl"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def registry(self) -> ModelRegistry:
        """The model registry over ``models/``; reading it creates nothing."""
        from cloud.adapters.local import FsObjectStore
        from cloud.inference.registry import ModelRegistry

        return ModelRegistry(FsObjectStore(self.models, create=False), where=str(self.models))

    @property
    def detectors(self) -> Path:
        """Detector models and inputs registered by ``plantwatch import iotevents``."""
        return self.root / "detectors"

    @property
    def edge_dir(self) -> Path:
        return self.root / "edge"

    @property
    def runtime_file(self) -> Path:
        return self.root / "runtime.json"

    @property
    def stack_lock_file(self) -> Path:
        return self.root / "stack.lock"

    def hold(self) -> Callable[[], None]:
        """Claim the folder for one running stack; returns the release.

        Why: two stacks on one folder share its spool, state database and outbox, and each
        believes it alone acknowledges and sends. The archive's own lock caught that only
        with the archive on; this one holds for every ``up`` and ``demo``. ``flock`` is
        released by the kernel when the holder dies, so a killed stack never leaves the
        folder locked; the pid in the file is only for the message.
        """
        path = self.stack_lock_file
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                owner = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            os.close(fd)
            who = f", pid {owner}" if owner and process_alive(owner) else ""
            raise ConfigError(
                f"--data {self.root}: in use by another running stack (plantwatch up or demo"
                f"{who}); stop it or give another --data"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return lambda: os.close(fd)

    def write_runtime(self, info: dict[str, Any]) -> None:
        write_private(self.runtime_file, (json.dumps(info, indent=2) + "\n").encode())

    def read_runtime(self) -> dict[str, Any]:
        try:
            return json.loads(self.runtime_file.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"{self.runtime_file}: not found; start the stack with `plantwatch up --data "
                f"{self.root}` or pass --broker-url"
            ) from None
