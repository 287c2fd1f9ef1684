"""The fixed headers the embedded amqtt broker refuses (MQTT 3.1.1 section 2.2), against
the table of the standard written out here, for every packet type, flag nibble and size."""

from __future__ import annotations

from amqtt.mqtt.packet import MQTTFixedHeader
from hypothesis import example, given
from hypothesis import strategies as st
from mqtt_frames import remaining_length

from cloud.runtime.amqtt_server import header_problem

CLIENT_SENDS = {1: 0, 4: 0, 5: 0, 6: 0b0010, 7: 0, 8: 0b0010, 10: 0b0010, 12: 0, 14: 0}
"""The packets a client sends a server, with the flags MQTT requires (PUBLISH, 3, aside).
Types 0 and 15 are reserved; amqtt itself closes on them."""


@example(kind=3, flags=0b1000, length=4, limit=0)  # QoS 0 with DUP
@example(kind=3, flags=0b1011, length=4, limit=0)  # QoS 1 resent, retained
@given(
    kind=st.integers(1, 14),
    flags=st.integers(0, 15),
    length=st.integers(0, 268_435_455),
    limit=st.sampled_from([0, 132_096]),
)
def test_a_fixed_header_is_taken_exactly_when_mqtt_allows_it(
    kind: int, flags: int, length: int, limit: int
) -> None:
    header = MQTTFixedHeader(kind, flags, length)
    size = 1 + len(remaining_length(length)) + length
    if limit and size > limit:
        allowed = False
    elif kind == 3:
        qos = (flags >> 1) & 3
        allowed = qos != 3 and not (qos == 0 and flags & 0b1000)  # MQTT-3.3.1-4, -3.3.1-2
    else:
        allowed = CLIENT_SENDS.get(kind) == flags
    problem = header_problem(header, limit)
    assert (problem is None) == allowed, (kind, flags, length, problem)
    if problem is not None:
        assert "\n" not in problem
