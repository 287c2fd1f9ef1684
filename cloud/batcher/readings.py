"""One telemetry message as the batcher takes it in: names and plain ``(ts_ms, values)`` rows.

Why not :class:`edge.wire.Telemetry`: its ``Sample`` objects are built only to be taken
apart again; a decoder that produces rows directly (:func:`cloud.wire_decoder.decode_rows`)
saves that per-sample work on the rules runner's hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from edge import wire

Row = tuple[int, Mapping[str, float | None]]


class Readings(NamedTuple):
    """A message the wire contract accepted. ``uniform`` is True when every row has the same
    sensor names (a fleet's usual message), which lets the CSV fragment skip a per-row
    check; False only says it was not checked."""

    site: str
    asset: str
    sender: str
    seq: int
    rows: list[Row]
    uniform: bool = False

    @property
    def msg_id(self) -> str:
        return f"{self.sender}:{self.seq}"


def from_telemetry(message: wire.Telemetry) -> Readings:
    return Readings(
        message.site,
        message.asset,
        message.sender,
        message.seq,
        [(sample.ts_ms, sample.values) for sample in message.samples],
    )
