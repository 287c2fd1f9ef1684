"""Powertools Logger and Metrics for every handler: detail per asset in log lines, counts per site.

Why metrics carry one dimension, ``site``, and never the asset: every custom metric (a name
with one set of dimension values) costs about $0.30 a month, so five metrics with an asset
dimension on 1,000 assets would cost $1,500 a month, more than the rest of the pipeline.
Per-asset views come from CloudWatch Logs Insights over the structured lines instead, one
per result row, state change, alert, quarantined message and execution. Their fields are a
contract: the CDK dashboard's queries read them by name (``docs/aws-data-path.md``).

Metrics go out as CloudWatch embedded metric format (EMF) on stdout, one document per site
per invocation, with no ``service`` dimension: Powertools adds one from
``POWERTOOLS_SERVICE_NAME`` unless told otherwise, and that would split every metric.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

DEFAULT_NAMESPACE = "plantwatch"


class Metric(StrEnum):
    """The custom metrics, each counted per site."""

    RESULT_ROWS = "ResultRows"
    ANOMALOUS_ROWS = "AnomalousRows"
    DETECTOR_STATE_CHANGES = "DetectorStateChanges"
    ALERTS_SENT = "AlertsSent"
    QUARANTINED_MESSAGES = "QuarantinedMessages"
    INFERENCE_EXECUTIONS = "InferenceExecutions"
    INFERENCE_FAILURES = "InferenceFailures"


class _ContractFields(LambdaPowertoolsFormatter):
    """Puts an event's fields at the top level of the JSON line, over Powertools' own keys:
    a ``result`` line's ``timestamp`` is the result row's time, as the dashboard reads it
    (the line's own time is CloudWatch's ``@timestamp``)."""

    def serialize(self, log: Any) -> str:
        fields = log.pop("fields", None)
        if isinstance(fields, dict):
            log.update(fields)
        return super().serialize(log)


class _Stdout:
    """Writes to whatever ``sys.stdout`` is now (Lambda's stream, or a test's capture)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


_logger: Logger | None = None


def shared_logger() -> Logger:
    """One Powertools Logger per process (they are registered by service name)."""
    global _logger
    if _logger is None:
        _logger = Logger(
            service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "plantwatch",
            stream=_Stdout(),  # type: ignore[arg-type]
            logger_formatter=_ContractFields(),
        )
    return _logger


class Observability:
    """Log lines and per-site counters of one invocation; :meth:`flush` emits the metrics."""

    def __init__(self, namespace: str | None = None, logger: Logger | None = None) -> None:
        self.namespace = (
            namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE
        )
        self.logger = logger or shared_logger()
        self._counts: dict[str, dict[Metric, float]] = defaultdict(dict)

    def event(self, message: str, **fields: Any) -> None:
        """One structured line: ``{"message": message, ...fields}``, None fields left out
        (an absent field reads as missing in Logs Insights, and costs no bytes)."""
        present = {k: v for k, v in fields.items() if v is not None}
        self.logger.info(message, extra={"fields": present}, stacklevel=2)

    def count(self, metric: Metric, site: str, value: float = 1) -> None:
        """Add *value* to *metric* for *site*; a zero still emits the metric (alarms need
        data points, not gaps)."""
        per_site = self._counts[site or "unknown"]
        per_site[metric] = per_site.get(metric, 0) + value

    def flush(self) -> None:
        """One EMF document per site, dimension ``site`` only; counters start again."""
        for site, counts in sorted(self._counts.items()):
            metrics = EphemeralMetrics(namespace=self.namespace, service="")
            metrics.add_dimension(name="site", value=site)
            for metric, value in sorted(counts.items()):
                metrics.add_metric(name=str(metric), unit=MetricUnit.Count, value=value)
            document = metrics.serialize_metric_set()
            sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
        sys.stdout.flush()
        self._counts.clear()
