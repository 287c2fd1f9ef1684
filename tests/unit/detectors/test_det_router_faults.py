"""What the router does with the messages ``iotEvents`` actions put back when something fails.

An ``iotEvents`` action's message is held by the router until the message (or the timer
tick) in progress is done, then routed (§4: the payload re-enters as a message). The
evaluation that sent it is saved by then, so its action was taken: a failure elsewhere in
the same message (another model's store refusing a write) or in the same tick (one
instance's timer that cannot be saved) must not silently drop it. The failure itself still
reaches the caller, which retries the message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from cloud.detectors.router import MessageRouter
from edge.errors import StorageError


class Relay:
    """A model reading ``In`` whose ``iotEvents`` action sends ``{"n": n}`` to ``Out``."""

    inputs: Mapping[str, Any] = {"In": None}

    def __init__(self) -> None:
        self.router: MessageRouter | None = None

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None:
        assert self.router is not None
        self.router.put_message("Out", {"n": payload["n"]})


class Broken:
    """A model reading ``In`` whose store refuses every write."""

    inputs: Mapping[str, Any] = {"In": None}

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None:
        raise StorageError("state table throttled")


class Reader:
    """A model reading ``Out``: keeps what it was given, or fails on ``n`` in ``refuse``."""

    def __init__(self, *refuse: int) -> None:
        self.inputs: Mapping[str, Any] = {"Out": None}
        self.seen: list[Any] = []
        self.refuse = set(refuse)

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None:
        if payload["n"] in self.refuse:
            raise StorageError(f"cannot save n={payload['n']}")
        self.seen.append(payload["n"])


def wired(*engines: Any) -> MessageRouter:
    router = MessageRouter(engines)
    for engine in engines:
        if isinstance(engine, Relay):
            engine.router = router
    return router


def test_a_message_put_back_is_routed_although_another_model_failed_the_same_message() -> None:
    reader = Reader()
    router = wired(Relay(), Broken(), reader)
    with pytest.raises(StorageError, match="throttled"):
        router.put_message("In", {"n": 1})
    assert reader.seen == [1]


def test_messages_put_back_during_a_tick_are_routed_although_the_tick_failed() -> None:
    """The timers runtime ticks inside ``holding()``; a tick raises its first failure after
    firing every other due timer, whose actions' messages still go out."""
    reader = Reader()
    router = wired(reader)
    with pytest.raises(StorageError, match="timer not saved"), router.holding():
        router.put_message("Out", {"n": 1})
        router.put_message("Out", {"n": 2})
        raise StorageError("timer not saved")
    assert reader.seen == [1, 2]


def test_one_message_put_back_that_fails_does_not_keep_the_next_from_its_models(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = Reader(1)
    router = wired(reader)
    with (
        caplog.at_level(logging.ERROR, logger="cloud.detectors.router"),
        pytest.raises(StorageError, match="n=1"),
        router.holding(),
    ):
        router.put_message("Out", {"n": 1})
        router.put_message("Out", {"n": 2})
        router.put_message("Out", {"n": 3})
    assert reader.seen == [2, 3]


def test_a_failure_while_routing_what_a_failed_tick_put_back_is_logged_not_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two failures: the tick's reaches the caller, the put-back message's is logged."""
    reader = Reader(1)
    router = wired(reader)
    with (
        caplog.at_level(logging.ERROR, logger="cloud.detectors.router"),
        pytest.raises(StorageError, match="timer not saved"),
        router.holding(),
    ):
        router.put_message("Out", {"n": 1})
        raise StorageError("timer not saved")
    assert any("n=1" in r.getMessage() and "'Out'" in r.getMessage() for r in caplog.records)


def test_after_a_failure_the_router_routes_the_next_message_afresh() -> None:
    reader = Reader()
    router = wired(Relay(), Broken(), reader)
    with pytest.raises(StorageError):
        router.put_message("In", {"n": 1})
    router.engines.pop(1)  # the store is back: only the relay and the reader remain
    router.put_message("In", {"n": 2})
    assert reader.seen == [1, 2]
