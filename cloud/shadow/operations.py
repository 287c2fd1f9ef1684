"""Get, update and delete against the SQLite store: the one place requests meet storage.

The MQTT service and the CLI's no-broker path both call these, so a command written to the
store directly obeys the same validation, locking and versioning as one sent over MQTT.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud.shadow.document import (
    Json,
    Shadow,
    ShadowError,
    UpdateResult,
    apply_update,
    delete_document,
    get_document,
    not_found,
    valid_token,
    validate_names,
)
from cloud.shadow.store import ShadowStore, Stored
from edge.clock import Clock


class ShadowOperations:
    def __init__(self, store: ShadowStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def now(self) -> int:
        return int(self.clock.now())

    def get(self, thing: str, name: str | None, token: str | None = None) -> Json:
        _check_names(thing, name, token)
        now = self.now()
        shadow = self.store.get(thing, name, now)
        if shadow is None:
            raise not_found(thing, name, token)
        return get_document(shadow, now, token)

    def update(self, thing: str, name: str | None, request: Mapping[str, Any]) -> UpdateResult:
        # Names first, as the service checks them before it reads a body: a bad token
        # then is not echoed, and does not answer instead.
        _check_names(thing, name, valid_token(request))
        now = self.now()

        def change(stored: Stored) -> tuple[Shadow, UpdateResult]:
            result = apply_update(
                stored.shadow, request, now, missing_version=stored.missing_version
            )
            return result.shadow, result

        return self.store.modify(thing, name, now, change)

    def delete(self, thing: str, name: str | None, token: str | None = None) -> Json:
        _check_names(thing, name, token)
        now = self.now()

        def change(stored: Stored) -> tuple[None, Json]:
            if stored.shadow is None:
                raise not_found(thing, name, token)
            return None, delete_document(stored.shadow.version, now, token)

        return self.store.modify(thing, name, now, change)

    def document(self, thing: str, name: str | None) -> Json | None:
        """The stored document (state, metadata, version) for reports, or None."""
        shadow = self.store.get(thing, name, self.now())
        return None if shadow is None else shadow.to_json()


def _check_names(thing: str, name: str | None, token: str | None) -> None:
    """Name errors echo the token: awsiotsdk's V2 client matches answers by token only."""
    try:
        validate_names(thing, name)
    except ShadowError as error:
        raise error.with_token(token) from None
