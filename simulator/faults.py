"""Fault injection: what each fault type does, and its severity over time.

A fault is an onset, a severity profile (step, linear ramp or accelerating growth up to its
peak severity), an optional end (repair) and an optional gradual recovery after it. Physical
faults feed the equipment physics (so their symptoms follow speed and load, as on real
machines); sensor faults corrupt one measured channel after the physics.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class FaultType(StrEnum):
    BEARING_WEAR = "bearing_wear"
    CAVITATION = "cavitation"
    LEAK = "leak"
    IMBALANCE = "imbalance"
    OVERHEATING = "overheating"
    SENSOR_STUCK = "sensor_stuck"
    SENSOR_SPIKES = "sensor_spikes"
    SENSOR_DRIFT = "sensor_drift"
    SENSOR_DROPOUT = "sensor_dropout"


PHYSICAL = frozenset(
    {
        FaultType.BEARING_WEAR,
        FaultType.CAVITATION,
        FaultType.LEAK,
        FaultType.IMBALANCE,
        FaultType.OVERHEATING,
    }
)
SENSOR_FAULTS = frozenset(set(FaultType) - PHYSICAL)

FAULT_CODES: dict[FaultType, str] = {
    FaultType.BEARING_WEAR: "BRG_WEAR",
    FaultType.CAVITATION: "CAVITATION",
    FaultType.LEAK: "LEAK",
    FaultType.IMBALANCE: "IMBALANCE",
    FaultType.OVERHEATING: "OVERHEAT",
    FaultType.SENSOR_STUCK: "SENSOR_STUCK",
    FaultType.SENSOR_SPIKES: "SENSOR_SPIKES",
    FaultType.SENSOR_DRIFT: "SENSOR_DRIFT",
    FaultType.SENSOR_DROPOUT: "SENSOR_DROPOUT",
}
"""The label-file ``fault_code`` of each type."""

PROFILES = ("step", "linear", "accelerating")


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault in absolute time (epoch seconds)."""

    asset: str
    type: FaultType
    start: float
    end: float | None = None
    """Repair time; None = never repaired."""
    severity: float = 1.0
    profile: str = "linear"
    ramp_s: float = 1800.0
    """Time from onset to peak severity (ignored by ``step``)."""
    recovery_s: float = 0.0
    """After ``end``, severity decays linearly to zero over this time."""
    sensor: str | None = None
    """The corrupted channel of a sensor fault."""
    notes: str = ""

    @property
    def label_end(self) -> float | None:
        """Last instant the fault has any effect (end of the ground-truth label)."""
        return None if self.end is None else self.end + self.recovery_s

    @property
    def code(self) -> str:
        return FAULT_CODES[self.type]

    def severity_at(self, t: np.ndarray) -> np.ndarray:
        """Severity at each time of *t*: 0 before onset and after recovery."""
        x = (t - self.start) / max(self.ramp_s, 1e-9)
        if self.profile == "step":
            shape = np.ones_like(t)
        elif self.profile == "linear":
            shape = np.clip(x, 0.0, 1.0)
        else:  # accelerating: slow at first, exponential growth to the peak (wear-out)
            k = 4.0
            shape = np.expm1(k * np.clip(x, 0.0, 1.0)) / np.expm1(k)
        s = np.where(t >= self.start, shape * self.severity, 0.0)
        if self.end is not None:
            if self.recovery_s > 0:
                decay = np.clip(1.0 - (t - self.end) / self.recovery_s, 0.0, 1.0)
                s = np.where(t > self.end, s * decay, s)
            else:
                s = np.where(t > self.end, 0.0, s)
            s = np.where(t > self.end + self.recovery_s, 0.0, s)
        return s


class SensorFaultState:
    """Memory a sensor fault needs across chunks (a stuck sensor's frozen value)."""

    def __init__(self) -> None:
        self.stuck: dict[int, float] = {}
        self.last: dict[str, float] = {}


def apply_sensor_faults(
    faults: list[Fault],
    t: np.ndarray,
    values: np.ndarray,
    sensors: tuple[str, ...],
    scales: np.ndarray,
    uniforms: np.ndarray,
    state: SensorFaultState,
) -> None:
    """Corrupt measured *values* (rows = times, columns = *sensors*) in place.

    *uniforms* has two columns of U(0,1) per row, drawn whether or not a fault is active,
    so the random stream does not depend on the scenario.
    """
    for i, fault in enumerate(faults):
        if fault.type not in SENSOR_FAULTS or fault.sensor is None:
            continue
        col = sensors.index(fault.sensor)
        s = fault.severity_at(t)
        active = s > 0
        if fault.type is FaultType.SENSOR_STUCK:
            if i not in state.stuck and active.any():
                first = int(np.argmax(active))
                prior = values[:first, col]
                prior = prior[~np.isnan(prior)]
                if len(prior):
                    state.stuck[i] = float(prior[-1])
                else:
                    state.stuck[i] = state.last.get(fault.sensor, float(values[first, col]))
            if i in state.stuck:
                values[active, col] = state.stuck[i]
        elif fault.type is FaultType.SENSOR_SPIKES:
            hit = active & (uniforms[:, 0] < 0.05 * np.minimum(s, 1.0))
            sign = np.where(uniforms[:, 1] < 0.5, -1.0, 1.0)
            values[hit, col] += sign[hit] * scales[col] * (3.0 + 3.0 * uniforms[hit, 1])
        elif fault.type is FaultType.SENSOR_DRIFT:
            values[:, col] += s * scales[col]
        elif fault.type is FaultType.SENSOR_DROPOUT:
            values[active & (uniforms[:, 0] < np.minimum(s, 1.0)), col] = np.nan
    for col, name in enumerate(sensors):
        good = values[:, col][~np.isnan(values[:, col])]
        if len(good):
            state.last[name] = float(good[-1])
