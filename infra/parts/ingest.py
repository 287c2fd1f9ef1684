"""IoT Core side: thing type, device and gateway policies, the topic rules and Kinesis."""

from __future__ import annotations

from aws_cdk import Aws, CfnResource, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.config import DeployConfig
from infra.nag import acknowledge_wildcards, arn_of
from infra.parts.archive import Archive
from infra.parts.storage import ERRORS_PREFIX, Storage
from infra.policies import (
    DEVICE_POLICY,
    DEVICE_THING_TYPE,
    GATEWAY_INGEST_POLICY,
    GATEWAY_POLICY,
    GATEWAY_THING_TYPE,
    device_policy,
    gateway_ingest_policies,
    gateway_policies,
)
from infra.rules import Targets, cfn_payload, deployed_rules


def iot_arn_prefix() -> str:
    return f"arn:{Aws.PARTITION}:iot:{Aws.REGION}:{Aws.ACCOUNT_ID}"


class Ingest(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeployConfig,
        key: kms.IKey,
        storage: Storage,
        archive: Archive,
    ) -> None:
        super().__init__(scope, id)
        self.stream = kinesis.Stream(
            self,
            "Telemetry",
            shard_count=config.kinesis_shards,
            retention_period=Duration.hours(24),
            encryption=kinesis.StreamEncryption.MANAGED,
        )
        # id and properties as first deployed: CloudFormation replaces a thing type whose
        # properties change, and cannot delete one that things use (so the text still
        # names gateways, which now have their own type)
        iot.CfnThingType(
            self,
            "ThingType",
            thing_type_name=DEVICE_THING_TYPE,
            thing_type_properties=iot.CfnThingType.ThingTypePropertiesProperty(
                thing_type_description="A plantwatch device or gateway (attribute site; "
                "gateways list assets in asset1..asset12)",
                searchable_attributes=["site"],
            ),
        )
        iot.CfnThingType(
            self,
            "GatewayThingType",
            thing_type_name=GATEWAY_THING_TYPE,
            thing_type_properties=iot.CfnThingType.ThingTypePropertiesProperty(
                thing_type_description="A plantwatch gateway (attribute site; its assets in "
                "asset1..asset12); only this type gets the gateway policies' grants",
                searchable_attributes=["site"],
            ),
        )
        arn = iot_arn_prefix()
        self.policy_names = [DEVICE_POLICY]
        iot.CfnPolicy(
            self, "DevicePolicy", policy_name=DEVICE_POLICY, policy_document=device_policy(arn)
        )
        for n, document in enumerate(gateway_policies(arn)[1:], start=1):
            name = f"{GATEWAY_POLICY}-{n}"
            self.policy_names.append(name)
            iot.CfnPolicy(self, f"GatewayPolicy{n}", policy_name=name, policy_document=document)
        for n, document in enumerate(gateway_ingest_policies(arn), start=1):
            name = f"{GATEWAY_INGEST_POLICY}-{n}"
            self.policy_names.append(name)
            iot.CfnPolicy(
                self, f"GatewayIngestPolicy{n}", policy_name=name, policy_document=document
            )

        role = iam.Role(
            self,
            "RulesRole",
            assumed_by=iam.ServicePrincipal(
                "iot.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description="IoT topic rules: put telemetry to Kinesis and Firehose, errors to S3",
        )
        self.stream.grant_write(role)
        archive.delivery_stream_grant(role)
        storage.quarantine.grant_put(role, f"{ERRORS_PREFIX}*")
        acknowledge_wildcards(
            role,
            "The errorAction writes one object per failed message under errors/ with a "
            "generated key, so the grant is on the errors/* prefix.",
            resources=[f"{arn_of(storage.quarantine)}/{ERRORS_PREFIX}*"],
        )
        targets = Targets(
            stream_name=self.stream.stream_name,
            errors_bucket=storage.quarantine.bucket_name,
            delivery_stream_name=archive.delivery_stream_name,
            role_arn=role.role_arn,
        )
        self.rule_names: list[str] = []
        for entry in deployed_rules():
            name = entry["ruleName"]
            self.rule_names.append(name)
            rule = CfnResource(
                self,
                f"Rule-{name}",
                type="AWS::IoT::TopicRule",
                properties={
                    "RuleName": name,
                    "TopicRulePayload": cfn_payload(entry["topicRulePayload"], targets),
                },
            )
            rule.node.add_dependency(role)
