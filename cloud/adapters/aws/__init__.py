"""AWS adapters: the only package (with ``cloud.handlers``) that imports boto3."""

from cloud.adapters.aws.dynamodb_state_store import DynamoDbStateStore
from cloud.adapters.aws.iotdata_publisher import IotDataPublisher
from cloud.adapters.aws.s3_object_store import S3ObjectStore
from cloud.adapters.aws.sns_notifier import SnsNotifier

__all__ = ["DynamoDbStateStore", "IotDataPublisher", "S3ObjectStore", "SnsNotifier"]
