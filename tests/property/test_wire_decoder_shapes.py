"""The batcher's decoder per sensor set (``wire_decoder._shaped``) against the general one:
once a sensor set's decoder is learnt, any payload gives the same Readings (rows, columns,
table, times, value types) or the same WireFormatError as the general way, whatever it
holds (other sensors, a repeated or escaped key, values of any type or range)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud import wire_decoder
from cloud.adapters.local import InMemoryObjectStore
from cloud.batcher import Batcher, BatcherConfig
from edge import wire
from edge.clock import ManualClock
from edge.errors import WireFormatError

NAMES = st.lists(
    st.sampled_from(["a", "b", "c_1", "Z", "x.y", "d-2", "speed_rpm", "f0", "ts"]),
    min_size=1,
    max_size=5,
    unique=True,
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e15, -1e15, 1e15 + 1, 10**15, 10**15 + 1, -0.0, 0.0, 1e-5, 5e-324]),
    st.text(max_size=2),
)
CELLS = st.one_of(
    st.none(),
    st.integers(-(10**15), 10**15),
    st.floats(-wire.MAX_ABS_VALUE, wire.MAX_ABS_VALUE, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e-5, -1.5e-7, 1e-4, 1e15, -1e15, 10.0, 2.5, 1e14 + 0.5]),
)
"""Values the wire accepts."""
T0 = 1_700_000_000_000


def _key(name: str, escape: bool) -> str:
    if escape and name:
        return f'"\\u{ord(name[0]):04x}{name[1:]}"'
    return json.dumps(name)


@st.composite
def payloads(draw: st.DrawFn, names: list[str]) -> bytes:
    """A payload over *names*, each sample possibly with a sensor dropped or added, a key
    repeated or escaped, the keys in any order, and an extra field."""
    samples = []
    for i in range(draw(st.integers(1, 4))):
        keys = list(draw(st.permutations(names)))
        if draw(st.integers(0, 5)) == 0:
            keys.pop()
        if draw(st.integers(0, 5)) == 0:
            keys.append(draw(st.sampled_from(["extra", "a", "é", ""])))
        parts = []
        for key in keys:
            escape = draw(st.integers(0, 8)) == 0
            if draw(st.integers(0, 8)) == 0:  # repeated: the last one counts
                parts.append(f"{_key(key, escape)}:{json.dumps(draw(VALUES))}")
            parts.append(f"{_key(key, escape)}:{json.dumps(draw(VALUES))}")
        extra = ',"extra":1' if draw(st.integers(0, 8)) == 0 else ""
        ts = T0 + 1000 * i if draw(st.integers(0, 10)) else draw(st.sampled_from([-1, 1.5, "1"]))
        samples.append(f'{{"ts":{json.dumps(ts)},"values":{{{",".join(parts)}}}{extra}}}')
    site = draw(st.sampled_from(["s1", "s1", "bad site"]))
    version = draw(st.sampled_from([1, 1, 1, 2]))
    return (
        f'{{"v":{version},"site":"{site}","asset":"p","sender":"g","seq":3,'
        f'"samples":[{",".join(samples)}]}}'
    ).encode()


def outcome(payload: bytes) -> object:
    try:
        found = wire_decoder.decode_rows(payload)
    except WireFormatError as exc:
        return ("error", exc.reason, str(exc))
    types = [[type(v) for v in row] for row in found.table or []]
    return (*found[:4], list(found.rows), found.columns, found.table, found.times, types)


def learn(names: list[str]) -> None:
    """Decode one plain payload with *names*: its sensor set's decoder is learnt."""
    sample = wire.Sample(T0, {n: 1.5 for n in names})
    wire_decoder.decode_rows(wire.encode(wire.Telemetry("s1", "p", "g", 1, (sample,))))


@pytest.fixture(autouse=True)
def _fresh_shapes() -> None:
    wire_decoder._SHAPES.clear()
    wire_decoder._SHAPE_OF.clear()


@settings(max_examples=400, deadline=None)
@given(st.data(), NAMES)
def test_a_learnt_sensor_set_decodes_as_the_general_way(data: st.DataObject, names: list) -> None:
    payload = data.draw(payloads(names))
    general = outcome(payload)
    wire_decoder._SHAPES.clear()
    learn(names)
    [shape] = wire_decoder._SHAPES.values()
    key = wire_decoder._shape_key(payload)
    if key is not None:  # whatever the payload's first sensor, this decoder is tried first
        wire_decoder._SHAPES[key] = shape
    assert outcome(payload) == general


def test_the_learnt_decoder_is_the_one_used() -> None:
    names = ["b", "x.y", "a"]
    learn(names)
    payload = wire.encode(
        wire.Telemetry("s1", "p", "g", 2, (wire.Sample(T0, {"b": 2, "x.y": None, "a": -0.0}),))
    )
    taken = wire_decoder._shaped(*next(iter(wire_decoder._SHAPES.values())), payload)
    assert taken is not None
    assert taken.columns == ["a", "b", "x.y"] and taken.table == [(-0.0, 2, None)]
    assert taken.times == [T0] and list(taken.rows) == [(T0, {"a": -0.0, "b": 2, "x.y": None})]
    assert outcome(payload) == (
        "s1",
        "p",
        "g",
        2,
        [(T0, {"a": -0.0, "b": 2, "x.y": None})],
        ["a", "b", "x.y"],
        [(-0.0, 2, None)],
        [T0],
        [[float, int, type(None)]],
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.lists(
                st.tuples(st.integers(0, 600_000), st.lists(CELLS, min_size=3, max_size=3)),
                min_size=1,
                max_size=8,
                unique_by=lambda sample: sample[0],
            ),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_batcher_writes_the_same_files_through_either_decoder(messages: list) -> None:
    """Messages of one sensor set (some spanning two windows, some repeated or given with
    other values under the same id) give the same files and counts through the learnt
    decoder as through ``edge.wire.decode``."""
    outputs = []
    for decode in (wire.decode, wire_decoder.decode_rows):
        wire_decoder._SHAPES.clear()
        store = InMemoryObjectStore()
        batcher = Batcher(
            store,
            BatcherConfig(grace_s=0),
            ManualClock(T0 // 1000),
            decode=decode,
            dumps=wire_decoder.dumps,
        )
        for seq, drawn in messages:  # the windows split at offsets 100_000 and 400_000
            samples = tuple(
                wire.Sample(T0 + offset, dict(zip(["b", "a", "c.d"], values, strict=True)))
                for offset, values in sorted(drawn)
            )
            message = wire.Telemetry("s1", "pump", "dev", seq, samples)
            batcher.accept(message.topic, wire.encode(message))
        batcher.flush_all()
        files = {key: store.get(key) for key in store.list("")}
        outputs.append((files, batcher.stats))
    assert outputs[0] == outputs[1]
