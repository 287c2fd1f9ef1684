"""Simulated assets: schedule -> physics -> faults -> measurement (noise, resolution, gaps).

:class:`AssetGroup` computes many assets of one kind at once (rows = assets), so a fleet of
hundreds steps in a few numpy calls. It carries the state that must survive between calls
(thermal lags, a stuck sensor's value, one random stream per asset), so generating
``[t0, t1)`` then ``[t1, t2)`` gives the same series as ``[t0, t2)`` at once, up to float
rounding in the lags. Each asset's output depends only on its own spec, the run seed and
the faults on it, never on which other assets share its group.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from simulator import modes
from simulator.faults import PHYSICAL, Fault, SensorFaultState, apply_sensor_faults
from simulator.physics import KINDS, Context, Kind, Lag, context

MISSING_P = 0.0005
"""Probability that one reading of one sensor is lost (transmitter or network glitch)."""
DISTURBANCES = 4


@dataclass(frozen=True, slots=True)
class AssetSpec:
    name: str
    kind: str = "pump"
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Trim:
    """A lasting change of an asset's operating point from ``at`` on, reached linearly over
    ``ramp_s``: an operator re-setting the speed or the valve, water added to the loop, a
    warmer supply. Trims stack; they change the machine's inputs, so every sensor follows
    through the physics, and they are normal operation (never labelled)."""

    at: float
    ramp_s: float = 0.0
    speed: float = 1.0
    """Factor on the scheduled speed."""
    opening: float = 1.0
    """Factor on the scheduled valve (damper) opening."""
    suction_head_m: float = 0.0
    """Added to the tank level above the pump inlet."""
    process_c: float = 0.0
    """Added to the process-fluid (intake-air) temperature."""

    def weight(self, t: np.ndarray) -> np.ndarray:
        """0 before ``at``, 1 from ``at + ramp_s`` on."""
        if self.ramp_s <= 0:
            return (t >= self.at).astype(float)
        return np.clip((t - self.at) / self.ramp_s, 0.0, 1.0)


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


def character_seed(spec: AssetSpec) -> int:
    """Seed of an asset's own character (its name and seed only, not the run's)."""
    return (spec.seed * 7_919 + zlib.crc32(spec.name.encode())) & 0xFFFFFFFF


class AssetGroup:
    """Assets of one kind generated together."""

    def __init__(
        self,
        specs: Sequence[AssetSpec],
        faults: Sequence[Fault],
        *,
        rate_s: float,
        seed: int = 0,
        load: str | None = None,
    ) -> None:
        kinds = {s.kind for s in specs}
        if len(kinds) != 1:
            raise ValueError("an asset group holds assets of one kind")
        self.specs = tuple(specs)
        self.kind: Kind = KINDS[kinds.pop()]
        self.names = tuple(s.name for s in specs)
        self.sensors = self.kind.sensor_names
        self.rate_s = rate_s
        self.load = load
        self.seeds = [asset_seed(s, seed) for s in specs]
        self.characters = [character_seed(s) for s in specs]
        self.faults = [[f for f in faults if f.asset == s.name] for s in specs]
        self._lag = Lag(rate_s)
        self._normal = [np.random.default_rng([sd, 1]) for sd in self.seeds]
        self._uniform = [np.random.default_rng([sd, 2]) for sd in self.seeds]
        self._sensor_state = [SensorFaultState() for _ in specs]
        self._overrides: list[list[tuple[float, str]]] = [[] for _ in specs]
        self._trims: list[list[Trim]] = [[] for _ in specs]
        sensor_specs = self.kind.sensors
        self._noise = np.array([s.noise for s in sensor_specs])
        self._relative = np.array([s.relative for s in sensor_specs])
        self._scale = np.array([s.scale for s in sensor_specs])
        self._unsigned = ~np.array([s.signed for s in sensor_specs])
        # 1 / resolution as an exact integer, so rounded values print as short decimals
        self._per_unit = np.array([round(1.0 / s.quantum) for s in sensor_specs], dtype=float)

    def set_mode(self, index: int, at: float, mode: str) -> None:
        """Apply a command mode (``normal``, ``safe``, ``stop``) to asset *index* from *at* on."""
        if mode not in modes.COMMAND_MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(modes.COMMAND_MODES)}")
        kept = [o for o in self._overrides[index] if o[0] < at]
        self._overrides[index] = [*kept, (at, mode)]

    def add_trim(self, index: int, trim: Trim) -> None:
        """Change asset *index*'s operating point (see :class:`Trim`)."""
        self._trims[index].append(trim)

    def command_mode(self, index: int) -> str:
        overrides = self._overrides[index]
        return overrides[-1][1] if overrides else "normal"

    def generate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values ``(assets, len(t), sensors)`` (NaN = lost) and modes ``(assets, len(t))``.

        *t* ascending, on the rate grid, after the times of any earlier call.
        """
        a, n, s = len(self.specs), len(t), len(self.sensors)
        normals = np.stack([g.standard_normal((n, s + DISTURBANCES)) for g in self._normal])
        uniforms = np.stack([g.random((n, s + 2)) for g in self._uniform])
        if n == 0:
            return np.empty((a, 0, s)), np.empty((a, 0), dtype=int)
        profiles = [
            modes.speed_profile(t, sd, self.kind.name, self.kind.levels, ov, self.load)
            for sd, ov in zip(self.seeds, self._overrides, strict=True)
        ]
        op = modes.Profile(
            speed=np.stack([p.speed for p in profiles]),
            opening=np.stack([p.opening for p in profiles]),
            mode=np.stack([p.mode for p in profiles]),
        )
        ctx = context(t, self.seeds, self.characters)
        if any(self._trims):
            op, ctx = self._trimmed(t, op, ctx)
        f = {ft: np.zeros((a, n)) for ft in PHYSICAL}
        for i, faults in enumerate(self.faults):
            for fault in faults:
                if fault.type in PHYSICAL:
                    f[fault.type][i] += fault.severity_at(t)
        clean = self.kind.physics(op, ctx, f, normals[:, :, s:], self._lag)
        values = np.stack([clean[name] for name in self.sensors], axis=-1)
        sigma = np.where(self._relative, self._noise * np.abs(values), self._noise)
        # a stopped machine's speed, flow and current read a clean zero (transmitter dead band)
        dead = (values == 0.0) & self._unsigned
        values += sigma * normals[:, :, :s]
        values[:, :, self._unsigned] = np.maximum(values[:, :, self._unsigned], 0.0)
        values[dead] = 0.0
        values = np.round(values * self._per_unit) / self._per_unit
        for i, faults in enumerate(self.faults):
            if faults:
                apply_sensor_faults(
                    faults,
                    t,
                    values[i],
                    self.sensors,
                    self._scale,
                    uniforms[i, :, s:],
                    self._sensor_state[i],
                )
        values[uniforms[:, :, :s] < MISSING_P] = np.nan
        return values, op.mode

    def _trimmed(
        self, t: np.ndarray, op: modes.Profile, ctx: Context
    ) -> tuple[modes.Profile, Context]:
        speed, opening = op.speed.copy(), op.opening.copy()
        head, process = ctx.suction_head.copy(), ctx.process.copy()
        for i, trims in enumerate(self._trims):
            for trim in trims:
                w = trim.weight(t)
                speed[i] *= 1.0 + (trim.speed - 1.0) * w
                opening[i] *= 1.0 + (trim.opening - 1.0) * w
                head[i] += trim.suction_head_m * w
                process[i] += trim.process_c * w
        return (
            modes.Profile(speed=speed, opening=np.clip(opening, 0.0, 1.0), mode=op.mode),
            replace(ctx, suction_head=head, process=process),
        )


class AssetModel:
    """One asset on its own (an :class:`AssetGroup` of one)."""

    def __init__(
        self, spec: AssetSpec, faults: Sequence[Fault], *, rate_s: float, seed: int = 0
    ) -> None:
        self.spec = spec
        self._group = AssetGroup([spec], faults, rate_s=rate_s, seed=seed)
        self.sensors = self._group.sensors
        self.kind = self._group.kind

    def set_mode(self, at: float, mode: str) -> None:
        self._group.set_mode(0, at, mode)

    @property
    def command_mode(self) -> str:
        return self._group.command_mode(0)

    def generate(self, t: np.ndarray) -> Block:
        values, mode = self._group.generate(t)
        return Block(t, values[0], mode[0])
