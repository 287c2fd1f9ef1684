"""Key resources of the synthesized stack, checked with aws_cdk.assertions."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Match

from cloud.detectors.outbox import DEAD_LETTER_LOG_PHRASE
from cloud.inference.scheduler import CLAIM_S
from cloud.rules.definitions import load_rules
from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse
from edge import wire
from infra.rules import ARCHIVE_RULES, rule_entries

HANDLERS = {
    "cloud.handlers.batcher.handler",
    "cloud.handlers.inference.handler",
    "cloud.handlers.detector.handler",
    "cloud.handlers.timers.handler",
}


def test_rule_sql_is_the_local_runners_string_for_string(synthesized) -> None:
    deployed = {
        r["Properties"]["RuleName"]: r["Properties"]["TopicRulePayload"]
        for r in synthesized.resources("AWS::IoT::TopicRule").values()
    }
    local = load_rules()
    assert local
    for rule in local:
        assert deployed[rule.name]["Sql"] == rule.sql
        assert deployed[rule.name]["AwsIotSqlVersion"] == "2016-03-23"
    for entry in rule_entries(ARCHIVE_RULES):
        assert deployed[entry["ruleName"]]["Sql"] == entry["topicRulePayload"]["sql"]


def test_telemetry_goes_to_kinesis_by_asset_and_errors_to_the_quarantine_bucket(
    synthesized,
) -> None:
    payload = next(
        r["Properties"]["TopicRulePayload"]
        for r in synthesized.resources("AWS::IoT::TopicRule").values()
        if r["Properties"]["RuleName"] == "plantwatch_telemetry_to_batcher"
    )
    (action,) = payload["Actions"]
    assert action["Kinesis"]["PartitionKey"] == "${topic(4)}"
    streams = list(synthesized.resources("AWS::Kinesis::Stream"))
    assert action["Kinesis"]["StreamName"] == {"Ref": streams[0]}
    error = payload["ErrorAction"]["S3"]
    assert error["Key"] == "errors/${topic(4)}/${timestamp()}-${newuuid()}"
    quarantine = [k for k in synthesized.resources("AWS::S3::Bucket") if "Quarantine" in k]
    assert error["BucketName"] == {"Ref": quarantine[0]}


def test_archive_rule_output_carries_the_partition_keys() -> None:
    (entry,) = rule_entries(ARCHIVE_RULES)
    statement = parse(entry["topicRulePayload"]["sql"])
    body = wire.encode(
        wire.Telemetry(
            "plant1", "pump-01", "gw-01", 7, (wire.Sample(1_700_000_000_000, {"flow": 1.5}),)
        )
    )
    out = evaluate(statement, Message(wire.telemetry_topic("plant1", "pump-01"), body))
    assert out is not None
    assert out.value["site"] == "plant1"
    assert out.value["asset"] == "pump-01"
    assert out.value["date"] == "2023-11-14"
    assert out.value["samples"][0]["values"] == {"flow": 1.5}


def test_firehose_writes_parquet_under_the_archive_layout(synthesized) -> None:
    synthesized.assertions.has_resource_properties(
        "AWS::KinesisFirehose::DeliveryStream",
        {
            "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "CUSTOMER_MANAGED_CMK"},
            "ExtendedS3DestinationConfiguration": Match.object_like(
                {
                    "Prefix": "archive/site=!{partitionKeyFromQuery:site}/asset="
                    "!{partitionKeyFromQuery:asset}/date=!{partitionKeyFromQuery:date}/",
                    "DynamicPartitioningConfiguration": {
                        "Enabled": True,
                        "RetryOptions": Match.any_value(),
                    },
                    "DataFormatConversionConfiguration": Match.object_like(
                        {
                            "Enabled": True,
                            "OutputFormatConfiguration": {
                                "Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}
                            },
                        }
                    ),
                }
            ),
        },
    )
    synthesized.assertions.has_resource_properties(
        "AWS::Glue::Table",
        {
            "TableInput": Match.object_like(
                {
                    "Name": "readings_raw",
                    "PartitionKeys": [
                        {"Name": "site", "Type": "string"},
                        {"Name": "asset", "Type": "string"},
                        {"Name": "date", "Type": "string"},
                    ],
                }
            )
        },
    )


def test_athena_readings_view_has_the_local_views_columns(synthesized) -> None:
    import base64

    from cloud.archive.query import Catalog, Sources

    (view,) = [
        r["Properties"]["TableInput"]
        for r in synthesized.resources("AWS::Glue::Table").values()
        if r["Properties"]["TableInput"].get("TableType") == "VIRTUAL_VIEW"
    ]
    assert view["Name"] == "readings" and view["Parameters"]["presto_view"] == "true"
    text = view["ViewOriginalText"]
    assert text.startswith("/* Presto View: ") and text.endswith(" */")
    body = json.loads(base64.b64decode(text[len("/* Presto View: ") : -3]))
    assert body["catalog"] == "awsdatacatalog" and body["schema"] == "plantwatch"
    assert 'FROM "plantwatch"."readings_raw"' in body["originalSql"]
    with Catalog(Sources()) as catalog:  # the local view, empty: its column names
        local = catalog.query("SELECT * FROM readings").columns
    assert [c["name"] for c in body["columns"]] == local
    assert [c["Name"] for c in view["StorageDescriptor"]["Columns"]] == local


def test_retention_becomes_lifecycle_rules_on_the_bucket_of_each_prefix(synthesized) -> None:
    rules = {
        name: [
            (r.get("Prefix"), r.get("ExpirationInDays"))
            for r in bucket["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
        ]
        for name, bucket in synthesized.resources("AWS::S3::Bucket").items()
    }
    by_bucket = {
        next(k for k in rules if k.startswith(f"Storage{b}")): b
        for b in ("Archive", "Input", "Output", "Quarantine")
    }
    found = {b: rules[k] for k, b in by_bucket.items()}
    assert ("archive/", 365) in found["Archive"]
    assert ("input/", 30) in found["Input"] and ("quarantine/", 14) in found["Input"]
    assert ("quarantine/", 14) in found["Quarantine"]
    assert found["Output"] == []  # no rule for output/; stream/ is local only


def test_retention_context_is_checked() -> None:
    from edge.errors import ConfigError
    from infra.config import from_context

    def config(value: object) -> object:
        return from_context(lambda key: value if key == "retention" else None)

    assert config('{"archive/": 365}').retention == (("archive/", 365),)
    with pytest.raises(ConfigError, match="context retention: prefix 'archive'"):
        config({"archive": 365})
    with pytest.raises(ConfigError, match="expected whole days"):
        config({"input/": -1})
    with pytest.raises(ConfigError, match="not JSON"):
        config("{archive")


def test_functions_run_the_contract_handlers_with_failure_queues(synthesized) -> None:
    functions = {
        r["Properties"]["Handler"]: r["Properties"]
        for r in synthesized.resources("AWS::Lambda::Function").values()
        if r["Properties"].get("Handler", "").startswith("cloud.handlers.")
    }
    assert set(functions) == HANDLERS
    for handler, props in functions.items():
        env = props["Environment"]["Variables"]
        for name in ("INPUT_BUCKET", "OUTPUT_BUCKET", "STATE_TABLE", "ALERTS_TOPIC_ARN"):
            assert name in env, (handler, name)
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "plantwatch"
        assert env["INPUT_PREFIX"] == "input/" and env["OUTPUT_PREFIX"] == "output/"
        assert props["Runtime"] == "python3.11"
        layers = json.dumps(props["Layers"])
        assert "AWSSDKPandas-Python311" in layers or "PandasLayer" in layers
    assert functions["cloud.handlers.detector.handler"]["ReservedConcurrentExecutions"] == 1
    assert functions["cloud.handlers.timers.handler"]["ReservedConcurrentExecutions"] == 1
    invoke_configs = synthesized.resources("AWS::Lambda::EventInvokeConfig")
    assert len(invoke_configs) == 4
    for config in invoke_configs.values():
        assert "OnFailure" in config["Properties"]["DestinationConfig"]
    synthesized.assertions.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BisectBatchOnFunctionError": True,
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
        },
    )


def test_the_pandas_layer_mapping_uses_the_public_account(synthesized) -> None:
    mapping = synthesized.template["Mappings"]
    arns = [v["arn"] for m in mapping.values() for v in m.values()]
    assert "arn:aws:lambda:eu-west-1:336392948345:layer:AWSSDKPandas-Python311:33" in arns


def test_one_schedule_per_scheduler_at_frequency_plus_offset(synthesized) -> None:
    schedules = {
        json.loads(r["Properties"]["Target"]["Input"])["scheduler"]: r["Properties"]
        for r in synthesized.resources("AWS::Scheduler::Schedule").values()
    }
    assert schedules["pumps"]["ScheduleExpression"] == "cron(2/5 * * * ? *)"
    assert schedules["fans"]["ScheduleExpression"] == "cron(10 * * * ? *)"
    for props in schedules.values():
        assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert "DeadLetterConfig" in props["Target"]


def test_detector_is_notified_of_results_objects(synthesized) -> None:
    synthesized.assertions.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "NotificationConfiguration": {
                "LambdaFunctionConfigurations": [
                    Match.object_like(
                        {
                            "Events": ["s3:ObjectCreated:*"],
                            "Filter": {
                                "Key": {
                                    "FilterRules": Match.array_with(
                                        [
                                            {"Name": "suffix", "Value": "results.jsonl"},
                                            {"Name": "prefix", "Value": "output/"},
                                        ]
                                    )
                                }
                            },
                        }
                    )
                ]
            }
        },
    )


def test_buckets_are_private_encrypted_logged_and_tls_only(synthesized) -> None:
    buckets = synthesized.resources("AWS::S3::Bucket")
    assert len(buckets) == 6  # input, output, quarantine, archive, artifacts + access logs
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        if "AccessLogs" not in name:
            assert "LoggingConfiguration" in props
    policies = synthesized.resources("AWS::S3::BucketPolicy")
    tls_only = [
        p
        for p in policies.values()
        if any(
            s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            and s["Effect"] == "Deny"
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
    ]
    assert len(tls_only) == 6
    lifecycle = json.dumps(
        [b["Properties"].get("LifecycleConfiguration") for b in buckets.values()]
    )
    for prefix in ("spool/seen/", "spool/written/", "quarantine/", "errors/"):
        assert f'"Prefix": "{prefix}"' in lifecycle


def test_tables_topic_and_subscriptions(synthesized) -> None:
    synthesized.assertions.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "namespace", "KeyType": "HASH"},
                {"AttributeName": "key", "KeyType": "RANGE"},
            ],
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        },
    )
    synthesized.assertions.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
        },
    )
    synthesized.assertions.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()}
    )
    synthesized.assertions.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "email",
            "Endpoint": "ops@example.com",
            "FilterPolicy": {"channel": ["email"]},
        },
    )
    synthesized.assertions.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "sms", "Endpoint": "+4915112345678", "FilterPolicy": {"channel": ["sms"]}},
    )


def test_alarms_and_dashboard(synthesized) -> None:
    alarms = [a["Properties"] for a in synthesized.resources("AWS::CloudWatch::Alarm").values()]
    metrics = {(a.get("Namespace"), a.get("MetricName")) for a in alarms}
    assert ("AWS/Lambda", "Errors") in metrics
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in metrics
    assert ("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds") in metrics
    assert ("AWS/IoT", "ParseError") in metrics  # Failure: a Metrics Insights query, below
    assert all(a.get("AlarmActions") for a in alarms)
    (dashboard,) = synthesized.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for needle in ("{plantwatch,site}", "AnomalousRows", "InferenceFailures", "SOURCE"):
        assert needle in body, needle
    for field in ("result", "state_change", "execution", "top_sensor", "diagnostics.0.value"):
        assert field in body, field


def test_thing_types_and_policies(synthesized) -> None:
    """A device and a gateway thing type, which the policies' conditions name. The device
    type keeps its logical id and properties: CloudFormation replaces a thing type whose
    ThingTypeProperties change, and deleting one that things use fails the update."""
    types = {
        r["Properties"]["ThingTypeName"]: (k, r["Properties"])
        for k, r in synthesized.resources("AWS::IoT::ThingType").items()
    }
    assert set(types) == {"plantwatch-device", "plantwatch-gateway"}
    logical, device = types["plantwatch-device"]
    assert logical == "IngestThingTypeCD663B7F"
    assert device["ThingTypeProperties"] == {
        "SearchableAttributes": ["site"],
        "ThingTypeDescription": "A plantwatch device or gateway (attribute site; gateways "
        "list assets in asset1..asset12)",
    }
    assert types["plantwatch-gateway"][1]["ThingTypeProperties"]["SearchableAttributes"] == ["site"]
    names = sorted(
        r["Properties"]["PolicyName"] for r in synthesized.resources("AWS::IoT::Policy").values()
    )
    assert names[0] == "plantwatch-device" and names[1].startswith("plantwatch-gateway-")


def test_cfn_lint_reports_no_errors(synthesized) -> None:
    from cfnlint.api import lint_file

    matches = lint_file(synthesized.template_path)
    errors = [str(m) for m in matches if m.rule.id.startswith("E")]
    assert not errors, "\n".join(errors)


def test_cdk_nag_acknowledgements_all_have_reasons(synthesized) -> None:
    for plugin in synthesized.report.get("pluginReports", []):
        assert plugin["violations"] == [], plugin["violations"]
        for suppressed in plugin.get("suppressedViolations", []):
            assert len(suppressed["reason"]) > 20, suppressed


def test_outputs_name_what_the_cli_reads(synthesized) -> None:
    from infra import outputs
    from infra.config import SchedulerSpec

    declared = synthesized.template["Outputs"]
    # the context sets a detector model key and alarm model keys
    assert set(declared) == set(outputs.DESCRIPTIONS)
    resources = synthesized.template["Resources"]
    refs = {name: declared[name]["Value"] for name in declared}
    for name, kind in (
        (outputs.INPUT_BUCKET, "AWS::S3::Bucket"),
        (outputs.ARTIFACTS_BUCKET, "AWS::S3::Bucket"),
        (outputs.STATE_TABLE, "AWS::DynamoDB::Table"),
        (outputs.ALERTS_TOPIC_ARN, "AWS::SNS::Topic"),
    ):
        assert resources[refs[name]["Ref"]]["Type"] == kind, name
    assert "Input" in refs[outputs.INPUT_BUCKET]["Ref"]
    assert "Artifacts" in refs[outputs.ARTIFACTS_BUCKET]["Ref"]
    assert "StateTable" in refs[outputs.STATE_TABLE]["Ref"]
    deployment = outputs.Deployment(
        "plantwatch", {k: v for k, v in refs.items() if isinstance(v, str)}
    )
    assert deployment.schedulers() == {
        "pumps": SchedulerSpec("pumps", "PT5M", 2),
        "fans": SchedulerSpec("fans", "PT1H", 10),
    }
    assert deployment.detector_model_key == "detectors/site_pumps/0123456789ab.json"
    assert deployment.alarm_model_keys == (
        "alarms/score_high/0123456789ab.json",
        "alarms/temp/ba9876543210.json",
    )
    assert deployment.default_site == "plant1"


def test_default_site_and_detector_model_come_from_context(synthesized) -> None:
    for props in (
        r["Properties"]
        for r in synthesized.resources("AWS::Lambda::Function").values()
        if r["Properties"].get("Handler", "").startswith("cloud.handlers.")
    ):
        env = props["Environment"]["Variables"]
        assert env["DEFAULT_SITE"] == "plant1"
        assert env["DETECTOR_MODEL_KEY"] == "detectors/site_pumps/0123456789ab.json"
        assert env["ALARM_MODEL_KEYS"] == (
            "alarms/score_high/0123456789ab.json,alarms/temp/ba9876543210.json"
        )


PUBLISHED_DIMENSIONS = {
    "ParseError": frozenset({"RuleName"}),
    "TopicMatch": frozenset({"RuleName"}),
    "Failure": frozenset({"RuleName", "ActionType"}),
    "Success": frozenset({"RuleName", "ActionType"}),
    "ErrorActionFailure": frozenset({"RuleName", "ActionType"}),
    "ErrorActionSuccess": frozenset({"RuleName", "ActionType"}),
}
"""The dimension set AWS IoT publishes each rule metric with (AWS IoT developer guide,
"AWS IoT metrics and dimensions": rule metrics carry ``RuleName``; rule action metrics,
error actions included, carry ``RuleName`` and ``ActionType``). An alarm matches a metric
only with exactly this set."""

INSIGHTS = re.compile(
    r"SELECT SUM\((?P<metric>\w+)\) FROM SCHEMA\(\"(?P<namespace>[\w/]+)\", "
    r"(?P<dimensions>[\w, ]+)\) WHERE RuleName = '(?P<rule>[\w]+)'"
)


def watched_rule_metrics(alarm: dict) -> list[tuple[str, frozenset[str], str]]:
    """(metric, dimension names, rule) for each AWS/IoT series *alarm* evaluates."""
    if alarm.get("Namespace") == "AWS/IoT":
        dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        return [(alarm["MetricName"], frozenset(dimensions), dimensions.get("RuleName", ""))]
    found = []
    for query in alarm.get("Metrics", []):
        if "AWS/IoT" in json.dumps(query):
            if "Expression" not in query:  # a plain metric inside a math expression
                stat = query["MetricStat"]["Metric"]
                dimensions = {d["Name"]: d["Value"] for d in stat.get("Dimensions", [])}
                found.append(
                    (stat["MetricName"], frozenset(dimensions), dimensions.get("RuleName", ""))
                )
                continue
            match = INSIGHTS.fullmatch(query["Expression"])
            assert match, query["Expression"]
            assert match["namespace"] == "AWS/IoT"
            names = frozenset(n.strip() for n in match["dimensions"].split(","))
            found.append((match["metric"], names, match["rule"]))
    return found


def test_each_rule_alarms_on_action_and_error_action_failures(synthesized) -> None:
    """A failed action lands in the errorAction; a failed errorAction loses the message
    (AWS IoT's ``ErrorActionFailure`` metric): both alarm to the operations topic, on the
    metric with the dimensions AWS IoT publishes it with (else the alarm never fires)."""
    alarms = [a["Properties"] for a in synthesized.resources("AWS::CloudWatch::Alarm").values()]
    rules = [
        r["Properties"]["RuleName"] for r in synthesized.resources("AWS::IoT::TopicRule").values()
    ]
    watched = {
        (metric, rule)
        for a in alarms
        if a.get("AlarmActions")
        for metric, _, rule in watched_rule_metrics(a)
    }
    for rule in rules:
        for metric in ("Failure", "ErrorActionFailure", "ParseError"):
            assert (metric, rule) in watched, (rule, metric)
    for alarm in alarms:
        for metric, dimensions, rule in watched_rule_metrics(alarm):
            assert rule in rules, alarm
            assert dimensions == PUBLISHED_DIMENSIONS[metric], (
                alarm.get("AlarmDescription"),
                metric,
            )


def test_every_failure_path_is_kept_alarmed_and_retained(synthesized) -> None:
    """Every dead-letter queue has a depth alarm, every EventBridge target and schedule a
    dead-letter queue, every log group a retention, every table point-in-time recovery."""
    alarms = [a["Properties"] for a in synthesized.resources("AWS::CloudWatch::Alarm").values()]
    dimensions = json.dumps([a.get("Dimensions") for a in alarms if a.get("AlarmActions")])
    queues = synthesized.resources("AWS::SQS::Queue")
    assert len(queues) == 4
    for queue in queues:
        assert queue in dimensions, queue
    for rule in synthesized.resources("AWS::Events::Rule").values():
        for target in rule["Properties"]["Targets"]:
            assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] in queues
    for schedule in synthesized.resources("AWS::Scheduler::Schedule").values():
        assert (
            schedule["Properties"]["Target"]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] in queues
        )
    for name, group in synthesized.resources("AWS::Logs::LogGroup").items():
        assert group["Properties"]["RetentionInDays"] > 0, name
    for name, table in synthesized.resources("AWS::DynamoDB::Table").items():
        spec = table["Properties"]["PointInTimeRecoverySpecification"]
        assert spec == {"PointInTimeRecoveryEnabled": True}, name
        assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True, name


def test_an_action_kept_as_a_dead_letter_alarms(synthesized) -> None:
    """The detector and timers functions log each alert or shadow command the outbox gives
    up on (at once when AWS refuses it, else after 50 attempts); a metric filter on both
    log groups counts those lines, and an alarm tells the operations topic."""
    filters = [f["Properties"] for f in synthesized.resources("AWS::Logs::MetricFilter").values()]
    counting = [
        f
        for f in filters
        if DEAD_LETTER_LOG_PHRASE in f["FilterPattern"]
        and f["MetricTransformations"][0]["MetricName"] == "ActionsDeadLettered"
        and f["MetricTransformations"][0]["MetricNamespace"] == "plantwatch"
    ]
    groups = {json.dumps(f["LogGroupName"]) for f in counting}
    assert any("Detector" in g for g in groups) and any("Timers" in g for g in groups), groups
    alarms = [a["Properties"] for a in synthesized.resources("AWS::CloudWatch::Alarm").values()]
    assert any(
        a.get("Namespace") == "plantwatch"
        and a.get("MetricName") == "ActionsDeadLettered"
        and not a.get("Dimensions")
        and a.get("AlarmActions")
        for a in alarms
    )


def test_the_outbox_logs_the_phrase_the_metric_filter_counts(caplog) -> None:
    from cloud.adapters.local import InMemoryStateStore
    from cloud.detectors.engine import ActionRequest
    from cloud.detectors.outbox import DeliveryOutbox
    from edge.clock import ManualClock
    from edge.errors import RefusedError

    class Refusing:
        def execute(self, request: ActionRequest) -> None:
            raise RefusedError("sns: publish refused (InvalidParameter)", reason="InvalidParameter")

    outbox = DeliveryOutbox(Refusing(), InMemoryStateStore(), ManualClock(0.0))
    outbox.execute(ActionRequest("sns", {}, {}, "DEFAULT", "m", "k", "e", "s", 1, 0))
    assert any(DEAD_LETTER_LOG_PHRASE in r.getMessage() for r in caplog.records)


def test_the_inference_timeout_is_within_the_schedulers_default_claim(synthesized) -> None:
    """A window claimed where no invocation's remaining time is known (the CLI's ``--aws``
    run, a handler given no context) is held for ``CLAIM_S``, documented as the inference
    function's timeout; a longer timeout would let a window still being scored be claimed
    again by the next invocation."""
    [props] = [
        r["Properties"]
        for r in synthesized.resources("AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "cloud.handlers.inference.handler"
    ]
    assert props["Timeout"] <= CLAIM_S
