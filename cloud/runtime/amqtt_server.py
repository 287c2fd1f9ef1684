"""Runs the embedded amqtt broker in its own process, so it gets a core to itself."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker as _AmqttBroker
from amqtt.contexts import Action
from amqtt.events import BrokerEvents
from amqtt.mqtt.constants import QOS_1
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import OUTGOING


class RedeliveringHandler(BrokerProtocolHandler):
    """Keeps an unacknowledged outgoing QoS 1 message in its session until PUBACK arrives.

    MQTT 3.1.1 section 4.4 (MQTT-4.4.0-1): when a client resumes a persistent session, the
    server must resend every PUBLISH it has not had a PUBACK for, with DUP set. amqtt 0.12.1
    (``ProtocolHandler._handle_qos1_message_flow``) removes the message from
    ``session.inflight_out`` in a ``finally`` that also runs when the connection dies (the
    PUBACK waiter is cancelled by ``stop()``) or after its 5 s PUBACK timeout, so
    ``_retry_deliveries`` on reconnect finds nothing and a SIGKILLed subscriber loses what it
    had received but not yet acknowledged. Here the message goes back into ``inflight_out``
    unless its PUBACK came, and a PUBACK arriving after the timeout removes it. QoS 2 is left
    as amqtt has it: plantwatch publishes and subscribes at QoS 1 only.
    Recheck on any amqtt upgrade: drop this class once amqtt keeps in-flight messages itself.
    """

    async def _handle_qos1_message_flow(self, app_message: Any) -> None:
        session = self.session
        try:
            await super()._handle_qos1_message_flow(app_message)
        finally:
            if (
                session is not None
                and app_message.direction == OUTGOING
                and app_message.puback_packet is None
                and app_message.packet_id is not None
            ):
                session.inflight_out[app_message.packet_id] = app_message

    async def handle_puback(self, puback: PubackPacket) -> None:
        packet_id = puback.variable_header.packet_id if puback.variable_header else None
        if packet_id in self._puback_waiters or self.session is None:
            await super().handle_puback(puback)
            return
        message = self.session.inflight_out.get(packet_id)  # type: ignore[arg-type]
        if message is not None and message.qos == QOS_1:
            message.puback_packet = puback
            del self.session.inflight_out[packet_id]  # type: ignore[arg-type]


class Broker(_AmqttBroker):
    """amqtt reads MQTT-4.7.2-1 (no wildcard match of ``$`` topics) as a ban on any client
    publish to a ``$`` topic and drops the connection; AWS IoT's reserved ``$aws/`` topics
    carry the shadow protocol, so those are let through. ``$SYS`` and the rest stay closed.
    Every connection's handler is a ``RedeliveringHandler`` (see there why)."""

    async def _initialize_client_session(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        handler, session = await super()._initialize_client_session(*args, **kwargs)
        # amqtt builds the handler inside its CONNECT parsing; the subclass adds no state.
        handler.__class__ = RedeliveringHandler
        return handler, session

    async def _handle_message_delivery(self, session: Any, handler: Any, wait: Any) -> bool:
        message = wait.result()
        topic = getattr(message, "topic", None) or ""
        if not topic.startswith("$aws/") or "+" in topic or "#" in topic:
            return await super()._handle_message_delivery(session, handler, wait)
        await self.plugins_manager.fire_event(
            BrokerEvents.MESSAGE_RECEIVED, client_id=session.client_id, message=message
        )
        if await self._topic_filtering(session, topic=topic, action=Action.PUBLISH):
            await self.plugins_manager.fire_event(
                BrokerEvents.MESSAGE_BROADCAST, client_id=session.client_id, message=message
            )
            await self._broadcast_message(session, topic, message.data)
            if message.publish_packet and message.publish_packet.retain_flag:
                await self.retain_message(session, topic, message.data, message.qos)
        return True


class OpenAuthPlugin(BaseAuthPlugin):
    """Lets every client in, like AnonymousAuthPlugin, without marking sessions anonymous:
    amqtt keeps no offline QoS 1 messages for anonymous persistent sessions, so a restarted
    rules runner would miss what was published while it was down."""

    async def authenticate(self, *, session: object) -> bool:
        session.is_anonymous = False  # type: ignore[attr-defined]
        return True

    @dataclass
    class Config:
        pass


async def _serve(host: str, port: int) -> None:
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "plugins": {"cloud.runtime.amqtt_server.OpenAuthPlugin": {}},
        "session_expiry_interval": 3600,
    }
    broker = Broker(config)
    await broker.start()
    print(f"ready mqtt://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plantwatch-amqtt")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    asyncio.run(_serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
