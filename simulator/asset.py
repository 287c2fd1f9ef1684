"""One simulated asset: schedule -> physics -> faults -> measurement (noise, resolution, gaps).

:class:`AssetModel` carries the state that must survive between calls (thermal lags, a
stuck sensor's value, the random streams), so generating ``[t0, t1)`` then ``[t1, t2)``
gives the same series as generating ``[t0, t2)`` at once, up to float rounding in the lags.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator import modes
from simulator.faults import Fault, SensorFaultState, apply_sensor_faults, intensities
from simulator.physics import KINDS, Kind, Lag, context

MISSING_P = 0.0005
"""Probability that one reading of one sensor is lost (transmitter or network glitch)."""
DISTURBANCES = 4


@dataclass(frozen=True, slots=True)
class AssetSpec:
    name: str
    kind: str = "pump"
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Block:
    """Generated rows of one asset: times (epoch s), values (rows x sensors, NaN = missing)."""

    t: np.ndarray
    values: np.ndarray
    mode: np.ndarray
    """Operating mode index per row (see :data:`simulator.modes.MODES`); ground truth only."""


def asset_seed(spec: AssetSpec, seed: int) -> int:
    """Seed of one asset: the run seed, the asset's own seed and its name."""
    return (seed * 1_000_003 + spec.seed * 9_176 + zlib.crc32(spec.name.encode())) & 0xFFFFFFFF


class AssetModel:
    def __init__(
        self, spec: AssetSpec, faults: Sequence[Fault], *, rate_s: float, seed: int = 0
    ) -> None:
        self.spec = spec
        self.kind: Kind = KINDS[spec.kind]
        self.faults = [f for f in faults if f.asset == spec.name]
        self.rate_s = rate_s
        self.seed = asset_seed(spec, seed)
        self.sensors = self.kind.sensor_names
        self._lag = Lag(rate_s)
        self._normal = np.random.default_rng([self.seed, 1])
        self._uniform = np.random.default_rng([self.seed, 2])
        self._sensor_state = SensorFaultState()
        self._overrides: list[tuple[float, str]] = []
        specs = self.kind.sensors
        self._noise = np.array([s.noise for s in specs])
        self._relative = np.array([s.relative for s in specs])
        self._scale = np.array([s.scale for s in specs])
        self._unsigned = ~np.array([s.signed for s in specs])
        # 1 / resolution as an exact integer, so rounded values print as short decimals
        self._per_unit = np.array([round(1.0 / s.quantum) for s in specs], dtype=float)

    def set_mode(self, at: float, mode: str) -> None:
        """Apply a command mode (``normal``, ``safe``, ``stop``) from time *at* on."""
        if mode not in modes.COMMAND_MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(modes.COMMAND_MODES)}")
        self._overrides = [o for o in self._overrides if o[0] < at]
        self._overrides.append((at, mode))

    @property
    def command_mode(self) -> str:
        return self._overrides[-1][1] if self._overrides else "normal"

    def generate(self, t: np.ndarray) -> Block:
        """Rows at times *t* (ascending, on the rate grid, after any earlier call's times)."""
        n = len(t)
        s = len(self.sensors)
        normals = self._normal.standard_normal((n, s + DISTURBANCES))
        uniforms = self._uniform.random((n, s + 2))
        if n == 0:
            return Block(t, np.empty((0, s)), np.empty(0, dtype=int))
        op = modes.speed_profile(t, self.seed, self.kind.name, self.kind.levels, self._overrides)
        ctx = context(t, self.seed)
        f = intensities(self.faults, t)
        clean = self.kind.physics(op, ctx, f, normals[:, s:], self._lag)
        values = np.empty((n, s))
        for j, name in enumerate(self.sensors):
            values[:, j] = clean[name]
        sigma = np.where(self._relative, self._noise * np.abs(values), self._noise)
        values += sigma * normals[:, :s]
        values[:, self._unsigned] = np.maximum(values[:, self._unsigned], 0.0)
        values = np.round(values * self._per_unit) / self._per_unit
        apply_sensor_faults(
            self.faults, t, values, self.sensors, self._scale, uniforms[:, s:], self._sensor_state
        )
        values[uniforms[:, :s] < MISSING_P] = np.nan
        return Block(t, values, op.mode)
