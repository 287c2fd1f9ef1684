"""One telemetry message as the batcher takes it in: names and plain ``(ts_ms, values)`` rows.

Why not :class:`edge.wire.Telemetry`: its ``Sample`` objects are built only to be taken
apart again; a decoder that produces rows directly (:func:`cloud.wire_decoder.decode_rows`)
saves that per-sample work on the rules runner's hot path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, overload

from edge import wire

Row = tuple[int, Mapping[str, float | None]]


class Readings(NamedTuple):
    """A message the wire contract accepted. When every row has the same sensor names (a
    fleet's usual message), the decoder may also give them sorted as ``columns`` and each
    row's values in that order as ``table`` (:func:`cloud.batcher.csv_text.uniform_table`),
    which the CSV fragment then writes as they are, and the rows' ``ts_ms`` as ``times``."""

    site: str
    asset: str
    sender: str
    seq: int
    rows: Sequence[Row]
    columns: list[str] | None = None
    table: list[tuple[float | None, ...]] | None = None
    times: list[int] | None = None

    @property
    def msg_id(self) -> str:
        return f"{self.sender}:{self.seq}"


class TableRows(Sequence[Row]):
    """The rows of a uniform table, built only when someone reads them: a decoder that
    finds the table without per-sample dicts (the batcher's usual message needs only the
    table) hands these over as ``Readings.rows``. Equal to a list of the same rows."""

    __slots__ = ("_columns", "_table", "_times")

    def __init__(
        self, times: list[int], columns: list[str], table: list[tuple[float | None, ...]]
    ) -> None:
        self._times, self._columns, self._table = times, columns, table

    def __len__(self) -> int:
        return len(self._times)

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            return list(self)[index]
        return self._times[index], dict(zip(self._columns, self._table[index], strict=True))

    def __iter__(self) -> Iterator[Row]:
        columns = self._columns
        for ts_ms, values in zip(self._times, self._table, strict=True):
            yield ts_ms, dict(zip(columns, values, strict=True))

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, TableRows | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TableRows({list(self)!r})"


def from_telemetry(message: wire.Telemetry) -> Readings:
    return Readings(
        message.site,
        message.asset,
        message.sender,
        message.seq,
        [(sample.ts_ms, sample.values) for sample in message.samples],
    )
