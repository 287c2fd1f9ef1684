"""The shadow engine against a reference model written another way: a section is a flat map
from key paths to leaves (scalars, arrays, and objects sent empty), not a nested dict.

For any sequence of update requests (values, nested nulls, whole-section nulls,
``"state": null``, optimistic versions right and wrong), through ShadowOperations and its
SQLite store:

- the stored state and metadata equal the model's (shadow-contracts 4.1, 4.2, 4.3, 4.8);
- the delta is the desired leaves reported does not meet, kept on their paths from the
  root, so it is empty exactly when desired is a sub-document of reported (4.4); its
  metadata is theirs from desired; ``/update/delta`` is produced exactly when it is not
  empty, carrying the whole delta (4.5);
- every accepted update adds one to the version and a 409 changes nothing (4.6).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cloud.shadow.document import ShadowError, apply_update, compute_delta
from cloud.shadow.operations import ShadowOperations
from cloud.shadow.store import ShadowStore
from edge.clock import ManualClock
from edge.json_values import same_value
from edge.shadow import _within

T0 = 1_747_330_000
Path_ = tuple[str, ...]
Leaves = dict[Path_, tuple[Any, int]]
"""path -> (leaf value, time written). A leaf is a scalar, an array or an empty object."""

SECTIONS = ("desired", "reported")


# --- the model ------------------------------------------------------------------------


def _under(path: Path_, prefix: Path_) -> bool:
    return path[: len(prefix)] == prefix


def _drop(leaves: Leaves, prefix: Path_) -> None:
    """Delete the value at *prefix*: every leaf at or under it."""
    for path in [p for p in leaves if _under(p, prefix)]:
        del leaves[path]


def model_apply(leaves: Leaves, patch: dict[str, Any], now: int, prefix: Path_ = ()) -> None:
    for key, value in patch.items():
        path = (*prefix, key)
        if value is None:
            _drop(leaves, path)
        elif isinstance(value, dict) and value:
            # The key becomes (or stays) an object: a leaf held at it is replaced.
            leaves.pop(path, None)
            model_apply(leaves, value, now, path)
        elif isinstance(value, dict):
            # An empty object merges into a stored object as a no-op, else is a leaf.
            if not any(_under(p, path) and p != path for p in leaves):
                _drop(leaves, path)
                leaves[path] = ({}, now)
        else:
            _drop(leaves, path)
            leaves[path] = (value, now)


def _unflatten(leaves: Leaves, metadata: bool) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path, (value, when) in sorted(leaves.items()):
        node = root
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = _stamp(value, when) if metadata else value
    return root


def _stamp(value: Any, when: int) -> Any:
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return [_stamp(v, when) if isinstance(v, list) else _stamp_object(v, when) for v in value]
    return {"timestamp": when}


def _stamp_object(value: Any, when: int) -> Any:
    if isinstance(value, dict):
        return {k: _stamp_object(v, when) for k, v in value.items()}
    return _stamp(value, when)


def model_document(model: dict[str, Leaves]) -> tuple[dict[str, Any], dict[str, Any]]:
    state = {s: _unflatten(model[s], False) for s in SECTIONS if model[s]}
    meta = {s: _unflatten(model[s], True) for s in SECTIONS if model[s]}
    return state, meta


def _matched(path: Path_, value: Any, reported: Leaves) -> bool:
    """A desired leaf is met in reported: an empty object by any object there, a value by
    an equal JSON value (numbers by value, booleans not numbers)."""
    if isinstance(value, dict):
        if path in reported:
            return reported[path][0] == {}
        return any(_under(p, path) for p in reported)
    return path in reported and same_value(value, reported[path][0])


def model_delta(desired: Leaves, reported: Leaves) -> Leaves:
    """The desired leaves reported does not meet, with their desired timestamps."""
    return {p: leaf for p, leaf in desired.items() if not _matched(p, leaf[0], reported)}


def is_sub_document(desired: Leaves, reported: Leaves) -> bool:
    return not model_delta(desired, reported)


# --- strategies -----------------------------------------------------------------------

leaf = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([1.0, 2.5, -0.0, 10**20]),
    st.booleans(),
    st.sampled_from(["", "x", "y"]),
)
array = st.lists(
    st.one_of(leaf, st.dictionaries(st.sampled_from("pq"), leaf, max_size=2)), max_size=3
)
value = st.recursive(
    st.one_of(leaf, array, st.none(), st.just({})),
    lambda inner: st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=8,
)
patch = st.dictionaries(st.sampled_from("abcd"), value, max_size=3)
section = st.one_of(st.none(), patch)
state = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={"desired": section, "reported": section}),
)
step = st.tuples(state, st.sampled_from(["none", "right", "wrong"]), st.integers(0, 5))
MAX_DEPTH = 6
"""shadow-contracts 5: a section is level 1; a non-empty object or array below level 6 is a
400, which the conformance tests cover. The model here is of accepted documents only."""


def _within_depth(node: Any, level: int = 1) -> bool:
    if isinstance(node, dict | list) and node:
        children = node.values() if isinstance(node, dict) else node
        return level <= MAX_DEPTH and all(_within_depth(c, level + 1) for c in children)
    return True


def _sections_within_depth(request_state: Any) -> bool:
    return not isinstance(request_state, dict) or all(
        _within_depth(section) for section in request_state.values()
    )


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=8))
def test_any_update_sequence_matches_the_reference_model(steps):
    assume(all(_sections_within_depth(request_state) for request_state, _l, _t in steps))
    clock = ManualClock(T0)
    with tempfile.TemporaryDirectory() as tmp:
        store = ShadowStore(Path(tmp) / "s.db")
        ops = ShadowOperations(store, clock)
        try:
            model: dict[str, Leaves] = {"desired": {}, "reported": {}}
            version = 0
            for i, (request_state, lock, tick) in enumerate(steps):
                clock.advance(tick)
                now = int(clock.now())
                request: dict[str, Any] = {"state": request_state, "clientToken": f"t{i}"}
                if lock == "right":
                    request["version"] = version
                elif lock == "wrong":
                    request["version"] = version + 1
                try:
                    result = ops.update("thing", None, request)
                except ShadowError as error:
                    assert lock == "wrong", error
                    assert (error.code, error.message, error.client_token) == (
                        409,
                        "Version conflict",
                        f"t{i}",
                    )
                    stored = ops.document("thing", None)
                    assert (stored or {}).get("version", 0) == version, "a 409 changed nothing"
                    continue
                assert lock != "wrong"
                for s in SECTIONS:
                    if request_state is None:
                        model[s] = {}
                    elif s in request_state:
                        if request_state[s] is None:
                            model[s] = {}
                        else:
                            model_apply(model[s], request_state[s], now)
                version += 1

                want_state, want_meta = model_document(model)
                stored = ops.document("thing", None)
                assert stored == {"state": want_state, "metadata": want_meta, "version": version}
                assert result.accepted["version"] == version
                assert result.documents["current"]["version"] == version

                in_sync = is_sub_document(model["desired"], model["reported"])
                got = ops.get("thing", None)
                assert ("delta" not in got["state"]) == in_sync
                assert (result.delta is None) == in_sync
                if result.delta is not None:
                    delta = model_delta(model["desired"], model["reported"])
                    assert got["state"]["delta"] == _unflatten(delta, False)
                    assert result.delta["state"] == got["state"]["delta"]
                    assert result.delta["metadata"] == _unflatten(delta, True)
                    assert result.delta["version"] == version
                    assert result.delta["clientToken"] == f"t{i}"
        finally:
            store.close()


# Values that look alike to Python's ``==`` but not all alike to JSON: 1, 1.0 and true.
alike = st.sampled_from([0, 1, 1.0, True, False, "1", [1], [1.0], [True], {}])
alike_tree = st.recursive(
    alike, lambda inner: st.dictionaries(st.sampled_from("ab"), inner, max_size=2), max_leaves=4
)
alike_section = st.dictionaries(st.sampled_from("ab"), alike_tree, max_size=2)


@settings(max_examples=300, deadline=None)
@given(desired=alike_section, reported=alike_section)
def test_delta_is_empty_exactly_when_desired_is_a_sub_document_of_reported(desired, reported):
    clock = ManualClock(T0)
    with tempfile.TemporaryDirectory() as tmp:
        store = ShadowStore(Path(tmp) / "s.db")
        try:
            ops = ShadowOperations(store, clock)
            request = {"state": {"desired": desired, "reported": reported}}
            result = ops.update("thing", None, request)
            model: dict[str, Leaves] = {"desired": {}, "reported": {}}
            model_apply(model["desired"], desired, T0)
            model_apply(model["reported"], reported, T0)
            in_sync = is_sub_document(model["desired"], model["reported"])
            assert (result.delta is None) == in_sync, (desired, reported, result.delta)
            # Reporting the delta back always brings the shadow in sync.
            if result.delta is not None:
                synced = ops.update("thing", None, {"state": {"reported": result.delta["state"]}})
                assert synced.delta is None
        finally:
            store.close()


@settings(max_examples=300, deadline=None)
@given(desired=alike_section, reported=alike_section)
def test_every_delta_part_is_held_by_the_desired_state_it_came_from(desired, reported):
    """The edge agent asks for the document only when a delta's object says something its
    last desired value does not hold (edge.shadow._within): a delta repeated after every
    accepted update must never look new, or a device would GET after each of its own
    reports."""
    shadow = apply_update(None, {"state": {"desired": desired, "reported": reported}}, T0).shadow
    stored = shadow.state.get("desired", {})
    for key, part in compute_delta(stored, shadow.state.get("reported", {})).items():
        if isinstance(part, dict) and part:
            assert _within(part, stored[key]), (key, part, stored[key])


# --- the shadow's life: updates, gets and deletes over days ------------------------------

TOMBSTONE_S = 48 * 3600
life_step = st.one_of(
    st.tuples(st.just("update"), state, st.sampled_from(["none", "right", "wrong", "zero"])),
    st.tuples(st.just("get"), st.none(), st.none()),
    st.tuples(st.just("delete"), st.none(), st.none()),
)
tick = st.sampled_from([0, 1, TOMBSTONE_S - 1, TOMBSTONE_S])


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(life_step, tick), min_size=1, max_size=10))
def test_any_life_of_a_shadow_matches_the_reference_model(steps):
    """Versions across delete and re-creation (4.6, 4.7: the tombstone keeps the count for
    48 hours, after which the first update gives 1 again), 404 for get and delete of a
    missing shadow, delete answering the deleted version (3.5), ``previous`` null exactly
    when an update created the shadow (3.4), and an empty shadow that still exists (4.9)."""
    assume(all(_sections_within_depth(s) for (_op, s, _l), _t in steps))
    clock = ManualClock(T0)
    with tempfile.TemporaryDirectory() as tmp:
        store = ShadowStore(Path(tmp) / "s.db")
        ops = ShadowOperations(store, clock)
        try:
            model: dict[str, Leaves] | None = None
            version = 0
            deleted_at: int | None = None
            for i, ((op, request_state, lock), ticks) in enumerate(steps):
                clock.advance(ticks)
                now = int(clock.now())
                if model is None and deleted_at is not None and now - deleted_at >= TOMBSTONE_S:
                    version, deleted_at = 0, None
                token = f"t{i}"
                if op == "get":
                    if model is None:
                        try:
                            ops.get("thing", "n", token)
                        except ShadowError as error:
                            assert (error.code, error.client_token) == (404, token)
                            assert error.message == "No shadow exists with name: 'n'"
                        else:
                            raise AssertionError("get of a missing shadow answered")
                        continue
                    got = ops.get("thing", "n", token)
                    want_state, want_meta = model_document(model)
                    assert {k: v for k, v in got["state"].items() if k != "delta"} == want_state
                    assert (got["metadata"], got["version"]) == (want_meta, version)
                    assert (got["timestamp"], got["clientToken"]) == (now, token)
                elif op == "delete":
                    if model is None:
                        try:
                            ops.delete("thing", "n", token)
                        except ShadowError as error:
                            assert (error.code, error.client_token) == (404, token)
                        else:
                            raise AssertionError("delete of a missing shadow answered")
                        continue
                    answer = ops.delete("thing", "n", token)
                    assert answer == {"version": version, "timestamp": now, "clientToken": token}
                    model, deleted_at = None, now
                    assert ops.document("thing", "n") is None
                else:
                    request: dict[str, Any] = {"state": request_state, "clientToken": token}
                    sent = {"right": version, "wrong": version + 1, "zero": 0}.get(lock)
                    if sent is not None:
                        request["version"] = sent
                    if sent is not None and sent != version:
                        try:
                            ops.update("thing", "n", request)
                        except ShadowError as error:
                            assert (error.code, error.client_token) == (409, token)
                        else:
                            raise AssertionError(f"version {sent} taken at {version}")
                        continue
                    result = ops.update("thing", "n", request)
                    created = model is None
                    if model is None:
                        model = {"desired": {}, "reported": {}}
                    for s in SECTIONS:
                        if request_state is None or (
                            s in request_state and request_state[s] is None
                        ):
                            model[s] = {}
                        elif request_state.get(s):
                            model_apply(model[s], request_state[s], now)
                    version += 1
                    deleted_at = None
                    assert result.accepted["version"] == version
                    assert (result.documents["previous"] is None) == created
                    want_state, want_meta = model_document(model)
                    assert result.documents["current"] == {
                        "state": want_state,
                        "metadata": want_meta,
                        "version": version,
                    }
        finally:
            store.close()
