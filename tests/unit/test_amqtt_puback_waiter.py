"""The PUBACK of a QoS 1 delivery counts whenever it comes while the message is in flight,
also in the instant its waiter gives up (amqtt's 5 s PUBACK timeout).

amqtt 0.12.1 waits for a PUBACK with ``asyncio.wait_for(waiter, 5)``: at the timeout the
waiter is cancelled at once, but it leaves the handler's waiters only when the delivery's
task runs again. A PUBACK read in between found a cancelled waiter, which amqtt logs as
"already done" and drops: the message stayed in flight although acknowledged, held a place
of the 100 in IoT Core's window for good, and was redelivered on the next reconnect.
Seen with a subscriber acking each message about 5 s late: 4 of 300 PUBACKs lost."""

from __future__ import annotations

import asyncio

from amqtt.mqtt.constants import QOS_1
from amqtt.mqtt.puback import PubackPacket
from amqtt.session import OutgoingApplicationMessage, Session

from cloud.runtime.amqtt_server import RedeliveringHandler

TOPIC = "dt/plantwatch/s1/pump-01/telemetry"


def _in_flight(handler: RedeliveringHandler, packet_id: int) -> OutgoingApplicationMessage:
    message = OutgoingApplicationMessage(packet_id, TOPIC, QOS_1, b"{}", False)
    message.publish_packet = message.build_publish_packet()
    assert handler.session is not None
    handler.session.inflight_out[packet_id] = message
    return message


def _handler() -> RedeliveringHandler:
    session = Session()
    session.client_id = "subscriber"
    return RedeliveringHandler(None, session)  # type: ignore[arg-type]


def test_a_puback_in_the_instant_its_waiter_timed_out_acknowledges_the_message() -> None:
    async def scenario() -> None:
        handler = _handler()
        message = _in_flight(handler, 7)
        waiter: asyncio.Future[PubackPacket] = asyncio.get_running_loop().create_future()
        handler._puback_waiters[7] = waiter
        waiter.cancel()  # what wait_for does at its timeout, before the flow resumes
        await handler.handle_puback(PubackPacket.build(7))
        assert handler.session is not None
        assert 7 not in handler.session.inflight_out
        assert message.puback_packet is not None

    asyncio.run(scenario())


def test_a_puback_with_a_live_waiter_goes_to_it_and_one_for_nothing_changes_nothing() -> None:
    async def scenario() -> None:
        handler = _handler()
        _in_flight(handler, 8)
        waiter: asyncio.Future[PubackPacket] = asyncio.get_running_loop().create_future()
        handler._puback_waiters[8] = waiter
        await handler.handle_puback(PubackPacket.build(8))
        assert waiter.done() and waiter.result().packet_id == 8
        await handler.handle_puback(PubackPacket.build(9))
        assert handler.session is not None
        assert list(handler.session.inflight_out) == [8]  # the flow itself removes it

    asyncio.run(scenario())
