"""Debounce: an alarm is raised after ``rows`` consecutive flagged rows and cleared after
``rows`` consecutive normal ones. Causal, so the streaming scorer and batch tools agree."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Debouncer:
    """Streaming form: feed flags one at a time (or in arrays) and keep the state."""

    rows: int = 1
    active: bool = False
    streak: int = 0
    """Consecutive rows disagreeing with ``active``."""

    def __post_init__(self) -> None:
        if self.rows < 1:
            raise ValueError("debounce rows must be >= 1")

    def update(self, flag: bool) -> bool:
        if bool(flag) != self.active:
            self.streak += 1
            if self.streak >= self.rows:
                self.active, self.streak = not self.active, 0
        else:
            self.streak = 0
        return self.active

    def run(self, flags: np.ndarray) -> np.ndarray:
        """:meth:`update` over *flags*, one run of equal flags at a time (a long series
        holds few runs), with the same result row by row."""
        flags = np.asarray(flags, dtype=bool)
        out = np.empty(len(flags), dtype=bool)
        edges = np.flatnonzero(flags[1:] != flags[:-1]) + 1
        for start, stop in zip(
            np.concatenate([[0], edges]), np.concatenate([edges, [len(flags)]]), strict=True
        ):
            if start >= stop:
                continue
            value, length = bool(flags[start]), int(stop - start)
            if value == self.active:
                out[start:stop], self.streak = value, 0
                continue
            flip = self.rows - self.streak - 1  # rows into this run before the state flips
            if flip < length:
                out[start : start + flip], out[start + flip : stop] = self.active, value
                self.active, self.streak = value, 0
            else:
                out[start:stop] = self.active
                self.streak += length
        return out


def debounce(flags: np.ndarray, rows: int) -> np.ndarray:
    """Batch form of :class:`Debouncer`, starting with the alarm cleared."""
    return Debouncer(rows).run(np.asarray(flags, dtype=bool))
