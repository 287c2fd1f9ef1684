"""Route one message to every engine that reads its input, as BatchPutMessage does (§1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cloud.ports import StateStore, batched


class MessageEngine(Protocol):
    inputs: Mapping[str, Any]

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None: ...


class MessageRouter:
    """Feeds detector and alarm engines from one source (the results feeder).

    Engines run in the order given; each sees the message as sent, so an alarm model and a
    detector model on the same input evaluate the same row. Given the engines' *state*
    store, the writes one message causes in all of them go in one batch (on SQLite one
    commit: the detector's instance, an alarm's state change, its history entry, the
    notification budget, the outbox records), instead of one commit each.
    """

    def __init__(self, engines: Sequence[MessageEngine], state: StateStore | None = None) -> None:
        self.engines = list(engines)
        self._state = state
        self.inputs: dict[str, Any] = {}
        for engine in self.engines:
            self.inputs.update(engine.inputs)

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None:
        if self._state is None or len(self.engines) < 2:
            self._dispatch(input_name, payload, message_id)  # one engine: its own commits
            return
        with batched(self._state):
            self._dispatch(input_name, payload, message_id)

    def _dispatch(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None
    ) -> None:
        for engine in self.engines:
            if input_name in engine.inputs:
                engine.put_message(input_name, dict(payload), message_id)
