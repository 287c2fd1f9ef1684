"""``--aws``: the deployed stack a command writes to, found by its CloudFormation outputs.

A command names what it needs (the artifacts bucket, the state table, ...). Each one comes
from its own option when given (``--artifacts-bucket``, ``--state-table``); any not given is
read from the outputs of the stack ``--stack`` (default ``plantwatch``), looked up once, so
a user who deployed with ``plantwatch deploy`` never copies a generated bucket name.

The adapters are the ones the Lambda handlers use (``S3ObjectStore``, ``DynamoDbStateStore``
with the handlers' retention), so what a command writes is what the functions read.
Credentials and the Region are the AWS SDK's own (profile, environment) unless ``--region``
is given.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge.cliargs import aws_region
from infra.config import STACK_NAME

if TYPE_CHECKING:
    from cloud.adapters.aws import DynamoDbStateStore, S3ObjectStore
    from cloud.inference.registry import ModelRegistry
    from cloud.l4e.arns import ArnScope
    from infra.outputs import Deployment


@dataclass(frozen=True, slots=True)
class Resource:
    flag: str
    output: str
    what: str


ARTIFACTS = Resource("--artifacts-bucket", "ArtifactsBucket", "bucket of models/ and detectors/")
STATE = Resource("--state-table", "StateTable", "DynamoDB state table")
INPUT = Resource("--input-bucket", "InputBucket", "L4E input bucket")
OUTPUT = Resource("--output-bucket", "OutputBucket", "results bucket")
ALERTS = Resource("--alerts-topic", "AlertsTopicArn", "SNS topic alerts are published to")


def add_arguments(
    parser: argparse.ArgumentParser, *resources: Resource, required: bool = False
) -> None:
    """``--aws`` (required for commands that only make sense on AWS), ``--stack``,
    ``--region`` and one option per resource that overrides the stack's output."""
    parser.add_argument(
        "--aws",
        action="store_true",
        required=required,
        help="work on the AWS deployment (names from --stack unless given below)",
    )
    parser.add_argument(
        "--stack",
        default=STACK_NAME,
        help="with --aws: CloudFormation stack whose outputs name the resources "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--region", type=aws_region, help="with --aws: AWS Region (default: the AWS profile's)"
    )
    for resource in resources:
        parser.add_argument(
            resource.flag,
            dest=_dest(resource),
            metavar="NAME",
            help=f"with --aws: the {resource.what} (default: the stack's {resource.output})",
        )


def _dest(resource: Resource) -> str:
    return resource.flag.lstrip("-").replace("-", "_")


class AwsTarget:
    """The deployment named on the command line; boto3 clients share one session."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stack: str = args.stack
        self._session: Any = None
        self._deployment: Deployment | None = None

    @property
    def session(self) -> Any:
        if self._session is None:
            import boto3

            from edge.errors import ConfigError

            self._session = boto3.Session(region_name=self.args.region)
            if not self._session.region_name:
                raise ConfigError(
                    "--region: no AWS Region given or configured (pass --region or set AWS_REGION)"
                )
        return self._session

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def arn_scope(self) -> ArnScope:
        """The partition, Region and account of the credentials (one STS call, which needs
        no permission): what the L4E-shaped ARNs of an execution record are made in, as
        the inference function makes them from its own ARN."""
        from cloud.l4e.arns import ArnScope

        account = self.client("sts").get_caller_identity()["Account"]
        partition = self.session.get_partition_for_region(self.region)
        return ArnScope(str(partition), self.region, str(account))

    def deployment(self) -> Deployment:
        """The stack's outputs, read on first use (never when every name was given)."""
        if self._deployment is None:
            from infra.outputs import describe

            self._deployment = describe(self.stack, self.client("cloudformation"))
        return self._deployment

    def name(self, resource: Resource) -> str:
        given = getattr(self.args, _dest(resource), None)
        return given or self.deployment().get(resource.output, resource.flag)

    def bucket(self, name: str) -> S3ObjectStore:
        from cloud.adapters.aws import S3ObjectStore

        return S3ObjectStore(name, client=self.client("s3"))

    def state(self) -> DynamoDbStateStore:
        """The state table, with the TTL retention the handlers write (executions expire
        after 90 days whoever ran them)."""
        from cloud.adapters.aws import DynamoDbStateStore
        from cloud.handlers.settings import RETENTION

        return DynamoDbStateStore(
            self.name(STATE), client=self.client("dynamodb"), retention=RETENTION
        )

    def registry(self) -> ModelRegistry:
        """The model registry the inference function reads: ``models/`` in the artifacts
        bucket."""
        from cloud.inference.registry import ARTIFACTS_PREFIX, ModelRegistry

        bucket = self.name(ARTIFACTS)
        return ModelRegistry(
            self.bucket(bucket), ARTIFACTS_PREFIX, where=f"s3://{bucket}/{ARTIFACTS_PREFIX}"
        )
