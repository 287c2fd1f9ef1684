"""Topic rules for the deployment, read from the same definition files as the local runner.

``cloud/rules/default_rules.json`` holds the telemetry rule exactly as the local runner
runs it; ``infra/archive_rules.json`` holds the archive rule (Firehose exists only on
AWS). Both are in ``CreateTopicRule`` shape. The SQL, SQL version, description and
action templates (``${topic(4)}`` ...) are deployed unchanged; only the resource names
in the actions and the role are replaced with the stack's real ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.rules.definitions import (
    DEFAULT_RULES,
    ENTRY_FIELDS,
    PAYLOAD_FIELDS,
    SQL_VERSION,
    refuse_other_fields,
)
from cloud.rules.sql import parse
from edge.errors import ConfigError

ARCHIVE_RULES = Path(__file__).with_name("archive_rules.json")


@dataclass(frozen=True, slots=True)
class Targets:
    """Real names that replace the placeholders of the definition files."""

    stream_name: str
    errors_bucket: str
    delivery_stream_name: str
    role_arn: str


def rule_entries(path: Path) -> list[dict[str, Any]]:
    """The ``rules`` list of a definition file; every SQL string must parse locally."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read rules: {exc}") from None
    entries = doc.get("rules") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f'{path}: expected {{"rules": [...]}}')
    for i, entry in enumerate(entries):
        refuse_other_fields(entry, ENTRY_FIELDS, f"{path}: rules[{i}]")
        payload = entry.get("topicRulePayload", {})
        refuse_other_fields(payload, PAYLOAD_FIELDS, f"{path}: rules[{i}].topicRulePayload")
        if payload.get("awsIotSqlVersion") != SQL_VERSION:
            raise ConfigError(f"{path}: rules[{i}].awsIotSqlVersion: expected {SQL_VERSION!r}")
        parse(payload["sql"])  # the same subset the local evaluator runs
    return entries


def deployed_rules() -> list[dict[str, Any]]:
    return rule_entries(DEFAULT_RULES) + rule_entries(ARCHIVE_RULES)


def cfn_action(action: Mapping[str, Any], targets: Targets) -> dict[str, Any]:
    """One action of the definition file as CloudFormation ``AWS::IoT::TopicRule`` Action."""
    ((kind, params),) = action.items()
    if kind == "kinesis":
        out: dict[str, Any] = {"StreamName": targets.stream_name}
        if "partitionKey" in params:  # optional in KinesisAction, as in the local loader
            out["PartitionKey"] = params["partitionKey"]
        return {"Kinesis": {**out, "RoleArn": targets.role_arn}}
    if kind == "s3":
        s3 = {"BucketName": targets.errors_bucket, "Key": params["key"]}
        if "cannedAcl" in params:
            s3["CannedAcl"] = params["cannedAcl"]
        return {"S3": {**s3, "RoleArn": targets.role_arn}}
    if kind == "firehose":
        return {
            "Firehose": {
                "DeliveryStreamName": targets.delivery_stream_name,
                "Separator": params.get("separator", "\n"),
                "BatchMode": bool(params.get("batchMode", False)),
                "RoleArn": targets.role_arn,
            }
        }
    if kind == "republish":
        return {
            "Republish": {
                "Topic": params["topic"],
                "Qos": int(params.get("qos", 0)),
                "RoleArn": targets.role_arn,
            }
        }
    raise ConfigError(f"action {kind!r}: the CDK app deploys kinesis, s3, firehose, republish")


def cfn_payload(payload: Mapping[str, Any], targets: Targets) -> dict[str, Any]:
    """``topicRulePayload`` -> CloudFormation ``TopicRulePayload`` with real targets."""
    out: dict[str, Any] = {
        "Sql": payload["sql"],
        "AwsIotSqlVersion": payload["awsIotSqlVersion"],
        "RuleDisabled": bool(payload.get("ruleDisabled", False)),
        "Actions": [cfn_action(a, targets) for a in payload["actions"]],
    }
    if payload.get("description"):
        out["Description"] = payload["description"]
    if payload.get("errorAction"):
        out["ErrorAction"] = cfn_action(payload["errorAction"], targets)
    return out
