"""The batcher as ``plantwatch up`` runs it (the msgspec decoder and encoder), and as the
Lambda runs it, on a mix of good and hostile messages: every message is accepted, a
duplicate, or quarantined with a reason, the counts add up, and the files hold exactly the
accepted readings, cell for cell as an independent rendering writes them (``Timestamp``
then the sensors sorted; a whole number without ``.0``, any other the shortest repr; on a
sensor two messages give for one timestamp, the larger ``sender:seq`` wins, and a value
beats a null)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud import wire_decoder
from cloud.adapters.local import InMemoryObjectStore
from cloud.batcher import Batcher, BatcherConfig
from cloud.batcher.csv_text import json_dumps
from cloud.l4e.naming import window_end
from edge import wire
from edge.clock import ManualClock
from edge.errors import WireFormatError

T0_MS = 1_700_000_100_000
SENSORS = ["a", "B", "x.y", "z-1", "_u", "a0", "A"]
VALUES = st.one_of(
    st.none(),
    st.integers(-(10**15), 10**15),
    st.floats(-1e15, 1e15, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e-05, -1.5e-07, 5e-324, 10.0, 1e15, -1e15, 0.1, 123456.5]),
)
HOSTILE = st.sampled_from(
    [
        b"",
        b"\xef\xbb\xbf{}",
        b"[" * 3000,
        b'{"v":1}',
        b"\xff\xfe{",
        b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,"samples":[{"ts":NaN,"values":{"a":1}}]}',
        b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,"samples":[{"ts":1700000100000,"values":{"a,b":1}}]}',
        b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,"samples":[{"ts":1700000100000,"values":{"a\\n":1}}]}',
        b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,"samples":[{"ts":1700000100000,"values":{"a":Infinity}}]}',
        b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,"samples":[{"ts":1700000100000.5,"values":{"a":1}}]}',
        b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,"samples":[{"ts":1700000100000,"values":{"a":1e309}}]}',
        b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,"samples":[{"ts":1700000100000,"values":{"timestamp":1}}]}',
        b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,"note":"\xff","samples":[{"ts":1700000100000,"values":{"a":1}}]}',
        b'{"v":1,"site":"s1","asset":"fan","sender":"d","seq":1,"samples":[{"ts":1700000100000,"values":{"a":1}}]}',
        b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,"samples":[{"ts":1700000100000,"values":{"a":"1"}}]}',
        b'{"v":1,"site":"s1","asset":"pump","sender":"d","seq":1,"samples":[{"ts":1,"values":{"a":1}}]}',
    ]
)
TOPIC = wire.telemetry_topic("s1", "pump")


@st.composite
def good_message(draw: st.DrawFn, seq: int) -> bytes:
    samples = []
    for _ in range(draw(st.integers(1, 5))):
        names = draw(st.lists(st.sampled_from(SENSORS), min_size=1, max_size=4, unique=True))
        values = {name: draw(VALUES) for name in names}
        ts = T0_MS + draw(st.integers(0, 6)) * 100_000  # three windows, timestamps shared
        samples.append({"ts": ts, "values": values})
    doc = {
        "v": 1,
        "site": "s1",
        "asset": "pump",
        "sender": draw(st.sampled_from(["d", "d-2", "e"])),
        "seq": seq,
        "samples": samples,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


@st.composite
def deliveries(draw: st.DrawFn) -> list[bytes]:
    count = draw(st.integers(1, 12))
    good = [draw(good_message(seq)) for seq in range(count)]  # one content per sender:seq
    bad = draw(st.lists(HOSTILE, max_size=6))
    again = draw(st.lists(st.sampled_from(good), max_size=4))  # redeliveries
    return draw(st.permutations(good + bad + again))


def cell(value: float | None) -> str:
    if value is None:
        return ""
    if float(value) == int(float(value)) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def expected_files(payloads: list[bytes]) -> list[bytes]:
    """The files, from the contract's own decoder and a rendering written here."""
    accepted: dict[str, wire.Telemetry] = {}
    for payload in payloads:
        try:
            message = wire.decode(payload)
        except WireFormatError:
            continue
        if message.asset == "pump":  # a redelivery has the same id and content
            accepted[f"{message.sender}:{message.seq:020d}"] = message
    rows: dict[int, dict[int, dict[str, float | None]]] = {}
    for order in sorted(accepted):  # later (larger id, or later in a message) wins
        for sample in accepted[order].samples:
            end = int(window_end(sample.ts_ms / 1000, 300))
            row = rows.setdefault(end, {}).setdefault(sample.ts_ms, {})
            for name, value in sample.values.items():
                if value is not None or name not in row:
                    row[name] = value
    files = []
    for window in rows.values():
        sensors = sorted({name for row in window.values() for name in row})
        lines = [",".join(["Timestamp", *sensors])]
        for ts_ms in sorted(window):
            at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts_ms)
            cells = [cell(window[ts_ms].get(n)) for n in sensors]
            lines.append(",".join([at.strftime("%Y-%m-%dT%H:%M:%S.%f"), *cells]))
        files.append(("\n".join(lines) + "\n").encode())
    return sorted(files)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries(), st.booleans())
def test_hostile_and_good_messages_mixed_give_exactly_the_accepted_readings(
    payloads: list[bytes], compiled: bool
) -> None:
    """*compiled*: the decoder and encoder ``plantwatch up`` runs; else the pure Python
    ones a Lambda bundle carries."""
    store = InMemoryObjectStore()
    batcher = Batcher(
        store,
        BatcherConfig(grace_s=0),
        ManualClock(T0_MS / 1000),
        decode=wire_decoder.decode_rows if compiled else wire.decode,
        dumps=wire_decoder.dumps if compiled else json_dumps,
    )
    for payload in payloads:
        batcher.accept(TOPIC, payload)
    batcher.flush_all()
    stats = batcher.stats
    assert stats["accepted"] + stats["duplicates"] + stats["quarantined"] == len(payloads)
    quarantined = [json.loads(store.get(k)) for k in store.list("quarantine/")]
    assert len(quarantined) == stats["quarantined"]
    assert all(r["reason"] and r["error"] for r in quarantined)
    files = sorted(store.get(k) for k in store.list("input/"))
    assert files == expected_files(payloads)
