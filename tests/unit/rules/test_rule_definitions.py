"""Rule files in CreateTopicRule shape: templates, versions and filters are checked at load."""

from __future__ import annotations

import pytest

from cloud.rules.actions import render_template
from cloud.rules.definitions import load_rules, parse_template, rules_from_document
from cloud.rules.evaluate import Message
from cloud.rules.sql import Literal, parse
from cloud.rules.topic_filter import validate_filter
from edge.errors import ConfigError, RuleSqlError


def test_default_rules_send_every_telemetry_message_whole_to_the_batcher() -> None:
    (rule,) = load_rules()
    assert rule.statement.topic_filter == "dt/plantwatch/+/+/telemetry"
    assert [a.kind for a in rule.actions] == ["kinesis"]
    assert rule.actions[0].params["partitionKey"] == "${topic(4)}"
    assert rule.error_action is not None and rule.error_action.kind == "s3"
    assert rule.statement.where is None


def test_templates_substitute_expressions_and_escape_dollars() -> None:
    message = Message("dt/plantwatch/s1/dev7/telemetry", b'{"a": {"b": 3}}', timestamp_ms=42)
    template = parse_template("$$aws/things/${topic(4)}/x-${a.b}-${nope}-${timestamp()}")
    assert render_template(template, message) == "$aws/things/dev7/x-3--42"
    assert parse_template("plain").parts == ("plain",)
    assert parse_template("${'}'}").parts == (Literal("}"),)


@pytest.mark.parametrize(("text", "position"), [("a/${topic(}", 11), ("${1 +}", 6), ("x${", 2)])
def test_bad_templates_name_the_position(text: str, position: int) -> None:
    with pytest.raises(RuleSqlError) as info:
        parse_template(text)
    assert info.value.position == position


@pytest.mark.parametrize("bad", ["a/#/b", "a/b#", "a+/b", ""])
def test_bad_topic_filters_are_rejected(bad: str) -> None:
    with pytest.raises(RuleSqlError):
        validate_filter(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "a/b/c/d/e/f/g/h/i",  # 8 slashes: IoT Core takes at most 7 (8 levels)
        "/a/b/c/d/e/f/g/h",  # a leading '/' is a level too
        "a/b/c/d/e/f/g/#/",
        "$aws/rules/r/a/b/c/d/e/f/g/h/i",  # 8 past the Basic Ingest prefix
        "$SYS/#",  # reserved: mosquitto's own statistics, which IoT Core never sends
        "$foo/bar",
        "$share/g/dt/plantwatch/+/+/telemetry",  # a subscription's form, not a rule's
        "x" * 256 + "/",
        "$aws/rules/r/" + "x" * 257,
    ],
)
def test_topic_filters_past_iot_core_limits_are_rejected(bad: str) -> None:
    """Spec §2: topics and topic filters are at most 256 bytes and 7 slashes (the Basic
    Ingest prefix not counted), and ``$`` topics other than ``$aws/...`` are reserved. A
    rule with such a FROM never runs on IoT Core; locally it would (``$SYS/#`` on
    mosquitto), so the two would differ."""
    with pytest.raises(RuleSqlError, match="FROM"):
        validate_filter(bad)
    with pytest.raises(RuleSqlError, match="FROM"):
        parse(f"SELECT * FROM '{bad}'")


@pytest.mark.parametrize(
    "good",
    [
        "a/b/c/d/e/f/g/h",
        "a/b/c/d/e/f/g/#",
        "+/+/+/+/+/+/+/+",
        "$aws/rules/r/a/b/c/d/e/f/g/h",
        "$aws/things/+/shadow/update/documents",
        "x" * 256,
        "é" * 128,
        "$aws/rules/r/" + "x" * 256,  # the Basic Ingest prefix is not counted
        "a//b",
        "/a",
        "#",
    ],
)
def test_topic_filters_within_iot_core_limits_are_taken(good: str) -> None:
    assert validate_filter(good) == good
    assert parse(f"SELECT * FROM '{good}'").topic_filter == good


def test_missing_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such rules file"):
        load_rules(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  nope")
    with pytest.raises(ConfigError, match="line 2"):
        load_rules(bad)


def _document(payload: dict | None = None, entry: dict | None = None) -> dict:
    base = {
        "sql": "SELECT * FROM 'dt/plantwatch/+/+/telemetry'",
        "awsIotSqlVersion": "2016-03-23",
        "actions": [{"s3": {"bucketName": "b", "key": "raw/${topic(4)}"}}],
        "errorAction": {"s3": {"bucketName": "e", "key": "errors/${topic(4)}"}},
    }
    return {
        "rules": [
            {"ruleName": "r", "topicRulePayload": {**base, **(payload or {})}, **(entry or {})}
        ]
    }


@pytest.mark.parametrize(
    ("payload", "entry", "where", "message"),
    [
        ({"errorActions": {}}, None, "topicRulePayload.errorActions", "not a field of"),
        ({"Sql": "x"}, None, "topicRulePayload.Sql", "not a field of"),
        (None, {"rulename": "x"}, "rulename", "not a field of"),
        ({"description": 5}, None, "topicRulePayload.description", "expected a string"),
        (
            {"actions": [{"republish": {"topic": "a", "qoss": 1}}]},
            None,
            "actions[0].republish.qoss",
            "not a field of",
        ),
        (
            {"actions": [{"s3": {"bucket": "b", "key": "k"}}]},
            None,
            "actions[0].s3.bucket",
            "not a field of",
        ),
        (
            {"errorAction": {"s3": {"bucketName": 7, "key": "k"}}},
            None,
            "errorAction.s3.bucketName",
            "expected a string",
        ),
        (
            {"actions": [{"kinesis": {"streamName": ["s"]}}]},
            None,
            "actions[0].kinesis.streamName",
            "expected a string",
        ),
        (
            {"actions": [{"s3": {"bucketName": "b", "key": "k", "roleArn": 1}}]},
            None,
            "actions[0].s3.roleArn",
            "expected a string",
        ),
    ],
)
def test_each_wrong_field_of_a_rule_is_refused_by_name(
    payload: dict | None, entry: dict | None, where: str, message: str
) -> None:
    """CreateTopicRule (and the AWS CLI and CloudFormation before it) refuses a field it does
    not know and a field of the wrong type. Taken silently here, a misspelt ``errorAction``
    would leave the rule without one, and ``qoss`` would publish at QoS 0."""
    with pytest.raises(ConfigError) as info:
        rules_from_document(_document(payload, entry))
    assert where in str(info.value) and message in str(info.value)


def test_every_field_of_the_shipped_shapes_is_taken() -> None:
    payload = {
        "description": "d",
        "ruleDisabled": False,
        "actions": [
            {"kinesis": {"streamName": "s", "partitionKey": "${topic(4)}", "roleArn": "arn"}},
            {"republish": {"topic": "a/${topic(4)}", "qos": 1, "roleArn": "arn"}},
            {"s3": {"bucketName": "b", "key": "k", "roleArn": "arn", "cannedAcl": "private"}},
        ],
    }
    (rule,) = rules_from_document(_document(payload))
    assert [a.kind for a in rule.actions] == ["kinesis", "republish", "s3"]


@pytest.mark.parametrize("acl", ["Private", "public", "bucket-owner-full", ""])
def test_an_s3_canned_acl_s3_does_not_have_is_refused(acl: str) -> None:
    """``S3Action.cannedAcl`` is one of S3's canned ACLs; CreateTopicRule refuses another,
    so the rule would load here and fail to deploy."""
    payload = {"actions": [{"s3": {"bucketName": "b", "key": "k", "cannedAcl": acl}}]}
    with pytest.raises(ConfigError, match=r"actions\[0\]\.s3\.cannedAcl: expected one of"):
        rules_from_document(_document(payload))


@pytest.mark.parametrize("acl", ["private", "bucket-owner-full-control", "log-delivery-write"])
def test_an_s3_canned_acl_is_taken(acl: str) -> None:
    payload = {"actions": [{"s3": {"bucketName": "b", "key": "k", "cannedAcl": acl}}]}
    (rule,) = rules_from_document(_document(payload))
    assert rule.actions[0].params["cannedAcl"] == acl


def test_republish_headers_are_refused_as_not_supported_locally() -> None:
    """``headers`` (MQTT 5 properties) is a field of AWS's ``RepublishAction``: the local
    engine cannot send it, and says so rather than calling it unknown."""
    payload = {"actions": [{"republish": {"topic": "a", "headers": {"contentType": "x"}}}]}
    with pytest.raises(ConfigError, match=r"republish\.headers: .*not supported locally"):
        rules_from_document(_document(payload))
