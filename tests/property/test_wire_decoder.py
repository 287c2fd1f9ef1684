"""The msgspec decoder against ``edge.wire.decode``: for any payload, the same Telemetry or
the same WireFormatError (reason and text)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud import wire_decoder
from cloud.batcher.readings import from_telemetry
from edge import wire
from edge.errors import WireFormatError


def outcome(decode, payload: bytes | str):  # type: ignore[no-untyped-def]
    try:
        return decode(payload)
    except WireFormatError as exc:
        return ("error", exc.reason, str(exc))


def same(payload: bytes | str) -> None:
    fast, slow = outcome(wire_decoder.decode, payload), outcome(wire.decode, payload)
    assert fast == slow
    rows = outcome(wire_decoder.decode_rows, payload)
    if isinstance(slow, wire.Telemetry):  # ints stay ints: the CSV prints them as written
        assert rows[:5] == from_telemetry(slow)[:5]
        if rows.columns is not None:  # the same sensors in every sample, taken out in order
            names = [sorted(s.values) for s in slow.samples]
            assert all(n == rows.columns for n in names)
            assert rows.table == [tuple(s.values[n] for n in rows.columns) for s in slow.samples]
        for a, b, (_, values) in zip(fast.samples, slow.samples, rows.rows, strict=True):
            assert [type(v) for v in a.values.values()] == [type(v) for v in b.values.values()]
            assert [type(v) for v in values.values()] == [type(v) for v in b.values.values()]
            assert list(a.values) == list(b.values) == list(values)
    else:
        assert rows == slow


NAMES = st.one_of(
    st.sampled_from(["s1", "pump-01", "gw_2", "", "a b", "x\n", "é"]), st.text(max_size=6)
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e15, -1e15, 1e15 + 1, 10**15, 10**15 + 1, -0.0, 0.1, 5e-324]),
    st.text(max_size=3),
)
STAMPS = st.one_of(
    st.integers(min_value=wire.TS_MIN_MS - 5, max_value=wire.TS_MAX_MS + 5),
    st.sampled_from([wire.TS_MIN_MS, wire.TS_MAX_MS - 1, wire.TS_MAX_MS, 1.0e12, True, None, "1"]),
)


@st.composite
def documents(draw: st.DrawFn) -> object:
    samples = draw(
        st.lists(
            st.fixed_dictionaries(
                {"ts": STAMPS, "values": st.dictionaries(NAMES, VALUES, max_size=4)},
                optional={"extra": st.integers()},
            ),
            max_size=3,
        )
    )
    doc = {
        "v": draw(st.sampled_from([1, 1, 1, 2, 1.0, True, "1", None])),
        "site": draw(NAMES),
        "asset": draw(NAMES),
        "sender": draw(NAMES),
        "seq": draw(st.one_of(st.integers(-2, 2**64), st.sampled_from([True, 1.5, None]))),
        "samples": samples,
    }
    for key in draw(st.sets(st.sampled_from(sorted(doc)), max_size=2)):
        del doc[key]
    return doc if draw(st.integers(0, 20)) else draw(st.sampled_from([[doc], "x", 1, None]))


@settings(max_examples=500, deadline=None)
@given(documents(), st.booleans())
def test_fast_decoder_agrees_with_the_contract(doc: object, as_text: bool) -> None:
    text = json.dumps(doc, allow_nan=True)
    same(text if as_text else text.encode())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)),
    st.integers(wire.TS_MIN_MS, wire.TS_MAX_MS - 1),
)
def test_floats_decode_to_the_same_doubles(values: list[float], ts: int) -> None:
    names = [f"s{i}" for i in range(len(values))] or ["s"]
    sample = wire.Sample(ts, dict(zip(names, values or [1.5], strict=True)))
    payload = wire.encode(wire.Telemetry("s1", "pump-01", "gw", 7, (sample,)))
    fast = wire_decoder._fast(payload)  # the fast path itself
    assert fast is not None and fast[:5] == from_telemetry(wire.decode(payload))[:5]


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v":1,"site":"a","site":"s1","asset":"p","sender":"g","seq":1,"samples":[{"ts":1700000000000,"values":{"x":1}}]}',
        b'{"v":1,"site":"s1","asset":"p","sender":"g","seq":1,"samples":[{"ts":1700000000000,"values":{"x":1,"x":2,"y":3}}]}',
        b'{"v":1,"site":"s1","asset":"p","sender":"g","seq":1,"samples":[{"ts":1700000000000,"values":{"x":NaN}}]}',
        b'{"v":1,"site":"s1","asset":"p","sender":"g","seq":1,"samples":[{"ts":1700000000000,"values":{"x":1e400}}]}',
        b'{"v":1,"site":"s1","asset":"p","sender":"g","seq":1,"samples":[{"ts":1700000000000,"values":{"x":1}}]} x',
        b'\xef\xbb\xbf{"v":1,"site":"s1","asset":"p","sender":"g","seq":1,"samples":[{"ts":1700000000000,"values":{"x":1}}]}',
        '{"v":1,"site":"s1","asset":"p","sender":"g","seq":1,"samples":[{"ts":1700000000000,"values":{"x":1}}]}'.encode(
            "utf-16"
        ),
        b'{"v":1,"site":"s1","asset":"p","sender":"g","seq":9223372036854775808,"samples":[{"ts":1700000000000,"values":{"x":1}}]}',
        b'{"v":1,"site":"s1","asset":"p","sender":"g","seq":1,"samples":[{"ts":1700000000000,"values":{"x":18446744073709551615}}]}',
        b'{"v":1,"site":"s1","asset":"p","sender":"g","seq":1,"samples":[{"ts":1700000000000,"values":{"\\ud800":1}}]}',
        b"x" * (wire.MAX_PAYLOAD_BYTES + 1),
    ],
)
def test_edge_cases_agree(payload: bytes) -> None:
    same(payload)


VALID = (
    b'{"v":1,"site":"s1","asset":"p","sender":"g",%s"seq":1,'
    b'"samples":[{"ts":1700000000000,"values":{"x":1,"y":2.5}}]}'
)


@pytest.mark.parametrize(
    "junk", [b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]
)
@pytest.mark.parametrize("where", [b'"note":"%s",', b'"n%s":1,', b'"note":{"a":["%s"]},'])
def test_bytes_that_are_not_utf8_in_a_field_nobody_reads_are_judged_as_the_contract_does(
    where: bytes, junk: bytes
) -> None:
    """A field the contract ignores is still part of the payload, which must be JSON text:
    the fast decoder skips such a field without reading its bytes, yet must refuse what
    ``edge.wire`` refuses (RFC 8259: JSON exchanged is UTF-8)."""
    payload = VALID % (where % junk)
    same(payload)
    wire_decoder.decode_rows(VALID % b"")  # the sensor set learnt: the shaped decoder too
    same(payload)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=12).filter(lambda b: b'"' not in b and b"\\" not in b))
def test_any_bytes_in_an_ignored_field_are_judged_as_the_contract_does(junk: bytes) -> None:
    same(VALID % (b'"note":"%s",' % junk))


def _in_a_stack(frames: int, call):  # type: ignore[no-untyped-def]
    return call() if frames == 0 else _in_a_stack(frames - 1, call)


MAX_NESTING = 64
"""edge.wire's limit (tests/unit/test_wire.py checks the two agree)."""
DEEP_LEVELS = st.one_of(st.integers(MAX_NESTING - 6, MAX_NESTING + 2), st.integers(900, 1100))


def containers_deep(payload: bytes) -> int:
    """The reference: how deep brackets nest outside strings, byte by byte."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in payload:
        char = chr(byte)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


@st.composite
def deep_payloads(draw: st.DrawFn) -> bytes:
    """A valid message with containers nested around the limit (or past the parser's
    recursion) in a field nobody reads, in a sample, or as a value; sometimes one byte
    inserted, deleted or replaced."""
    levels = draw(DEEP_LEVELS)
    opener = draw(st.sampled_from(["[", '{"k":']))
    closer = "]" if opener == "[" else "}"
    leaf = draw(st.sampled_from(["", "1", '"]["', "null"]))
    deep = opener * levels + (leaf or ("0" if opener != "[" else "")) + closer * levels
    template = draw(
        st.sampled_from(
            [
                VALID.decode().replace("%s", '"note":%s,'),
                '{"v":1,"site":"s1","asset":"p","sender":"g","seq":1,'
                '"samples":[{"ts":1700000000000,"values":{"x":%s}}]}',
                '{"v":1,"site":"s1","asset":"p","sender":"g","seq":1,'
                '"samples":[{"ts":1700000000000,"values":{"x":1},"more":%s}]}',
            ]
        )
    )
    body = template.replace("%s", deep).encode()
    edit = draw(st.sampled_from(["none", "none", "insert", "delete", "replace"]))
    if edit == "none":
        return body
    at = draw(st.integers(0, len(body) - 1))
    char = draw(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b",", b" "]))
    if edit == "insert":
        return body[:at] + char + body[at:]
    if edit == "delete":
        return body[:at] + body[at + 1 :]
    return body[:at] + char + body[at + 1 :]


@settings(max_examples=200, deadline=None)
@given(deep_payloads(), st.booleans(), st.sampled_from([0, 300]))
def test_both_decoders_agree_on_deep_and_mutated_json_whatever_the_stack(
    payload: bytes, as_text: bool, frames: int
) -> None:
    """The fast decoder and the contract give the same answer on JSON nested around
    MAX_NESTING or past the parser's recursion, valid or one byte off, and what is deeper
    than MAX_NESTING is bad_json, called from a shallow stack or a deep one."""
    body: bytes | str = payload.decode("utf-8", "replace") if as_text else payload
    _in_a_stack(frames, lambda: same(body))
    if containers_deep(payload) > MAX_NESTING:
        verdict = _in_a_stack(frames, lambda: outcome(wire.decode, body))
        assert isinstance(verdict, tuple) and verdict[:2] == ("error", "bad_json"), verdict
