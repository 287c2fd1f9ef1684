"""The detector engine: one instance per key value, evaluated as AWS IoT Events does (§2, §5).

Instances (state, variables, timers, last input per input name) live in a StateStore under
``detectors/<model>``, written after every evaluation, so instances and timers survive a
restart. Time comes only from the injected Clock. Service actions go to an ActionSink; a
failing action is logged and never rolls back state. An optional observer
(:mod:`cloud.detectors.trace`) is told every step: messages, transitions, actions with their
evaluated payloads, timers and evaluation errors.

Several engines may share one store (two Lambdas, or a CLI beside the local stack). Each
save is conditional on the version the instance was read at; a lost race re-reads the
instance and evaluates the message or timer again on the fresh state. The actions and trace
records of an evaluation are released only after its state is saved, so a lost attempt has
no effect and a timer that two engines find due fires once.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import math
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cloud.detectors import expr as ex
from cloud.detectors.instances import (
    QUARANTINE_NAMESPACE,
    SetAside,
    check_instance,
    key_misfit,
    key_refusal,
    key_value_problem,
)
from cloud.detectors.model import (
    KEY_VALUE_RE,
    MAX_TIMER_S,
    MIN_TIMER_S,
    PLAIN_FIELD_RE,
    Action,
    DetectorModel,
    Event,
    InputDefinition,
    check_references,
    declared_tree,
    declared_view,
    timer_bounds,
    timer_range_problem,
    used_inputs,
)
from cloud.detectors.trace import EngineObserver, TraceRecord
from cloud.detectors.typed_fields import FieldValueError, typed_value
from cloud.ports import StateStore
from edge.clock import Clock
from edge.errors import DetectorModelError, NotFoundError, UserError, VersionConflictError
from edge.logs import OncePerReason

log = logging.getLogger(__name__)

REGISTRY_NAMESPACE = "detectors"
"""One document per detector model an engine has run, so tools can list instances."""

NO_KEY = ""
"""Store key of the single instance of a model without ``key``."""

MAX_ATTEMPTS = 8
"""Evaluations of one message or timer before a run of lost races is given up (raised)."""

MAX_VARIABLE_CHARS = 1024
"""A variable's value: at most 1,024 characters (iotevents-data API, Variable.value and
VariableDefinition.value). A setVariable giving more leaves the variable as it was: a model
doubling a string on every message would otherwise grow it until memory runs out."""

MAX_CHAINED_MESSAGES = 1000
"""Messages the actions of one message or timer expiry may put back (``iotEvents``), in all.
On AWS a model that feeds its own input loops asynchronously under throughput quotas; here it
would hold the engine forever, so past this bound the action is refused and logged."""


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One service action to run, with its evaluated fields and payload."""

    kind: str
    """``sns``, ``iotTopicPublish``, ``lambda``, ``iotEvents``, ``sqs``, ``firehose``,
    ``dynamoDB``, ``dynamoDBv2`` or ``iotSiteWise``."""
    target: Mapping[str, Any]
    """The action's fields with expression fields evaluated (``mqttTopic`` is the topic)."""
    payload: Any
    """The default payload (a dict), or the custom one: a parsed JSON value or a string."""
    payload_type: str
    """``DEFAULT``, ``JSON`` or ``STRING``."""
    detector_model: str
    key_value: str | None
    event_name: str
    state_name: str
    state_entry: int
    """How many times this instance has entered a state: with the names, an alert's identity."""
    event_time_ms: int
    detector_version: str = ""
    """The model version that ran the action: part of an alert's identity, since an
    UpdateDetectorModel deletes the instances and their entry counts start over."""


class ActionSink(Protocol):
    """Where service actions go: alerts and MQTT locally, AWS services in the cloud."""

    def execute(self, request: ActionRequest) -> None: ...


@dataclass(slots=True)
class _Instance:
    key: str
    state: str
    variables: dict[str, Any]
    timers: dict[str, dict[str, float]]
    """name -> {"expiry": epoch s, "duration": s}."""
    expired: list[str]
    """Timers that expired and whose ``timeout()`` has not yet been checked."""
    inputs: dict[str, Any]
    created: float
    updated: float
    entries: int = 0
    durations: dict[str, float] = field(default_factory=dict)
    """Last evaluated duration per timer, which ``resetTimer`` reuses."""
    version: int | None = None
    """Store version this instance was read or last saved at; None: never stored."""

    def to_doc(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "variables": self.variables,
            "timers": self.timers,
            "expired": self.expired,
            "inputs": self.inputs,
            "created": self.created,
            "updated": self.updated,
            "entries": self.entries,
            "durations": self.durations,
        }

    @classmethod
    def from_doc(cls, key: str, doc: Mapping[str, Any], version: int | None = None) -> _Instance:
        return cls(
            key=key,
            state=doc["state"],
            variables=dict(doc.get("variables", {})),
            timers={k: dict(v) for k, v in doc.get("timers", {}).items()},
            expired=list(doc.get("expired", [])),
            inputs=dict(doc.get("inputs", {})),
            created=float(doc.get("created", 0.0)),
            updated=float(doc.get("updated", 0.0)),
            entries=int(doc.get("entries", 0)),
            durations=dict(doc.get("durations", {})),
            version=version,
        )


@dataclass(slots=True)
class _Trigger:
    kind: str
    """``Message`` or ``Timer``."""
    input_name: str | None = None
    message_id: str | None = None
    timer_name: str | None = None
    timeouts: set[str] = field(default_factory=set)
    """Timers whose ``timeout()`` answered true in this evaluation: true until it ends."""
    spent: bool = False
    """A timer's expiry only: an action re-armed or cleared that timer during it."""

    def details(self) -> dict[str, Any]:
        if self.kind == "Timer":
            return {"triggerType": "Timer", "timerName": self.timer_name}
        return {
            "inputName": self.input_name,
            "messageId": self.message_id,
            "triggerType": "Message",
        }


@dataclass(slots=True)
class _Context:
    """EvalContext over one instance; ``variables`` may be a snapshot (BATCH)."""

    instance: _Instance
    trigger: _Trigger
    variables: Mapping[str, Any]

    def input_value(self, input_name: str, path: tuple[str | int, ...]) -> Any:
        if input_name not in self.instance.inputs:
            return ex.UNDEFINED
        return ex.lookup_path(self.instance.inputs[input_name], path)

    def variable(self, name: str) -> Any:
        return self.variables.get(name, ex.UNDEFINED)

    def timeout(self, timer_name: str) -> bool:
        """AWS: true "only the first time it's checked following the actual timer expiration".
        The first check is the evaluation's: every condition of the evaluation that first
        checks an expiry sees true (an event and a transition may both test it, in BATCH and
        SERIAL alike, as AWS's detection sample does); later evaluations see false."""
        if timer_name in self.trigger.timeouts:
            return True
        if timer_name in self.instance.expired:
            self.instance.expired.remove(timer_name)
            self.trigger.timeouts.add(timer_name)
            return True
        return False

    def trigger_type(self) -> str:
        return self.trigger.kind

    def current_input(self) -> str | None:
        return self.trigger.input_name if self.trigger.kind == "Message" else None


def redefine(
    store: StateStore,
    registry: str,
    instances: str,
    name: str,
    fingerprint: str,
    version: str,
    what: str,
) -> tuple[dict[str, Any] | None, str]:
    """The model's stored registry document and the version it runs as now.

    A definition whose fingerprint differs from the stored one is an update (Update-
    DetectorModel / UpdateAlarmModel): every instance in *instances* is deleted and the
    version raised, so stored state never meets a definition it was not made for. Shared by
    detector and alarm engines, which keep their own registry namespace and document."""
    previous = store.get(registry, name)
    if previous is None:
        return None, version
    if not isinstance(previous, Mapping):
        # nothing says what definition the instances were made for: start them over
        stale = [key for key, _ in store.items(instances)]
        for key in stale:
            store.delete(instances, key)
        log.warning(
            "%s: registry document %s/%s is not an object; version %s, %d %s deleted",
            name,
            registry,
            name,
            version,
            len(stale),
            what,
        )
        return None, version
    version = str(previous.get("version", version))
    if previous.get("fingerprint") not in (None, fingerprint):
        stale = [key for key, _ in store.items(instances)]
        for key in stale:
            store.delete(instances, key)
        # ASCII digits only, and few: int() refuses '²' and strings past 4,300 digits
        counted = version.isascii() and version.isdigit() and len(version) <= 18
        version = str(int(version) + 1) if counted else "1"
        log.warning(
            "%s: definition changed; version %s, %d %s deleted", name, version, len(stale), what
        )
    return previous, version


class DetectorEngine:
    """Runs one detector model over messages and timers.

    ``put_message`` routes a message to the instance its key picks (creating it), and
    ``tick`` evaluates every due timer once, in expiry order. Re-entrant calls (an
    ``iotEvents`` action feeding this engine) are queued and run after the current one.

    ``preload=False`` reads an instance from the store when a message first needs it
    instead of reading them all up front: a Lambda handling one asset's results reads one
    item, not the fleet. ``tick`` sees only loaded instances, so a timer runner preloads.
    """

    def __init__(
        self,
        model: DetectorModel,
        inputs: Sequence[InputDefinition],
        state: StateStore,
        clock: Clock,
        actions: ActionSink,
        *,
        observer: EngineObserver | None = None,
        new_id: Callable[[], str] | None = None,
        preload: bool = True,
    ) -> None:
        """``observer`` is told every step (see :mod:`cloud.detectors.trace`); ``new_id``
        makes the default payload's ``actionExecutionId`` (a UUID4 unless given, so a replay
        can be made reproducible)."""
        self.model = model
        self.inputs = {i.name: i for i in inputs}
        self._declared = {i.name: declared_tree(i.attributes) for i in inputs}
        self.warnings = check_references(model, list(inputs))
        for warning in self.warnings:
            log.warning("%s", warning)
        self._used_inputs = used_inputs(model)
        self._store = state
        self._clock = clock
        self._actions = actions
        self._observer = observer
        self._new_id = new_id or (lambda: str(uuid.uuid4()))
        self.namespace = f"detectors/{model.name}"
        self._cache: dict[str, _Instance] = {}
        self._set_aside = SetAside(state, f"{QUARANTINE_NAMESPACE}/{model.name}")
        self._heap: list[tuple[float, str, str]] = []
        self._queue: deque[tuple[str, dict[str, Any], str | None]] = deque()
        self._bad_keys_warned = OncePerReason()
        self._busy = False
        self._chained = 0
        """Messages put back while busy since the outside message or timer expiry."""
        self._lock = threading.RLock()
        self._pending: list[tuple[ActionRequest, str, str]] = []
        """Actions of the evaluation in progress, with their path and event name."""
        self._held: list[TraceRecord] | None = None
        """Trace records of the evaluation in progress (None: none in progress)."""
        self.version = self._register()
        self._heap_limit = 1024
        if preload:
            for key, stored in self._store.items_versioned(self.namespace):
                instance = self._checked(key, stored.value, stored.version)
                if instance is not None:
                    self._remember(instance)
        bind = getattr(actions, "bind", None)
        if callable(bind):
            bind(self)

    def _register(self) -> str:
        """Record the model; a changed definition is an UpdateDetectorModel (§6).

        As on AWS, updating a model deletes its instances (new inputs recreate them) and
        raises the version, so stored state never meets states it was not made for.
        """
        fingerprint = model_fingerprint(self.model)
        previous, version = redefine(
            self._store,
            REGISTRY_NAMESPACE,
            self.namespace,
            self.model.name,
            fingerprint,
            self.model.version,
            "instance(s)",
        )
        document = {
            "version": version,
            "fingerprint": fingerprint,
            "key": self.model.key,
            "evaluationMethod": self.model.evaluation_method,
            "initialStateName": self.model.initial_state,
            "states": list(self.model.states),
            "inputs": sorted(self.inputs),
        }
        if document != previous:  # an engine built per Lambda invocation writes nothing
            self._store.put(REGISTRY_NAMESPACE, self.model.name, document)
        return version

    # ------------------------------------------------------------ public API

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None:
        """BatchPutMessage for one message: route it to its instance and evaluate."""
        if input_name not in self.inputs:
            raise unknown_input(input_name, self.inputs)
        with self._lock:
            if self._busy:
                self._chained += 1
                if self._chained > MAX_CHAINED_MESSAGES:
                    raise too_many_put_back(self.model.name, input_name)
            self._queue.append((input_name, dict(payload), message_id))
            if self._busy:
                return
            self._busy = True
            self._chained = 0
            try:
                self._drain()
            finally:
                self._busy = False

    def _drain(self) -> None:
        while self._queue:
            name, body, mid = self._queue.popleft()
            self._handle_message(name, body, mid)

    def tick(self) -> int:
        """Evaluate every timer due at ``clock.now()`` once, in expiry order; return the count.

        A timer whose instance cannot be saved (a store that refuses the write: throttled,
        or an item grown past its size limit) stays due, in the store and for the next
        tick, and is named in the log; the other due timers still run, and the first such
        failure is raised after them, so one instance never holds up a whole fleet's."""
        with self._lock:
            if self._busy:
                return 0
            now = self._clock.now()
            processed = 0
            failed: list[tuple[float, str, str]] = []
            failures: list[Exception] = []
            while self._heap and self._heap[0][0] <= now:
                expiry, key, name = heapq.heappop(self._heap)
                fire = self._fire(name, expiry)
                self._busy = True
                self._chained = 0
                try:
                    if self._commit(key, fire):
                        processed += 1
                    self._drain()
                except Exception as exc:
                    log.error("%s/%s: timer %r not fired: %s", self.model.name, key, name, exc)
                    failed.append((expiry, key, name))
                    failures.append(exc)
                finally:
                    self._busy = False
            for entry in failed:
                heapq.heappush(self._heap, entry)
            if failures:
                raise failures[0]
            return processed

    def _fire(self, name: str, expiry: float) -> Callable[[_Instance | None], _Instance | None]:
        """The step evaluating the expiry of timer *name* due at *expiry* (§5): None when
        the timer was reset, cleared or fired by another engine since."""

        def fire(instance: _Instance | None) -> _Instance | None:
            timer = instance.timers.get(name) if instance else None
            if instance is None or timer is None or timer["expiry"] != expiry:
                return None  # reset, cleared, or fired by another engine
            del instance.timers[name]
            if name not in instance.expired:
                instance.expired.append(name)
            if self._observer is not None:
                self._trace("timer", instance.key, op="fired", name=name, expires=expiry)
            trigger = _Trigger("Timer", timer_name=name)
            self._evaluate_input(instance, trigger)
            if trigger.spent and name in instance.expired:
                # re-armed or cleared during its own expiry and never checked: this
                # expiry is spent; the next timeout() answers for the new timer
                instance.expired.remove(name)
            return instance

        return fire

    def _fire_overdue(self, key: str) -> None:
        """Evaluate the timers of *key*'s instance that expired before now, in expiry order,
        so a message never overtakes an expiry it came after (a runtime ticks at its own
        pace: the timers Lambda once a minute). Each is then no longer due for ``tick``."""
        now = self._clock.now()
        while True:
            instance = self._instance(key)
            due = sorted(
                (t["expiry"], name)
                for name, t in (instance.timers.items() if instance else ())
                if t["expiry"] <= now
            )
            if not due:
                return
            expiry, name = due[0]
            self._commit(key, self._fire(name, expiry))

    def next_timer(self) -> float | None:
        """Expiry (epoch s) of the earliest pending timer, for runtimes that sleep until it."""
        while self._heap:
            expiry, key, name = self._heap[0]
            instance = self._cache.get(key)
            timer = instance.timers.get(name) if instance else None
            if timer is not None and timer["expiry"] == expiry:
                return expiry
            heapq.heappop(self._heap)
        return None

    def key_values(self) -> list[str]:
        """Key values of the instances, sorted (the keyless instance is "")."""
        return sorted(self._cache)

    def describe(self, key: str | None = None) -> dict[str, Any]:
        """DescribeDetector's response shape (§6).

        A key outside the API's keyValue pattern raises UserError (InvalidRequestException,
        as the batch requests refuse it); NotFoundError says why no detector answers: none
        for that key yet, or a key the model cannot take (given to a model without key,
        left out for one with a key: AWS does not say which error that is, so it stays
        "not found", with the reason). "" is no keyValue (1-128 characters), even for the
        keyless instance stored under it: that one answers a request without keyValue."""
        if key is not None:
            problem = key_value_problem("detector", self.model.name, key)
            if problem is not None:
                raise UserError(problem)
        with self._lock:
            instance = self._instance(NO_KEY if key is None else key)
        if instance is None:
            raise NotFoundError(self._no_instance(key))
        return describe_document(self.model.name, self.version, instance.key, instance.to_doc())

    def _no_instance(self, key: str | None) -> str:
        misfit = key_misfit("detector", self.model.name, self.model.key, key)
        if misfit is not None:
            return misfit
        if self.model.key is None:
            return (
                f"detector model {self.model.name!r} has no detector yet (no message has arrived)"
            )
        return f"detector {self.model.name!r} has no instance for key {key!r}"

    def list_detectors(self, state_name: str | None = None) -> dict[str, Any]:
        """ListDetectors' response shape: a summary per instance, sorted by key value, only
        those in *state_name* when given. Stored instances count too, so an engine started
        without preloading lists what an earlier process left."""
        with self._lock:
            keys = set(self._cache)
            keys.update(key for key, _ in self._store.items_versioned(self.namespace))
            found = (self._instance(key) for key in sorted(keys))
            instances = [i for i in found if i is not None]
        summaries: list[dict[str, Any]] = []
        for instance in instances:
            if state_name is not None and instance.state != state_name:
                continue
            summary: dict[str, Any] = {"detectorModelName": self.model.name}
            if instance.key != NO_KEY:
                summary["keyValue"] = instance.key
            summary.update(
                {
                    "detectorModelVersion": self.version,
                    "state": {"stateName": instance.state},
                    "creationTime": float(instance.created),
                    "lastUpdateTime": float(instance.updated),
                }
            )
            summaries.append(summary)
        return {"detectorSummaries": summaries}

    def update_detector(self, key: str | None, state: Mapping[str, Any]) -> None:
        """BatchUpdateDetector (§6) for one instance: set state, variables and timers.

        ``state`` is ``{stateName, variables: [{name, value}], timers: [{name, seconds}]}``;
        anything left out is cleared, the last message of each input included (``$input``
        reads undefined until the next one), and no events run. Values are read as
        DescribeDetector prints them (``15.0``, ``true``, ``"text"`` as JSON writes a string):
        :func:`decode_variable_value`.
        """
        path = f"BatchUpdateDetector {self.model.name}/{key or ''}"
        refusal = key_refusal("detector", self.model.name, self.model.key, key)
        if refusal is not None:  # "" too: it is no keyValue, even of the keyless detector
            raise DetectorModelError(f"{path}: {refusal}")
        if not isinstance(state, Mapping):
            raise DetectorModelError(f"{path}: expected {{stateName, variables, timers}}")
        name = state.get("stateName")
        if not isinstance(name, str) or name not in self.model.states:
            raise DetectorModelError(
                f"{path}: stateName: unknown state {name!r}"
                f" (expected: {', '.join(self.model.states)})"
            )
        for field_name in ("variables", "timers"):
            if not isinstance(state.get(field_name) or [], list):
                raise DetectorModelError(f"{path}: {field_name}: expected an array")
        variables: dict[str, Any] = {}
        for i, item in enumerate(state.get("variables") or []):
            text = item.get("value") if isinstance(item, Mapping) else None
            var = item.get("name") if isinstance(item, Mapping) else None
            if not isinstance(var, str) or not isinstance(text, str):
                raise DetectorModelError(
                    f"{path}: variables[{i}]: expected {{name, value}}, both strings"
                )
            if not PLAIN_FIELD_RE.fullmatch(var) or len(var) > 128:
                # VariableDefinition.name, as a setVariable's variableName
                raise DetectorModelError(
                    f"{path}: variables[{i}].name: {var[:130]!r} is not a variable name"
                    " (^[a-zA-Z][a-zA-Z0-9_]*$, at most 128 characters)"
                )
            try:
                variables[var] = decode_variable_value(text)
            except ValueError as exc:
                raise DetectorModelError(f"{path}: variables[{i}].value: {exc}") from None
            length = value_chars(variables[var])
            if length > MAX_VARIABLE_CHARS:
                raise DetectorModelError(
                    f"{path}: variables[{i}].value: {length} characters;"
                    f" a variable holds at most {MAX_VARIABLE_CHARS}"
                )
        timers: dict[str, float] = {}
        low, high = timer_bounds(self.model.strict)  # what the model's own setTimer may set
        for i, item in enumerate(state.get("timers") or []):
            seconds = item.get("seconds") if isinstance(item, Mapping) else None
            timer = item.get("name") if isinstance(item, Mapping) else None
            if (
                not isinstance(timer, str)
                or not 1 <= len(timer) <= 128
                or not isinstance(seconds, int)
                or isinstance(seconds, bool)
                or not low <= seconds <= high
            ):
                raise DetectorModelError(
                    f"{path}: timers[{i}]: expected {{name, seconds {low}-{high}}}"
                )
            timers[timer] = seconds
        instance_key = NO_KEY if key is None else key

        def apply(instance: _Instance | None) -> _Instance:
            if instance is None:
                now = self._clock.now()
                instance = _Instance(instance_key, name, {}, {}, [], {}, now, now)
                self._cache[instance_key] = instance
            if instance.state != name:
                instance.entries += 1
            instance.state = name
            instance.variables = dict(variables)
            # the request is the whole detector state: the messages read before it are not
            # part of it (the guide's HVAC reset relies on its old seed message being gone)
            instance.inputs = {}
            instance.timers = {}
            instance.expired = []
            for timer, seconds in timers.items():
                self._start_timer(instance, timer, seconds, "set")
            return instance

        with self._lock:
            self._commit(instance_key, apply)

    # ------------------------------------------------------------ evaluation

    def _handle_message(
        self, input_name: str, payload: dict[str, Any], message_id: str | None
    ) -> None:
        observed = self._observer is not None
        if input_name not in self._used_inputs:
            if observed:
                self._trace(
                    "skipped",
                    None,
                    input=input_name,
                    messageId=message_id,
                    reason=f"model {self.model.name!r} does not read input {input_name!r}",
                )
            return
        key = self._key_of(payload)
        if key is None:
            if observed:
                self._trace(
                    "skipped",
                    None,
                    input=input_name,
                    messageId=message_id,
                    reason=f"no valid key {self.model.key!r} in the payload",
                )
            return
        payload = declared_view(payload, self._declared[input_name])
        trigger = _Trigger(
            "Message", input_name=input_name, message_id=message_id or self._new_id()
        )
        self._fire_overdue(key)
        if observed:
            self._trace("input", key, input=input_name, messageId=trigger.message_id)

        def evaluate(instance: _Instance | None) -> _Instance:
            trigger.timeouts.clear()  # a lost race evaluates the fresh instance afresh
            if instance is None:
                now = self._clock.now()
                instance = _Instance(
                    key=key,
                    state=self.model.initial_state,
                    variables={},
                    timers={},
                    expired=[],
                    inputs={input_name: payload},
                    created=now,
                    updated=now,
                    entries=1,
                )
                self._cache[key] = instance
                if observed:
                    self._trace("created", key, state=instance.state)
                self._run_group(instance, self.model.states[instance.state].on_enter, trigger)
            else:
                instance.inputs[input_name] = payload
            self._evaluate_input(instance, trigger)
            return instance

        self._commit(key, evaluate)

    def _key_of(self, payload: Mapping[str, Any]) -> str | None:
        if self.model.key_path is None:
            return NO_KEY
        value = ex.lookup_path(payload, self.model.key_path)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self._warn_bad_key(f"message without key {self.model.key!r}; skipped")
            return None
        text = ex.format_value(value)
        if not KEY_VALUE_RE.fullmatch(text) or len(text) > 128:
            self._warn_bad_key(
                f"key value {_clipped(text)} does not match ^[a-zA-Z0-9\\-_:]+$"
                " (1-128 characters); skipped"
            )
            return None
        return text

    def _warn_bad_key(self, reason: str) -> None:
        """Spec §1 Decision: a bad key skips the model with a warning; once per reason, so a
        device sending junk keys cannot flood the log."""
        if self._bad_keys_warned.first(reason):
            log.warning("%s: %s", self.model.name, reason)

    def _holds(self, event: Event, ctx: _Context) -> bool:
        """Whether *event*'s condition is Boolean true; a traced engine reports non-Booleans."""
        if event.condition is None:
            return True
        if self._observer is None:
            return ex.is_true(event.condition, ctx)
        value, problem = ex.evaluate_reporting(event.condition, ctx)
        if not isinstance(value, bool):
            self._trace_error(
                ctx.instance,
                event,
                f"{event.path}.condition",
                event.condition_text,
                problem or f"evaluated to {_shown(value)}, not a Boolean; counts as false",
            )
        return value is True

    def _evaluate_input(self, instance: _Instance, trigger: _Trigger) -> None:
        state = self.model.states[instance.state]
        serial = self.model.evaluation_method == "SERIAL"
        if serial:
            for event in state.on_input:
                if self._holds(event, _Context(instance, trigger, instance.variables)):
                    self._run_actions(instance, event, trigger)
            chosen = next(
                (
                    t
                    for t in state.transitions
                    if self._holds(t, _Context(instance, trigger, instance.variables))
                ),
                None,
            )
        else:
            snapshot = _Context(instance, trigger, dict(instance.variables))
            firing = [e for e in state.on_input if self._holds(e, snapshot)]
            chosen = next((t for t in state.transitions if self._holds(t, snapshot)), None)
            for event in firing:
                self._run_actions(instance, event, trigger)
        if chosen is None:
            return
        self._run_actions(instance, chosen, trigger)
        self._run_group(instance, state.on_exit, trigger)
        assert chosen.next_state is not None
        previous = instance.state
        instance.state = chosen.next_state
        instance.entries += 1
        if self._observer is not None:
            self._trace(
                "transition",
                instance.key,
                **{"from": previous, "to": instance.state, "event": chosen.name},
            )
        self._run_group(instance, self.model.states[instance.state].on_enter, trigger)

    def _run_group(self, instance: _Instance, events: Sequence[Event], trigger: _Trigger) -> None:
        if self.model.evaluation_method == "SERIAL":
            for event in events:
                if self._holds(event, _Context(instance, trigger, instance.variables)):
                    self._run_actions(instance, event, trigger)
            return
        snapshot = _Context(instance, trigger, dict(instance.variables))
        firing = [e for e in events if self._holds(e, snapshot)]
        for event in firing:
            self._run_actions(instance, event, trigger)

    def _run_actions(self, instance: _Instance, event: Event, trigger: _Trigger) -> None:
        for action in event.actions:
            try:
                self._run_action(instance, event, action, trigger)
            except _ActionError as exc:
                if self._observer is not None:
                    self._trace_error(instance, event, exc.path, exc.expression, exc.message)
                log.log(
                    exc.level,
                    "%s/%s: %s: %s; state kept",
                    self.model.name,
                    instance.key,
                    exc.path,
                    exc.message,
                )
            except Exception as exc:
                if self._observer is not None:
                    self._trace_error(instance, event, action.path, None, str(exc))
                log.exception(
                    "%s/%s: action %s of event %r failed; state kept",
                    self.model.name,
                    instance.key,
                    action.kind,
                    event.name,
                )

    def _run_action(
        self, instance: _Instance, event: Event, action: Action, trigger: _Trigger
    ) -> None:
        ctx = _Context(instance, trigger, instance.variables)
        fields = action.fields
        if action.kind == "setVariable":
            value, problem = ex.evaluate_reporting(action.expressions["value"], ctx)
            name = fields["variableName"]
            if value is ex.UNDEFINED or value is None:
                # AWS: "A variable can't be unset. For example, you can't assign it the
                # value null." (developer guide, Expressions, References)
                reason = problem or (
                    "value is undefined"
                    if value is ex.UNDEFINED
                    else "value is null, and a variable cannot be set to null"
                )
                raise _ActionError(
                    f"{action.path}.value",
                    fields["value"],
                    f"{reason}; variable {name!r} unchanged",
                    level=logging.DEBUG,
                )
            if isinstance(value, dict | list) and not _strict_json(value):
                # an input object holding 1e400: a variable holds no number a decimal
                # cannot (the same number read alone is undefined), and DescribeDetector
                # could print it only as NaN/Infinity, which BatchUpdateDetector refuses
                raise _ActionError(
                    f"{action.path}.value",
                    fields["value"],
                    f"value holds NaN or Infinity; variable {name!r} unchanged",
                )
            length = value_chars(value)
            if length > MAX_VARIABLE_CHARS:
                raise _ActionError(
                    f"{action.path}.value",
                    fields["value"],
                    f"value has {length} characters; a variable holds at most"
                    f" {MAX_VARIABLE_CHARS}; variable {name!r} unchanged",
                )
            instance.variables[name] = value
            if self._observer is not None:
                self._trace(
                    "action",
                    instance.key,
                    event=event.name,
                    state=instance.state,
                    action="setVariable",
                    target={"variableName": name},
                    value=value,
                )
        elif action.kind == "setTimer":
            self._set_timer(instance, action, ctx)
        elif action.kind == "resetTimer":
            name = fields["timerName"]
            duration = instance.durations.get(name)
            if duration is None:
                raise _ActionError(
                    f"{action.path}.timerName", None, f"resetTimer {name!r}: timer never set"
                )
            self._start_timer(instance, name, duration, "reset", trigger)
        elif action.kind == "clearTimer":
            name = fields["timerName"]
            running = instance.timers.pop(name, None) is not None
            # a deleted timer has no expiry left to report, except the one being evaluated
            if _evaluating_expiry_of(trigger, name):
                trigger.spent = True
            elif name in instance.expired:
                instance.expired.remove(name)
            if self._observer is not None:
                self._trace("timer", instance.key, op="cleared", name=name, running=running)
        else:
            request = self._request(instance, event, action, ctx, trigger)
            if self._observer is not None:
                self._trace(
                    "action",
                    instance.key,
                    event=event.name,
                    state=instance.state,
                    action=request.kind,
                    target=dict(request.target),
                    payload=request.payload,
                    payloadType=request.payload_type,
                )
            self._pending.append((request, action.path, event.name))

    def _set_timer(self, instance: _Instance, action: Action, ctx: _Context) -> None:
        name = action.fields["timerName"]
        path = f"{action.path}.durationExpression"
        text = action.fields.get("durationExpression")
        problem = None
        if "seconds" in action.fields:
            raw: Any = action.fields["seconds"]
            path = f"{action.path}.seconds"
        else:
            raw, problem = ex.evaluate_reporting(action.expressions["durationExpression"], ctx)
        if isinstance(raw, str):
            number = ex.decimal_text(raw)
            raw = ex.UNDEFINED if number is None else number
        if (
            isinstance(raw, bool)
            or not isinstance(raw, int | float)
            or (isinstance(raw, float) and not math.isfinite(raw))
        ):
            raise _ActionError(
                path, text, problem or f"setTimer {name!r}: duration {_shown(raw)} is not a number"
            )
        seconds = int(raw)
        low, high = timer_bounds(self.model.strict)
        if not low <= seconds <= high:
            problem = (
                f"{seconds} s outside {MIN_TIMER_S}-{MAX_TIMER_S} s"
                if self.model.strict
                else timer_range_problem(False, seconds)
            )
            raise _ActionError(path, text, f"setTimer {name!r}: {problem}")
        self._start_timer(instance, name, seconds, "set", ctx.trigger)

    def _start_timer(
        self,
        instance: _Instance,
        name: str,
        seconds: float,
        op: str,
        trigger: _Trigger | None = None,
    ) -> None:
        expiry = self._clock.now() + seconds
        instance.timers[name] = {"expiry": expiry, "duration": seconds}
        instance.durations[name] = seconds
        # setting a timer forgets an expiry nobody checked, except while that very expiry
        # is being evaluated (§5: its evaluation sees timeout() true): in SERIAL, an event
        # may re-arm the timer before the transition that tests timeout() is reached
        if trigger is not None and _evaluating_expiry_of(trigger, name):
            trigger.spent = True
        elif name in instance.expired:
            instance.expired.remove(name)
        heapq.heappush(self._heap, (expiry, instance.key, name))
        if len(self._heap) > self._heap_limit:
            self._compact_heap()
        if self._observer is not None:
            self._trace("timer", instance.key, op=op, name=name, seconds=seconds, expires=expiry)

    def _compact_heap(self) -> None:
        """Drop entries of reset or cleared timers (every resetTimer leaves one behind)."""
        self._heap = [
            (t["expiry"], key, name)
            for key, inst in self._cache.items()
            for name, t in inst.timers.items()
        ]
        heapq.heapify(self._heap)
        self._heap_limit = max(1024, 4 * len(self._heap))

    def _request(
        self, instance: _Instance, event: Event, action: Action, ctx: _Context, trigger: _Trigger
    ) -> ActionRequest:
        now_ms = round(self._clock.now() * 1000)
        target, payload, payload_type = evaluate_action(
            action, ctx, lambda: self._default_payload(instance, event, trigger, now_ms)
        )
        return ActionRequest(
            kind=action.kind,
            target=target,
            payload=payload,
            payload_type=payload_type,
            detector_model=self.model.name,
            key_value=None if self.model.key is None else instance.key,
            event_name=event.name,
            state_name=instance.state,
            state_entry=instance.entries,
            event_time_ms=now_ms,
            detector_version=self.version,
        )

    def _default_payload(
        self, instance: _Instance, event: Event, trigger: _Trigger, now_ms: int
    ) -> dict[str, Any]:
        detector: dict[str, Any] = {"detectorModelName": self.model.name}
        if self.model.key is not None:
            detector["keyValue"] = instance.key
        detector["detectorModelVersion"] = self.version
        return {
            "eventTime": now_ms,
            "eventName": event.name,
            "payload": {
                "actionExecutionId": self._new_id(),
                "detector": detector,
                "eventTriggerDetails": trigger.details(),
                "state": {
                    "stateName": instance.state,
                    "variables": dict(instance.variables),
                    "timers": {
                        n: round(t["expiry"] * 1000) for n, t in sorted(instance.timers.items())
                    },
                },
            },
        }

    def _trace(self, kind: str, key: str | None, **detail: Any) -> None:
        assert self._observer is not None
        shown = None if key is None or self.model.key is None else key
        record = TraceRecord(kind, self._clock.now(), shown, detail)
        if self._held is not None:
            self._held.append(record)  # released when the evaluation's state is saved
        else:
            self._observer.observe(record)

    def _trace_error(
        self,
        instance: _Instance,
        event: Event,
        path: str,
        expression: str | None,
        message: str,
    ) -> None:
        self._trace(
            "error",
            instance.key,
            event=event.name,
            state=instance.state,
            path=path,
            expression=expression,
            message=message,
        )

    # ------------------------------------------------------------ storage

    def _commit(self, key: str, step: Callable[[_Instance | None], _Instance | None]) -> bool:
        """Run *step* on the instance of *key* (None: none stored), save the instance it
        returns conditionally on the version it was read at, then release its trace records
        and run its actions.

        On a lost race the instance is read again and *step* runs again on the fresh state;
        the lost attempt's actions and records are dropped. Any other failure (a store that
        cannot save) drops them too, and the cached instance with them, then raises. Returns
        False when *step* found nothing to do.
        """
        for _attempt in range(MAX_ATTEMPTS):
            self._pending = []
            self._held = [] if self._observer is not None else None
            try:
                instance = step(self._instance(key))
                if instance is None:
                    return False
                self._save(instance)
            except VersionConflictError:
                log.info("%s/%s: another writer won; evaluating again", self.model.name, key)
                self._cache.pop(key, None)
                continue
            except Exception:
                # The step changed the cached instance in place; what the store holds is
                # the truth, so a message whose result could not be saved leaves no trace
                # (the next message or describe reads the stored instance again).
                self._cache.pop(key, None)
                self._pending = []
                raise
            finally:
                held, self._held = self._held, None
            if self._observer is not None:
                for record in held or ():
                    self._observer.observe(record)
            self._run_pending()
            return True
        self._pending = []
        raise VersionConflictError(self.namespace, key, None)

    def _run_pending(self) -> None:
        pending, self._pending = self._pending, []
        for request, path, event_name in pending:
            try:
                self._actions.execute(request)
            except Exception as exc:
                if self._observer is not None:
                    self._trace(
                        "error",
                        request.key_value,
                        event=event_name,
                        state=request.state_name,
                        path=path,
                        expression=None,
                        message=str(exc),
                    )
                log.exception(
                    "%s/%s: action %s of event %r failed; state kept",
                    self.model.name,
                    request.key_value,
                    request.kind,
                    event_name,
                )

    def _instance(self, key: str) -> _Instance | None:
        """The cached instance, or the stored one (then cached), or None."""
        instance = self._cache.get(key)
        if instance is None:
            stored = self._store.get_versioned(self.namespace, key)
            if stored is not None:
                instance = self._checked(key, stored.value, stored.version)
                if instance is not None:
                    self._remember(instance)
        return instance

    def _checked(self, key: str, doc: Any, version: int) -> _Instance | None:
        """The stored instance, or None when its document fails the checks: then it is
        copied, with the reason, to the quarantine namespace and logged, and the key starts
        again from the initial state as a new instance would, rather than crash every
        message (or timer run) that reaches it or evaluate from a state the model lacks."""

        def load() -> _Instance:
            check_instance(self.model.name, key, doc, self.model.states)
            return _Instance.from_doc(key, doc, version)

        return self._set_aside.admit(key, doc, version, load)

    def _remember(self, instance: _Instance) -> None:
        self._cache[instance.key] = instance
        for name, timer in instance.timers.items():
            heapq.heappush(self._heap, (timer["expiry"], instance.key, name))

    def _save(self, instance: _Instance) -> None:
        instance.updated = self._clock.now()
        version = instance.version
        if version is None:
            version = self._set_aside.replaces(instance.key)
        instance.version = self._store.put_if_version(
            self.namespace, instance.key, instance.to_doc(), version
        )


def unknown_input(input_name: str, inputs: Mapping[str, Any]) -> NotFoundError:
    """The error refusing a message to an input not defined (BatchPutMessage's
    ResourceNotFoundException): raised, not dropped, so its sender keeps the message."""
    return NotFoundError(
        f"input {input_name!r} does not exist (known: {', '.join(sorted(inputs))})"
    )


def too_many_put_back(owner: str, input_name: str) -> DetectorModelError:
    """The error refusing a message past the MAX_CHAINED_MESSAGES that the actions of one
    outside message (or timer expiry) may put back."""
    return DetectorModelError(
        f"{owner}: more than {MAX_CHAINED_MESSAGES} messages put back by the actions of one"
        f" message; input {input_name!r} refused (does an iotEvents action feed the model's"
        " own input?)"
    )


def _evaluating_expiry_of(trigger: _Trigger | None, timer_name: str) -> bool:
    """Whether *trigger* is the expiry of *timer_name*, whose evaluation sees ``timeout()``
    true even after an action of it re-arms or clears the timer (§5)."""
    return trigger is not None and trigger.kind == "Timer" and trigger.timer_name == timer_name


def model_fingerprint(model: DetectorModel) -> str:
    """Hash of what evaluation depends on: the definition, key and evaluation method."""
    raw = model.raw
    body = {
        "definition": raw.get("detectorModelDefinition"),
        "key": raw.get("key"),
        "evaluationMethod": raw.get("evaluationMethod", "BATCH"),
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_document(
    model_name: str,
    version: str,
    key: str,
    doc: Mapping[str, Any],
    states: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A stored instance document as DescribeDetector returns it: strings and epoch seconds.

    Raises DetectorStateError naming the detector and field for a document of the wrong
    shape, or (given the model's *states*) in a state the model lacks."""
    check_instance(model_name, key, doc, states)
    variables = [
        {"name": name, "value": _describe_value(value)}
        for name, value in sorted(doc.get("variables", {}).items())
    ]
    timers = [
        {"name": name, "timestamp": float(t["expiry"])}
        for name, t in sorted(doc.get("timers", {}).items())
    ]
    detector: dict[str, Any] = {"detectorModelName": model_name}
    if key != NO_KEY:
        detector["keyValue"] = key
    detector.update(
        {
            "detectorModelVersion": version,
            "creationTime": float(doc.get("created", 0.0)),
            "lastUpdateTime": float(doc.get("updated", 0.0)),
            "state": {"stateName": doc["state"], "variables": variables, "timers": timers},
        }
    )
    return {"detector": detector}


def _describe_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    return ex.format_value(value)


def value_chars(value: Any) -> int:
    """A variable value's length as :data:`MAX_VARIABLE_CHARS` counts it: a string's own
    characters (not the escapes DescribeDetector prints for them), any other value's JSON."""
    if isinstance(value, str):
        return len(value)
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))


def decode_variable_value(text: str) -> Any:
    """A BatchUpdateDetector variable value read back as DescribeDetector prints it
    (:func:`_describe_value`): a number as its text (``22`` an integer, ``1.0`` a decimal),
    ``true``/``false``, a string as a JSON string literal (``"say \\"hi\\""``, escapes and
    all), an object or array as JSON; so describe -> update gives back every value exactly.
    A single-quoted string literal (``'text'``), which describe never prints, is still read
    as the expression language reads it. Raises ``ValueError`` saying why for anything no
    variable can hold: ``null``, ``NaN``/``Infinity``, a number out of range, an expression."""
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except _NotFinite as exc:
        raise ValueError(f"{exc} is not a number a variable can hold") from None
    except (ValueError, RecursionError):
        value = _not_json(text)
    if value is None:
        raise ValueError("null: a variable cannot be set to null")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > ex.MAX_INTEGER:
        raise ValueError(f"{_clipped(text)}: integer out of range")
    return value


def _not_json(text: str) -> Any:
    if text.strip().startswith("'"):
        try:
            node = ex.parse(text)
        except ex.ExpressionError as exc:
            raise ValueError(exc.reason) from None
        if isinstance(node, ex.Literal):
            return node.value
    raise ValueError(
        f"{_clipped(text)} is not a value as DescribeDetector prints one (a number,"
        " true or false, a string in double quotes as JSON writes it, or JSON)"
    )


def _clipped(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def evaluate_action(
    action: Action, ctx: ex.EvalContext, default_payload: Callable[[], Any]
) -> tuple[dict[str, Any], Any, str]:
    """A service action's evaluated fields, payload and payload type (``DEFAULT``, ``JSON``
    or ``STRING``); shared by detector and alarm models. Raises ``_ActionError`` naming the
    field whose expression gave no value."""
    target: dict[str, Any] = {name: v for name, v in action.fields.items() if name != "payload"}
    for name, node in action.expressions.items():
        value, problem = ex.evaluate_reporting(node, ctx)
        if value is ex.UNDEFINED:
            raise _ActionError(
                f"{action.path}.{name}",
                _field_text(action.fields, name),
                problem or "evaluated to undefined; action not taken",
            )
        try:
            target[name] = typed_value(action.kind, name, value)
        except FieldValueError as exc:
            raise _ActionError(
                f"{action.path}.{name}",
                _field_text(action.fields, name),
                f"{exc}; action not taken",
            ) from None
    if action.payload is None:
        payload = default_payload()
        if not _strict_json(payload):
            raise _ActionError(
                action.path,
                None,
                "the default payload holds NaN or Infinity (a variable's value), which JSON"
                " cannot carry; action not taken",
            )
        return target, payload, "DEFAULT"
    ppath = f"{action.path}.payload.contentExpression"
    content, problem = ex.evaluate_reporting(action.payload.content, ctx)
    if content is ex.UNDEFINED or content == "":
        raise _ActionError(
            ppath,
            action.payload.content_text,
            problem or "contentExpression gave no value; action not taken",
        )
    text = content if isinstance(content, str) else ex.format_value(content)
    if action.payload.type != "JSON":
        return target, text, action.payload.type
    if content is None or isinstance(content, bool | int | float):
        # what the model loader refuses in a literal, refused when data gives it: "The
        # evaluated result can't be a Boolean or number" (analyze-diagnostic-information)
        raise _ActionError(
            ppath,
            action.payload.content_text,
            f"a JSON payload must evaluate to a string holding JSON, not {_shown(content)};"
            " action not taken",
        )
    try:
        return target, json.loads(text, parse_constant=_no_constant, parse_float=_finite), "JSON"
    except json.JSONDecodeError as exc:
        raise _ActionError(
            ppath, action.payload.content_text, f"not JSON: {exc.msg}; action not taken"
        ) from None
    except _NotFinite as exc:
        raise _ActionError(
            ppath,
            action.payload.content_text,
            f"not JSON: it holds {exc}, and JSON has no NaN or Infinity; action not taken",
        ) from None
    except (ValueError, RecursionError) as exc:
        # an integer of thousands of digits, or arrays nested past the parser's recursion
        raise _ActionError(
            ppath, action.payload.content_text, f"not usable JSON: {exc}; action not taken"
        ) from None


class _NotFinite(ValueError):
    """A JSON payload's text holds ``NaN``, ``Infinity`` or a number past a double's range."""


def _no_constant(word: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity``: Python's extensions, not JSON."""
    raise _NotFinite(word)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotFinite(f"{text} (beyond a double's range)")
    return number


def _strict_json(value: Any) -> bool:
    """Whether *value* serializes as JSON: no NaN or Infinity anywhere in it."""
    try:
        json.dumps(value, allow_nan=False, default=str)
    except ValueError:
        return False
    return True


class _ActionError(Exception):
    """An action that could not run: where, the expression text and why (state is kept)."""

    def __init__(
        self, path: str, expression: str | None, message: str, *, level: int = logging.WARNING
    ) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.expression = expression
        self.message = message
        self.level = level
        """Log level without an observer: an unset input field is routine, so DEBUG there."""


def _field_text(fields: Mapping[str, Any], dotted: str) -> str | None:
    """The raw text of an expression field, ``propertyValue.value.doubleValue`` included."""
    node: Any = fields
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, str) else None


def _shown(value: Any) -> str:
    if value is ex.UNDEFINED:
        return "undefined"
    return f"{ex.type_name(value)} {ex.format_value(value)}"
