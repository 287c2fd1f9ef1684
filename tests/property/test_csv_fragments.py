"""The batcher's fast road (a CSV fragment per message, joined per window) writes the same
bytes as the reference road (every sample merged, then rendered cell by cell)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud import wire_decoder
from cloud.batcher.csv_text import (
    chunk_samples,
    fragment,
    join_fragments,
    json_dumps,
    merge_rows,
    render_rows,
    uniform_table,
)
from cloud.batcher.spool import Chunk
from edge.wire import MAX_ABS_VALUE

T0_MS = 1_652_443_800_000
SENSORS = ["a", "b", "c_1", "Z"]

values = st.one_of(
    st.none(),
    st.integers(-(10**15), 10**15),
    st.floats(-MAX_ABS_VALUE, MAX_ABS_VALUE, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e-5, -1.5e-7, 1e-4, 1e15, -1e15, 10.0, 2.5, 1e14 + 0.5]),
)


@st.composite
def messages(draw: st.DrawFn) -> list[list[tuple[int, dict]]]:
    """Messages of samples; timestamps may repeat across messages, sensors may differ."""
    stamps = st.integers(0, 299_999).map(lambda o: T0_MS + o)
    uniform = draw(st.booleans())
    names = draw(st.lists(st.sampled_from(SENSORS), min_size=1, unique=True))
    found = []
    for _ in range(draw(st.integers(1, 6))):
        times = draw(st.lists(stamps, min_size=1, max_size=8, unique=True))
        samples = []
        for ts in sorted(times):
            keys = (
                draw(st.permutations(names))  # the same names, in any order
                if uniform
                else draw(st.lists(st.sampled_from(SENSORS), min_size=1, unique=True))
            )
            samples.append((ts, {k: draw(values) for k in keys}))
        found.append(samples)
    return found


def _fast(bodies: list[str], chunks: list[Chunk]) -> bytes:
    joined = join_fragments(bodies)
    return joined[0] if joined is not None else render_rows(merge_rows(chunks))


def test_a_uniform_table_is_found_exactly_when_every_sample_has_the_same_names() -> None:
    same = [(1, {"b": 2, "a": 1}), (2, {"a": 3, "b": None})]
    assert uniform_table(same) == (["a", "b"], [(1, 2), (3, None)])
    assert uniform_table([(1, {"a": 1}), (2, {"a": 3, "b": 4})]) is None  # one more name
    assert uniform_table([(1, {"a": 1, "b": 2}), (2, {"a": 3})]) is None  # one fewer
    assert uniform_table([(1, {"a": 1, "b": 2}), (2, {"a": 3, "c": 4})]) is None  # another
    assert uniform_table([(1, {"z": 1.5})]) == (["z"], [(1.5,)])
    assert uniform_table([(1, {})]) is None


@settings(max_examples=300, deadline=None)
@given(messages(), st.sampled_from([json_dumps, wire_decoder.dumps]))
def test_fragments_give_the_reference_bytes(found: list, dumps) -> None:
    reference = [Chunk("s/p", 0, f"m{i:03d}", samples) for i, samples in enumerate(found)]
    bodies = [fragment(samples, dumps) for samples in found]
    stored = [Chunk("s/p", 0, f"m{i:03d}", [], "", body) for i, body in enumerate(bodies)]
    expected = render_rows(merge_rows(reference))
    assert _fast(bodies, stored) == expected
    assert render_rows(merge_rows(stored)) == expected


@settings(max_examples=100, deadline=None)
@given(messages())
def test_a_fragment_reads_back_its_cells(found: list) -> None:
    for samples in found:
        body = fragment(samples, wire_decoder.dumps)
        back = chunk_samples(Chunk("s/p", 0, "m", [], "", body))
        assert render_rows(merge_rows([Chunk("s/p", 0, "m", back)])) == render_rows(
            merge_rows([Chunk("s/p", 0, "m", samples)])
        )


def test_spool_rows_an_earlier_version_wrote_still_read() -> None:
    old = Chunk("s/p", 0, "m", [], "", '[[1652443800000,{"a":1.5,"b":null}]]')
    assert chunk_samples(old) == [(1652443800000, {"a": 1.5, "b": None})]
    assert join_fragments([old.body]) is None
