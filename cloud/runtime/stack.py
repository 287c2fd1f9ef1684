"""The local stack: broker, shadow service, rules and batcher, scheduler, feeder, detectors.

``plantwatch up`` runs it on the wall clock; ``plantwatch demo`` runs it on a simulated,
accelerated clock. Components are the same engines the Lambda handlers wrap; this module
only builds local adapters and hands them over.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cloud import wire_decoder
from cloud.adapters.local import FsObjectStore, OutboxNotifier, SqliteStateStore
from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.adapters.local.mqtt_url import parse_broker_url, with_credentials
from cloud.l4e.naming import InputNaming
from cloud.l4e.sites import DEFAULT_SITE, SiteLayout
from cloud.ports import Notification
from cloud.runtime.broker import MAX_MESSAGE_KB, EmbeddedBroker
from cloud.runtime.broker_auth import AuthStore
from cloud.runtime.layout import BUCKET, INPUT_PREFIX, OUTPUT_PREFIX, QUARANTINE_PREFIX, DataLayout
from edge.clock import Clock
from edge.errors import ConfigError
from edge.wire import MAX_PUBLISHES_PER_S, NAME_RE

log = logging.getLogger("plantwatch.stack")

EventHook = Callable[[str, dict[str, Any]], None]
RULES_CLIENT_ID = "plantwatch-rules"
"""The rules runner's client id (its user name under ``--auth``): the embedded amqtt
broker PUBACKs a device's reading only once this client has PUBACKed its copy."""
SHADOW_CLIENT_ID = "plantwatch-shadow"
"""The shadow service's client id on the embedded broker (its user name under ``--auth``):
the amqtt broker sends it no will addressed to a shadow request topic."""
STREAMING_CLIENT_ID = "plantwatch-streaming"
DEVICES_CLIENT_ID = "plantwatch-devices"
DETECTORS_CLIENT_ID = "plantwatch-detectors"
SERVICE_CLIENT_IDS = (
    RULES_CLIENT_ID,
    SHADOW_CLIENT_ID,
    STREAMING_CLIENT_ID,
    DEVICES_CLIENT_ID,
    DETECTORS_CLIENT_ID,
)
"""The stack's own clients: the amqtt broker does not hold them to its bound on what it
keeps for a connection that falls behind (they stand in for AWS's services), and without
``--auth`` lets only a client with the per-run secret use their ids."""


@dataclass(frozen=True, slots=True)
class StackConfig:
    data: DataLayout
    broker_url: str | None = None
    """An external broker; None starts the embedded one."""
    broker_kind: str = "amqtt"
    host: str = "127.0.0.1"
    port: int = 0
    upload_frequency: str = "PT5M"
    delay_offset_min: int = 1
    grace_s: float = 20.0
    model_name: str | None = None
    """Model for the stack's scheduler; None runs no scheduler (ingest only)."""
    detector_models: tuple[Path, ...] = ()
    """CreateDetectorModel JSON, each run by its own engine on the detector inputs: a
    message reaches every model reading its input, an ``iotEvents`` action's too."""
    detector_inputs: tuple[Path, ...] = ()
    detector_lambdas: tuple[tuple[str, str], ...] = ()
    """``(function ARN, "package.module:function")``: callables for ``lambda`` actions."""
    alarm_models: tuple[Path, ...] = ()
    """CreateAlarmModel JSON run on the detector inputs (the default companion with ``up --model``)."""
    alert_limit: tuple[int, float] = (10, 3600.0)
    """Per-asset notification budget: at most this many alerts within this many seconds."""
    shadow_limits: bool = True
    streaming: bool = False
    """Score each reading as it arrives instead of once per upload window."""
    poll_interval_s: float = 0.1
    naming: InputNaming = field(default_factory=InputNaming)
    sites: tuple[str, ...] = (DEFAULT_SITE,)
    """Sites to score. The first is the default site, whose files keep the flat L4E names;
    each other one gets ``input/<site>/``, ``output/<site>/`` and its own scheduler
    (:mod:`cloud.l4e.sites`). Readings of sites not listed are still kept apart."""
    dashboard: Any = None
    """A ``cloud.dashboard.server.DashboardConfig`` to serve the dashboard with the stack;
    None serves none."""
    auth: bool = False
    """Credentials and topic ACLs on the embedded broker (``DATA/auth``); each service
    connects with its own credential."""
    max_message_kb: int = MAX_MESSAGE_KB
    """The embedded broker disconnects a client that publishes more (IoT Core: 128 KB)."""
    max_publishes_per_s: int = MAX_PUBLISHES_PER_S
    """The embedded amqtt broker drops a connection's publishes past this many a second
    (IoT Core: 100; 0: no limit); the stack's services are exempt."""
    archive: bool = True
    """Also keep every reading of the input files in the Parquet archive (``cloud.archive``)."""
    archive_policy: Any = None
    """An ``ArchivePolicy`` (flush bounds, compaction); None takes its defaults."""
    retention_interval_s: float = 3600.0
    """How often ``DIR/retention.toml`` is applied (stack clock)."""

    def __post_init__(self) -> None:
        if not self.sites or len(set(self.sites)) != len(self.sites):
            raise ConfigError("sites: expected one or more distinct site names")
        self.site_layout  # noqa: B018 - validates the default site's name
        for site in self.sites:
            if not NAME_RE.fullmatch(site):
                raise ConfigError(f"site {site!r}: must match {NAME_RE.pattern}")

    @property
    def site_layout(self) -> SiteLayout:
        return SiteLayout(self.sites[0])


class ObservedNotifier:
    """Tells the stack's event hook about every alert it passes on."""

    def __init__(self, inner: OutboxNotifier, hook: EventHook) -> None:
        self._inner = inner
        self._hook = hook

    def send(self, notification: Notification) -> None:
        self._inner.send(notification)
        self._hook(
            "alert",
            {
                "channel": notification.channel,
                "subject": notification.subject,
                "body": notification.body,
                "attributes": dict(notification.attributes),
            },
        )


class LocalStack:
    def __init__(
        self, config: StackConfig, clock: Clock, on_event: EventHook | None = None
    ) -> None:
        self.config = config
        self.clock = clock
        self._hook: EventHook = on_event or (lambda _kind, _detail: None)
        self.broker: EmbeddedBroker | None = None
        self.broker_url = config.broker_url or ""
        """Where the broker listens; never holds a password (printed and recorded)."""
        self.auth: AuthStore | None = None
        self.bucket = FsObjectStore(config.data.bucket)
        self.state = SqliteStateStore(config.data.state_db)
        self.notifier = ObservedNotifier(
            OutboxNotifier(config.data.alerts, clock=clock), self._hook
        )
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._stored: queue.SimpleQueue[tuple[str, int, list[dict[str, Any]]]] = queue.SimpleQueue()
        """Streaming results written and not yet fed to the detectors (event-driven feed)."""
        self._thread: threading.Thread | None = None
        self._closers: list[Callable[[], None]] = []
        self.batcher: Any = None
        self.scheduler: Any = None
        """The default site's scheduler; ``schedulers`` holds every site's."""
        self.schedulers: list[Any] = []
        self.engine: Any = None
        """The first detector model's engine; ``detectors`` holds every one, by model name."""
        self.detectors: dict[str, Any] = {}
        self.alarms: dict[str, Any] = {}
        self.feeder: Any = None
        self.router: Any = None
        self._beat_at = 0.0
        self.outbox: Any = None
        self.shadow_service: Any = None
        self.streaming: Any = None
        self.device_status: Any = None
        self.dashboard: Any = None
        self.archive: Any = None
        self._retention_at = float("-inf")
        self._rules: list[Any] | None = None
        """The rules the runner runs, loaded before the embedded broker starts."""
        self.errors: list[str] = []

    def start(self) -> LocalStack:
        """Start every component; if one fails, stop those already running and re-raise."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalStack:
        cfg = self.config
        self._closers.append(cfg.data.hold())  # released last: closers run in reverse
        if cfg.auth and cfg.broker_url:
            raise ConfigError(
                "--auth configures the embedded broker; give an external broker's "
                "credentials in --broker-url (mqtt://USER:PASSWORD@HOST:PORT)"
            )
        if cfg.auth:
            self.auth = AuthStore.in_data(cfg.data.root).ensure()
        if cfg.detector_models or cfg.alarm_models:
            from cloud.feeder import mark_existing_fed

            # before the stack is announced: what is there now is history, not news
            mark_existing_fed(self.bucket, self.results_prefix, self.state)
        if not cfg.broker_url:
            from cloud.rules.runner import load_rules, rule_subscriptions

            self._rules = load_rules()
            self.broker = EmbeddedBroker(
                cfg.broker_kind,
                cfg.host,
                cfg.port,
                max_message_kb=cfg.max_message_kb,
                auth=self.auth,
                on_log=lambda line: log.warning("broker: %s", line),
                hold_publishes=True,  # until every subscriber is in: see the end of _start
                # amqtt: a device's reading is PUBACKed once the rules runner has spooled it
                durable_subscriber=RULES_CLIENT_ID,
                # mosquitto: the runner's session and subscriptions live in DATA/broker and
                # are in place before a device can connect (EmbeddedBroker._prepare_session)
                durable_filters=rule_subscriptions(self._rules),
                state_dir=cfg.data.broker_state,
                shadow_service=SHADOW_CLIENT_ID,  # amqtt: it gets no will on shadow topics
                service_clients=SERVICE_CLIENT_IDS,
                max_publishes_per_s=cfg.max_publishes_per_s,
            )
            self._closers.append(self.broker.close)
            self.broker.start()
            self.broker_url = self.broker.url
        else:
            self.broker_url = parse_broker_url(cfg.broker_url).url
        self._hook(
            "broker",
            {"url": self.broker_url, "kind": self.broker.kind if self.broker else "external"},
        )
        self._start_shadow_service()
        self._start_device_status()
        self._start_ingest()
        if cfg.model_name and cfg.streaming:
            self._start_streaming(cfg.model_name)
        elif cfg.model_name:
            self._start_scheduler(cfg.model_name)
        if cfg.detector_models or cfg.alarm_models:
            self._start_detectors()
        if cfg.dashboard is not None:
            self._start_dashboard()
        if self.broker is not None:
            self.broker.open()  # every service has subscribed: devices' publishes may flow
        cfg.data.write_runtime(self.runtime_info())
        # a stopped stack leaves no runtime.json behind to send clients to a dead broker
        self._closers.insert(0, lambda: cfg.data.runtime_file.unlink(missing_ok=True))
        self._thread = threading.Thread(target=self._loop, name="plantwatch-stack", daemon=True)
        self._thread.start()
        return self

    @property
    def results_prefix(self) -> str:
        """Where results land: the scheduler's output prefix, or the streaming one."""
        from cloud.runtime.streaming import STREAM_PREFIX

        return STREAM_PREFIX if self.config.streaming else OUTPUT_PREFIX

    def service_url(self, service: str) -> str:
        """The broker URL *service* connects with: its own credential under ``--auth``,
        the embedded broker's per-run service secret without it, or the credentials of an
        external ``--broker-url``."""
        if self.auth is not None:
            return with_credentials(self.broker_url, service, self.auth.service_password(service))
        secret = self.broker.service_secret if self.broker is not None else None
        if secret is not None and service in SERVICE_CLIENT_IDS:
            return with_credentials(self.broker_url, service, secret)
        return self.config.broker_url or self.broker_url

    def runtime_info(self) -> dict[str, Any]:
        return {
            "broker": self.broker_url,
            "broker_kind": self.broker.kind if self.broker else "external",
            "broker_pid": self.broker.pid if self.broker else None,
            "auth": self.auth is not None,
            "auth_dir": str(self.auth.root) if self.auth is not None else None,
            "max_message_kb": self.config.max_message_kb if self.broker else None,
            "bucket": str(self.config.data.bucket),
            "state_db": str(self.config.data.state_db),
            "shadow_db": str(self.config.data.shadow_db),
            "shadow_rest": self.shadow_service.rest_url if self.shadow_service else None,
            "alerts": str(self.config.data.alerts),
            "upload_frequency": self.config.upload_frequency,
            "dashboard": self.dashboard.url if self.dashboard is not None else None,
            "sites": list(self.config.sites),
        }

    def _start_shadow_service(self) -> None:
        from cloud.shadow.service import ShadowService

        self.shadow_service = ShadowService(
            self.service_url(SHADOW_CLIENT_ID),
            str(self.config.data.shadow_db),
            self.clock,
            limits=self.config.shadow_limits,
            # the embedded broker knows it by this id; on another broker a random one
            client_id=SHADOW_CLIENT_ID if self.broker is not None else None,
            # boto3 iot-data on loopback; not with --auth, as the REST face checks no
            # credentials and would bypass the broker's ACL.
            rest_port=0 if self.auth is None else None,
        )
        self.shadow_service.start()
        self._closers.append(self.shadow_service.stop)

    def _start_device_status(self) -> None:
        from cloud.runtime.device_status import DeviceStatusListener

        listener = DeviceStatusListener(
            self.service_url(DEVICES_CLIENT_ID),
            self.state,
            self.bucket,
            self.clock,
            quarantine_prefix=QUARANTINE_PREFIX,
        )
        listener.start()
        self.device_status = listener
        self._closers.append(listener.stop)

    def _start_dashboard(self) -> None:
        """Last, so every store it reads exists; stopped first (closers run in reverse)."""
        from cloud.dashboard.actions import EngineActions
        from cloud.dashboard.app import Credentials
        from cloud.dashboard.server import DashboardServer
        from cloud.runtime.broker import is_loopback

        config = self.config.dashboard
        if self.auth is not None and not is_loopback(config.host):
            # off loopback the dashboard follows --auth: the operator's credential
            password = self.auth.service_password("plantwatch-operator")
            config = replace(config, credentials=Credentials("plantwatch-operator", password))
        actions = EngineActions(self.alarm_engines) if config.alarm_actions else None
        self.dashboard = DashboardServer(
            self.config.data.root, config, default_site=self.config.sites[0], actions=actions
        ).start()
        self._closers.append(self.dashboard.stop)
        self._hook("dashboard", {"url": self.dashboard.url})

    def alarm_engines(self) -> dict[str, Any]:
        """The alarm-model engines this stack runs, by model name."""
        return dict(self.alarms)

    def _start_ingest(self) -> None:
        from cloud.batcher import Batcher, BatcherConfig
        from cloud.l4e.naming import upload_frequency_seconds
        from cloud.rules.runner import RulesRunner, load_rules

        cfg = self.config
        self.batcher = Batcher(
            self.bucket,
            BatcherConfig(
                prefix=INPUT_PREFIX,
                upload_frequency_s=upload_frequency_seconds(cfg.upload_frequency),
                grace_s=cfg.grace_s,
                naming=cfg.naming,
                quarantine_prefix=QUARANTINE_PREFIX,
                sites=cfg.site_layout,
            ),
            self.clock,
            spool_path=str(cfg.data.spool_db),
            decode=wire_decoder.decode_rows,
            dumps=wire_decoder.dumps,
            archive=cfg.archive,
        )
        if cfg.archive:
            from cloud.archive import ArchiveWriter

            self.archive = ArchiveWriter(
                cfg.data.archive, self.batcher.spool, self.clock, cfg.archive_policy
            ).open()
            self.archive.start()
            # closers run in reverse: the rules' last flush queues, then this drains it
            self._closers.append(self.archive.close)
        self.rules = RulesRunner(
            self.service_url(RULES_CLIENT_ID),
            self._rules if self._rules is not None else load_rules(),
            self.batcher,
            self.clock,
            # the embedded broker's kind is known: no probe; awscrt where it speaks MQTT 5
            client={"mosquitto": "crt", "amqtt": "paho"}.get(
                self.broker.kind if self.broker else "", "auto"
            ),
        )
        self.rules.start()
        self._closers.append(self.rules.stop)

    def _start_scheduler(self, model_name: str) -> None:
        from cloud.inference.scheduler import (
            SCHEDULERS_NS,
            Scheduler,
            SchedulerConfig,
            create_scheduler,
        )

        model = load_model(self.config.data.models, model_name)
        layout = self.config.site_layout
        for i, site in enumerate(self.config.sites):
            config = SchedulerConfig(
                name=f"{model_name}-scheduler" if i == 0 else f"{model_name}-{site}-scheduler",
                model_name=model_name,
                input_bucket=BUCKET,
                input_prefix=layout.prefix(INPUT_PREFIX, site),
                output_bucket=BUCKET,
                output_prefix=layout.prefix(OUTPUT_PREFIX, site),
                upload_frequency=self.config.upload_frequency,
                delay_offset_min=self.config.delay_offset_min,
                naming=self.config.naming,
            )
            if self.state.get(SCHEDULERS_NS, config.name) is None:
                # Registered like `plantwatch schedulers create`, so executions and events
                # commands find it by name.
                create_scheduler(self.state, config, self.clock.now())
            scheduler = Scheduler(config, model, self.bucket, self.bucket, self.state, self.clock)
            scheduler.drop_claims()  # stack.lock: a claim found now is a dead process's
            self.schedulers.append(scheduler)
        self.scheduler = self.schedulers[0]

    def _start_streaming(self, model_name: str) -> None:
        from cloud.l4e.naming import upload_frequency_seconds
        from cloud.runtime.streaming import StreamingRunner

        runner = StreamingRunner(
            self.service_url(STREAMING_CLIENT_ID),
            load_model(self.config.data.models, model_name),
            self.bucket,
            self.clock,
            frequency_s=upload_frequency_seconds(self.config.upload_frequency),
            sites=self.config.site_layout,
            on_stored=self._on_stored,
            ignore_retained=self.broker is not None and self.broker.kind == "mosquitto",
        )
        runner.start()
        self.streaming = runner
        self._closers.append(runner.stop)

    def _start_detectors(self) -> None:
        from cloud.detectors import DetectorEngine, load_detector_model, load_input
        from cloud.detectors.actions import LocalActionSink, load_callable
        from cloud.detectors.alarms import AlarmEngine, NotificationLimiter, load_alarm_model
        from cloud.detectors.outbox import DeliveryOutbox
        from cloud.detectors.router import MessageRouter
        from cloud.feeder import ResultsFeeder
        from cloud.l4e.naming import upload_frequency_seconds

        cfg = self.config
        publisher = MqttPublisher(self.service_url(DETECTORS_CLIENT_ID), DETECTORS_CLIENT_ID)
        self._closers.append(publisher.close)
        inputs = [load_input(p) for p in cfg.detector_inputs]
        alarm_models = [load_alarm_model(p) for p in cfg.alarm_models]
        limiter = NotificationLimiter(self.state, *cfg.alert_limit)
        # alerts and shadow commands that fail are retried from the state store, across
        # restarts, instead of being logged and lost
        lambdas = {arn: load_callable(spec) for arn, spec in cfg.detector_lambdas}
        self.outbox = DeliveryOutbox(
            LocalActionSink(
                self.notifier,
                publisher,
                state=self.state,
                limiter=limiter,
                ack_alarm=alarm_models[0].name if alarm_models else None,
                lambdas=lambdas,
            ),
            self.state,
            self.clock,
        )
        for path in cfg.detector_models:
            model = load_detector_model(path)
            if model.name in self.detectors:  # one namespace: the second would take over
                raise ConfigError(
                    f"{path}: detectorModelName {model.name!r} is also another detector "
                    "model's; each detector model needs its own name"
                )
            self.detectors[model.name] = DetectorEngine(
                model, inputs, self.state, self.clock, self.outbox
            )
        self.engine = next(iter(self.detectors.values()), None)
        engines: list[Any] = list(self.detectors.values())
        for model in alarm_models:
            self.alarms[model.name] = AlarmEngine(
                model, inputs, self.state, self.clock, self.outbox, limiter=limiter
            )
        engines.extend(self.alarms.values())
        self.router = MessageRouter(engines, self.state, self.clock)
        self.outbox.bind(self.router)  # an iotEvents action reaches every model reading it
        self.feeder = ResultsFeeder(
            self.bucket,
            self.results_prefix,
            self.router,
            self.state,
            sites=cfg.site_layout,
            stale_after_s=2.0 * upload_frequency_seconds(cfg.upload_frequency),
        )

    def _on_stored(self, _asset: str, key: str, first: int, lines: list[dict[str, Any]]) -> None:
        """Streaming results were written (scorer's thread): wake the loop to feed them."""
        self._stored.put((key, first, lines))
        self._wake.set()

    def _loop(self) -> None:
        polled = False  # streaming feeds what it is told; one poll first catches up
        due = 0.0
        while not self._stop.is_set():
            try:
                if not self.config.streaming or not polled:
                    self.step()
                    polled = True
                else:
                    self._feed_stored()
                    if time.monotonic() >= due:  # periodic duties keep their pace
                        due = time.monotonic() + self.config.poll_interval_s
                        self.step(feed=False)
                    else:
                        for engine in self.detectors.values():
                            engine.tick()
            except Exception as exc:  # the loop must outlive one bad step; the error is kept
                # what failed (a streamed row a model could not save) may never be told
                # again: the next pass polls, which feeds every object to its end
                polled = False
                log.exception("stack step failed")
                self.errors.append(f"{type(exc).__name__}: {exc}")
                self._hook("error", {"error": f"{type(exc).__name__}: {exc}"})
            self._wake.wait(self.config.poll_interval_s)
            self._wake.clear()

    def _feed_stored(self) -> None:
        """Feed the detectors what the streaming sink wrote since the last pass."""
        fed = 0
        while True:
            try:
                key, first, lines = self._stored.get_nowait()
            except queue.Empty:
                break
            if self.feeder is not None:  # no detectors or alarms: nothing to feed
                fed += self.feeder.feed_lines(key, first, lines)
        if fed:
            self._hook("fed", {"rows": fed})

    def step(self, *, feed: bool = True) -> None:
        """One pass of every periodic duty: flush windows, run schedules, feed detectors
        (by polling the results, unless *feed* is False: streaming feeds as it writes),
        expire what the retention rules say."""
        for key in self.batcher.flush_due():
            self._hook("batch", {"key": key})
        if self.clock.now() - self._retention_at >= self.config.retention_interval_s:
            self._retention_at = self.clock.now()
            self._apply_retention()
        for scheduler in self.schedulers:
            for execution in scheduler.run_due():
                self._hook("execution", {"execution": execution})
        if self.feeder is not None:
            # each duty runs whatever another did (a row or a timer one model cannot save
            # fails at every step until fixed); the first failure is raised after them all,
            # as the timers Lambda does
            failures: list[Exception] = []

            def run(duty: Callable[[], Any]) -> None:
                try:
                    duty()
                except Exception as exc:
                    failures.append(exc)

            # the rows go through the router one by one, each routed (and any failure
            # raised) before the feeder counts it fed: inside a hold they would only be
            # queued, and a row a model then failed would be lost to it
            if feed:
                run(self._poll_results)
            # an iotEvents action's message waits until the engine that sent it is done
            with self.router.holding():
                for engine in self.detectors.values():
                    run(engine.tick)
                self._step_alarms(run)
                run(self.outbox.retry_due)
            if failures:
                raise failures[0]

    def _poll_results(self) -> None:
        while True:  # what the sink told is covered by the poll
            try:
                self._stored.get_nowait()
            except queue.Empty:
                break
        fed = self.feeder.poll()
        if fed:
            self._hook("fed", {"rows": fed})

    def _apply_retention(self) -> None:
        from cloud.archive import retention

        rules = retention.load_rules(self.config.data.retention_file)
        if rules:
            expired = retention.apply(self.config.data.bucket, rules, self.clock.now())
            if expired.objects or expired.partitions:
                self._hook("retention", expired.to_dict())

    def _step_alarms(self, run: Callable[[Callable[[], Any]], None]) -> None:
        """Due reminders and snooze expiries, then operator requests from the CLI; each
        through *run*, so one alarm model failing holds up no other."""
        if not self.alarms:
            return
        from cloud.detectors.alarms import operations

        for alarm_engine in self.alarms.values():
            run(alarm_engine.tick)
        run(lambda: operations.drain(self.state, self.alarms))
        run(self._beat)

    def _beat(self) -> None:
        from cloud.detectors.alarms import operations

        wall = time.time()  # liveness of this process, not plant time: wall clock on purpose
        if wall - self._beat_at >= 1.0:
            operations.beat(self.state, wall, sorted(self.alarms))
            self._beat_at = wall

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.step()
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        if self.alarms:
            from cloud.detectors.alarms import operations

            for alarm_engine in self.alarms.values():
                alarm_engine.close()
            operations.stopped(self.state)
        for close in reversed(self._closers):
            try:
                close()
            except Exception:
                log.exception("shutdown step failed")
        self._closers.clear()


def load_model(models: Path, name: str) -> Any:
    """The model's active version; a missing model is bad input with a hint, not a crash."""
    from cloud.inference.registry import ModelRegistry
    from edge.errors import ConfigError, NotFoundError

    registry = ModelRegistry(FsObjectStore(models, create=False), where=str(models))
    try:
        return registry.load(name)
    except NotFoundError as exc:
        raise ConfigError(f"{exc}; train one with `plantwatch model train --name {name}`") from exc
