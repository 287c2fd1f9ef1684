"""Every reading the agent does not queue is counted with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from waiting import wait_for

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
        wait_for(lambda: source.polls >= 5, timeout=10)
    finally:
        agent.stop(flush=False, timeout=1)
    status = agent.status()
    assert source.polls >= 5
    assert status["refused_by_reason"] == {"storage_error": source.polls}
    assert status["refused"] == source.polls


class Hostile:
    """Good readings polled together with ones outside the wire contract."""

    def __init__(self) -> None:
        self.polls = 0

    def poll(self, now: float) -> list[tuple[str, Sample]]:
        self.polls += 1
        if self.polls > 1:
            return []
        ts = int(now * 1000)
        return [
            ("pump-1", Sample(ts, {"flow": 1.0})),
            ("pump-1", Sample(ts + 1, {"flow": float("nan")})),
            ("pump-1", Sample(ts + 2, {"flow": 2.0})),
            ("pump-1", Sample(0, {"flow": 3.0})),  # the clock jumped back to 1970
            ("pump-1", Sample(ts + 3, {"flow": float("inf")})),
            ("pump-1", Sample(ts + 4, {"flow": 1e300, "temp": -4.0})),  # huge
            ("pump-1", Sample(ts + 5, {"flow": -4.0, "temp": 1e15})),
            ("pump-1", Sample(10**13, {"flow": 5.0})),  # and forward past 2200
        ]


def test_a_bad_reading_is_refused_alone_and_the_good_ones_polled_with_it_are_queued(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="edge.agent")
    agent = make(tmp_path, sampling_interval_s=0.1)
    source = Hostile()
    agent.add_source(source)
    agent.start()
    try:
        wait_for(lambda: source.polls >= 3, timeout=10)
        status = agent.status()
    finally:
        agent.stop(flush=False, timeout=1)
    assert source.polls >= 3  # the poller kept running
    assert status["queue_depth"] == 3
    assert status["refused_by_reason"] == {"invalid": 5}
    reasons = [r.getMessage() for r in caplog.records if r.getMessage().startswith("submit")]
    assert len(reasons) == 5
    assert sum("NaN and infinity are not allowed" in r for r in reasons) == 2
    assert sum("ts" in r and "2200-01-01" in r for r in reasons) == 2


class Misshapen:
    """Readings a plugin may build wrong: a sensor keyed by register number, no values at
    all, something that is no Sample, beside good readings."""

    def __init__(self) -> None:
        self.polls = 0

    def poll(self, now: float) -> list[tuple[str, object]]:
        self.polls += 1
        if self.polls > 1:
            return []
        ts = int(now * 1000)
        return [
            ("pump-1", Sample(ts, {"flow": 1.0})),
            ("pump-1", Sample(ts + 1, {40001: 2.0})),  # type: ignore[dict-item]
            ("pump-1", Sample(ts + 2, None)),  # type: ignore[arg-type]
            ("pump-1", "flow=3.0"),
            ("pump-1", Sample(ts + 3, {"flow": 4.0})),
        ]


def test_a_misshapen_reading_is_refused_alone_in_one_line_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """GIVEN a source whose readings include a non-text sensor name, no values and a
    non-Sample WHEN the agent polls it THEN each of those is refused alone as invalid, in a
    line naming what is wrong, and the good readings polled with them are queued (a
    TypeError used to refuse the whole poll as 'error', good readings too)."""
    caplog.set_level("WARNING", logger="edge.agent")
    agent = make(tmp_path, sampling_interval_s=0.1)
    source = Misshapen()
    agent.add_source(source)
    agent.start()
    try:
        wait_for(lambda: source.polls >= 3, timeout=10)
        status = agent.status()
    finally:
        agent.stop(flush=False, timeout=1)
    assert status["queue_depth"] == 2
    assert status["refused_by_reason"] == {"invalid": 3}
    reasons = [r.getMessage() for r in caplog.records if r.getMessage().startswith("submit")]
    assert len(reasons) == 3, reasons
    assert any("sensor name 40001" in r and "not text" in r for r in reasons), reasons
    assert any("values: expected an object of sensor values, got None" in r for r in reasons)
    assert any("expected a Sample" in r for r in reasons), reasons
    with pytest.raises(WireFormatError, match="not text"):
        agent.submit("pump-1", [Sample(1_700_000_000_000, {7: 1.0})])  # type: ignore[dict-item]


class Broken:
    """A plugin whose poll returns something that is not a list of (asset, Sample)."""

    def __init__(self) -> None:
        self.polls = 0

    def poll(self, now: float) -> object:
        self.polls += 1
        return [None, 1] if self.polls % 2 else None


def test_a_source_returning_garbage_does_not_end_the_poller(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="edge.agent")
    agent = make(tmp_path, sampling_interval_s=0.1)
    broken, steady = Broken(), Steady()
    agent.add_source(broken)
    agent.add_source(steady)
    agent.start()
    try:
        wait_for(lambda: steady.polls >= 4, timeout=10)
        depth = agent.status()["queue_depth"]
    finally:
        agent.stop(flush=False, timeout=1)
    assert broken.polls >= 4 and steady.polls >= 4
    assert depth >= 3  # the good source's readings were queued all along
    assert any(r.getMessage().startswith("source Broken:") for r in caplog.records)


class Stranger:
    """A source that also reports an asset this agent was not configured for."""

    def __init__(self) -> None:
        self.polls = 0

    def poll(self, now: float) -> list[tuple[str, Sample]]:
        self.polls += 1
        ts = int(now * 1000)
        return [
            ("pump-1", Sample(ts, {"flow": 1.0})),
            ("pump-9", Sample(ts, {"flow": 2.0})),
            ("pump-9", Sample(ts + 1, {"flow": 3.0})),
        ]


def test_polled_readings_of_an_unknown_asset_are_counted_as_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="edge.agent")
    agent = make(tmp_path, sampling_interval_s=0.05)
    source = Stranger()
    agent.add_source(source)
    agent.start()
    try:
        wait_for(lambda: source.polls >= 3, timeout=10)
    finally:
        agent.stop(flush=False, timeout=1)
    status = agent.status()
    assert status["queue_depth"] == source.polls
    assert status["refused_by_reason"] == {"unknown_asset": 2 * source.polls}
    assert any("'pump-9'" in r.getMessage() for r in caplog.records)


class Backwards:
    """A source whose clock runs backwards: each poll's readings, and each poll, older."""

    def __init__(self) -> None:
        self.polls = 0

    def poll(self, now: float) -> list[tuple[str, Sample]]:
        self.polls += 1
        base = T - self.polls * 10_000
        return [("pump-1", Sample(base - i, {"flow": float(i)})) for i in range(3)]


def test_readings_whose_time_goes_backwards_are_all_queued_none_refused(tmp_path: Path) -> None:
    """The wire needs a time within 2000-2200, not an order: a stepped-back clock loses
    nothing."""
    agent = make(tmp_path, sampling_interval_s=0.02)
    source = Backwards()
    agent.add_source(source)
    agent.start()
    try:
        wait_for(lambda: source.polls >= 3, timeout=10)
    finally:
        agent.stop(flush=False, timeout=1)
    status = agent.status()
    assert status["queue_depth"] == 3 * source.polls and status["refused"] == 0


def test_a_status_file_that_cannot_be_written_is_logged_once_until_it_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent rewrites its status file every second; a full disk must not make that a
    warning a second (into a journal on the same full disk)."""
    import edge.agent as agent_module

    caplog.set_level("INFO", logger="edge.agent")
    agent = make(tmp_path)
    failing = {"on": True}
    real = agent_module.write_private

    def write(path: object, data: bytes, **kwargs: object) -> None:
        if failing["on"]:
            raise OSError(28, "No space left on device", str(path))
        real(path, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(agent_module, "write_private", write)
    for _ in range(5):
        agent._write_status()
    failing["on"] = False
    agent._write_status()
    failing["on"] = True
    agent._write_status()
    agent.buffer.close()
    lines = [r.getMessage() for r in caplog.records if "status file" in r.getMessage()]
    assert len(lines) == 3, lines
    assert "No space left on device" in lines[0] and "written again" in lines[1]


def test_a_queue_that_fails_during_the_stop_still_ends_in_a_clean_stop_and_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The disk under the queue goes bad while the agent runs: stop must still stop every
    thread and say so, not raise out of the flush and leave the agent half-stopped."""
    import sqlite3

    caplog.set_level("INFO", logger="edge.agent")
    agent = make(tmp_path)
    agent.start()
    agent.submit("pump-1", [Sample(T, {"flow": 1.0})])

    def broken() -> object:
        raise sqlite3.DatabaseError("database disk image is malformed")

    agent.buffer.stats = broken  # type: ignore[method-assign]
    threads = list(agent._threads)
    agent.stop(flush=True, timeout=1)
    assert threads and not any(t.is_alive() for t in threads)
    stops = [r for r in caplog.records if getattr(r, "event", None) == "stop"]
    assert len(stops) == 1 and "malformed" in stops[0].getMessage()
    assert agent.status()["connected"] is False


def test_a_disk_nearly_full_for_many_polls_is_a_line_a_minute_not_a_line_a_poll(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """While the disk stays full every poll is refused: a line for each (a second per
    asset) would write to a log that is likely on the same full disk. Every refusal is
    still counted, and ``last_error`` says why."""
    agent = make(tmp_path, sampling_interval_s=0.02)
    source = Steady()
    agent.add_source(source)
    agent.buffer.reserve_bytes = 1 << 62  # more than any disk: every put is refused
    caplog.set_level("WARNING", logger="edge.agent")
    agent.start()
    try:
        wait_for(lambda: source.polls >= 20, timeout=10)
    finally:
        agent.stop(flush=False, timeout=1)
    status = agent.status()
    assert status["refused_by_reason"] == {"storage_error": source.polls}
    assert "the disk is nearly full" in str(status["last_error"])
    lines = [r.getMessage() for r in caplog.records if "nearly full" in r.getMessage()]
    assert 1 <= len(lines) <= 2, lines
