"""The L4E inference scheduler (§3-§6): wake at ``W + D``, score ``(W - F, W]``, write results.

Which files a run reads is the spec's §4 Choice: keys ``<component><delim><ts>.csv`` with
``S - F <= ts <= E + F``; rows with ``S < t <= E``; on duplicate timestamps the file with the
later name timestamp wins.

Two kinds of model (see :mod:`cloud.inference.model`):

* an **asset model** (sensors named ``component\\sensor``): one asset per scheduler, exactly
  L4E. Every component the model needs must have a row in the window; the frame is the merge
  of those components and the output is ``<out-prefix><DataStartTime>/results.jsonl``.
* a **template model** (plain sensor names, one model shared by identical assets): a fleet
  scheduler. Every component present in the window is scored on its own and written to
  ``<out-prefix><component>/<DataStartTime>/results.jsonl`` with diagnostics named
  ``<component>\\<sensor>``. The execution fails only when no component has data.

One bad object never stops the rest: a file that cannot be read, or a component that cannot
be scored, is left out and named with its reason in the execution's ``skipped`` list; the
other files and components of the window are read and scored as usual.

Each asset is scored as one series across windows (:mod:`cloud.inference.monitor`): its
moving means, change test and alarm episode continue from the previous window, kept in
the state store under ``monitors`` (``<scheduler>`` or ``<scheduler>/<component>``) and
saved once the window's results are stored. A window older than the one the state has
seen (run again by hand) is scored on its own and leaves the state alone; so does a
window after the model was replaced.

Several runs of one scheduler may share one state store (on AWS, EventBridge Scheduler
delivers at least once, so two Lambda invocations can overlap). The scheduler document is
only ever changed with a conditional write on its version (the detector engine's
compare-and-set): a run claims the next due window (``claim``: the window, the run, until
when) before scoring it, and another run that finds a live claim logs ``window ... already
claimed by another run; skipped`` and stops. Finishing records ``last_window_end`` (never
backwards) and drops the claim together, if the claim is still the run's. A run that raises
gives the window back; a claim left by a run that was killed lapses after ``claim_s``, and
the next run scores the window. A window run by hand (:meth:`Scheduler.run_window`) is not
claimed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import pandas as pd

from cloud.inference.dataset import merge, prefixed, read_csv, to_microseconds
from cloud.inference.model import SAMPLING_SECONDS, Model, ScoreResult
from cloud.inference.monitor import Monitor, MonitorState
from cloud.inference.results import encode_results, result_lines, results_key
from cloud.l4e.arns import ArnScope
from cloud.l4e.naming import COMPONENT_RE, InputNaming, upload_frequency_seconds, window_end
from cloud.l4e.result_keys import COMPACT_KEYS_OVER, compact_keys, stored_result_keys
from cloud.ports import FileObjectStore, ObjectStore, StateStore
from edge.clock import Clock
from edge.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PlantwatchError,
    UserError,
    VersionConflictError,
)

log = logging.getLogger(__name__)

SCHEDULERS_NS = "schedulers"
EXECUTIONS_NS = "executions"
MONITORS_NS = "monitors"
NAME_RE = re.compile(r"^[0-9a-zA-Z_-]{1,200}$")
BUCKET_RE = re.compile(r"[a-z0-9][.\-a-z0-9]{1,61}[a-z0-9]")
"""``S3InputConfiguration.Bucket``'s pattern (and the output's). Locally a bucket is a folder
under the data directory, so this also keeps ``..`` and ``/`` out of its path."""
PREFIX_RE = re.compile(r"[\t\n\r\x20-\xff]{1,1023}/")
"""``Prefix``'s pattern when not empty: ``[\\u0009\\u000A\\u000D\\u0020-\\u00FF]{1,1023}/``."""
NEAR_MISSES_SHOWN = 3
"""Keys a FailedReason names that are almost input file names (the rest are counted)."""
CLAIM = "claim"
"""The scheduler document's field naming the window a run is scoring: ``{window_end, run,
until}``."""
CLAIM_S = 300.0
"""How long a claim holds when the caller gives no time (a local runtime, the CLI): the
inference Lambda's timeout (``infra/parts/processing.py``). On Lambda the handler gives the
invocation's remaining time instead."""
MODIFY_ATTEMPTS = 8
"""Conditional writes of the scheduler document tried before giving up on a busy one."""


@dataclass(frozen=True)
class SchedulerConfig:
    """An inference scheduler's settings, as in ``CreateInferenceScheduler``."""

    name: str
    model_name: str
    input_prefix: str = "input/"
    output_prefix: str = "output/"
    upload_frequency: str = "PT5M"
    delay_offset_min: int = 0
    naming: InputNaming = InputNaming()  # noqa: RUF009 - frozen dataclass, safe to share
    input_bucket: str = "input"
    output_bucket: str = "output"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_RE.fullmatch(self.name):
            raise ConfigError(f"InferenceSchedulerName {self.name!r}: must match {NAME_RE.pattern}")
        upload_frequency_seconds(self.upload_frequency)
        delay = self.delay_offset_min
        if type(delay) is not int or not 0 <= delay <= 60:  # not bool, not 5.5, not "5"
            raise ConfigError(
                f"DataDelayOffsetInMinutes {delay!r}: expected a whole number of minutes, 0 to 60"
            )
        for key, prefix in (("input", self.input_prefix), ("output", self.output_prefix)):
            if not isinstance(prefix, str):
                raise ConfigError(f"{key} Prefix {prefix!r}: expected a string")
            if prefix and not prefix.endswith("/"):
                raise ConfigError(f"{key} Prefix {prefix!r}: must be empty or end with '/'")
            if prefix and not PREFIX_RE.fullmatch(prefix):
                raise ConfigError(
                    f"{key} Prefix {prefix!r}: at most 1,024 characters, each a tab, line feed, "
                    "carriage return or U+0020 to U+00FF"
                )
        for key, bucket in (("input", self.input_bucket), ("output", self.output_bucket)):
            if not isinstance(bucket, str) or not BUCKET_RE.fullmatch(bucket):
                raise ConfigError(
                    f"{key} Bucket {bucket!r}: expected an S3 bucket name, 3-63 lowercase "
                    "letters, digits, '.' and '-', starting and ending with a letter or digit"
                )

    @property
    def frequency_s(self) -> int:
        return upload_frequency_seconds(self.upload_frequency)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "naming": asdict(self.naming)}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> SchedulerConfig:
        fields = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        fields["naming"] = naming_from_dict(doc.get("naming", {}))
        return cls(**fields)


def naming_from_dict(doc: Any) -> InputNaming:
    """The :class:`InputNaming` a stored configuration holds; a ConfigError naming the
    field when it is of the wrong shape (a stored record can be edited by hand)."""
    known = InputNaming.__dataclass_fields__
    if not isinstance(doc, dict) or not set(doc) <= set(known):
        raise ConfigError(
            f"InferenceInputNameConfiguration {doc!r}: expected an object with only "
            f"{', '.join(known)}"
        )
    return InputNaming(**doc)


@dataclass
class Execution:
    """One run: ``InferenceExecutionSummary`` fields plus where the results went."""

    scheduler: str
    data_start: datetime
    data_end: datetime
    scheduled_start: datetime
    status: str
    failed_reason: str | None
    result_key: str | None
    result_keys: tuple[str, ...] = ()
    """Every results object written (one per component for a fleet scheduler)."""
    anomalous: bool = False
    model_name: str = ""
    rows: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    """Input files and components left out of this run, each ``{key, reason}``."""
    dropped_rows: list[dict[str, str]] = field(default_factory=list)
    """Input files read with some rows left out, each ``{key, reason}``: rows whose
    timestamp is in no supported format (§1.2 Choice: dropped and counted)."""
    invalid_values: list[dict[str, str]] = field(default_factory=list)
    """Input files read with cells that are no finite number (``inf``, ``-Infinity``,
    ``1e400``, text), each ``{key, reason}``: L4E's ``InvalidValues`` (l4e-contracts §1.6),
    read as gaps like a blank cell but named here, not taken for missing readings."""
    input_files: int = 0
    """Input objects the §4 rule selected for the window."""
    failed_components: tuple[str, ...] = ()
    """Components the run could not score (missing, unreadable, or not fitting the model)."""
    skipped_omitted: int = 0
    """Entries of *skipped* left out of the stored record (:meth:`to_record`)."""
    dropped_rows_omitted: int = 0
    """Entries of *dropped_rows* left out of the stored record, likewise."""
    invalid_values_omitted: int = 0
    """Entries of *invalid_values* left out of the stored record, likewise."""
    model_version: int | None = None
    """``ModelVersion``: the registry version the run scored with (the active one when the
    scheduler loaded it). None in records stored before versions were recorded, and for
    executions imported from L4E's results objects, which do not name it."""
    model_arn: str | None = None
    """``ModelArn``, ``ModelVersionArn`` and ``InferenceSchedulerArn``: only where the run
    knew its Region and account (:mod:`cloud.l4e.arns`), else None."""
    model_version_arn: str | None = None
    scheduler_arn: str | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        for key in ("data_start", "data_end", "scheduled_start"):
            doc[key] = iso(doc[key])
        doc["result_keys"] = list(self.result_keys)
        doc["failed_components"] = list(self.failed_components)
        for omitted in ("skipped_omitted", "dropped_rows_omitted", "invalid_values_omitted"):
            if not doc[omitted]:
                del doc[omitted]
        return doc

    def to_record(self) -> dict[str, Any]:
        """:meth:`to_dict` as the state store keeps it, bounded whatever the fleet size.

        Why: a fleet scheduler writes one results object per component, about 55 bytes of
        key each, so 10,000 components make a 550 KB record, past what one DynamoDB item
        holds (400 KB); that write fails every time, and the scheduler never moves past the
        window. Many result keys are kept as their shared prefix and suffix and each one's
        middle (:func:`compact_keys`); the skipped, dropped-rows and invalid-values lists keep their first
        :data:`RECORD_SKIPPED_MAX` entries and count the rest."""
        doc = self.to_dict()
        if len(self.result_keys) > COMPACT_KEYS_OVER:
            compact = compact_keys(self.result_keys)
            if compact is not None:
                doc["result_keys"], doc["result_keys_compact"] = [], compact
        for name in ("skipped", "dropped_rows", "invalid_values"):
            entries = getattr(self, name)
            if len(entries) > RECORD_SKIPPED_MAX:
                doc[name] = entries[:RECORD_SKIPPED_MAX]
                omitted = getattr(self, f"{name}_omitted") + len(entries) - RECORD_SKIPPED_MAX
                doc[f"{name}_omitted"] = omitted
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Execution:
        fields = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        for key in ("data_start", "data_end", "scheduled_start"):
            fields[key] = datetime.fromisoformat(fields[key].replace("Z", "+00:00"))
        fields["result_keys"] = tuple(stored_result_keys(doc))
        fields["failed_components"] = tuple(fields.get("failed_components", ()))
        return cls(**fields)


def _invalid_reason(counts: dict[str, int]) -> str:
    """``InvalidValues: 3 cells that are no finite number (flow: 2, amps: 1) read as gaps``,
    at most five sensors named."""
    shown = ", ".join(f"{name}: {n}" for name, n in sorted(counts.items())[:5])
    more = f" and {len(counts) - 5} more sensors" if len(counts) > 5 else ""
    total = sum(counts.values())
    cells = "cell that is" if total == 1 else "cells that are"
    return f"InvalidValues: {total} {cells} no finite number ({shown}{more}) read as gaps"


RECORD_SKIPPED_MAX = 100
"""Skipped inputs a stored execution record lists; the rest are counted."""


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def execution_key(scheduler: str, data_start: datetime) -> str:
    return f"{scheduler}/{iso(data_start)}"


def frequency_problem(frequency_s: int, sampling_rate: str | None) -> str | None:
    """Why windows of *frequency_s* do not suit a model resampled to *sampling_rate*, or
    None. Shorter is the spec's §1.5 Choice; a frequency that is no whole number of bins
    (PT15M for PT10M) ends windows inside a bin: a line past the window's end, and the
    same timestamp again in the next window (AWS samples: a PT30M model runs only with
    PT30M or PT1H)."""
    if sampling_rate is None:
        return None
    rate_s = SAMPLING_SECONDS[sampling_rate]
    if frequency_s < rate_s:
        return f"shorter than the model's TargetSamplingRate {sampling_rate}"
    if frequency_s % rate_s:
        return f"not a whole multiple of the model's TargetSamplingRate {sampling_rate}"
    return None


def _modify(
    state: StateStore, name: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> dict[str, Any] | None:
    """Apply *change* to scheduler *name*'s document with a conditional write (the
    detector engine's compare-and-set on the document's version), reading it again and
    deciding again when another writer came first. *change* gets a copy ({} when absent)
    and returns the document to store, or None to store nothing; returns what was stored."""
    for _attempt in range(MODIFY_ATTEMPTS):
        stored = state.get_versioned(SCHEDULERS_NS, name)
        doc = change(dict(stored.value) if stored is not None else {})
        if doc is None:
            return None
        try:
            state.put_if_version(
                SCHEDULERS_NS, name, doc, None if stored is None else stored.version
            )
        except VersionConflictError:
            continue
        return doc
    raise VersionConflictError(SCHEDULERS_NS, name, None)


def _set_started(doc: dict[str, Any], now: float) -> dict[str, Any] | None:
    if doc.get("started_at") is not None:
        return None
    return {**doc, "started_at": now}


def _live(claim: Any, now: float) -> bool:
    """A claim that has not lapsed at *now*."""
    return (
        isinstance(claim, dict)
        and isinstance(claim.get("until"), int | float)
        and (claim["until"] > now)
    )


class Scheduler:
    """Runs windows on an injected clock; remembers the last window run in *state*."""

    def __init__(
        self,
        config: SchedulerConfig,
        model: Model,
        input_store: ObjectStore,
        output_store: ObjectStore,
        state: StateStore,
        clock: Clock,
        *,
        claim_clock: Clock | None = None,
        claim_s: float = CLAIM_S,
        arns: ArnScope | None = None,
    ) -> None:
        """*claim_clock* (default: *clock*) and *claim_s* time the claims on windows: a
        claim made at ``claim_clock.now()`` holds for *claim_s* seconds. On Lambda, *clock*
        is the schedule's time and the claims need the wall clock and the invocation's
        remaining time (:mod:`cloud.handlers.inference`). *arns*, where the Region and
        account are known, names each execution's model, version and scheduler by ARN."""
        problem = frequency_problem(config.frequency_s, model.config.sampling_rate)
        if problem:
            raise ConfigError(f"DataUploadFrequency {config.upload_frequency}: {problem}")
        self.config = config
        self.model = model
        self.monitor = Monitor(model)
        self.input_store = input_store
        self.output_store = output_store
        self.state = state
        self.clock = clock
        self.claim_clock = clock if claim_clock is None else claim_clock
        self.claim_s = claim_s
        self.arns = arns
        self.run_id = uuid.uuid4().hex
        """Names this object's claims (one Lambda invocation, or one local process)."""
        if self._doc().get("started_at") is None:
            now = clock.now()
            _modify(state, config.name, lambda doc: _set_started(doc, now))

    # -- state ---------------------------------------------------------------------------

    def _doc(self) -> dict[str, Any]:
        return self.state.get(SCHEDULERS_NS, self.config.name) or {}

    def next_window(self, doc: dict[str, Any] | None = None) -> float:
        """End (epoch s) of the next window to run (after *doc*'s, else the stored one's)."""
        if doc is None:
            doc = self._doc()
        f = self.config.frequency_s
        if doc.get("last_window_end") is not None:
            return float(doc["last_window_end"]) + f
        started = float(doc.get("started_at", self.clock.now()))
        first = window_end(started, f)
        return first + f if first <= started else first

    # -- runs ----------------------------------------------------------------------------

    def run_due(self, *, budget_s: float | None = None) -> list[Execution]:
        """Every window whose wake-up ``W + D`` has come and that has not run yet.

        A STOPPED scheduler runs nothing; started again, it resumes with the first window
        ending after the restart (windows missed while stopped are not run, as in L4E).

        Each window is claimed before it is scored (:meth:`_claim`), so two overlapping
        runs never score the same window: the one that finds another's live claim logs
        that and returns what it ran so far.

        *budget_s* (seconds of the claim clock) bounds the run: after its first window it
        takes no window that, taking as long as the longest so far, would end past the
        budget; the rest wait for the next run. A Lambda invocation gives its remaining
        time less a margin, so it stops between windows instead of being killed in one; a
        run no function timeout stops, such as the CLI's, gives the claim time, so it never
        holds a window longer than its claims promise.
        """
        done: list[Execution] = []
        began = self.claim_clock.monotonic()
        longest = 0.0
        while True:
            if (
                budget_s is not None
                and done
                and self._over_budget(began, longest, budget_s, len(done))
            ):
                break
            w = self._claim()
            if w is None:
                break
            started = self.claim_clock.monotonic()
            try:
                execution = self._execute(datetime.fromtimestamp(w, tz=UTC))
                finished = self._finish(w, execution)
            except BaseException:
                self._release(w)
                raise
            longest = max(longest, self.claim_clock.monotonic() - started)
            done.append(execution)
            if not finished:
                break
        return done

    def _over_budget(self, began: float, longest: float, budget_s: float, ran: int) -> bool:
        """Whether a further window, taking *longest*, would end past *budget_s* from
        *began*; if so and a window is due, that is logged with the *ran* windows run so
        far (the caller stops)."""
        spent = self.claim_clock.monotonic() - began
        if spent + longest <= budget_s:
            return False
        doc = self._doc()
        w = self.next_window(doc)
        if doc.get("status") != "STOPPED" and w + self.config.delay_offset_min * 60 <= (
            self.clock.now()
        ):
            log.warning(
                "%s: %d window%s run in %.0f s of the %.0f s budget; "
                "the next, %s, would take about %.0f s more and is left for the next run",
                self.config.name,
                ran,
                "" if ran == 1 else "s",
                spent,
                budget_s,
                self._window_text(w),
                longest,
            )
        return True

    def _claim(self) -> float | None:
        """Claim the next due window with a conditional write on the scheduler document
        and return its end; None when nothing is due, the scheduler is stopped, or another
        run's claim on it has not lapsed (that is logged)."""
        delay = self.config.delay_offset_min * 60
        seen: dict[str, Any] = {}

        def claim(doc: dict[str, Any]) -> dict[str, Any] | None:
            seen.clear()
            if doc.get("status") == "STOPPED":
                return None
            w = self.next_window(doc)
            if w + delay > self.clock.now():
                return None
            now = self.claim_clock.now()
            held = doc.get(CLAIM)
            seen.update(window=w, held=held)
            if _live(held, now) and held.get("run") != self.run_id:
                return None
            doc[CLAIM] = {"window_end": w, "run": self.run_id, "until": now + self.claim_s}
            return doc

        claimed = _modify(self.state, self.config.name, claim)
        if "window" not in seen:
            return None
        w, held = seen["window"], seen["held"]
        if claimed is None:
            log.warning(
                "%s: %s already claimed by another run; skipped",
                self.config.name,
                self._window_text(w),
            )
            return None
        if isinstance(held, dict) and held.get("run") != self.run_id:
            log.warning(
                "%s: %s: the claim lapsed at %s (its run did not finish); running it again",
                self.config.name,
                self._window_text(w),
                _epoch_iso(held.get("until")),
            )
        return w

    def _window_text(self, w: float) -> str:
        end = datetime.fromtimestamp(w, tz=UTC)
        return f"window {iso(end - timedelta(seconds=self.config.frequency_s))} to {iso(end)}"

    def _finish(self, w: float, execution: Execution) -> bool:
        """Record window *w* as run and drop the claim, only if the claim is still this
        run's; False when it is not (a restart dropped it, or it lapsed and another run
        took the window over), and then the next windows are left to the others."""
        latest = None
        if execution.status == "SUCCESS":
            latest = "ANOMALOUS" if execution.anomalous else "NORMAL"

        def finish(doc: dict[str, Any]) -> dict[str, Any] | None:
            if not self._holds(doc, w):
                return None
            del doc[CLAIM]
            last = doc.get("last_window_end")
            doc["last_window_end"] = w if last is None else max(float(last), w)
            if latest is not None:
                doc["latest_inference_result"] = latest
            return doc

        if _modify(self.state, self.config.name, finish) is None:
            log.warning(
                "%s: %s: this run's claim was dropped or taken over while it ran; the window "
                "is left to the scheduler's state as it is now",
                self.config.name,
                self._window_text(w),
            )
            return False
        return True

    def _release(self, w: float) -> None:
        """Give window *w* back after this run failed on it, so the next run retries it at
        once; if the store cannot be reached either, the claim lapses on its own."""

        def release(doc: dict[str, Any]) -> dict[str, Any] | None:
            if not self._holds(doc, w):
                return None
            del doc[CLAIM]
            return doc

        try:
            _modify(self.state, self.config.name, release)
        except Exception as exc:
            log.warning(
                "%s: %s: claim not released (%s); it lapses after %.0f s",
                self.config.name,
                self._window_text(w),
                exc,
                self.claim_s,
            )

    def drop_claims(self) -> None:
        """Forget any run's claim on this scheduler's windows. Only for a caller that knows
        it is the sole runner of this state (``plantwatch up`` holds its data folder's
        ``stack.lock``): a claim it finds at start was left by a process that is gone, and
        its window is run at once instead of after the claim time."""

        def drop(doc: dict[str, Any]) -> dict[str, Any] | None:
            held = doc.pop(CLAIM, None)
            if held is None:
                return None
            log.info(
                "%s: a claim left by a run that is gone (window end %s) dropped",
                self.config.name,
                _epoch_iso(held.get("window_end") if isinstance(held, dict) else None),
            )
            return doc

        _modify(self.state, self.config.name, drop)

    def _holds(self, doc: dict[str, Any], w: float) -> bool:
        held = doc.get(CLAIM)
        return (
            isinstance(held, dict)
            and held.get("run") == self.run_id
            and held.get("window_end") == w
        )

    def run_window(self, window_end: datetime) -> Execution:
        """Run the window ``(E - F, E]`` now, record the execution and return it.

        *E* must be one of the scheduler's own window ends, a multiple of ``F`` (§3: runs
        at each multiple of F past the hour): any other window would write a
        ``DataStartTime`` folder overlapping two real ones, their rows twice over.

        A window run by hand is not claimed and does not move the scheduled runs.
        """
        if window_end.tzinfo is None:  # naive is UTC, as in the names (not the machine's zone)
            window_end = window_end.replace(tzinfo=UTC)
        end = window_end.astimezone(UTC)
        f = self.config.frequency_s
        if end.timestamp() % f:
            before = datetime.fromtimestamp(end.timestamp() // f * f, tz=UTC)
            raise UserError(
                f"window end {iso(end)}: not a {self.config.upload_frequency} window end of "
                f"scheduler {self.config.name}; the nearest are {iso(before)} and "
                f"{iso(before + timedelta(seconds=f))}"
            )
        execution = self._execute(end)
        if execution.status == "SUCCESS":
            latest = "ANOMALOUS" if execution.anomalous else "NORMAL"
            _modify(
                self.state,
                self.config.name,
                lambda doc: {**doc, "latest_inference_result": latest},
            )
        return execution

    def _execute(self, end: datetime) -> Execution:
        """Score the window ending *end* and store its execution record: ``IN_PROGRESS``
        while it is scored (§6: ListInferenceExecutions shows a running one; a run killed
        mid-window leaves it so until the window runs again), then SUCCESS or FAILED. A run
        that raises puts back the record it found, for the window was not run."""
        start = end - timedelta(seconds=self.config.frequency_s)
        key = execution_key(self.config.name, start)
        found = self.state.get(EXECUTIONS_NS, key)
        try:
            return self._score_window(start, end, key)
        except BaseException:
            with contextlib.suppress(Exception):  # the store may be what failed
                if found is None:
                    self.state.delete(EXECUTIONS_NS, key)
                else:
                    self.state.put(EXECUTIONS_NS, key, found)
            raise

    def _score_window(self, start: datetime, end: datetime, key: str) -> Execution:
        execution = Execution(
            scheduler=self.config.name,
            data_start=start,
            data_end=end,
            scheduled_start=end + timedelta(minutes=self.config.delay_offset_min),
            status="IN_PROGRESS",
            failed_reason=None,
            result_key=None,
            model_name=self.config.model_name,
        )
        self._name_model(execution)
        self.state.put(EXECUTIONS_NS, key, execution.to_record())
        try:
            files = self.window_files(start, end, execution.skipped)
            execution.input_files = sum(len(found) for found in files.values())
            keys, anomalous, rows = self._score(files, start, end, execution)
        except _MissingData as exc:
            reason = str(exc)
            if execution.dropped_rows:  # why a file that is there gave no row
                reason += ". Rows left out: " + "; ".join(
                    f"{d['key']}: {d['reason']}" for d in execution.dropped_rows
                )
            execution.status, execution.failed_reason = "FAILED", reason[:5000]
            execution.failed_components += tuple(
                c for c in exc.components if c not in execution.failed_components
            )  # a component whose files were all unreadable is listed once
        except UserError as exc:
            execution.status, execution.failed_reason = "FAILED", str(exc)[:5000]
        except PlantwatchError as exc:
            execution.status = "FAILED"
            execution.failed_reason = f"Internal error: {exc}"[:5000]
        else:
            execution.status = "SUCCESS"
            execution.result_keys = tuple(keys)
            execution.result_key = keys[0] if keys else None
            execution.anomalous, execution.rows = anomalous, rows
        self.state.put(EXECUTIONS_NS, key, execution.to_record())
        return execution

    def _name_model(self, execution: Execution) -> None:
        """The model version this run scores with (the registry's, as the model was
        loaded) and, where the scope is known, the ARNs of the summary (§6)."""
        version = self.model.info.get("version")
        if type(version) is not int:  # a model not loaded from a registry
            return
        execution.model_version = version
        if self.arns is not None:
            name = self.config.model_name
            execution.model_arn = self.arns.model(name)
            execution.model_version_arn = self.arns.model_version(name, version)
            execution.scheduler_arn = self.arns.inference_scheduler(self.config.name)

    def window_files(
        self, start: datetime, end: datetime, misnamed: list[dict[str, str]] | None = None
    ) -> dict[str, list[tuple[datetime, str]]]:
        """Per component, the ``(name time, key)`` of each input object the §4 Choice
        selects for the window ``(start, end]``, restricted to the model's components.

        A key that is no input file name of this scheduler but would be selected if it
        were (an upper-case ``.CSV``, an EPOCH in milliseconds) is not read either; it is
        appended to *misnamed* with the reason, so that a run that succeeds on the other
        components still says why that file was left out."""
        f = timedelta(seconds=self.config.frequency_s)
        lo, hi = start - f, end + f
        files: dict[str, list[tuple[datetime, str]]] = {}
        prefix = self.config.input_prefix
        wanted = set(self.model.components) or None
        for key in self.input_store.list(prefix):
            parsed = self.config.naming.parse(key, prefix)
            if parsed and lo <= parsed[1] <= hi and (wanted is None or parsed[0] in wanted):
                files.setdefault(parsed[0], []).append((parsed[1], key))
            elif misnamed is not None:
                reason = self._misnamed(key, lo, hi, wanted)
                if reason:
                    _skip(misnamed, key, UserError(reason))
        return files

    def _misnamed(self, key: str, lo: datetime, hi: datetime, wanted: set[str] | None) -> str:
        """Why *key*, not read, looks like an input file of the window ``[lo, hi]``; or ''."""
        prefix, naming = self.config.input_prefix, self.config.naming
        if not key.startswith(prefix) or "/" in key[len(prefix) :]:
            return ""
        name = key[len(prefix) :]
        if name[-4:].lower() == ".csv" and not name.endswith(".csv"):
            parsed = naming.parse(f"{key[:-4]}.csv", prefix)
            if parsed and lo <= parsed[1] <= hi and (wanted is None or parsed[0] in wanted):
                return f"named {name[-4:]!r}, not '.csv': not read (names are case-sensitive)"
        if naming.timestamp_format == "EPOCH" and name.endswith(".csv"):
            match = re.fullmatch(
                rf"(?P<c>.+?){re.escape(naming.delimiter)}(?P<t>[0-9]{{13}})\.csv", name
            )
            if match and COMPONENT_RE.fullmatch(match["c"]):
                at = datetime.fromtimestamp(int(match["t"]) / 1000, tz=UTC)
                if lo <= at <= hi and (wanted is None or match["c"] in wanted):
                    return (
                        "EPOCH in milliseconds, not seconds: not read (the name's "
                        f"{match['t']} would be {iso(at)})"
                    )
        return ""

    def read_window(
        self,
        start: datetime,
        end: datetime,
        skipped: list[dict[str, str]] | None = None,
        files: dict[str, list[tuple[datetime, str]]] | None = None,
        dropped: list[dict[str, str]] | None = None,
        invalid: list[dict[str, str]] | None = None,
        outside: dict[str, list[str]] | None = None,
        blank: dict[str, list[str]] | None = None,
    ) -> dict[str, pd.DataFrame]:
        """Rows ``start < t <= end`` per component, from the files the §4 Choice selects
        (*files*, as :meth:`window_files` lists them, when the caller has them already).

        A file that cannot be read is left out and appended to *skipped* with its reason;
        a file with rows whose time cannot be read, to *dropped* with their count; a file
        with cells that are no finite number (gaps now), to *invalid* with their count.
        Where a component's files hold rows but none in the window, *outside* gets, per
        component, each such file with its rows' span (why a run that read them failed).

        A component whose rows in the window hold no reading at all (every cell blank or no
        finite number) has no data there (§4 Choice 3): it is left out like one with no
        row, rather than scored on the model's fill values, and *blank* gets each of its
        files with the span of those rows.
        """
        if files is None:
            files = self.window_files(start, end)
        lo_ts, hi_ts = pd.Timestamp(start), pd.Timestamp(end)
        frames: dict[str, pd.DataFrame] = {}
        for component, found in sorted(files.items()):
            parts = []
            spans: list[tuple[str, pd.DatetimeIndex]] = []
            for _, key in sorted(found):
                try:
                    with _opened(self.input_store, key) as source:
                        parsed = read_csv(source, key, component=component)
                except Exception as exc:  # one unreadable object must not fail the others
                    _skip(skipped, key, exc)
                    continue
                parts.append(to_microseconds(parsed.frame))
                if not parsed.frame.empty:
                    spans.append((key, parsed.frame.index))
                if parsed.invalid_values and invalid is not None:
                    invalid.append({"key": key, "reason": _invalid_reason(parsed.invalid_values)})
                if parsed.unsupported_timestamps and dropped is not None:
                    n = parsed.unsupported_timestamps
                    dropped.append(
                        {
                            "key": key,
                            "reason": f"{n} row{'s' if n > 1 else ''} whose timestamp is in "
                            "no supported format left out",
                        }
                    )
            if not parts:
                continue
            frame = merge(parts)
            frame = frame[(frame.index > lo_ts) & (frame.index <= hi_ts)]
            if frame.notna().to_numpy().any():
                frames[component] = frame
            elif not frame.empty:
                if blank is not None:
                    blank[component] = [
                        f"{_span(key, inside)}, every cell blank or no finite number"
                        for key, index in spans
                        if len(inside := index[(index > lo_ts) & (index <= hi_ts)])
                    ]
            elif spans and outside is not None:
                outside[component] = [_span(key, index) for key, index in spans]
        return frames

    def _score(
        self,
        files: dict[str, list[tuple[datetime, str]]],
        start: datetime,
        end: datetime,
        execution: Execution,
    ) -> tuple[list[str], bool, int]:
        skipped = execution.skipped
        outside: dict[str, list[str]] = {}
        blank: dict[str, list[str]] = {}
        frames = self.read_window(
            start,
            end,
            skipped,
            files,
            execution.dropped_rows,
            execution.invalid_values,
            outside,
            blank,
        )
        unreadable = {entry["key"]: entry["reason"] for entry in skipped}
        execution.failed_components += tuple(
            c for c, found in sorted(files.items()) if all(k in unreadable for _, k in found)
        )
        unread = {
            c: [unreadable[k] for _, k in sorted(found) if k in unreadable]
            for c, found in sorted(files.items())
        }
        out = self.config.output_prefix
        if self.model.is_template:
            for c in sorted(blank):  # files, but no data: named, as an unreadable one is
                execution.failed_components += (c,)
                skipped.append(
                    {
                        "key": c,
                        "reason": ("no reading in the window: " + "; ".join(blank[c]))[:1000],
                    }
                )
            if not frames:
                read = [span for c in sorted(outside) for span in outside[c]]
                raise _MissingData(
                    self._missing_reason(
                        "any component",
                        start,
                        end,
                        read,
                        [r for c in unread for r in unread[c]],
                        [span for c in sorted(blank) for span in blank[c]],
                    )
                )
            written, unfit = [], []
            for c in sorted(frames):
                try:
                    written.append(
                        self._write(
                            frames[c], self.model.sensor_names(c), results_key(out, start, c), c
                        )
                    )
                except UserError as exc:  # another kind of asset under the same prefix
                    unfit.append(f"{c}: {exc}")
                    execution.failed_components += (c,)
                except Exception as exc:  # one component's bad data must not fail the rest
                    unfit.append(f"{c}: {exc}")
                    execution.failed_components += (c,)
                    _skip(skipped, c, exc)
            if not written:
                raise UserError("no component fits the model: " + "; ".join(unfit))
        else:
            for component in self.model.components:
                if component not in frames:
                    raise _MissingData(
                        self._missing_reason(
                            component,
                            start,
                            end,
                            outside.get(component),
                            unread.get(component),
                            blank.get(component),
                        ),
                        components=(component,),
                    )
            frame = merge(prefixed(frames[c], c) for c in self.model.components)
            written = [self._write(frame, self.model.sensors, results_key(out, start))]
        keys = [k for k, _, _ in written]
        return keys, any(a for _, a, _ in written), sum(n for _, _, n in written)

    def _write(
        self, frame: pd.DataFrame, names: tuple[str, ...], key: str, asset: str | None = None
    ) -> tuple[str, bool, int]:
        result = self._watch(
            frame,
            asset,
            lambda r: self.output_store.put(key, encode_results(result_lines(r, names))),
        )
        return key, bool(result.prediction.any()), len(result.index)

    def _watch(
        self, frame: pd.DataFrame, asset: str | None, store: Callable[[ScoreResult], None]
    ) -> ScoreResult:
        """Score one asset's rows as the continuation of its earlier windows, hand the
        result to *store*, and only then keep the asset's new state."""
        key = self.config.name if asset is None else f"{self.config.name}/{asset}"
        index, x, off = self.model.prepare(frame)
        state = self._monitor_state(key)
        stale = state is not None and (
            not len(index) or (state.through is not None and state.through >= index[0].timestamp())
        )
        out = self.monitor.score_arrays(index, x, off, None if stale else state)
        store(out.result)
        if not stale:
            self.state.put(MONITORS_NS, key, {"model": self._fingerprint(), **out.state.to_dict()})
        return out.result

    def _monitor_state(self, key: str) -> MonitorState | None:
        doc = self.state.get(MONITORS_NS, key)
        if doc is None or doc.get("model") != self._fingerprint():
            return None
        return MonitorState.from_dict(doc, len(self.model.sensors))

    def _fingerprint(self) -> str:
        """Tells this model's state from another's (a new version, other sensors): a new
        version, even one trained on the same data, starts its own series rather than carry
        on an alarm the old one raised."""
        version = self.model.info.get("version")
        return (
            f"{self.config.model_name}:{version!r}:{self.model.threshold!r}:"
            f"{len(self.model.sensors)}"
        )

    def _missing_reason(
        self,
        component: str,
        start: datetime,
        end: datetime,
        read: list[str] | None = None,
        unread: list[str] | None = None,
        blank: list[str] | None = None,
    ) -> str:
        """L4E's FailedReason, then what a user needs beside it: the files that were read
        but hold no row in the range (*read*, with their rows' span), those whose rows in
        the range hold no reading (*blank*), why the files that could not be read were not
        (*unread*), and the keys that look meant for the component but are not read."""
        f = timedelta(seconds=self.config.frequency_s)
        naming, prefix = self.config.naming, self.config.input_prefix
        shown = component if component != "any component" else "<component>"
        first = f"{prefix}{shown}{naming.delimiter}{naming.format_timestamp(start - f)}"
        last = f"{prefix}{shown}{naming.delimiter}{naming.format_timestamp(end + f)}"
        reason = (
            f"Could not find data file for sensor {component} within expected range of "
            f"({iso(start)}, {iso(end)}]. Please ensure data is present for all sensors of "
            f"the machine under prefix '{first}' ~ '{last}'"
        )
        if read:
            more = len(read) - NEAR_MISSES_SHOWN
            reason += (
                ". Read, but no row in that range: "
                + "; ".join(read[:NEAR_MISSES_SHOWN])
                + (f" and {more} more" if more > 0 else "")
                + " (row times are UTC unless they name a zone)"
            )
        if blank:
            more = len(blank) - NEAR_MISSES_SHOWN
            reason += (
                ". Read, but no reading in that range: "
                + "; ".join(blank[:NEAR_MISSES_SHOWN])
                + (f" and {more} more" if more > 0 else "")
            )
        if unread:
            more = len(unread) - NEAR_MISSES_SHOWN
            reason += (
                ". Not readable: "
                + "; ".join(unread[:NEAR_MISSES_SHOWN])
                + (f" and {more} more" if more > 0 else "")
            )
        near = self.near_misses(None if component == "any component" else component)
        if near:
            more = len(near) - NEAR_MISSES_SHOWN
            reason += (
                f". Under the prefix but not named {prefix}{shown}{naming.delimiter}"
                f"<{naming.timestamp_format}>.csv, so not read: "
                + ", ".join(repr(k) for k in near[:NEAR_MISSES_SHOWN])
                + (f" and {more} more" if more > 0 else "")
            )
        return reason

    def near_misses(self, component: str | None) -> list[str]:
        """Keys under the input prefix that look meant for *component* (for any component
        if None) but are no input file name of this scheduler: another delimiter or
        timestamp format, ``.CSV``, ``.csv.gz``, a millisecond EPOCH, a subfolder, the
        component in another case (``Pump_...``: names are case-sensitive). They are
        never read; a failed run names them, since a user moving a bucket over otherwise
        sees only "could not find"."""
        prefix, naming = self.config.input_prefix, self.config.naming
        wanted = set(self.model.components)
        found = []
        for key in self.input_store.list(prefix):
            name = key[len(prefix) :]
            if ".csv" not in name.lower() or not name.lower().startswith((component or "").lower()):
                continue
            parsed = naming.parse(key, prefix)
            if parsed is None or (wanted and parsed[0] not in wanted):
                found.append(key)
        return found


WHOLE_READ_BYTES = 16 << 20
"""An input object up to this size is read into memory at once (the faster path for the
usual few-kilobyte window file); a larger one is parsed from the file a chunk at a time."""


@contextmanager
def _opened(store: ObjectStore, key: str) -> Iterator[bytes | BinaryIO]:
    """The object's bytes, or for a large object in a store that can hand over a file,
    the file, so it is read a chunk at a time (l4e-contracts §1.4: up to 5 GB per CSV)."""
    if not isinstance(store, FileObjectStore):
        yield store.get(key)
        return
    with store.open_file(key) as handle:
        size = handle.seek(0, io.SEEK_END)
        handle.seek(0)
        yield handle.read() if size <= WHOLE_READ_BYTES else handle


def _span(key: str, index: pd.DatetimeIndex) -> str:
    """``key: N rows from A to B``: where a file's rows are, for a window they missed."""
    n = len(index)
    first, last = (iso(t.to_pydatetime()) for t in (index.min(), index.max()))
    return f"{key}: {n} row{'s' if n > 1 else ''} from {first} to {last}"


def _skip(skipped: list[dict[str, str]] | None, key: str, exc: Exception) -> None:
    reason = str(exc) if isinstance(exc, PlantwatchError) else f"{type(exc).__name__}: {exc}"
    log.warning("%s: left out of the window: %s", key, reason)
    if skipped is not None:
        skipped.append({"key": key, "reason": reason[:1000]})


class _MissingData(PlantwatchError):
    """A required component has no row in the window."""

    def __init__(self, message: str, components: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.components = components


def list_executions(
    state: StateStore, scheduler: str | None = None, status: str | None = None
) -> list[Execution]:
    """Newest first (by DataStartTime), as ``ListInferenceExecutions``."""
    found = []
    for key, doc in state.items(EXECUTIONS_NS):
        if scheduler is not None and not key.startswith(f"{scheduler}/"):
            continue
        if status is not None and doc.get("status") != status:
            continue
        found.append(Execution.from_dict(doc))
    found.sort(key=lambda e: (e.data_start, e.scheduler), reverse=True)
    return found


# -- lifecycle (CreateInferenceScheduler, Start/Stop/Describe/List/Delete) -----------------


def create_scheduler(state: StateStore, config: SchedulerConfig, now: float) -> dict[str, Any]:
    """Register and start a scheduler (L4E starts one on creation).

    L4E allows one scheduler per model. plantwatch allows one per model and input location,
    so a fleet model can score each site's folder (:mod:`cloud.l4e.sites`) with its own
    scheduler; two schedulers of one model on the same input still conflict.
    """
    if state.get(SCHEDULERS_NS, config.name) is not None:
        raise ConflictError(f"scheduler {config.name!r} already exists")
    where = (config.input_bucket, config.input_prefix)
    for name, doc in state.items(SCHEDULERS_NS):
        other = doc.get("config", {})
        if other.get("model_name") == config.model_name and where == (
            other.get("input_bucket"),
            other.get("input_prefix"),
        ):
            raise ConflictError(
                f"model {config.model_name!r} already has scheduler {name!r} on "
                f"{config.input_bucket}/{config.input_prefix} (one per model and input prefix)"
            )
    doc = {"config": config.to_dict(), "status": "RUNNING", "created_at": now, "started_at": now}
    state.put(SCHEDULERS_NS, config.name, doc)
    return doc


def scheduler_doc(state: StateStore, name: str) -> dict[str, Any]:
    doc = state.get(SCHEDULERS_NS, name)
    if doc is None or "config" not in doc:
        raise NotFoundError(f"scheduler {name!r}: not found")
    return doc


def load_config(state: StateStore, name: str) -> SchedulerConfig:
    return SchedulerConfig.from_dict(scheduler_doc(state, name)["config"])


def start_scheduler(state: StateStore, name: str, now: float) -> dict[str, Any]:
    """Start a stopped scheduler: it runs the windows ending after *now*. A claim a run
    still holds is dropped, so that run's window does not count as the restart's."""
    scheduler_doc(state, name)  # NotFoundError for a name that is no scheduler

    def start(doc: dict[str, Any]) -> dict[str, Any] | None:
        if "config" not in doc or doc.get("status") == "RUNNING":
            return None
        doc.update(status="RUNNING", started_at=now, last_window_end=None)
        doc.pop(CLAIM, None)
        return doc

    return _modify(state, name, start) or scheduler_doc(state, name)


def stop_scheduler(state: StateStore, name: str) -> dict[str, Any]:
    """Stop a scheduler; a window being scored finishes and is recorded, none runs after."""
    scheduler_doc(state, name)

    def stop(doc: dict[str, Any]) -> dict[str, Any] | None:
        return {**doc, "status": "STOPPED"} if "config" in doc else None

    stopped = _modify(state, name, stop)
    if stopped is None:
        raise NotFoundError(f"scheduler {name!r}: not found")
    return stopped


def delete_scheduler(state: StateStore, name: str) -> None:
    doc = scheduler_doc(state, name)
    if doc.get("status") == "RUNNING":
        raise ConflictError(f"scheduler {name!r} is RUNNING; stop it before deleting")
    state.delete(SCHEDULERS_NS, name)


def data_configuration(config: SchedulerConfig) -> dict[str, Any]:
    """``DataInputConfiguration`` and ``DataOutputConfiguration`` as L4E shows them, in a
    scheduler's description and in each of its executions' summaries."""
    naming = config.naming
    return {
        "DataInputConfiguration": {
            "S3InputConfiguration": {"Bucket": config.input_bucket, "Prefix": config.input_prefix},
            "InputTimeZoneOffset": naming.tz_offset,
            "InferenceInputNameConfiguration": {
                "TimestampFormat": naming.timestamp_format,
                "ComponentTimestampDelimiter": naming.delimiter,
            },
        },
        "DataOutputConfiguration": {
            "S3OutputConfiguration": {
                "Bucket": config.output_bucket,
                "Prefix": config.output_prefix,
            }
        },
    }


def describe_scheduler(state: StateStore, name: str) -> dict[str, Any]:
    """``DescribeInferenceScheduler``-shaped summary."""
    doc = scheduler_doc(state, name)
    config = SchedulerConfig.from_dict(doc["config"])
    last = doc.get("last_window_end")
    return {
        "InferenceSchedulerName": config.name,
        "ModelName": config.model_name,
        "Status": doc.get("status", "PENDING"),
        "DataUploadFrequency": config.upload_frequency,
        "DataDelayOffsetInMinutes": config.delay_offset_min,
        **data_configuration(config),
        "LatestInferenceResult": doc.get("latest_inference_result"),
        "CreatedAt": _epoch_iso(doc.get("created_at")),
        "StartedAt": _epoch_iso(doc.get("started_at")),
        "LastWindowEnd": _epoch_iso(last),
    }


def _epoch_iso(value: Any) -> str | None:
    """*value* as an ISO time for a log line; None for what no date can show (a damaged
    claim must not stop the run that reports it)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return iso(datetime.fromtimestamp(float(value), tz=UTC))
    except (ValueError, OverflowError, OSError):
        return None
