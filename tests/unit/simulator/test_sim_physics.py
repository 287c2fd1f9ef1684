"""Normal data is physically plausible: regimes, correlations, affinity laws, lags, noise."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from simulator.asset import AssetModel, AssetSpec
from simulator.modes import MODES
from simulator.physics import KINDS, Lag

MONDAY = datetime(2026, 1, 12, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module", params=["pump", "fan"])
def month(request: pytest.FixtureRequest):
    kind = request.param
    model = AssetModel(AssetSpec("a1", kind, 1), [], rate_s=60.0, seed=3)
    t = MONDAY + np.arange(0, 28 * 86_400, 60.0)
    block = model.generate(t)
    return kind, model.sensors, block


def _complete(x: np.ndarray) -> np.ndarray:
    return x[~np.isnan(x).any(axis=1)]


def test_several_operating_regimes_with_transitions(month) -> None:
    _kind, _sensors, block = month
    counts = {MODES[i]: int((block.mode == i).sum()) for i in np.unique(block.mode)}
    for mode in ("low", "medium", "high", "off", "startup", "shutdown"):
        assert counts.get(mode, 0) > 0, counts
    for mode in ("low", "medium", "high"):
        assert counts[mode] > 0.15 * len(block.mode)


def test_flow_and_current_correlate_positively_within_each_mode(month) -> None:
    kind, sensors, block = month
    flow = sensors.index("flow_m3h" if kind == "pump" else "airflow_m3s")
    current = sensors.index("motor_current_a")
    for mode in ("low", "medium", "high"):
        x = _complete(block.values[block.mode == MODES.index(mode)])
        assert np.corrcoef(x[:, flow], x[:, current])[0, 1] > 0.6, mode


def test_vibration_rises_with_speed(month) -> None:
    kind, sensors, block = month
    vib = sensors.index("vibration_x_mm_s" if kind == "pump" else "vibration_de_mm_s")
    x = _complete(block.values[block.values[:, 0] > 100])
    assert np.corrcoef(x[:, 0], x[:, vib])[0, 1] > 0.9
    means = [
        np.nanmean(block.values[block.mode == MODES.index(m), vib])
        for m in ("low", "medium", "high")
    ]
    assert means[0] < means[1] < means[2]


def test_affinity_laws_hold_across_levels(month) -> None:
    """Flow ~ speed and power ~ speed³ (within the bend a static head puts in the curves)."""
    kind, sensors, block = month
    flow = sensors.index("flow_m3h" if kind == "pump" else "airflow_m3s")
    current = sensors.index("motor_current_a")
    low = np.nanmedian(block.values[block.mode == MODES.index("low")], axis=0)
    high = np.nanmedian(block.values[block.mode == MODES.index("high")], axis=0)
    speed_ratio = low[0] / high[0]
    assert 0.55 < speed_ratio < 0.75
    assert low[flow] / high[flow] < speed_ratio  # throttled valve/damper at low load
    assert low[current] / high[current] < speed_ratio**1.5


def test_stopped_machine_reads_zero(month) -> None:
    kind, sensors, block = month
    off = block.values[block.mode == MODES.index("off")]
    for name in ("speed_rpm", "motor_current_a", "flow_m3h" if kind == "pump" else "airflow_m3s"):
        assert np.nanmax(off[:, sensors.index(name)]) == 0.0, name


def test_temperatures_lag_behind_load_changes(month) -> None:
    _kind, sensors, block = month
    temp = block.values[:, sensors.index("bearing_temp_c")]
    mode = block.mode
    change = np.flatnonzero((mode[1:] == MODES.index("high")) & (mode[:-1] != MODES.index("high")))
    i = int(change[0]) + 1
    rise_5 = np.nanmean(temp[i + 4 : i + 6]) - np.nanmean(temp[i - 3 : i])
    rise_60 = np.nanmean(temp[i + 59 : i + 61]) - np.nanmean(temp[i - 3 : i])
    assert rise_60 > 2.0
    assert rise_5 < 0.5 * rise_60


def test_noise_quantisation_and_missing_values(month) -> None:
    kind, sensors, block = month
    values = block.values
    missing = np.isnan(values).mean()
    assert 0.0001 < missing < 0.002
    for j, spec in enumerate(KINDS[kind].sensors):
        col = values[:, j][~np.isnan(values[:, j])]
        scaled = col / spec.quantum
        assert np.allclose(scaled, np.round(scaled), atol=1e-6), spec.name
    # consecutive readings of a steadily running machine differ: there is measurement noise
    current = values[block.mode == MODES.index("high"), sensors.index("motor_current_a")]
    assert np.mean(np.diff(current) != 0) > 0.5


def test_lag_is_the_first_order_recursion_in_any_chunking() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 1000)).cumsum(axis=1)
    a = 1 - np.exp(-10 / 300)
    expected = np.empty_like(x)
    prev = x[:, 0].copy()
    for k in range(x.shape[1]):
        prev = prev + a * (x[:, k] - prev)
        expected[:, k] = prev
    whole = Lag(10.0)("k", x, 300.0)
    lag = Lag(10.0)
    parts = np.concatenate([lag("k", x[:, i : i + 137], 300.0) for i in range(0, 1000, 137)], 1)
    assert np.allclose(whole, expected, atol=1e-9)
    assert np.allclose(parts, expected, atol=1e-9)


def _high_means(name: str, spec_seed: int, run_seed: int) -> np.ndarray:
    model = AssetModel(AssetSpec(name, "pump", spec_seed), [], rate_s=60.0, seed=run_seed)
    block = model.generate(MONDAY + 7 * 3600 + np.arange(0, 6 * 3600, 60.0))
    return np.nanmean(block.values[block.mode == MODES.index("high")], axis=0)


def test_no_two_pumps_are_alike_but_each_keeps_its_character() -> None:
    """Vibration per speed² is the machine's; the run seed only moves its schedule."""
    vib = KINDS["pump"].sensor_names.index("vibration_x_mm_s")

    def signature(means: np.ndarray) -> float:
        return means[vib] / means[0] ** 2

    a1, a2 = _high_means("pump-01", 1, 0), _high_means("pump-01", 1, 99)
    b = _high_means("pump-02", 2, 0)
    assert abs(signature(a1) / signature(a2) - 1) < 0.03
    assert abs(signature(a1) / signature(b) - 1) > 0.08
