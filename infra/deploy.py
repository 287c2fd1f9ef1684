"""The ``cdk deploy`` / ``cdk destroy`` command lines ``plantwatch deploy|destroy`` run.

The CDK CLI is a Node.js program; it is run with ``npx`` (``aws-cdk`` from the npm
registry, major version 2), pointed at this project's app with the current interpreter,
so no global install and no ``cdk.json`` in the working folder are needed.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence

from edge.errors import ConfigError
from infra.config import STACK_NAME

CDK_PACKAGE = "aws-cdk@2"
QUIET_JSII = {
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
}
"""jsii (under aws-cdk-lib) prints a banner on Node.js 20, which the CDK CLI would show."""


def cdk_command(
    action: str,
    *,
    context: Sequence[str] = (),
    profile: str | None = None,
    extra: Sequence[str] = (),
    outdir: str = "cdk.out",
) -> list[str]:
    if action not in ("deploy", "destroy", "bootstrap", "synth", "diff"):
        raise ConfigError(f"cdk action {action!r} is not supported")
    command = ["npx", "--yes", CDK_PACKAGE, action]
    if action != "bootstrap":
        command.append(STACK_NAME)
    command += ["--app", f"{sys.executable} -m infra.app", "--output", outdir]
    for item in context:
        if "=" not in item:
            raise ConfigError(f"--context {item!r}: expected KEY=VALUE")
        command += ["--context", item]
    if profile:
        command += ["--profile", profile]
    return command + list(extra)


def check_prerequisites() -> None:
    """Node.js with npx on PATH and AWS credentials the SDK can find."""
    if shutil.which("npx") is None:
        raise ConfigError("npx: not found; install Node.js 20 or later (the CDK CLI runs on it)")
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        boto3.client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(f"AWS credentials: {exc} (configure a profile: aws configure)") from None
