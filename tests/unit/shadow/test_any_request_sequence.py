"""Any sequence of get, update and delete requests, updates holding any JSON (wrong types,
nulls anywhere, arrays, oversized strings, keys named like the protocol's own), leaves a
well-formed stored shadow, and every answer is either accepted or one of the rejected
documents of shadow contract 3.6 (sections 4 and 5 for what is stored)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shadow_requests import anything, well_formed

from cloud.shadow.document import MAX_STATE_BYTES, ShadowError, parse_payload, state_size
from cloud.shadow.operations import ShadowOperations
from cloud.shadow.store import ShadowStore
from edge.clock import ManualClock

SPEC_400 = {
    "Invalid JSON",
    "Missing required node: state",
    "State node must be an object",
    "Desired node must be an object",
    "Reported node must be an object",
    "Invalid version",
    "Invalid clientToken",
    "JSON contains too many levels of nesting; maximum is 6",
}
INVALID_NODE = re.compile(r"State contains an invalid node: '.*'", re.DOTALL)
SPEC_OTHER = {
    404: "No shadow exists with name: '{thing}'",
    409: "Version conflict",
    413: "The payload exceeds the maximum size allowed",
}

operation = st.one_of(
    st.tuples(st.just("update"), well_formed),
    st.tuples(st.just("update"), well_formed),
    st.tuples(st.just("update"), anything),
    st.tuples(st.sampled_from(["get", "delete"]), st.none()),
)


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return "leaf"


def metadata_shape(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"timestamp"} and type(value["timestamp"]) is int:
        return "leaf"
    if isinstance(value, dict):
        return {k: metadata_shape(v) for k, v in value.items()}
    assert isinstance(value, list), value
    return [metadata_shape(v) for v in value]


def holds_null(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v is None or holds_null(v) for v in value.values())
    if isinstance(value, list):
        return any(v is None or holds_null(v) for v in value)
    return False


def assert_spec_rejection(error: ShadowError, thing: str) -> None:
    if error.code == 400:
        assert error.message in SPEC_400 or INVALID_NODE.fullmatch(error.message), error
    else:
        assert SPEC_OTHER.get(error.code, "").format(thing=thing) == error.message, error


def assert_well_formed(doc: dict[str, Any]) -> None:
    """Sections only when non-empty, no null stored, metadata mirroring the state leaf for
    leaf, and the merged state within 8 KB."""
    state = doc["state"]
    assert set(state) <= {"desired", "reported"} and set(doc["metadata"]) == set(state)
    for name, value in state.items():
        assert isinstance(value, dict) and value and not holds_null(value), state
        assert metadata_shape(doc["metadata"][name]) == shape(value), doc
    assert state_size(state) <= MAX_STATE_BYTES


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShadowOperations]:
    """One store for every example (each uses a thing of its own): a file per example
    made the test slow."""
    store = ShadowStore(Path(tmp_path_factory.mktemp("sequence")) / "shadows.db")
    yield ShadowOperations(store, ManualClock(1_750_000_000.0))
    store.close()


@settings(max_examples=300, deadline=None)
@given(operations=st.lists(operation, max_size=8))
def test_any_request_sequence_keeps_the_shadow_well_formed_and_answers_per_contract(
    ops: ShadowOperations, operations: list[tuple[str, Any]]
) -> None:
    thing = f"t-{uuid.uuid4().hex}"
    version, live = 0, False
    for kind, body in operations:
        before = ops.document(thing, None)
        try:
            if kind == "update":
                result = ops.update(thing, None, parse_payload(json.dumps(body).encode()))
                for answer in (result.accepted, result.delta, result.documents):
                    json.dumps(answer, allow_nan=False)
                version, live = version + 1, True
                assert result.shadow.version == version
            elif kind == "delete":
                assert ops.delete(thing, None)["version"] == version and live
                live = False
            else:
                assert ops.get(thing, None)["version"] == version and live
        except ShadowError as error:
            assert_spec_rejection(error, thing)
            assert (error.code == 404) is (kind != "update" and not live)
            assert ops.document(thing, None) == before
        stored = ops.document(thing, None)
        assert (stored is not None) is live
        if stored is not None:
            assert stored["version"] == version
            assert_well_formed(stored)
