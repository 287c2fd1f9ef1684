"""The one error tree for plantwatch; every package raises from here.

```
PlantwatchError            job failed -> exit 1
├── UserError              bad input -> exit 2, one line on stderr, no traceback
│   ├── ConfigError        names the key and the file
│   ├── WireFormatError    names the field and what was expected
│   ├── RuleSqlError       position and reason
│   └── DetectorModelError JSON path of the bad reference
├── NotFoundError          object, shadow or detector instance missing
├── ConflictError          shadow version mismatch (AWS code 409)
│   └── VersionConflictError   a state-store write lost a race (compare-and-set)
└── StorageError           adapter failure, chained `from` the cause
    └── RefusedError       the service refused this request and will again: not retried
```

A ``UserError`` message is the whole line the user sees, so it names the file, field or
position and what was expected.
"""

from __future__ import annotations


class PlantwatchError(Exception):
    """A job ran and failed."""


class UserError(PlantwatchError):
    """The input or the invocation is wrong; the message says which part and why."""


class ConfigError(UserError):
    """A configuration file or option is invalid.

    *option* names the setting at fault when the message comes from a check that knows no
    file (``AgentConfig.check``), so a loader can say where it is written
    (``agent.toml: [agent].keep_alive_s: ...``) rather than only its name."""

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(f"{option}: {message}" if option else message)
        self.option = option
        self.detail = message


class WireFormatError(UserError):
    """A telemetry payload does not match the wire contract."""

    def __init__(self, message: str, *, reason: str = "bad_payload") -> None:
        super().__init__(message)
        self.reason = reason


class RuleSqlError(UserError):
    """IoT SQL outside the supported subset, with the position of the problem."""

    def __init__(self, message: str, *, position: int | None = None) -> None:
        super().__init__(message if position is None else f"{message} (at position {position})")
        self.position = position


class DetectorModelError(UserError):
    """A detector-model or input definition is invalid."""


class NotFoundError(PlantwatchError):
    """An object, shadow or detector instance does not exist."""


class ConflictError(PlantwatchError):
    """An optimistic-locking version did not match."""


class VersionConflictError(ConflictError):
    """A conditional state-store write lost a race: the stored version was not *expected*.

    The writer re-reads the document and decides again; nothing was written.
    """

    def __init__(self, namespace: str, key: str, expected: int | None) -> None:
        wanted = "absent" if expected is None else f"version {expected}"
        super().__init__(f"state {namespace}/{key}: expected {wanted}; another writer won")
        self.namespace = namespace
        self.key = key
        self.expected = expected


class StorageError(PlantwatchError):
    """A storage adapter failed; raised ``from`` the underlying error."""


class RefusedError(StorageError):
    """The service refused this very request and will refuse it again as it stands: a
    parameter it never takes, a resource that does not exist, no permission for it.

    Retrying is no use until the request or the deployment changes, so a retrying caller
    (the detector outbox) keeps it as a dead letter at once. Adapters raise it only for
    the errors they know to be permanent; anything else (throttling, 5xx, a dropped
    connection) stays a plain ``StorageError`` and is retried. ``reason`` is the service's
    own error code (``InvalidParameter``, ``NotFound``) or a short name for a local one.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
