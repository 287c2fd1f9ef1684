"""Small helpers the constructs share."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)
"""Values CloudWatch Logs accepts (the longer ones are left out on purpose)."""


def log_group(scope: Construct, id: str, days: int, key: kms.IKey | None = None) -> logs.LogGroup:
    """A log group kept *days* (rounded up to a value CloudWatch accepts)."""
    group = logs.LogGroup(scope, id, encryption_key=key, removal_policy=RemovalPolicy.DESTROY)
    allowed = next((d for d in RETENTION_DAYS if d >= days), RETENTION_DAYS[-1])
    cfn = group.node.default_child
    assert isinstance(cfn, logs.CfnLogGroup)
    cfn.retention_in_days = allowed
    return group
