"""Any name the wire contract lets through reaches the archive and comes back from a query
cell for cell: sites and assets at the edges of ``NAME_RE``, sensors that are SQL keywords,
the archive's own column names, ``Timestamp``, dots, or differ only by case."""

from __future__ import annotations

import tempfile
from pathlib import Path

from archive_cells import archive_cells, input_cells
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import FsObjectStore
from cloud.archive import ArchiveWriter
from cloud.batcher import Batcher, BatcherConfig
from edge import wire
from edge.clock import ManualClock

MIDNIGHT_S = 1_700_006_400  # 2023-11-15T00:00:00Z
TRICKY_SENSORS = [
    "Timestamp", "timestamp", "ts", "sensor", "value", "site", "asset", "date", "select",
    "from", "Temp", "temp", "TEMP", ".", "..", "-", "_", "a.b", "x" * 200,
]  # fmt: skip

names = st.one_of(
    st.sampled_from(["s1", "-", "_", "A", "a" * 128, "site-2_B", "0"]),
    st.from_regex(wire.NAME_RE, fullmatch=True),
)
sensors = st.one_of(st.sampled_from(TRICKY_SENSORS), st.from_regex(wire.SENSOR_RE, fullmatch=True))
values = st.one_of(
    st.none(),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, 2.0**53 + 1]),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=25, deadline=None)
@given(
    site=names,
    asset=names,
    columns=st.lists(sensors, min_size=1, max_size=5, unique=True),
    cells=st.lists(values, min_size=1, max_size=5),
    offsets=st.lists(st.integers(-600, 600), min_size=1, max_size=4, unique=True),
)
def test_any_wire_name_round_trips_through_the_archive(
    site: str, asset: str, columns: list[str], cells: list, offsets: list[int]
) -> None:
    clock = ManualClock(MIDNIGHT_S + 3600)
    with tempfile.TemporaryDirectory() as tmp:
        bucket = Path(tmp) / "bucket"
        batcher = Batcher(
            FsObjectStore(bucket, fsync=False),
            BatcherConfig(grace_s=0),
            clock,
            str(Path(tmp) / "spool.db"),
            archive=True,
        )
        writer = ArchiveWriter(bucket / "archive", batcher.spool, clock).open()
        for seq, offset in enumerate(offsets):  # both sides of midnight
            sample = wire.Sample(
                (MIDNIGHT_S + offset) * 1000,
                {name: cells[(seq + i) % len(cells)] for i, name in enumerate(columns)},
            )
            m = wire.Telemetry(site, asset, "gw", seq + 1, (sample,))
            batcher.accept(m.topic, wire.encode(m))
        batcher.flush_all()
        writer.close()
        assert writer.counts["flush_errors"] == 0
        batcher.close()
        assert archive_cells(bucket / "archive") == input_cells(bucket)
