"""Route one message to every engine that reads its input, as BatchPutMessage does (§1)."""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from cloud.detectors.engine import MAX_CHAINED_MESSAGES, too_many_put_back
from edge.cliargs import one_line

log = logging.getLogger(__name__)


class MessageEngine(Protocol):
    inputs: Mapping[str, Any]

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None: ...


class MessageRouter:
    """Feeds detector and alarm engines from one source (the results feeder), and takes back
    the messages their ``iotEvents`` actions send (bind the action sink to it), so such a
    message reaches every model reading its input, alarm models included (§1, §4).

    Engines run in the order given; each sees the message as sent, so an alarm model and a
    detector model on the same input evaluate the same row. A message put while the router
    routes one, or while it is held (``holding``: an engine's timers or requests at work), is
    routed after it, so no engine is entered again in the middle of an evaluation; the
    messages put back that way are bounded per outside message, as in one engine.
    """

    def __init__(self, engines: Sequence[MessageEngine]) -> None:
        self.engines = list(engines)
        self.inputs: dict[str, Any] = {}
        for engine in self.engines:
            self.inputs.update(engine.inputs)
        self._lock = threading.RLock()
        self._depth = 0
        self._queue: deque[tuple[str, dict[str, Any], str | None]] = deque()
        self._chained = 0

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None:
        with self._lock:
            if self._depth:
                self._chained += 1
                if self._chained > MAX_CHAINED_MESSAGES:
                    raise too_many_put_back("router", input_name)
                self._queue.append((input_name, dict(payload), message_id))
                return
            with self.holding():
                self._route(input_name, payload, message_id)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Hold messages put meanwhile until the outermost hold ends, then route them.

        They are routed even when what was held failed: they come from evaluations already
        saved (another model's, or another timer's in the same tick), so their actions were
        taken. Each is routed whatever another did; the hold's own failure, else the first
        of theirs, is raised once all are routed, and any other failure is logged."""
        with self._lock:
            self._depth += 1
            try:
                try:
                    yield
                except Exception:
                    if self._depth == 1:
                        self._route_held()
                    raise
                if self._depth == 1:
                    failure = self._route_held()
                    if failure is not None:
                        raise failure
            finally:
                self._depth -= 1
                if not self._depth:
                    self._queue.clear()
                    self._chained = 0

    def _route_held(self) -> Exception | None:
        """Route every held message (and those they put back); log each failure, return
        the first."""
        first: Exception | None = None
        while self._queue:
            input_name, payload, message_id = self._queue.popleft()
            try:
                self._route(input_name, payload, message_id)
            except Exception as exc:
                log.error(
                    "message put back to input %r (%s) not routed to every model: %s",
                    input_name,
                    one_line(json.dumps(payload, default=str))[:300],
                    one_line(f"{type(exc).__name__}: {exc}"),
                )
                first = first or exc
        return first

    def _route(self, input_name: str, payload: Mapping[str, Any], message_id: str | None) -> None:
        for engine in self.engines:
            if input_name in engine.inputs:
                engine.put_message(input_name, dict(payload), message_id)
