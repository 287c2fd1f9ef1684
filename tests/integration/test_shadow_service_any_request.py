"""Any request a client may publish on a shadow's update, get and delete topics, through a
broker keeping the 128 KB message limit: each is answered exactly once, on ``/accepted``
or with a contract 3.6 code on ``/rejected``, and the service keeps its broker connection
(shadow contract 5). Large arrays and floods of deletions are drawn on purpose: their
answers can outgrow the request."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from raw_mqtt import RawClient
from shadow_requests import anything, well_formed

from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.service import ShadowService
from edge.clock import ManualClock

BASE = "$aws/things/anyone/shadow"
big = st.sampled_from(
    [
        {"state": {"desired": {"a": [0] * 4_000}}},
        {"state": {"reported": {"a": [1] * 4_000}}},
        {"state": {"desired": {f"k{i}": None for i in range(10_000)}}},
        {"state": {"desired": {"a": "x" * 9_000}}},
    ]
)
request = st.one_of(
    st.tuples(st.just("update"), well_formed | anything | big),
    st.tuples(st.sampled_from(["get", "delete"]), st.just({})),
)


@pytest.fixture(scope="module")
def shadow_service(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShadowService]:
    db = Path(tmp_path_factory.mktemp("any-request")) / "shadows.db"
    with ShadowService(broker.url, str(db), ManualClock(1_750_000_000.0), limits=False) as running:
        yield running


@pytest.fixture(scope="module")
def device(broker: EmbeddedBroker, shadow_service: ShadowService) -> Iterator[RawClient]:
    client = RawClient(broker.host, broker.port)
    assert client.subscribe([f"{BASE}/+/accepted", f"{BASE}/+/rejected"]) == [True, True]
    yield client
    client.close()


def answers_to(device: RawClient, token: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for topic, payload in list(device.messages):
        doc = json.loads(payload)
        if doc.get("clientToken") == token:
            found.append((topic, doc))
    return found


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(requests=st.lists(request, min_size=1, max_size=4))
def test_every_request_is_answered_once_and_the_service_stays_connected(
    shadow_service: ShadowService, device: RawClient, requests: list[tuple[str, Any]]
) -> None:
    for operation, body in requests:
        token = uuid.uuid4().hex
        payload = json.dumps({**body, "clientToken": token}, separators=(",", ":")).encode()
        device.messages.clear()
        assert device.publish(f"{BASE}/{operation}", payload)
        device.wait(lambda t=token: answers_to(device, t), f"the answer to {token}")
        device.quiet(0.05)
        (topic, doc), *more = answers_to(device, token)
        assert more == [], "answered once"
        if topic.endswith("/rejected"):
            assert doc["code"] in (400, 404, 409, 413), doc
        else:
            assert topic == f"{BASE}/{operation}/accepted"
    assert shadow_service.counts["callback_errors"] == 0
    device.messages.clear()
    assert device.publish(f"{BASE}/get", b'{"clientToken":"last"}')
    device.wait(lambda: answers_to(device, "last"), "an answer after the sequence")
