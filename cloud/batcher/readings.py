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
    """A message the wire contract accepted. When every row has the same sensor names (a
    fleet's usual message), the decoder may also give them sorted as ``columns`` and each
    row's values in that order as ``table`` (:func:`cloud.batcher.csv_text.uniform_table`),
    which the CSV fragment then writes as they are."""

    site: str
    asset: str
    sender: str
    seq: int
    rows: list[Row]
    columns: list[str] | None = None
    table: list[tuple[float | None, ...]] | None = None

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
