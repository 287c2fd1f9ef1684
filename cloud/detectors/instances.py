"""Checks on a stored detector (or alarm) instance before the engine or a tool trusts it.

An instance document comes back from the state store (a file anyone with access can edit, a
table another version of plantwatch wrote, a disk that lost a page). Taken as it is, ``{"state":
5}`` or ``"variables": [1]`` would surface as a KeyError deep inside an evaluation, or, worse,
as a detector evaluating from a state its model does not have. So each field is checked for
the shape the engine writes, and a wrong one is named with the detector, the store path and
the field.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from cloud.detectors.model import KEY_VALUE_RE, MAX_LENIENT_TIMER_S
from edge.commands import shown
from edge.errors import UserError
from edge.json_values import finite_number

EARLIEST_EPOCH_S = -62_135_596_800.0
LATEST_EPOCH_S = 253_402_300_799.0
"""0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, the seconds a date can show: a stored time
outside (finite, but no engine writes one) would stop ``plantwatch detectors list``
printing it."""

QUARANTINE_NAMESPACE = "quarantine/detectors"
"""``<this>/<model>``: detector instance documents set aside because they failed these checks."""

ALARM_QUARANTINE_NAMESPACE = "quarantine/alarms"
"""``<this>/<model>``: the same for alarm instances."""


log = logging.getLogger(__name__)
T = TypeVar("T")


class DetectorStateError(UserError):
    """A stored detector instance is not a document the engine could have written."""


def key_value_problem(kind: str, model_name: str, key: Any) -> str | None:
    """Why *key* is no keyValue the iotevents-data API takes (1-128 of ``[a-zA-Z0-9-_:]``,
    every call's pattern), or None. Such a key is an invalid request, not a key no
    instance answers to."""
    if isinstance(key, str) and 1 <= len(key) <= 128 and KEY_VALUE_RE.fullmatch(key):
        return None
    return (
        f"keyValue: {clipped(key)} is not a key value of {kind} model {model_name!r}"
        " (1-128 of [a-zA-Z0-9-_:])"
    )


def key_misfit(kind: str, model_name: str, model_key: str | None, key: str | None) -> str | None:
    """Why *key* can name no *kind* (detector or alarm) of a model keyed on *model_key*
    whatever messages come, or None: a keyValue given to a model without key, or left out
    for one with a key. The batch requests answer it as an invalid entry; AWS does not say
    what DescribeDetector and DescribeAlarm answer, so they keep "not found" with this
    reason."""
    if model_key is None and key is not None:
        return (
            f"keyValue: {kind} model {model_name!r} has no key: it has one {kind};"
            f" leave keyValue out (got {clipped(key)})"
        )
    if model_key is not None and key is None:
        return (
            f"keyValue: {kind} model {model_name!r} has key {model_key!r}:"
            f" keyValue is required to name its {kind}"
        )
    return None


def key_refusal(kind: str, model_name: str, model_key: str | None, key: str | None) -> str | None:
    """Why *key* can name no *kind* of a model keyed on *model_key* whatever messages come
    (an invalid request, AWS's InvalidRequestException), or None when it may name one: a
    keyValue given to a model without key (``""`` included) or left out for one with a key
    (:func:`key_misfit`), or outside the API's keyValue shape (:func:`key_value_problem`),
    which no message could bring. The requests that change an instance (BatchUpdateDetector,
    the alarm actions) refuse such a key before touching the store."""
    misfit = key_misfit(kind, model_name, model_key, key)
    if misfit is not None or key is None:
        return misfit
    return key_value_problem(kind, model_name, key)


def clipped(value: Any) -> str:
    """A value's repr as an error names it, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_instance(
    model: str, key: str, doc: Any, states: Iterable[str] | None = None
) -> Mapping[str, Any]:
    """Return *doc* when it has the stored instance's shape, else raise DetectorStateError.

    *states* (the model's state names) also checks ``state`` names one of them; tools that
    read the store without the model pass None.
    """
    where = f"detector {model!r} instance {key!r} (state store detectors/{model}/{key})"

    def wrong(field: str, expected: str, value: Any) -> DetectorStateError:
        return _wrong(where, field, expected, value)

    if not isinstance(doc, Mapping):
        raise wrong("document", "a JSON object", doc)
    state = doc.get("state")
    if not isinstance(state, str):
        raise wrong("state", "a state name", state)
    if states is not None:
        names = list(states)
        if state not in names:
            raise wrong("state", "one of the model's states (" + ", ".join(names) + ")", state)
    for field in ("variables", "inputs", "timers", "durations"):
        if not isinstance(doc.get(field, {}), Mapping):
            raise wrong(field, "an object", doc.get(field))
    for name, payload in doc.get("inputs", {}).items():
        if not isinstance(payload, Mapping):
            raise wrong(f"inputs.{name}", "a message (an object)", payload)
    for name, timer in doc.get("timers", {}).items():
        if (
            not isinstance(timer, Mapping)
            or not _epoch(timer.get("expiry"))
            or not _duration(timer.get("duration", 0))
        ):
            raise wrong(f"timers.{name}", '{"expiry": seconds, "duration": seconds}', timer)
    for name, seconds in doc.get("durations", {}).items():
        if not _duration(seconds):
            raise wrong(f"durations.{name}", "a number of seconds", seconds)
    expired = doc.get("expired", [])
    if not isinstance(expired, list) or not all(isinstance(n, str) for n in expired):
        raise wrong("expired", "a list of timer names", expired)
    for field in ("created", "updated"):
        if field in doc and not _epoch(doc[field]):
            raise wrong(field, "epoch seconds", doc[field])
    entries = doc.get("entries", 0)
    if isinstance(entries, bool) or not isinstance(entries, int) or entries < 0:
        raise wrong("entries", "a count (an integer >= 0)", entries)
    return doc


def check_alarm_instance(
    model: str, key: str, doc: Any, states: Iterable[str]
) -> Mapping[str, Any]:
    """The same for a stored alarm instance: its state one of *states*, its times numbers,
    its counts counts, and each notice it still owes an object with its id, kind, state
    and time (what handing it over reads)."""
    where = f"alarm {model!r} instance {key!r} (state store alarms/{model}/{key})"

    def wrong(field: str, expected: str, value: Any) -> DetectorStateError:
        return _wrong(where, field, expected, value)

    if not isinstance(doc, Mapping):
        raise wrong("document", "a JSON object", doc)
    names = list(states)
    if doc.get("state") not in names:
        raise wrong("state", "one of " + ", ".join(names), doc.get("state"))
    for field in ("since", "created", "updated"):
        if field in doc and not finite_number(doc[field]):
            raise wrong(field, "epoch seconds", doc[field])
    for field in ("snooze_until", "next_reminder"):
        if doc.get(field) is not None and not finite_number(doc[field]):
            raise wrong(field, "epoch seconds or null", doc[field])
    for field in ("reminders_sent", "seq", "history", "entries"):
        count = doc.get(field, 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise wrong(field, "a count (an integer >= 0)", count)
    for field in ("inputs", "customer_action", "system_event"):
        if doc.get(field) is not None and not isinstance(doc[field], Mapping):
            raise wrong(field, "an object or null", doc[field])
    if doc.get("action_past") is not None and not isinstance(doc["action_past"], bool):
        raise wrong("action_past", "true, false or null", doc["action_past"])
    pending = doc.get("pending") or []
    if not isinstance(pending, list):
        raise wrong("pending", "a list of notices", pending)
    for i, notice in enumerate(pending):
        if (
            not isinstance(notice, Mapping)
            or not all(isinstance(notice.get(f), str) for f in ("id", "kind", "state"))
            or not finite_number(notice.get("time"))
            or not finite_number(notice.get("claim", 0.0))
        ):
            raise wrong(f"pending[{i}]", "a notice {id, kind, state, time, claim}", notice)
    return doc


def _epoch(value: Any) -> bool:
    """Epoch seconds a date can show (:data:`EARLIEST_EPOCH_S` to :data:`LATEST_EPOCH_S`)."""
    return finite_number(value) and EARLIEST_EPOCH_S <= value <= LATEST_EPOCH_S


def _duration(value: Any) -> bool:
    """Seconds a timer can last: no more than a lenient model's longest timer."""
    return finite_number(value) and 0 <= value <= MAX_LENIENT_TIMER_S


def _wrong(where: str, field: str, expected: str, value: Any) -> DetectorStateError:
    got = shown(repr(value) if isinstance(value, str) else value)  # a string in quotes
    return DetectorStateError(f"{where}: {field}: expected {expected}, got {got}")


class SetAside:
    """One model's stored instances set aside because they failed their checks.

    A failing document is copied, with the reason, under *namespace* (a quarantine
    namespace and the model's name) and logged; the engine then starts the key again from
    the initial state, and the document stays for whoever looks into why. The store
    version it was read at is kept, so the same document is not set aside twice and the
    first save of the new instance replaces it only if nobody changed it meanwhile."""

    def __init__(self, store: Any, namespace: str) -> None:
        self._store = store
        self.namespace = namespace
        self._versions: dict[str, int] = {}

    def admit(self, key: str, doc: Any, version: int, load: Callable[[], T]) -> T | None:
        """What *load* makes of the stored document, or None once it is set aside (*load*
        raises DetectorStateError for a document the engine could not have written)."""
        if self._versions.get(key) == version:
            return None  # set aside already; still the same document
        try:
            return load()
        except DetectorStateError as exc:
            reason = str(exc)
        self._store.put(
            self.namespace, key, {"reason": reason, "version": version, "document": doc}
        )
        log.error("%s; set aside under %s", reason, self.namespace)
        self._versions[key] = version
        return None

    def replaces(self, key: str) -> int | None:
        """The store version a new instance's first save must replace, if *key*'s document
        was set aside (asked once, by that save)."""
        return self._versions.pop(key, None)
