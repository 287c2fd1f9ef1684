"""AWS adapters: the only package (with ``cloud.handlers``) that imports boto3."""

from cloud.adapters.aws.dynamodb_state_store import DynamoDbStateStore
from cloud.adapters.aws.s3_object_store import S3ObjectStore

__all__ = ["DynamoDbStateStore", "S3ObjectStore"]
