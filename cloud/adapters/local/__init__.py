"""Local adapters: the default backends of ``plantwatch up`` and ``demo``."""

from cloud.adapters.local.fs_object_store import FsObjectStore
from cloud.adapters.local.memory import (
    InMemoryNotifier,
    InMemoryObjectStore,
    InMemoryPublisher,
    InMemoryStateStore,
)
from cloud.adapters.local.outbox_notifier import OutboxNotifier
from cloud.adapters.local.sqlite_state_store import SqliteStateStore

__all__ = [
    "FsObjectStore",
    "InMemoryNotifier",
    "InMemoryObjectStore",
    "InMemoryPublisher",
    "InMemoryStateStore",
    "OutboxNotifier",
    "SqliteStateStore",
]
