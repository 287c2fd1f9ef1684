"""What the shadow service publishes: never an answer past the MQTT limit (shadow contract
5), which the broker would answer by cutting the service's connection."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cloud.shadow.document import MAX_PAYLOAD_BYTES, ShadowError
from cloud.shadow.service import ShadowService
from edge.clock import ManualClock

NOW = 1_750_000_000


def test_an_answer_past_the_mqtt_limit_is_never_published_and_a_get_is_answered_413(
    tmp_path: Path,
) -> None:
    service = ShadowService("mqtt://127.0.0.1:1", str(tmp_path / "shadows.db"), ManualClock(NOW))
    published: list[tuple[str, Any]] = []

    def record(topic: str, body: bytes, qos: int) -> None:
        published.append((topic, json.loads(body)))

    service._client.publish = record  # type: ignore[method-assign, assignment]
    try:
        big = {"state": {}, "metadata": {"x": "y" * MAX_PAYLOAD_BYTES}, "version": 1}
        service._reply("pump", None, "update/documents", {**big, "timestamp": NOW})
        service._reply("pump", "cfg", "get/accepted", {**big, "clientToken": "g"})
        fits = {"state": {}, "metadata": {"x": "y" * (MAX_PAYLOAD_BYTES - 100)}, "version": 1}
        service._reply("pump", None, "get/accepted", fits)
    finally:
        service.stop()
    assert published[0] == (
        "$aws/things/pump/shadow/name/cfg/get/rejected",
        {
            "code": 413,
            "message": "The payload exceeds the maximum size allowed",
            "timestamp": NOW,
            "clientToken": "g",
        },
    )
    assert [topic for topic, _doc in published[1:]] == ["$aws/things/pump/shadow/get/accepted"]
    assert service.counts["answers_too_large"] == 2


def test_refusing_a_throttled_deeply_nested_update_costs_no_deep_read(tmp_path: Path) -> None:
    """A 429 sheds load: reading a 128 KB body nested 60,000 levels without recursion takes
    a tenth of a second or more, so a thing past its rate would still cost the service
    seconds a second. A token the parser cannot reach at once is not looked for."""
    deep = b'{"clientToken":"t","state":{"desired":{"a":' + b"[" * 60_000 + b"]" * 60_000
    deep += b"}}}"
    assert len(deep) <= MAX_PAYLOAD_BYTES
    service = ShadowService("mqtt://127.0.0.1:1", str(tmp_path / "shadows.db"), ManualClock(NOW))
    try:
        for _ in range(10):  # in flight: nothing works the queue
            service.submit("pump", None, "update", deep)
        started = time.thread_time()
        refused = [service.submit("pump", None, "update", deep) for _ in range(10)]
        spent = time.thread_time() - started
        shallow = service.submit("pump", None, "update", b'{"clientToken":"s","state":{}}')
    finally:
        service.stop()
    for future in refused:
        error = future.exception()
        assert isinstance(error, ShadowError) and error.code == 429
    assert spent < 0.2
    error = shallow.exception()
    assert isinstance(error, ShadowError) and (error.code, error.client_token) == (429, "s")
