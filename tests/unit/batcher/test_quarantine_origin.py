"""The Lambda batcher reports each quarantined message by site (a metric dimension and an
event field): a hostile payload must not choose that name."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from cloud.handlers.batcher import quarantined_origin
from edge.wire import NAME_RE

names = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["..", "../etc", "a/b", "s\x00", "x" * 5000, "pump-01", "s1"]),
    st.integers(),
    st.none(),
)


@given(
    topic=st.one_of(st.text(max_size=300), st.just("dt/plantwatch/s1/pump-01/telemetry")),
    site=names,
    asset=names,
)
def test_the_origin_of_a_quarantined_message_is_a_valid_name_or_unknown(
    topic: str, site: object, asset: object
) -> None:
    record = {"topic": topic, "payload": json.dumps({"site": site, "asset": asset})}
    got_site, got_asset = quarantined_origin(record)
    assert got_site == "unknown" or NAME_RE.fullmatch(got_site)
    assert got_asset is None or NAME_RE.fullmatch(got_asset)
    if NAME_RE.fullmatch(str(site)) and isinstance(site, str) and not topic.startswith("dt/"):
        assert got_site == site


def test_a_path_hostile_or_huge_payload_site_is_reported_as_unknown() -> None:
    for site in ("../../etc", "a/b", "x" * 5000, "s\x00", ""):
        record = {"topic": "", "payload": json.dumps({"site": site, "asset": site})}
        assert quarantined_origin(record) == ("unknown", None)
