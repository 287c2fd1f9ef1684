"""The CSV bytes of a wire payload, whatever text its numbers are spelt in: the batcher's
fast road (``wire_decoder.decode_rows``, the learnt per-sensor-set decoder, a fragment
written by msgspec and substitutions) gives byte for byte what the reference gives
(``edge.wire.decode``, the stdlib parser, then ``csv_text.cell`` on every value).

The numbers are drawn as the text a device might send, not only as Python writes them:
ints where the value is whole, ``-0``, trailing zeros (``1.50``, ``10.000``), exponents in
either case and sign (``1E+2``, ``5e-324``), 17 significant digits, magnitudes at and near
the 1e15 bound, below 1e-4 and subnormal."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud import wire_decoder
from cloud.batcher.csv_text import (
    fragment,
    join_fragments,
    merge_rows,
    render_rows,
)
from cloud.batcher.spool import Chunk
from edge import wire

T0_MS = 1_652_443_800_000
BOUND = wire.MAX_ABS_VALUE

FLOATS = st.one_of(
    st.floats(-BOUND, BOUND, allow_nan=False, allow_infinity=False),
    st.floats(-1e-3, 1e-3, allow_nan=False, allow_infinity=False),  # near and below 1e-4
    st.sampled_from(
        [
            0.0,
            -0.0,
            1e-4,
            9.999999999999999e-05,
            1e-5,
            5e-324,
            2.2250738585072014e-308,
            1e15,
            -1e15,
            999999999999999.9,
            1e14 + 0.5,
            0.1 + 0.2,
            10.0,
            2584.0,
            -7.25,
        ]
    ),
)
INTS = st.one_of(
    st.integers(-(10**15), 10**15),
    st.sampled_from([0, 10**15, -(10**15), 10**15 - 1, 100, -10]),
)


@st.composite
def spellings(draw: st.DrawFn) -> str:
    """One JSON number (or null) within the wire's bounds, spelt any valid way."""
    kind = draw(st.sampled_from(["float", "int", "int_as_float", "null"]))
    if kind == "null":
        return "null"
    if kind == "int":
        n = draw(INTS)
        return draw(st.sampled_from([str(n), "-0" if n == 0 else str(n)]))
    if kind == "int_as_float":
        n = draw(INTS)
        return draw(st.sampled_from([f"{n}.0", f"{n}.000", f"{n}e0", f"{n}E+00"]))
    x = draw(FLOATS)
    form = draw(st.sampled_from(["repr", "17g", "trailing", "E", "e+"]))
    if form == "repr":
        return repr(x)
    if form == "17g":
        return f"{x:.17g}"
    if form == "trailing":
        text = repr(x)
        return text + "000" if "e" not in text else text.replace("e", "0e", 1)
    if form == "E":
        return f"{x:.15E}"
    return f"{x:.12e}"


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """A telemetry payload whose samples have the same sensors (in any order each)."""
    names = draw(
        st.lists(
            st.sampled_from(["a", "b", "c_1", "Z", "speed_rpm", "f0"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    times = draw(st.lists(st.integers(0, 599_999), min_size=1, max_size=6, unique=True))
    samples = []
    for offset in sorted(times):
        order = draw(st.permutations(names))
        cells = ",".join(f'"{name}":{draw(spellings())}' for name in order)
        samples.append(f'{{"ts":{T0_MS + offset},"values":{{{cells}}}}}')
    seq = draw(st.integers(0, 1000))
    head = f'{{"v":1,"site":"s1","asset":"p1","sender":"dev","seq":{seq},"samples":['
    return (head + ",".join(samples) + "]}").encode()


def _reference(payload: bytes) -> bytes:
    message = wire.decode(payload)
    samples = [(s.ts_ms, dict(s.values)) for s in message.samples]
    return render_rows(merge_rows([Chunk("p1", 0, "m", samples)]))


def _fast(payload: bytes) -> bytes:
    readings = wire_decoder.decode_rows(payload)
    body = fragment(
        readings.rows,
        wire_decoder.dumps,
        columns=readings.columns,
        table=readings.table,
        times=readings.times,
    )
    joined = join_fragments([body])
    assert joined is not None
    return joined[0]


@settings(max_examples=400, deadline=None)
@given(payloads())
def test_the_fast_road_writes_the_reference_bytes_for_any_number_spelling(
    payload: bytes,
) -> None:
    expected = _reference(payload)
    assert _fast(payload) == expected  # the general decoder (or a learnt one)
    assert _fast(payload) == expected  # the sensor set's decoder, learnt by now


def test_spellings_that_are_not_their_cell_are_rewritten() -> None:
    samples = ",".join(
        f'{{"ts":{T0_MS + i * 1000},"values":{{"a":{a},"b":{b}}}}}'
        for i, (a, b) in enumerate(
            [
                ("-0", "-0.0"),
                ("1.50", "10.000"),
                ("1E+2", "1e-5"),
                ("1e15", "1000000000000000"),
                ("0.30000000000000004", "0.10000000000000001"),
                ("5e-324", "2584.0"),
            ]
        )
    )
    payload = (
        '{"v":1,"site":"s1","asset":"p1","sender":"dev","seq":1,"samples":[' + samples + "]}"
    ).encode()
    expected = (
        b"Timestamp,a,b\n"
        b"2022-05-13T12:10:00.000000,0,0\n"
        b"2022-05-13T12:10:01.000000,1.5,10\n"
        b"2022-05-13T12:10:02.000000,100,1e-05\n"
        b"2022-05-13T12:10:03.000000,1000000000000000.0,1000000000000000.0\n"
        b"2022-05-13T12:10:04.000000,0.30000000000000004,0.1\n"
        b"2022-05-13T12:10:05.000000,5e-324,2584\n"
    )
    assert _reference(payload) == expected
    assert _fast(payload) == expected
    assert _fast(payload) == expected
