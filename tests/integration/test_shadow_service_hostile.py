"""No request can stop the shadow service or grow its memory: raw paho clients against a
real broker and the real service (issue 13, items 1 and 6)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from raw_mqtt import RawClient

from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.service import ShadowService
from edge.clock import ManualClock

START = 1_750_000_000.0


@pytest.fixture(scope="module")
def roomy_broker() -> Iterator[EmbeddedBroker]:
    """Lets 512 KB through, so the service's own 128 KB check is what answers."""
    with EmbeddedBroker("amqtt", max_message_kb=512) as running:
        yield running


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def service(
    roomy_broker: EmbeddedBroker, tmp_path: Path, clock: ManualClock
) -> Iterator[ShadowService]:
    with ShadowService(roomy_broker.url, str(tmp_path / "shadows.db"), clock) as running:
        yield running


@pytest.fixture
def device(roomy_broker: EmbeddedBroker) -> Iterator[RawClient]:
    client = RawClient(roomy_broker.host, roomy_broker.port)
    yield client
    client.close()


def answer(device: RawClient, topic: str) -> dict[str, Any]:
    return json.loads(device.wait_for_message(topic))


def test_nested_oversized_and_non_utf8_requests_get_aws_errors_and_the_service_lives_on(
    device: RawClient, service: ShadowService
) -> None:
    base = "$aws/things/victim/shadow"
    assert device.subscribe([f"{base}/#"]) == [True]
    cases = [
        ("update", b"[" * 100_000, 400, "Invalid JSON"),  # RecursionError in json.loads
        ("get", b"[" * 200_000, 413, "The payload exceeds the maximum size allowed"),
        ("update", b'{"state":{"desired":{"a":"\xff"}}}', 415, None),
        ("delete", b"{" * 100_000, 404, "No shadow exists with name: 'victim'"),
        ("get", b"[" * 100_000, 404, "No shadow exists with name: 'victim'"),
    ]
    for operation, payload, code, message in cases:
        device.messages.clear()
        assert device.publish(f"{base}/{operation}", payload)
        error = answer(device, f"{base}/{operation}/rejected")
        assert error["code"] == code, (operation, error)
        if message is not None:
            assert error["message"] == message
    device.messages.clear()
    deep: Any = {"leaf": 1}
    for _ in range(500):
        deep = {"n": deep}
    request = {"state": {"desired": deep}, "clientToken": "deep"}
    assert device.publish(f"{base}/update", json.dumps(request).encode())
    error = answer(device, f"{base}/update/rejected")
    assert error["code"] == 400 and error["clientToken"] == "deep"
    assert "nesting" in error["message"]

    device.messages.clear()
    assert device.publish(f"{base}/update", b'{"state":{"desired":{"mode":"safe"}}}')
    assert answer(device, f"{base}/update/accepted")["version"] == 1, "the service still answers"
    assert service.counts["callback_errors"] == 0
    assert service.counts["rejected_413"] == 1 and service.counts["rejected_415"] == 1


def test_requests_faulty_in_two_ways_answer_the_earlier_fault_and_change_nothing(
    device: RawClient, service: ShadowService
) -> None:
    """Section 5 order over MQTT: JSON (an array holding null), then clientToken, node
    shapes, version type, depth. Well-formed JSON nested 40,000 levels deep is too deep,
    not invalid, and the token is echoed."""
    base = "$aws/things/twofold/shadow"
    assert device.subscribe([f"{base}/update/+"]) == [True]
    assert device.publish(f"{base}/update", b'{"state":{"reported":{"a":1}}}')
    answer(device, f"{base}/update/accepted")
    before = service.get_document("twofold")
    deep = "[" * 40_000 + "1" + "]" * 40_000
    cases = [
        (
            '{"state":{"desired":{"a":[null]}},"version":"x","clientToken":"n"}',
            "Invalid JSON",
            "n",
        ),
        ('{"state":{"desired":[null]},"clientToken":"s"}', "Invalid JSON", "s"),
        (
            '{"state":{"desired":{"a":' + deep + '}},"version":1,"clientToken":"d"}',
            "JSON contains too many levels of nesting; maximum is 6",
            "d",
        ),
        ('{"state":{"desired":{"a":' + deep + '}},"version":-1}', "Invalid version", None),
    ]
    for body, message, token in cases:
        device.messages.clear()
        assert device.publish(f"{base}/update", body.encode())
        error = answer(device, f"{base}/update/rejected")
        assert (error["code"], error["message"], error.get("clientToken")) == (
            400,
            message,
            token,
        ), body[:80]
    assert service.get_document("twofold") == before
    assert service.counts["callback_errors"] == 0


def test_a_bad_thing_name_is_refused_before_it_counts_against_any_limit(
    device: RawClient, service: ShadowService
) -> None:
    bad = "$aws/things/no spaces!/shadow/update"
    assert device.subscribe([f"{bad}/rejected"]) == [True]
    assert device.publish(bad, b'{"state":{"desired":{"a":1}},"clientToken":"t1"}')
    error = json.loads(device.wait_for_message(f"{bad}/rejected"))
    assert error == {
        "code": 400,
        "message": "Invalid thing name",
        "timestamp": int(START),
        "clientToken": "t1",
    }
    assert service.limiter is not None and len(service.limiter) == 0


def test_an_empty_shadow_name_is_refused_on_its_own_topic_not_the_classic_one(
    device: RawClient, service: ShadowService
) -> None:
    """``.../shadow/name//update`` names a shadow '' (invalid): its rejection goes back on
    ``.../shadow/name//update/rejected``. It used to be published on the classic shadow's
    ``update/rejected``, where that shadow's own clients took it for an answer."""
    base = "$aws/things/pump-1/shadow"
    assert device.subscribe([f"{base}/update/rejected", f"{base}/name//update/rejected"]) == [
        True,
        True,
    ]
    assert device.publish(f"{base}/name//update", b'{"state":{},"clientToken":"t2"}')
    error = json.loads(device.wait_for_message(f"{base}/name//update/rejected"))
    assert (error["code"], error["message"], error["clientToken"]) == (
        400,
        "Invalid shadow name",
        "t2",
    )
    assert device.received(f"{base}/update/rejected") == []


def test_ten_thousand_thing_names_do_not_stay_in_the_limiter(
    device: RawClient, service: ShadowService, clock: ManualClock
) -> None:
    assert device.subscribe(["$aws/things/+/shadow/get/rejected"]) == [True]
    names = [f"t-{i}" for i in range(300)]
    for name in names:
        device.publish(f"$aws/things/{name}/shadow/get", b"", qos=0)
    device.wait(lambda: len(device.messages) >= len(names), "300 answers", timeout=30)
    assert service.limiter is not None
    clock.advance(2.0)
    device.messages.clear()
    assert device.publish("$aws/things/late/shadow/get", b"")
    device.wait_for_message("$aws/things/late/shadow/get/rejected")
    assert len(service.limiter) <= 1, "idle things were forgotten"


def test_the_queue_across_things_is_bounded_and_every_request_is_answered_once(
    roomy_broker: EmbeddedBroker, device: RawClient, tmp_path: Path, clock: ManualClock
) -> None:
    with ShadowService(
        roomy_broker.url, str(tmp_path / "bounded.db"), clock, limits=False, max_queued=3
    ) as service:
        gate = threading.Event()
        entered = threading.Event()
        original = service.operations.get

        def slow_get(*args: Any, **kwargs: Any) -> Any:
            entered.set()
            gate.wait(10)
            return original(*args, **kwargs)

        service.operations.get = slow_get  # type: ignore[method-assign]
        assert device.subscribe(["$aws/things/+/shadow/get/rejected"]) == [True]
        device.publish("$aws/things/first/shadow/get", b"")
        assert entered.wait(10), "the worker holds the first request"
        for i in range(20):
            device.publish(f"$aws/things/q-{i}/shadow/get", f'{{"clientToken":"c{i}"}}'.encode())
        device.wait(lambda: len(device.messages) >= 17, "refusals while the worker is busy")
        refused = [json.loads(p) for _t, p in device.messages]
        assert all(doc["code"] == 429 for doc in refused)
        assert all(doc["message"] == "Too Many Requests" for doc in refused)
        gate.set()
        device.wait(lambda: len(device.messages) >= 21, "every request answered")
        device.quiet(0.3)
        answered = [t.split("/")[2] for t, _p in device.messages]
        assert sorted(answered) == sorted(["first", *(f"q-{i}" for i in range(20))])
        assert service.counts["rejected_429"] == 17 and service.counts["rejected_404"] == 4


@pytest.mark.parametrize("kind", ["amqtt", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def test_a_retained_request_is_answered_once_and_never_replayed_on_restart(
    kind: str, tmp_path: Path, clock: ManualClock
) -> None:
    """A device that sets the retain flag on an update must not have it applied again each
    time the service (re)subscribes: AWS answers a request once. mosquitto replays the
    stored request to the service's wildcard subscription and the service ignores it; amqtt,
    like IoT Core (iot-core-rules-and-limits §2), sends a retained message only to a
    subscription whose filter equals its topic, so nothing comes back at all."""
    base = "$aws/things/retainer/shadow"
    db = str(tmp_path / "retained.db")
    with EmbeddedBroker(kind) as broker:
        device = RawClient(broker.host, broker.port)
        assert device.subscribe([f"{base}/update/accepted"]) == [True]
        with ShadowService(broker.url, db, clock) as first:
            info = device.client.publish(
                f"{base}/update", b'{"state":{"desired":{"a":1}}}', 1, True
            )
            info.wait_for_publish(10)
            assert answer(device, f"{base}/update/accepted")["version"] == 1
            assert first.counts["ignored_retained"] == 0, "a live request is served"
        with ShadowService(broker.url, db, clock) as second:
            if kind == "mosquitto":
                device.wait(lambda: second.counts["ignored_retained"] >= 1, "the replayed request")
            device.quiet(0.3)
            assert len(device.received(f"{base}/update/accepted")) == 1
            assert second.get_document("retainer")["version"] == 1
            if kind == "amqtt":
                assert second.counts["ignored_retained"] == 0
        device.close()
