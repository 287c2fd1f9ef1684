"""What AWS services (EventBridge Scheduler, CloudWatch alarms, S3 server access logging)
may do with the stack's key, topics, buckets and functions: what each needs, nothing more."""

from __future__ import annotations

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
