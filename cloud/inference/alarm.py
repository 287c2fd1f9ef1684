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
        if self.rows == 1:
            out = np.asarray(flags, dtype=bool).copy()
            if len(out):
                self.active, self.streak = bool(out[-1]), 0
            return out
        return np.fromiter((self.update(f) for f in flags), dtype=bool, count=len(flags))


def debounce(flags: np.ndarray, rows: int) -> np.ndarray:
    """Batch form of :class:`Debouncer`, starting with the alarm cleared."""
    return Debouncer(rows).run(np.asarray(flags, dtype=bool))
