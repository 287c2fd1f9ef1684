"""Equipment physics: centrifugal pump with motor, and a centrifugal fan.

Vectorised over ``(assets, times)`` arrays. Hydraulics follow the affinity laws along a pump (or fan) curve that
intersects a system curve: flow ∝ speed, head ∝ speed², power ∝ speed³ at a fixed system;
motor current is electrical power over supply voltage; vibration grows with speed² times
imbalance; temperatures are first-order lags of their heat balance. Faults change the
machine (clearances, resistance, cooling), never the readings directly, so their symptoms
move with speed and load as they do on real equipment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.faults import FaultType
from simulator.modes import Level, Profile

SQRT3 = math.sqrt(3.0)


@dataclass(frozen=True, slots=True)
class SensorSpec:
    name: str
    quantum: float
    """Resolution of the transmitter (values are rounded to it)."""
    noise: float
    """Measurement noise sigma: absolute, or relative when ``relative``."""
    scale: float
    """Typical span: size of drift and spikes of sensor faults."""
    relative: bool = False
    signed: bool = False
    """May read below zero (gauge pressure, temperature); others are clipped at zero."""

    @property
    def decimals(self) -> int:
        return max(0, -math.floor(math.log10(self.quantum) + 1e-9))


class Lag:
    """First-order lags with state carried across calls (exact discretisation, one pole).

    ``y[k] = (1 - a) y[k-1] + a x[k]`` per row of an ``(assets, times)`` array, evaluated as
    a doubling scan: pass ``j`` adds the terms ``2^j`` steps back, until ``(1 - a)^(2^j)``
    is below double precision. A year of 1-minute samples takes about ten array passes, with
    no Python loop per sample and no BLAS (whose threads stall on a busy machine); each row's
    result depends on that row alone.
    """

    def __init__(self, dt: float) -> None:
        self.dt = dt
        self.state: dict[str, np.ndarray] = {}

    def __call__(self, key: str, target: np.ndarray, tau: float) -> np.ndarray:
        a = 1.0 - math.exp(-self.dt / tau)
        r = 1.0 - a
        prev = self.state.get(key)
        if prev is None:
            prev = target[:, 0].copy()
        y = a * target
        y[:, 0] += r * prev
        shift, weight = 1, r
        n = target.shape[1]
        while shift < n and weight > 1e-18:
            y[:, shift:] += weight * y[:, :-shift]  # the right side is a copy of the old values
            shift, weight = 2 * shift, weight * weight
        self.state[key] = y[:, -1].copy()
        return y


@dataclass(frozen=True, slots=True)
class Context:
    """Slow surroundings: pure functions of time and seed."""

    ambient: np.ndarray
    process: np.ndarray
    """Pumped-fluid (or intake-air) temperature before the machine adds heat."""
    supply_v: np.ndarray
    suction_head: np.ndarray
    """Tank level above the pump inlet in metres (pumps only)."""
    head_gain: np.ndarray
    """The asset's own character, ``(assets, 1)``: no two machines are alike. Shut-off head
    (or pressure) relative to the type's curve."""
    eff_gain: np.ndarray
    """Efficiency relative to the type's."""
    vib_gain: np.ndarray
    """Running-speed vibration relative to the type's (balance and alignment as installed)."""
    temp_offset: np.ndarray
    """Bearing temperature offset, °C (mounting, lubrication, sensor placement)."""


def context(t: np.ndarray, seeds: Sequence[int], characters: Sequence[int]) -> Context:
    """Surroundings of each asset (rows) at times *t*: weather, process and grid, from the run
    *seeds*; and each asset's character, from its *characters* seed alone (an asset keeps its
    character across runs)."""
    ph = np.array(
        [np.random.default_rng([seed & 0xFFFFFFFF, 7]).uniform(0, 2 * math.pi, 6) for seed in seeds]
    )
    ph = ph[:, :, None]
    tt = t[None, :]
    day = 2 * math.pi * tt / 86_400.0
    year = 2 * math.pi * tt / (365.25 * 86_400.0)
    weather = 1.0 * np.sin(2 * math.pi * tt / (3.1 * 86_400) + ph[:, 0]) + 0.5 * np.sin(
        2 * math.pi * tt / (0.37 * 86_400) + ph[:, 1]
    )
    # a machine room: the outdoor swing reaches it damped
    ambient = 20.0 - 5.0 * np.cos(year - 0.35) - 1.5 * np.cos(day - 0.6) + weather
    process = 14.0 - 4.0 * np.cos(year - 0.5) - 0.8 * np.cos(day - 1.0) + 0.3 * weather
    supply = (
        400.0 + 3.0 * np.sin(day + ph[:, 2]) + 1.2 * np.sin(2 * math.pi * tt / 1_900.0 + ph[:, 3])
    )
    level = (
        3.0
        + 0.4 * np.sin(2 * math.pi * tt / (0.5 * 86_400) + ph[:, 4])
        + 0.2 * np.sin(2 * math.pi * tt / (2.3 * 86_400) + ph[:, 5])
    )
    char = np.array(
        [np.random.default_rng([c & 0xFFFFFFFF, 99]).standard_normal(4) for c in characters]
    )
    return Context(
        ambient=ambient,
        process=process,
        supply_v=supply,
        suction_head=level,
        head_gain=1.0 + 0.02 * char[:, 0:1],
        eff_gain=1.0 + 0.015 * char[:, 1:2],
        vib_gain=np.exp(0.15 * char[:, 2:3]),
        temp_offset=1.5 * char[:, 3:4],
    )


Physics = Callable[
    [Profile, Context, dict[FaultType, np.ndarray], np.ndarray, Lag], dict[str, np.ndarray]
]


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    sensors: tuple[SensorSpec, ...]
    levels: dict[str, Level]
    physics: Physics
    faults: frozenset[FaultType]
    """Physical fault types this equipment can suffer."""

    @property
    def sensor_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sensors)


# --------------------------------------------------------------------------- pump
PUMP_RPM = 2950.0
H0 = 50.0  # shut-off head at nominal speed, m
K_PUMP = 0.001  # head drop per (m3/h)^2
H_STATIC = 10.0  # static lift of the system, m
R_SYS = 0.003  # system friction per (m3/h)^2 at full valve opening
Q_BEP = 110.0  # best-efficiency flow at nominal speed, m3/h
BAR_PER_M = 0.0981  # water


def _pump_operating_point(
    n: np.ndarray, r: np.ndarray, leak_c: np.ndarray, h0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head H (m), pump flow and delivered flow (m3/h) where pump, system and leak meet.

    Pump: ``Q = sqrt((H0 n² - H)/k)``; system: ``Q_sys = sqrt((H - Hs)/r)``; leak through a
    worn seal or passing valve: ``Q_leak = c sqrt(H)``. Without a leak the intersection is
    closed-form; with one, bisection on H (vectorised).
    """
    hmax = h0 * n**2
    h = np.where(hmax > H_STATIC, (r * hmax + K_PUMP * H_STATIC) / (r + K_PUMP), hmax)
    if np.any(leak_c > 0):
        lo = np.zeros_like(n)
        hi = np.maximum(hmax, 1e-9)
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            q_pump = np.sqrt(np.maximum(hmax - mid, 0.0) / K_PUMP)
            q_out = np.sqrt(np.maximum(mid - H_STATIC, 0.0) / r) + leak_c * np.sqrt(mid)
            more = q_pump > q_out
            lo = np.where(more, mid, lo)
            hi = np.where(more, hi, mid)
        h = np.where(leak_c > 0, 0.5 * (lo + hi), h)
    q_pump = np.sqrt(np.maximum(hmax - h, 0.0) / K_PUMP)
    q_sys = np.sqrt(np.maximum(h - H_STATIC, 0.0) / r)
    return h, q_pump, np.minimum(q_sys, q_pump)


def pump_physics(
    op: Profile, ctx: Context, f: dict[FaultType, np.ndarray], e: np.ndarray, lag: Lag
) -> dict[str, np.ndarray]:
    n = op.speed
    running = n > 0.02
    # NPSH required grows with speed²: cavitation fades when the pump slows down
    cav = f[FaultType.CAVITATION] * np.clip((n - 0.75) / 0.2, 0.0, 1.0)
    r = R_SYS / np.maximum(op.opening, 0.2) ** 2
    leak_c = 4.0 * f[FaultType.LEAK]
    h, q_pump, q = _pump_operating_point(n, r, leak_c, H0 * ctx.head_gain)
    h = h * (1.0 - 0.12 * cav + 0.05 * cav * e[..., 0])
    q = q * (1.0 - 0.10 * cav + 0.06 * cav * e[..., 1])
    # gauge pressure at the inlet: tank level less inlet losses (a clogging strainer in cavitation)
    p_suction = (
        BAR_PER_M * ctx.suction_head - 2.0e-5 * q_pump**2 - 0.45 * cav * (1 + 0.3 * e[..., 2])
    )
    p_discharge = p_suction + BAR_PER_M * h
    q_rel = np.where(running, q_pump / np.maximum(n, 1e-3), Q_BEP)
    off_bep = (q_rel - Q_BEP) / Q_BEP
    eta = np.clip(0.78 * ctx.eff_gain * (1.0 - 0.9 * off_bep**2), 0.3, 0.85)
    p_hyd = 9.81 * (q_pump / 3600.0) * h  # kW
    friction = 0.35 * n + 0.6 * f[FaultType.BEARING_WEAR] * n + 0.4 * f[FaultType.IMBALANCE] * n
    p_shaft = np.where(running, p_hyd / eta + friction, 0.0)
    p_elec = p_shaft / 0.92
    volts = ctx.supply_v
    i_load = p_elec * 1000.0 / (SQRT3 * volts * 0.86)
    current = np.where(running, np.sqrt(i_load**2 + 6.5**2), 0.0)
    volts = volts - 0.04 * current
    current = current * (1.0 + 0.03 * cav * e[..., 3])
    imb = 1.0 + 3.0 * f[FaultType.IMBALANCE]
    one_x = 1.7 * ctx.vib_gain * n**2 * imb
    hydraulic = 0.9 * off_bep**2 * n**2
    defect = 4.0 * f[FaultType.BEARING_WEAR] * n**2
    cav_vib = 2.5 * cav * (0.6 + np.abs(e[..., 0]))
    vib_x = np.sqrt(one_x**2 + hydraulic**2 + defect**2 + cav_vib**2 + 0.08**2)
    vib_y = np.sqrt((0.75 * one_x) ** 2 + (1.3 * hydraulic) ** 2 + (0.8 * defect) ** 2 + cav_vib**2)
    vib_y = np.sqrt(vib_y**2 + 0.08**2)
    p_full = 15.5
    fluid_target = ctx.process + np.where(running, 0.25 + 1.5 * (p_shaft - p_hyd) / 20.0, 0.0)
    fluid = lag("fluid", fluid_target, 2400.0)
    bearing_target = (
        ctx.ambient
        + ctx.temp_offset * (n > 0.02)
        + 0.35 * (fluid - ctx.ambient)
        + 26.0 * n**2
        + 14.0 * f[FaultType.BEARING_WEAR] * n**2
        + 3.0 * f[FaultType.IMBALANCE] * n**2
        + 32.0 * f[FaultType.OVERHEATING] * (p_elec / p_full) ** 2
    )
    bearing = lag("bearing", bearing_target, 720.0)
    return {
        "speed_rpm": n * PUMP_RPM,
        "flow_m3h": q,
        "suction_pressure_bar": p_suction,
        "discharge_pressure_bar": np.where(running, p_discharge, p_suction),
        "motor_current_a": current,
        "voltage_v": volts,
        "vibration_x_mm_s": vib_x,
        "vibration_y_mm_s": vib_y,
        "bearing_temp_c": bearing,
        "fluid_temp_c": fluid,
    }


PUMP = Kind(
    name="pump",
    sensors=(
        SensorSpec("speed_rpm", 1.0, 2.0, 300.0),
        SensorSpec("flow_m3h", 0.1, 0.6, 15.0),
        SensorSpec("suction_pressure_bar", 0.001, 0.004, 0.1, signed=True),
        SensorSpec("discharge_pressure_bar", 0.001, 0.012, 0.5),
        SensorSpec("motor_current_a", 0.01, 0.12, 4.0),
        SensorSpec("voltage_v", 0.1, 0.6, 8.0),
        SensorSpec("vibration_x_mm_s", 0.001, 0.04, 1.0, relative=True),
        SensorSpec("vibration_y_mm_s", 0.001, 0.04, 1.0, relative=True),
        SensorSpec("bearing_temp_c", 0.01, 0.15, 5.0, signed=True),
        SensorSpec("fluid_temp_c", 0.01, 0.08, 3.0, signed=True),
    ),
    levels={
        "high": Level(1.0, 1.0),
        "medium": Level(0.86, 0.9),
        "low": Level(0.68, 0.8),
        "safe": Level(0.68, 0.8),
    },
    physics=pump_physics,
    faults=frozenset(
        {
            FaultType.BEARING_WEAR,
            FaultType.CAVITATION,
            FaultType.LEAK,
            FaultType.IMBALANCE,
            FaultType.OVERHEATING,
        }
    ),
)

# --------------------------------------------------------------------------- fan
FAN_RPM = 1480.0
FAN_P0 = 1500.0  # shut-off static pressure at nominal speed, Pa
FAN_K = 3.4  # Pa per (m3/s)^2
DUCT_R = 7.0  # Pa per (m3/s)^2 at full damper opening


def fan_physics(
    op: Profile, ctx: Context, f: dict[FaultType, np.ndarray], e: np.ndarray, lag: Lag
) -> dict[str, np.ndarray]:
    n = op.speed
    running = n > 0.02
    r = DUCT_R / np.maximum(op.opening, 0.2) ** 2 / (1.0 + 0.6 * f[FaultType.LEAK])
    q_total = n * np.sqrt(FAN_P0 * ctx.head_gain / (FAN_K + r))
    p_static = r * q_total**2
    leak_share = 0.3 * f[FaultType.LEAK] / (1.0 + 0.3 * f[FaultType.LEAK])
    q = q_total * (1.0 - leak_share)  # the airflow station sits after the leak in the duct
    eta = 0.72 * ctx.eff_gain
    friction = 0.25 * n + 0.5 * f[FaultType.BEARING_WEAR] * n + 0.3 * f[FaultType.IMBALANCE] * n
    p_shaft = np.where(running, q_total * p_static / 1000.0 / eta + friction, 0.0)
    p_elec = p_shaft / 0.93
    volts = ctx.supply_v
    i_load = p_elec * 1000.0 / (SQRT3 * volts * 0.85)
    current = np.where(running, np.sqrt(i_load**2 + 5.0**2), 0.0)
    volts = volts - 0.04 * current
    imb = 1.0 + 3.0 * f[FaultType.IMBALANCE]
    one_x = 1.3 * ctx.vib_gain * n**2 * imb
    defect = 3.5 * f[FaultType.BEARING_WEAR] * n**2
    aero = 0.3 * n**2 * (1.0 - op.opening) ** 2
    vib_de = np.sqrt(one_x**2 + defect**2 + aero**2 + 0.06**2)
    vib_nde = np.sqrt((0.7 * one_x) ** 2 + (0.5 * defect) ** 2 + aero**2 + 0.06**2)
    p_full = 21.0
    load2 = (p_elec / p_full) ** 2
    motor_target = ctx.ambient + 45.0 * load2 + 5.0 * n + 40.0 * f[FaultType.OVERHEATING] * load2
    motor = lag("motor", motor_target, 1500.0)
    bearing_target = (
        ctx.ambient
        + ctx.temp_offset * (n > 0.02)
        + 0.3 * (motor - ctx.ambient)
        + 14.0 * n**2
        + 12.0 * f[FaultType.BEARING_WEAR] * n**2
        + 2.5 * f[FaultType.IMBALANCE] * n**2
    )
    bearing = lag("bearing", bearing_target, 1200.0)
    return {
        "speed_rpm": n * FAN_RPM,
        "airflow_m3s": q,
        "static_pressure_pa": p_static,
        "damper_pct": op.opening * 100.0,
        "motor_current_a": current,
        "voltage_v": volts,
        "vibration_de_mm_s": vib_de,
        "vibration_nde_mm_s": vib_nde,
        "bearing_temp_c": bearing,
        "motor_temp_c": motor,
    }


FAN = Kind(
    name="fan",
    sensors=(
        SensorSpec("speed_rpm", 1.0, 1.5, 150.0),
        SensorSpec("airflow_m3s", 0.01, 0.08, 2.0),
        SensorSpec("static_pressure_pa", 0.1, 4.0, 100.0),
        SensorSpec("damper_pct", 0.1, 0.2, 10.0),
        SensorSpec("motor_current_a", 0.01, 0.12, 4.0),
        SensorSpec("voltage_v", 0.1, 0.6, 8.0),
        SensorSpec("vibration_de_mm_s", 0.001, 0.04, 1.0, relative=True),
        SensorSpec("vibration_nde_mm_s", 0.001, 0.04, 1.0, relative=True),
        SensorSpec("bearing_temp_c", 0.01, 0.15, 5.0, signed=True),
        SensorSpec("motor_temp_c", 0.01, 0.15, 5.0, signed=True),
    ),
    levels={
        "high": Level(1.0, 1.0),
        "medium": Level(0.82, 0.85),
        "low": Level(0.62, 0.7),
        "safe": Level(0.62, 0.7),
    },
    physics=fan_physics,
    faults=frozenset(
        {FaultType.BEARING_WEAR, FaultType.LEAK, FaultType.IMBALANCE, FaultType.OVERHEATING}
    ),
)

KINDS: dict[str, Kind] = {k.name: k for k in (PUMP, FAN)}
