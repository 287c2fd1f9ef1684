"""The L4E off condition (§7): ``component\\sensor < 1`` marks rows where the machine is off."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cloud.l4e.naming import plain_sensor
from edge.errors import ConfigError

_RE = re.compile(
    r"^\s*(?P<sensor>[0-9A-Za-z._\-]+(?:\\[0-9A-Za-z._\\\-]+)?)\s*(?P<op>[<>])\s*"
    r"(?P<value>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*$",
    re.ASCII,  # ASCII digits: float() also reads Arabic-Indic or fullwidth ones
)
"""A component name holds no ``\\`` and a column name may (l4e-contracts §1.1): the
component ends at the first ``\\`` and the sensor's column name is all the rest."""


@dataclass(frozen=True, slots=True)
class OffCondition:
    """One comparison; ``sensor`` is ``component\\sensor`` as written by the user."""

    sensor: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> OffCondition:
        if not 1 <= len(text) <= 2048:
            raise ConfigError(f"OffCondition {text!r}: expected 1 to 2048 characters")
        match = _RE.fullmatch(text)
        if not match:
            raise ConfigError(
                f"OffCondition {text!r}: expected 'component\\sensor < number' or "
                "'component\\sensor > number' (one condition)"
            )
        value = float(match["value"])
        if not math.isfinite(value):  # 1e999: every reading would be "off" (or none)
            raise ConfigError(f"OffCondition {text!r}: {match['value']} is not a finite number")
        return cls(match["sensor"], match["op"], value)

    def __str__(self) -> str:
        return f"{self.sensor} {self.op} {self.value:g}"

    @property
    def plain_sensor(self) -> str:
        """The column name alone: after the component's ``\\``, itself holding any more."""
        return plain_sensor(self.sensor)

    def column(self, frame: pd.DataFrame) -> str:
        """The frame column holding the condition's sensor: full name first, then plain."""
        for name in (self.sensor, self.plain_sensor):
            if name in frame.columns:
                return name
        raise ConfigError(
            f"OffCondition {self}: sensor {self.sensor!r} not in the data "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """True where the machine is off; a missing reading does not count as off."""
        values = frame[self.column(frame)].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            return values < self.value if self.op == "<" else values > self.value
