"""SNS: the detectors' alert topic (email and SMS subscribers from context, selected by the
``channel`` message attribute) and the operators' topic the CloudWatch alarms use."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import DeployConfig


def channel_filter(channel: str) -> dict[str, sns.SubscriptionFilter]:
    return {"channel": sns.SubscriptionFilter.string_filter(allowlist=[channel])}


class Alerts(Construct):
    def __init__(self, scope: Construct, id: str, *, config: DeployConfig, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(
            self, "AlertsTopic", display_name="plantwatch alerts", master_key=key, enforce_ssl=True
        )
        for email in config.alert_emails:
            self.topic.add_subscription(
                subscriptions.EmailSubscription(email, filter_policy=channel_filter("email"))
            )
        for phone in config.alert_phones:
            self.topic.add_subscription(
                subscriptions.SmsSubscription(phone, filter_policy=channel_filter("sms"))
            )
        self.operations_topic = sns.Topic(
            self,
            "OperationsTopic",
            display_name="plantwatch operations",
            master_key=key,
            enforce_ssl=True,
        )
        for email in config.alert_emails:
            self.operations_topic.add_subscription(subscriptions.EmailSubscription(email))
        # enforce_ssl's topic policy replaces SNS's default one, which let the account's
        # services publish: without this the alarms' notifications are refused
        self.operations_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.operations_topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:"
                        f"{Aws.ACCOUNT_ID}:alarm:*"
                    },
                },
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
