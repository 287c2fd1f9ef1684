"""SqliteBuffer against a model: any mix of put, form, ack and crash-reopen keeps every
reading exactly once (queued or sent), messages immutable, and per-asset order."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from edge.buffer import SqliteBuffer
from edge.clock import ManualClock
from edge.wire import Sample, Telemetry

ASSETS = ("a", "b")


class BufferModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="pw-buffer-model-"))
        self.clock = ManualClock()
        self.buf = SqliteBuffer(self.dir / "q.db", self.clock)
        self.next_ts = 1_700_000_000_000
        self.unformed: dict[str, list[int]] = {a: [] for a in ASSETS}
        self.formed: dict[int, Telemetry] = {}
        self.sent = 0
        self.last_formed_ts: dict[str, int] = {}

    @rule(asset=st.sampled_from(ASSETS), n=st.integers(1, 30))
    def put(self, asset: str, n: int) -> None:
        samples = [Sample(self.next_ts + i, {"x": float(self.next_ts + i)}) for i in range(n)]
        self.next_ts += n
        self.buf.put(asset, samples)
        self.unformed[asset] += [s.ts_ms for s in samples]

    @rule(asset=st.sampled_from(ASSETS), most=st.integers(1, 40))
    def form(self, asset: str, most: int) -> None:
        message = self.buf.form("s", "gw", asset, max_samples=most)
        expected = self.unformed[asset][:most]
        if not expected:
            assert message is None
            return
        assert message is not None and message.seq not in self.formed
        assert [s.ts_ms for s in message.samples] == expected  # oldest first, per asset
        assert all(seq < message.seq for seq in self.formed)  # seq only grows
        self.unformed[asset] = self.unformed[asset][len(expected) :]
        self.formed[message.seq] = message

    @precondition(lambda self: bool(self.formed))
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(sorted(self.formed)))
        assert self.buf.ack([seq]) == len(self.formed[seq].samples)
        self.sent += len(self.formed.pop(seq).samples)
        assert self.buf.ack([seq]) == 0  # a second PUBACK for the same message is harmless

    @rule()
    def crash_and_reopen(self) -> None:
        self.buf._db.close()  # no orderly close, as after SIGKILL
        self.buf = SqliteBuffer(self.dir / "q.db", self.clock)
        assert [seq for seq, _a in self.buf.formed()] == sorted(self.formed)
        for seq, message in self.formed.items():
            assert self.buf.message("s", "gw", seq) == message  # same msg_id, same readings

    @invariant()
    def every_reading_is_accounted_for(self) -> None:
        stats = self.buf.stats()
        queued = sum(map(len, self.unformed.values())) + sum(
            len(m.samples) for m in self.formed.values()
        )
        assert stats.depth == queued
        assert stats.sent == self.sent
        assert stats.dropped == 0

    def teardown(self) -> None:
        self.buf.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TestBufferModel = BufferModel.TestCase
TestBufferModel.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
