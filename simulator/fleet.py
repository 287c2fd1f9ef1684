"""A simulated fleet stepping through time: samples on a fixed grid, commands, ground truth.

The fleet only generates; whoever drives it (the CLI's publisher, the demo, a benchmark)
hands each asset's samples to a sink such as the edge agent's ``submit``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from edge.wire import Sample
from simulator.asset import AssetGroup, AssetSpec, Block
from simulator.faults import Fault
from simulator.labels import Label
from simulator.physics import KINDS
from simulator.scenario import MIN_RATE_S, Scenario

Sink = Callable[[str, Sequence[Sample]], None]
"""Where a fleet's samples go: ``sink(asset, samples)`` (e.g. ``Agent.submit``)."""

__all__ = ["AssetSpec", "FleetSimulator", "Sink", "sensors"]


def sensors(kind: str) -> tuple[str, ...]:
    """Sensor (column) names of an equipment kind, in CSV and payload order."""
    return KINDS[kind].sensor_names


def to_samples(block: Block, sensor_names: tuple[str, ...]) -> list[Sample]:
    """Rows as wire samples; NaN (a lost reading) becomes ``None``."""
    ts = np.round(block.t * 1000.0).astype(np.int64).tolist()
    rows = block.values.tolist()
    for i in np.flatnonzero(np.isnan(block.values).any(axis=1)).tolist():
        rows[i] = [None if v != v else v for v in rows[i]]
    return [
        Sample(ts_ms=t, values=dict(zip(sensor_names, row, strict=True)))
        for t, row in zip(ts, rows, strict=True)
    ]


class FleetSimulator:
    """Assets sampled every *rate_s* from *start* (epoch s); faults from *scenario*.

    A scenario's ``[run] load`` holds every asset at that level instead of its daily
    schedule, so a short run shows the same regime whatever the time of day it starts.
    """

    def __init__(
        self,
        assets: Sequence[AssetSpec],
        scenario: Scenario | None,
        *,
        start: float,
        rate_s: float,
        seed: int = 0,
    ) -> None:
        if not rate_s >= MIN_RATE_S:
            raise ValueError(f"rate_s must be at least {MIN_RATE_S} s, got {rate_s}")
        names = [a.name for a in assets]
        if len(set(names)) != len(names):
            raise ValueError("asset names must be unique")
        for a in assets:
            if a.kind not in KINDS:
                raise ValueError(f"asset {a.name}: unknown kind {a.kind!r}")
        self.assets = tuple(assets)
        self.scenario = scenario
        self.start = float(start)
        self.rate_s = float(rate_s)
        self._start_ms = round(start * 1000)
        self._rate_ms = round(rate_s * 1000)
        self._k = 0
        self._lock = threading.Lock()
        """step and set_mode may come from different threads (a shadow callback)."""
        """Index of the last generated grid point (0 = start itself, never emitted)."""
        faults: list[Fault] = []
        if scenario is not None:
            scenario.check_assets(self.assets)
            faults = scenario.resolve(self.start)
        self.faults = faults
        by_kind: dict[str, list[AssetSpec]] = {}
        for a in assets:
            by_kind.setdefault(a.kind, []).append(a)
        load = scenario.load if scenario is not None else None
        self._groups = [
            AssetGroup(specs, faults, rate_s=rate_s, seed=seed, load=load)
            for specs in by_kind.values()
        ]
        self._where = {
            name: (group, i) for group in self._groups for i, name in enumerate(group.names)
        }

    @property
    def now(self) -> float:
        """Time of the last generated sample (the run start before the first step)."""
        return (self._start_ms + self._k * self._rate_ms) / 1000.0

    def sensors(self, kind: str) -> tuple[str, ...]:
        return sensors(kind)

    def step_blocks(self, until: float) -> dict[str, Block]:
        """Like :meth:`step` but as arrays: the fast path for benchmarks and bulk use."""
        with self._lock:
            last_k = (round(until * 1000) - self._start_ms) // self._rate_ms
            if last_k <= self._k:
                return {}
            ks = np.arange(self._k + 1, last_k + 1, dtype=np.int64)
            t = (self._start_ms + ks * self._rate_ms) / 1000.0
            self._k = int(last_k)
            out: dict[str, Block] = {}
            for group in self._groups:
                values, mode = group.generate(t)
                for i, name in enumerate(group.names):
                    out[name] = Block(t, values[i], mode[i])
            return {a.name: out[a.name] for a in self.assets}

    def step(self, until: float) -> dict[str, list[Sample]]:
        """Every asset's samples with timestamps in ``(last, until]``; empty if none are due."""
        blocks = self.step_blocks(until)
        return {
            name: to_samples(block, self._where[name][0].sensors) for name, block in blocks.items()
        }

    def set_mode(self, asset: str, mode: str) -> None:
        """Apply a shadow command from the current simulated time on.

        ``safe`` caps the load at the low level (less speed: less vibration, less heat);
        ``stop`` shuts down along the normal shutdown ramp; ``normal`` resumes the schedule.
        """
        try:
            group, index = self._where[asset]
        except KeyError:
            raise ValueError(f"unknown asset {asset!r}") from None
        with self._lock:
            group.set_mode(index, self.now, mode)

    def mode(self, asset: str) -> str:
        """The command mode in force (``normal``, ``safe`` or ``stop``)."""
        group, index = self._where[asset]
        return group.command_mode(index)

    def labels(self) -> list[Label]:
        """Ground truth so far: faults with onset at or before now, clipped to now."""
        now = self.now
        out = []
        for f in self.faults:
            if f.start > now:
                continue
            end = f.label_end
            out.append(
                Label(f.start, now if end is None else min(end, now), f.code, f.asset, f.notes)
            )
        return out
