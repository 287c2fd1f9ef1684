"""Two runs of one scheduler over one state store (EventBridge Scheduler delivers at least
once, so two Lambda invocations can overlap): each window is claimed with a conditional
write before it is scored, so exactly one run scores it; a claim left by a run that died
lapses, and the window runs again."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import plant_frame

from cloud.adapters.local import InMemoryObjectStore, InMemoryStateStore, SqliteStateStore
from cloud.inference.model import Model, train
from cloud.inference.scheduler import (
    CLAIM_S,
    SCHEDULERS_NS,
    Execution,
    Scheduler,
    SchedulerConfig,
    create_scheduler,
    list_executions,
    start_scheduler,
    stop_scheduler,
)
from cloud.ports import StateStore
from edge.clock import ManualClock

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
HISTORY = plant_frame(rows=3000, start="2025-12-29")
LIVE = plant_frame(rows=120, seed=11, start="2026-01-01")
CONFIG = SchedulerConfig(name="pump-sched", model_name="pump")


def at(hhmm: str) -> float:
    h, m = hhmm.split(":")
    return T0 + int(h) * 3600 + int(m) * 60


def csv_body(first: str, last: str) -> bytes:
    day = "2026-01-01"
    rows = LIVE.loc[
        pd.Timestamp(f"{day} {first}", tz="UTC") : pd.Timestamp(f"{day} {last}", tz="UTC")
    ]
    rows = rows.rename(columns=lambda c: c.removeprefix("pump\\"))
    return rows.to_csv(date_format="%Y-%m-%dT%H:%M:%S.%f", index_label="Timestamp").encode()


@pytest.fixture(scope="module")
def model() -> Model:
    return train(HISTORY)


class _Pausing(InMemoryObjectStore):
    """An input bucket whose first listing runs *during* first (another invocation that
    overlaps this one's run), so two runs interleave deterministically."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        super().__init__()
        self.objects = objects
        self.during: Callable[[], None] | None = None

    def list(self, prefix: str = "") -> Iterator[str]:
        during, self.during = self.during, None
        if during is not None:
            during()
        return super().list(prefix)


class _Watched:
    """A state store that remembers each ``last_window_end`` the scheduler document held
    after a write, and can be made to fail every call (a Lambda killed mid-run)."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.ends: list[float | None] = []
        self.dead = False

    def __getattr__(self, name: str) -> Any:
        if self.dead:
            raise ConnectionError("the invocation was killed")
        method = getattr(self.inner, name)
        if not name.startswith(("put", "delete")):
            return method

        def write(namespace: str, key: str, *args: Any) -> Any:
            result = method(namespace, key, *args)
            if namespace == SCHEDULERS_NS:
                self.ends.append((self.inner.get(namespace, key) or {}).get("last_window_end"))
            return result

        return write


@pytest.fixture(params=["memory", "sqlite"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "memory":
        yield InMemoryStateStore()
        return
    store = SqliteStateStore(tmp_path / "state.db")
    yield store
    store.close()


def _setup(model: Model, state: StateStore) -> tuple[_Watched, dict[str, bytes]]:
    """The scheduler created at 00:02 (its first window ends 00:05), the files of the
    windows ending 00:05 and 00:10 in the bucket."""
    create_scheduler(state, CONFIG, at("00:02"))
    objects = {
        "input/pump_20260101000500.csv": csv_body("00:00", "00:05"),
        "input/pump_20260101001000.csv": csv_body("00:05", "00:10"),
    }
    return _Watched(state), objects


def _run(
    model: Model, state: Any, objects: dict[str, bytes], now: float, **kwargs: Any
) -> tuple[Scheduler, _Pausing]:
    inp = _Pausing(objects)
    out = InMemoryObjectStore()
    return Scheduler(CONFIG, model, inp, out, state, ManualClock(now), **kwargs), inp


def _windows(executions: list[Execution]) -> list[str]:
    return [f"{e.data_end:%H:%M}" for e in executions]


def test_an_overlapping_run_skips_the_window_another_run_has_claimed(
    model: Model, state: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Run A (woken at 00:07, window 00:05 due) is still scoring when run B (woken at
    00:12, windows 00:05 and 00:10 due) starts: B scores nothing and says why; A's window
    is run once, and ``last_window_end`` never moves backwards."""
    watched, objects = _setup(model, state)
    wall = ManualClock(at("00:12"))  # both run now; A was delivered late (its time is 00:07)
    a, a_input = _run(model, watched, objects, at("00:07"), claim_clock=wall)
    b, _ = _run(model, watched, objects, at("00:12"), claim_clock=wall)
    overlapping: list[Execution] = []
    a_input.during = lambda: overlapping.extend(b.run_due())
    with caplog.at_level(logging.INFO, logger="cloud.inference.scheduler"):
        first = a.run_due()
    assert _windows(first) == ["00:05"]
    assert overlapping == []
    skipped = [r.getMessage() for r in caplog.records if "already claimed" in r.getMessage()]
    assert skipped == [
        "pump-sched: window 2026-01-01T00:00:00Z to 2026-01-01T00:05:00Z already claimed by "
        "another run; skipped"
    ]
    ends = [e for e in watched.ends if e is not None]
    assert ends == sorted(ends) and ends[-1] == at("00:05")
    # the next invocation runs what is left, once
    again, _ = _run(model, watched, objects, at("00:12"))
    assert _windows(again.run_due()) == ["00:10"]
    assert _windows(list(reversed(list_executions(state, "pump-sched")))) == ["00:05", "00:10"]
    assert state.get(SCHEDULERS_NS, "pump-sched")["last_window_end"] == at("00:10")
    assert "claim" not in state.get(SCHEDULERS_NS, "pump-sched")


def test_a_claim_left_by_a_killed_run_lapses_after_the_claim_time(
    model: Model, state: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A run killed mid-window (a Lambda timing out: no code of it runs again) leaves its
    claim; an overlapping run skips the window until the claim lapses, then runs it."""
    watched, objects = _setup(model, state)
    claims = ManualClock(at("00:07"))
    dying, dying_input = _run(model, watched, objects, at("00:07"), claim_clock=claims)

    def killed() -> None:
        watched.dead = True
        raise ConnectionError("the invocation was killed")

    dying_input.during = killed
    with pytest.raises(ConnectionError):
        dying.run_due()
    assert state.get(SCHEDULERS_NS, "pump-sched").get("last_window_end") is None

    claims.advance(CLAIM_S - 1)
    retry, _ = _run(model, state, objects, at("00:07"), claim_clock=claims)
    with caplog.at_level(logging.INFO, logger="cloud.inference.scheduler"):
        assert retry.run_due() == []
    assert any("already claimed by another run" in r.getMessage() for r in caplog.records)

    claims.advance(1)
    retry, _ = _run(model, state, objects, at("00:07"), claim_clock=claims)
    with caplog.at_level(logging.INFO, logger="cloud.inference.scheduler"):
        [execution] = retry.run_due()
    assert (f"{execution.data_end:%H:%M}", execution.status) == ("00:05", "SUCCESS")
    assert any("claim lapsed" in r.getMessage() for r in caplog.records)
    doc = state.get(SCHEDULERS_NS, "pump-sched")
    assert doc["last_window_end"] == at("00:05") and "claim" not in doc


def test_the_sole_runner_drops_a_dead_runs_claim_and_runs_the_window_at_once(
    model: Model, state: StateStore
) -> None:
    """``plantwatch up`` holds its data folder's ``stack.lock``, so a claim it finds when it
    starts was left by a process that is gone (killed mid-window): it is dropped at once
    rather than waited out for the claim time."""
    watched, objects = _setup(model, state)
    dying, dying_input = _run(model, watched, objects, at("00:07"))

    def killed() -> None:
        watched.dead = True
        raise ConnectionError("the process was killed")

    dying_input.during = killed
    with pytest.raises(ConnectionError):
        dying.run_due()
    assert "claim" in state.get(SCHEDULERS_NS, "pump-sched")

    restarted, _ = _run(model, state, objects, at("00:07"))
    restarted.drop_claims()
    [execution] = restarted.run_due()
    assert (f"{execution.data_end:%H:%M}", execution.status) == ("00:05", "SUCCESS")
    assert "claim" not in state.get(SCHEDULERS_NS, "pump-sched")


def test_a_run_that_raises_gives_its_window_back_at_once(model: Model, state: StateStore) -> None:
    """An error the run itself sees (the store still answers) releases the claim: the
    next step retries the window at once, as the local runtime always did."""
    _setup(model, state)
    objects = {"input/pump_20260101000500.csv": csv_body("00:00", "00:05")}
    failing, failing_input = _run(model, state, objects, at("00:07"))

    def broken() -> None:
        raise RuntimeError("listing failed")

    failing_input.during = broken
    with pytest.raises(RuntimeError):
        failing.run_due()
    assert "claim" not in state.get(SCHEDULERS_NS, "pump-sched")
    assert _windows(failing.run_due()) == ["00:05"]


def test_a_stop_while_a_window_runs_is_kept_and_a_restart_drops_the_old_claim(
    model: Model, state: StateStore
) -> None:
    """Stopping or starting the scheduler while a run holds a window loses neither write:
    a stop lets the window finish and runs nothing after it; a restart forgets the window
    (it resumes after the restart, as L4E does) and the run's result does not undo it."""
    watched, objects = _setup(model, state)
    run, run_input = _run(model, watched, objects, at("00:12"))
    run_input.during = lambda: stop_scheduler(state, "pump-sched")
    assert _windows(run.run_due()) == ["00:05"]
    doc = state.get(SCHEDULERS_NS, "pump-sched")
    assert (doc["status"], doc["last_window_end"]) == ("STOPPED", at("00:05"))

    start_scheduler(state, "pump-sched", at("00:12"))
    run, run_input = _run(model, watched, objects, at("00:22"))
    run_input.during = lambda: (
        stop_scheduler(state, "pump-sched"),
        start_scheduler(state, "pump-sched", at("00:21")),
    )
    assert _windows(run.run_due()) == ["00:15"]
    doc = state.get(SCHEDULERS_NS, "pump-sched")
    assert doc["last_window_end"] is None and "claim" not in doc
    assert doc["started_at"] == at("00:21")


class _FailingOnce:
    """A state store whose *n*-th conditional write of the scheduler document fails (a
    throttled request), the others going through."""

    def __init__(self, inner: StateStore, n: int) -> None:
        self.inner = inner
        self.left = n

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_if_version(self, namespace: str, key: str, value: Any, version: int | None) -> int:
        if namespace == SCHEDULERS_NS:
            self.left -= 1
            if self.left == 0:
                raise ConnectionError("throttled")
        return self.inner.put_if_version(namespace, key, value, version)


def test_a_window_whose_result_could_not_be_recorded_is_given_back(
    model: Model, state: StateStore
) -> None:
    """The write recording the window fails: the run raises and gives the window back, so
    another run retries it at once rather than after the claim time."""
    _setup(model, state)
    objects = {"input/pump_20260101000500.csv": csv_body("00:00", "00:05")}
    failing, _ = _run(model, _FailingOnce(state, 2), objects, at("00:07"))
    with pytest.raises(ConnectionError):
        failing.run_due()
    doc = state.get(SCHEDULERS_NS, "pump-sched")
    assert "claim" not in doc and doc.get("last_window_end") is None
    other, _ = _run(model, state, objects, at("00:07"))
    assert _windows(other.run_due()) == ["00:05"]


@pytest.mark.parametrize(
    "claim",
    [
        {"window_end": "x", "run": "gone", "until": "junk"},
        {"window_end": 1e300, "run": "gone", "until": 1e300 * -1},
        {"until": True},
        "not a claim",
    ],
)
def test_a_damaged_claim_neither_blocks_nor_stops_the_window(
    model: Model, state: StateStore, claim: Any
) -> None:
    """A claim no run could have written (a hand-edited or damaged document) is not live:
    the window runs, and the lines that name the old claim do not stop the run."""
    _, objects = _setup(model, state)
    doc = state.get(SCHEDULERS_NS, "pump-sched")
    state.put(SCHEDULERS_NS, "pump-sched", {**doc, "claim": claim})
    run, _ = _run(model, state, objects, at("00:07"))
    [execution] = run.run_due()
    assert (f"{execution.data_end:%H:%M}", execution.status) == ("00:05", "SUCCESS")
    restarted, _ = _run(model, state, objects, at("00:07"))
    state.put(
        SCHEDULERS_NS, "pump-sched", {**state.get(SCHEDULERS_NS, "pump-sched"), "claim": claim}
    )
    restarted.drop_claims()
    assert "claim" not in state.get(SCHEDULERS_NS, "pump-sched")


class _Slow(InMemoryObjectStore):
    """An input bucket whose every listing takes *seconds* of *clock*'s time: each window
    of the run takes that long to score."""

    def __init__(self, objects: dict[str, bytes], clock: ManualClock, seconds: float) -> None:
        super().__init__()
        self.objects = objects
        self.clock = clock
        self.seconds = seconds

    def list(self, prefix: str = "") -> Iterator[str]:
        self.clock.advance(self.seconds)
        return super().list(prefix)


def test_a_run_with_a_budget_takes_no_window_it_could_not_finish_in_the_claim_time(
    model: Model, state: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A run off Lambda (the CLI) is not stopped by a function timeout, yet its claims
    lapse after the claim time like an invocation's. Given the claim time as its budget, it
    stops taking windows once the next (taking as long as the longest so far) would end
    past it, and says so; the windows left run on the next run."""
    _, objects = _setup(model, state)
    for end in ("00:15", "00:20"):
        first = f"00:{int(end[3:]) - 5:02d}"
        objects[f"input/pump_20260101{end.replace(':', '')}00.csv"] = csv_body(first, end)
    claims = ManualClock(at("00:22"))
    slow = _Slow(objects, claims, CLAIM_S * 0.4)
    run = Scheduler(
        CONFIG,
        model,
        slow,
        InMemoryObjectStore(),
        state,
        ManualClock(at("00:22")),
        claim_clock=claims,
    )
    with caplog.at_level(logging.INFO, logger="cloud.inference.scheduler"):
        done = run.run_due(budget_s=CLAIM_S)
    assert _windows(done) == ["00:05", "00:10"]
    assert [e.status for e in done] == ["SUCCESS", "SUCCESS"]
    stopped = [r.getMessage() for r in caplog.records if "budget" in r.getMessage()]
    assert stopped == [
        "pump-sched: 2 windows run in 240 s of the 300 s budget; "
        "the next, window 2026-01-01T00:10:00Z to 2026-01-01T00:15:00Z, would take about "
        "120 s more and is left for the next run"
    ]
    assert state.get(SCHEDULERS_NS, "pump-sched")["last_window_end"] == at("00:10")
    assert "claim" not in state.get(SCHEDULERS_NS, "pump-sched")
    assert _windows(run.run_due(budget_s=CLAIM_S)) == ["00:15", "00:20"]


def test_a_run_with_a_budget_always_takes_its_first_window(model: Model, state: StateStore) -> None:
    """However long a window takes, a run scores at least one: a budget smaller than one
    window's time must not leave the scheduler stuck."""
    _, objects = _setup(model, state)
    claims = ManualClock(at("00:12"))
    slow = _Slow(objects, claims, CLAIM_S * 2)
    run = Scheduler(
        CONFIG,
        model,
        slow,
        InMemoryObjectStore(),
        state,
        ManualClock(at("00:12")),
        claim_clock=claims,
    )
    assert _windows(run.run_due(budget_s=CLAIM_S)) == ["00:05"]
    assert _windows(run.run_due()) == ["00:10"]


def test_a_window_being_scored_is_listed_in_progress(model: Model, state: StateStore) -> None:
    """§6: ListInferenceExecutions shows an execution ``IN_PROGRESS`` while it runs (a run
    killed mid-window stays so until its window is run again), then SUCCESS or FAILED."""
    _setup(model, state)
    objects = {"input/pump_20260101000500.csv": csv_body("00:00", "00:05")}
    run, run_input = _run(model, state, objects, at("00:07"))
    seen: list[list[tuple[str, str]]] = []
    run_input.during = lambda: seen.append(
        [(f"{e.data_end:%H:%M}", e.status) for e in list_executions(state, "pump-sched")]
    )
    [execution] = run.run_due()
    assert seen == [[("00:05", "IN_PROGRESS")]]
    listed = list_executions(state, "pump-sched")
    assert [(f"{e.data_end:%H:%M}", e.status) for e in listed] == [("00:05", "SUCCESS")]
    assert listed[0].scheduled_start == execution.scheduled_start


def test_a_run_that_raises_leaves_no_execution_in_progress(model: Model, state: StateStore) -> None:
    """A window given back after an error the run sees is not left IN_PROGRESS: it was
    not run, and a stopped scheduler would never run it again to say otherwise."""
    _setup(model, state)
    objects = {"input/pump_20260101000500.csv": csv_body("00:00", "00:05")}
    failing, failing_input = _run(model, state, objects, at("00:07"))

    def broken() -> None:
        raise RuntimeError("listing failed")

    failing_input.during = broken
    with pytest.raises(RuntimeError):
        failing.run_due()
    assert list_executions(state, "pump-sched") == []
