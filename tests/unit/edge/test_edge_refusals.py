"""Every reading the agent does not queue is counted with its reason."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge.agent import Agent, AgentConfig
from edge.buffer import BufferFullError
from edge.clock import SystemClock
from edge.errors import StorageError, WireFormatError
from edge.wire import Sample

T = 1_700_000_000_000


def make(tmp_path: Path, **extra: object) -> Agent:
    return Agent(
        AgentConfig(
            site="s1",
            sender="gw",
            broker_url="mqtt://127.0.0.1:1",  # nothing listens: these tests never send
            queue_path=str(tmp_path / "q.db"),
            assets=("pump-1",),
            shadow=False,
            **extra,  # type: ignore[arg-type]
        ),
        SystemClock(),
    )


def test_submit_counts_storage_errors_invalid_readings_and_a_full_queue(tmp_path: Path) -> None:
    agent = make(tmp_path)
    put = agent.buffer.put

    def broken_put(*_args: object, **_kwargs: object) -> int:
        raise StorageError("queue q.db: write failed (disk I/O error)")

    agent.buffer.put = broken_put  # type: ignore[method-assign]
    with pytest.raises(StorageError):
        agent.submit("pump-1", [Sample(T + i, {"flow": 1.0}) for i in range(5)])
    agent.buffer.put = put  # type: ignore[method-assign]
    with pytest.raises(WireFormatError):
        agent.submit("pump-1", [Sample(10**400, {"flow": 1.0})])

    def full(*_args: object, **_kwargs: object) -> int:
        raise BufferFullError("queue q.db: full")

    agent.buffer.put = full  # type: ignore[method-assign]
    with pytest.raises(BufferFullError):
        agent.submit("pump-1", [Sample(T, {"flow": 1.0})] * 2)
    status = agent.status()
    assert status["refused"] == 8
    assert status["refused_by_reason"] == {"buffer_full": 2, "invalid": 1, "storage_error": 5}
    agent.buffer.close()


class Steady:
    """One reading per poll."""

    def __init__(self) -> None:
        self.polls = 0

    def poll(self, now: float) -> list[tuple[str, Sample]]:
        self.polls += 1
        return [("pump-1", Sample(int(now * 1000), {"flow": 1.0}))]


def test_the_poller_counts_what_it_could_not_queue(tmp_path: Path) -> None:
    agent = make(tmp_path, sampling_interval_s=0.02)
    source = Steady()
    agent.add_source(source)

    def broken_put(*_args: object, **_kwargs: object) -> int:
        raise StorageError("queue q.db: write failed (disk I/O error)")

    agent.buffer.put = broken_put  # type: ignore[method-assign]
    agent.start()
    try:
        deadline = time.monotonic() + 10
        while source.polls < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        agent.stop(flush=False, timeout=1)
    status = agent.status()
    assert source.polls >= 5
    assert status["refused_by_reason"] == {"storage_error": source.polls}
    assert status["refused"] == source.polls
