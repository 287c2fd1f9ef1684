"""Operator actions the alarms page may take: acknowledge and snooze an alarm instance.

They are the alarm engine's own entry points (``AlarmEngine.acknowledge`` / ``snooze`` through
:func:`cloud.detectors.alarms.operations.apply`), reached one of two ways:

- :class:`EngineActions`: the dashboard runs inside the stack (``plantwatch up``, the demo),
  which owns the engines; the call goes straight to them (each engine takes its own lock).
- :class:`StoreActions`: the dashboard runs beside the data (``plantwatch dashboard``); as
  ``plantwatch alarms ack`` does, a request goes to a live stack through the state store and
  waits for its answer, and with no stack running it is applied to the stored state.

The dashboard offers actions only when they are enabled (``--alarm-actions``); otherwise
its pages are read-only and its POST endpoints answer 403.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

from edge.errors import UserError

ACTIONS: Final = {"acknowledge": "ACKNOWLEDGE", "snooze": "SNOOZE"}


class AlarmActions(Protocol):
    def apply(
        self,
        action: str,
        alarm_model: str,
        key: str | None,
        *,
        note: str,
        who: str,
        snooze_s: float | None = None,
    ) -> dict[str, Any]:
        """Run one operator action; DescribeAlarm's document after it. UserError when it
        does not fit the alarm's state, NotFoundError for an unknown model or key."""


def _request(
    action: str, alarm_model: str, key: str | None, note: str, who: str, snooze_s: float | None
) -> Any:
    from cloud.detectors.alarms import operations

    if action not in ACTIONS:
        raise UserError(f"unknown action {action!r} (expected: {', '.join(ACTIONS)})")
    return operations.OperatorRequest(
        action=ACTIONS[action],
        alarm_model=alarm_model,
        key=key,
        note=note,
        who=who,
        snooze_s=snooze_s,
    )


class EngineActions:
    """Calls the running stack's alarm engines directly."""

    def __init__(self, engines: Callable[[], Mapping[str, Any]]) -> None:
        self._engines = engines

    def apply(
        self,
        action: str,
        alarm_model: str,
        key: str | None,
        *,
        note: str,
        who: str,
        snooze_s: float | None = None,
    ) -> dict[str, Any]:
        from cloud.detectors.alarms import operations
        from edge.errors import NotFoundError

        request = _request(action, alarm_model, key, note, who, snooze_s)
        engine = self._engines().get(alarm_model)
        if engine is None:
            raise NotFoundError(f"alarm model {alarm_model!r}: not running in this stack")
        return operations.apply(engine, request)


class StoreActions:
    """Acts on a data directory's alarms from outside the process that runs them, the way
    ``plantwatch alarms ack|snooze`` does (the same code): through a live stack's request
    inbox, or with no stack running, on the stored state."""

    def __init__(self, data: Path) -> None:
        self._data = Path(data)

    def apply(
        self,
        action: str,
        alarm_model: str,
        key: str | None,
        *,
        note: str,
        who: str,
        snooze_s: float | None = None,
    ) -> dict[str, Any]:
        from cloud.adapters.local.sqlite_state_store import SqliteStateStore
        from cloud.cli import alarms as cli
        from cloud.detectors.alarms import operations
        from cloud.detectors.alarms.engine import REGISTRY_NAMESPACE
        from cloud.runtime.layout import DataLayout
        from edge.errors import NotFoundError

        request = _request(action, alarm_model, key, note, who, snooze_s)
        store = SqliteStateStore(DataLayout(self._data).state_db)
        try:
            if store.get(REGISTRY_NAMESPACE, alarm_model) is None:
                raise NotFoundError(f"alarm model {alarm_model!r}: not in this data directory")
            if operations.stack_alive(store, time.time()):
                return dict(cli._through_stack(store, request))
            return dict(cli._directly(store, self._data, request))
        finally:
            store.close()
