"""The alarm engine: one instance per key value, in AWS IoT Events alarm states (spec §7).

An instance watches ``inputProperty <operator> threshold`` on the inputs it is routed:

| From | Trigger | To |
|---|---|---|
| new instance | first message | DISABLED if ``disabledOnInitialization``, else NORMAL and evaluate |
| NORMAL | breached | ACTIVE |
| ACTIVE | not breached | LATCHED (acknowledge flow on) or NORMAL (off) |
| ACTIVE / LATCHED | ACKNOWLEDGE (acknowledge flow on only) | ACKNOWLEDGED / NORMAL |
| ACKNOWLEDGED | not breached | NORMAL |
| LATCHED | breached | ACTIVE |
| NORMAL, ACTIVE, ACKNOWLEDGED, LATCHED | SNOOZE | SNOOZE_DISABLED until the snooze runs out, then NORMAL |
| not DISABLED | DISABLE / RESET | DISABLED / NORMAL |
| DISABLED | ENABLE | NORMAL |

SNOOZE_DISABLED and DISABLED ignore data (the last value is still kept for display). An
operator action that does not fit the state raises :class:`AlarmStateError` naming the
state. ``alarmEventActions`` run on every state change; with the acknowledge flow on, every
state change also notifies (``alarmNotification``: one ``sns`` request per email or SMS
configuration, addressed to the recipients a :class:`RecipientDirectory` resolves), and an
ACTIVE alarm nobody acknowledges is notified again every ``reminder_interval_s``, at most
``reminder_cap`` times. Everything goes to the ActionSink: locally the durable outbox
(:mod:`cloud.detectors.outbox`) in front of the sink that writes the texts and keeps the
per-asset notification budget.

Several engines may share one store (two Lambdas, the timers function beside the detector
function, a CLI beside them). Each write of an instance is conditional on the version it
was read at; a lost race re-reads the instance and evaluates the message, operator action
or due time again on the fresh state, as the detector engine does, so exactly one of two
racing engines makes a transition and sends its notices.

Restart safety: a state change and the notices it owes are written in one document
(``pending``) before any is handed to the sink. A notice is born claimed by the engine that
made it (``claim``, ``CLAIM_S`` ahead); that engine records the history entry, spends the
budget and hands the notice's requests over, then drops it from the document (written
lazily). An engine that finds a notice whose claim has lapsed (its maker died) claims it
with a conditional write and hands it over again; the requests' stable ids
(``<kind>#<n>...``) let the sink drop a repeat. Snooze expiries and reminders are due
times in the same document, so they fire once after a restart, and once between two
engines.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from cloud import alerts
from cloud.detectors import expr as ex
from cloud.detectors.alarms.limits import NotificationLimiter
from cloud.detectors.alarms.model import OPERATORS, AlarmModel, Recipient, check_alarm_references
from cloud.detectors.engine import (
    MAX_ATTEMPTS,
    ActionRequest,
    ActionSink,
    evaluate_action,
    redefine,
)
from cloud.detectors.instances import (
    ALARM_QUARANTINE_NAMESPACE,
    SetAside,
    check_alarm_instance,
    clipped,
    key_refusal,
    key_value_problem,
)
from cloud.detectors.model import KEY_VALUE_RE, InputDefinition, declared_tree, declared_view
from cloud.detectors.outbox import CLAIM_S
from cloud.detectors.trace import EngineObserver, TraceRecord
from cloud.ports import StateStore, batched
from edge.clock import Clock
from edge.errors import NotFoundError, UserError, VersionConflictError
from edge.json_values import not_unicode
from edge.logs import OncePerReason

log = logging.getLogger(__name__)

REGISTRY_NAMESPACE: Final = "alarm-models"
"""One document per alarm model an engine has run: definition, version, inputs."""
HISTORY_PREFIX: Final = "alarm-history/"
NO_KEY: Final = ""

SNOOZE_END_MAX: Final = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
"""A snooze must end at a time that prints as a date (they stop at year 9999)."""
STATES: Final = ("DISABLED", "NORMAL", "ACTIVE", "ACKNOWLEDGED", "LATCHED", "SNOOZE_DISABLED")
OPERATIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "ACKNOWLEDGE": ("ACTIVE", "LATCHED"),
    "SNOOZE": ("NORMAL", "ACTIVE", "ACKNOWLEDGED", "LATCHED"),
    "RESET": ("NORMAL", "ACTIVE", "ACKNOWLEDGED", "LATCHED", "SNOOZE_DISABLED"),
    "ENABLE": ("DISABLED",),
    "DISABLE": ("NORMAL", "ACTIVE", "ACKNOWLEDGED", "LATCHED", "SNOOZE_DISABLED"),
}
"""Operator action -> the states it applies in (spec §7)."""
NOTE_MAX: Final = 256
SNOOZE_TIMEOUT: Final[Mapping[str, Any]] = {
    "eventType": "STATE_CHANGE",
    "stateChangeConfiguration": {"triggerType": "SNOOZE_TIMEOUT"},
}
"""The system event of a snooze that ran out (SystemEvent, StateChangeConfiguration)."""
LIST_MAX: Final = 250
"""ListAlarms ``maxResults``: "Minimum value of 1. Maximum value of 250" (API reference)."""
VALUE_FLUSH_S: Final = 30.0
"""A message that changes only the last value is written at least this often (clock time);
a state change is written at once, with the notifications it causes."""


class AlarmStateError(UserError):
    """An operator action that does not fit the alarm's current state."""

    def __init__(self, message: str, *, state: str) -> None:
        super().__init__(message)
        self.state = state


class RecipientDirectory(Protocol):
    """Resolves IAM Identity Center recipients to an email address and a phone number."""

    def email(self, recipient: Recipient) -> str | None: ...

    def phone(self, recipient: Recipient) -> str | None: ...


@dataclass(frozen=True, slots=True)
class StaticDirectory:
    """Every recipient reads one configured address and number (the local runtime's default)."""

    email_address: str = "ops@example.com"
    phone_number: str = "+15555550100"

    def email(self, recipient: Recipient) -> str | None:
        return self.email_address

    def phone(self, recipient: Recipient) -> str | None:
        return self.phone_number


@dataclass(slots=True)
class _Alarm:
    key: str
    state: str
    since: float
    created: float
    updated: float
    inputs: dict[str, Any] = field(default_factory=dict)
    value: Any = None
    threshold: Any = None
    snooze_until: float | None = None
    reminders_sent: int = 0
    next_reminder: float | None = None
    customer_action: dict[str, Any] | None = None
    """The last operator action (alarms list and the dashboard show it, with who)."""
    action_past: bool | None = None
    """True once the rule or a snooze running out has moved the alarm since that action:
    it no longer describes the current state, so DescribeAlarm leaves it out."""
    system_event: dict[str, Any] | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0
    """Notices issued so far: the last part of each notice's id."""
    history: int = 0
    entries: int = 1
    version: int | None = None
    """Store version this instance was read or last written at; None: never stored."""
    scheduled: float | None = None
    """The due time last pushed on the engine's heap (not stored)."""

    def to_doc(self, *, inputs: bool = True) -> dict[str, Any]:
        """The stored document; fields without a value are left out (readers default
        them), which keeps the one write per state change small."""
        doc: dict[str, Any] = {
            "state": self.state,
            "since": self.since,
            "created": self.created,
            "updated": self.updated,
            "pending": self.pending,
            "seq": self.seq,
            "history": self.history,
            "entries": self.entries,
        }
        if inputs and self.inputs:
            doc["inputs"] = self.inputs
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        if self.reminders_sent:
            doc["reminders_sent"] = self.reminders_sent
        return doc

    @classmethod
    def from_doc(cls, key: str, doc: Mapping[str, Any], version: int | None = None) -> _Alarm:
        return cls(
            key=key,
            state=doc["state"],
            since=float(doc.get("since", 0.0)),
            created=float(doc.get("created", 0.0)),
            updated=float(doc.get("updated", 0.0)),
            inputs=dict(doc.get("inputs") or {}),
            value=doc.get("value"),
            threshold=doc.get("threshold"),
            snooze_until=doc.get("snooze_until"),
            reminders_sent=int(doc.get("reminders_sent", 0)),
            next_reminder=doc.get("next_reminder"),
            customer_action=doc.get("customer_action"),
            action_past=doc.get("action_past"),
            system_event=doc.get("system_event"),
            pending=[dict(n) for n in doc.get("pending") or []],
            seq=int(doc.get("seq", 0)),
            history=int(doc.get("history", 0)),
            entries=int(doc.get("entries", 1)),
            version=version,
        )

    def due(self) -> float | None:
        """The earliest snooze expiry, reminder, or lapse of a notice's claim."""
        due = self.snooze_until
        if self.next_reminder is not None and (due is None or self.next_reminder < due):
            due = self.next_reminder
        for notice in self.pending:
            claim = float(notice.get("claim", 0.0))
            if due is None or claim < due:
                due = claim
        return due


_OPTIONAL: Final = (
    "value",
    "threshold",
    "snooze_until",
    "next_reminder",
    "customer_action",
    "action_past",
    "system_event",
)
"""Instance fields stored only when they hold a value."""


@dataclass(slots=True)
class _Context:
    """What the rule's expressions see: this instance's last message of each input."""

    alarm: _Alarm
    input_name: str | None = None

    def input_value(self, input_name: str, path: tuple[str | int, ...]) -> Any:
        if input_name not in self.alarm.inputs:
            return ex.UNDEFINED
        return ex.lookup_path(self.alarm.inputs[input_name], path)

    def variable(self, name: str) -> Any:
        return ex.UNDEFINED

    def timeout(self, timer_name: str) -> bool:
        return False

    def trigger_type(self) -> str:
        return "Message"

    def current_input(self) -> str | None:
        return self.input_name


Step = Callable[[_Alarm | None], tuple[_Alarm, bool] | None]
"""One evaluation on an instance (None: none stored): the instance and whether it must be
written now (False: only its last value changed), or None when there was nothing to do."""


class AlarmEngine:
    """Runs one alarm model: messages (``put_message``), operator actions, and ``tick``.

    Instances are cached; a state change is written at once, conditionally on the version
    the instance was read at, and a lost race evaluates again on the re-read instance.
    ``preload=False`` reads an instance when a message or an action first needs it instead
    of reading them all up front (a Lambda handling one asset's results reads one item);
    ``tick`` sees only loaded instances, so a timer runner preloads.
    """

    def __init__(
        self,
        model: AlarmModel,
        inputs: Sequence[InputDefinition],
        state: StateStore,
        clock: Clock,
        actions: ActionSink,
        *,
        directory: RecipientDirectory | None = None,
        limiter: NotificationLimiter | None = None,
        observer: EngineObserver | None = None,
        preload: bool = True,
    ) -> None:
        """*limiter* is the runtime's per-asset budget (the one its sink keeps): a state
        change's notification spends one alert of it, its emails and texts together."""
        self.model = model
        self.inputs = {i.name: i for i in inputs}
        self._declared = {i.name: declared_tree(i.attributes) for i in inputs}
        self.warnings = check_alarm_references(model, list(inputs)) if inputs else []
        for warning in self.warnings:
            log.warning("%s", warning)
        self._reads = model.inputs_read()
        self._store = state
        self._clock = clock
        self._actions = actions
        self._directory = directory or StaticDirectory()
        self._limiter = limiter
        self._observer = observer
        self._breached = compare(OPERATORS[model.rule.operator])
        self._value_of = _reader(model.rule.input_property)
        self._threshold_of = _reader(model.rule.threshold)
        self._keys: dict[tuple[type, Any], str | None] = {}
        """Key values seen -> their instance key (None: not a valid key); checked once."""
        self._warned = OncePerReason()
        """Bad keys already warned about (each kind once)."""
        self.namespace = f"alarms/{model.name}"
        self._set_aside = SetAside(state, f"{ALARM_QUARANTINE_NAMESPACE}/{model.name}")
        self.history_namespace = f"{HISTORY_PREFIX}{model.name}"
        self._lock = threading.RLock()
        self._cache: dict[str, _Alarm] = {}
        self._heap: list[tuple[float, str]] = []
        self._dirty: set[str] = set()
        """Keys changed since their last write (a last value, a hand-over): the next write,
        the periodic flush or :meth:`close` records them."""
        self._handed: dict[str, set[str]] = {}
        """Per key, ids of notices handed over but still in the stored document: removed
        again from any fresh copy read after a lost race, until a write records it."""
        self._claimed: list[str] = []
        """Ids of the notices the evaluation in progress made or claimed."""
        self._held: list[TraceRecord] | None = None
        """Trace records of the evaluation in progress (None: none in progress)."""
        self.handed_over = 0
        """Notices this engine has handed over (history, budget, requests)."""
        self._flushed_at = clock.now()
        self.version = self._register(list(inputs))
        if preload:
            for key, stored in self._store.items_versioned(self.namespace):
                alarm = self._checked(key, stored.value, stored.version)
                if alarm is not None:
                    self._remember(alarm)
            self.deliver_pending()

    def _register(self, inputs: list[InputDefinition]) -> str:
        """Record the model (and its inputs, so a CLI can rebuild the engine from the store).

        A changed definition deletes the instances and raises the version, as
        UpdateAlarmModel does: stored states never meet a rule they were not made for.
        """
        fingerprint = self.model.fingerprint()
        previous, version = redefine(
            self._store,
            REGISTRY_NAMESPACE,
            self.namespace,
            self.model.name,
            fingerprint,
            "1",
            "alarm(s)",
        )
        document = {
            "version": version,
            "fingerprint": fingerprint,
            "definition": dict(self.model.raw),
            "inputs": [dict(i.raw) for i in inputs]
            if inputs
            else (previous or {}).get("inputs", []),
        }
        if document != previous:  # an engine built per Lambda invocation writes nothing
            self._store.put(REGISTRY_NAMESPACE, self.model.name, document)
        return version

    # ------------------------------------------------------------ messages

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None:
        """A message routed to this model: pick or create the instance, evaluate the rule."""
        if input_name not in self._reads:
            return
        key = self._key_of(payload)
        if key is None:
            self._skip(input_name, payload)
            return
        declared = self._declared.get(input_name)
        # given its definition, only the declared attributes are defined (as in detectors)
        body = dict(payload) if declared is None else declared_view(dict(payload), declared)

        def evaluate(alarm: _Alarm | None) -> tuple[_Alarm, bool]:
            now = self._clock.now()
            created = alarm is None
            if alarm is None:
                initial = "DISABLED" if self.model.disabled_on_initialization else "NORMAL"
                alarm = _Alarm(key, initial, now, now, now)
                self._cache[key] = alarm
                if self._observer is not None:
                    self._trace("created", key, state=initial)
            entries = alarm.entries
            # a snooze that has run out ended before this message, even if the timer has not
            # run yet: the message meets a NORMAL alarm ("After the snooze time, the alarm
            # automatically changes to the NORMAL state", AlarmState)
            self._expire_snooze(alarm, now)
            alarm.inputs[input_name] = body
            self._evaluate(alarm, input_name)
            alarm.updated = now
            # Only the last value changed: written within VALUE_FLUSH_S, or at close().
            return alarm, created or alarm.entries != entries

        with self._lock:
            self._commit(key, evaluate)

    def _key_of(self, payload: Mapping[str, Any]) -> str | None:
        if self.model.key_path is None:
            return NO_KEY
        value = ex.lookup_path(payload, self.model.key_path)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return None
        seen = (type(value), value)
        if seen in self._keys:
            return self._keys[seen]
        text = ex.format_value(value)
        key = text if KEY_VALUE_RE.fullmatch(text) and len(text) <= 128 else None
        if len(self._keys) >= 65536:  # a fleet, not an unbounded stream of junk keys
            self._keys.clear()
        self._keys[seen] = key
        return key

    def _skip(self, input_name: str, payload: Mapping[str, Any]) -> None:
        """A message with no valid key value: this model skips it, with a logged warning
        (spec §1 Decision), once per kind of bad key so a stream of them does not flood."""
        value = ex.lookup_path(payload, self.model.key_path or ())
        if value is ex.UNDEFINED:
            reason = f"key {self.model.key!r} is missing from the payload"
        else:
            found = (
                f"{len(value)} characters"
                if isinstance(value, str) and len(value) > 128
                else clipped(value)
            )
            reason = f"key {self.model.key!r} is {found}, not a key value (1-128 of [a-zA-Z0-9-_:])"
        self._trace("skipped", None, input=input_name, reason=reason)
        if self._warned.first(reason):
            log.warning(
                "alarm model %s: %s message skipped: %s", self.model.name, input_name, reason
            )

    def _evaluate(self, alarm: _Alarm, input_name: str) -> None:
        value, problem = self._value_of(alarm, input_name)
        threshold, problem2 = self._threshold_of(alarm, input_name)
        if not _comparable(value) or not _comparable(threshold):
            self._trace(
                "error",
                alarm.key,
                path="$.alarmRule.simpleRule",
                expression=f"{self.model.rule.input_property_text} {self.model.rule.operator}"
                f" {self.model.rule.threshold_text}",
                message=problem
                or problem2
                or f"no value to compare ({_shown(value)} against {_shown(threshold)}); state kept",
            )
            return
        alarm.value, alarm.threshold = value, threshold
        if alarm.state in ("DISABLED", "SNOOZE_DISABLED"):
            return
        breached = self._breached(value, threshold)
        current = alarm.state
        target = current
        if current == "NORMAL" and breached:
            target = "ACTIVE"
        elif current == "ACTIVE" and not breached:
            target = "LATCHED" if self.model.acknowledge_flow else "NORMAL"
        elif current == "ACKNOWLEDGED" and not breached:
            target = "NORMAL"
        elif current == "LATCHED" and breached:
            target = "ACTIVE"
        if target != current:
            self._enter(alarm, target, cause="rule")

    # ------------------------------------------------------------ operator actions

    def acknowledge(self, key: str | None, *, note: str = "", who: str = "") -> dict[str, Any]:
        """BatchAcknowledgeAlarm for one instance: ACTIVE -> ACKNOWLEDGED, LATCHED -> NORMAL;
        an alarm whose acknowledge flow is off cannot be acknowledged."""
        return self._operate(key, "ACKNOWLEDGE", note=note, who=who)

    def snooze(
        self, key: str | None, seconds: float, *, note: str = "", who: str = ""
    ) -> dict[str, Any]:
        """BatchSnoozeAlarm: SNOOZE_DISABLED for *seconds*, then NORMAL."""
        if not (seconds > 0 and math.isfinite(seconds)):
            raise UserError(f"snooze: duration must be a positive number, got {seconds:g} s")
        if not float(seconds).is_integer():  # snoozeDuration is an Integer (API reference)
            raise UserError(f"snooze: duration must be whole seconds, got {seconds:g} s")
        if self._clock.now() + seconds > SNOOZE_END_MAX:
            raise UserError(f"snooze: {seconds:g} s would end after {_iso(SNOOZE_END_MAX)}")
        return self._operate(key, "SNOOZE", note=note, who=who, snooze_s=seconds)

    def reset(self, key: str | None, *, note: str = "", who: str = "") -> dict[str, Any]:
        """BatchResetAlarm: back to NORMAL from any state but DISABLED, without the last
        value (DescribeAlarm shows no ``ruleEvaluation`` until the next message)."""
        return self._operate(key, "RESET", note=note, who=who)

    def enable(self, key: str | None, *, note: str = "", who: str = "") -> dict[str, Any]:
        """BatchEnableAlarm: DISABLED -> NORMAL."""
        return self._operate(key, "ENABLE", note=note, who=who)

    def disable(self, key: str | None, *, note: str = "", who: str = "") -> dict[str, Any]:
        """BatchDisableAlarm: DISABLED from any other state; data is ignored until enabled."""
        return self._operate(key, "DISABLE", note=note, who=who)

    def _operate(
        self,
        key: str | None,
        action: str,
        *,
        note: str,
        who: str,
        snooze_s: float | None = None,
    ) -> dict[str, Any]:
        if len(note) > NOTE_MAX:
            raise UserError(f"--note: {len(note)} characters; at most {NOTE_MAX} allowed")
        for name, text in (("note", note), ("who", who)):
            problem = not_unicode(text)
            if problem:  # it could not be written, and would fail the state write
                raise UserError(f"{name}: {problem}")
        misfit = self._key_misfit(key)
        if misfit is not None:
            raise UserError(misfit)
        instance_key = NO_KEY if key is None else key

        refused: list[AlarmStateError] = []

        def operate(alarm: _Alarm | None) -> tuple[_Alarm, bool]:
            refused.clear()
            if alarm is None:
                raise NotFoundError(self._no_instance(key))
            now = self._clock.now()
            # a snooze that has run out ended before this action (as before a message)
            expired = self._expire_snooze(alarm, now)
            problem = self._refusal(alarm, action)
            if problem is not None:
                if not expired:
                    raise problem  # nothing changed
                refused.append(problem)  # the expiry is written; then the refusal
                return alarm, True
            config: dict[str, Any] = {"note": note} if note else {}  # optional in the API
            if snooze_s is not None:
                config["snoozeDuration"] = int(snooze_s)
            alarm.customer_action = {
                "actionName": action,
                f"{action.lower()}ActionConfiguration": config,
                "who": who,
                "time": now,
            }
            if action == "RESET":
                # "Reset an alarm to clear its state and latest value" (SiteWise user
                # guide, Respond to alarms): no ruleEvaluation until the next message
                alarm.value = alarm.threshold = None
            target = {
                "ACKNOWLEDGE": "ACKNOWLEDGED" if alarm.state == "ACTIVE" else "NORMAL",
                "SNOOZE": "SNOOZE_DISABLED",
                "RESET": "NORMAL",
                "ENABLE": "NORMAL",
                "DISABLE": "DISABLED",
            }[action]
            self._enter(
                alarm, target, cause=action, who=who, note=note, snooze_s=snooze_s, force=True
            )
            alarm.updated = now
            return alarm, True

        with self._lock:
            self._commit(instance_key, operate)
            if refused:
                raise refused[0]
            return self.describe(key)

    def _key_misfit(self, key: str | None) -> str | None:
        """Why *key* can name no alarm of this model (:func:`key_refusal`), or None."""
        return key_refusal("alarm", self.model.name, self.model.key, key)

    def _check_key_shape(self, key: str | None) -> None:
        """DescribeAlarm's keyValue has the API's pattern: a key outside it is an invalid
        request (UserError), whatever the model: "" too (1-128 characters), though the
        keyless alarm is stored under it; that one answers a request without keyValue."""
        if key is None:
            return
        problem = key_value_problem("alarm", self.model.name, key)
        if problem is not None:
            raise UserError(problem)

    def _no_instance(self, key: str | None) -> str:
        """Why no instance answers to *key*: one the model cannot have, or none yet."""
        misfit = self._key_misfit(key)
        if misfit is not None:
            return misfit
        if self.model.key is None:
            return f"alarm model {self.model.name!r} has no alarm yet (no message has arrived)"
        keys = [k for k, _ in self._store.items(self.namespace)]
        known = ", ".join(keys[:10]) or "none yet"
        if len(keys) > 10:  # a fleet: a few, not a message as long as the fleet
            known += f" and {len(keys) - 10} more"
        return f"alarm {self.model.name!r} has no instance for key {key!r} (known: {known})"

    def _refusal(self, alarm: _Alarm, action: str) -> AlarmStateError | None:
        """Why *action* does not fit *alarm*'s state, or None when it does."""
        allowed = OPERATIONS[action]
        if alarm.state not in allowed:
            return AlarmStateError(
                f"cannot {action.lower()} alarm {self.model.name}/{alarm.key or '-'}: it is"
                f" {alarm.state} ({action.lower()} applies to {', '.join(allowed)})",
                state=alarm.state,
            )
        if action == "ACKNOWLEDGE" and not self.model.acknowledge_flow:
            # "You must enable the acknowledge flow on the alarm so that you can
            # acknowledge the alarm" (SiteWise user guide, Respond to alarms)
            return AlarmStateError(
                f"cannot acknowledge alarm {self.model.name}/{alarm.key or '-'}: its"
                " acknowledge flow is off (alarmCapabilities.acknowledgeFlow.enabled);"
                " reset or disable it instead",
                state=alarm.state,
            )
        return None

    # ------------------------------------------------------------ timers

    def tick(self) -> int:
        """Run due snooze expiries and reminders at ``clock.now()``, and hand over notices
        whose maker's claim lapsed; return how many expiries and reminders ran."""
        with self._lock:
            now = self._clock.now()
            if now - self._flushed_at >= VALUE_FLUSH_S:
                self._flushed_at = now
                self._flush()
            ran = 0
            while self._heap and self._heap[0][0] <= now:
                due, key = heapq.heappop(self._heap)
                alarm = self._cache.get(key)
                if alarm is None or alarm.due() != due:
                    continue  # rescheduled or cleared since
                fired = [0]
                self._commit(key, lambda a, fired=fired: self._fire(a, now, fired))
                ran += fired[0]
            return ran

    def _fire(
        self, alarm: _Alarm | None, now: float, fired: list[int]
    ) -> tuple[_Alarm, bool] | None:
        """What is due on *alarm* at *now*; *fired* counts expiries and reminders (of the
        last attempt: a lost one is evaluated again)."""
        fired[0] = 0
        if alarm is None:
            return None  # deleted meanwhile
        entries, seq = alarm.entries, alarm.seq
        if self._expire_snooze(alarm, now):
            fired[0] += 1
        if alarm.next_reminder is not None and alarm.next_reminder <= now:
            fired[0] += self._remind(alarm, now)
        return alarm, alarm.entries != entries or alarm.seq != seq

    def _expire_snooze(self, alarm: _Alarm, now: float) -> bool:
        """End a snooze that has run out by *now*: SNOOZE_DISABLED -> NORMAL, with the
        ``SNOOZE_TIMEOUT`` system event (StateChangeConfiguration); True if it ended one."""
        if alarm.snooze_until is None or alarm.snooze_until > now:
            return False
        expired, alarm.snooze_until = alarm.snooze_until, None
        if alarm.state != "SNOOZE_DISABLED":
            return False
        self._trace("timer", alarm.key, op="fired", name="snooze", expires=expired)
        alarm.system_event = dict(SNOOZE_TIMEOUT)
        # dated when the snooze ended, not when a timer got to it: what a read in between
        # reported (:func:`as_of`) is what is written
        self._enter(alarm, "NORMAL", cause="SNOOZE_TIMEOUT", at=expired)
        alarm.updated = expired
        return True

    def next_due(self) -> float | None:
        """When the earliest snooze expiry, reminder or claim lapse is due (epoch s), if any."""
        while self._heap:
            due, key = self._heap[0]
            alarm = self._cache.get(key)
            if alarm is not None and alarm.due() == due:
                return due
            heapq.heappop(self._heap)
        return None

    def _remind(self, alarm: _Alarm, now: float) -> int:
        alarm.next_reminder = None
        if alarm.state != "ACTIVE" or alarm.reminders_sent >= self.model.reminder_cap:
            return 0
        alarm.reminders_sent += 1
        self._trace("timer", alarm.key, op="fired", name="reminder", expires=now)
        if alarm.reminders_sent < self.model.reminder_cap and self.model.reminder_interval_s:
            alarm.next_reminder = now + self.model.reminder_interval_s
        alarm.history += 1
        self._notice(alarm, "REMINDER", previous=alarm.state, cause="REMINDER")
        return 1

    def _schedule(self, alarm: _Alarm) -> None:
        due = alarm.due()
        if due is not None and due != alarm.scheduled:
            heapq.heappush(self._heap, (due, alarm.key))
        alarm.scheduled = due

    # ------------------------------------------------------------ state changes

    def _enter(
        self,
        alarm: _Alarm,
        target: str,
        *,
        cause: str,
        who: str = "",
        note: str = "",
        snooze_s: float | None = None,
        force: bool = False,
        at: float | None = None,
    ) -> None:
        """Move to *target* (operator actions may re-enter the same state, e.g. a RESET),
        at *at* (default: now)."""
        previous = alarm.state
        if target == previous and not force:
            return
        now = self._clock.now() if at is None else at
        alarm.state = target
        alarm.since = now
        alarm.entries += 1
        alarm.history += 1
        # the state's AlarmState tells what brought it: the operator's action, the snooze
        # running out (its system event), or the rule (neither), as the change's payload does
        if cause in OPERATIONS:
            alarm.system_event = alarm.action_past = None
        else:
            if cause == "rule":
                alarm.system_event = None
            if alarm.customer_action:
                alarm.action_past = True
        alarm.snooze_until = now + snooze_s if target == "SNOOZE_DISABLED" and snooze_s else None
        alarm.reminders_sent = 0
        alarm.next_reminder = None
        if (
            target == "ACTIVE"
            and self.model.acknowledge_flow
            and self.model.reminder_interval_s
            and self.model.reminder_cap > 0
        ):
            alarm.next_reminder = now + self.model.reminder_interval_s
        if self._observer is not None:
            self._trace(
                "transition",
                alarm.key,
                **{
                    "from": previous,
                    "to": target,
                    "event": cause.lower(),
                    "value": alarm.value,
                    "threshold": alarm.threshold,
                },
            )
        self._notice(
            alarm,
            target,
            previous=previous,
            cause=cause,
            who=who,
            note=note,
            snooze_s=snooze_s,
            at=now,
        )

    def _notice(
        self,
        alarm: _Alarm,
        kind: str,
        *,
        previous: str,
        cause: str,
        who: str = "",
        note: str = "",
        snooze_s: float | None = None,
        at: float | None = None,
    ) -> None:
        """Record what this change owes (its history entry, notifications and actions) in
        the instance document, claimed by this engine; handed over once the write is done.
        *at* is when the change happened (default: now)."""
        alarm.seq += 1
        now = self._clock.now()
        notice: dict[str, Any] = {
            "id": f"{self.model.name}|{alarm.key}|{alarm.seq}",
            "claim": now + CLAIM_S,
            "history": alarm.history,
            "kind": kind,
            "state": alarm.state,
            "previous": previous,
            "cause": cause,
            "time": now if at is None else at,
        }
        # the rest only when it has a value: readers take a missing one as None
        optional = {
            "value": alarm.value,
            "threshold": alarm.threshold,
            "reminder": alarm.reminders_sent if kind == "REMINDER" else None,
            "who": who or None,
            "note": note or None,
            "snooze_s": snooze_s,
            "customer_action": alarm.customer_action if cause in OPERATIONS else None,
            "system_event": alarm.system_event,
        }
        notice.update((k, v) for k, v in optional.items() if v is not None)
        alarm.pending.append(notice)
        self._claimed.append(notice["id"])

    def _claim_lapsed(self, alarm: _Alarm, now: float) -> bool:
        """Claim the notices whose maker's claim has lapsed (it died before handing them
        over); True if any, so the claim is written before they are handed over again."""
        claimed = False
        for notice in alarm.pending:
            if notice["id"] not in self._claimed and float(notice.get("claim", 0.0)) <= now:
                notice["claim"] = now + CLAIM_S
                self._claimed.append(notice["id"])
                claimed = True
        return claimed

    # ------------------------------------------------------------ writes

    def _commit(self, key: str, step: Step) -> _Alarm | None:
        """Run *step* on the instance of *key*, write it conditionally on the version it was
        read at (or mark it dirty when only its last value changed), then release the trace
        records and hand over the notices this evaluation made or claimed.

        On a lost race the instance is read again and *step* runs again on the fresh state;
        the lost attempt's notices and records are dropped. Raises what *step* raises
        (an operator action that does not fit), and VersionConflictError after
        ``MAX_ATTEMPTS`` lost races.
        """
        for _attempt in range(MAX_ATTEMPTS):
            self._claimed = []
            self._held = [] if self._observer is not None else None
            saved = False
            try:
                outcome = step(self._instance(key))
                if outcome is None:
                    return None
                alarm, write = outcome
                if (alarm.pending and self._claim_lapsed(alarm, self._clock.now())) or write:
                    # one commit for the state change and what its notices record (the
                    # history entry, the budget); the hand-over to the sink comes after
                    # it, so no send holds the database's write lock
                    with batched(self._store):
                        try:
                            self._save(alarm)
                        except VersionConflictError:
                            raise
                        except Exception:
                            self._forget(key)  # the cache must not keep what was not written
                            raise
                        saved = True
                        self._record(alarm, self._claimed)
                else:
                    self._dirty.add(key)
            except VersionConflictError:
                if saved:
                    raise  # the budget kept losing races: the state is written, not again
                log.info("%s/%s: another writer won; evaluating again", self.model.name, key)
                self._forget(key)
                continue
            finally:
                held, self._held = self._held, None
            if self._observer is not None:
                for record in held or ():
                    self._observer.observe(record)
            claimed, self._claimed = self._claimed, []
            if claimed:
                self._deliver(alarm, claimed)
            self._schedule(alarm)
            return alarm
        self._claimed = []
        raise VersionConflictError(self.namespace, key, None)

    def _instance(self, key: str) -> _Alarm | None:
        """The cached instance, or the stored one (then cached), or None."""
        alarm = self._cache.get(key)
        if alarm is None:
            stored = self._store.get_versioned(self.namespace, key)
            if stored is not None:
                alarm = self._checked(key, stored.value, stored.version)
                if alarm is not None:
                    self._remember(alarm)
        return alarm

    def _checked(self, key: str, doc: Any, version: int) -> _Alarm | None:
        """The stored instance, or None when its document fails the checks: copied with
        the reason to the quarantine namespace and logged; the key starts again from the
        initial state (as DetectorEngine does with its instances)."""

        def load() -> _Alarm:
            check_alarm_instance(self.model.name, key, doc, STATES)
            return _Alarm.from_doc(key, doc, version)

        return self._set_aside.admit(key, doc, version, load)

    def _remember(self, alarm: _Alarm) -> None:
        """Cache a stored instance, without the notices this engine already handed over."""
        handed = self._handed.get(alarm.key)
        if handed:
            kept = [n for n in alarm.pending if n["id"] not in handed]
            if len(kept) != len(alarm.pending):
                alarm.pending = kept
                self._dirty.add(alarm.key)
        self._cache[alarm.key] = alarm
        self._schedule(alarm)

    def _forget(self, key: str) -> None:
        """Drop a cached instance another writer changed; its last value goes with it."""
        self._cache.pop(key, None)
        self._dirty.discard(key)

    def _save(self, alarm: _Alarm) -> None:
        # A rule that reads one input gets all of it with every message: nothing to keep.
        doc = alarm.to_doc(inputs=len(self._reads) > 1)
        version = alarm.version
        if version is None:  # made in place of a quarantined document: replace that one
            version = self._set_aside.replaces(alarm.key)
        alarm.version = self._store.put_if_version(self.namespace, alarm.key, doc, version)
        self._dirty.discard(alarm.key)
        self._handed.pop(alarm.key, None)

    def close(self) -> None:
        """Write what is not written yet: last values, notices handed over since."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        with batched(self._store):
            self._flush_dirty()

    def _flush_dirty(self) -> None:
        """Write the dirty instances. One another writer changed meanwhile is read again and
        keeps its state; it loses the notices handed over here, and takes this engine's last
        value when that is the newer one."""
        for key in list(self._dirty):
            alarm = self._cache.get(key)
            for _attempt in range(MAX_ATTEMPTS):
                if alarm is None:
                    break
                try:
                    self._save(alarm)
                    break
                except VersionConflictError:
                    fresh = self._store.get_versioned(self.namespace, key)
                    if fresh is None:
                        self._forget(key)
                        break
                    mine = alarm
                    checked = self._checked(key, fresh.value, fresh.version)
                    if checked is None:
                        self._forget(key)
                        break
                    alarm = checked
                    if mine.updated > alarm.updated:
                        alarm.inputs, alarm.updated = mine.inputs, mine.updated
                        alarm.value, alarm.threshold = mine.value, mine.threshold
                    self._remember(alarm)
            else:
                log.warning(
                    "%s/%s: last value not written: kept losing races", self.model.name, key
                )
            self._dirty.discard(key)

    # ------------------------------------------------------------ delivery

    def deliver_pending(self) -> int:
        """Hand over notices whose maker died before handing them over (their claim has
        lapsed), after claiming them; the count."""
        with self._lock:
            now = self._clock.now()
            before = self.handed_over
            for key, alarm in list(self._cache.items()):
                if any(float(n.get("claim", 0.0)) <= now for n in alarm.pending):
                    self._commit(key, lambda a: None if a is None else (a, False))
            return self.handed_over - before

    def _record(self, alarm: _Alarm, ids: Sequence[str]) -> None:
        """Write what the notices *ids* record, once their state is written: each one's
        history entry and budget decision (kept in the notice)."""
        for notice in alarm.pending:
            if notice["id"] not in ids:
                continue
            self._record_history(alarm, notice)
            if notice.get("allowed") is None:
                allowed = True
                if (
                    self.model.acknowledge_flow
                    and self.model.notifications
                    and self._limiter is not None
                ):
                    allowed = self._limiter.allow(alarm.key or self.model.name, notice["time"])
                notice["allowed"] = allowed

    def _deliver(self, alarm: _Alarm, ids: Sequence[str]) -> None:
        """Hand over the notices *ids* of *alarm* (claimed by this engine and recorded):
        their requests; then drop them from the document."""
        for notice in [n for n in alarm.pending if n["id"] in ids]:
            for request in self._requests(alarm, notice):
                try:
                    self._actions.execute(request)
                except Exception as exc:  # as for detectors: logged, never rolls back state
                    log.warning(
                        "%s/%s: %s request %s failed: %s; state kept",
                        self.model.name,
                        alarm.key,
                        request.kind,
                        request.event_name,
                        exc,
                    )
                    self._trace(
                        "error",
                        alarm.key,
                        path=request.event_name,
                        expression=None,
                        message=str(exc),
                    )
                    continue
                if self._observer is not None:
                    self._trace(
                        "action",
                        alarm.key,
                        action=request.kind,
                        notice=notice["kind"],
                        target=dict(request.target),
                    )
            alarm.pending.remove(notice)
            self.handed_over += 1
            self._handed.setdefault(alarm.key, set()).add(notice["id"])
            self._dirty.add(alarm.key)

    def _record_history(self, alarm: _Alarm, notice: Mapping[str, Any]) -> None:
        """The notice's entry in ``alarm-history/<model>``: who, when, the note, from, to.

        Keyed by the instance's history counter: written again by a second hand-over,
        never twice."""
        cause = str(notice["cause"])
        entry = {
            "key": alarm.key,
            "time": notice["time"],
            "action": "STATE_CHANGE" if cause == "rule" else cause,
            "from": notice["previous"],
            "to": notice["state"],
            "who": notice.get("who") or "plantwatch",
            "note": notice.get("note") or "",
        }
        if notice.get("snooze_s") is not None:
            entry["snooze_s"] = notice["snooze_s"]
        number = int(notice.get("history") or alarm.history)
        self._store.put(self.history_namespace, f"{alarm.key}|{number:010d}", entry)

    def _requests(self, alarm: _Alarm, notice: Mapping[str, Any]) -> list[ActionRequest]:
        """What *notice* owes: alarm actions (not for reminders), then notifications."""
        out: list[ActionRequest] = []
        number = str(notice["id"]).rsplit("|", 1)[1]
        kind = notice["kind"]
        if kind != "REMINDER":
            for i, action in enumerate(self.model.actions):
                try:
                    target, payload, payload_type = evaluate_action(
                        action, _Context(alarm), lambda: self.action_payload(alarm, notice)
                    )
                except Exception as exc:
                    log.warning(
                        "%s/%s: %s: %s; not taken", self.model.name, alarm.key, action.path, exc
                    )
                    self._trace(
                        "error", alarm.key, path=action.path, expression=None, message=str(exc)
                    )
                    continue
                out.append(
                    self._request(
                        alarm,
                        notice,
                        action.kind,
                        target,
                        payload,
                        payload_type,
                        f"{kind}#{number}#a{i}",
                    )
                )
        if not self.model.acknowledge_flow:
            return out
        if not notice.get("allowed", True):
            # over the per-asset budget: counted by the limiter, shown by `alarms list`
            self._trace("action", alarm.key, action="notification", notice=kind, suppressed=True)
            return out
        payload = {**self.action_payload(alarm, notice), "notice": self._notice_text(notice)}
        # Each address gets each text once per notice: configurations that repeat one
        # (or a directory that gives every recipient one address, as the alerts topic on
        # AWS, whose subscribers would get every copy) add no second message.
        given: set[tuple[str, str, str | None, str | None]] = set()

        def fresh(
            channel: str, addresses: list[str], subject: str | None, extra: str | None
        ) -> list[str]:
            out = [a for a in addresses if (channel, a, subject, extra) not in given]
            given.update((channel, a, subject, extra) for a in out)
            return out

        for n, action in enumerate(self.model.notifications):
            for j, email in enumerate(action.emails):
                to = fresh(
                    "email",
                    self._addresses(email.to, "email"),
                    email.subject,
                    email.additional_message,
                )
                if to:
                    target = {
                        "functionArn": action.function_arn,
                        "channel": "email",
                        "to": to,
                        "subject": email.subject,
                        "additionalMessage": email.additional_message,
                    }
                    out.append(
                        self._request(
                            alarm,
                            notice,
                            "sns",
                            target,
                            payload,
                            "DEFAULT",
                            f"{kind}#{number}#n{n}e{j}",
                        )
                    )
            for j, sms in enumerate(action.sms):
                to = fresh(
                    "sms", self._addresses(sms.recipients, "sms"), None, sms.additional_message
                )
                if to:
                    target = {
                        "functionArn": action.function_arn,
                        "channel": "sms",
                        "to": to,
                        "senderId": sms.sender_id,
                        "additionalMessage": sms.additional_message,
                    }
                    out.append(
                        self._request(
                            alarm,
                            notice,
                            "sns",
                            target,
                            payload,
                            "DEFAULT",
                            f"{kind}#{number}#n{n}s{j}",
                        )
                    )
        return out

    def _request(
        self,
        alarm: _Alarm,
        notice: Mapping[str, Any],
        kind: str,
        target: Mapping[str, Any],
        payload: Any,
        payload_type: str,
        name: str,
    ) -> ActionRequest:
        return ActionRequest(
            kind=kind,
            target=dict(target),
            payload=payload,
            payload_type=payload_type,
            detector_model=self.model.name,
            key_value=None if self.model.key is None else alarm.key,
            event_name=name,
            state_name=notice["state"],
            state_entry=0,  # the name carries the notice's number: one id per request
            event_time_ms=round(notice["time"] * 1000),
        )

    def _addresses(self, recipients: Sequence[Recipient], channel: str) -> list[str]:
        out: list[str] = []
        for recipient in recipients:
            found = (
                self._directory.email(recipient)
                if channel == "email"
                else self._directory.phone(recipient)
            )
            if found and found not in out:
                out.append(found)
        return out

    def _notice_text(self, notice: Mapping[str, Any]) -> dict[str, Any]:
        """What a notification's texts say beyond AWS's payload (plantwatch's own fields)."""
        return {
            "kind": notice["kind"],
            "previous": notice.get("previous"),
            "cause": notice.get("cause", ""),
            "property": _property_name(self.model.rule.input_property),
            "reminder": notice.get("reminder"),
            "reminderCap": self.model.reminder_cap,
            "who": notice.get("who"),
            "note": notice.get("note"),
            "snooze_s": notice.get("snooze_s"),
        }

    def alarm_notice(self, alarm: _Alarm, notice: Mapping[str, Any]) -> alerts.AlarmNotice:
        """The text-level view of a pending notification."""
        return alerts.alarm_notice_from_payload(
            {**self.action_payload(alarm, notice), "notice": self._notice_text(notice)}
        )

    # ------------------------------------------------------------ AWS shapes

    def notification_event(
        self, alarm_key: str | None, notice: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The notification Lambda's event (§7): ``notificationEventPayload`` is a JSON string."""
        body = self._event_body(alarm_key, notice)
        body["alarmState"] = {
            "stateName": notice["state"],
            "ruleEvaluation": {
                "simpleRule": {
                    "inputProperty": _as_decimal(notice.get("value")),
                    "operator": self.model.rule.operator,
                    "threshold": _as_decimal(notice.get("threshold")),
                }
            },
        }
        # A member the model leaves out is left out, not null: AWS's managed notification
        # Lambda reads them with defaults (email.get('subject', ...)) and appends the
        # additional message to its text, which a None would break.
        emails: list[dict[str, Any]] = []
        sms: list[dict[str, Any]] = []
        for action in self.model.notifications:
            for email in action.emails:
                entry: dict[str, Any] = {
                    "from": email.sender,
                    "to": self._addresses(email.to, "email"),
                    "cc": [],
                    "bcc": [],
                }
                optional = {"subject": email.subject, "additionalMessage": email.additional_message}
                entry.update((k, v) for k, v in optional.items() if v is not None)
                emails.append(entry)
            for config in action.sms:
                entry = {"phoneNumbers": self._addresses(config.recipients, "sms")}
                optional = {
                    "senderId": config.sender_id,
                    "additionalMessage": config.additional_message,
                }
                entry.update((k, v) for k, v in optional.items() if v is not None)
                sms.append(entry)
        return {
            "notificationEventPayload": json.dumps(body, separators=(",", ":")),
            "emailConfigurations": emails,
            "smsConfigurations": sms,
        }

    def _event_body(self, alarm_key: str | None, notice: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"alarmModelName": self.model.name}
        if self.model.key is not None:
            body["keyValue"] = NO_KEY if alarm_key is None else alarm_key
        if self.model.severity is not None:  # optional: left out, never null (as AWS)
            body["severity"] = self.model.severity
        body["stateUpdateTime"] = round(notice["time"] * 1000)
        return body

    def action_payload(self, alarm: _Alarm, notice: Mapping[str, Any]) -> dict[str, Any]:
        """Default payload of an alarm action: the notification object, version, full state."""
        body = self._event_body(alarm.key, notice)
        body["alarmModelVersion"] = self.version
        body["alarmState"] = self._alarm_state(
            notice["state"],
            notice.get("value"),
            notice.get("threshold"),
            notice.get("customer_action"),
            notice.get("system_event"),
        )
        return body

    def _alarm_state(
        self,
        state: str,
        value: Any,
        threshold: Any,
        customer_action: Mapping[str, Any] | None,
        system_event: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        alarm_state: dict[str, Any] = {"stateName": state}
        if value is not None:
            alarm_state["ruleEvaluation"] = {
                "simpleRuleEvaluation": {
                    "inputPropertyValue": ex.format_value(value),
                    "operator": self.model.rule.operator,
                    "thresholdValue": ex.format_value(threshold),
                }
            }
        if customer_action:
            alarm_state["customerAction"] = {
                k: v for k, v in customer_action.items() if k not in ("who", "time")
            }
        if system_event:
            alarm_state["systemEvent"] = dict(system_event)
        return alarm_state

    def describe(self, key: str | None = None) -> dict[str, Any]:
        """DescribeAlarm's response shape. A key outside the API's keyValue pattern raises
        UserError (InvalidRequestException); NotFoundError says why no alarm answers: none
        for that key yet, or a key the model cannot take (AWS does not say which error
        that is, so it stays "not found", with the reason)."""
        self._check_key_shape(key)
        with self._lock:
            alarm = self._instance(NO_KEY if key is None else key)
        if alarm is None:
            raise NotFoundError(self._no_instance(key))
        doc = as_of(alarm.to_doc(inputs=False), self._clock.now())
        return describe_document(self.model, self.version, alarm.key, doc)

    def list_alarms(
        self, max_results: int | None = None, next_token: str | None = None
    ) -> dict[str, Any]:
        """ListAlarms (``GET /alarms/{alarmModelName}``): each instance's summary, by key
        value, as DescribeAlarm reports it (a snooze that has run out: NORMAL), for every
        stored instance, not only the loaded ones.

        *max_results* (1-250) pages them and the page's ``nextToken`` (absent on the last
        page) asks for the next; without it every instance comes in one page (AWS documents
        no default page size). A bad *max_results* or a token this listing did not give
        raises UserError (AWS: InvalidRequestException).
        """
        if max_results is not None and (
            not isinstance(max_results, int)
            or isinstance(max_results, bool)
            or not 1 <= max_results <= LIST_MAX
        ):
            raise UserError(
                f"ListAlarms: maxResults: expected a whole number 1 to {LIST_MAX},"
                f" got {max_results!r}"
            )
        after = None if next_token is None else _after_token(next_token)
        with self._lock:
            for key, stored in self._store.items_versioned(self.namespace):
                if key not in self._cache and (after is None or key > after):
                    alarm = self._checked(key, stored.value, stored.version)
                    if alarm is not None:
                        self._remember(alarm)
            keys = sorted(k for k in self._cache if after is None or k > after)
            page = keys if max_results is None else keys[:max_results]
            now = self._clock.now()
            summaries = [self._summary(self._cache[key], now) for key in page]
        listed: dict[str, Any] = {"alarmSummaries": summaries}
        if len(page) < len(keys):
            listed["nextToken"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
        return listed

    def _summary(self, alarm: _Alarm, now: float) -> dict[str, Any]:
        """An AlarmSummary: DescribeAlarm's fields of it, so the two never disagree."""
        doc = as_of(alarm.to_doc(inputs=False), now)
        described = describe_document(self.model, self.version, alarm.key, doc)["alarm"]
        summary = {
            name: described[name]
            for name in ("alarmModelName", "alarmModelVersion", "keyValue")
            if name in described  # no keyValue for a model without key, as DescribeAlarm
        }
        summary["stateName"] = described["alarmState"]["stateName"]
        summary["creationTime"] = described["creationTime"]
        summary["lastUpdateTime"] = described["lastUpdateTime"]
        return summary

    def key_values(self) -> list[str]:
        """Key values of the loaded instances, sorted (the keyless instance is "")."""
        return sorted(self._cache)

    def state_of(self, key: str | None = None) -> str:
        """The instance's state as it stands now (a snooze that has run out: NORMAL); keys
        are checked as :meth:`describe` checks them."""
        self._check_key_shape(key)
        alarm = self._instance(NO_KEY if key is None else key)
        if alarm is None:
            raise NotFoundError(self._no_instance(key))
        stored = {"state": alarm.state, "snooze_until": alarm.snooze_until}
        return str(as_of(stored, self._clock.now())["state"])

    # ------------------------------------------------------------ plumbing

    def _trace(self, kind: str, key: str | None, **detail: Any) -> None:
        if self._observer is None:
            return
        shown = None if key is None or self.model.key is None else key
        record = TraceRecord(kind, self._clock.now(), shown, detail)
        if self._held is not None:
            self._held.append(record)  # released when the evaluation's state is written
        else:
            self._observer.observe(record)


def _as_decimal(value: Any) -> Any:
    """A number of the rule evaluation as AWS writes it in the notification event: a decimal
    (``85.0``, ``"threshold":80.0``), the rule being evaluated on decimals (§7)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**53:
        return float(value)  # exactly; a larger integer stays as it came
    return value


def _after_token(token: str) -> str:
    """The key value a ListAlarms ``nextToken`` continues after; UserError for a token no
    listing gave."""
    try:
        key = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeError is a ValueError
        key = ""
    if not (key and len(key) <= 128 and KEY_VALUE_RE.fullmatch(key)):
        raise UserError(f"ListAlarms: nextToken: {clipped(token)} is not a token a listing gave")
    return key


def as_of(doc: Mapping[str, Any], now: float) -> Mapping[str, Any]:
    """A stored instance as it stands at *now*, for reads: a snooze that has run out has
    ended when it ran out ("After the snooze time, the alarm automatically changes to the
    NORMAL state", AlarmState), with the SNOOZE_TIMEOUT system event, even before the timer
    has written that. It is what the timer then writes; a read writes nothing."""
    until = doc.get("snooze_until")
    if (
        doc.get("state") != "SNOOZE_DISABLED"
        or not isinstance(until, int | float)
        or isinstance(until, bool)
        or not until <= now  # NaN too: not a time that has come
    ):
        return doc
    ended = {k: v for k, v in doc.items() if k != "snooze_until"}
    ended.update(state="NORMAL", since=until, updated=until, system_event=dict(SNOOZE_TIMEOUT))
    if ended.get("customer_action"):
        ended["action_past"] = True
    return ended


def describe_document(
    model: AlarmModel, version: str, key: str, doc: Mapping[str, Any]
) -> dict[str, Any]:
    """A stored instance as DescribeAlarm returns it (times in epoch seconds)."""
    alarm: dict[str, Any] = {"alarmModelName": model.name, "alarmModelVersion": version}
    if model.key is not None:
        alarm["keyValue"] = key
    state: dict[str, Any] = {"stateName": doc["state"]}
    if doc.get("value") is not None:
        state["ruleEvaluation"] = {
            "simpleRuleEvaluation": {
                "inputPropertyValue": ex.format_value(doc["value"]),
                "operator": model.rule.operator,
                "thresholdValue": ex.format_value(doc.get("threshold")),
            }
        }
    action = doc.get("customer_action")
    if action and not doc.get("action_past"):
        state["customerAction"] = {k: v for k, v in action.items() if k not in ("who", "time")}
    if doc.get("system_event"):
        state["systemEvent"] = dict(doc["system_event"])
    if model.severity is not None:  # "Required: No" (Alarm): left out, never null
        alarm["severity"] = model.severity
    alarm.update(
        {
            "creationTime": float(doc.get("created", 0.0)),
            "lastUpdateTime": float(doc.get("updated", 0.0)),
            "alarmState": state,
        }
    )
    return {"alarm": alarm}


def _property_name(node: ex.Expr) -> str:
    """``$input.AnomalyResults.anomaly_score`` -> ``anomaly_score``, for alert texts."""
    if isinstance(node, ex.InputRef):
        last = [p for p in node.path if isinstance(p, str)]
        return last[-1] if last else node.input_name
    return "value"


def _comparable(value: Any) -> bool:
    return value is not ex.UNDEFINED and value is not None and not isinstance(value, (dict, list))


def _reader(node: ex.Expr) -> Callable[[_Alarm, str | None], tuple[Any, str | None]]:
    """How one side of the rule is read: a literal or an input attribute directly (what
    ``expr`` does for them), anything else through the expression evaluator."""
    if isinstance(node, ex.Literal):
        constant = node.value
        return lambda alarm, input_name: (constant, None)
    if isinstance(node, ex.InputRef):
        name, path = node.input_name, node.path

        def attribute(alarm: _Alarm, input_name: str | None) -> tuple[Any, str | None]:
            inputs = alarm.inputs
            return (ex.lookup_path(inputs[name], path) if name in inputs else ex.UNDEFINED), None

        return attribute
    return lambda alarm, input_name: ex.evaluate_reporting(node, _Context(alarm, input_name))


def compare(op: str) -> Callable[[Any, Any], bool]:
    """``a <op> b`` is ``true`` in the expression language (:mod:`cloud.detectors.expr`),
    for the six operators an alarm rule uses, without building an expression per message:
    ordering holds between two numbers or two strings only; equality needs equal types
    (numbers compare across int and float). The property tests hold it to ``expr``."""

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def equal(a: Any, b: Any) -> bool:
        if number(a) and number(b):
            return bool(a == b)
        return type(a) is type(b) and bool(a == b)

    def ordered(a: Any, b: Any) -> bool:
        return (number(a) and number(b)) or (isinstance(a, str) and isinstance(b, str))

    if op == "==":
        return equal
    if op == "!=":
        return lambda a, b: not equal(a, b)
    if op == ">":
        return lambda a, b: ordered(a, b) and a > b
    if op == ">=":
        return lambda a, b: ordered(a, b) and a >= b
    if op == "<":
        return lambda a, b: ordered(a, b) and a < b
    if op == "<=":
        return lambda a, b: ordered(a, b) and a <= b
    raise ValueError(f"not an alarm rule operator: {op!r}")


def _shown(value: Any) -> str:
    return "undefined" if value is ex.UNDEFINED else ex.format_value(value)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
