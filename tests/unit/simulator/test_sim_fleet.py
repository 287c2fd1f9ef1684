"""Fleet stepping: the sample grid, determinism, commands and ground truth so far."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from edge.errors import ConfigError
from edge.wire import Telemetry, decode, encode
from simulator.fleet import AssetSpec, FleetSimulator, sensors
from simulator.scenario import demo_scenario, parse_scenario

MONDAY_8 = datetime(2026, 1, 12, 8, tzinfo=UTC).timestamp()
PUMPS = [AssetSpec(f"pump-0{i}", "pump", i) for i in (1, 2, 3)]


def _fleet(scenario=None, assets=PUMPS, rate=10.0, seed=0) -> FleetSimulator:
    return FleetSimulator(assets, scenario, start=MONDAY_8, rate_s=rate, seed=seed)


def test_step_returns_every_sample_in_the_half_open_interval_once() -> None:
    fleet = _fleet()
    first = fleet.step(MONDAY_8 + 60)
    assert set(first) == {"pump-01", "pump-02", "pump-03"}
    ts = [s.ts_ms for s in first["pump-01"]]
    assert ts == [round((MONDAY_8 + k * 10) * 1000) for k in range(1, 7)]
    assert fleet.step(MONDAY_8 + 65) == {}
    nxt = fleet.step(MONDAY_8 + 70)
    assert [s.ts_ms for s in nxt["pump-02"]] == [round((MONDAY_8 + 70) * 1000)]
    assert fleet.now == MONDAY_8 + 70


def test_samples_carry_every_sensor_and_survive_the_wire() -> None:
    fleet = _fleet(assets=[AssetSpec("p", "pump", 1), AssetSpec("f", "fan", 2)])
    out = fleet.step(MONDAY_8 + 3600)
    assert tuple(out["p"][0].values) == sensors("pump") == fleet.sensors("pump")
    assert tuple(out["f"][0].values) == sensors("fan")
    message = Telemetry("s1", "p", "sim", 0, tuple(out["p"][:20]))
    assert decode(encode(message)) == message


def test_same_seed_same_samples_whatever_the_step_sizes() -> None:
    a, b = _fleet(demo_scenario()), _fleet(demo_scenario())
    one = a.step(MONDAY_8 + 7200)
    many: dict[str, list] = {n: [] for n in one}
    until = MONDAY_8
    for dt in (1, 9, 10, 600, 35, 5, 3000, 3540):
        until += dt
        for name, samples in b.step(until).items():
            many[name].extend(samples)
    for name in one:
        assert [s.ts_ms for s in one[name]] == [s.ts_ms for s in many[name]]
        x = np.array([[np.nan if v is None else v for v in s.values.values()] for s in one[name]])
        y = np.array([[np.nan if v is None else v for v in s.values.values()] for s in many[name]])
        # lags are evaluated block-wise: the same up to one unit of the last digit
        assert np.allclose(x, y, atol=0.0011, equal_nan=True)
        assert np.mean(x == y) > 0.99


def test_same_seed_identical_and_other_seed_different() -> None:
    x = _fleet(seed=1).step(MONDAY_8 + 600)
    y = _fleet(seed=1).step(MONDAY_8 + 600)
    z = _fleet(seed=2).step(MONDAY_8 + 600)
    assert x == y
    assert x != z


def test_an_asset_does_not_depend_on_its_fleet_mates() -> None:
    alone = _fleet(assets=[PUMPS[1]]).step(MONDAY_8 + 600)["pump-02"]
    together = _fleet().step(MONDAY_8 + 600)["pump-02"]
    assert alone == together


def _mean(samples, name: str) -> float:
    values = [s.values[name] for s in samples]
    return float(np.nanmean([np.nan if v is None else v for v in values]))


def test_safe_mode_slows_the_pump_and_relieves_the_demo_fault() -> None:
    """The demo story: overheating shows, `safe` cuts the losses, temperature falls back."""
    sc = demo_scenario()
    fleet = _fleet(sc)
    onset = MONDAY_8 + 0.4 * sc.duration_s
    fleet.step(onset)
    normal = fleet.step(onset + 20 * 60)
    hot = normal["pump-02"][-30:]
    peer = normal["pump-01"][-30:]
    assert _mean(hot, "bearing_temp_c") > _mean(peer, "bearing_temp_c") + 8
    fleet.set_mode("pump-02", "safe")
    assert fleet.mode("pump-02") == "safe"
    after = fleet.step(onset + 80 * 60)["pump-02"]
    late = after[-30:]
    assert _mean(late, "speed_rpm") < 0.75 * _mean(hot, "speed_rpm")
    assert _mean(late, "vibration_x_mm_s") < 0.7 * _mean(hot, "vibration_x_mm_s")
    assert _mean(late, "bearing_temp_c") < _mean(hot, "bearing_temp_c") - 15
    # the other pumps keep running as scheduled
    assert fleet.mode("pump-01") == "normal"


def test_a_scenario_load_holds_the_level_whatever_the_hour() -> None:
    sunday_night = datetime(2026, 1, 11, 23, tzinfo=UTC).timestamp()
    held = FleetSimulator(PUMPS, demo_scenario(), start=sunday_night, rate_s=10.0)
    free = FleetSimulator(PUMPS, None, start=sunday_night, rate_s=10.0)
    fast = _mean(held.step(sunday_night + 3600)["pump-01"], "speed_rpm")
    slow = _mean(free.step(sunday_night + 3600)["pump-01"], "speed_rpm")
    assert fast > 2900 and slow < 2100


def test_stop_and_normal_commands() -> None:
    fleet = _fleet()
    fleet.step(MONDAY_8 + 600)
    fleet.set_mode("pump-03", "stop")
    stopped = fleet.step(MONDAY_8 + 1200)["pump-03"]
    assert _mean(stopped[-20:], "speed_rpm") == 0
    assert _mean(stopped[-20:], "flow_m3h") == 0
    fleet.set_mode("pump-03", "normal")
    again = fleet.step(MONDAY_8 + 2400)["pump-03"]
    assert _mean(again[-20:], "speed_rpm") > 2500


def test_commands_reject_unknown_modes_and_assets() -> None:
    fleet = _fleet()
    with pytest.raises(ValueError, match="mode 'turbo'"):
        fleet.set_mode("pump-01", "turbo")
    with pytest.raises(ValueError, match="unknown asset 'pump-09'"):
        fleet.set_mode("pump-09", "safe")


def test_labels_so_far_match_the_injected_interval() -> None:
    sc = parse_scenario(
        '[[faults]]\nasset = "pump-02"\ntype = "leak"\nstart = "10m"\nduration = "20m"\n'
        'notes = "gland"\n',
        "s.toml",
    )
    fleet = _fleet(sc)
    fleet.step(MONDAY_8 + 300)
    assert fleet.labels() == []
    fleet.step(MONDAY_8 + 900)
    (label,) = fleet.labels()
    assert (label.start, label.end) == (MONDAY_8 + 600, MONDAY_8 + 900)
    fleet.step(MONDAY_8 + 3600)
    (label,) = fleet.labels()
    assert (label.start, label.end, label.fault_code, label.equipment, label.notes) == (
        MONDAY_8 + 600, MONDAY_8 + 1800, "LEAK", "pump-02", "gland",
    )  # fmt: skip


def test_scenario_naming_an_asset_outside_the_fleet_is_a_config_error() -> None:
    sc = parse_scenario('[[faults]]\nasset = "pump-07"\ntype = "leak"\nstart = "1h"', "s.toml")
    with pytest.raises(
        ConfigError, match=r"s\.toml:2: faults\[0\]\.asset: unknown asset 'pump-07'"
    ):
        _fleet(sc)


def test_fleet_source_has_the_agent_source_shape() -> None:
    from simulator.runner import FleetSource

    source = FleetSource(_fleet())
    polled = source.poll(MONDAY_8 + 30)
    assert [(a, s.ts_ms) for a, s in polled][:3] == [
        ("pump-01", round((MONDAY_8 + 10) * 1000)),
        ("pump-01", round((MONDAY_8 + 20) * 1000)),
        ("pump-01", round((MONDAY_8 + 30) * 1000)),
    ]
    assert len(polled) == 9
    source.apply("pump-02", "mode", "stop")
    assert source.fleet.mode("pump-02") == "stop"
    with pytest.raises(ValueError, match="applies only 'mode'"):
        source.apply("pump-02", "sampling_interval_s", 5)
