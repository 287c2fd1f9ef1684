"""The batcher writes exactly the files and rows the L4E scheduler expects."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cloud.adapters.local import FsObjectStore, InMemoryObjectStore
from cloud.batcher import Batcher, BatcherConfig
from cloud.l4e.naming import InputNaming
from edge import wire
from edge.clock import ManualClock
from edge.errors import ConfigError

T0 = 1652443800  # 2022-05-13T12:10:00Z, a window boundary for PT5M


def msg(
    seq: int, *samples: tuple[float, dict[str, float | None]], asset: str = "pump"
) -> wire.Telemetry:
    return wire.Telemetry(
        "s1", asset, "dev", seq, tuple(wire.Sample(int(t * 1000), v) for t, v in samples)
    )


def send(batcher: Batcher, message: wire.Telemetry) -> None:
    batcher.accept(message.topic, wire.encode(message))


def test_three_windows_with_duplicates_and_late_arrivals() -> None:
    # GIVEN readings spanning three windows, a redelivered message and two late readings
    clock = ManualClock(T0 + 60)
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(grace_s=30), clock)
    first = msg(0, (T0 + 60, {"flow": 3.5, "amps": 1}), (T0 + 300, {"flow": 3.0, "amps": 2}))
    send(batcher, first)
    send(batcher, msg(1, (T0 + 301, {"flow": 2.5, "amps": 3}), (T0 + 600, {"flow": 2.0})))
    send(batcher, first)  # redelivery
    send(batcher, msg(2, (T0 + 900, {"flow": 1.0, "amps": 4})))

    # WHEN the first window closes (end + grace) and is flushed
    clock.advance(300 + 30 - 60)
    assert batcher.flush_due() == ["input/pump_20220513121500.csv"]
    # AND a late reading for it arrives, plus one more for the next window
    send(batcher, msg(3, (T0 + 120, {"flow": 9.0, "amps": 9}), (T0 + 450, {"amps": 5})))
    clock.advance(600)
    written = batcher.flush_due()

    # THEN each window has one file, the late reading has its own file inside its window
    assert written == [
        "input/pump_20220513121459.csv",
        "input/pump_20220513122000.csv",
        "input/pump_20220513122500.csv",
    ]
    assert store.get("input/pump_20220513121500.csv") == (
        b"Timestamp,amps,flow\n2022-05-13T12:11:00.000000,1,3.5\n2022-05-13T12:15:00.000000,2,3\n"
    )
    assert store.get("input/pump_20220513121459.csv") == (
        b"Timestamp,amps,flow\n2022-05-13T12:12:00.000000,9,9\n"
    )
    assert store.get("input/pump_20220513122000.csv") == (
        b"Timestamp,amps,flow\n"
        b"2022-05-13T12:15:01.000000,3,2.5\n"
        b"2022-05-13T12:17:30.000000,5,\n"
        b"2022-05-13T12:20:00.000000,,2\n"
    )
    # the window ending 12:25 is not due yet (12:25:30 > now 12:26:00? no: due) -> written
    assert store.get("input/pump_20220513122500.csv") == (
        b"Timestamp,amps,flow\n2022-05-13T12:25:00.000000,4,1\n"
    )
    stats = batcher.stats
    assert stats["duplicates"] == 1
    assert stats["late"] == 1
    assert stats["accepted"] == 4
    assert stats["files_written"] == 4
    assert stats["quarantined"] == 0


def test_window_is_not_written_before_end_plus_grace() -> None:
    clock = ManualClock(T0 + 10)
    batcher = Batcher(InMemoryObjectStore(), BatcherConfig(grace_s=30), clock)
    send(batcher, msg(0, (T0 + 10, {"a": 1})))
    clock.advance(300 + 29 - 10)
    assert batcher.flush_due() == []
    clock.advance(1)
    assert batcher.flush_due() == ["input/pump_20220513121500.csv"]


def test_same_timestamp_from_two_messages_is_one_row_independent_of_arrival_order() -> None:
    outputs = []
    for order in ((0, 1), (1, 0)):
        clock = ManualClock(T0)
        store = InMemoryObjectStore()
        batcher = Batcher(store, BatcherConfig(), clock)
        messages = [msg(0, (T0 + 5, {"a": 1, "b": 1})), msg(1, (T0 + 5, {"b": 2, "c": None}))]
        for i in order:
            send(batcher, messages[i])
        batcher.flush_all()
        outputs.append(store.get("input/pump_20220513121500.csv"))
    assert outputs[0] == outputs[1] == b"Timestamp,a,b,c\n2022-05-13T12:10:05.000000,1,2,\n"


def test_naming_delimiter_format_and_offset_are_honoured() -> None:
    clock = ManualClock(T0)
    store = InMemoryObjectStore()
    naming = InputNaming(delimiter="-", timestamp_format="yyyy-MM-dd-HH-mm-ss", tz_offset="+05:30")
    batcher = Batcher(store, BatcherConfig(prefix="in/", naming=naming), clock)
    send(batcher, msg(0, (T0 + 1, {"a": 1})))
    assert batcher.flush_all() == ["in/pump-2022-05-13-17-45-00.csv"]
    # row timestamps stay UTC
    assert b"2022-05-13T12:10:01.000000" in store.get("in/pump-2022-05-13-17-45-00.csv")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "bad_json"),
        (b"{", "bad_json"),
        (b"[]", "bad_schema"),
        (b'{"v":2}', "unsupported_version"),
        (
            b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,'
            b'"samples":[{"ts":1652443801000,"values":{"a":NaN}}]}',
            "non_finite",
        ),
        (
            b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,'
            b'"samples":[{"ts":1652443801000,"values":{"a":"1"}}]}',
            "bad_value_type",
        ),
        (
            b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,'
            b'"samples":[{"ts":1000000000000,"values":{"a":1}}]}',
            "timestamp_out_of_range",
        ),
        (
            b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,'
            b'"samples":[{"ts":1' + b"0" * 400 + b',"values":{"a":1}}]}',
            "out_of_range",
        ),
        (
            b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,'
            b'"samples":[{"ts":1652443801000,"values":{"a":-1' + b"0" * 400 + b"}}]}",
            "out_of_range",
        ),
        (
            b'{"v":1,"site":"s1","asset":"other","sender":"d","seq":1,'
            b'"samples":[{"ts":1652443801000,"values":{"a":1}}]}',
            "topic_mismatch",
        ),
        (
            b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,'
            b'"samples":[{"ts":1652443801000,"values":{"a":1e999}}]}',
            "non_finite",
        ),
        (b"[" * 100_000, "bad_json"),
        (b" " * (wire.MAX_PAYLOAD_BYTES + 1), "oversize"),
    ],
)
def test_bad_messages_are_quarantined_with_reason_and_payload(payload: bytes, reason: str) -> None:
    clock = ManualClock(T0)
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(), clock)
    batcher.accept("dt/plantwatch/s1/pump/telemetry", payload, client_id="dev")
    (key,) = store.list("quarantine/")
    assert key.startswith(f"quarantine/{reason}/2022-05-13/")
    record = json.loads(store.get(key))
    assert record["reason"] == reason
    assert record["topic"] == "dt/plantwatch/s1/pump/telemetry"
    assert record["client_id"] == "dev"
    kept = record.get("payload", "").encode() if "payload" in record else None
    if kept is None:
        import base64

        kept = base64.b64decode(record["payload_base64"])
    assert record["payload_bytes"] == len(payload)
    assert record["payload_sha256"] == hashlib.sha256(payload).hexdigest()
    if len(payload) > wire.MAX_PAYLOAD_BYTES:
        assert record["payload_truncated"] is True
        assert kept == payload[:4096], "an oversized payload keeps only its prefix"
    else:
        assert "payload_truncated" not in record
        assert kept == payload
    assert batcher.stats["quarantined_by_reason"] == {reason: 1}
    assert list(store.list("input/")) == []


@pytest.mark.parametrize("keep", [0, 10, 4096])
def test_an_oversized_payload_keeps_a_configurable_prefix_its_size_and_hash(keep: int) -> None:
    payload = "é".encode() * (wire.MAX_PAYLOAD_BYTES // 2 + 1)
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(quarantine_keep_bytes=keep), ManualClock(T0))
    batcher.accept("dt/plantwatch/s1/pump/telemetry", payload)
    (key,) = store.list("quarantine/oversize/")
    body = store.get(key)
    assert len(body) < keep + 1000
    record = json.loads(body)
    assert record["payload_bytes"] == len(payload)
    assert record["payload_sha256"] == hashlib.sha256(payload).hexdigest()
    assert record["payload_truncated"] is True
    # the cut falls inside a two-byte character when keep is odd: that byte is dropped
    assert record["payload"] == "é" * (keep // 2)


def test_unknown_asset_is_quarantined_when_an_allow_list_is_set() -> None:
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(known_assets=frozenset({"fan"})), ManualClock(T0))
    send(batcher, msg(0, (T0 + 1, {"a": 1})))
    assert batcher.stats["quarantined_by_reason"] == {"unknown_asset": 1}


def test_spool_survives_a_restart_without_flush(tmp_path: Path) -> None:
    # GIVEN an accepted message that was never flushed (the process "died")
    clock = ManualClock(T0)
    store = FsObjectStore(tmp_path / "bucket")
    spool = str(tmp_path / "spool.db")
    first = Batcher(store, BatcherConfig(), clock, spool_path=spool)
    send(first, msg(0, (T0 + 1, {"a": 1})))
    del first
    # WHEN a new batcher opens the same spool
    second = Batcher(store, BatcherConfig(), clock, spool_path=spool)
    send(second, msg(0, (T0 + 1, {"a": 1})))  # a redelivery after the restart
    # THEN the row is flushed once and the redelivery is still a duplicate
    assert second.flush_all() == ["input/pump_20220513121500.csv"]
    assert store.get("input/pump_20220513121500.csv").count(b"\n") == 2
    assert second.stats["duplicates"] == 1
    # AND after another restart a reading for that window goes to a late file
    third = Batcher(store, BatcherConfig(), clock, spool_path=spool)
    send(third, msg(1, (T0 + 2, {"a": 2})))
    assert third.flush_all() == ["input/pump_20220513121459.csv"]


def test_envelope_from_the_project_rule_is_unwrapped() -> None:
    import base64

    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(), ManualClock(T0))
    m = msg(0, (T0 + 1, {"a": 1}))
    envelope = {"payload": base64.b64encode(wire.encode(m)).decode(), "topic": m.topic}
    batcher.accept_envelope(envelope)
    batcher.accept_envelope({"payload": "%%%", "topic": m.topic})
    assert batcher.stats["accepted"] == 1
    assert batcher.stats["quarantined_by_reason"] == {"bad_envelope": 1}


def test_config_rejects_quarantine_under_input_prefix() -> None:
    with pytest.raises(ConfigError, match="quarantine_prefix"):
        BatcherConfig(prefix="input/", quarantine_prefix="input/q/")
    with pytest.raises(ConfigError, match="upload_frequency_s"):
        BatcherConfig(upload_frequency_s=60)


def test_two_batchers_sharing_a_spool_write_each_reading_once(tmp_path: Path) -> None:
    # GIVEN two batchers (as two runner processes of one $share group) on one spool file
    import threading

    clock = ManualClock(T0)
    store = FsObjectStore(tmp_path / "bucket")
    spool = str(tmp_path / "spool.db")
    a = Batcher(store, BatcherConfig(), clock, spool_path=spool, shared_spool=True)
    b = Batcher(store, BatcherConfig(), clock, spool_path=spool, shared_spool=True)
    messages = [msg(i, (T0 + 1 + i, {"x": i}), (T0 + 300 + i, {"x": -i})) for i in range(200)]

    # WHEN they split the messages, see some redeliveries, and flush concurrently
    def feed(batcher: Batcher, part: list[wire.Telemetry]) -> None:
        for m in part:
            send(batcher, m)
            if m.seq % 20 == 0:
                batcher.flush_all()

    threads = [
        threading.Thread(target=feed, args=(a, messages[0::2] + messages[1:40:2])),
        threading.Thread(target=feed, args=(b, messages[1::2] + messages[0:40:2])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a.flush_all()
    b.flush_all()

    # THEN every reading is in exactly one file, and the duplicates were recognised
    rows = [
        line.split(",")[0]
        for key in store.list("input/")
        for line in store.get(key).decode().splitlines()[1:]
    ]
    assert len(rows) == 400 and len(set(rows)) == 400
    assert a.stats["duplicates"] + b.stats["duplicates"] == 40


def test_a_spool_file_made_with_sqlite_default_pages_keeps_working(tmp_path: Path) -> None:
    # GIVEN a spool file an earlier version made (SQLite's default 4 kB pages) holding an
    # accepted, unflushed message, and a new spool file
    import sqlite3

    from cloud.batcher.spool import PAGE_SIZE

    clock = ManualClock(T0)
    store = FsObjectStore(tmp_path / "bucket")
    old_path = str(tmp_path / "old.db")
    db = sqlite3.connect(old_path)
    db.execute("PRAGMA page_size=4096")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    old = Batcher(store, BatcherConfig(), clock, spool_path=old_path)
    send(old, msg(0, (T0 + 1, {"a": 1})))
    del old
    Batcher(InMemoryObjectStore(), BatcherConfig(), clock, spool_path=str(tmp_path / "new.db"))

    # WHEN a batcher opens the old file again
    again = Batcher(store, BatcherConfig(), clock, spool_path=old_path)
    send(again, msg(0, (T0 + 1, {"a": 1})))  # a redelivery

    # THEN the old file keeps its pages, the new one has the larger page, and nothing
    # accepted is lost or doubled
    def page_size(path: Path) -> int:
        return int(sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0])

    assert page_size(tmp_path / "old.db") == 4096
    assert page_size(tmp_path / "new.db") == PAGE_SIZE != 4096
    assert again.stats["duplicates"] == 1
    assert again.flush_all() == ["input/pump_20220513121500.csv"]
    assert store.get("input/pump_20220513121500.csv") == (
        b"Timestamp,a\n2022-05-13T12:10:01.000000,1\n"
    )


@pytest.mark.parametrize("decoded", ["stdlib", "msgspec"])
def test_a_repeated_id_with_other_content_gives_the_same_file_in_any_order(
    tmp_path: Path, decoded: str
) -> None:
    """A sender that numbers two messages alike (a device whose queue was reset starts its
    seq again) sends other readings under one id: both are kept (an id conflict), and on a
    sensor they both give at one timestamp the file must not depend on which came first."""
    from cloud import wire_decoder

    extra = {"decode": wire_decoder.decode_rows, "dumps": wire_decoder.dumps}
    one = msg(4, (T0 + 60, {"flow": 1.0, "amps": 2}), (T0 + 61, {"flow": 5.0}))
    other = msg(4, (T0 + 60, {"flow": 7.0}), (T0 + 62, {"amps": None, "flow": 3.0}))
    files = []
    for n, order in enumerate(([one, other], [other, one])):
        store = InMemoryObjectStore()
        batcher = Batcher(
            store,
            BatcherConfig(grace_s=0),
            ManualClock(T0),
            str(tmp_path / f"spool-{n}.db"),
            **(extra if decoded == "msgspec" else {}),
        )
        for m in order:
            send(batcher, m)
        assert batcher.stats["id_conflicts"] == 1
        assert batcher.flush_all() == ["input/pump_20220513121500.csv"]
        files.append(store.get("input/pump_20220513121500.csv"))
        batcher.close()
    assert files[0] == files[1]
    assert files[0].count(b"\n") == 4  # the header, then 12:11:00, 12:11:01, 12:11:02


class _Flaky(InMemoryObjectStore):
    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def put(self, key: str, body: bytes) -> None:
        if self.down and key.startswith("input/"):
            from edge.errors import StorageError

            raise StorageError(f"{key}: store unavailable")
        super().put(key, body)


def test_a_late_window_the_store_refused_for_long_never_overwrites_its_first_file() -> None:
    # GIVEN a window written long ago, and a reading for it that arrives just within the
    # clock-skew bound while the store is down
    clock = ManualClock(T0)
    store = _Flaky()
    config = BatcherConfig(grace_s=0, max_skew_s=3600)
    batcher = Batcher(store, config, clock)
    send(batcher, msg(0, (T0 + 60, {"flow": 1.0})))
    clock.set(T0 + 300)
    assert batcher.flush_due() == ["input/pump_20220513121500.csv"]
    first = store.get("input/pump_20220513121500.csv")
    clock.set(T0 + 60 + 3600 - 1)
    store.down = True
    send(batcher, msg(1, (T0 + 120, {"flow": 2.0})))
    assert batcher.stats["late"] == 1

    # WHEN the store stays down past the bound, while fresh readings come and flushes go on
    # (and prune what is old)
    for seq in range(2, 6):
        clock.advance(600)
        send(batcher, msg(seq, (clock.now(), {"flow": 3.0}), asset="fan"))
        assert batcher.flush_due() == []
    store.down = False
    written = batcher.flush_due()

    # THEN the late reading goes to a late file of its window; the first file is untouched
    assert [key for key in written if key.startswith("input/pump")] == [
        "input/pump_20220513121459.csv"
    ]
    assert store.get("input/pump_20220513121500.csv") == first


def test_a_clock_that_jumps_ahead_and_back_forgets_no_written_window() -> None:
    # GIVEN a window written, and a redelivery the batcher knows for one
    clock = ManualClock(T0)
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(grace_s=0, max_skew_s=3600), clock)
    first = msg(0, (T0 + 60, {"flow": 1.0}))
    send(batcher, first)
    clock.set(T0 + 300)
    assert batcher.flush_due() == ["input/pump_20220513121500.csv"]
    written = store.get("input/pump_20220513121500.csv")

    # WHEN the host clock jumps a year ahead for a while (a bad NTP step), then comes back
    clock.set(T0 + 365 * 86400)
    send(batcher, msg(1, (T0 + 90, {"flow": 9.0})))  # out of range then: quarantined
    assert batcher.flush_due() == []
    clock.set(T0 + 400)
    send(batcher, first)  # a redelivery
    send(batcher, msg(2, (T0 + 120, {"flow": 2.0})))  # a late reading for the window
    out = batcher.flush_due()

    # THEN the redelivery is still a duplicate, and the late reading goes to a late file
    assert batcher.stats["duplicates"] == 1
    assert batcher.stats["quarantined_by_reason"] == {"timestamp_out_of_range": 1}
    assert out == ["input/pump_20220513121459.csv"]
    assert store.get("input/pump_20220513121500.csv") == written
