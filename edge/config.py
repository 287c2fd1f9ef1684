"""agent.toml -> AgentConfig plus source factories, validated once with one-line errors.

```toml
[agent]
site = "plant1"
sender = "gw-01"                  # MQTT client id = IoT thing name
broker = "mqtt://127.0.0.1:1883"  # or mqtts://xxxx-ats.iot.eu-west-1.amazonaws.com:8883
protocol = "auto"                 # "auto" | "5" | "3.1.1"
assets = ["pump-01", "pump-02"]
queue = "state/queue.db"          # relative paths are relative to this file
basic_ingest_rule = "plantwatch_telemetry_to_batcher"  # optional: telemetry via Basic Ingest
qos = 1                           # optional; the only QoS the agent uses (IoT Core: 0 and 1)

[queue]                           # optional
max_bytes = 268435456
max_age_s = 604800
full_policy = "drop_oldest"       # or "refuse"
synchronous = "FULL"              # or "NORMAL"
reserve_bytes = 8388608           # free disk kept for sending what is queued (>= 6 MiB)

[tls]                             # required for mqtts:// with mTLS (IoT Core)
ca = "AmazonRootCA1.pem"
cert = "device.pem.crt"
key = "private.pem.key"

[auth]                            # broker credentials (plantwatch up --auth)
username = "gw-01"                # default: sender
password = "..."                  # or password_file = "secret" (relative to this file)

[[sources]]
type = "csv"                      # or "plugin" with factory = "pkg.module:function"
path = "data/"
```
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from edge.agent import MAX_ACK_TIMEOUT_S, MAX_OPERATION_TIMEOUT_S, MIN_ACK_TIMEOUT_S, AgentConfig
from edge.commands import SAMPLING_INTERVAL_S
from edge.errors import ConfigError
from edge.sources import CsvReplaySource, Source, load_plugin
from edge.transport import PROTOCOLS, TlsConfig, parse_endpoint
from edge.user_files import nearest_name, parse_problem, read_document_text
from edge.wire import MAX_PAYLOAD_BYTES, NAME_RE, RULE_NAME_RE

SOURCE_TYPES = ("csv", "plugin")
TABLES = ("agent", "queue", "tls", "auth", "sources")
_QUEUE_KEYS = {
    "max_bytes": "max_queue_bytes",
    "max_age_s": "max_queue_age_s",
    "full_policy": "full_policy",
    "synchronous": "synchronous",
    "reserve_bytes": "queue_reserve_bytes",
}
"""``[queue]`` keys -> the AgentConfig fields they set."""
_TLS_KEYS = ("ca", "cert", "key", "alpn")
_AUTH_KEYS = ("username", "password", "password_file")
_AUTH_REMEDY = "give them in [auth] (username, and password or password_file)"
_CSV_KEYS = ("type", "path", "speed", "restamp", "loop", "asset_map", "exclude")

_AGENT_KEYS = {
    "site",
    "sender",
    "broker",
    "protocol",
    "assets",
    "queue",
    "shadow",
    "samples_per_message",
    "max_batch_delay_s",
    "send_when_idle",
    "max_publishes_per_s",
    "max_inflight",
    "keep_alive_s",
    "ping_timeout_ms",
    "ack_timeout_s",
    "operation_timeout_s",
    "backoff_min_s",
    "backoff_max_s",
    "sampling_interval_s",
    "status_path",
    "status_interval_s",
    "shutdown_timeout_s",
    "basic_ingest_rule",
    "qos",
}

_INT, _NUMBER, _BOOL, _TEXT = "an integer", "a number", "true or false", "a string"
_OPTION_TYPES: dict[str, tuple[str, float | None, float | None]] = {
    "shadow": (_BOOL, None, None),
    "samples_per_message": (_INT, 1, 100_000),
    "max_batch_delay_s": (_NUMBER, 0, 86_400),
    "send_when_idle": (_BOOL, None, None),
    "max_publishes_per_s": (_NUMBER, 0.001, 100_000),
    "max_inflight": (_INT, 1, 65_535),
    "keep_alive_s": (_INT, 0, 65_535),
    "ping_timeout_ms": (_INT, 1, 3_600_000),
    "ack_timeout_s": (_NUMBER, MIN_ACK_TIMEOUT_S, MAX_ACK_TIMEOUT_S),
    "operation_timeout_s": (_NUMBER, 1, MAX_OPERATION_TIMEOUT_S),
    "backoff_min_s": (_NUMBER, 0.001, 86_400),
    "backoff_max_s": (_NUMBER, 0.001, 86_400),
    "sampling_interval_s": (_NUMBER, *SAMPLING_INTERVAL_S),
    "status_path": (_TEXT, None, None),
    "basic_ingest_rule": (_TEXT, None, None),
    "status_interval_s": (_NUMBER, 0.5, 3600),
    "shutdown_timeout_s": (_NUMBER, 0, 86_400),
    "max_bytes": (_INT, MAX_PAYLOAD_BYTES, None),  # what one publish carries, at least
    "max_age_s": (_NUMBER, 0.001, None),
    "reserve_bytes": (_INT, None, None),  # its least is the agent's check, which says why
}
"""Each option's TOML type and range: a wrong one is refused naming the option, rather than
failing later inside a thread (``max_publishes_per_s = 0`` would divide by zero)."""


def _check_option(table: str, key: str, value: object, file: Path) -> None:
    kind, low, high = _OPTION_TYPES[key]
    where = f"{file}: [{table}].{key}"
    if kind == _BOOL:
        ok = isinstance(value, bool)
    elif kind == _TEXT:
        ok = isinstance(value, str) and bool(value)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        ok = False
    else:
        ok = (kind == _NUMBER or isinstance(value, int)) and math.isfinite(value)
    if not ok:
        raise ConfigError(f"{where}: expected {kind}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):  # type: ignore[operator]
        bounds = f"{low:.10g} to {high:.10g}" if high is not None else f"at least {low:.10g}"
        raise ConfigError(f"{where}: {value!r} out of range; expected {bounds}")


def load_config(path: str | Path) -> tuple[AgentConfig, list[Callable[[], Source]], float]:
    """Return the agent config, source builders and the shutdown flush timeout."""
    file = Path(path)
    try:
        doc = tomllib.loads(read_document_text(file))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc})") from None
    except (ValueError, RecursionError) as exc:  # past tomllib's own checks
        raise ConfigError(f"{file}: not valid TOML ({parse_problem(exc)})") from None
    return parse_config(doc, file)


def _refuse_unknown(where: str, keys: Any, known: Any) -> None:
    """Refuse the first key not in *known*, with the key it most likely meant: a misspelt
    option would otherwise be refused without a clue, or (a table) ignored whole."""
    unknown = sorted(set(keys) - set(known))
    if not unknown:
        return
    meant = nearest_name(unknown[0], known)
    hint = f"; did you mean {meant}?" if meant else f"; expected one of {', '.join(sorted(known))}"
    raise ConfigError(f"{where}.{unknown[0]}: unknown key{hint}")


def _header(table: str) -> str:
    """How *table* is written in the file: ``[[sources]]`` is an array of tables."""
    return f"[[{table}]]" if table == "sources" else f"[{table}]"


def _check_tables(doc: dict[str, Any], file: Path) -> None:
    """Refuse what sits outside the known tables: a misspelt table (``[queu]``) was
    ignored with all its settings, and a key written above ``[agent]`` likewise."""
    for name in sorted(set(doc) - set(TABLES)):
        value = doc[name]
        if isinstance(value, dict | list):
            if "agent" not in doc and nearest_name(name, TABLES) == "agent":
                raise ConfigError(
                    f"{file}: [agent]: missing table; did you mean [agent] instead of [{name}]?"
                )
            meant = nearest_name(name, TABLES)
            hint = f"did you mean {_header(meant)}?" if meant else f"expected {', '.join(TABLES)}"
            shown = f"[{name}]" if isinstance(value, dict) else f"[[{name}]]"
            raise ConfigError(f"{file}: {shown}: unknown table; {hint}")
        for table, keys in (("agent", _AGENT_KEYS), ("queue", _QUEUE_KEYS)):
            if name in keys:
                raise ConfigError(
                    f"{file}: {name}: outside any table; did you mean [{table}].{name}?"
                )
        raise ConfigError(f"{file}: {name}: unknown key outside any table")


_FIELD_KEYS = {
    "broker_url": "[agent].broker",
    "queue_path": "[agent].queue",
    "tls": "[tls]",
    "username": "[auth].username",
    "password": "[auth].password",
    **{field: f"[queue].{key}" for key, field in _QUEUE_KEYS.items()},
}
"""AgentConfig fields written elsewhere than ``[agent].<field>``."""


def _checked(config: AgentConfig, file: Path) -> AgentConfig:
    """Run the agent's own checks now, so a refusal names the file and the key."""
    try:
        config.check()
    except ConfigError as exc:
        if exc.option is None:
            raise ConfigError(f"{file}: {exc}") from None
        where = _FIELD_KEYS.get(exc.option, f"[agent].{exc.option}")
        raise ConfigError(f"{file}: {where}: {exc.detail}") from None
    return config


def parse_config(
    doc: dict[str, Any], file: Path
) -> tuple[AgentConfig, list[Callable[[], Source]], float]:
    base = file.parent
    _check_tables(doc, file)
    agent = _table(doc, "agent", file, required=True)
    _refuse_unknown(f"{file}: [agent]", agent, _AGENT_KEYS)
    for key in ("site", "sender", "broker", "assets", "queue"):
        if key not in agent:
            raise ConfigError(f"{file}: [agent].{key}: missing")
    if not isinstance(agent["queue"], str) or not agent["queue"]:
        raise ConfigError(f"{file}: [agent].queue: expected a file path, got {agent['queue']!r}")
    site = _name(agent["site"], f"{file}: [agent].site")
    sender = _name(agent["sender"], f"{file}: [agent].sender")
    assets = agent["assets"]
    if not isinstance(assets, list) or not assets:
        raise ConfigError(f"{file}: [agent].assets: expected a non-empty list of names")
    assets_t = tuple(_name(a, f"{file}: [agent].assets") for a in assets)
    broker = agent["broker"]
    if not isinstance(broker, str):
        raise ConfigError(f"{file}: [agent].broker: expected a string")
    refuse_url_credentials(broker, f"{file}: [agent].broker")
    try:
        endpoint = parse_endpoint(broker)
    except ConfigError as exc:
        raise ConfigError(f"{file}: [agent].broker: {exc}") from None
    protocol = agent.get("protocol", "auto")
    if isinstance(protocol, int) and not isinstance(protocol, bool):
        protocol = str(protocol)  # protocol = 5
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"{file}: [agent].protocol: {protocol!r}, expected one of {', '.join(PROTOCOLS)}"
        )
    tls = None
    tls_doc = _table(doc, "tls", file)
    if tls_doc:
        _refuse_unknown(f"{file}: [tls]", tls_doc, _TLS_KEYS)
        for key in ("ca", "cert", "key"):
            if key in tls_doc and not isinstance(tls_doc[key], str):
                raise ConfigError(f"{file}: [tls].{key}: expected a file path")
        alpn = tls_doc.get("alpn", [])
        if not isinstance(alpn, list) or not all(isinstance(a, str) and a for a in alpn):
            raise ConfigError(f"{file}: [tls].alpn: expected an array of protocol names")
        paths = {k: str(_path(base, tls_doc[k])) for k in ("ca", "cert", "key") if k in tls_doc}
        tls = TlsConfig(alpn=tuple(tls_doc.get("alpn", ())), **paths)
        try:
            tls.check("[tls]")
        except ConfigError as exc:
            raise ConfigError(f"{file}: {exc}") from None
    if endpoint.tls and endpoint.iot_core and (tls is None or not tls.cert):
        raise ConfigError(f"{file}: [tls]: AWS IoT Core needs cert and key (mTLS)")
    username, password = _credentials(_table(doc, "auth", file), file, base, sender)
    _check_own_files(doc, file, base)
    for key in sorted(set(agent) & set(_OPTION_TYPES)):
        _check_option("agent", key, agent[key], file)
    if "qos" in agent:
        _check_qos(agent["qos"], f"{file}: [agent].qos")
    rule = agent.get("basic_ingest_rule")
    if rule is not None and not RULE_NAME_RE.fullmatch(rule):
        raise ConfigError(
            f"{file}: [agent].basic_ingest_rule: {rule!r} is not an IoT rule name "
            f"({RULE_NAME_RE.pattern})"
        )
    if agent.get("backoff_max_s", 30.0) < agent.get("backoff_min_s", 0.2):
        raise ConfigError(f"{file}: [agent].backoff_max_s: must be at least backoff_min_s")
    options: dict[str, Any] = {}
    for key in _AGENT_KEYS - {
        "site",
        "sender",
        "broker",
        "assets",
        "queue",
        "shutdown_timeout_s",
        "qos",
    }:
        if key in agent:
            options[key] = agent[key]
    if "status_path" in options:
        options["status_path"] = str(_path(base, options["status_path"]))
    queue = _table(doc, "queue", file)
    _refuse_unknown(f"{file}: [queue]", queue, _QUEUE_KEYS)
    for key, value in queue.items():
        if key in _OPTION_TYPES:
            _check_option("queue", key, value, file)
        options[_QUEUE_KEYS[key]] = value
    if options.get("full_policy", "drop_oldest") not in ("drop_oldest", "refuse"):
        raise ConfigError(f"{file}: [queue].full_policy: expected 'drop_oldest' or 'refuse'")
    if str(options.get("synchronous", "FULL")).upper() not in ("FULL", "NORMAL"):
        raise ConfigError(f"{file}: [queue].synchronous: expected 'FULL' or 'NORMAL'")
    expected = {f.name: f.type for f in fields(AgentConfig)}
    for key, value in options.items():
        if key in expected and "float" in str(expected[key]) and isinstance(value, int):
            options[key] = float(value)
    config = _checked(
        AgentConfig(
            site=site,
            sender=sender,
            broker_url=broker,
            queue_path=str(_path(base, agent["queue"])),
            assets=assets_t,
            protocol=protocol,
            tls=tls,
            username=username,
            password=password,
            **{k: v for k, v in options.items() if k != "protocol"},
        ),
        file,
    )
    specs = doc.get("sources", []) or []
    if not isinstance(specs, list):
        raise ConfigError(f"{file}: sources: expected an array of tables [[sources]]")
    sources = [_source(spec, i, file, base, assets_t) for i, spec in enumerate(specs)]
    shutdown = float(agent.get("shutdown_timeout_s", 10.0))
    return config, sources, shutdown


def _source(
    spec: Any, index: int, file: Path, base: Path, assets: tuple[str, ...]
) -> Callable[[], Source]:
    where = f"{file}: [[sources]][{index}]"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a table")
    kind = spec.get("type")
    if kind not in SOURCE_TYPES:
        raise ConfigError(
            f"{where}.type: unknown source {kind!r} (expected one of {', '.join(SOURCE_TYPES)})"
        )
    if kind == "csv":
        if "path" not in spec:
            raise ConfigError(f"{where}.path: missing")
        path = _path(base, spec["path"])
        if not path.exists():
            raise ConfigError(f"{where}.path: no such file or folder {str(path)!r}")
        _refuse_unknown(where, spec, _CSV_KEYS)
        _check_csv_options(spec, where)

        def build_csv() -> Source:
            try:
                return CsvReplaySource(
                    path,
                    assets,
                    speed=float(spec.get("speed", 1.0)),
                    restamp=bool(spec.get("restamp", False)),
                    loop=bool(spec.get("loop", False)),
                    asset_map=spec.get("asset_map"),
                    exclude=spec.get("exclude", ()),
                )
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None

        build_csv()  # fail at load time, not later in a thread
        return build_csv
    factory = spec.get("factory")
    if not isinstance(factory, str):
        raise ConfigError(f"{where}.factory: expected 'package.module:function'")
    options = {k: v for k, v in spec.items() if k not in ("type", "factory")}
    return lambda: load_plugin(factory, options, assets)


def _check_qos(value: object, where: str) -> None:
    """``qos``: only 1, what the agent publishes and subscribes with, may be written. IoT
    Core takes QoS 0 and 1 only: a QoS 2 publish or subscription gets no PUBACK or SUBACK
    (iot-core-rules-and-limits §2), so a device asking for it waits for an answer that never
    comes. QoS 0 has no PUBACK, and a reading leaves the queue only when one arrives."""
    if value == 1 and type(value) is int:
        return
    if value == 0 and type(value) is int:
        raise ConfigError(
            f"{where}: 0: a QoS 0 publish gets no PUBACK, and the agent deletes a reading "
            "from its queue only when the broker acknowledged it; it publishes at QoS 1 "
            "(remove the setting or write qos = 1)"
        )
    raise ConfigError(
        f"{where}: {value!r}: AWS IoT Core takes QoS 0 and 1 only (a QoS 2 publish or "
        "subscription gets no PUBACK or SUBACK); the agent publishes and subscribes at QoS 1 "
        "(remove the setting or write qos = 1)"
    )


def _check_csv_options(spec: dict[str, Any], where: str) -> None:
    speed = spec.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not math.isfinite(speed):
        raise ConfigError(f"{where}.speed: expected a number, got {speed!r}")
    for key in ("restamp", "loop"):
        if not isinstance(spec.get(key, False), bool):
            raise ConfigError(f"{where}.{key}: expected true or false, got {spec[key]!r}")
    mapping = spec.get("asset_map", {})
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ConfigError(f'{where}.asset_map: expected a table of component = "asset"')
    exclude = spec.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(c, str) for c in exclude):
        raise ConfigError(f"{where}.exclude: expected an array of column names")


QUEUE_SIDE_FILES = ("-wal", "-shm", "-journal", ".protocol")
"""Files the agent keeps beside its queue: SQLite's, and the remembered MQTT protocol."""


def _check_own_files(doc: dict[str, Any], file: Path, base: Path) -> None:
    """Refuse a queue or status file that is another file of the agent's. The queue opens as
    SQLite, and a file that is not one is moved aside as damaged (the config file, a key:
    the agent then does not start again); the status file is rewritten every second."""
    agent = doc["agent"]
    tls, auth = doc.get("tls") or {}, doc.get("auth") or {}
    others: dict[Path, str] = {file.resolve(): "the config file itself"}
    for key in ("ca", "cert", "key"):
        if isinstance(tls.get(key), str):
            others[_path(base, tls[key]).resolve()] = f"[tls].{key}"
    if isinstance(auth.get("password_file"), str):
        others[_path(base, auth["password_file"]).resolve()] = "[auth].password_file"
    specs = doc.get("sources")
    for i, spec in enumerate(specs if isinstance(specs, list) else []):
        if isinstance(spec, dict) and isinstance(spec.get("path"), str):
            others[_path(base, spec["path"]).resolve()] = f"[[sources]][{i}].path"
    queue = _path(base, agent["queue"]).resolve()
    if queue in others:
        raise ConfigError(
            f"{file}: [agent].queue: {str(queue)!r} is {others[queue]}; the queue needs a "
            "file of its own (a file that is not a queue is moved aside as damaged)"
        )
    if "status_path" not in agent:
        return
    for suffix in ("", *QUEUE_SIDE_FILES):
        others[queue.with_name(queue.name + suffix)] = "[agent].queue" + (
            f" (its {suffix} file)" if suffix else ""
        )
    status = _path(base, agent["status_path"]).resolve()
    if status in others:
        raise ConfigError(
            f"{file}: [agent].status_path: {str(status)!r} is {others[status]}; the status "
            "file is rewritten every second and needs a file of its own"
        )


def refuse_url_credentials(broker: str, where: str, remedy: str = _AUTH_REMEDY) -> None:
    """The agent connects with ``[auth]`` only, so ``USER:PASSWORD@`` in its broker URL would
    be dropped silently; refused here, for whatever builds an agent from a URL, without
    echoing the password."""
    scheme, _, rest = (broker if "://" in broker else f"mqtts://{broker}").partition("://")
    netloc = rest.partition("/")[0]
    if "@" in netloc:
        shown = f"{scheme}://***@{netloc.rpartition('@')[2]}"
        raise ConfigError(f"{where}: {shown!r}: credentials in the URL are not used; {remedy}")


def _credentials(
    auth: dict[str, Any], file: Path, base: Path, sender: str
) -> tuple[str | None, str | None]:
    """``[auth]``: username (default: the sender) and password or password_file."""
    if not auth:
        return None, None
    _refuse_unknown(f"{file}: [auth]", auth, _AUTH_KEYS)
    username = auth.get("username", sender)
    if not isinstance(username, str) or not username:
        raise ConfigError(f"{file}: [auth].username: expected a non-empty string")
    if ("password" in auth) == ("password_file" in auth):
        raise ConfigError(f"{file}: [auth]: give exactly one of password and password_file")
    if "password" in auth:
        password = auth["password"]
        if not isinstance(password, str):
            raise ConfigError(f"{file}: [auth].password: expected a string")
        return username, password
    path = _path(base, auth["password_file"])
    try:
        return username, path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{file}: [auth].password_file: cannot read {str(path)!r} ({exc})"
        ) from None


def _table(doc: dict[str, Any], key: str, file: Path, required: bool = False) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{file}: [{key}]: missing table")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{file}: [{key}]: expected a table")
    return value


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ConfigError(f"{where}: {value!r} must match {NAME_RE.pattern}")
    return value


def _path(base: Path, value: object) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path
