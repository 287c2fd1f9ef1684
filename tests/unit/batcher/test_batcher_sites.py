"""Sites are tenants: the same asset name at two sites makes two files, never one."""

from __future__ import annotations

import pytest

from cloud.adapters.local import InMemoryObjectStore
from cloud.batcher import Batcher, BatcherConfig
from cloud.l4e.sites import SiteLayout
from edge import wire
from edge.clock import ManualClock
from edge.errors import ConfigError

T0 = 1652443800  # 2022-05-13T12:10:00Z, a window boundary for PT5M


def send(batcher: Batcher, site: str, seq: int, t: float, flow: float) -> None:
    message = wire.Telemetry(
        site, "pump", "dev", seq, (wire.Sample(int(t * 1000), {"flow": flow}),)
    )
    batcher.accept(message.topic, wire.encode(message))


def test_default_site_keeps_flat_names_and_another_site_gets_its_own_folder() -> None:
    # GIVEN pump readings at the same instants from the default site s1 and from site s2
    clock = ManualClock(T0 + 10)
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(grace_s=0), clock)
    send(batcher, "s1", 0, T0 + 60, 1.0)
    send(batcher, "s2", 0, T0 + 60, 2.0)
    clock.advance(300)

    # WHEN the window is flushed, and a late reading of each site follows
    assert batcher.flush_due() == [
        "input/pump_20220513121500.csv",
        "input/s2/pump_20220513121500.csv",
    ]
    send(batcher, "s2", 1, T0 + 120, 3.0)
    send(batcher, "s1", 1, T0 + 120, 4.0)
    flushed = batcher.flush_due()

    # THEN each site's rows stay in its own files: the default site's names are unchanged
    assert store.get("input/pump_20220513121500.csv") == (
        b"Timestamp,flow\n2022-05-13T12:11:00.000000,1\n"
    )
    assert store.get("input/s2/pump_20220513121500.csv") == (
        b"Timestamp,flow\n2022-05-13T12:11:00.000000,2\n"
    )
    assert flushed == ["input/pump_20220513121459.csv", "input/s2/pump_20220513121459.csv"]
    assert store.get("input/s2/pump_20220513121459.csv").endswith(b"12:12:00.000000,3\n")


def test_without_a_default_site_every_site_has_a_folder() -> None:
    clock = ManualClock(T0 + 10)
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(grace_s=0, sites=SiteLayout(None)), clock)
    send(batcher, "s1", 0, T0 + 60, 1.0)
    clock.advance(300)
    assert batcher.flush_due() == ["input/s1/pump_20220513121500.csv"]


def test_site_layout_keys_round_trip_and_bad_default_is_refused() -> None:
    layout = SiteLayout("plant1")
    assert layout.key("plant1", "pump") == "pump"
    assert layout.key("plant2", "pump") == "plant2:pump"
    assert layout.split("plant2:pump") == ("plant2", "pump")
    assert layout.split("pump") == ("plant1", "pump")
    assert layout.prefix("output/", "plant2") == "output/plant2/"
    with pytest.raises(ConfigError, match="default site"):
        SiteLayout("s1\n")
