"""Every topic rule the stack deploys is the one the local runner runs, action for action.

The deployed ``AWS::IoT::TopicRule`` payloads are compared with the local definitions
(``cloud/rules/default_rules.json`` as :func:`load_rules` reads it, plus the AWS-only
archive rule): SQL, SQL version, description, enabled state, each action's kind and
templates, and the errorAction. Only resource names and roles differ (real names on AWS).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloud.rules.definitions import DEFAULT_RULES, SQL_VERSION, load_rules
from cloud.rules.sql import parse
from edge.errors import ConfigError
from infra.rules import ARCHIVE_RULES, Targets, cfn_action, rule_entries

CFN_KIND = {"kinesis": "Kinesis", "s3": "S3", "firehose": "Firehose", "republish": "Republish"}
TEMPLATE_FIELDS = {
    "kinesis": {"partitionKey": "PartitionKey"},
    "s3": {"key": "Key"},
    "firehose": {"separator": "Separator", "batchMode": "BatchMode"},
    "republish": {"topic": "Topic", "qos": "Qos"},
}
ERROR_KEY = "errors/${topic(4)}/${timestamp()}-${newuuid()}"
"""iot-core-rules-and-limits §1.8: every rule has this s3 errorAction."""


@pytest.fixture(scope="module")
def deployed(synthesized) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["RuleName"]: r["Properties"]["TopicRulePayload"]
        for r in synthesized.resources("AWS::IoT::TopicRule").values()
    }


def definitions() -> dict[str, dict[str, Any]]:
    entries = rule_entries(DEFAULT_RULES) + rule_entries(ARCHIVE_RULES)
    return {e["ruleName"]: e["topicRulePayload"] for e in entries}


def same_action(definition: dict[str, Any], cfn: dict[str, Any]) -> None:
    ((kind, params),) = definition.items()
    ((cfn_kind, cfn_params),) = cfn.items()
    assert cfn_kind == CFN_KIND[kind]
    for field, cfn_field in TEMPLATE_FIELDS[kind].items():
        if field in params:
            assert cfn_params[cfn_field] == params[field], (kind, field)
    assert "RoleArn" in cfn_params


def test_the_stack_deploys_exactly_the_local_rules_and_the_archive_rule(deployed) -> None:
    local = {rule.name for rule in load_rules()}
    archive = {e["ruleName"] for e in rule_entries(ARCHIVE_RULES)}
    assert local and archive and not local & archive
    assert set(deployed) == local | archive


def test_each_deployed_payload_is_its_definition(deployed) -> None:
    for name, definition in definitions().items():
        payload = deployed[name]
        assert payload["Sql"] == definition["sql"]
        assert payload["AwsIotSqlVersion"] == definition["awsIotSqlVersion"] == SQL_VERSION
        assert payload["RuleDisabled"] == definition.get("ruleDisabled", False)
        assert payload.get("Description") == definition.get("description")
        assert len(payload["Actions"]) == len(definition["actions"]) <= 10
        for action, cfn in zip(definition["actions"], payload["Actions"], strict=True):
            same_action(action, cfn)
        same_action(definition["errorAction"], payload["ErrorAction"])


def test_local_rules_run_what_the_definition_says() -> None:
    """The local runner's parsed rules keep the file's actions, errorAction and state."""
    for rule in load_rules():
        definition = definitions()[rule.name]
        assert rule.sql == definition["sql"]
        assert rule.disabled == definition.get("ruleDisabled", False)
        assert [a.kind for a in rule.actions] == [next(iter(a)) for a in definition["actions"]]
        assert rule.error_action is not None
        assert rule.error_action.kind == next(iter(definition["errorAction"]))


def test_every_rule_has_the_s3_error_action_and_parses_locally(deployed) -> None:
    for name, payload in deployed.items():
        parse(payload["Sql"])
        error = payload["ErrorAction"]
        assert set(error) == {"S3"}, name
        assert error["S3"]["Key"] == ERROR_KEY, name


def test_an_s3_action_deploys_its_canned_acl() -> None:
    """The local loader takes ``cannedAcl`` (an ``S3Action`` field); the deployed action
    must carry it, not drop it."""
    targets = Targets("stream", "errors", "archive", "arn:aws:iam::123456789012:role/r")
    action = {"s3": {"bucketName": "b", "key": "k", "cannedAcl": "bucket-owner-full-control"}}
    assert cfn_action(action, targets)["S3"]["CannedAcl"] == "bucket-owner-full-control"
    assert "CannedAcl" not in cfn_action({"s3": {"bucketName": "b", "key": "k"}}, targets)["S3"]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"ruleName": "r", "topicRulePayload": {}, "rulename": "x"}, "rulename"),
        ({"ruleName": "r", "topicRulePayload": {"errorActions": {}}}, "errorActions"),
    ],
)
def test_a_definition_field_the_stack_would_not_deploy_is_refused(
    tmp_path, entry: dict[str, Any], field: str
) -> None:
    """A misspelt ``errorAction`` would deploy a rule without one: refused, as the local
    loader refuses it."""
    entry["topicRulePayload"] |= {
        "sql": "SELECT * FROM 'a/b'",
        "awsIotSqlVersion": SQL_VERSION,
        "actions": [],
    }
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [entry]}))
    with pytest.raises(ConfigError, match=rf"rules\[0\].*{field}: not a field"):
        rule_entries(path)


def test_a_kinesis_action_without_a_partition_key_deploys_without_one() -> None:
    """``partitionKey`` is optional in ``KinesisAction`` (and the local loader takes a
    kinesis action without one): the deployed action leaves it out, it does not fail."""
    targets = Targets("stream", "errors", "archive", "arn:aws:iam::123456789012:role/r")
    kinesis = cfn_action({"kinesis": {"streamName": "s"}}, targets)["Kinesis"]
    assert kinesis == {"StreamName": "stream", "RoleArn": targets.role_arn}
