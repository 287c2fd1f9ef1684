"""Whatever arrives, in whatever order, redelivered or late, across restarts: a query of the
archive returns exactly the cells the input CSVs hold, value for value."""

from __future__ import annotations

import tempfile
from pathlib import Path

from archive_cells import archive_cells, input_cells
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import FsObjectStore
from cloud.archive import ArchivePolicy, ArchiveWriter
from cloud.batcher import Batcher, BatcherConfig
from edge import wire
from edge.clock import ManualClock

MIDNIGHT_S = 1_700_006_400  # 2023-11-15T00:00:00Z
BASE_MS = (MIDNIGHT_S - 900) * 1000  # windows on both sides of midnight

values = st.one_of(
    st.none(),
    st.integers(-(10**6), 10**6),
    st.floats(-1e15, 1e15, allow_nan=False, allow_infinity=False),
)
samples = st.builds(
    wire.Sample,
    st.integers(0, 1_800_000).map(lambda ms: BASE_MS + ms - ms % 250),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), values, min_size=1),
)
messages = st.builds(
    wire.Telemetry,
    st.sampled_from(["s1", "s2"]),
    st.sampled_from(["pump-1", "pump-2"]),
    st.sampled_from(["gw-1", "gw-2"]),
    st.integers(0, 40),
    st.lists(samples, min_size=1, max_size=4).map(tuple),
)
actions = st.one_of(
    st.tuples(st.just("send"), st.integers(0, 10_000)),
    st.tuples(st.just("advance"), st.integers(1, 400)),
    st.tuples(st.just("flush"), st.just(0)),
    st.tuples(st.just("archive"), st.just(0)),
    st.tuples(st.just("restart"), st.just(0)),
)


class Stack:
    def __init__(self, root: Path, clock: ManualClock) -> None:
        self.root, self.clock = root, clock
        self.start()

    def start(self) -> None:
        self.batcher = Batcher(
            FsObjectStore(self.root / "bucket", fsync=False),
            BatcherConfig(grace_s=5),
            self.clock,
            str(self.root / "spool.db"),
            archive=True,
        )
        policy = ArchivePolicy(flush_age_s=0, batch_readings=5, compact_parts=3)
        self.writer = ArchiveWriter(
            self.root / "bucket" / "archive", self.batcher.spool, self.clock, policy
        ).open()

    def kill(self) -> None:
        """A SIGKILL: nothing flushed on the way out."""
        self.writer._release()
        self.batcher.close()


@settings(max_examples=30, deadline=None)
@given(
    st.lists(messages, min_size=1, max_size=12),
    st.lists(actions, min_size=1, max_size=40),
)
def test_the_archive_holds_exactly_the_cells_of_the_input_files(
    sent: list[wire.Telemetry], steps: list[tuple[str, int]]
) -> None:
    clock = ManualClock(MIDNIGHT_S + 1000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stack = Stack(root, clock)
        # every message at least once, in the drawn order; "send" steps add redeliveries
        queue = list(range(len(sent)))
        for action, arg in steps:
            if action == "send":
                queue.append(arg % len(sent))
            elif action == "advance":
                clock.advance(arg)
            elif action == "flush":
                stack.batcher.flush_due()
            elif action == "archive":
                stack.writer.flush()
            elif action == "restart":
                stack.kill()
                stack.start()
            if queue and action != "send":
                m = sent[queue.pop(0)]
                stack.batcher.accept(m.topic, wire.encode(m))
        for index in queue:
            m = sent[index]
            stack.batcher.accept(m.topic, wire.encode(m))
        stack.batcher.flush_all()
        stack.writer.close()
        stack.batcher.close()
        files = input_cells(root / "bucket")
        assert archive_cells(root / "bucket" / "archive") == files
        sent_cells = {
            (m.site, m.asset, s.ts_ms, name)
            for m in sent
            for s in m.samples
            for name, v in s.values.items()
            if v is not None
        }
        assert set(files) == sent_cells
