"""A durable outbox for detector actions: alerts and commands are retried, never dropped.

The engine runs an action once, when its event fires, and only logs a failure (it never rolls
back state). An alert or a shadow command lost that way is lost for good, so
:class:`DeliveryOutbox` sits between the engine and the real sink: each action is written to
the StateStore first, then delivered, and removed once the sink returned. A failed delivery
stays, with its attempt count, error and next attempt time (exponential backoff), and
:meth:`DeliveryOutbox.retry_due` delivers it again; a restart finds it in the store and
carries on. After ``max_attempts`` a record moves to a dead-letter namespace, where it is
kept with its last error (and counted), never deleted. A failure the sink's adapter marks as
permanent (``RefusedError``: the service will refuse this request every time) or that is a
``UserError`` (the action itself is wrong) goes there at once, with ``dead_reason`` saying
so; throttling, server errors and lost connections keep the backoff. A stored record that
does not read as an action (an older version's, a damaged one) is a dead letter at once.
When the store refuses the record itself, the action is still delivered, once and without
retries behind it (a failure is logged with the whole request), and a retry whose record
cannot be updated leaves it claimed and carries on with the other due records.

It is engine-agnostic: it wraps any ``ActionSink`` and needs only the ``StateStore`` port,
so SQLite backs it locally and DynamoDB on AWS.

Delivery is at least once. A process that stops between a successful delivery and the
removal of its record delivers it again after a restart, once the record's claim has
lapsed (at most ``CLAIM_S``); the local sink's alert de-duplication
(one alert per channel per state entry) absorbs that for alerts, and a repeated shadow
command sets the same desired state again. Several processes retrying from one store (two
overlapping Lambda invocations) claim each due record with a conditional write before
delivering it, so only one of them does; a new record is born claimed by the process making
its first attempt. A claim lapses after ``CLAIM_S`` if its holder dies.

An operator who fixed what killed a dead letter (a topic restored, a policy fixed) puts it
back with :func:`redrive`: due now, attempts reset, ``redrives`` counting how often. Each
dead letter is first claimed with a conditional write, so a second redrive racing it skips
it; its outbox copy is born claimed (like a first attempt) until the dead letter is gone, so
a retry running meanwhile cannot send it and then dead-letter it again under a key the
redrive is about to delete. A redrive that stops half way is finished by the next one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloud.detectors.engine import ActionRequest, ActionSink
from cloud.ports import StateStore
from edge.cliargs import one_line
from edge.clock import Clock
from edge.errors import RefusedError, UserError, VersionConflictError

if TYPE_CHECKING:
    from cloud.detectors.router import MessageEngine

log = logging.getLogger(__name__)

OUTBOX_NAMESPACE = "detectors/outbox"
DEAD_LETTER_NAMESPACE = "detectors/outbox-dead"
DURABLE_KINDS = ("sns", "iotTopicPublish")
"""Actions that leave the process: alerts (SNS) and MQTT publishes (shadow commands)."""
DEAD_LETTER_LOG_PHRASE = "kept as a dead letter"
"""In the error line of every record moved to the dead-letter namespace: on AWS a log
metric filter counts these lines (``ActionsDeadLettered``) and alarms."""
CLAIM_S = 120.0
"""How long a retry claims a record: longer than one delivery takes."""
REDRIVE_CLAIM = "redrive_claimed_until"
"""In a dead letter a redrive is moving: until when it holds it."""


class DeliveryOutbox:
    """An ``ActionSink`` that stores, delivers through *sink*, and retries with backoff."""

    def __init__(
        self,
        sink: ActionSink,
        state: StateStore,
        clock: Clock,
        *,
        kinds: Iterable[str] = DURABLE_KINDS,
        base_delay_s: float = 2.0,
        max_delay_s: float = 300.0,
        max_attempts: int = 50,
    ) -> None:
        self._sink = sink
        self._state = state
        self._clock = clock
        self.kinds = frozenset(kinds)
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.max_attempts = max_attempts
        self.counts: Counter[str] = Counter()
        self._lock = threading.RLock()

    def bind(self, engine: MessageEngine) -> None:
        """Passed on, so a sink that feeds ``iotEvents`` actions back still gets its engine."""
        bind = getattr(self._sink, "bind", None)
        if callable(bind):
            bind(engine)

    def execute(self, request: ActionRequest) -> None:
        if request.kind not in self.kinds:
            self._sink.execute(request)
            return
        now = self._clock.now()
        key = f"{request.event_time_ms:015d}-{uuid.uuid4().hex[:12]}"
        record = {
            "request": dataclasses.asdict(request),
            "attempts": 0,
            "created_at": now,
            # claimed by this process while it makes the first attempt: an overlapping
            # retry_due elsewhere must not deliver it as well (it may if this one dies)
            "next_at": now + CLAIM_S,
        }
        with self._lock:
            try:
                self._state.put(OUTBOX_NAMESPACE, key, record)
            except Exception as exc:
                self._deliver_unrecorded(request, exc)
                return
            self._deliver(key, record)

    def retry_due(self) -> int:
        """Deliver every stored action whose next attempt is due; return how many went out."""
        now = self._clock.now()
        delivered = 0
        failures: list[Exception] = []
        with self._lock:
            for key, stored in self._state.items_versioned(OUTBOX_NAMESPACE):
                record = stored.value
                if not isinstance(record, dict):
                    self._unreadable(key, record, TypeError("the record is not an object"))
                    continue
                if _due_at(record) > now:
                    continue
                claim = {**record, "next_at": now + CLAIM_S}
                try:
                    self._state.put_if_version(OUTBOX_NAMESPACE, key, claim, stored.version)
                except VersionConflictError:
                    continue  # another process claimed it first and delivers it
                try:
                    if self._deliver(key, record):
                        delivered += 1
                except Exception as exc:
                    # the store refused this record's bookkeeping: it stays claimed and is
                    # retried once the claim lapses; the records after it still go out
                    log.error("%s: outbox record not updated: %s", key, exc)
                    failures.append(exc)
        if failures:
            raise failures[0]
        return delivered

    def redrive(
        self, keys: Iterable[str] | None = None, *, dry_run: bool = False
    ) -> list[Redriven]:
        """Put dead letters back in this outbox, due now: see :func:`redrive`."""
        with self._lock:
            done = redrive(self._state, self._clock, keys, dry_run=dry_run)
        self.counts["redriven"] += sum(r.status == "redriven" for r in done)
        return done

    def pending(self) -> list[tuple[str, dict[str, Any]]]:
        return list(self._state.items(OUTBOX_NAMESPACE))

    def dead_letters(self) -> list[tuple[str, dict[str, Any]]]:
        return list(self._state.items(DEAD_LETTER_NAMESPACE))

    @property
    def stats(self) -> dict[str, int]:
        return {
            "delivered": self.counts["delivered"],
            "delivered_after_retry": self.counts["delivered_after_retry"],
            "failed_attempts": self.counts["failed_attempts"],
            "pending": len(self.pending()),
            "dead": len(self.dead_letters()),
        }

    def _deliver_unrecorded(self, request: ActionRequest, store_error: Exception) -> None:
        """The store refused the record (throttled, full): deliver now, once, rather than
        not at all. No retry stands behind it, so a failure is logged with the request."""
        where = f"{request.detector_model}/{request.key_value} {request.event_name}"
        stored = one_line(f"{type(store_error).__name__}: {store_error}")
        log.warning(
            "%s: %s action not recorded in the outbox (%s); delivered once, without retries",
            where,
            request.kind,
            stored,
        )
        try:
            self._sink.execute(request)
        except Exception as exc:
            self.counts["failed_attempts"] += 1
            log.error(
                "%s: %s action failed and was not recorded in the outbox (%s), so it is not"
                " retried: %s; the request: %s",
                where,
                request.kind,
                stored,
                one_line(f"{type(exc).__name__}: {exc}"),
                json.dumps(dataclasses.asdict(request), default=str, sort_keys=True),
            )
            raise
        self.counts["delivered"] += 1

    def _deliver(self, key: str, record: dict[str, Any]) -> bool:
        try:
            request = ActionRequest(**record["request"])
        except (KeyError, TypeError) as exc:
            self._unreadable(key, record, exc)
            return False
        try:
            self._sink.execute(request)
        except Exception as exc:
            self._failed(key, record, request, exc)
            return False
        self._state.delete(OUTBOX_NAMESPACE, key)
        self.counts["delivered"] += 1
        if record.get("attempts"):
            self.counts["delivered_after_retry"] += 1
            log.info(
                "%s/%s %s: %s action delivered after %d failed attempt(s)",
                request.detector_model,
                request.key_value,
                request.event_name,
                request.kind,
                record["attempts"],
            )
        return True

    def _unreadable(self, key: str, value: Any, error: Exception) -> None:
        """A stored record this version cannot make an action of (an older version's
        fields, a hand edit, a damaged item): kept as a dead letter at once, for no retry
        can deliver it and raising would stop every retry after it on each pass."""
        text = one_line(f"{type(error).__name__}: {error}")
        dead = dict(value) if isinstance(value, dict) else {"stored": value}
        if "request" in dead and not isinstance(dead["request"], dict):
            dead["stored_request"] = dead.pop("request")  # listings read "request" as one
        dead.update(
            last_error=text,
            last_attempt_at=self._clock.now(),
            dead_reason=f"unreadable, not an action this version can read ({text}): retrying cannot help",
        )
        self._state.put(DEAD_LETTER_NAMESPACE, key, dead)
        self._state.delete(OUTBOX_NAMESPACE, key)
        self.counts["dead"] += 1
        log.error(
            "%s: outbox record %s; %s: %s", key, dead["dead_reason"], DEAD_LETTER_LOG_PHRASE, text
        )

    def _failed(
        self, key: str, record: dict[str, Any], request: ActionRequest, error: Exception
    ) -> None:
        attempts = int(record.get("attempts", 0)) + 1
        self.counts["failed_attempts"] += 1
        now = self._clock.now()
        # one line: it is logged and shown by the CLI (botocore's ParamValidationError and
        # some providers' errors hold line breaks)
        text = one_line(f"{type(error).__name__}: {error}")
        record = {**record, "attempts": attempts, "last_error": text, "last_attempt_at": now}
        where = f"{request.detector_model}/{request.key_value} {request.event_name}"
        refused = refusal(error)
        if refused is not None or attempts >= self.max_attempts:
            record["dead_reason"] = (
                f"refused ({refused}): retrying cannot help"
                if refused is not None
                else f"failed {attempts} times"
            )
            self._state.put(DEAD_LETTER_NAMESPACE, key, record)
            self._state.delete(OUTBOX_NAMESPACE, key)
            self.counts["dead"] += 1
            log.error(
                "%s: %s action %s; %s: %s",
                where,
                request.kind,
                record["dead_reason"],
                DEAD_LETTER_LOG_PHRASE,
                text,
            )
            return
        delay = min(self.max_delay_s, self.base_delay_s * 2 ** (attempts - 1))
        record["next_at"] = now + delay
        self._state.put(OUTBOX_NAMESPACE, key, record)
        log.warning(
            "%s: %s action failed (attempt %d); retrying in %.0f s: %s",
            where,
            request.kind,
            attempts,
            delay,
            text,
        )


@dataclass(frozen=True, slots=True)
class Redriven:
    """What :func:`redrive` did with one dead letter."""

    key: str
    status: str
    """``redriven``; ``would redrive`` (dry run); ``taken``: another redrive holds or moved
    it, or a retry made it dead again meanwhile (that new dead letter is kept);
    ``already pending``: an earlier redrive that stopped half way had put it back, and
    only its dead copy was left to remove."""
    redrives: int
    """How many times it has been redriven, this one included."""


class UnknownDeadLetterError(UserError):
    """Keys a redrive was asked for that name no dead letter; nothing was redriven."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = tuple(keys)
        super().__init__(
            f"no dead letter {', '.join(repr(k) for k in self.keys)} in {DEAD_LETTER_NAMESPACE}"
        )


def redrive(
    state: StateStore,
    clock: Clock,
    keys: Iterable[str] | None = None,
    *,
    dry_run: bool = False,
) -> list[Redriven]:
    """Move the dead letters *keys* (None: all) back to the outbox, due now, with their
    attempts reset and ``redrives`` raised by one; the next ``retry_due`` delivers them.

    Any unknown key raises :class:`UnknownDeadLetterError` before anything is written. Each
    record moves on its own: claimed with a conditional write on the dead letter, copied to
    the outbox claimed (not due) until the dead letter is deleted, then released as due.
    """
    dead = dict(state.items_versioned(DEAD_LETTER_NAMESPACE))
    chosen = list(dead) if keys is None else list(dict.fromkeys(keys))
    unknown = [k for k in chosen if k not in dead]
    if unknown:
        raise UnknownDeadLetterError(unknown)
    now = clock.now()
    done: list[Redriven] = []
    for key in chosen:
        stored = dead[key]
        record = stored.value
        redrives = int(record.get("redrives", 0)) + 1
        if float(record.get(REDRIVE_CLAIM, 0)) > now:
            done.append(Redriven(key, "taken", redrives))
            continue
        if dry_run:
            done.append(Redriven(key, "would redrive", redrives))
            continue
        claim = {**record, REDRIVE_CLAIM: now + CLAIM_S}
        try:
            claimed = state.put_if_version(DEAD_LETTER_NAMESPACE, key, claim, stored.version)
        except VersionConflictError:
            done.append(Redriven(key, "taken", redrives))
            continue
        pending = {k: v for k, v in record.items() if k not in ("dead_reason", REDRIVE_CLAIM)}
        pending.update(attempts=0, redrives=redrives, redriven_at=now, next_at=now + CLAIM_S)
        try:
            version = state.put_if_version(OUTBOX_NAMESPACE, key, pending, None)
        except VersionConflictError:
            # an earlier redrive put it back and stopped before deleting the dead letter;
            # only the letter as claimed is removed: a retry may have sent that pending
            # copy meanwhile and made it dead again, and that new letter must stay
            try:
                state.delete_if_version(DEAD_LETTER_NAMESPACE, key, claimed)
            except VersionConflictError:
                done.append(Redriven(key, "taken", redrives))
                continue
            done.append(Redriven(key, "already pending", redrives - 1))
            continue
        # the letter as claimed: if another writer replaced it since (a claim outlived),
        # its letter stays; this copy is redriven all the same
        with contextlib.suppress(VersionConflictError):
            state.delete_if_version(DEAD_LETTER_NAMESPACE, key, claimed)
        # due at once whatever the retrying process's clock says (the timers function's is
        # its event's time, not this machine's); a conflict cannot happen while the copy
        # is claimed, and if it did, its writer owns it
        with contextlib.suppress(VersionConflictError):
            state.put_if_version(OUTBOX_NAMESPACE, key, {**pending, "next_at": 0.0}, version)
        log.info("%s: dead letter redriven (%d time(s)); due now", key, redrives)
        done.append(Redriven(key, "redriven", redrives))
    return done


def _due_at(record: dict[str, Any]) -> float:
    """When a record is next due; a damaged time is due now (and a record that does not
    read as an action is then kept as a dead letter)."""
    try:
        return float(record.get("next_at", 0))
    except (TypeError, ValueError):
        return 0.0


def refusal(error: BaseException) -> str | None:
    """Why *error* is permanent (the adapter's reason, or the user-error class), or None
    when a later attempt may succeed."""
    if isinstance(error, RefusedError):
        return error.reason
    if isinstance(error, UserError):
        return type(error).__name__
    return None
