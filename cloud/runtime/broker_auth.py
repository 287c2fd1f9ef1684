"""Broker credentials and topic ACLs for ``plantwatch up --auth``, one set for both brokers.

The files live in ``DATA/auth/`` (directory 0700, files 0600):

- ``services.json``: the password of each stack service (rules runner, shadow service,
  streaming scorer, detector actions, the operator CLI); the stack reads it to connect.
- ``devices.json``: each device credential's site, the things it may act for and its
  password hash. Device passwords are never stored, only printed once when made.
- ``passwd`` and ``acl``: generated from the two above in mosquitto's formats
  (``password_file``: PBKDF2-SHA512 ``$7$`` hashes as ``mosquitto_passwd`` writes them;
  ``acl_file``: ``user`` blocks of ``topic read|write|readwrite`` lines). mosquitto reads
  them directly; the amqtt server reads the same files through :class:`AccessControl`, so
  both brokers enforce one policy.

The device policy has the meaning of the IoT Core one (``iot-core-rules-and-limits.md``
section 4): a device publishes only ``dt/plantwatch/<its site>/<its thing>/...``, sends
only get/update/delete requests of its own shadows (classic and named) and reads only its
own shadow topics; it may send its telemetry topics through Basic Ingest
(``$aws/rules/<rule>/dt/...``) too, and only the rules runner may read ``$aws/rules/``. A
gateway credential lists the assets it speaks for and gets the same
rights for each. Each ``user`` block is explicit rather than a ``%u`` pattern because the
site is part of the grant, which a pattern cannot express. Both brokers also set the
client id to the username, so one credential cannot take over another's session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import ConfigError, NotFoundError
from edge.wire import (
    APP,
    BASIC_INGEST_PREFIX,
    topic_name_problem,
    topic_size_problem,
)

AUTH_DIR = "auth"
PBKDF2_ITERATIONS = 101
"""What ``mosquitto_passwd`` 2.0 writes; the passwords are 192-bit random tokens, so the
work factor is not what protects them."""
_SALT_BYTES = 12
_HASH_BYTES = 64

SERVICE_SECRET_ENV = "PLANTWATCH_SERVICE_SECRET"
"""Without ``--auth``: the environment variable that hands the embedded amqtt broker the
per-run secret of the stack's services (only the owner can read a process's environment;
its command line anyone can)."""

SERVICE_GRANTS: dict[str, tuple[tuple[str, str], ...]] = {
    "plantwatch-rules": (("read", f"dt/{APP}/#"), ("read", f"{BASIC_INGEST_PREFIX}#")),
    "plantwatch-streaming": (("read", f"dt/{APP}/#"),),
    "plantwatch-devices": (("read", f"dt/{APP}/+/+/status"),),
    "plantwatch-shadow": (("readwrite", "$aws/things/+/shadow/#"),),
    "plantwatch-detectors": (
        ("write", "$aws/things/+/shadow/update"),
        ("write", "$aws/things/+/shadow/name/+/update"),
        ("write", f"cmd/{APP}/#"),
    ),
    "plantwatch-operator": (
        ("read", "$aws/things/+/shadow/#"),
        ("write", "$aws/things/+/shadow/+"),
        ("write", "$aws/things/+/shadow/name/+/+"),
    ),
}
"""Each stack service's own credential and what it may do; ``plantwatch-operator`` is the
CLI (``plantwatch shadow``)."""

ACCESS: dict[str, frozenset[str]] = {
    "read": frozenset({"subscribe", "receive"}),
    "write": frozenset({"publish"}),
    "readwrite": frozenset({"subscribe", "receive", "publish"}),
}
"""What each acl-file access word allows, as mosquitto reads it."""
ACTIONS = ("publish", "subscribe", "receive")


@dataclass(frozen=True, slots=True)
class Device:
    thing: str
    site: str
    assets: tuple[str, ...]
    """Things this credential acts for: its own name, or a gateway's assets."""


def device_grants(device: Device) -> list[tuple[str, str]]:
    """The IoT device policy of section 4, for every thing the credential acts for."""
    grants: list[tuple[str, str]] = []
    for thing in device.assets:
        shadow = f"$aws/things/{thing}/shadow"
        # '/+/#', not '/#': MQTT's '#' also matches the parent level, which the policy's
        # '<thing>/*' does not cover
        grants.append(("write", f"dt/{APP}/{device.site}/{thing}/+/#"))
        # the same topics through Basic Ingest, to any rule; nothing else under $aws/rules
        grants.append(("write", f"{BASIC_INGEST_PREFIX}+/dt/{APP}/{device.site}/{thing}/+/#"))
        grants.append(("read", f"{shadow}/+/#"))
        for operation in ("get", "update", "delete"):
            grants.append(("write", f"{shadow}/{operation}"))
            grants.append(("write", f"{shadow}/name/+/{operation}"))
    if device.thing not in device.assets:
        # a gateway publishes its own status (and its last will) under its own name
        grants.append(("write", f"dt/{APP}/{device.site}/{device.thing}/status"))
    return grants


# ---- password hashes (mosquitto 2.0's $7$ format) ------------------------------------------


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, _HASH_BYTES)
    return (
        f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}"
        f"${base64.b64encode(digest).decode()}"
    )


def verify_password(password: str, encoded: str) -> bool:
    """Check *password* against a ``$7$iterations$salt$hash`` line; anything else fails."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[:2] != ["", "7"]:
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    if not 1 <= iterations <= 1_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, len(expected))
    return hmac.compare_digest(digest, expected)


# ---- topic matching --------------------------------------------------------------------------


def acl_matches(pattern: str, topic: str) -> bool:
    """Does the ACL *pattern* cover *topic*? A subscription filter is checked the same way,
    with its own ``+`` and ``#`` taken literally, so ``.../shadow/#`` covers a subscription to
    ``.../shadow/get/+`` but ``$aws/things/pump-01/...`` does not cover ``$aws/things/+/...``.
    As in MQTT matching, a pattern starting with a wildcard never covers a ``$`` topic."""
    wanted = pattern.split("/")
    levels = topic.split("/")
    if topic.startswith("$") and wanted[0] in ("+", "#"):
        return False
    for index, level in enumerate(wanted):
        if level == "#":
            return True
        if index >= len(levels) or (level != "+" and level != levels[index]):
            return False
    return len(wanted) == len(levels)


# ---- the files --------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """Replace *path* atomically with a file only the owner can read."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: not a readable JSON object ({exc})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return doc


class AuthStore:
    """The ``DATA/auth`` directory: made on first use, regenerated on every change."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def in_data(cls, data_root: Path) -> AuthStore:
        return cls(Path(data_root) / AUTH_DIR)

    @property
    def services_file(self) -> Path:
        return self.root / "services.json"

    @property
    def devices_file(self) -> Path:
        return self.root / "devices.json"

    @property
    def passwd_file(self) -> Path:
        return self.root / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.root / "acl"

    def exists(self) -> bool:
        return self.services_file.is_file()

    def ensure(self) -> AuthStore:
        """Create the directory and a password for every service that lacks one; keep
        what exists, so a restarted stack and its devices keep their credentials."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        services = {k: v for k, v in _read_json(self.services_file).items() if isinstance(v, str)}
        for name in SERVICE_GRANTS:
            services.setdefault(name, secrets.token_urlsafe(24))
        _write_private(self.services_file, json.dumps(services, indent=2) + "\n")
        self._render(services, self._devices_doc())
        return self

    def service_password(self, name: str) -> str:
        if name not in SERVICE_GRANTS:
            raise ConfigError(f"service {name!r}: expected one of {', '.join(SERVICE_GRANTS)}")
        password = _read_json(self.services_file).get(name)
        if not isinstance(password, str):
            raise ConfigError(
                f"{self.services_file}: no password for {name!r}; run `plantwatch up --auth`"
            )
        return password

    def devices(self) -> list[Device]:
        return [
            Device(thing, str(entry.get("site")), tuple(entry.get("assets") or (thing,)))
            for thing, entry in sorted(self._devices_doc().items())
        ]

    def add_device(
        self, thing: str, site: str, assets: Iterable[str] = (), *, replace: bool = False
    ) -> str:
        """Make a device credential; returns its password, which is not kept. An existing
        credential for *thing* is refused unless *replace*: its device's password would stop
        working."""
        for name, what in ((site, "site"), (thing, "thing"), *((a, "asset") for a in assets)):
            problem = topic_name_problem(name, what)
            if problem is not None:
                raise ConfigError(problem)
        names = tuple(assets) or (thing,)
        for name, what in ((thing, "thing"), *((a, "asset") for a in assets)):
            problem = topic_size_problem(site, name, what)
            if problem is not None:
                raise ConfigError(problem)
        if len(set(names)) != len(names):
            raise ConfigError(f"assets {list(names)}: names must be unique")
        if thing in SERVICE_GRANTS:
            raise ConfigError(f"thing {thing!r}: the name of a stack service; pick another")
        devices = self._devices_doc()
        if thing in devices and not replace:
            raise ConfigError(
                f"device credential {thing!r} already exists in {self.devices_file}; "
                "add --replace to give it a new password (the old one stops working)"
            )
        self._check_one_site(thing, site, names, devices)
        self.ensure()
        password = secrets.token_urlsafe(24)
        devices = self._devices_doc()
        devices[thing] = {"site": site, "assets": list(names), "hash": hash_password(password)}
        self._save_devices(devices)
        return password

    @staticmethod
    def _check_one_site(
        thing: str, site: str, names: tuple[str, ...], devices: Mapping[str, Any]
    ) -> None:
        """Refuse a thing another credential serves at another site. A thing has one
        ``site`` attribute on AWS (CreateThing refuses other attributes for an existing
        thing), and shadows are not split by site: a gateway at one site listing another
        site's thing would use that thing's shadow and publish its telemetry under its own
        site. *thing*'s own entry is being replaced, so it does not count."""
        for other, entry in sorted(devices.items()):
            if other == thing or entry.get("site") == site:
                continue
            served = set(entry.get("assets") or (other,)) | {other}
            for name in (thing, *names):
                if name in served:
                    raise ConfigError(
                        f"thing {name!r}: already at site {entry.get('site')!r} (device "
                        f"credential {other!r}); a thing belongs to one site"
                    )

    def remove_device(self, thing: str) -> None:
        devices = self._devices_doc()
        if thing not in devices:
            raise NotFoundError(f"{self.devices_file}: no device credential {thing!r}")
        del devices[thing]
        self._save_devices(devices)

    def _devices_doc(self) -> dict[str, Any]:
        doc = _read_json(self.devices_file)
        for thing, entry in doc.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
                raise ConfigError(f"{self.devices_file}: {thing}: expected site, assets and hash")
        return doc

    def _save_devices(self, devices: Mapping[str, Any]) -> None:
        _write_private(self.devices_file, json.dumps(devices, indent=2, sort_keys=True) + "\n")
        services = {k: v for k, v in _read_json(self.services_file).items() if isinstance(v, str)}
        self._render(services, devices)

    def _render(self, services: Mapping[str, str], devices: Mapping[str, Any]) -> None:
        passwd = [f"{name}:{hash_password(password)}" for name, password in services.items()]
        passwd += [f"{thing}:{entry['hash']}" for thing, entry in sorted(devices.items())]
        _write_private(self.passwd_file, "\n".join(passwd) + "\n")
        lines = ["# Generated by plantwatch from services.json and devices.json; edits are lost."]
        blocks: list[tuple[str, list[tuple[str, str]]]] = [
            (name, list(SERVICE_GRANTS[name])) for name in services if name in SERVICE_GRANTS
        ]
        blocks += [(device.thing, device_grants(device)) for device in self.devices()]
        for user, grants in blocks:
            lines.append("")
            lines.append(f"user {user}")
            lines += [f"topic {access} {topic}" for access, topic in grants]
        _write_private(self.acl_file, "\n".join(lines) + "\n")


class AccessControl:
    """The amqtt side of the policy: reads the same ``passwd`` and ``acl`` files mosquitto
    does and answers with mosquitto's meaning (anonymous refused; publish needs ``write``;
    subscribe and receive need ``read``)."""

    def __init__(self, passwd_file: Path, acl_file: Path) -> None:
        self.passwd_file = Path(passwd_file)
        self.acl_file = Path(acl_file)
        self._hashes: dict[str, str] = {}
        self._grants: dict[str, list[tuple[str, str]]] = {}
        self.reload()

    def reload(self) -> None:
        """Read both files again (the broker does this on SIGHUP, as mosquitto does)."""
        hashes: dict[str, str] = {}
        for number, line in enumerate(self.passwd_file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            user, sep, encoded = line.partition(":")
            if not sep:
                raise ConfigError(f"{self.passwd_file}:{number}: expected USER:HASH")
            hashes[user] = encoded
        grants: dict[str, list[tuple[str, str]]] = {}
        user: str | None = None
        for number, raw in enumerate(self.acl_file.read_text().splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            words = line.split(maxsplit=2)
            if words[0] == "user" and len(words) == 2:
                user = words[1]
                grants.setdefault(user, [])
            elif words[0] == "topic" and len(words) == 3 and words[1] in ACCESS and user:
                grants[user].append((words[1], words[2]))
            else:
                raise ConfigError(
                    f"{self.acl_file}:{number}: expected 'user NAME' or "
                    f"'topic read|write|readwrite TOPIC' after a user line"
                )
        self._hashes, self._grants = hashes, grants

    def authenticate(self, username: str | None, password: str | bytes | None) -> bool:
        if not username or password is None:
            return False
        encoded = self._hashes.get(username)
        if encoded is None:
            return False
        if isinstance(password, bytes):
            try:
                password = password.decode("utf-8")
            except UnicodeDecodeError:
                return False
        return verify_password(password, encoded)

    def allows(self, username: str | None, action: str, topic: str) -> bool:
        if action not in ACTIONS:
            raise ValueError(f"action {action!r}: expected one of {ACTIONS}")
        return any(
            action in ACCESS[access] and acl_matches(pattern, topic)
            for access, pattern in self._grants.get(username or "", ())
        )
