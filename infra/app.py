"""``cdk.App`` entry point: ``cdk synth``/``deploy`` run ``python -m infra.app`` (cdk.json).

``build_app`` is what the tests synthesize, with cdk-nag's AwsSolutions checks attached, so
an unacknowledged finding fails ``app.synth()`` here and in the tests alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.bundle import build_assets
from infra.config import STACK_NAME, from_context
from infra.stack import PlantwatchStack

FEATURE_FLAGS = {"@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True}
"""CDK feature flags the stack relies on, whatever cdk.json or ``-c`` say: the access-log
bucket has ACLs disabled, so S3 log delivery is granted by its bucket policy."""


def build_app(
    outdir: str | None = None, context: Mapping[str, Any] | None = None, nag: bool = True
) -> tuple[cdk.App, PlantwatchStack]:
    app = cdk.App(outdir=outdir, context=dict(context or {}), post_cli_context=FEATURE_FLAGS)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    config = from_context(app.node.try_get_context)
    code = build_assets(Path(app.outdir) / "lambda-src")
    env = None
    if os.environ.get("CDK_DEFAULT_ACCOUNT") and os.environ.get("CDK_DEFAULT_REGION"):
        env = cdk.Environment(
            account=os.environ["CDK_DEFAULT_ACCOUNT"], region=os.environ["CDK_DEFAULT_REGION"]
        )
    stack = PlantwatchStack(
        app,
        STACK_NAME,
        config=config,
        code=code,
        env=env,
        description="plantwatch: IoT Core -> Kinesis -> Lambda engines -> S3/DynamoDB/SNS",
    )
    cdk.Tags.of(stack).add("project", "plantwatch")
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
