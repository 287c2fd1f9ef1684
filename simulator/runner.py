"""Drive a stepper (fleet or replay) on a clock and hand its samples to sinks.

Two ways out to the broker:

* :func:`agent_sinks` — the edge agent (``edge.agent.Agent``), imported lazily: one agent
  per asset, or gateway agents of up to 12 assets each. Its durable queue, QoS 1 and shadow
  handling are the same code a field device runs. A ``mode`` shadow command reaches the
  fleet through :class:`FleetSource.apply`.
* :class:`DirectPublisher` — paho QoS 1 straight from the simulator (no queue), used when the
  agent is not installed and by the benchmark. It also applies shadow deltas (``mode``)
  through the same ``apply(asset, key, value)`` hook the agent calls, and reports them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from edge.clock import Clock
from edge.errors import PlantwatchError
from edge.wire import MAX_SUBSCRIPTIONS, Sample, batch_samples, encode, shadow_topic
from simulator.fleet import FleetSimulator, Sink

log = logging.getLogger("simulator.runner")


class Stepper(Protocol):
    """Anything that yields every sample due in ``(last, until]``: a fleet or a replay."""

    def step(self, until: float) -> dict[str, list[Sample]]: ...


class FleetSource:
    """The edge agent's ``Source`` protocol over a fleet: ``poll`` steps, ``apply`` commands."""

    def __init__(self, fleet: FleetSimulator) -> None:
        self.fleet = fleet

    def step(self, until: float) -> dict[str, list[Sample]]:
        return self.fleet.step(until)

    def poll(self, now: float) -> list[tuple[str, Sample]]:
        return [(asset, s) for asset, samples in self.step(now).items() for s in samples]

    def apply(self, asset: str, key: str, value: object) -> None:
        """A command applied on the device; ValueError for one the fleet cannot apply."""
        if key != "mode" or not isinstance(value, str):
            raise ValueError(f"{key}: the simulated fleet applies only 'mode' (a string)")
        self.fleet.set_mode(asset, value)


def run(
    stepper: Stepper,
    sink: Sink,
    clock: Clock,
    *,
    until: float | None = None,
    tick_s: float = 1.0,
    stop: threading.Event | None = None,
) -> int:
    """Step to ``clock.now()`` every *tick_s* clock seconds until *until*; return readings sent."""
    sent = 0
    while stop is None or not stop.is_set():
        now = clock.now()
        target = now if until is None else min(now, until)
        for asset, samples in stepper.step(target).items():
            if samples:
                sink(asset, samples)
                sent += len(samples)
        if until is not None and target >= until:
            break
        clock.sleep(tick_s)
    return sent


class DirectPublisher:
    """QoS 1 publisher of wire messages with paho; the simulator's own route to a broker.

    Publishes are pipelined (paho's in-flight window) rather than waited on one by one, so
    throughput is the broker's; :meth:`flush` waits for every PUBACK.
    """

    def __init__(
        self,
        url: str,
        *,
        site: str,
        sender: str,
        samples_per_message: int = 20,
        inflight: int = 100,
        on_command: Callable[[str, str, object], None] | None = None,
        assets: Sequence[str] = (),
    ) -> None:
        import paho.mqtt.client as mqtt

        from cloud.adapters.local.mqtt_url import parse_broker_url

        address = parse_broker_url(url)
        self.site = site
        self.sender = sender
        self.per_message = samples_per_message
        self.messages = 0
        self._seq = 0
        self._last: Any = None
        self._on_command = on_command
        self._versions: dict[str, int] = {}
        """Per thing, the version of the last delta applied."""
        self._assets = frozenset(assets)
        delta_filters = [shadow_topic(asset, "update/delta") for asset in assets]
        if len(delta_filters) > MAX_SUBSCRIPTIONS:
            # IoT Core (and amqtt, as it) takes 50 subscriptions a connection; past that one
            # wildcard follows them all, and _on_message skips the things of other fleets
            delta_filters = [shadow_topic("+", "update/delta")]
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=sender)
        address.apply(self._client)  # TLS, and USER:PASSWORD@ from the URL (up --auth)
        self._client.max_inflight_messages_set(inflight)
        self._client.max_queued_messages_set(0)
        connected = threading.Event()

        def on_connect(client: Any, _u: object, _f: object, rc: Any, _p: object = None) -> None:
            if on_command is not None:
                for topic_filter in delta_filters:
                    client.subscribe(topic_filter, 1)
            connected.set()

        self._client.on_connect = on_connect
        self._client.on_message = self._on_message
        try:
            # devices use a 300 s keep-alive (iot-core-rules-and-limits §2's project rule)
            self._client.connect(address.host, address.port, keepalive=300)
        except OSError as exc:
            raise PlantwatchError(f"{address.url}: cannot connect ({exc})") from None
        self._client.loop_start()
        if not connected.wait(15):
            self.close()
            raise PlantwatchError(f"{address.url}: no CONNACK within 15 s")

    def _on_message(self, _c: object, _u: object, msg: Any) -> None:
        """A shadow delta: apply each desired key the fleet knows, report what was applied.

        Deltas may come more than once and out of order (the broker may deliver a message
        again, with a new packet id); as AWS's shadow guide says, one whose ``version`` is
        not newer than the last applied is old news and is skipped: applied, a late one
        would undo a newer command."""
        thing = msg.topic.split("/")[2]
        if thing not in self._assets:
            return
        try:
            doc = json.loads(msg.payload)
            desired = doc["state"]
        except (ValueError, KeyError, TypeError):
            log.warning("%s: delta without a state object", msg.topic)
            return
        if self._on_command is None or not isinstance(desired, dict):
            return
        version = doc.get("version")
        if isinstance(version, int) and not isinstance(version, bool):
            last = self._versions.get(thing)
            if last is not None and version <= last:
                log.info(
                    "%s: delta version %d is not newer than %d, already applied; skipped",
                    thing,
                    version,
                    last,
                )
                return
            self._versions[thing] = version
        applied = {}
        for key, value in desired.items():
            try:
                self._on_command(thing, key, value)
            except ValueError as exc:
                log.warning("%s: %s rejected: %s", thing, key, exc)
                continue
            applied[key] = value
        if applied:
            reported = json.dumps({"state": {"reported": applied}}).encode()
            self._client.publish(shadow_topic(thing, "update"), reported, qos=1)

    def __call__(self, asset: str, samples: Sequence[Sample]) -> None:
        for message in batch_samples(
            self.site, asset, self.sender, self._seq, samples, self.per_message
        ):
            self._last = self._client.publish(message.topic, encode(message), qos=1)
            self._seq = message.seq + 1
            self.messages += 1

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until the broker has acknowledged everything published so far."""
        if self._last is not None:
            self._last.wait_for_publish(timeout)
            if not self._last.is_published():
                raise PlantwatchError(f"publishes not acknowledged within {timeout:.0f} s")

    def close(self) -> None:
        self._client.disconnect()  # first: it wakes the network thread, which loop_stop waits for
        self._client.loop_stop()


def agent_sinks(
    assets: Sequence[str],
    *,
    site: str,
    broker_url: str,
    data_dir: Path,
    clock: Clock,
    gateway: bool,
    source: FleetSource | None = None,
    samples_per_message: int = 20,
) -> tuple[Sink, Callable[[], None]] | None:
    """Sinks through the edge agent, or None when the agent is not installed.

    Returns ``(sink, stop)``. With *source*, each agent's ``mode`` command handler reaches
    the fleet (the agent calls ``source.apply``).
    """
    try:
        from edge.agent import Agent, AgentConfig
    except ImportError:
        return None
    data_dir.mkdir(parents=True, exist_ok=True)
    groups = _gateway_groups(assets) if gateway else [(a,) for a in assets]
    agents: dict[str, Any] = {}
    started = []
    for n, group in enumerate(groups, 1):
        gateway_name = f"gw-{site}" if len(groups) == 1 else f"gw-{site}-{n}"
        sender = gateway_name if gateway else group[0]
        config = AgentConfig(
            site=site,
            sender=sender,
            broker_url=broker_url,
            queue_path=str(data_dir / f"{sender}.queue.sqlite"),
            assets=group,
            samples_per_message=samples_per_message,
        )
        agent = Agent(config, clock)
        if source is not None:
            agent.add_source(_CommandsOnly(source))
        agent.start()
        started.append(agent)
        for asset in group:
            agents[asset] = agent

    def sink(asset: str, samples: Sequence[Sample]) -> None:
        agents[asset].submit(asset, samples)

    def stop() -> None:
        for agent in started:
            agent.stop(flush=True)

    return sink, stop


def _gateway_groups(assets: Sequence[str]) -> list[tuple[str, ...]]:
    """The assets in gateways of at most as many as one connection can follow the shadows
    of: an agent subscribes to :data:`~edge.shadow.SUBSCRIPTIONS_PER_THING` topics per asset,
    and IoT Core (and amqtt, as it) takes :data:`~edge.wire.MAX_SUBSCRIPTIONS` a connection,
    past which one gateway for the whole fleet never got connected."""
    from edge.shadow import SUBSCRIPTIONS_PER_THING

    size = MAX_SUBSCRIPTIONS // SUBSCRIPTIONS_PER_THING
    return [tuple(assets[i : i + size]) for i in range(0, len(assets), size)]


class _CommandsOnly:
    """Registered with an agent only to receive applied commands; the runner does the polling."""

    def __init__(self, source: FleetSource) -> None:
        self._source = source

    def poll(self, now: float) -> list[tuple[str, Sample]]:
        return []

    def apply(self, asset: str, key: str, value: object) -> None:
        self._source.apply(asset, key, value)
