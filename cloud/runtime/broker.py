"""Start, stop and kill a real MQTT broker on loopback: amqtt (pip) or mosquitto (PATH).

amqtt is the default because it installs with pip, so the two-command quick start holds;
mosquitto is about 2.7x faster at QoS 1 and speaks MQTT 5, and is used when asked for.

Both are configured alike: a client that sends a packet larger than the message limit
(IoT Core's 128 KB by default, plus room for the topic and headers) is disconnected, as
IoT Core does, before the broker reads the body; with ``auth`` both read the password and
ACL files of ``cloud.runtime.broker_auth`` and refuse anonymous clients. Publishes to
reserved ``$`` topics other than ``$aws/...`` go nowhere on both. amqtt also applies IoT
Core's client id, topic size and depth and keep-alive limits itself
(``cloud.runtime.amqtt_server``); mosquitto has no options for them (see
``docs/protocol.md``).

amqtt holds devices' publishes until the stack has subscribed (``hold_publishes``);
mosquitto cannot, so with a ``state_dir`` it keeps its sessions in a file and starts in
two phases, the durable subscriber's session subscribed before the public listener opens
(:meth:`EmbeddedBroker._prepare_session`).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from cloud.adapters.local.mqtt_url import BrokerAddress, parse_broker_url
from cloud.runtime.broker_auth import SERVICE_SECRET_ENV, AuthStore
from edge.cliargs import one_line
from edge.errors import ConfigError, PlantwatchError
from edge.signals import process_alive

BROKER_KINDS = ("amqtt", "mosquitto", "auto")
MAX_MESSAGE_KB = 128
"""IoT Core's payload limit."""
PACKET_HEADROOM = 1024
"""Bytes allowed beyond the payload limit for the fixed header, the topic (IoT Core: at most
256 bytes) and MQTT 5 properties; the services check the payload's exact size themselves."""


RESERVED_TOPICS_ACL = """\
# IoT Core: topics starting with $ are reserved, only $aws/... ones are usable.
# A pattern '#' never matches a $ topic, so publishes to $SYS/... or $foo/... go nowhere.
pattern readwrite #
pattern readwrite $aws/#
"""
"""mosquitto's ACL without ``--auth`` (with it, every credential's grants already leave
the reserved topics out)."""


LOG_LINES_PER_MINUTE = 10
"""Broker log lines relayed to the operator per minute; the rest are counted: a device
re-sending a refused message after each reconnect would otherwise fill the terminal."""


def max_packet_bytes(max_message_kb: int) -> int:
    return max_message_kb * 1024 + PACKET_HEADROOM


__all__ = ["BROKER_KINDS", "BrokerAddress", "EmbeddedBroker", "free_port", "parse_broker_url"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )


def is_loopback(host: str) -> bool:
    """Only this machine can connect: ``localhost`` or a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_kind(kind: str) -> str:
    if kind not in BROKER_KINDS:
        raise ConfigError(f"broker {kind!r}: expected one of {', '.join(BROKER_KINDS)}")
    if kind == "auto":
        return "mosquitto" if mosquitto_path() else "amqtt"
    if kind == "mosquitto" and not mosquitto_path():
        raise ConfigError(
            "broker 'mosquitto': no mosquitto binary on PATH (apt-get install mosquitto)"
        )
    return kind


HOLD_PUBLISHES_S = 30.0
"""The longest a broker started with ``hold_publishes`` holds publishes if never opened."""
STATE_FILE = "mosquitto.db"
LOCK_FILE = "lock"
"""Beside the state file: locked while a broker uses the folder (by its starter, and by
mosquitto's guard until mosquitto has written the file and exited); holds the starter's pid."""
SUBSCRIPTIONS_FILE = "subscriptions.json"
"""Beside the state file: the filters ``_prepare_session`` subscribed, by client id."""
GUARD_GRACEFUL_S = 60.0
"""How long the guard lets mosquitto write its state file after the starter died."""
WORKDIR_PREFIX = "plantwatch-broker-"
OWNER_FILE = "owner.pid"


def remove_stale_workdirs() -> None:
    """Remove the working folders of brokers whose starter is gone: ``close`` removes its
    own, but a SIGKILLed ``plantwatch up`` cannot, and each left one in the temp folder."""
    for folder in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        try:
            owner = int((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not one this version made, or being made right now
        if not process_alive(owner):
            shutil.rmtree(folder, ignore_errors=True)


def relay_log(
    lines: Iterable[bytes],
    path: Path,
    emit: Callable[[str], None],
    *,
    per_minute: int = LOG_LINES_PER_MINUTE,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Copy the broker's log *lines* to *path* and hand them to *emit*, *per_minute* at the
    most, then one line counting the rest (when the next minute's first line comes, or when
    the broker closes its end). It never raises: a reader that stopped would leave the
    broker blocked on a full pipe."""
    started, shown, held = clock(), 0, 0
    try:
        # unbuffered: a write that fails (a full temp folder) leaves nothing pending
        file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed below
    except OSError:
        file = None

    def count_held() -> None:
        where = f"; {path} has them all" if file is not None else ""
        emit(f"{held} broker log lines not shown (at most {per_minute} a minute){where}")

    for raw in lines:
        if file is not None:
            with contextlib.suppress(OSError):  # the operator still gets the line
                file.write(raw)
        try:
            now = clock()
            if now - started >= 60:
                if held:
                    count_held()
                started, shown, held = now, 0, 0
            if shown < per_minute:
                shown += 1
                emit(raw.decode(errors="replace").rstrip())
            else:
                held += 1
        except Exception:  # keep draining the pipe whatever happens
            continue
    with contextlib.suppress(Exception):
        if held:
            count_held()
    if file is not None:
        file.close()


def subscribe_session(
    socket_path: str,
    client_id: str,
    filters: Sequence[str],
    *,
    unsubscribe: Sequence[str] = (),
    password: str | None = None,
    timeout: float = 10.0,
) -> None:
    """Over the unix socket *socket_path*, give *client_id*'s persistent MQTT 5 session a
    QoS 1 subscription to each of *filters* (retained messages not sent, as the rules
    runner subscribes), take *unsubscribe* out of it, then disconnect. Nothing it receives
    is acknowledged (manual acks, one message in flight at most): the session keeps it for
    the real subscriber. With a *password* it logs in as *client_id*, the broker's
    ``use_username_as_clientid``."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.subscribeoptions import SubscribeOptions

    from cloud.rules.transport import SESSION_EXPIRY_S

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        transport="unix",
        manual_ack=True,
    )
    if password is not None:
        client.username_pw_set(client_id, password)
    outcome: list[str] = []
    done = threading.Event()

    def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        if reason.is_failure:
            outcome.append(f"CONNECT refused: {reason}")
            done.set()
            return
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
        c.subscribe([(f, options) for f in filters])

    def on_subscribe(c: Any, _u: Any, _mid: Any, reasons: Any, _p: Any = None) -> None:
        refused = [f for f, r in zip(filters, reasons, strict=False) if r.is_failure]
        if refused:
            outcome.append(f"subscription to {', '.join(refused)} refused")
        if unsubscribe and not refused:
            c.unsubscribe(list(unsubscribe))
        else:
            done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_unsubscribe = lambda *_a: done.set()
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = SESSION_EXPIRY_S
    properties.ReceiveMaximum = 1
    try:
        client.connect(socket_path, clean_start=False, properties=properties)
    except OSError as exc:
        raise PlantwatchError(f"broker setup socket {socket_path}: {exc}") from exc
    client.loop_start()
    try:
        if not done.wait(timeout):
            raise PlantwatchError(
                f"broker setup: no SUBACK for {client_id} within {timeout:.0f} s; see the broker log"
            )
        if outcome:
            raise PlantwatchError(f"broker setup for {client_id}: {outcome[0]}")
    finally:
        client.disconnect()
        client.loop_stop()


class EmbeddedBroker:
    """A broker child process; ``kill()`` and ``start()`` again keep the same port (chaos tests)."""

    def __init__(
        self,
        kind: str = "amqtt",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_message_kb: int = MAX_MESSAGE_KB,
        auth: AuthStore | None = None,
        on_log: Callable[[str], None] | None = None,
        hold_publishes: bool = False,
        durable_subscriber: str | None = None,
        durable_filters: Sequence[str] = (),
        state_dir: Path | None = None,
        shadow_service: str | None = None,
        service_clients: Sequence[str] = (),
        max_publishes_per_s: int = 0,
    ) -> None:
        """*on_log* gets each line the broker logs (refused publishes and connections,
        errors): the broker's own log lives in a temporary folder nobody reads, so a
        device the broker keeps disconnecting would leave its operator no reason.

        mosquitto with *state_dir*: sessions, subscriptions, queued messages and retained
        messages live in ``state_dir/mosquitto.db`` across restarts, and every ``start``
        first makes sure *durable_subscriber*'s persistent session holds a QoS 1
        subscription to each of *durable_filters* (:meth:`_prepare_session`), so what a
        device publishes from the first moment waits in that session for the subscriber."""
        if max_message_kb < 1:
            raise ConfigError(f"max message size {max_message_kb} KB: expected at least 1")
        if auth is None and not is_loopback(host):
            raise ConfigError(
                f"--host {host}: a broker reachable from other machines needs --auth "
                "(credentials and topic ACLs); without it bind 127.0.0.1"
            )
        self.kind = resolve_kind(kind)
        self.host = host
        self.port = port or free_port(host)
        self.max_message_kb = max_message_kb
        self.auth = auth
        self._on_log = on_log
        self._relay: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._guard: subprocess.Popen[bytes] | None = None
        """mosquitto's :mod:`cloud.runtime.broker_guard` (amqtt watches its starter itself)."""
        self._lifeline: int | None = None
        """The write end of the pipe the broker (amqtt) or its guard watches."""
        self.hold_publishes = hold_publishes
        """amqtt: hold every PUBLISH (unacknowledged, unrouted) until :meth:`open`, at most
        HOLD_PUBLISHES_S; mosquitto has no such option (see docs/protocol.md): with
        *state_dir* the durable subscriber's session is subscribed before it opens."""
        self.durable_subscriber = durable_subscriber
        """amqtt: the client id (the rules runner's) whose PUBACK of its copy of a device's
        QoS 1 publish the device's PUBACK waits for; mosquitto cannot (docs/protocol.md),
        but with *state_dir* its session is subscribed before any device can connect."""
        self.durable_filters = tuple(durable_filters)
        self.shadow_service = shadow_service
        """amqtt: the shadow service's client id, which gets no will sent to a shadow
        request topic (AWS's Device Shadow service ignores those); mosquitto cannot."""
        self.service_clients = tuple(service_clients)
        """amqtt: the stack's own services, which the broker does not hold to its bound on
        what it keeps for a connection that falls behind (docs/protocol.md)."""
        self.max_publishes_per_s = max_publishes_per_s
        """amqtt: a connection's publishes past this many a second are dropped, unacknowledged,
        as IoT Core does past 100 (0: no limit; *service_clients* exempt); mosquitto has no
        such option. ``plantwatch up`` passes IoT Core's 100."""
        self.service_secret = (
            secrets.token_urlsafe(24)
            if self.kind == "amqtt" and auth is None and self.service_clients
            else None
        )
        """amqtt without *auth*: the per-run password, kept in memory only, that the services
        present (user name = their client id) so no other client can take their ids and,
        by MQTT's session takeover, disconnect them; a device needs no credentials. With
        *auth* each service has its own credential and its id is its user name."""
        self.state_dir = state_dir if self.kind == "mosquitto" else None
        """mosquitto's persistence folder; None keeps everything in memory."""
        self._state_lock: int | None = None
        """The locked ``LOCK_FILE`` while this broker uses *state_dir* (until ``close``)."""
        remove_stale_workdirs()
        self._workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        (self._workdir / OWNER_FILE).write_text(f"{os.getpid()}\n")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def log_file(self) -> Path:
        return self._workdir / "broker.log"

    def reload(self) -> None:
        """Re-read the password and ACL files (SIGHUP, for both brokers)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGHUP)

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress(self.host, self.port)

    @property
    def url(self) -> str:
        return self.address.url

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _command(self, listener: str | None = None) -> list[str]:
        """The broker's command line; mosquitto listens on *listener* (``PORT HOST`` or
        ``0 SOCKET_PATH``), by default on this broker's address."""
        limit = max_packet_bytes(self.max_message_kb)
        if self.kind == "mosquitto":
            conf = self._workdir / "mosquitto.conf"
            lines = [
                f"listener {listener or f'{self.port} {self.host}'}",
                *self._persistence_lines(),
                "max_inflight_messages 1000",
                "max_queued_messages 1000000",
                f"max_packet_size {limit}",
                "max_qos 1",
                # MQTT 5 clients asking for 0 or over 1200 s are told 1200 (IoT Core clamps
                # so); mosquitto has no lower bound and leaves 3.1.1 clients as they ask
                "max_keepalive 1200",
                # IoT Core takes up to 8 topic aliases from a client (mosquitto: 10)
                "max_topic_alias 8",
                "log_type error",
                "log_timestamp false",
            ]
            if self.auth is None:
                acl = self._workdir / "reserved.acl"
                acl.write_text(RESERVED_TOPICS_ACL)
                # mosquitto started as root reads it as user "mosquitto": nothing in it is secret
                acl.chmod(0o644)
                self._workdir.chmod(0o711)
                lines += ["allow_anonymous true", f"acl_file {acl}"]
            else:
                lines += [
                    "allow_anonymous false",
                    f"password_file {self.auth.passwd_file.resolve()}",
                    f"acl_file {self.auth.acl_file.resolve()}",
                    "use_username_as_clientid true",
                ]
            if os.geteuid() == 0 and (self.auth is not None or self.state_dir is not None):
                # mosquitto started as root switches to user "mosquitto", which cannot read
                # the 0600 credential files nor write its state file in the data folder;
                # stay the user that wrote them.
                lines.append("user root")
            for line in lines:
                if "\n" in line or "\r" in line:
                    # the rest of the line would be read as settings of its own
                    raise ConfigError(
                        f"{one_line(line)}: a path with a line break cannot go into "
                        "mosquitto's config file; use a data folder whose path has none"
                    )
            conf.write_text("\n".join(lines) + "\n")
            return [str(mosquitto_path()), "-c", str(conf)]
        command = [
            sys.executable,
            "-m",
            "cloud.runtime.amqtt_server",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--max-packet-bytes",
            str(limit),
            "--max-payload-bytes",
            str(self.max_message_kb * 1024),
            "--parent-pid",
            str(os.getpid()),
        ]
        if self.auth is not None:
            command += ["--passwd", str(self.auth.passwd_file), "--acl", str(self.auth.acl_file)]
        if self.durable_subscriber:
            command += ["--durable-subscriber", self.durable_subscriber]
        if self.shadow_service:
            command += ["--shadow-service", self.shadow_service]
        for client_id in self.service_clients:
            command += ["--service-client", client_id]
        if self.max_publishes_per_s:
            command += ["--max-publishes-per-s", str(self.max_publishes_per_s)]
        return command

    def _persistence_lines(self) -> list[str]:
        if self.state_dir is None:
            return ["persistence false"]
        return [
            "persistence true",
            f"persistence_location {self.state_dir.resolve()}/",
            f"persistence_file {STATE_FILE}",
            # written when mosquitto stops (SIGTERM, also from the guard) and at no other
            # time: a periodic save of a long queue would stall every client meanwhile
            "autosave_interval 0",
            # IoT Core's default: a persistent session (and what is queued for it) lasts an
            # hour without its client; in memory only a restart used to end them. MQTT 5
            # clients' own expiry (the rules runner's: SESSION_EXPIRY_S) applies to them.
            "persistent_client_expiration 1h",
        ]

    @property
    def state_file(self) -> Path | None:
        """mosquitto's persistence file (sessions, subscriptions, queued and retained
        messages), or None when it keeps them in memory only."""
        return None if self.state_dir is None else self.state_dir / STATE_FILE

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        if self.running:
            return self
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._lock_state()
            if self.durable_subscriber and self.durable_filters:
                self._prepare_session(timeout)
        self._launch(self._command())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise PlantwatchError(f"{self.kind} broker did not listen on {self.url} in {timeout:.0f} s")

    def _lock_state(self, wait_s: float = GUARD_GRACEFUL_S + 10) -> None:
        """Take the state folder's lock. A live starter holding it is another ``up`` on the
        same data folder: refused at once. A gone one's guard holds it while its mosquitto
        writes the state file (after a kill -9 of ``up``): wait for that, at most *wait_s*,
        or this broker would load the file from before and the other's writing would be
        lost."""
        if self._state_lock is not None or self.state_dir is None:
            return
        path = self.state_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait_s
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    try:
                        owner = int(path.read_text().strip() or 0)
                    except (OSError, ValueError):
                        owner = 0
                    if owner and process_alive(owner):
                        raise ConfigError(
                            f"{self.state_dir}: in use by another broker (plantwatch up, pid "
                            f"{owner}); stop it or give another data folder"
                        ) from None
                    if time.monotonic() > deadline:
                        raise PlantwatchError(
                            f"{self.state_dir}: a stopping broker still holds {path} after "
                            f"{wait_s:.0f} s; stop its mosquitto, then start again"
                        ) from None
                    time.sleep(0.1)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._state_lock = fd

    def _unlock_state(self) -> None:
        fd, self._state_lock = self._state_lock, None
        if fd is not None:
            os.close(fd)  # the guard's copy, if it still runs, keeps the lock

    def _prepare_session(self, timeout: float) -> None:
        """mosquitto's first phase: listen only on a unix socket in the working folder,
        connect there as *durable_subscriber* with a persistent session, subscribe it to
        *durable_filters* (QoS 1, no retained messages, as the rules runner does), and stop
        gracefully, which writes the session to the state file. The public listener then
        starts from that file, so the subscription exists before any device can connect and
        each QoS 1 message mosquitto acknowledges waits, queued, in that session until the
        subscriber connects. Messages the session already held are never acknowledged here:
        they stay queued for the subscriber."""
        setup = self._workdir / "setup.sock"
        setup.unlink(missing_ok=True)
        self._launch(self._command(listener=f"0 {setup}"))
        deadline = time.monotonic() + timeout
        while not setup.exists():
            self._check_alive()
            if time.monotonic() > deadline:
                self.stop()
                raise PlantwatchError(f"mosquitto did not listen on {setup} in {timeout:.0f} s")
            time.sleep(0.01)
        client_id = str(self.durable_subscriber)
        record = self.state_dir / SUBSCRIPTIONS_FILE if self.state_dir else None
        try:
            previous = json.loads(record.read_text()) if record else {}
        except (OSError, ValueError):
            previous = {}
        if not isinstance(previous, dict):
            previous = {}
        filters = list(self.durable_filters)
        recorded = previous.get(client_id)
        stale = [
            f
            for f in (recorded if isinstance(recorded, list) else [])
            if isinstance(f, str) and f not in filters
        ]
        try:
            subscribe_session(
                str(setup),
                client_id,
                filters,
                unsubscribe=stale,
                password=(
                    self.auth.service_password(str(self.durable_subscriber))
                    if self.auth is not None
                    else None
                ),
                timeout=max(1.0, deadline - time.monotonic()),
            )
        finally:
            self.stop()  # SIGTERM: mosquitto writes its state file, then exits
        if record is not None:
            # what the session is subscribed to, so the next start can take out the
            # filters of rules removed or disabled meanwhile (MQTT cannot list them)
            record.write_text(json.dumps({**previous, client_id: filters}, indent=1) + "\n")

    def _check_alive(self) -> None:
        """Raise with the broker's last log line if it has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            if self._relay is not None:
                self._relay.join(2)  # its last lines are the reason
            tail = self._log_tail()
            hint = ""
            if self.state_file is not None and "database" in tail.lower():
                hint = (
                    f"; {self.state_file} cannot be read: move it aside to start the broker "
                    "empty (what it held for the rules runner and devices is then not delivered)"
                )
            raise PlantwatchError(
                f"{self.kind} broker on {self.host}:{self.port} exited with "
                f"{self._proc.returncode}: {tail}{hint}"
            )

    def _launch(self, command: list[str]) -> None:
        """Start *command* as the broker process (with its log relay, and for mosquitto
        its guard); ``start`` waits for it to listen."""
        log_path = self._workdir / "broker.log"
        log = subprocess.PIPE if self._on_log else open(log_path, "ab")  # noqa: SIM115
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        lifeline = None
        if self.kind == "amqtt":
            if self.service_secret is not None:  # not on the command line: anyone reads that
                env[SERVICE_SECRET_ENV] = self.service_secret
            lifeline = self._lifeline_pipe()
            command += ["--lifeline-fd", str(lifeline)]
            if self.hold_publishes:
                command += ["--hold-publishes-s", str(HOLD_PUBLISHES_S)]
        try:
            self._proc = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
                start_new_session=True,
                pass_fds=() if lifeline is None else (lifeline,),
            )
        finally:
            if lifeline is not None:
                os.close(lifeline)
        self._relay = None
        if self._on_log is not None and self._proc.stderr is not None:
            self._relay = threading.Thread(
                target=relay_log,
                args=(self._proc.stderr, log_path, self._on_log),
                name="broker-log",
                daemon=True,
            )
            self._relay.start()
        if self.kind == "mosquitto":
            self._start_guard(self._proc.pid, env)

    def open(self) -> None:
        """The starter's subscribers are in: let the held publishes through (amqtt)."""
        if self.hold_publishes and self.kind == "amqtt" and self.running and self._proc:
            self._proc.send_signal(signal.SIGUSR1)

    def _lifeline_pipe(self) -> int:
        """A pipe whose write end only this process holds (``os.pipe`` fds are not
        inherited across exec): its read end, given to the broker (amqtt) or its guard
        (mosquitto), reads end-of-file the moment this process is gone, however it ended,
        and the broker stops before acknowledging more messages that nobody would keep."""
        self._close_lifeline()
        read_end, self._lifeline = os.pipe()
        return read_end

    def _close_lifeline(self) -> None:
        lifeline, self._lifeline = self._lifeline, None
        if lifeline is not None:
            os.close(lifeline)

    def _start_guard(self, broker_pid: int, env: dict[str, str]) -> None:
        self._end_guard()
        lifeline = self._lifeline_pipe()
        try:
            self._guard = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cloud.runtime.broker_guard",
                    "--parent-pid",
                    str(os.getpid()),
                    "--broker-pid",
                    str(broker_pid),
                    "--lifeline-fd",
                    str(lifeline),
                    # with a state file a graceful stop keeps what mosquitto acknowledged
                    # for the subscriber that died with the starter; without, SIGKILL
                    *(["--graceful-s", str(GUARD_GRACEFUL_S)] if self.state_dir else []),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                # the state folder's lock stays held, by the guard, until mosquitto is gone
                pass_fds=(lifeline,) if self._state_lock is None else (lifeline, self._state_lock),
            )
        finally:
            os.close(lifeline)

    def _end_guard(self) -> None:
        guard, self._guard = self._guard, None
        if guard is not None:
            guard.terminate()
            guard.wait()

    def _log_tail(self) -> str:
        """The broker's last log line: the reason, since :meth:`close` removes the log."""
        try:
            lines = (self._workdir / "broker.log").read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        return next((line.strip() for line in reversed(lines) if line.strip()), "no log output")

    def close(self) -> None:
        """Stop for good and remove the working folder (config, log); ``stop`` keeps it so
        ``start`` can bring the same broker back."""
        self.stop()
        self._unlock_state()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, then SIGKILL after *timeout* seconds: by default 10, or
        ``GUARD_GRACEFUL_S`` for mosquitto with a state file, which it writes meanwhile."""
        if timeout is None:
            timeout = GUARD_GRACEFUL_S if self.state_dir is not None else 10.0
        self._end_guard()
        proc, self._proc = self._proc, None
        try:
            if proc is None or proc.poll() is not None:
                return
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            self._close_lifeline()  # after the graceful stop, which it would cut short

    def kill(self) -> None:
        """SIGKILL: the broker vanishes mid-conversation, as in a crash."""
        self._end_guard()
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._close_lifeline()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
