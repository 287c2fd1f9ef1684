"""A device's wall clock can be stepped (NTP, an RTC-less board syncing after boot): the
agent keeps polling at its interval and keeps sending."""

from __future__ import annotations

import time
from pathlib import Path

from edge_helpers import Receiver

from cloud.runtime.broker import EmbeddedBroker
from edge.agent import Agent, AgentConfig
from edge.wire import Sample

STEP_S = 3600.0


class SteppedClock:
    """Wall time plus an offset a test moves, as ``date -s`` or an NTP step does."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def monotonic(self) -> float:
        return time.monotonic()


class Stepping:
    """One reading on the first poll, then none; the clock steps back an hour during the
    second poll, so the queued reading looks an hour younger than "now"."""

    def __init__(self, clock: SteppedClock) -> None:
        self.clock = clock
        self.polls = 0

    def poll(self, now: float) -> list[tuple[str, Sample]]:
        self.polls += 1
        if self.polls == 2:
            self.clock.offset -= STEP_S
        if self.polls > 1:
            return []
        return [("pump-1", Sample(int(now * 1000), {"flow": 1.0}))]


def _agent(broker: EmbeddedBroker, tmp_path: Path, clock: SteppedClock, **extra: object) -> Agent:
    return Agent(
        AgentConfig(
            site="plant1",
            sender="gw-1",
            broker_url=broker.url,
            queue_path=str(tmp_path / "queue.db"),
            assets=("pump-1",),
            protocol="3.1.1",
            shadow=False,
            backoff_min_s=0.05,
            backoff_max_s=0.5,
            **extra,  # type: ignore[arg-type]
        ),
        clock,
    )


def test_a_clock_stepped_back_does_not_stop_polling_or_hold_a_partial_batch(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    receiver = Receiver(broker.host, broker.port, client_id="rx-clock")
    clock = SteppedClock()
    agent = _agent(
        broker,
        tmp_path,
        clock,
        sampling_interval_s=0.1,
        samples_per_message=1000,
        max_batch_delay_s=0.2,
    )
    source = Stepping(clock)
    agent.add_source(source)
    try:
        assert receiver.wait_subscribed(10)
        agent.start()
        # polls go on at the interval, not one interval plus the hour
        deadline = time.monotonic() + 10
        while source.polls < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert source.polls >= 6
        # and a partial batch queued before the step is sent after its delay, not an hour later
        assert receiver.wait_for(1, 10)
    finally:
        agent.stop(flush=False, timeout=1)
        receiver.close()
