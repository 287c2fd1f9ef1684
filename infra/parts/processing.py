"""The four Lambda functions over the engines, with their triggers and failure queues.

Each function runs its own code asset (``infra/bundle.py``: the files its handler reaches)
with its own role and log group; environment variable names are the handlers' contract
(``cloud/handlers``).
Asynchronous triggers (Scheduler, S3, EventBridge) send failed events to an SQS queue
after Lambda's retries; the Kinesis mapping sends the failed batch's description there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Aws, CfnMapping, Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cloud.inference.registry import ARTIFACTS_PREFIX as MODELS_PREFIX
from edge.wire import APP
from infra.config import ALARMS_PREFIX, DETECTORS_PREFIX, DeployConfig
from infra.nag import acknowledge, acknowledge_wildcards, arn_of
from infra.parts import common
from infra.parts.storage import (
    INPUT_PREFIX,
    OUTPUT_PREFIX,
    QUARANTINE_PREFIX,
    SPOOL_PREFIX,
    Storage,
)

PANDAS_LAYERS = Path(__file__).resolve().parents[1] / "pandas_layers.json"
RUNTIME = lambda_.Runtime.PYTHON_3_11
METRICS_NAMESPACE = "plantwatch"
STATE_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
"""What ``DynamoDbStateStore`` calls (``get_item``, ``query``, ``update_item``, ``delete_item``)."""
IDEMPOTENCY_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)
"""What Powertools' DynamoDB idempotency layer calls; only the detector uses it."""
COMMAND_TOPICS = (
    "$aws/things/*/shadow/update",
    "$aws/things/*/shadow/name/*/update",
    f"cmd/{APP}/*",
)
"""What detector actions publish through iot-data, as the local ``plantwatch-detectors``
credential may: classic and named shadow update requests and command topics; never the
replies (``update/delta``, ``update/accepted``) only the shadow service publishes."""
HANDLERS = {
    "batcher": "cloud.handlers.batcher.handler",
    "inference": "cloud.handlers.inference.handler",
    "detector": "cloud.handlers.detector.handler",
    "timers": "cloud.handlers.timers.handler",
}


@dataclass(frozen=True, slots=True)
class Function:
    function: lambda_.Function
    dlq: sqs.Queue
    log_group: logs.LogGroup


def pandas_layer_arn(scope: Construct, config: DeployConfig) -> str:
    """The AWS SDK for pandas layer for the stack's Region (a CloudFormation mapping, so
    the template stays Region-agnostic), or the ARN given in context."""
    if config.pandas_layer_arn:
        return config.pandas_layer_arn
    table = json.loads(PANDAS_LAYERS.read_text())["python3.11-x86_64"]
    mapping = CfnMapping(
        scope, "PandasLayer", mapping={region: {"arn": arn} for region, arn in table.items()}
    )
    return mapping.find_in_map(Aws.REGION, "arn")


class Processing(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeployConfig,
        key: kms.IKey,
        storage: Storage,
        stream: kinesis.IStream,
        alerts_topic: sns.ITopic,
        code: Mapping[str, Path],
    ) -> None:
        super().__init__(scope, id)
        self._config = config
        self._key = key
        self._code = {name: lambda_.Code.from_asset(str(path)) for name, path in code.items()}
        self._layers = [
            lambda_.LayerVersion.from_layer_version_arn(
                self, "AwsSdkPandas", pandas_layer_arn(self, config)
            )
        ]
        first = config.schedulers[0]
        base_env = {
            "INPUT_BUCKET": storage.input.bucket_name,
            "INPUT_PREFIX": INPUT_PREFIX,
            "OUTPUT_BUCKET": storage.output.bucket_name,
            "OUTPUT_PREFIX": OUTPUT_PREFIX,
            "QUARANTINE_BUCKET": storage.quarantine.bucket_name,
            "QUARANTINE_PREFIX": QUARANTINE_PREFIX,
            "SPOOL_PREFIX": SPOOL_PREFIX,
            "ARTIFACTS_BUCKET": storage.artifacts.bucket_name,
            "STATE_TABLE": storage.state_table.table_name,
            "IDEMPOTENCY_TABLE": storage.idempotency_table.table_name,
            "ALERTS_TOPIC_ARN": alerts_topic.topic_arn,
            "SCHEDULER_NAME": first.name,
            "UPLOAD_FREQUENCY": first.upload_frequency,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "LOG_LEVEL": "INFO",
            "DEFAULT_SITE": config.default_site or "",
        }
        if config.detector_model_key:
            base_env["DETECTOR_MODEL_KEY"] = config.detector_model_key
        if config.alarm_model_keys:
            base_env["ALARM_MODEL_KEYS"] = ",".join(config.alarm_model_keys)
        self.batcher = self._function("batcher", base_env, timeout=60, memory=512)
        self.inference = self._function("inference", base_env, timeout=300, memory=2048)
        self.detector = self._function(
            "detector", base_env, timeout=120, memory=1024, reserved=config.detector_concurrency
        )
        self.timers = self._function(
            "timers", base_env, timeout=60, memory=512, reserved=config.timers_concurrency
        )
        self.functions = {
            "batcher": self.batcher,
            "inference": self.inference,
            "detector": self.detector,
            "timers": self.timers,
        }

        # batcher: Kinesis (ordered per shard), plus a flush of idle windows every minute
        b = self.batcher.function
        # it reads back an input file to merge late readings, and its spool records
        storage.input.grant_read(b, f"{INPUT_PREFIX}*")
        storage.input.grant_read(b, f"{SPOOL_PREFIX}*")
        # L4E input files (under <INPUT_PREFIX><site>/ for a site) and spool records
        storage.input.grant_put(b, f"{INPUT_PREFIX}*")
        storage.input.grant_put(b, f"{SPOOL_PREFIX}*")
        # it deletes spooled records once written, nothing else: input/ holds the L4E files
        storage.input.grant_delete(b, f"{SPOOL_PREFIX}*")
        # only its own prefix: errors/ in the same bucket holds the rules' errorAction reports
        storage.quarantine.grant_put(b, f"{QUARANTINE_PREFIX}*")
        assert b.role is not None
        acknowledge_wildcards(
            b.role,
            "Quarantined messages are written under generated keys below quarantine/.",
            resources=[f"{arn_of(storage.quarantine)}/{QUARANTINE_PREFIX}*"],
        )
        acknowledge_wildcards(
            b.role,
            "Spool records are written, and deleted once in a file, under generated keys "
            "below spool/.",
            resources=[f"{arn_of(storage.input)}/{SPOOL_PREFIX}*"],
            grant_actions=False,
        )
        acknowledge_wildcards(
            b.role,
            "L4E input files are written under generated keys (asset and window end) below input/.",
            resources=[f"{arn_of(storage.input)}/{INPUT_PREFIX}*"],
            grant_actions=False,
        )
        b.add_event_source(
            sources.KinesisEventSource(
                stream,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=500,
                max_batching_window=Duration.seconds(5),
                bisect_batch_on_error=True,
                retry_attempts=10,
                report_batch_item_failures=True,
                parallelization_factor=1,
                on_failure=sources.SqsDlq(self.batcher.dlq),
            )
        )
        self._every_minute("BatcherFlush", self.batcher, "flush due batcher windows")

        # inference: one EventBridge schedule per scheduler
        f = self.inference.function
        storage.input.grant_read(f)
        storage.output.grant_read(f)
        storage.output.grant_put(f)  # results are written, never deleted
        storage.artifacts.grant_read(f, f"{MODELS_PREFIX}*")  # the model registry
        storage.state_table.grant(f, *STATE_ACTIONS)
        self._key.grant_encrypt_decrypt(f)
        self._objects_ack(f, storage.input, storage.output)
        self._artifacts_ack(f, storage.artifacts, MODELS_PREFIX)
        schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
        )
        # the schedules' target is the unqualified ARN; grant_invoke would add ARN:*, every
        # version and alias
        schedule_role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[f.function_arn])
        )
        # what an SQS producer needs on a KMS-encrypted queue; grant_send_messages would add
        # kms:Encrypt and kms:ReEncrypt* on the stack's key
        schedule_role.add_to_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"], resources=[self.inference.dlq.queue_arn]
            )
        )
        schedule_role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self._key.key_arn]
            )
        )
        self.schedules: list[scheduler.CfnSchedule] = []
        for spec in config.schedulers:
            self.schedules.append(
                scheduler.CfnSchedule(
                    self,
                    f"Schedule-{spec.name}",
                    description=f"inference scheduler {spec.name}: {spec.upload_frequency} "
                    f"windows, {spec.delay_offset_min} min delay offset",
                    schedule_expression=spec.schedule_expression(),
                    schedule_expression_timezone="UTC",
                    flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(
                        mode="OFF"
                    ),
                    target=scheduler.CfnSchedule.TargetProperty(
                        arn=f.function_arn,
                        role_arn=schedule_role.role_arn,
                        input=json.dumps({"scheduler": spec.name}),
                        dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                            arn=self.inference.dlq.queue_arn
                        ),
                        retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                            maximum_event_age_in_seconds=3600, maximum_retry_attempts=3
                        ),
                    ),
                )
            )

        # detector: every results.jsonl the scheduler writes
        d = self.detector.function
        storage.output.grant_read(d, f"{OUTPUT_PREFIX}*")  # the notified results object
        storage.idempotency_table.grant(d, *IDEMPOTENCY_ACTIONS)
        assert d.role is not None
        acknowledge_wildcards(
            d.role,
            "The detector reads the results objects it is notified of, under generated keys "
            "below output/.",
            resources=[f"{arn_of(storage.output)}/{OUTPUT_PREFIX}*"],
        )
        storage.output.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(d),
            s3.NotificationKeyFilter(prefix=OUTPUT_PREFIX, suffix="results.jsonl"),
        )
        self._alerting(self.detector, storage, alerts_topic)

        # timers: detector timers and reminders, every minute
        self._every_minute("TimersTick", self.timers, "detector timers")
        self._alerting(self.timers, storage, alerts_topic)

    def _alerting(self, fn: Function, storage: Storage, topic: sns.ITopic) -> None:
        """Detector state, alerts to SNS and shadow commands through iot-data (``publish``
        only: no handler calls the shadow API, ``iot:GetThingShadow`` and the like)."""
        f = fn.function
        # DETECTOR_MODEL_KEY and ALARM_MODEL_KEYS lie there (checked in infra/config.py)
        storage.artifacts.grant_read(f, f"{DETECTORS_PREFIX}*")
        storage.artifacts.grant_read(f, f"{ALARMS_PREFIX}*")
        storage.state_table.grant(f, *STATE_ACTIONS)
        topic.grant_publish(f)
        self._key.grant_encrypt_decrypt(f)
        iot_arn = f"arn:{Aws.PARTITION}:iot:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        f.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iot:Publish"],
                resources=[f"{iot_arn}:topic/{topic_}" for topic_ in COMMAND_TOPICS],
            )
        )
        self._artifacts_ack(f, storage.artifacts, DETECTORS_PREFIX, ALARMS_PREFIX)
        prefix = "arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>"
        assert f.role is not None
        acknowledge_wildcards(
            f.role,
            "Detector actions command any asset (iotTopicPublish to "
            "$aws/things/<asset>/shadow/update or cmd/plantwatch/...); assets are not known "
            "at deploy time.",
            resources=[f"{prefix}:topic/{topic_}" for topic_ in COMMAND_TOPICS],
            grant_actions=False,
        )

    def _objects_ack(self, f: lambda_.IFunction, *buckets: s3.IBucket) -> None:
        assert f.role is not None
        acknowledge_wildcards(
            f.role,
            "The engines read and write objects under generated keys (L4E file names, "
            "results, spool records), so object grants end in /* on each bucket.",
            resources=[f"{arn_of(b)}/*" for b in buckets],
        )

    def _artifacts_ack(self, f: lambda_.IFunction, bucket: s3.IBucket, *prefixes: str) -> None:
        assert f.role is not None
        acknowledge_wildcards(
            f.role,
            "Artifacts are read under generated keys (model versions, model digests) below "
            "the one prefix each handler loads from.",
            resources=[f"{arn_of(bucket)}/{prefix}*" for prefix in prefixes],
        )

    def _every_minute(self, id: str, fn: Function, what: str) -> None:
        events.Rule(
            self,
            id,
            description=f"every minute: {what}",
            schedule=events.Schedule.rate(Duration.minutes(1)),
            targets=[
                targets.LambdaFunction(
                    fn.function,
                    dead_letter_queue=fn.dlq,
                    retry_attempts=2,
                    max_event_age=Duration.minutes(10),
                )
            ],
        )

    def _function(
        self,
        name: str,
        env: dict[str, str],
        *,
        timeout: int,
        memory: int,
        reserved: int | None = None,
    ) -> Function:
        dlq = sqs.Queue(
            self,
            f"{name.capitalize()}Dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self._key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            dlq,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter destination of the function; a failed "
            "event waits here for an operator (an alarm fires on its depth).",
        )
        group = common.log_group(self, f"{name.capitalize()}Logs", self._config.log_retention_days)
        role = iam.Role(
            self,
            f"{name.capitalize()}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"plantwatch {name} function",
        )
        group.grant_write(role)
        function = lambda_.Function(
            self,
            name.capitalize(),
            runtime=RUNTIME,
            handler=HANDLERS[name],
            code=self._code[name],
            layers=self._layers,
            role=role,
            log_group=group,
            logging_format=lambda_.LoggingFormat.JSON,
            timeout=Duration.seconds(timeout),
            memory_size=memory,
            reserved_concurrent_executions=reserved or None,
            environment={**env, "POWERTOOLS_SERVICE_NAME": f"plantwatch-{name}"},
            on_failure=destinations.SqsDestination(dlq),
            retry_attempts=2,
            description=f"plantwatch {name} ({HANDLERS[name]})",
        )
        acknowledge(
            function,
            "AwsSolutions-L1",
            "Python 3.11 on purpose: the project targets 3.11 and the AWS SDK for pandas "
            "layer it uses is built per Python version.",
        )
        return Function(function, dlq, group)
