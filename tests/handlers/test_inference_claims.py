"""Two inference invocations of one scheduler at once (EventBridge Scheduler delivers at
least once), over the state table in DynamoDB: the window is scored, logged and counted
once; the other invocation logs that it skipped it. A claim left by an invocation that timed
out lapses with the invocation's remaining time, and the next invocation scores the window."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from aws_support import REGION, AtomicRequests, LambdaContext, create_state_table
from moto import mock_aws

from cloud.adapters.aws import DynamoDbStateStore
from cloud.adapters.local import InMemoryObjectStore
from cloud.handlers import inference as inference_handler
from cloud.handlers.inference import CLAIM_MARGIN_S, STOP_MARGIN_S
from cloud.handlers.observability import Observability
from cloud.inference.model import train
from cloud.inference.registry import ModelRegistry
from cloud.inference.scheduler import (
    SCHEDULERS_NS,
    SchedulerConfig,
    create_scheduler,
    list_executions,
)
from cloud.l4e.sites import SiteLayout
from edge.clock import ManualClock

T0 = 1_767_596_400  # 2026-01-05T07:00:00Z
TABLE = "pw-state"
SCHEDULER = SchedulerConfig(name="pumps-scheduler", model_name="pumps")
COLUMNS = ("flow", "motor_current", "pressure", "temperature")


def frame(start: str, rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    load = np.where((np.arange(rows) // 200) % 2 == 1, 80.0, 40.0) + rng.normal(0, 2, rows)
    values = {
        "flow": 3.0 * load + rng.normal(0, 2.0, rows),
        "motor_current": 0.2 * load + rng.normal(0, 0.3, rows),
        "pressure": 0.05 * load + 1.0 + rng.normal(0, 0.05, rows),
        "temperature": 40 + 0.1 * load + rng.normal(0, 0.5, rows),
    }
    index = pd.date_range(start, periods=rows, freq="30s", tz="UTC")
    return pd.DataFrame(values, index=index)


class _Overlapped(InMemoryObjectStore):
    """The input bucket; its first listing runs *during* first (an invocation overlapping
    the one that is listing)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        super().__init__()
        self.objects = objects
        self.during: Callable[[], None] | None = None

    def list(self, prefix: str = "") -> Iterator[str]:
        during, self.during = self.during, None
        if during is not None:
            during()
        return super().list(prefix)


class _Killable:
    """The state table as an invocation sees it; once killed, every call fails."""

    def __init__(self, inner: DynamoDbStateStore) -> None:
        self.inner = inner
        self.dead = False

    def __getattr__(self, name: str) -> Any:
        if self.dead:
            raise ConnectionError("Task timed out after 300.00 seconds")
        return getattr(self.inner, name)


@pytest.fixture
def table() -> Iterator[DynamoDbStateStore]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_state_table(client, TABLE)
        state = DynamoDbStateStore(TABLE, AtomicRequests(client))
        create_scheduler(state, SCHEDULER, float(T0))
        yield state


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    registry = ModelRegistry(InMemoryObjectStore(), "models/")
    registry.save("pumps", train(frame("2026-01-01", 3000, 5).add_prefix("pump-01\\")))
    return registry


def objects() -> dict[str, bytes]:
    """pump-01's files of the windows ending 07:05 and 07:10."""
    live = frame("2026-01-05 07:00:30", 20, 17)
    found = {}
    for end, part in (("070500", live.iloc[:10]), ("071000", live.iloc[10:])):
        text = part.to_csv(date_format="%Y-%m-%dT%H:%M:%S.%f", index_label="Timestamp")
        found[f"input/pump-01_20260105{end}.csv"] = text.encode()
    return found


class _Invocation:
    def __init__(
        self,
        state: Any,
        input_store: InMemoryObjectStore,
        registry: ModelRegistry,
        context: Any = None,
        **kwargs: Any,
    ) -> None:
        self.lines: list[dict[str, Any]] = []
        self.context = LambdaContext() if context is None else context
        self.handle = inference_handler.make_handler(
            state=state,
            input_store=input_store,
            output_store=InMemoryObjectStore(),
            registry=registry,
            observability=Observability(),
            sites=SiteLayout(default_site="plant-a"),
            **kwargs,
        )

    def __call__(self, time: str) -> dict[str, Any]:
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                return self.handle({"scheduler": SCHEDULER.name, "time": time}, self.context)
        finally:
            self.lines += [json.loads(x) for x in out.getvalue().splitlines() if x]

    def logged(self, message: str) -> list[dict[str, Any]]:
        return [x for x in self.lines if x.get("message") == message]

    def executions_counted(self) -> float:
        return sum(sum(x.get("InferenceExecutions", [])) for x in self.lines if "_aws" in x)


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the scheduler logged (not the handler's structured lines)."""
    return [r.getMessage() for r in caplog.records if r.name == "cloud.inference.scheduler"]


def test_an_overlapping_invocation_skips_the_window_and_counts_nothing(
    table: DynamoDbStateStore, registry: ModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """The 07:06 schedule's invocation, delivered late, is scoring the window ending 07:05
    when the 07:11 one starts: the claims are timed on the wall clock, not on the events'
    times, so the later invocation sees the claim, skips, and counts and logs no execution."""
    a_input, b_input = _Overlapped(objects()), _Overlapped(objects())
    a = _Invocation(table, a_input, registry)
    b = _Invocation(table, b_input, registry)
    overlapping: list[dict[str, Any]] = []
    a_input.during = lambda: overlapping.append(b("2026-01-05T07:11:00Z"))
    with caplog.at_level(logging.WARNING, logger="cloud.inference.scheduler"):
        response = a("2026-01-05T07:06:00Z")
    assert response["executions"] == [
        {"data_start_time": "2026-01-05T07:00:00Z", "status": "SUCCESS"}
    ]
    assert overlapping == [{"scheduler": SCHEDULER.name, "executions": []}]
    assert said(caplog) == [
        "pumps-scheduler: window 2026-01-05T07:00:00Z to 2026-01-05T07:05:00Z already claimed "
        "by another run; skipped"
    ]
    assert (b.logged("execution"), b.logged("window"), b.executions_counted()) == ([], [], 0)
    assert [x["data_start_time"] for x in a.logged("execution")] == ["2026-01-05T07:00:00Z"]
    assert len(a.logged("window")) == 1 and a.executions_counted() == 1
    assert table.get(SCHEDULERS_NS, SCHEDULER.name)["last_window_end"] == T0 + 300

    # the next delivery runs the window left, once
    assert b("2026-01-05T07:11:00Z")["executions"] == [
        {"data_start_time": "2026-01-05T07:05:00Z", "status": "SUCCESS"}
    ]
    assert [e.data_start.minute for e in list_executions(table, SCHEDULER.name)] == [5, 0]
    assert table.get(SCHEDULERS_NS, SCHEDULER.name)["last_window_end"] == T0 + 600


def test_a_timed_out_invocations_claim_lapses_with_its_remaining_time(
    table: DynamoDbStateStore, registry: ModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """An invocation killed by its timeout (LambdaContext: 60 s left) holds the window no
    longer than those 60 s and the margin: a retry before then skips it, one after scores
    it."""
    wall = ManualClock(T0 + 400)
    killable = _Killable(table)
    dying_input = _Overlapped(objects())
    dying = _Invocation(killable, dying_input, registry, claim_clock=wall)

    def timed_out() -> None:
        killable.dead = True
        raise ConnectionError("Task timed out after 300.00 seconds")

    dying_input.during = timed_out
    with pytest.raises(ConnectionError):
        dying("2026-01-05T07:06:00Z")
    claim = table.get(SCHEDULERS_NS, SCHEDULER.name)["claim"]
    assert claim["until"] == T0 + 400 + 60 + CLAIM_MARGIN_S

    retry = _Invocation(table, _Overlapped(objects()), registry, claim_clock=wall)
    wall.advance(60 + CLAIM_MARGIN_S - 1)
    with caplog.at_level(logging.WARNING, logger="cloud.inference.scheduler"):
        assert retry("2026-01-05T07:06:00Z")["executions"] == []
    assert "already claimed by another run; skipped" in said(caplog)[-1]
    wall.advance(1)
    assert retry("2026-01-05T07:06:00Z")["executions"] == [
        {"data_start_time": "2026-01-05T07:00:00Z", "status": "SUCCESS"}
    ]
    assert "claim lapsed" in said(caplog)[-1]
    assert len(retry.logged("execution")) == 1 and retry.executions_counted() == 1
    doc = table.get(SCHEDULERS_NS, SCHEDULER.name)
    assert doc["last_window_end"] == T0 + 300 and "claim" not in doc


class _ShortContext(LambdaContext):
    """An invocation with *seconds* left before its timeout."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds * 1000)


class _Slow(_Overlapped):
    """The input bucket, on which each window takes *seconds* of the wall clock *clock* (the
    scheduler lists it once per window)."""

    def __init__(self, objects: dict[str, bytes], clock: ManualClock, seconds: float) -> None:
        super().__init__(objects)
        self.clock = clock
        self.seconds = seconds

    def list(self, prefix: str = "") -> Iterator[str]:
        self.clock.advance(self.seconds)
        return super().list(prefix)


def test_an_invocation_stops_between_windows_before_its_timeout(
    table: DynamoDbStateStore, registry: ModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """Three windows are due and the invocation has 40 s left. It keeps
    :data:`STOP_MARGIN_S` of them to write its state and report, and takes no window that,
    taking as long as the longest so far, would end past the rest: it stops between windows
    instead of being killed in one (which would leave it IN_PROGRESS and claimed), says
    what it leaves, and the next invocation runs it."""
    left = 40.0
    window_s = (left - STOP_MARGIN_S) * 0.45  # two windows fit in the budget, three do not
    wall = ManualClock(T0 + 960)
    found = objects()
    later = frame("2026-01-05 07:10:30", 10, 19)
    text = later.to_csv(date_format="%Y-%m-%dT%H:%M:%S.%f", index_label="Timestamp")
    found["input/pump-01_20260105071500.csv"] = text.encode()
    run = _Invocation(
        table, _Slow(found, wall, window_s), registry, _ShortContext(left), claim_clock=wall
    )
    began = wall.monotonic()
    with caplog.at_level(logging.WARNING, logger="cloud.inference.scheduler"):
        response = run("2026-01-05T07:16:00Z")
    assert [e["data_start_time"] for e in response["executions"]] == [
        "2026-01-05T07:00:00Z",
        "2026-01-05T07:05:00Z",
    ]
    assert wall.monotonic() - began <= left - STOP_MARGIN_S
    assert said(caplog) == [
        f"pumps-scheduler: 2 windows run in {2 * window_s:.0f} s of the "
        f"{left - STOP_MARGIN_S:.0f} s budget; the next, window 2026-01-05T07:10:00Z to "
        f"2026-01-05T07:15:00Z, would take about {window_s:.0f} s more and is left for the "
        "next run"
    ]
    doc = table.get(SCHEDULERS_NS, SCHEDULER.name)
    assert doc["last_window_end"] == T0 + 600 and "claim" not in doc
    assert [e.status for e in list_executions(table, SCHEDULER.name)] == ["SUCCESS"] * 2

    nxt = _Invocation(table, _Overlapped(found), registry, _ShortContext(left), claim_clock=wall)
    assert [e["data_start_time"] for e in nxt("2026-01-05T07:16:00Z")["executions"]] == [
        "2026-01-05T07:10:00Z"
    ]
