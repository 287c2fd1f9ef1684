"""Any number a client sends either decodes within the documented bounds or is refused with a
WireFormatError; nothing else escapes ``wire.decode`` (an OverflowError used to reach the
batcher and block a Lambda shard)."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from edge import wire
from edge.errors import WireFormatError

NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**500), max_value=10**500),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)


def _payload(seq: object, ts: object, value: object) -> bytes:
    doc = {
        "v": 1,
        "site": "s1",
        "asset": "pump",
        "sender": "dev",
        "seq": seq,
        "samples": [{"ts": ts, "values": {"a": value}}],
    }
    return json.dumps(doc).encode()  # NaN and Infinity literals, as a careless client sends


@given(seq=NUMBERS, ts=NUMBERS, value=NUMBERS)
def test_decode_accepts_only_bounded_numbers(seq: object, ts: object, value: object) -> None:
    try:
        message = wire.decode(_payload(seq, ts, value))
    except WireFormatError as exc:
        assert exc.reason in {
            "bad_json",
            "bad_schema",
            "bad_timestamp",
            "bad_value_type",
            "non_finite",
            "out_of_range",
        }
        return
    assert 0 <= message.seq <= wire.MAX_SEQ
    [sample] = message.samples
    assert wire.TS_MIN_MS <= sample.ts_ms < wire.TS_MAX_MS
    got = sample.values["a"]
    assert got is None or (
        not isinstance(got, bool)
        and math.isfinite(float(got))
        and abs(float(got)) <= wire.MAX_ABS_VALUE
    )
    assert wire.decode(wire.encode(message)) == message
