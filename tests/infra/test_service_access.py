"""What AWS services (EventBridge Scheduler, CloudWatch alarms, S3 server access logging)
may do with the stack's key, topics, buckets and functions: what each needs, nothing more."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.test_iam import actions, resources


def statements_of_role(synthesized, fragment: str) -> list[dict[str, Any]]:
    """The identity-policy statements of the one IAM role whose logical id holds *fragment*."""
    (role,) = [k for k in synthesized.resources("AWS::IAM::Role") if fragment in k]
    return [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def logical_id(synthesized, kind: str, fragment: str) -> str:
    (found,) = [k for k in synthesized.resources(kind) if fragment in k]
    return found


def test_the_schedule_role_invokes_only_the_unqualified_inference_function(synthesized) -> None:
    """EventBridge Scheduler's target is the function's unqualified ARN; a grant on
    ``ARN:*`` would also let the role invoke any published version or alias."""
    function = logical_id(synthesized, "AWS::Lambda::Function", "ProcessingInference")
    invoked = [
        resource
        for statement in statements_of_role(synthesized, "ScheduleRole")
        if "lambda:InvokeFunction" in actions(statement)
        for resource in resources(statement)
    ]
    assert invoked == [{"Fn::GetAtt": [function, "Arn"]}]
    (schedule, *_) = synthesized.resources("AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [function, "Arn"]}


def topic_statements(synthesized, fragment: str) -> list[dict[str, Any]]:
    topic = logical_id(synthesized, "AWS::SNS::Topic", fragment)
    return [
        statement
        for policy in synthesized.resources("AWS::SNS::TopicPolicy").values()
        if {"Ref": topic} in policy["Properties"]["Topics"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def allows_service(statement: dict[str, Any], service: str) -> bool:
    principal = statement.get("Principal", {})
    services = principal.get("Service", []) if isinstance(principal, dict) else []
    return statement["Effect"] == "Allow" and service in (
        services if isinstance(services, list) else [services]
    )


ALARMS_OF_THIS_ACCOUNT = {
    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    "ArnLike": {
        "aws:SourceArn": {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":cloudwatch:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    ":alarm:*",
                ],
            ]
        }
    },
}


def test_cloudwatch_alarms_may_publish_to_the_encrypted_operations_topic(synthesized) -> None:
    """The topic policy CDK writes for ``enforce_ssl`` replaces SNS's default policy, so
    without its own Allow CloudWatch is refused ``SNS:Publish`` and no alarm notifies
    anyone; being KMS-encrypted, the topic also needs CloudWatch in the key policy. The
    grant holds only for this account's alarms (confused deputy)."""
    operations = logical_id(synthesized, "AWS::SNS::Topic", "OperationsTopic")
    for alarm in synthesized.resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": operations}]
    (publish,) = [
        s
        for s in topic_statements(synthesized, "OperationsTopic")
        if allows_service(s, "cloudwatch.amazonaws.com")
    ]
    assert actions(publish) == ["sns:Publish"]
    assert resources(publish) == [{"Ref": operations}]
    assert publish["Condition"] == ALARMS_OF_THIS_ACCOUNT
    assert not any(
        allows_service(s, "cloudwatch.amazonaws.com")
        for s in topic_statements(synthesized, "AlertsTopic")
    ), "only the detectors publish alerts"
    (key,) = synthesized.resources("AWS::KMS::Key").values()
    (use,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if allows_service(s, "cloudwatch.amazonaws.com")
    ]
    assert sorted(actions(use)) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_the_key_policy_lets_only_eventbridge_and_cloudwatch_use_the_key(synthesized) -> None:
    """Service principals in the key policy act for any account's resources. Only two
    services use the key themselves: EventBridge sends failed rule events to the
    encrypted dead-letter queues, CloudWatch publishes alarms to the encrypted operations
    topic. SNS, SQS and S3 encrypt with the caller's rights (the functions' roles), so
    they are not named."""
    (key,) = synthesized.resources("AWS::KMS::Key").values()
    services: dict[str, set[str]] = {}
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        principal = statement["Principal"]
        if "Service" not in principal:
            assert principal == {"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                 ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}}  # fmt: skip
            continue
        named = principal["Service"]
        for service in named if isinstance(named, list) else [named]:
            services.setdefault(service, set()).update(actions(statement))
    wanted = {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert services == {"events.amazonaws.com": wanted, "cloudwatch.amazonaws.com": wanted}
    # and EventBridge does need it: its rules' dead-letter queues are encrypted with it
    (key_id,) = synthesized.resources("AWS::KMS::Key")
    queues = synthesized.resources("AWS::SQS::Queue")
    rules = synthesized.resources("AWS::Events::Rule").values()
    assert rules
    for rule in rules:
        for target in rule["Properties"]["Targets"]:
            queue = queues[target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]]
            assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_the_access_log_bucket_takes_logs_by_bucket_policy_with_acls_disabled(
    synthesized,
) -> None:
    """S3 server access logging into a bucket with ACLs disabled (BucketOwnerEnforced):
    the log delivery group's ``LogDeliveryWrite`` ACL gives way to a bucket-policy grant to
    ``logging.s3.amazonaws.com``, each source bucket writing only its own prefix."""
    buckets = synthesized.resources("AWS::S3::Bucket")
    logs = logical_id(synthesized, "AWS::S3::Bucket", "AccessLogs")
    props = buckets[logs]["Properties"]
    assert "AccessControl" not in props
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synthesized.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": logs}
    ]
    grants = {
        json.dumps(s["Condition"]["ArnLike"]["aws:SourceArn"]): s
        for s in policy
        if allows_service(s, "logging.s3.amazonaws.com")
    }
    logged = {
        name: bucket["Properties"]["LoggingConfiguration"]
        for name, bucket in buckets.items()
        if "LoggingConfiguration" in bucket["Properties"]
    }
    assert len(logged) == 5
    for name, logging in logged.items():
        assert logging["DestinationBucketName"] == {"Ref": logs}
        grant = grants.pop(json.dumps({"Fn::GetAtt": [name, "Arn"]}))
        assert actions(grant) == ["s3:PutObject"]
        assert grant["Condition"]["StringEquals"] == {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"}
        }
        (resource,) = resources(grant)
        assert resource["Fn::Join"][1][-1] == f"/{logging['LogFilePrefix']}*", resource
    assert not grants


def test_the_schedule_role_only_sends_to_its_dead_letter_queue(synthesized) -> None:
    """Scheduler puts a failed invocation into the KMS-encrypted queue: ``sqs:SendMessage``
    and, for the queue's key, what an SQS producer needs (``kms:GenerateDataKey``,
    ``kms:Decrypt``); never encrypt or re-encrypt arbitrary data with the stack's key."""
    queue = logical_id(synthesized, "AWS::SQS::Queue", "ProcessingInferenceDlq")
    (key,) = synthesized.resources("AWS::KMS::Key")
    granted: dict[str, set[str]] = {}
    for statement in statements_of_role(synthesized, "ScheduleRole"):
        for action in actions(statement):
            if action.split(":")[0] in ("sqs", "kms"):
                for resource in resources(statement):
                    granted.setdefault(json.dumps(resource), set()).add(action)
    assert granted == {
        json.dumps({"Fn::GetAtt": [queue, "Arn"]}): {"sqs:SendMessage"},
        json.dumps({"Fn::GetAtt": [key, "Arn"]}): {"kms:GenerateDataKey", "kms:Decrypt"},
    }
