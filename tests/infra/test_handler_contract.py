"""The synthesized template against the handlers' source: the dashboard reads only log
fields and metrics the handlers write, from the log groups of the functions that write
them, and every environment variable a handler reads is set on its function or has a
documented default.

The handlers' side is derived from their code (``tests/handler_contract.py``), never
copied by hand; ``tests/handlers/test_aws_data_path.py`` checks the same names against the
lines the handlers really print in the moto end-to-end run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from handler_contract import (
    POWERTOOLS_KEYS,
    env_reads,
    log_fields,
    message_writers,
    metric_names,
    parse_query,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "aws-data-path.md"


def functions(synthesized) -> dict[str, dict[str, Any]]:
    """Handler module (``cloud.handlers.X``) -> the function's properties."""
    return {
        r["Properties"]["Handler"].rsplit(".", 1)[0]: r["Properties"]
        for r in synthesized.resources("AWS::Lambda::Function").values()
        if r["Properties"].get("Handler", "").startswith("cloud.handlers.")
    }


def dashboard_widgets(synthesized) -> list[dict[str, Any]]:
    """The dashboard body with each ``{"Ref": X}`` written as ``{{X}}``."""
    (dashboard,) = synthesized.resources("AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "{{" + p["Ref"] + "}}" for p in parts)
    return json.loads(text)["widgets"]


def log_queries(synthesized) -> dict[str, Any]:
    return {
        w["properties"]["title"]: parse_query(w["properties"]["query"])
        for w in dashboard_widgets(synthesized)
        if w["type"] == "log"
    }


def test_the_query_parser_reads_fields_aliases_and_filters() -> None:
    query = parse_query(
        "SOURCE '{{G}}' | fields @timestamp, site, diagnostics.0.name\n"
        '| filter message = "result" and prediction = 1\n'
        "| stats count(*) as n, 100 * sum(x) / count(*) as pct by datefloor(@timestamp, 1d) as day, asset\n"
        "| sort day desc | limit 5"
    )
    assert query.messages == {"result"}
    assert query.fields == {"site", "diagnostics.0.name", "message", "prediction", "x", "asset"}
    assert query.sources == ("{{G}}",)


def test_the_source_derivation_finds_every_contract_line_and_metric() -> None:
    fields = log_fields()
    assert set(fields) == {
        "result",
        "window",
        "execution",
        "state_change",
        "alarm_state_change",
        "alert",
        "quarantined",
        "skipped",
    }
    assert {"site", "asset", "anomaly_score", "top_sensor", "diagnostics"} <= set(fields["result"])
    assert message_writers()["state_change"] == {"cloud.handlers.detection"}
    assert message_writers()["alarm_state_change"] == {"cloud.handlers.detection"}
    assert len(metric_names()) == 7
    batcher = env_reads("cloud.handlers.batcher")
    assert batcher["INPUT_BUCKET"].required and not batcher["QUARANTINE_BUCKET"].required
    assert "STATE_TABLE" not in batcher  # the batcher keeps no state in the table
    assert env_reads("cloud.handlers.timers")["ALERTS_TOPIC_ARN"].required


def test_every_dashboard_query_reads_fields_its_lines_carry(synthesized) -> None:
    fields = log_fields()
    queries = log_queries(synthesized)
    assert len(queries) >= 6
    for title, query in queries.items():
        [message] = query.messages  # each query reads one kind of line
        assert message in fields, (title, message)
        emitted = set(fields[message]) | POWERTOOLS_KEYS
        missing = {f for f in query.fields if f.split(".")[0] not in emitted}
        assert not missing, f"{title}: {sorted(missing)} not written on {message!r} lines"


def test_every_dashboard_query_reads_the_logs_of_the_functions_that_write_its_lines(
    synthesized,
) -> None:
    writers = message_writers()
    by_group = {
        props["LoggingConfig"]["LogGroup"]["Ref"]: handler
        for handler, props in functions(synthesized).items()
    }
    from cloud.handlers.packaging import bundle

    reaches = {h: set(bundle(h).modules) for h in by_group.values()}
    for title, query in log_queries(synthesized).items():
        [message] = query.messages
        read = {by_group[re.fullmatch(r"\{\{(.+)\}\}", s)[1]] for s in query.sources}
        # a function writes the line when its bundle holds a module that writes it
        writing = {h for h, modules in reaches.items() if writers[message] & modules}
        assert read == writing, (title, read, writing)


def test_every_metric_widget_reads_a_metric_the_handlers_count(synthesized) -> None:
    counted = metric_names()
    shown = set()
    for widget in dashboard_widgets(synthesized):
        if widget["type"] != "metric":
            continue
        for row in widget["properties"]["metrics"]:
            for item in row:
                expression = item.get("expression", "") if isinstance(item, dict) else ""
                shown.update(re.findall(r"\{plantwatch,site\} MetricName=\"(\w+)\"", expression))
    assert shown == counted  # every metric is shown, and nothing else
    from_logs = {  # what a log metric filter of the stack counts is produced too
        t["MetricName"]
        for f in synthesized.resources("AWS::Logs::MetricFilter").values()
        for t in f["Properties"]["MetricTransformations"]
        if t["MetricNamespace"] == "plantwatch"
    }
    for alarm in synthesized.resources("AWS::CloudWatch::Alarm").values():
        if alarm["Properties"].get("Namespace") == "plantwatch":
            assert alarm["Properties"]["MetricName"] in counted | from_logs


@pytest.mark.parametrize("handler", ["batcher", "inference", "detector", "timers"])
def test_every_variable_a_handler_reads_is_set_or_has_a_documented_default(
    synthesized, handler: str
) -> None:
    module = f"cloud.handlers.{handler}"
    env = functions(synthesized)[module]["Environment"]["Variables"]
    docs = DOCS.read_text()
    reads = env_reads(module)
    assert reads, module
    for name, read in sorted(reads.items()):
        if read.required:
            assert name in env, f"{handler}: {name} is required and not set on the function"
        elif name not in env:
            assert f"`{name}`" in docs, f"{handler}: {name} is neither set nor documented"
