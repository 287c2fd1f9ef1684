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
from amqtt.plugins.base import BaseAuthPlugin


class Broker(_AmqttBroker):
    """amqtt reads MQTT-4.7.2-1 (no wildcard match of ``$`` topics) as a ban on any client
    publish to a ``$`` topic and drops the connection; AWS IoT's reserved ``$aws/`` topics
    carry the shadow protocol, so those are let through. ``$SYS`` and the rest stay closed."""

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
