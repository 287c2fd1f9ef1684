"""THE wire contract: telemetry topics and the versioned payload every side speaks.

Edge, simulator and cloud import topics and payload handling only from here, so a change
to the contract is a change to this file and ``docs/protocol.md``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from edge.errors import WireFormatError
from edge.json_values import nests_deeper_than

APP = "plantwatch"
SCHEMA_VERSION = 1
MAX_PAYLOAD_BYTES = 128 * 1024
"""AWS IoT Core rejects larger publishes."""
MAX_TOPIC_BYTES = 256
"""AWS IoT Core rejects a publish whose topic is longer (UTF-8 bytes): two 128-character
names make a 281-byte telemetry topic, which IoT Core would never deliver."""

MAX_TOPIC_SLASHES = 7
"""AWS IoT Core refuses a topic or topic filter with more ``/`` (8 levels)."""
MAX_CLIENT_ID_BYTES = 128
"""AWS IoT Core refuses a longer MQTT client id (UTF-8 bytes), and one starting with ``$``."""
MAX_SUBSCRIPTIONS = 50
"""AWS IoT Core's subscriptions per connection (iot-core-rules-and-limits §3)."""
MAX_PUBLISHES_PER_S = 100
"""AWS IoT Core's publishes a second per connection, in and out together (§3, not
adjustable); it drops the excess."""

TELEMETRY_FILTER = f"dt/{APP}/+/+/telemetry"
STATUS_FILTER = f"dt/{APP}/+/+/status"
STATUS_STATES = ("online", "offline")
MAX_STATUS_BYTES = 8 * 1024
"""A status document is a few hundred bytes; anything larger is refused, not stored."""
MAX_STATUS_ASSETS = 1000
"""The most assets a status document may list."""
STATUS_ERROR_ROOM = 1024
"""Bytes of a status document an agent's names leave for its last error, at least."""

TS_MIN_MS = 946_684_800_000
"""2000-01-01T00:00:00Z: the earliest sample time accepted, in epoch milliseconds."""
TS_MAX_MS = 7_258_118_400_000
"""2200-01-01T00:00:00Z: the latest sample time accepted (exclusive)."""
MAX_ABS_VALUE = 1e15
"""Largest sensor magnitude accepted: every integer up to it is exact in a double, and the
CSV writer prints it without an exponent."""
MAX_SEQ = 2**63 - 1
"""``seq`` fits a signed 64-bit integer (SQLite's, and every JSON reader's that uses one)."""
MAX_NESTING = 64
"""Objects and arrays one inside another a payload may hold, the document being level 1
(a telemetry message needs 4). Deeper JSON is ``bad_json`` for every caller: left to the
parser, about 1000 levels were read or refused depending on how deep the caller's own
stack was, and the cloud's fast decoder could judge otherwise than this one."""

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
"""Sites and assets: a topic level, a thing name and an L4E component name at once."""
SENSOR_RE = re.compile(r"^(?!(?i:timestamp)$)[A-Za-z0-9._-]{1,200}$")
"""L4E column characters, less the backslash that L4E uses as component separator, and
not ``Timestamp`` in any case: an input file's first column has that name, so a sensor of
that name would give the file two columns nothing can tell apart (pandas, DuckDB and
Parquet readers refuse or rename one)."""
TIME_COLUMN = "Timestamp"


def sensor_name_problem(name: str) -> str:
    """Why *name* is no sensor name, in words a device owner can act on."""
    if name.lower() == TIME_COLUMN.lower():
        return (
            f"sensor name {_short(name, 80)} not allowed: it is the input files' time column; "
            "give the sensor another name"
        )
    return (
        f"sensor name {_short(name, 80)} not allowed: letters, digits, '.', '_' and '-', "
        "1-200 characters"
    )


def telemetry_topic(site: str, asset: str) -> str:
    return f"dt/{APP}/{_name(site, 'site')}/{_name(asset, 'asset')}/telemetry"


BASIC_INGEST_PREFIX = "$aws/rules/"
"""IoT Core Basic Ingest: a publish to ``$aws/rules/<ruleName>/<topic>`` goes to that one rule
only, never to subscribers or other rules, and the rule sees ``<topic>`` (``topic()`` and
the 256-byte and 7-slash limits leave the prefix out)."""
RULE_NAME_RE = re.compile(r"^[a-zA-Z0-9_]{1,128}$")
"""An IoT rule's name (CreateTopicRule's pattern)."""


def basic_ingest_topic(rule: str, topic: str) -> str:
    """*topic* sent through Basic Ingest to *rule*."""
    if not RULE_NAME_RE.fullmatch(rule):
        raise WireFormatError(
            f"rule name {rule!r}: must match {RULE_NAME_RE.pattern}", reason="bad_topic"
        )
    return f"{BASIC_INGEST_PREFIX}{rule}/{topic}"


def split_basic_ingest(topic: str) -> tuple[str, str] | None:
    """``(rule name, topic the rule sees)`` for a Basic Ingest topic; None for any other.
    ``$aws/rules/<rule>`` alone gives an empty topic."""
    if not topic.startswith(BASIC_INGEST_PREFIX):
        return None
    rule, _, rest = topic[len(BASIC_INGEST_PREFIX) :].partition("/")
    return rule, rest


def iot_core_topic_problem(topic: str) -> str | None:
    """Why IoT Core would refuse to publish or subscribe to *topic* (a topic or a filter):
    a reserved ``$`` topic outside ``$aws/``, over 256 bytes or over 7 slashes once a Basic
    Ingest prefix (which does not count) is taken off; None when it takes it."""
    if topic.startswith("$share/"):  # an MQTT 5 shared subscription: $share/<group>/<filter>
        topic = topic.split("/", 2)[2] if topic.count("/") >= 2 else ""
    if topic.startswith("$") and not topic.startswith("$aws/"):
        return f"{topic[:64]!r} is a reserved topic (only $aws/... ones are usable)"
    ingest = split_basic_ingest(topic)
    inner = ingest[1] if ingest is not None else topic
    size = len(inner.encode("utf-8", "surrogatepass"))
    if size > MAX_TOPIC_BYTES:
        return f"topic {inner[:64]!r}...: {size} bytes; IoT Core takes at most {MAX_TOPIC_BYTES}"
    if inner.count("/") > MAX_TOPIC_SLASHES:
        return (
            f"topic {inner[:64]!r}: {inner.count('/')} slashes; "
            f"IoT Core takes at most {MAX_TOPIC_SLASHES}"
        )
    return None


def client_id_problem(client_id: str) -> str | None:
    """Why IoT Core would refuse a CONNECT with *client_id*; None when it takes it."""
    if client_id.startswith("$"):
        return f"client id {client_id[:64]!r} starts with '$'"
    size = len(client_id.encode("utf-8", "surrogatepass"))
    if size > MAX_CLIENT_ID_BYTES:
        return f"client id of {size} bytes; IoT Core takes at most {MAX_CLIENT_ID_BYTES}"
    return None


def status_topic(site: str, sender: str) -> str:
    """Where an agent publishes its own status: ``dt/<app>/<site>/<sender>/status``."""
    return f"dt/{APP}/{_name(site, 'site')}/{_name(sender, 'sender')}/status"


TOPIC_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
TOPIC_NAME_RULE = (
    "thing and site names are topic levels: lowercase letters, digits and '-' only, "
    "1-128 characters (MQTT topic naming)"
)
"""What a new device's thing, site and asset names may hold (iot-core-rules-and-limits §5).
Stricter than :data:`NAME_RE`, which the wire keeps accepting for data already written:
topics are case-sensitive, so ``Pump-01`` and ``pump-01`` would be two devices whose
shadows and files differ by case only."""


def topic_name_problem(name: str, what: str) -> str | None:
    """Why *name* cannot be a new thing's or site's name, starting with *what* (the field)
    and naming the rule; None when it can."""
    problem = None
    bad = next((c for c in name if c not in TOPIC_NAME_CHARACTERS), None)
    if not name:
        problem = "empty"
    elif bad is not None:
        problem = f"{bad!r} is not allowed"
    elif len(name) > 128:
        problem = f"{len(name)} characters"
    return None if problem is None else f"{what} {_short(name, 60)}: {problem}; {TOPIC_NAME_RULE}"


def topic_size_problem(site: str, thing: str, what: str) -> str | None:
    """Why *thing* (the field *what*) at *site* cannot publish on IoT Core: its telemetry
    topic, the longest one plantwatch builds for a thing, passes 256 bytes (two names of
    128 characters make 281). None when it fits; both names must pass
    :func:`topic_name_problem` first."""
    topic = telemetry_topic(site, thing)
    size = len(topic.encode())
    if size <= MAX_TOPIC_BYTES:
        return None
    return (
        f"{what} {_short(thing, 60)} at --site {_short(site, 60)}: its telemetry topic is "
        f"{size} bytes; IoT Core takes at most {MAX_TOPIC_BYTES} (shorten one of the names)"
    )


def parse_telemetry_topic(topic: str) -> tuple[str, str]:
    """Return ``(site, asset)`` from a telemetry topic."""
    if len(topic.encode("utf-8", "replace")) > MAX_TOPIC_BYTES:
        raise WireFormatError(
            f"topic {_short(topic)}: longer than the {MAX_TOPIC_BYTES} bytes IoT Core accepts",
            reason="bad_topic",
        )
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "dt" or parts[1] != APP or parts[4] != "telemetry":
        raise WireFormatError(
            f"topic {topic!r}: expected dt/{APP}/<site>/<asset>/telemetry", reason="bad_topic"
        )
    return _name(parts[2], "topic site"), _name(parts[3], "topic asset")


COMMAND_KINDS = ("req", "res")
"""The last level of a command topic: the request and its response (§5)."""


def command_topic(site: str, thing: str, kind: str = "req") -> str:
    """``cmd/<app>/<site>/<thing>/req|res``: 4 slashes, as every plantwatch topic."""
    if kind not in COMMAND_KINDS:
        raise WireFormatError(
            f"command topic kind {_short(kind)}: expected req or res", reason="bad_topic"
        )
    return f"cmd/{APP}/{_name(site, 'site')}/{_name(thing, 'thing')}/{kind}"


def shadow_topic(thing: str, operation: str, shadow_name: str | None = None) -> str:
    """``$aws/things/<thing>/shadow[/name/<shadow>]/<operation>``, e.g. ``update/delta``."""
    base = f"$aws/things/{thing}/shadow"
    if shadow_name:
        base += f"/name/{shadow_name}"
    return f"{base}/{operation}"


@dataclass(frozen=True, slots=True)
class Sample:
    """One instant of one asset: epoch milliseconds and sensor values (None = missing)."""

    ts_ms: int
    values: Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One MQTT message: a sender's numbered batch of samples for one asset.

    ``msg_id`` is stable across redeliveries of the same message, so the cloud side can
    de-duplicate.
    """

    site: str
    asset: str
    sender: str
    seq: int
    samples: tuple[Sample, ...] = field(default_factory=tuple)

    @property
    def msg_id(self) -> str:
        return f"{self.sender}:{self.seq}"

    @property
    def topic(self) -> str:
        return telemetry_topic(self.site, self.asset)


def encode(message: Telemetry) -> bytes:
    doc = {
        "v": SCHEMA_VERSION,
        "site": message.site,
        "asset": message.asset,
        "sender": message.sender,
        "seq": message.seq,
        "samples": [{"ts": s.ts_ms, "values": dict(s.values)} for s in message.samples],
    }
    body = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    if len(body) > MAX_PAYLOAD_BYTES:
        raise WireFormatError(
            f"payload is {len(body)} bytes; the limit is {MAX_PAYLOAD_BYTES}", reason="oversize"
        )
    return body


def decode(payload: bytes | str) -> Telemetry:
    """Parse and validate one payload; raise WireFormatError naming the bad field."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireFormatError(
            f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}",
            reason="oversize",
        )
    if nests_deeper_than(payload, MAX_NESTING):
        raise WireFormatError(_too_deep("payload"), reason="bad_json")
    try:
        doc = _loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireFormatError(f"payload is not JSON: {exc}", reason="bad_json") from None
    except RecursionError:  # only a caller already near Python's recursion limit
        raise WireFormatError(_too_deep("payload"), reason="bad_json") from None
    return from_document(doc)


def _too_deep(what: str) -> str:
    return f"{what} is not JSON: nested too deeply (more than {MAX_NESTING} levels)"


def _loads(payload: bytes | str) -> object:
    """``json.loads``, also of integer literals longer than Python's ``int()`` takes from
    text (4,300 digits): JSON all the same, whose value the checks judge (out of range, or
    in a field nobody reads). Only a payload that hit that limit is parsed again; a syntax
    error is a JSONDecodeError."""
    try:
        return json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except ValueError:
        return json.loads(payload, parse_int=_long_int)


_BEYOND_BOUNDS = 10**4000
"""Stands for an integer of more than 4,000 digits, with its sign: past every bound the
contract checks, as the integer is. Converting it exactly costs quadratic time (half a
second for a 128 KB one), which a hostile payload must not buy."""


def _long_int(text: str) -> int:
    if len(text) <= 4000:
        return int(text)
    return -_BEYOND_BOUNDS if text.startswith("-") else _BEYOND_BOUNDS


def from_document(doc: object) -> Telemetry:
    """Validate an already-parsed payload (rules hand over parsed JSON)."""
    if not isinstance(doc, dict):
        raise WireFormatError("payload: expected a JSON object", reason="bad_schema")
    version = doc.get("v")
    if not _is_version(version):
        raise WireFormatError(
            f"v: expected {SCHEMA_VERSION}, got {_short(version)}", reason="unsupported_version"
        )
    site = _field_name(doc, "site")
    asset = _field_name(doc, "asset")
    sender = _field_name(doc, "sender")
    seq = doc.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise WireFormatError(
            f"seq: expected an integer >= 0, got {_short(seq)}", reason="bad_schema"
        )
    if seq > MAX_SEQ:
        raise WireFormatError(
            f"seq: {_short(seq)} is out of range; at most {MAX_SEQ}", reason="out_of_range"
        )
    raw_samples = doc.get("samples")
    if not isinstance(raw_samples, list) or not raw_samples:
        raise WireFormatError("samples: expected a non-empty array", reason="bad_schema")
    samples = tuple(_sample(raw, i) for i, raw in enumerate(raw_samples))
    return Telemetry(site=site, asset=asset, sender=sender, seq=seq, samples=samples)


def _sample(raw: object, index: int) -> Sample:
    where = f"samples[{index}]"
    if not isinstance(raw, dict):
        raise WireFormatError(f"{where}: expected an object", reason="bad_schema")
    ts = raw.get("ts")
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise WireFormatError(
            f"{where}.ts: expected epoch milliseconds (integer), got {_short(ts)}",
            reason="bad_timestamp",
        )
    if not TS_MIN_MS <= ts < TS_MAX_MS:
        raise WireFormatError(
            f"{where}.ts: {_short(ts)} is out of range; expected epoch milliseconds from "
            f"{TS_MIN_MS} (2000-01-01) to before {TS_MAX_MS} (2200-01-01)",
            reason="out_of_range",
        )
    values = raw.get("values")
    if not isinstance(values, dict) or not values:
        raise WireFormatError(f"{where}.values: expected a non-empty object", reason="bad_schema")
    for name, value in values.items():
        if not isinstance(name, str):  # a plugin's dict keyed by register number, say
            raise WireFormatError(
                f"{where}.values: sensor name {_short(name)} is not text", reason="bad_sensor_name"
            )
        if not SENSOR_RE.fullmatch(name):
            raise WireFormatError(
                f"{where}.values: {sensor_name_problem(name)}", reason="bad_sensor_name"
            )
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise WireFormatError(
                f"{where}.values.{name}: expected a number or null, got {_short(value)}",
                reason="bad_value_type",
            )
        if not -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:  # exact for ints of any size
            if isinstance(value, float) and not math.isfinite(value):
                raise WireFormatError(
                    f"{where}.values.{name}: NaN and infinity are not allowed",
                    reason="non_finite",
                )
            raise WireFormatError(
                f"{where}.values.{name}: {_short(value)} is out of range; "
                f"|value| must be at most {MAX_ABS_VALUE:.0e}",
                reason="out_of_range",
            )
    return Sample(ts_ms=ts, values=values)


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """An agent's health as it publishes it on its status topic (and as its last will).

    ``state`` is ``online`` while the agent is connected; ``offline`` is what the agent says
    when it stops cleanly and what the broker publishes for it (the MQTT last will) when
    its connection drops. ``interval_s`` is how often the next status will come, so a
    reader can tell a silent device from a slow one.
    """

    site: str
    sender: str
    state: str
    interval_s: float
    assets: tuple[str, ...] = ()
    agent_version: str = ""
    protocol: str | None = None
    queue_depth: int = 0
    queue_bytes: int = 0
    oldest_age_s: float | None = None
    sent: int = 0
    dropped: int = 0
    refused: int = 0
    connects: int = 0
    last_error: str | None = None
    reason: str | None = None
    """Why the agent is offline: ``stopped`` or ``connection lost`` (the last will)."""
    ts_ms: int | None = None
    """When the agent made the document (its clock); the last will carries none."""

    @property
    def topic(self) -> str:
        return status_topic(self.site, self.sender)


_STATUS_COUNTERS = ("queue_depth", "queue_bytes", "sent", "dropped", "refused", "connects")
_STATUS_TEXT_MAX = 500


def encode_status(status: DeviceStatus) -> bytes:
    """The document, within :data:`MAX_STATUS_BYTES`: ``last_error`` is shortened as far as
    needed (JSON writes a character outside ASCII as up to 12 bytes), since a larger
    document is refused by every reader. Raise WireFormatError when it cannot fit even
    without it (too many assets: ``AgentConfig.check`` refuses such a gateway)."""
    doc = _status_doc(status)
    payload = _status_json(doc)
    error = doc["last_error"]
    if len(payload) > MAX_STATUS_BYTES and isinstance(error, str):
        low, high = 0, len(error)  # the longest start of the error that fits
        while low < high:
            middle = (low + high + 1) // 2
            doc["last_error"] = error[:middle]
            if len(_status_json(doc)) <= MAX_STATUS_BYTES:
                low = middle
            else:
                high = middle - 1
        doc["last_error"] = error[:low]
        payload = _status_json(doc)
    if len(payload) > MAX_STATUS_BYTES or len(status.assets) > MAX_STATUS_ASSETS:
        raise WireFormatError(
            f"status of {status.sender}: {len(payload)} bytes and {len(status.assets)} assets; "
            f"a status document takes at most {MAX_STATUS_BYTES} bytes and "
            f"{MAX_STATUS_ASSETS} assets",
            reason="oversize",
        )
    return payload


def _status_doc(status: DeviceStatus) -> dict[str, object]:
    doc: dict[str, object] = {
        "v": SCHEMA_VERSION,
        "site": status.site,
        "sender": status.sender,
        "state": status.state,
        "interval_s": status.interval_s,
        "assets": list(status.assets),
        "agent_version": status.agent_version,
        "protocol": status.protocol,
        "oldest_age_s": status.oldest_age_s,
        "last_error": _clip(status.last_error),
        "reason": status.reason,
        "ts": status.ts_ms,
    }
    doc.update({name: getattr(status, name) for name in _STATUS_COUNTERS})
    return doc


def _status_json(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def largest_status_bytes(
    site: str, sender: str, assets: tuple[str, ...], agent_version: str
) -> int:
    """The size of the largest status document an agent of these names can publish, its
    error text aside (that is shortened to fit): every counter and time at its widest."""
    widest = DeviceStatus(
        site=site,
        sender=sender,
        state="offline",
        interval_s=0.10000000000000002,
        assets=assets,
        agent_version=agent_version,
        protocol="3.1.1",
        queue_depth=MAX_SEQ,
        queue_bytes=MAX_SEQ,
        oldest_age_s=-1.2345678901234567e-300,
        sent=MAX_SEQ,
        dropped=MAX_SEQ,
        refused=MAX_SEQ,
        connects=MAX_SEQ,
        last_error="",
        reason="connection lost",
        ts_ms=TS_MAX_MS - 1,
    )
    return len(_status_json(_status_doc(widest)))


def decode_status(payload: bytes | str, topic: str | None = None) -> DeviceStatus:
    """Parse and validate a status document; with *topic*, its site and sender must match."""
    if len(payload) > MAX_STATUS_BYTES:
        raise WireFormatError(
            f"status is {len(payload)} bytes; the limit is {MAX_STATUS_BYTES}", reason="oversize"
        )
    if nests_deeper_than(payload, MAX_NESTING):
        raise WireFormatError(_too_deep("status"), reason="bad_json")
    try:
        doc = _loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireFormatError(f"status is not JSON: {exc}", reason="bad_json") from None
    except RecursionError:
        raise WireFormatError(_too_deep("status"), reason="bad_json") from None
    if not isinstance(doc, dict):
        raise WireFormatError("status: expected a JSON object", reason="bad_schema")
    if not _is_version(doc.get("v")):
        raise WireFormatError(
            f"v: expected {SCHEMA_VERSION}, got {_short(doc.get('v'))}",
            reason="unsupported_version",
        )
    site, sender = _field_name(doc, "site"), _field_name(doc, "sender")
    if topic is not None:
        parts = topic.split("/")
        if len(parts) != 5 or parts[:2] != ["dt", APP] or parts[4] != "status":
            raise WireFormatError(
                f"topic {_short(topic, 80)}: expected dt/{APP}/<site>/<sender>/status",
                reason="bad_topic",
            )
        if (parts[2], parts[3]) != (site, sender):
            raise WireFormatError(
                f"site/sender {site}/{sender}: the topic says {parts[2]}/{parts[3]}",
                reason="bad_topic",
            )
    state = doc.get("state")
    if state not in STATUS_STATES:
        raise WireFormatError(
            f"state: expected one of {', '.join(STATUS_STATES)}, got {_short(state)}",
            reason="bad_schema",
        )
    interval = doc.get("interval_s")
    if isinstance(interval, bool) or not isinstance(interval, int | float):
        raise WireFormatError(
            f"interval_s: expected a number of seconds, got {_short(interval)}",
            reason="bad_schema",
        )
    if not 0.1 <= interval <= 86400:
        raise WireFormatError(
            f"interval_s: {_short(interval)} is out of range; expected 0.1 to 86400",
            reason="out_of_range",
        )
    assets = doc.get("assets", [])
    if not isinstance(assets, list) or len(assets) > MAX_STATUS_ASSETS:
        raise WireFormatError("assets: expected an array of names", reason="bad_schema")
    counters = {}
    for name in _STATUS_COUNTERS:
        value = doc.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
            raise WireFormatError(
                f"{name}: expected an integer 0 to {MAX_SEQ}, got {_short(value)}",
                reason="bad_schema",
            )
        counters[name] = value
    ts = doc.get("ts")
    if ts is not None and (
        isinstance(ts, bool) or not isinstance(ts, int) or not TS_MIN_MS <= ts < TS_MAX_MS
    ):
        raise WireFormatError(
            f"ts: expected epoch milliseconds or null, got {_short(ts)}", reason="bad_timestamp"
        )
    age = doc.get("oldest_age_s")
    if age is not None and (
        isinstance(age, bool) or not isinstance(age, int | float) or not math.isfinite(age)
    ):
        raise WireFormatError(
            f"oldest_age_s: expected seconds or null, got {_short(age)}", reason="bad_schema"
        )
    return DeviceStatus(
        site=site,
        sender=sender,
        state=state,
        interval_s=float(interval),
        assets=tuple(_asset_name(a) for a in assets),
        agent_version=_text(doc, "agent_version") or "",
        protocol=_text(doc, "protocol"),
        oldest_age_s=None if age is None else float(age),
        last_error=_text(doc, "last_error"),
        reason=_text(doc, "reason"),
        ts_ms=ts,
        **counters,
    )


def _is_version(value: object) -> bool:
    """The integer 1 only: Python's True == 1.0 == 1, but JSON's true and 1.0 are no
    schema version, and seq and ts refuse them too."""
    return type(value) is int and value == SCHEMA_VERSION


def _text(doc: Mapping[str, object], key: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _STATUS_TEXT_MAX:
        raise WireFormatError(
            f"{key}: expected a string of at most {_STATUS_TEXT_MAX} characters or null",
            reason="bad_schema",
        )
    return value


def _clip(text: str | None) -> str | None:
    return text if text is None or len(text) <= _STATUS_TEXT_MAX else text[:_STATUS_TEXT_MAX]


def _asset_name(value: object) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise WireFormatError(
            f"assets[]: expected a name matching {NAME_RE.pattern}, got {_short(value)}",
            reason="bad_schema",
        )
    return value


def batch_samples(
    site: str, asset: str, sender: str, first_seq: int, samples: Iterable[Sample], per_message: int
) -> list[Telemetry]:
    """Group samples into messages of at most *per_message* samples, numbered from first_seq."""
    out: list[Telemetry] = []
    chunk: list[Sample] = []
    seq = first_seq
    for sample in samples:
        chunk.append(sample)
        if len(chunk) >= per_message:
            out.append(Telemetry(site, asset, sender, seq, tuple(chunk)))
            seq += 1
            chunk = []
    if chunk:
        out.append(Telemetry(site, asset, sender, seq, tuple(chunk)))
    return out


def _field_name(doc: Mapping[str, object], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise WireFormatError(
            f"{key}: expected a name matching {NAME_RE.pattern}, got {_short(value, 80)}",
            reason="bad_schema",
        )
    return value


def _short(value: object, limit: int = 40) -> str:
    """``repr`` cut to *limit* characters: a hostile 10**400 must not make a 400-digit error."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 100:
        if abs(value) == _BEYOND_BOUNDS:  # what such an integer was read as
            return "an integer of more than 4,000 digits"
        return f"an integer of {value.bit_length()} bits"  # str() of it may raise
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _name(value: str, what: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise WireFormatError(f"{what}: {value!r} must match {NAME_RE.pattern}", reason="bad_topic")
    return value
