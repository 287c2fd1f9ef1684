"""ShadowOperations, the path the CLI takes without a broker, answers a request breaking
several rules as the MQTT and REST service does: the names are checked first."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.shadow.document import ShadowError
from cloud.shadow.operations import ShadowOperations
from cloud.shadow.store import ShadowStore
from edge.clock import ManualClock


@pytest.mark.parametrize(
    ("thing", "name", "message"),
    [("bad/thing", None, "Invalid thing name"), ("pump", "bad name", "Invalid shadow name")],
)
@pytest.mark.parametrize("token", [5, None, "t" * 65, ["t"]])
def test_a_bad_name_wins_over_a_bad_token(tmp_path: Path, thing, name, message, token):
    store = ShadowStore(tmp_path / "s.db")
    try:
        ops = ShadowOperations(store, ManualClock(1_750_000_000))
        request = {"state": {"desired": {"a": 1}}, "clientToken": token}
        with pytest.raises(ShadowError) as caught:
            ops.update(thing, name, request)
        assert (caught.value.code, caught.value.message, caught.value.client_token) == (
            400,
            message,
            None,
        )
        assert ops.document("pump", None) is None
    finally:
        store.close()
