"""Lambda inference: an EventBridge Scheduler event -> one tick of the L4E scheduler.

The same :class:`~cloud.inference.scheduler.Scheduler` as locally runs every window whose
wake-up (end + delay offset) has come: same §4 input listing, same ``results.jsonl`` layout,
execution records in the state table. The scheduler is the one registered in the state
table under the event's ``{"scheduler": NAME}`` (else ``SCHEDULER_NAME``); its model comes
from the registry in ``ARTIFACTS_BUCKET`` under ``models/``. The event's ``time`` (ISO
8601), when present, is "now": pass ``<aws.scheduler.scheduled-time>`` to run as of the
schedule, not of a late delivery.

Each execution record names the model version it scored with and, in the Region and
account of the function's own ARN, the L4E-shaped ARNs of its model, model version and
scheduler (:mod:`cloud.l4e.arns`).

Per execution an ``execution`` line; per results object (asset and window) a ``window``
line with its counts, highest score and top sensor; per anomalous row a ``result`` line
(the dashboard's per-asset detail); metrics ``ResultRows``, ``AnomalousRows``,
``InferenceExecutions``, ``InferenceFailures`` per site.

EventBridge Scheduler delivers at least once, so two invocations can overlap: each window is
claimed in the state table before it is scored, and an invocation that finds another's claim
logs ``window ... already claimed by another run; skipped`` and returns without error. The
claim is timed on the wall clock (not the event's ``time``: a late delivery has an early
one) and holds for the invocation's remaining time (plus :data:`CLAIM_MARGIN_S`), so a claim
left by an invocation that timed out lapses when it can no longer be running, and the next
invocation scores the window (Powertools' idempotency expires an in-progress record the same
way). An invocation stops taking windows before its timeout: its run's budget is the same
remaining time less :data:`STOP_MARGIN_S`, so it stops between windows (logging the window it
leaves for the next invocation) rather than being killed in one, which would leave that window
``IN_PROGRESS`` and claimed until the claim lapses.

Environment: ``INPUT_BUCKET``, ``OUTPUT_BUCKET``, ``ARTIFACTS_BUCKET``, ``STATE_TABLE``,
``SCHEDULER_NAME`` (optional), ``OUTPUT_PREFIX`` and ``DEFAULT_SITE`` (to name the site a
scheduler serves: one writing to ``OUTPUT_PREFIX`` serves the default site, one writing to
``OUTPUT_PREFIX<site>/`` that site), and the Powertools variables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from cloud.handlers import settings
from cloud.handlers.observability import Metric, Observability
from cloud.inference.registry import ARTIFACTS_PREFIX, ModelRegistry
from cloud.inference.results import RESULTS_FILE
from cloud.inference.scheduler import CLAIM_S, NAME_RE, Execution, Scheduler, iso, load_config
from cloud.l4e.arns import ArnScope
from cloud.l4e.sites import SiteLayout
from cloud.ports import ObjectStore, StateStore
from edge.clock import Clock, SystemClock
from edge.errors import ConfigError, NotFoundError, PlantwatchError

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]
MODELS_PREFIX = ARTIFACTS_PREFIX
CLAIM_MARGIN_S = 5.0
"""Added to the invocation's remaining time: Lambda stops a function shortly after its
timeout, not on the millisecond."""
STOP_MARGIN_S = 10.0
"""Kept back from the invocation's remaining time when deciding whether to take another
window: finishing the last one (its state writes) and the report (reading each results
object and logging its lines) still have to run before the timeout."""


def scheduler_name(event: Mapping[str, Any], default: str | None) -> str:
    name = event.get("scheduler") if isinstance(event, Mapping) else None
    if name is None:
        if default:
            return default
        raise ConfigError('inference event: no "scheduler" field and SCHEDULER_NAME is not set')
    # a malformed schedule Input must not run the default scheduler in its place
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ConfigError(f"inference event: scheduler {name!r}: must match {NAME_RE.pattern}")
    return name


def make_handler(
    *,
    state: StateStore,
    input_store: ObjectStore,
    output_store: ObjectStore,
    registry: ModelRegistry,
    observability: Observability,
    sites: SiteLayout,
    output_prefix: str = "output/",
    default_scheduler: str | None = None,
    claim_clock: Clock | None = None,
) -> Handler:
    """*output_prefix* is the deployment's ``OUTPUT_PREFIX``: a scheduler writing to it
    serves the default site, one writing to ``<output_prefix><site>/`` serves that site.
    *claim_clock* times the claims on windows (the wall clock unless a test gives one)."""
    claims = SystemClock() if claim_clock is None else claim_clock

    def handle(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        name = scheduler_name(event, default_scheduler)
        try:
            config = load_config(state, name)
        except NotFoundError:
            raise ConfigError(
                f"scheduler {name!r}: not registered in the state table "
                "(create it with cloud.inference.scheduler.create_scheduler)"
            ) from None
        except ConfigError as exc:  # a field outside CreateInferenceScheduler's rules
            raise ConfigError(
                f"scheduler {name!r}: its record in the state table is not a scheduler "
                f"config ({exc})"
            ) from None
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ConfigError(
                f"scheduler {name!r}: its record in the state table is not a scheduler "
                f"config ({type(exc).__name__}: {exc})"
            ) from None
        site = _site_of(config.output_prefix, output_prefix, sites)
        try:
            model = registry.load(config.model_name)
        except PlantwatchError:
            # no window can run: counted, so the failures alarm sees it; the windows stay
            # due and run once the model is back
            observability.count(Metric.INFERENCE_FAILURES, site)
            observability.flush()
            raise
        left = _remaining_seconds(context)
        claim_s = CLAIM_S if left is None else left + CLAIM_MARGIN_S
        budget_s = (CLAIM_S if left is None else left) - STOP_MARGIN_S
        scheduler = Scheduler(
            config,
            model,
            input_store,
            output_store,
            state,
            settings.event_clock(event),
            claim_clock=claims,
            claim_s=claim_s,
            arns=ArnScope.from_arn(getattr(context, "invoked_function_arn", None)),
        )
        try:
            executions = scheduler.run_due(budget_s=budget_s)
            for execution in executions:
                _report(execution, config.output_prefix, output_store, observability, site)
        finally:
            observability.flush()
        return {
            "scheduler": name,
            "executions": [
                {"data_start_time": iso(e.data_start), "status": e.status} for e in executions
            ],
        }

    return handle


def _remaining_seconds(context: Any) -> float | None:
    """The invocation's remaining time, in seconds; None without a context that gives a
    plausible one.

    It times both the claims on windows (this time plus :data:`CLAIM_MARGIN_S`: a window
    claimed late in the invocation holds a little past its end, safe, only later retaken)
    and the run's budget (this time less :data:`STOP_MARGIN_S`), so the run ends before
    its claims lapse. Without it, both come from :data:`CLAIM_S` (the function's timeout).
    """
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    try:
        left = float(remaining()) / 1000 if callable(remaining) else None
    except (TypeError, ValueError):
        left = None
    if left is None or not 0 <= left <= 900:  # a Lambda runs at most 15 minutes
        return None
    return left


def _report(
    execution: Execution,
    output_prefix: str,
    output_store: ObjectStore,
    obs: Observability,
    site: str,
) -> None:
    """The execution line; per results object (one asset, one window) a ``window`` summary
    line; a ``result`` line per anomalous row only; and the counts.

    Why not a line per row: at 1,000 assets sampled every second that is 2.6 billion lines
    a month, about $500 of CloudWatch Logs ingestion, the largest item of the bill. The
    dashboard needs every row only as counts (the window lines carry them) and the detail
    of the anomalous ones (their result lines); every row stays in ``results.jsonl``.
    """
    obs.event(
        "execution",
        scheduler=execution.scheduler,
        status=execution.status,
        data_start_time=iso(execution.data_start),
        data_end_time=iso(execution.data_end),
        input_files=execution.input_files,
        failed_components=list(execution.failed_components),
        failed_reason=execution.failed_reason,
    )
    obs.count(Metric.INFERENCE_EXECUTIONS, site)
    obs.count(Metric.INFERENCE_FAILURES, site, 1 if execution.status == "FAILED" else 0)
    rows = anomalous = 0
    for key in execution.result_keys:
        asset = _asset_of(key, output_prefix, execution.model_name)
        summary = _WindowSummary()
        for line in output_store.get(key).decode().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            summary.add(row)
            if row.get("prediction") != 1:
                continue
            # largest share first, so diagnostics.0 is the top sensor in Logs Insights
            diagnostics = sorted(row.get("diagnostics") or [], key=lambda d: -d["value"])
            obs.event(
                "result",
                site=site,
                asset=asset,
                timestamp=row.get("timestamp"),
                prediction=row.get("prediction"),
                anomaly_score=row.get("anomaly_score"),
                top_sensor=diagnostics[0]["name"] if diagnostics else None,
                diagnostics=diagnostics,
            )
        obs.event(
            "window",
            site=site,
            asset=asset,
            scheduler=execution.scheduler,
            data_start_time=iso(execution.data_start),
            data_end_time=iso(execution.data_end),
            rows=summary.rows,
            anomalous_rows=summary.anomalous,
            max_score=summary.max_score,
            top_sensor=summary.top_sensor,
        )
        rows += summary.rows
        anomalous += summary.anomalous
    obs.count(Metric.RESULT_ROWS, site, rows)
    obs.count(Metric.ANOMALOUS_ROWS, site, anomalous)


class _WindowSummary:
    """Counts of one results object, and its most anomalous row: its score and the sensor
    that contributed most to it (the window's ``top_sensor``)."""

    def __init__(self) -> None:
        self.rows = 0
        self.anomalous = 0
        self.max_score: float | None = None
        self.top_sensor: str | None = None

    def add(self, row: dict[str, Any]) -> None:
        self.rows += 1
        self.anomalous += row.get("prediction") == 1
        score = row.get("anomaly_score")
        if score is None or (self.max_score is not None and score <= self.max_score):
            return
        self.max_score = score
        diagnostics = row.get("diagnostics") or []
        self.top_sensor = (
            max(diagnostics, key=lambda d: d["value"])["name"] if diagnostics else None
        )


def _site_of(scheduler_prefix: str, base: str, sites: SiteLayout) -> str:
    """The site a scheduler serves, from where it writes (:mod:`cloud.l4e.sites`)."""
    rest = scheduler_prefix[len(base) :] if scheduler_prefix.startswith(base) else None
    if rest == "":
        return sites.default_site or "unknown"
    if rest and rest.count("/") == 1:
        return rest[:-1]
    return "unknown"


def _asset_of(key: str, output_prefix: str, fallback: str) -> str:
    """``<prefix><component>/<start>/results.jsonl`` names the asset; the single-asset L4E
    layout ``<prefix><start>/results.jsonl`` does not, and the model's name stands in."""
    parts = key[len(output_prefix) :].split("/")
    if len(parts) == 3 and parts[2] == RESULTS_FILE:
        return parts[0]
    return fallback


_handler: Handler | None = None


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point; adapters are built once per execution environment."""
    global _handler
    if _handler is None:
        environ = os.environ
        artifacts = settings.required(
            environ, "ARTIFACTS_BUCKET", "models live under models/", form=settings.BUCKET
        )
        _handler = make_handler(
            state=settings.state_store(environ),
            input_store=settings.bucket_store(
                settings.required(
                    environ, "INPUT_BUCKET", "the L4E input bucket", form=settings.BUCKET
                ),
                environ,
            ),
            output_store=settings.bucket_store(
                settings.required(
                    environ, "OUTPUT_BUCKET", "where results.jsonl go", form=settings.BUCKET
                ),
                environ,
            ),
            registry=ModelRegistry(
                settings.bucket_store(artifacts, environ),
                MODELS_PREFIX,
                where=f"s3://{artifacts}/{MODELS_PREFIX}",
            ),
            observability=Observability(),
            sites=settings.site_layout(environ),
            output_prefix=settings.prefix(environ, "OUTPUT_PREFIX", "output/"),
            default_scheduler=environ.get("SCHEDULER_NAME") or None,
        )
    return _handler(event, context)
