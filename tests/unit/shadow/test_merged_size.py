"""The 8 KB state limit is judged on the merged document, not on the request (shadow spec §5:
compact UTF-8 JSON of merged ``desired`` plus merged ``reported``; over it, 413 and nothing
stored). A request under the limit can push the shadow over it; one over it can fit once its
nulls delete what the shadow held."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.shadow.document import MAX_STATE_BYTES, ShadowError
from cloud.shadow.operations import ShadowOperations
from cloud.shadow.store import ShadowStore
from edge.clock import ManualClock

KEYS = "abcde"


def merged(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The reference merge of spec §4.1-4.2: objects merge, null deletes, other values
    replace, an object emptied by deletions goes (one given empty stays)."""
    out = dict(stored)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            before = out.get(key)
            child = merged(before if isinstance(before, dict) else {}, value)
            if child or not value:
                out[key] = child
            else:
                out.pop(key, None)
        else:
            out[key] = value
    return out


def size(state: dict[str, Any]) -> int:
    return sum(
        len(json.dumps(state[s], separators=(",", ":"), ensure_ascii=False).encode())
        for s in ("desired", "reported")
        if state.get(s)
    )


blob = st.builds(lambda n, c: c * n, st.integers(0, 3000), st.sampled_from(["x", "é", "水"]))
leaf = st.one_of(blob, st.integers(-5, 5), st.booleans())
value = st.one_of(leaf, st.dictionaries(st.sampled_from(KEYS), leaf, max_size=3))
section = st.dictionaries(st.sampled_from(KEYS), value, max_size=4)
patch_section = st.dictionaries(st.sampled_from(KEYS), st.one_of(st.none(), value), max_size=4)
state = st.fixed_dictionaries({}, optional={"desired": section, "reported": section})
patch = st.fixed_dictionaries({}, optional={"desired": patch_section, "reported": patch_section})


@settings(max_examples=150, deadline=None)
@given(first=state, second=patch)
def test_an_update_is_413_exactly_when_the_merged_state_passes_8_kb(first, second) -> None:
    with tempfile.TemporaryDirectory() as folder:
        ops = ShadowOperations(ShadowStore(Path(folder) / "shadows.db"), ManualClock(1_000))
        try:
            ops.update("pump-01", None, {"state": first})
            before = {s: merged({}, first[s]) for s in first}
        except ShadowError as error:
            assert error.code == 413 and size(first) > MAX_STATE_BYTES
            before = {}
        document = ops.document("pump-01", None)

        expected = {
            s: merged(before.get(s, {}), second[s]) if s in second else before.get(s, {})
            for s in ("desired", "reported")
        }
        try:
            ops.update("pump-01", None, {"state": second, "clientToken": "t"})
        except ShadowError as error:
            # THEN a refusal is 413 only past the merged limit, and nothing was stored
            assert (error.code, error.client_token) == (413, "t")
            assert size(expected) > MAX_STATE_BYTES
            assert ops.document("pump-01", None) == document
            return
        assert size(expected) <= MAX_STATE_BYTES
        after = ops.document("pump-01", None)
        assert after is not None
        assert {s: after["state"].get(s, {}) for s in ("desired", "reported")} == expected
