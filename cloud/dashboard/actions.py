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

from edge.errors import PlantwatchError, UserError

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
    """Acts on a data directory's alarms from outside the process that runs them."""

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
        from cloud.adapters.local import OutboxNotifier
        from cloud.adapters.local.sqlite_state_store import SqliteStateStore
        from cloud.detectors.actions import LocalActionSink
        from cloud.detectors.alarms import NotificationLimiter, operations
        from cloud.runtime.layout import DataLayout
        from edge.clock import SystemClock

        request = _request(action, alarm_model, key, note, who, snooze_s)
        layout = DataLayout(self._data)
        store = SqliteStateStore(layout.state_db)
        try:
            if operations.stack_alive(store, time.time()):
                ticket = operations.submit(store, request, time.time())
                result = operations.wait(store, ticket)
                if result is None:
                    raise PlantwatchError("the running stack did not apply the request in 15 s")
                if result["status"] == "rejected":
                    raise UserError(result["message"])
                if result["status"] != "done":
                    raise PlantwatchError(result.get("message", "the stack failed the request"))
                return dict(result["alarm"])
            clock = SystemClock()
            notifier = OutboxNotifier(layout.alerts, clock=clock)
            limiter = NotificationLimiter(store)
            engine = operations.engine_from_store(
                store,
                alarm_model,
                clock=clock,
                notifier=notifier,
                actions=LocalActionSink(notifier, None, state=store, limiter=limiter),
                limiter=limiter,
            )
            return operations.apply(engine, request)
        finally:
            store.close()
