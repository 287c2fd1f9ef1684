"""Buckets and tables: every bucket private, TLS-only, encrypted and access-logged."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import DeployConfig
from infra.nag import acknowledge

INPUT_PREFIX = "input/"
OUTPUT_PREFIX = "output/"
QUARANTINE_PREFIX = "quarantine/"
SPOOL_PREFIX = "spool/"
ERRORS_PREFIX = "errors/"
"""Where the topic rules' errorAction writes (``default_rules.json``)."""
ARCHIVE_PREFIX = "archive/"
RETENTION_BUCKETS = {
    "input": ("Input",),
    "spool": ("Input",),
    "output": ("Output",),
    "archive": ("Archive",),
    "quarantine": ("Input", "Quarantine"),
    "errors": ("Quarantine",),
    "": ("Input", "Output", "Archive", "Quarantine"),
}
"""Which buckets hold a retention rule's prefix, by its first folder."""
LOCAL_ONLY = ("stream", "imported")
"""Prefixes only the local runtime writes (streaming results, imported L4E results)."""


def retention_rules(rules: tuple[tuple[str, int], ...]) -> dict[str, list[s3.LifecycleRule]]:
    """The retention table as lifecycle rules, per bucket id."""
    from edge.errors import ConfigError

    found: dict[str, list[s3.LifecycleRule]] = {}
    for prefix, days in rules:
        first = prefix.split("/", 1)[0]
        if first in LOCAL_ONLY:
            continue
        if first not in RETENTION_BUCKETS:
            known = ", ".join(f"{k}/" for k in RETENTION_BUCKETS if k)
            raise ConfigError(
                f"context retention: prefix {prefix!r} lies in no bucket of the stack "
                f"(expected one under {known}, or '' for every bucket)"
            )
        for bucket in RETENTION_BUCKETS[first]:
            found.setdefault(bucket, []).append(
                s3.LifecycleRule(
                    id=f"retention-{prefix.strip('/').replace('/', '-') or 'all'}",
                    prefix=prefix or None,
                    expiration=Duration.days(days),
                )
            )
    return found


class Storage(Construct):
    def __init__(self, scope: Construct, id: str, *, config: DeployConfig, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the access-log bucket of the other buckets; logging it into itself "
            "would loop.",
        )
        spool_days = Duration.days(config.spool_expiry_days)
        quarantine_days = Duration.days(config.quarantine_expiry_days)
        retention = retention_rules(config.retention)
        self.input = self._bucket(
            "Input",
            [
                s3.LifecycleRule(prefix=f"{SPOOL_PREFIX}seen/", expiration=spool_days),
                s3.LifecycleRule(prefix=f"{SPOOL_PREFIX}written/", expiration=spool_days),
                s3.LifecycleRule(prefix=f"{SPOOL_PREFIX}pending/", expiration=spool_days),
                s3.LifecycleRule(prefix=QUARANTINE_PREFIX, expiration=quarantine_days),
                *retention.get("Input", []),
            ],
        )
        self.output = self._bucket("Output", retention.get("Output", []))
        self.quarantine = self._bucket(
            "Quarantine",
            [
                s3.LifecycleRule(prefix=QUARANTINE_PREFIX, expiration=quarantine_days),
                s3.LifecycleRule(prefix=ERRORS_PREFIX, expiration=quarantine_days),
                *retention.get("Quarantine", []),
            ],
        )
        self.archive = self._bucket("Archive", retention.get("Archive", []))
        self.artifacts = self._bucket("Artifacts", [], versioned=True)

        self.state_table = dynamodb.Table(
            self,
            "StateTable",
            partition_key=dynamodb.Attribute(name="namespace", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="key", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.idempotency_table = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expiration",
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _bucket(self, id: str, rules: list[s3.LifecycleRule], versioned: bool = False) -> s3.Bucket:
        return s3.Bucket(
            self,
            id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=versioned,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{id.lower()}/",
            lifecycle_rules=rules or None,
            removal_policy=RemovalPolicy.RETAIN,
        )
