"""Route one message to every engine that reads its input, as BatchPutMessage does (§1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class MessageEngine(Protocol):
    inputs: Mapping[str, Any]

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None: ...


class MessageRouter:
    """Feeds detector and alarm engines from one source (the results feeder).

    Engines run in the order given; each sees the message as sent, so an alarm model and a
    detector model on the same input evaluate the same row.
    """

    def __init__(self, engines: Sequence[MessageEngine]) -> None:
        self.engines = list(engines)
        self.inputs: dict[str, Any] = {}
        for engine in self.engines:
            self.inputs.update(engine.inputs)

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None:
        for engine in self.engines:
            if input_name in engine.inputs:
                engine.put_message(input_name, dict(payload), message_id)
