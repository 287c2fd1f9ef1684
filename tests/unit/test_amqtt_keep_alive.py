"""IoT Core's keep-alive range on the embedded amqtt broker (iot-core-rules-and-limits §2):
the keep-alive it holds a client to, whatever the client asks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cloud.runtime.amqtt_server import iot_core_keep_alive


@given(st.integers(min_value=0, max_value=65535))
def test_any_asked_keep_alive_becomes_one_iot_core_honours(asked: int) -> None:
    held = iot_core_keep_alive(asked)
    assert 30 <= held <= 1200
    if 30 <= asked <= 1200:
        assert held == asked


def test_the_edges_of_the_range() -> None:
    """0 (MQTT's "no keep-alive") and anything over 1200 become 1200; under 30 become 30."""
    assert [iot_core_keep_alive(asked) for asked in (0, 1, 29, 30, 1200, 1201, 65535)] == [
        1200,
        30,
        30,
        30,
        1200,
        1200,
        1200,
    ]
