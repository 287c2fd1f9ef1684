"""CloudWatch alarms and the dashboard.

Per-site widgets read the handlers' metrics (namespace ``plantwatch``, one dimension
``site``) with SEARCH, so new sites appear without a redeploy. Per-asset widgets are
Logs Insights queries over the handlers' structured log lines (``message="window"``,
``"result"``, ``"state_change"``, ``"execution"``): a metric per asset would cost about
$0.30 a month each.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from cloud.detectors.outbox import DEAD_LETTER_LOG_PHRASE
from infra.parts.ingest import Ingest
from infra.parts.processing import METRICS_NAMESPACE, Processing

DEAD_LETTERS_METRIC = "ActionsDeadLettered"
"""Counted from the detector and timers logs by a metric filter (no dimension)."""

SITE_METRICS = (
    "ResultRows",
    "AnomalousRows",
    "DetectorStateChanges",
    "AlertsSent",
    "QuarantinedMessages",
    "InferenceExecutions",
    "InferenceFailures",
)

ANOMALIES_PER_ASSET = """fields @timestamp, site, asset, anomalous_rows
| filter message = "window" and anomalous_rows > 0
| stats sum(anomalous_rows) as anomalous by bin(1h) as hour, site, asset
| sort hour desc"""

EVENTS_PER_DAY = """fields @timestamp, site, asset, to_state
| filter message = "state_change" and to_state = "Alarm"
| stats count(*) as events by datefloor(@timestamp, 1d) as day, site, asset
| sort day desc"""

EVENT_DURATION = """fields @timestamp, site, asset, rows, anomalous_rows
| filter message = "window"
| stats sum(anomalous_rows) as anomalous, sum(rows) as scored, 100 * sum(anomalous_rows) / sum(rows) as anomalous_pct by datefloor(@timestamp, 1d) as day, site, asset
| sort day desc"""

SIGNAL_IMPORTANCE = """fields @timestamp, site, asset, top_sensor, anomaly_score
| filter message = "result" and prediction = 1
| stats count(*) as rows_topped, avg(anomaly_score) as mean_score by site, asset, top_sensor
| sort site, asset, rows_topped desc"""

LAST_EXECUTION = """fields @timestamp, scheduler, status, data_start_time, data_end_time, input_files, failed_components
| filter message = "execution"
| sort @timestamp desc
| limit 10"""

LAST_WINDOWS = """fields @timestamp, site, asset, data_start_time, rows, anomalous_rows, max_score, top_sensor
| filter message = "window"
| sort @timestamp desc
| limit 50"""

LAST_DIAGNOSTICS = """fields @timestamp, site, asset, timestamp, prediction, anomaly_score, top_sensor, diagnostics.0.name, diagnostics.0.value, diagnostics.1.name, diagnostics.1.value, diagnostics.2.name, diagnostics.2.value
| filter message = "result"
| sort @timestamp desc
| limit 20"""

IMPORTANCE_NOTE = """**Event duration.** Average event length per day is the anomalous share of the
day (`anomalous_pct` x 24 h) divided by that day's `events`.
**Signal importance.** Each result row splits its anomaly over the N sensors
(`diagnostics`, summing to 1). An even share is **1/N**; a sensor well above 1/N
carries the anomaly. The table counts how often each sensor was the top contributor of an
anomalous row per asset, and the last anomalous rows' diagnostics are below.
**Logs.** Every row is counted in its window's `window` line; only anomalous rows have a
`result` line (every row stays in `results.jsonl`)."""


def site_search(metric: str, stat: str = "Sum") -> cw.MathExpression:
    return cw.MathExpression(
        expression=f"SEARCH('{{{METRICS_NAMESPACE},site}} MetricName=\"{metric}\"', '{stat}', 300)",
        label=metric,
        period=Duration.minutes(5),
        using_metrics={},
    )


RULE_ACTION_DIMENSIONS = ("ActionType", "RuleName")
"""The dimensions AWS IoT publishes its rule action metrics with (``Success``,
``Failure``, ``ErrorActionSuccess``, ``ErrorActionFailure``; AWS IoT developer guide,
"AWS IoT metrics and dimensions"). Rule metrics (``ParseError``, ``TopicMatch``) carry
``RuleName`` alone. An alarm matches a metric only with exactly its dimension set."""


def rule_action_metric(metric: str, rule: str) -> cw.MathExpression:
    """*metric* of topic rule *rule* summed over its action types, as one series.

    A plain metric alarm with ``RuleName`` alone never fires on these metrics, and one per
    ``ActionType`` would need the values AWS IoT writes there, which it does not document.
    A Metrics Insights query on ``SCHEMA("AWS/IoT", ActionType, RuleName)`` matches exactly
    that dimension set and needs no action type spelled out.
    """
    dimensions = ", ".join(RULE_ACTION_DIMENSIONS)
    return cw.MathExpression(
        expression=(
            f"SELECT SUM({metric}) FROM SCHEMA(\"AWS/IoT\", {dimensions}) WHERE RuleName = '{rule}'"
        ),
        label=f"{metric} {rule}",
        period=Duration.minutes(5),
        using_metrics={},
    )


class Operations(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        ingest: Ingest,
        processing: Processing,
        operations_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id)
        action = cw_actions.SnsAction(operations_topic)
        self.alarms: list[cw.Alarm] = []

        def alarm(id: str, metric: cw.IMetric, threshold: float, description: str) -> None:
            created = cw.Alarm(
                self,
                id,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            created.add_alarm_action(action)
            self.alarms.append(created)

        for name, fn in processing.functions.items():
            cap = name.capitalize()
            alarm(
                f"{cap}Errors",
                fn.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                1,
                f"the {name} function failed at least once in 5 minutes",
            )
            alarm(
                f"{cap}DlqDepth",
                fn.dlq.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(5), statistic="Maximum"
                ),
                1,
                f"events of the {name} function are waiting in its dead-letter queue",
            )
        alarm(
            "TelemetryIteratorAge",
            ingest.stream.metric_get_records_iterator_age_milliseconds(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            5 * 60 * 1000,
            "the batcher is more than 5 minutes behind the telemetry stream",
        )
        for rule in ingest.rule_names:
            alarm(
                f"RuleParseError-{rule}",
                cw.Metric(
                    namespace="AWS/IoT",
                    metric_name="ParseError",
                    dimensions_map={"RuleName": rule},
                    period=Duration.minutes(5),
                    statistic="Sum",
                ),
                1,
                f"topic rule {rule}: the SQL failed on a message",
            )
            for metric_name, what in (
                ("Failure", "an action failed (messages went to the errorAction)"),
                ("ErrorActionFailure", "the errorAction failed (messages were lost)"),
            ):
                alarm(
                    f"Rule{metric_name}-{rule}",
                    rule_action_metric(metric_name, rule),
                    1,
                    f"topic rule {rule}: {what}",
                )

        for name, fn in (("Detector", processing.detector), ("Timers", processing.timers)):
            logs.MetricFilter(
                self,
                f"{name}DeadLetters",
                log_group=fn.log_group,
                metric_namespace=METRICS_NAMESPACE,
                metric_name=DEAD_LETTERS_METRIC,
                filter_pattern=logs.FilterPattern.all_terms(DEAD_LETTER_LOG_PHRASE),
                metric_value="1",
            )
        alarm(
            "ActionsDeadLettered",
            cw.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=DEAD_LETTERS_METRIC,
                period=Duration.minutes(5),
                statistic="Sum",
            ),
            1,
            "an alert or shadow command was given up on (refused by AWS, or failed 50 times); "
            "it is kept under detectors/outbox-dead in the state table with the reason",
        )

        results_logs = [processing.inference.log_group.log_group_name]
        detector_logs = [
            processing.detector.log_group.log_group_name,
            processing.timers.log_group.log_group_name,
        ]
        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name="plantwatch")
        dashboard.add_widgets(
            cw.TextWidget(
                markdown="# plantwatch\nPer-site metrics (namespace `plantwatch`, dimension "
                "`site`) and per-asset Logs Insights queries over the handlers' logs.",
                width=24,
                height=2,
            )
        )
        dashboard.add_widgets(
            *[
                cw.GraphWidget(title=f"{m} per site", left=[site_search(m)], width=8, height=6)
                for m in SITE_METRICS
            ]
        )

        def query(title: str, groups: list[str], text: str, width: int = 12) -> cw.LogQueryWidget:
            return cw.LogQueryWidget(
                title=title,
                log_group_names=groups,
                query_string=text,
                view=cw.LogQueryVisualizationType.TABLE,
                width=width,
                height=8,
            )

        dashboard.add_widgets(
            query("Detected anomalies per asset over time", results_logs, ANOMALIES_PER_ASSET),
            query("Events per day (detector alarms)", detector_logs, EVENTS_PER_DAY),
        )
        dashboard.add_widgets(
            query("Anomalous time per day per asset", results_logs, EVENT_DURATION),
            query("Signal importance per asset", results_logs, SIGNAL_IMPORTANCE),
        )
        dashboard.add_widgets(
            cw.TextWidget(markdown=IMPORTANCE_NOTE, width=24, height=4),
        )
        dashboard.add_widgets(
            query("Last executions", results_logs, LAST_EXECUTION),
            query("Last anomalous rows' diagnostics", results_logs, LAST_DIAGNOSTICS),
        )
        dashboard.add_widgets(
            query("Last windows per asset", results_logs, LAST_WINDOWS, width=24),
        )
        self.dashboard = dashboard
