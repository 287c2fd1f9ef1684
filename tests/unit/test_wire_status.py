"""The status topic of the wire contract: round trip, topic agreement, one-line refusals."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.errors import WireFormatError
from edge.wire import (
    MAX_STATUS_BYTES,
    STATUS_FILTER,
    DeviceStatus,
    decode_status,
    encode_status,
    status_topic,
)

names = st.from_regex(r"\A[A-Za-z0-9_-]{1,20}\Z")
counters = st.integers(min_value=0, max_value=2**63 - 1)


@given(
    site=names,
    sender=names,
    state=st.sampled_from(["online", "offline"]),
    interval=st.floats(min_value=0.1, max_value=86400),
    assets=st.lists(names, max_size=5),
    depth=counters,
    dropped=counters,
    age=st.none() | st.floats(min_value=0, max_value=1e9),
    error=st.none() | st.text(max_size=500),
    ts=st.none() | st.integers(min_value=946_684_800_000, max_value=7_258_118_399_999),
)
def test_round_trip(site, sender, state, interval, assets, depth, dropped, age, error, ts) -> None:
    status = DeviceStatus(
        site=site,
        sender=sender,
        state=state,
        interval_s=interval,
        assets=tuple(assets),
        queue_depth=depth,
        dropped=dropped,
        oldest_age_s=age,
        last_error=error,
        ts_ms=ts,
        agent_version="0.1.0",
        protocol="5",
    )
    assert decode_status(encode_status(status), status.topic) == status


def test_topic_and_filter() -> None:
    assert status_topic("s1", "gw-1") == "dt/plantwatch/s1/gw-1/status"
    assert STATUS_FILTER == "dt/plantwatch/+/+/status"
    with pytest.raises(WireFormatError):
        status_topic("s1", "gw\n")


def _doc(**changes: object) -> bytes:
    doc = {"v": 1, "site": "s1", "sender": "gw", "state": "online", "interval_s": 5}
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("payload", "topic", "reason", "names"),
    [
        (b"{", None, "bad_json", "JSON"),
        (b"[]", None, "bad_schema", "object"),
        (_doc(v=2), None, "unsupported_version", "v:"),
        (_doc(v=True), None, "unsupported_version", "v:"),
        (_doc(v=1.0), None, "unsupported_version", "v:"),
        (_doc(state="asleep"), None, "bad_schema", "state:"),
        (_doc(interval_s=0), None, "out_of_range", "interval_s:"),
        (_doc(interval_s="5"), None, "bad_schema", "interval_s:"),
        (_doc(queue_depth=-1), None, "bad_schema", "queue_depth:"),
        (_doc(dropped=True), None, "bad_schema", "dropped:"),
        (_doc(assets=["ok", "bad name"]), None, "bad_schema", "assets[]"),
        (_doc(ts=10**400), None, "bad_timestamp", "ts:"),
        (_doc(last_error="x" * 501), None, "bad_schema", "last_error:"),
        (_doc(), "dt/plantwatch/s1/other/status", "bad_topic", "the topic says s1/other"),
        (_doc(), "dt/plantwatch/s1/gw/telemetry", "bad_topic", "expected dt/plantwatch"),
        (b" " * (MAX_STATUS_BYTES + 1), None, "oversize", "limit"),
    ],
)
def test_refusals_name_the_field(
    payload: bytes, topic: str | None, reason: str, names: str
) -> None:
    with pytest.raises(WireFormatError) as caught:
        decode_status(payload, topic)
    assert caught.value.reason == reason
    assert names in str(caught.value) and "\n" not in str(caught.value)


def test_a_status_nested_too_deeply_is_bad_json() -> None:
    with pytest.raises(WireFormatError) as info:
        decode_status("[" * 4000 + "]" * 4000)
    assert info.value.reason == "bad_json"
