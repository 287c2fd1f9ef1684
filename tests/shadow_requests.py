"""Update requests for shadow property tests: well-formed ones (nulls that delete, arrays
without null) and anything at all (wrong types, nulls anywhere, keys named like the
protocol's own), as Python objects to send as JSON."""

from __future__ import annotations

from hypothesis import strategies as st

keys = st.sampled_from(["a", "b", "timestamp", "delta", "desired", ""])
scalar = st.one_of(
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
    st.just("x" * 3000),
)
"""One of five scalars is 3000 bytes: three of them pass the 8 KB state limit."""
leaf = st.one_of(st.none(), scalar)
tree = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
patch_value = st.recursive(
    leaf,
    lambda inner: st.lists(scalar, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
"""Values an update may well carry: nulls delete, arrays hold no null."""
patch = st.dictionaries(st.sampled_from(["a", "b", "timestamp"]), patch_value, max_size=3)
well_formed = st.fixed_dictionaries(
    {"state": st.fixed_dictionaries({}, optional={"desired": patch, "reported": patch})},
    optional={"clientToken": st.text(max_size=3)},
)
section = st.one_of(tree, st.dictionaries(keys, tree, max_size=4))
state = st.one_of(
    tree, st.dictionaries(st.sampled_from(["desired", "reported", "delta"]), section, max_size=3)
)
anything = st.fixed_dictionaries(
    {},
    optional={
        "state": state,
        "version": st.one_of(
            st.integers(-1, 6), st.floats(), st.text(max_size=2), st.booleans(), st.none()
        ),
        "clientToken": st.one_of(st.text(max_size=3), st.integers(), st.none()),
        "other": tree,
    },
)
