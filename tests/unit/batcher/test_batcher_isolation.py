"""One window that cannot be written never stops the others, before or after a restart."""

from __future__ import annotations

import json
from pathlib import Path

from cloud.adapters.local import InMemoryObjectStore
from cloud.batcher import Batcher, BatcherConfig
from edge import wire
from edge.clock import ManualClock
from edge.errors import StorageError

T0 = 1652443800  # 2022-05-13T12:10:00Z, a window boundary for PT5M


def at(clock: ManualClock, t: float) -> None:
    clock.advance(t - clock.now())


def send(batcher: Batcher, asset: str, seq: int, t: float, value: float) -> None:
    message = wire.Telemetry("s1", asset, "dev", seq, (wire.Sample(int(t * 1000), {"v": value}),))
    batcher.accept(message.topic, wire.encode(message))


def test_a_poisoned_late_file_is_quarantined_and_other_windows_keep_flowing(
    tmp_path: Path,
) -> None:
    # GIVEN a window whose 299 late-file names are all taken, the last one corrupt on disk
    clock = ManualClock(T0 + 10)
    store = InMemoryObjectStore()
    spool = str(tmp_path / "spool.db")
    config = BatcherConfig(grace_s=0)
    batcher = Batcher(store, config, clock, spool)
    send(batcher, "pump", 0, T0 + 10, 1.0)
    at(clock, T0 + 300)
    assert batcher.flush_due() == ["input/pump_20220513121500.csv"]
    for seq in range(1, 300):
        send(batcher, "pump", seq, T0 + 10 + seq * 0.5, float(seq))
        batcher.flush_due()
    last_late = "input/pump_20220513121001.csv"
    store.put(last_late, b"Timestamp,a\n,v\n2022-05-13T12:10:11.000000,1,2\n")

    # WHEN another late reading for it and a reading of another asset arrive
    send(batcher, "pump", 300, T0 + 200, 300.0)
    send(batcher, "fan", 0, T0 + 310, 7.0)
    at(clock, T0 + 600)
    written = batcher.flush_due()

    # THEN the other asset's window is written, and the poisoned rows are quarantined whole
    assert written == ["input/fan_20220513122000.csv"]
    [key] = [k for k in store.list("quarantine/unwritable_window/")]
    record = json.loads(store.get(key))
    assert "ValueError" in record["error"]
    kept = json.loads(record["payload"])
    assert kept["asset"] == "pump" and kept["window_end"] == T0 + 300
    assert [c["samples"] for c in kept["chunks"]] == [[[(T0 + 200) * 1000, {"v": 300.0}]]]
    assert batcher.stats["quarantined_by_reason"] == {"unwritable_window": 1}
    assert batcher.stats["pending_windows"] == 0
    batcher.close()

    # AND after a restart the spool holds nothing that fails again
    restarted = Batcher(store, config, clock, spool)
    send(restarted, "fan", 1, T0 + 610, 8.0)
    at(clock, T0 + 900)
    assert restarted.flush_due() == ["input/fan_20220513122500.csv"]
    restarted.close()


class FlakyStore(InMemoryObjectStore):
    """Refuses puts of keys containing *broken* until told to recover."""

    def __init__(self, broken: str) -> None:
        super().__init__()
        self.broken: str | None = broken

    def put(self, key: str, body: bytes) -> None:
        if self.broken and self.broken in key:
            raise StorageError(f"{key}: disk unavailable")
        super().put(key, body)


def test_a_window_the_store_refuses_stays_pending_and_the_others_are_written() -> None:
    clock = ManualClock(T0 + 10)
    store = FlakyStore(broken="input/pump_")
    batcher = Batcher(store, BatcherConfig(grace_s=0), clock)
    send(batcher, "pump", 0, T0 + 10, 1.0)
    send(batcher, "fan", 0, T0 + 20, 2.0)
    at(clock, T0 + 300)

    # WHEN the store refuses the pump file
    assert batcher.flush_due() == ["input/fan_20220513121500.csv"]

    # THEN the pump window is kept for the next flush (not quarantined) and counted
    stats = batcher.stats
    assert stats["pending_windows"] == 1 and stats["flush_errors"] == 1
    assert stats["quarantined"] == 0
    store.broken = None
    assert batcher.flush_due() == ["input/pump_20220513121500.csv"]
    assert store.get("input/pump_20220513121500.csv").endswith(b",1\n")
