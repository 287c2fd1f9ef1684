"""The plantwatch stack: storage, alerts, ingest, archive, processing and operations."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra import outputs
from infra.config import DeployConfig
from infra.nag import acknowledge
from infra.parts.alerts import Alerts
from infra.parts.archive import Archive
from infra.parts.ingest import Ingest
from infra.parts.operations import Operations
from infra.parts.processing import Processing
from infra.parts.storage import Storage


class PlantwatchStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeployConfig,
        code: Mapping[str, Path],
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.key = kms.Key(
            self,
            "DataKey",
            description="plantwatch: Kinesis, SNS, SQS, DynamoDB and Firehose encryption",
            enable_key_rotation=True,
        )
        # SNS, SQS and S3 encrypt with their callers' rights (the roles' key grants); only
        # EventBridge uses the key itself, sending failed rule events to the encrypted
        # dead-letter queues (CloudWatch, for the alarms' topic, is granted in Alerts)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeDeadLetters",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.storage = Storage(self, "Storage", config=config, key=self.key)
        self.alerts = Alerts(self, "Alerts", config=config, key=self.key)
        self.archive = Archive(self, "Archive", config=config, key=self.key, storage=self.storage)
        self.ingest = Ingest(
            self,
            "Ingest",
            config=config,
            key=self.key,
            storage=self.storage,
            archive=self.archive,
        )
        self.processing = Processing(
            self,
            "Processing",
            config=config,
            key=self.key,
            storage=self.storage,
            stream=self.ingest.stream,
            alerts_topic=self.alerts.topic,
            code=code,
        )
        self.operations = Operations(
            self,
            "Operations",
            ingest=self.ingest,
            processing=self.processing,
            operations_topic=self.alerts.operations_topic,
        )
        self._outputs(config)
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                    "service-role/AWSLambdaBasicExecutionRole]",
                    "CDK's own handler that sets the output bucket's notification "
                    "configuration at deploy time; it only writes its own logs.",
                )

    def _outputs(self, config: DeployConfig) -> None:
        """What ``plantwatch model push|schedulers create|detectors push --aws --stack``
        read to find this deployment's buckets and tables (:mod:`infra.outputs`)."""
        values = {
            outputs.INPUT_BUCKET: self.storage.input.bucket_name,
            outputs.OUTPUT_BUCKET: self.storage.output.bucket_name,
            outputs.QUARANTINE_BUCKET: self.storage.quarantine.bucket_name,
            outputs.ARTIFACTS_BUCKET: self.storage.artifacts.bucket_name,
            outputs.STATE_TABLE: self.storage.state_table.table_name,
            outputs.ALERTS_TOPIC_ARN: self.alerts.topic.topic_arn,
            outputs.SCHEDULERS: outputs.schedulers_value(config.schedulers),
        }
        if config.detector_model_key:
            values[outputs.DETECTOR_MODEL_KEY] = config.detector_model_key
        if config.alarm_model_keys:
            values[outputs.ALARM_MODEL_KEYS] = ",".join(config.alarm_model_keys)
        if config.default_site:
            values[outputs.DEFAULT_SITE] = config.default_site
        for name, value in values.items():
            CfnOutput(self, name, value=value, description=outputs.DESCRIPTIONS[name])
