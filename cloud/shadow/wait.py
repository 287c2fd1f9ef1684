"""Wait until a device has applied a command: its reported state matches what was asked.

Polls ``get`` through any ShadowApi (local MQTT, local file or AWS), so ``plantwatch shadow
wait`` behaves the same on every backend; time and sleeping come from the injected Clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cloud.shadow.client import ShadowApi
from cloud.shadow.commands import flatten
from cloud.shadow.document import Json, same_value
from edge.clock import Clock
from edge.errors import NotFoundError

POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class WaitResult:
    in_sync: bool
    waited_s: float
    document: Json | None
    pending: dict[str, Any] = field(default_factory=dict)
    """Dotted key -> ``{"desired": ..., "reported": ...}`` still differing at the end."""


def pending_keys(document: Json | None, expected: Mapping[str, Any] | None) -> dict[str, Any]:
    """What is not yet reported: the given targets, or the whole delta when none are given."""
    state = (document or {}).get("state", {})
    if not expected:
        if document is None:
            return {"": {"desired": None, "reported": None, "missing": True}}
        # The service's own delta is what is pending: re-comparing dotted flattenings
        # took desired {"a.b": 1} as met by reported {"a": {"b": 1}}.
        return _delta_leaves(state.get("delta") or {}, state.get("reported") or {}, ())
    reported = flatten(state.get("reported"))
    targets = flatten(expected)
    out: dict[str, Any] = {}
    for key, want in targets.items():
        have = reported.get(key)
        if key not in reported or not same_value(want, have):
            out[key] = {"desired": want, "reported": have}
    return out


def _delta_leaves(delta: Mapping[str, Any], reported: Any, path: tuple[str, ...]) -> dict[str, Any]:
    """Each leaf of *delta* by dotted key, with the reported value at the same key path."""
    out: dict[str, Any] = {}
    for key, want in delta.items():
        have = reported.get(key) if isinstance(reported, Mapping) else None
        if isinstance(want, dict) and want:
            out.update(_delta_leaves(want, have, (*path, key)))
        else:
            out[".".join((*path, key))] = {"desired": want, "reported": have}
    return out


def wait_in_sync(
    api: ShadowApi,
    thing: str,
    expected: Mapping[str, Any] | None,
    timeout_s: float,
    clock: Clock,
    *,
    name: str | None = None,
    poll_s: float = POLL_S,
) -> WaitResult:
    start = clock.now()
    while True:
        try:
            document: Json | None = api.get(thing, name)
        except NotFoundError:
            document = None
        pending = pending_keys(document, expected)
        waited = clock.now() - start
        if not pending:
            return WaitResult(True, waited, document)
        if waited >= timeout_s:
            return WaitResult(False, waited, document, pending)
        clock.sleep(min(poll_s, timeout_s - waited))
