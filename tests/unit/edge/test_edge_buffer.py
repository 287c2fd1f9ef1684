"""SqliteBuffer: durable FIFO, stable message ids across reopen, limits and policies."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.buffer import BufferFullError, SqliteBuffer
from edge.clock import ManualClock
from edge.errors import ConfigError, StorageError, WireFormatError
from edge.wire import MAX_PAYLOAD_BYTES, Sample, decode, encode


def samples(n: int, start: int = 0, width: int = 3) -> list[Sample]:
    return [
        Sample(1_700_000_000_000 + i, {f"s{k}": float(i + k) for k in range(width)})
        for i in range(start, start + n)
    ]


def test_put_form_ack_round_trip(tmp_path: Path) -> None:
    buf = SqliteBuffer(tmp_path / "q.db", ManualClock())
    buf.put("a1", samples(5))
    message = buf.form("s1", "gw", "a1", max_samples=3)
    assert message is not None and message.seq == 0 and len(message.samples) == 3
    assert message.samples[0] == samples(1)[0]
    rest = buf.form("s1", "gw", "a1", max_samples=10)
    assert rest is not None and rest.seq == 1 and len(rest.samples) == 2
    assert buf.form("s1", "gw", "a1", max_samples=10) is None
    assert buf.ack([0]) == 3
    stats = buf.stats()
    assert (stats.depth, stats.sent, stats.formed) == (2, 3, 1)


def test_formed_message_survives_reopen_with_same_seq_and_readings(tmp_path: Path) -> None:
    """A replay after a crash re-sends the same readings under the same msg_id."""
    clock = ManualClock()
    buf = SqliteBuffer(tmp_path / "q.db", clock)
    buf.put("a1", samples(4))
    first = buf.form("s1", "gw", "a1", max_samples=4)
    buf._db.close()  # no orderly shutdown, as after SIGKILL
    again = SqliteBuffer(tmp_path / "q.db", clock)
    assert again.formed() == [(0, "a1")]
    replay = again.message("s1", "gw", 0)
    assert replay == first
    again.put("a1", samples(1, start=10))
    nxt = again.form("s1", "gw", "a1", max_samples=4)
    assert nxt is not None and nxt.seq == 1  # seq numbering continues, never reused


def test_invalid_sample_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    buf = SqliteBuffer(tmp_path / "q.db", ManualClock())
    with pytest.raises(WireFormatError):
        buf.put("a1", [*samples(2), Sample(5, {"x": float("nan")})])
    assert buf.stats().depth == 0


def test_drop_oldest_keeps_the_newest_and_counts_drops(tmp_path: Path) -> None:
    one = len('{"s0":0.0,"s1":1.0,"s2":2.0}')
    buf = SqliteBuffer(tmp_path / "q.db", ManualClock(), max_bytes=one * 10)
    for i in range(15):
        buf.put("a1", samples(1, start=i))
    stats = buf.stats()
    assert stats.depth <= 10 and stats.dropped == 15 - stats.depth
    message = buf.form("s1", "gw", "a1", max_samples=100)
    assert message is not None
    assert message.samples[-1].ts_ms == samples(1, start=14)[0].ts_ms
    assert message.samples[0].ts_ms == samples(1, start=15 - stats.depth)[0].ts_ms


def test_drop_oldest_drops_formed_messages_whole(tmp_path: Path) -> None:
    one = len('{"s0":0.0,"s1":1.0,"s2":2.0}')
    buf = SqliteBuffer(tmp_path / "q.db", ManualClock(), max_bytes=one * 4)
    buf.put("a1", samples(3))
    buf.form("s1", "gw", "a1", max_samples=3)
    buf.put("a1", samples(2, start=3))
    assert buf.formed() == []
    assert buf.stats().dropped == 3 and buf.stats().depth == 2


def test_refuse_policy_raises_and_keeps_the_queue(tmp_path: Path) -> None:
    one = len('{"s0":0.0,"s1":1.0,"s2":2.0}')
    buf = SqliteBuffer(tmp_path / "q.db", ManualClock(), max_bytes=one * 2, full_policy="refuse")
    buf.put("a1", samples(2))
    with pytest.raises(BufferFullError):
        buf.put("a1", samples(1, start=2))
    assert buf.stats().depth == 2 and buf.stats().dropped == 0


def test_age_limit_drops_expired_readings(tmp_path: Path) -> None:
    clock = ManualClock()
    buf = SqliteBuffer(tmp_path / "q.db", clock, max_age_s=60)
    buf.put("a1", samples(3))
    clock.advance(61)
    buf.put("a1", samples(1, start=3))
    assert buf.stats().depth == 1 and buf.stats().dropped == 3


def test_a_wall_clock_stepped_forward_does_not_age_queued_readings(tmp_path: Path) -> None:
    """An RTC-less board syncing NTP jumps a day ahead: its minute-old readings stay."""
    clock = ManualClock()
    buf = SqliteBuffer(tmp_path / "q.db", clock, max_age_s=60)
    buf.put("a1", samples(3))
    clock.step(86_400)
    clock.advance(30)
    buf.put("a1", samples(1, start=3))
    assert buf.stats().depth == 4 and buf.stats().dropped == 0
    assert buf.unformed()["a1"][1] == pytest.approx(clock.now() - 30)
    clock.advance(31)
    buf.put("a1", samples(1, start=4))
    assert buf.stats().depth == 2 and buf.stats().dropped == 3


def test_a_wall_clock_stepped_back_still_ages_queued_readings(tmp_path: Path) -> None:
    clock = ManualClock()
    buf = SqliteBuffer(tmp_path / "q.db", clock, max_age_s=60)
    buf.put("a1", samples(3))
    clock.step(-3_600)
    clock.advance(61)
    buf.put("a1", samples(1, start=3))
    assert buf.stats().depth == 1 and buf.stats().dropped == 3


def test_readings_from_an_earlier_run_keep_their_enqueue_times(tmp_path: Path) -> None:
    """Only this run's readings are moved by a step: nothing says which clock stamped the
    earlier ones, and a device that was off for a day really holds day-old readings."""
    clock = ManualClock()
    SqliteBuffer(tmp_path / "q.db", clock, max_age_s=60).put("a1", samples(3))
    buf = SqliteBuffer(tmp_path / "q.db", clock, max_age_s=60)
    buf.put("a1", samples(2, start=3))
    clock.step(86_400)
    buf.put("a1", samples(1, start=5))
    assert buf.stats().depth == 3 and buf.stats().dropped == 3


def test_unknown_policy_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="full_policy"):
        SqliteBuffer(tmp_path / "q.db", ManualClock(), full_policy="panic")


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(width=st.integers(1, 60), count=st.integers(1, 3000))
def test_formed_messages_fit_the_payload_limit(tmp_path: Path, width: int, count: int) -> None:
    """Backlog messages are as large as 128 KB allows, never larger."""
    path = tmp_path / f"q-{width}-{count}.db"
    buf = SqliteBuffer(path, ManualClock())
    buf.put("a1", samples(count, width=width))
    total = 0
    sizes = []
    while (message := buf.form("site-1", "gateway-01", "a1", max_samples=100_000)) is not None:
        body = encode(message)
        assert decode(body) == message
        sizes.append(len(body))
        total += len(message.samples)
    assert total == count
    assert all(size <= MAX_PAYLOAD_BYTES for size in sizes)
    assert all(size > MAX_PAYLOAD_BYTES * 0.9 for size in sizes[:-1])
    buf.close()
    path.unlink()


@pytest.mark.parametrize(("mode", "level"), [("FULL", 2), ("NORMAL", 1)])
def test_wal_and_the_chosen_fsync_level_are_in_force(tmp_path: Path, mode: str, level: int) -> None:
    buf = SqliteBuffer(tmp_path / "q.db", ManualClock(), synchronous=mode)
    assert buf._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert buf._db.execute("PRAGMA synchronous").fetchone()[0] == level


def test_an_ack_skips_its_own_fsync_and_the_queue_keeps_full_durability(tmp_path: Path) -> None:
    # GIVEN a queue with every commit fsynced (the default)
    path = tmp_path / "q.db"
    buf = SqliteBuffer(path, ManualClock())
    buf.put("a1", samples(4))
    message = buf.form("s1", "gw", "a1", max_samples=2)
    assert message is not None
    traced: list[str] = []
    buf._db.set_trace_callback(traced.append)
    # WHEN a message is acknowledged
    assert buf.ack([message.seq]) == 2
    buf._db.set_trace_callback(None)
    # THEN that commit ran without a flush, and readings and messages are fsynced again
    assert traced[0] == "PRAGMA synchronous=NORMAL" and traced[-1] == "PRAGMA synchronous=FULL"
    assert buf._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    buf.close()
    # and the acknowledgement is kept across a reopen
    again = SqliteBuffer(path, ManualClock())
    assert again.stats().depth == 2 and again.formed() == []


def test_drops_are_logged_once_per_interval_with_their_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A count in ``stats`` alone is invisible in a device's log; a line per put would flood it."""
    one = len('{"s0":0.0,"s1":1.0,"s2":2.0}')
    clock = ManualClock()
    buf = SqliteBuffer(tmp_path / "q.db", clock, max_bytes=one * 2)
    buf.put("a1", samples(2))
    with caplog.at_level("WARNING", logger="edge.buffer"):
        for i in range(2, 7):
            buf.put("a1", samples(1, start=i))
            clock.advance(1)
        clock.advance(60)
        buf.put("a1", samples(1, start=7))
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(lines) == 2
    assert "dropped 1 oldest reading" in lines[0] and "max_bytes" in lines[0]
    assert "dropped 5 oldest readings" in lines[1] and "6 in all" in lines[1]


def test_a_put_larger_than_the_queue_keeps_its_newest_readings_within_the_bound(
    tmp_path: Path,
) -> None:
    one = len('{"s0":0.0,"s1":1.0,"s2":2.0}')
    buf = SqliteBuffer(tmp_path / "q.db", ManualClock(), max_bytes=one * 3)
    buf.put("a1", samples(2))
    assert buf.put("a1", samples(5, start=2)) == 4
    stats = buf.stats()
    assert stats.bytes <= one * 3 and stats.depth == 3 and stats.dropped == 4
    message = buf.form("s1", "gw", "a1", max_samples=10)
    assert message is not None
    assert [s.ts_ms for s in message.samples] == [s.ts_ms for s in samples(3, start=4)]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sizes=st.lists(st.integers(1, 12), min_size=1, max_size=12), cap=st.integers(1, 10))
def test_drop_oldest_holds_the_bound_and_accounts_for_every_reading(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], cap: int
) -> None:
    one = len('{"s0":0.0,"s1":1.0,"s2":2.0}')
    buf = SqliteBuffer(tmp_path_factory.mktemp("q") / "q.db", ManualClock(), max_bytes=one * cap)
    start = dropped = 0
    for n in sizes:
        dropped += buf.put("a1", samples(n, start=start))
        start += n
        stats = buf.stats()
        assert stats.bytes <= one * cap or stats.depth == 1  # a lone reading is kept
        assert stats.depth + stats.dropped == start and stats.dropped == dropped


def test_a_full_disk_refuses_the_put_keeps_the_totals_and_recovers_after_an_ack(
    tmp_path: Path,
) -> None:
    """SQLITE_FULL for real: ``max_page_count`` makes the database file unable to grow, as a
    full disk does (the buffer's own ``max_bytes`` is far away)."""
    buf = SqliteBuffer(tmp_path / "q.db", ManualClock())
    buf._db.execute("PRAGMA max_page_count=12")
    accepted = 0
    with pytest.raises(StorageError, match="disk is full"):
        for i in range(100_000):
            buf.put("a1", samples(1, start=i))
            accepted += 1
    stats = buf.stats()
    stored = buf._db.execute("SELECT COUNT(*), SUM(size) FROM readings").fetchone()
    assert accepted > 0 and (stats.depth, stats.bytes) == tuple(stored)
    message = buf.form("s1", "gw", "a1", max_samples=100_000)
    assert message is not None and len(message.samples) == accepted
    assert buf.ack([message.seq]) == accepted
    buf.put("a1", samples(1, start=accepted))
    assert buf.stats().depth == 1


def test_age_limit_drops_a_formed_message_whole_so_its_id_never_changes_content(
    tmp_path: Path,
) -> None:
    """A message sent but not acknowledged may already be in the cloud: sent again with
    fewer readings under the same msg_id, the batcher counts an id conflict."""
    clock = ManualClock()
    buf = SqliteBuffer(tmp_path / "q.db", clock, max_age_s=60)
    buf.put("a1", samples(3))
    clock.advance(30)
    buf.put("a1", samples(2, start=3))
    message = buf.form("s1", "gw", "a1", max_samples=10)
    assert message is not None and len(message.samples) == 5
    clock.advance(40)  # the first three are past max_age_s, the last two are not
    buf.put("a1", samples(1, start=5))
    again = buf.message("s1", "gw", message.seq)
    assert again is None or again == message
    assert buf.formed() == [] and buf.stats().dropped == 5 and buf.stats().depth == 1


def _corrupt_pages(tmp_path: Path) -> list[Path]:
    """Copies of a checkpointed queue, each with one page after the first overwritten."""
    import random
    import shutil

    base = tmp_path / "base.db"
    buf = SqliteBuffer(base, ManualClock())
    for i in range(0, 3000, 100):
        buf.put("a1", samples(100, start=i))
    buf.form("s1", "gw", "a1", max_samples=20)
    buf._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    buf.close()
    noise = random.Random(3)
    copies = []
    for page in range(1, base.stat().st_size // 4096):
        copy = tmp_path / f"page{page}.db"
        shutil.copy(base, copy)
        with copy.open("r+b") as fh:
            fh.seek(page * 4096 + 8)
            fh.write(bytes(noise.randrange(256) for _ in range(200)))
        copies.append(copy)
    return copies


def test_a_queue_corrupt_anywhere_is_moved_aside_at_open_not_found_out_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged index page used to open fine and then fail every put, form or ack while
    the agent looked healthy: the queue is checked (quick_check) when it opens, and a
    damaged one is kept, byte for byte, beside a new empty queue the agent goes on with."""
    moved = 0
    for copy in _corrupt_pages(tmp_path):
        damaged = copy.read_bytes()
        caplog.clear()
        buf = SqliteBuffer(copy, ManualClock())
        try:
            if buf.damaged_file is not None:
                moved += 1
                assert buf.damaged_file.read_bytes() == damaged
                assert buf.damaged_file.name.startswith(f"{copy.name}.damaged-")
                assert buf.stats().depth == 0
                [line] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
                assert str(buf.damaged_file) in line and ".recover" in line
            buf.put("a1", samples(50, start=5000))  # whole or new: it works all the way
            while buf.form("s1", "gw", "a1", max_samples=100) is not None:
                pass
            buf.ack([seq for seq, _asset in buf.formed()])
            assert buf._db.execute("PRAGMA quick_check").fetchone()[0] == "ok", copy.name
        finally:
            buf.close()
    assert moved > 0


def test_a_file_that_is_no_database_is_moved_aside_and_a_folder_is_still_refused(
    tmp_path: Path,
) -> None:
    junk = tmp_path / "queue.db"
    junk.write_bytes(b"not a database at all" * 100)
    buf = SqliteBuffer(junk, ManualClock())
    try:
        assert buf.damaged_file is not None and buf.damaged_file.read_bytes().startswith(b"not a")
        assert buf.put("a1", samples(3)) == 0 and buf.stats().depth == 3
    finally:
        buf.close()
    folder = tmp_path / "folder.db"
    folder.mkdir()
    with pytest.raises(StorageError, match="cannot open"):
        SqliteBuffer(folder, ManualClock())


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sensors=st.integers(600, 2500),
    name_len=st.integers(150, 200),
    long_names=st.booleans(),
)
def test_a_reading_too_large_for_one_message_is_sent_in_parts_that_each_fit(
    tmp_path_factory: pytest.TempPathFactory, sensors: int, name_len: int, long_names: bool
) -> None:
    """GIVEN one reading whose values alone pass IoT Core's 128 KB payload limit
    WHEN it is queued and its messages formed
    THEN every message encodes within the limit (none the broker would refuse, none
    that stalls the sender), and the parts hold every value under the reading's time:
    the batcher merges readings that share a timestamp into one row."""
    site, asset, sender = ("s" * 128, "a" * 128, "g" * 128) if long_names else ("s1", "a1", "gw")
    values = {f"{i:05d}".ljust(name_len, "x"): i * 123456.789 for i in range(sensors)}
    reading = Sample(1_700_000_000_000, values)
    buf = SqliteBuffer(tmp_path_factory.mktemp("q") / "q.db", ManualClock())
    buf.put(asset, [reading, *samples(3, start=1)])
    merged: dict[str, float | None] = {}
    stamps = []
    while (message := buf.form(site, sender, asset, max_samples=100_000)) is not None:
        body = encode(message)  # raises past MAX_PAYLOAD_BYTES
        assert len(body) <= MAX_PAYLOAD_BYTES
        for sample in decode(body).samples:
            stamps.append(sample.ts_ms)
            if sample.ts_ms == reading.ts_ms:
                assert not set(sample.values) & set(merged)  # each value in one part only
                merged.update(sample.values)
    assert merged == values
    assert stamps == sorted(stamps) and len(set(stamps)) == 4  # the others follow, in order
