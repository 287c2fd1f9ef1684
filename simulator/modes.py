"""Operating schedule: shift load cycles, weekend patterns, idle periods, start-up and shutdown.

A schedule is a pure function of time and seed (each UTC day is drawn from its own seeded
generator), so history and the live fleet agree on what an asset was doing at any instant,
however the time axis is cut into chunks. Shadow commands (``safe``, ``stop``) are overrides
laid over the schedule from the moment they arrive.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge import commands

DAY_S = 86_400.0
STARTUP_S = 300.0
"""Soft-starter / VFD ramp from standstill to the first load level."""
SHUTDOWN_S = 120.0
CHANGE_S = 180.0
"""Ramp between two running load levels."""

MODES = ("off", "startup", "shutdown", "low", "medium", "high", "safe")
"""Mode codes, by index, of :func:`speed_profile`'s mode array."""
COMMAND_MODES = commands.MODES
"""The ``mode`` command's values, from the shared command catalogue."""
LOADS = ("low", "medium", "high")
"""Steady load levels of every kind's schedule."""


@dataclass(frozen=True, slots=True)
class Level:
    """A steady operating point: speed fraction of nominal and valve/damper opening."""

    speed: float
    opening: float


@dataclass(frozen=True, slots=True)
class Profile:
    """Per-sample operating point."""

    speed: np.ndarray
    """Fraction of nominal speed (0 = stopped)."""
    opening: np.ndarray
    """Valve (pump) or damper (fan) opening, 0..1."""
    mode: np.ndarray
    """Index into :data:`MODES`."""


def _day_rng(seed: int, kind: str, day: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(kind.encode()), day])


def day_segments(
    seed: int, kind: str, day: int, levels: dict[str, Level]
) -> list[tuple[float, str, float, float]]:
    """The segments ``(start, mode, speed, opening)`` of one UTC day (day = days since epoch)."""
    return list(_day_segments(seed, kind, day, tuple(sorted(levels.items()))))


@functools.lru_cache(maxsize=4096)
def _day_segments(
    seed: int, kind: str, day: int, level_items: tuple[tuple[str, Level], ...]
) -> tuple[tuple[float, str, float, float], ...]:
    levels = dict(level_items)
    rng = _day_rng(seed, kind, day)
    base = day * DAY_S
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    jitter = rng.normal(0.0, 900.0, size=4)
    if weekday < 5:
        plan = [(0.0, "low"), (6 * 3600 + jitter[0], "high"), (14 * 3600 + jitter[1], "medium")]
        plan.append((22 * 3600 + jitter[2], "low"))
    else:
        plan = [(0.0, "low"), (8 * 3600 + jitter[0], "medium"), (20 * 3600 + jitter[1], "low")]
        if rng.random() < 0.5:
            plan.insert(1, (2 * 3600 + jitter[2], "off"))
            plan.insert(2, (5 * 3600 + jitter[3], "low"))
    if rng.random() < 0.08:
        stop_at = float(rng.uniform(1 * 3600, 23 * 3600))
        length = float(rng.uniform(20 * 60, 90 * 60))
        resume = next((m for s, m in reversed(plan) if s <= stop_at + length), "low")
        plan = [p for p in plan if not stop_at <= p[0] < stop_at + length]
        plan += [(stop_at, "off"), (stop_at + length, resume)]
        plan.sort()
    out = []
    for start, mode in plan:
        if mode == "off":
            out.append((base + start, mode, 0.0, 0.0))
        else:
            level = levels[mode]
            speed = level.speed * (1.0 + float(rng.normal(0.0, 0.01)))
            out.append((base + start, mode, speed, level.opening))
    return tuple(out)


def speed_profile(
    t: np.ndarray,
    seed: int,
    kind: str,
    levels: dict[str, Level],
    overrides: Sequence[tuple[float, str]] = (),
    load: str | None = None,
) -> Profile:
    """Speed, opening and mode at each time of *t* (epoch seconds, ascending).

    *overrides* are ``(time, command_mode)``: ``safe`` caps the load at the ``safe`` level,
    ``stop`` shuts down, ``normal`` hands control back to the schedule. *load* (a level
    name) replaces the daily schedule by that steady level, e.g. a production campaign.
    """
    first_day = int(np.floor(t[0] / DAY_S)) - 1
    last_day = int(np.floor(t[-1] / DAY_S))
    segs: list[tuple[float, str, float, float]] = []
    if load is not None:
        level = levels[load]
        segs.append((first_day * DAY_S, load, level.speed, level.opening))
    else:
        for day in range(first_day, last_day + 1):
            segs.extend(day_segments(seed, kind, day, levels))
    segs = _apply_overrides(segs, overrides, levels["safe"])
    starts = np.array([s[0] for s in segs])
    target_speed = np.array([s[2] for s in segs])
    target_open = np.array([s[3] for s in segs])
    seg_mode = np.array([MODES.index(s[1]) for s in segs])
    # speed at each segment start: where the previous ramp had got to
    init_speed = np.zeros(len(segs))
    init_open = np.zeros(len(segs))
    ramp = np.full(len(segs), CHANGE_S)
    for i in range(1, len(segs)):
        ramp_prev = ramp[i - 1]
        frac = min(1.0, (starts[i] - starts[i - 1]) / ramp_prev)
        init_speed[i] = init_speed[i - 1] + (target_speed[i - 1] - init_speed[i - 1]) * frac
        init_open[i] = init_open[i - 1] + (target_open[i - 1] - init_open[i - 1]) * frac
        if init_speed[i] <= 0.0 and target_speed[i] > 0:
            ramp[i] = STARTUP_S
        elif target_speed[i] <= 0.0:
            ramp[i] = SHUTDOWN_S
    # the first segment of the lookback day starts in steady state
    init_speed[0], init_open[0] = target_speed[0], target_open[0]
    idx = np.searchsorted(starts, t, side="right") - 1
    frac = np.clip((t - starts[idx]) / ramp[idx], 0.0, 1.0)
    speed = init_speed[idx] + (target_speed[idx] - init_speed[idx]) * frac
    opening = init_open[idx] + (target_open[idx] - init_open[idx]) * frac
    mode = seg_mode[idx].copy()
    ramping = frac < 1.0
    mode[ramping & (init_speed[idx] <= 0.0) & (target_speed[idx] > 0)] = MODES.index("startup")
    mode[ramping & (target_speed[idx] <= 0.0) & (init_speed[idx] > 0)] = MODES.index("shutdown")
    return Profile(speed=speed, opening=opening, mode=mode)


def _apply_overrides(
    segs: list[tuple[float, str, float, float]],
    overrides: Sequence[tuple[float, str]],
    safe: Level,
) -> list[tuple[float, str, float, float]]:
    if not overrides:
        return segs
    cuts = sorted({s[0] for s in segs} | {o[0] for o in overrides})
    sched_starts = [s[0] for s in segs]
    ov_times = [o[0] for o in overrides]
    out: list[tuple[float, str, float, float]] = []
    for cut in cuts:
        sched = segs[max(0, int(np.searchsorted(sched_starts, cut, side="right")) - 1)]
        k = int(np.searchsorted(ov_times, cut, side="right")) - 1
        command = overrides[k][1] if k >= 0 else "normal"
        if command == "stop":
            seg = (cut, "off", 0.0, 0.0)
        elif command == "safe" and sched[2] > 0:
            seg = (cut, "safe", min(sched[2], safe.speed), min(sched[3], safe.opening))
        else:
            seg = (cut, sched[1], sched[2], sched[3])
        if out and out[-1][1:] == seg[1:]:
            continue
        out.append(seg)
    return out
