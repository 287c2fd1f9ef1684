"""Each fault moves the sensors it should and leaves the others in their normal band.

Faulty and fault-free runs share the seed, so their random streams are identical and the
difference between them is exactly what the fault did.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from simulator.asset import AssetModel, AssetSpec
from simulator.faults import Fault, FaultType
from simulator.physics import KINDS

MONDAY = datetime(2026, 1, 12, tzinfo=UTC).timestamp()
START = MONDAY + 7 * 3600  # high load on a weekday
ONSET = START + 3600
T = START + np.arange(0, 5 * 3600, 10.0)
LATE = T > ONSET + 2.5 * 3600

EXPECTED: dict[tuple[str, FaultType], dict[str, int]] = {
    ("pump", FaultType.BEARING_WEAR): {
        "vibration_x_mm_s": 1, "vibration_y_mm_s": 1, "bearing_temp_c": 1, "motor_current_a": 1,
    },
    ("pump", FaultType.CAVITATION): {
        "suction_pressure_bar": -1, "discharge_pressure_bar": -1, "flow_m3h": -1,
        "vibration_x_mm_s": 1, "vibration_y_mm_s": 1, "motor_current_a": -1,
    },
    ("pump", FaultType.IMBALANCE): {
        "vibration_x_mm_s": 1, "vibration_y_mm_s": 1, "bearing_temp_c": 1, "motor_current_a": 1,
    },
    ("pump", FaultType.LEAK): {
        "flow_m3h": -1, "discharge_pressure_bar": -1, "suction_pressure_bar": -1,
        "motor_current_a": 1,
    },
    ("pump", FaultType.OVERHEATING): {"bearing_temp_c": 1},
    ("fan", FaultType.BEARING_WEAR): {
        "vibration_de_mm_s": 1, "vibration_nde_mm_s": 1, "bearing_temp_c": 1,
        "motor_temp_c": 1, "motor_current_a": 1,
    },
    ("fan", FaultType.IMBALANCE): {
        "vibration_de_mm_s": 1, "vibration_nde_mm_s": 1, "bearing_temp_c": 1,
        "motor_temp_c": 1, "motor_current_a": 0,
    },
    ("fan", FaultType.LEAK): {
        "airflow_m3s": -1, "static_pressure_pa": -1, "motor_current_a": -1,
        "bearing_temp_c": 0, "motor_temp_c": -1,
    },
    ("fan", FaultType.OVERHEATING): {"motor_temp_c": 1, "bearing_temp_c": 1},
}  # fmt: skip
"""Sensor -> direction it must move by more than 5 noise sigmas (0: a secondary effect that
may move a little). Every sensor not listed must stay within one sigma of normal."""


def _run(kind: str, faults: list[Fault]) -> np.ndarray:
    return AssetModel(AssetSpec("a1", kind, 4), faults, rate_s=10.0, seed=11).generate(T).values


@pytest.mark.parametrize(("kind", "ftype"), list(EXPECTED))
def test_physical_fault_moves_expected_sensors_only(kind: str, ftype: FaultType) -> None:
    base = _run(kind, [])
    fault = Fault("a1", ftype, ONSET, severity=1.0, profile="linear", ramp_s=1800)
    faulty = _run(kind, [fault])
    before = T < ONSET
    assert np.array_equal(base[before], faulty[before], equal_nan=True)
    expected = EXPECTED[(kind, ftype)]
    for j, spec in enumerate(KINDS[kind].sensors):
        sigma = spec.noise * (np.nanmean(np.abs(base[:, j])) if spec.relative else 1.0)
        shift = np.nanmean(faulty[LATE, j] - base[LATE, j])
        if spec.name in expected:
            if expected[spec.name]:
                assert shift * expected[spec.name] > 5 * sigma, (spec.name, shift, sigma)
        else:
            assert abs(shift) < sigma, (spec.name, shift, sigma)
            lo, hi = np.nanmin(base[:, j]), np.nanmax(base[:, j])
            margin = 3 * sigma
            assert np.nanmin(faulty[LATE, j]) >= lo - margin, spec.name
            assert np.nanmax(faulty[LATE, j]) <= hi + margin, spec.name


def test_cavitation_makes_flow_and_vibration_erratic() -> None:
    base = _run("pump", [])
    faulty = _run("pump", [Fault("a1", FaultType.CAVITATION, ONSET, profile="step")])
    sensors = KINDS["pump"].sensor_names
    for name in ("flow_m3h", "vibration_x_mm_s", "discharge_pressure_bar"):
        j = sensors.index(name)
        assert np.nanstd(faulty[LATE, j]) > 3 * np.nanstd(base[LATE, j]), name


def test_cavitation_fades_when_the_pump_slows_down() -> None:
    """NPSH required falls with speed²: at the low load level the pump stops cavitating."""
    model = AssetModel(AssetSpec("a1", "pump", 4), [], rate_s=10.0, seed=11)
    faulty = AssetModel(
        AssetSpec("a1", "pump", 4),
        [Fault("a1", FaultType.CAVITATION, ONSET, profile="step")],
        rate_s=10.0,
        seed=11,
    )
    for m in (model, faulty):
        m.set_mode(ONSET + 3600, "safe")
    base, bad = model.generate(T).values, faulty.generate(T).values
    after = T > ONSET + 3600 + 600
    j = KINDS["pump"].sensor_names.index("vibration_x_mm_s")
    assert np.allclose(base[after, j], bad[after, j], equal_nan=True)


def test_bearing_wear_accelerates() -> None:
    base = _run("pump", [])
    fault = Fault("a1", FaultType.BEARING_WEAR, ONSET, profile="accelerating", ramp_s=3 * 3600)
    faulty = _run("pump", [fault])
    j = KINDS["pump"].sensor_names.index("vibration_x_mm_s")
    d = faulty[:, j] - base[:, j]
    first = np.nanmean(d[(T > ONSET) & (T < ONSET + 3600)])
    second = np.nanmean(d[(T > ONSET + 3600) & (T < ONSET + 7200)])
    third = np.nanmean(d[(T > ONSET + 7200) & (T < ONSET + 3 * 3600)])
    assert 0 < first < second - first < third - second


def test_fault_recovers_after_repair() -> None:
    base = _run("pump", [])
    fault = Fault("a1", FaultType.IMBALANCE, ONSET, end=ONSET + 3600, profile="step")
    faulty = _run("pump", [fault])
    j = KINDS["pump"].sensor_names.index("vibration_x_mm_s")
    after = T > ONSET + 3600
    assert np.allclose(base[after, j], faulty[after, j], equal_nan=True)


SENSOR = "discharge_pressure_bar"


def _sensor_fault(ftype: FaultType, **kw: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    base = _run("pump", [])
    fault = Fault("a1", ftype, ONSET, end=ONSET + 2 * 3600, sensor=SENSOR, profile="step", **kw)  # type: ignore[arg-type]
    faulty = _run("pump", [fault])
    active = (T >= ONSET) & (T <= ONSET + 2 * 3600)
    return base, faulty, active


def _others_untouched(base: np.ndarray, faulty: np.ndarray) -> None:
    j = KINDS["pump"].sensor_names.index(SENSOR)
    others = [k for k in range(base.shape[1]) if k != j]
    assert np.array_equal(base[:, others], faulty[:, others], equal_nan=True)


def test_sensor_stuck_freezes_the_last_good_value() -> None:
    base, faulty, active = _sensor_fault(FaultType.SENSOR_STUCK)
    j = KINDS["pump"].sensor_names.index(SENSOR)
    frozen = faulty[active, j]
    frozen = frozen[~np.isnan(frozen)]
    last_good = base[T < ONSET, j]
    assert np.all(frozen == last_good[~np.isnan(last_good)][-1])
    assert np.array_equal(base[~active, j], faulty[~active, j], equal_nan=True)
    _others_untouched(base, faulty)


def test_sensor_spikes_are_rare_large_outliers() -> None:
    base, faulty, active = _sensor_fault(FaultType.SENSOR_SPIKES)
    j = KINDS["pump"].sensor_names.index(SENSOR)
    d = np.abs(faulty[:, j] - base[:, j])
    spikes = d[active] > 1.0
    assert 0.02 < np.nanmean(spikes) < 0.09
    assert np.nanmax(d[~active]) == 0
    _others_untouched(base, faulty)


def test_sensor_drift_grows_to_severity_times_span() -> None:
    base2 = _run("pump", [])
    fault = Fault("a1", FaultType.SENSOR_DRIFT, ONSET, sensor=SENSOR, profile="linear", ramp_s=3600)
    faulty = _run("pump", [fault])
    j = KINDS["pump"].sensor_names.index(SENSOR)
    d = faulty[:, j] - base2[:, j]
    span = KINDS["pump"].sensors[j].scale
    assert abs(np.nanmean(d[(T > ONSET + 1700) & (T < ONSET + 1900)]) - span / 2) < 0.05 * span
    assert abs(np.nanmean(d[T > ONSET + 3700]) - span) < 0.02 * span
    _others_untouched(base2, faulty)


def test_sensor_dropout_loses_the_channel() -> None:
    base, faulty, active = _sensor_fault(FaultType.SENSOR_DROPOUT)
    j = KINDS["pump"].sensor_names.index(SENSOR)
    assert np.all(np.isnan(faulty[active, j]))
    assert np.array_equal(base[~active, j], faulty[~active, j], equal_nan=True)
    _others_untouched(base, faulty)


def test_severity_profiles() -> None:
    t = np.array([0.0, 50.0, 100.0, 150.0, 200.0, 260.0])
    step = Fault("a", FaultType.LEAK, 50.0, end=200.0, profile="step", severity=0.5)
    assert step.severity_at(t).tolist() == [0.0, 0.5, 0.5, 0.5, 0.5, 0.0]
    lin = Fault("a", FaultType.LEAK, 50.0, profile="linear", ramp_s=100.0)
    assert lin.severity_at(t).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0, 1.0]
    acc = Fault("a", FaultType.LEAK, 0.0, profile="accelerating", ramp_s=200.0)
    s = acc.severity_at(t)
    assert s[0] == 0 and s[4] == pytest.approx(1.0) and s[1] < 0.25 * s[3]
    rec = Fault("a", FaultType.LEAK, 0.0, end=100.0, recovery_s=100.0, profile="step")
    assert rec.severity_at(t).tolist() == [1.0, 1.0, 1.0, 0.5, 0.0, 0.0]
    assert rec.label_end == 200.0
