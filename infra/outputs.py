"""The stack's CloudFormation outputs: how a command finds a deployment by its stack name.

The names live here once. The stack declares them (``infra/stack.py``) and the CLI reads
them (``plantwatch model push --aws``, ``schedulers create --aws``, ``detectors push
--aws``), so the two cannot drift apart. This module imports no CDK: the CLI reads outputs
with boto3 on a machine that may not have the CDK packages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from edge.errors import ConfigError, NotFoundError, StorageError
from infra.config import SchedulerSpec

INPUT_BUCKET = "InputBucket"
OUTPUT_BUCKET = "OutputBucket"
QUARANTINE_BUCKET = "QuarantineBucket"
ARTIFACTS_BUCKET = "ArtifactsBucket"
STATE_TABLE = "StateTable"
ALERTS_TOPIC_ARN = "AlertsTopicArn"
SCHEDULERS = "Schedulers"
DETECTOR_MODEL_KEY = "DetectorModelKey"
"""Declared only when the deployment sets ``detector_model_key``."""
ALARM_MODEL_KEYS = "AlarmModelKeys"
"""Declared only when the deployment sets ``alarm_model_keys`` (comma-separated)."""
DEFAULT_SITE = "DefaultSite"
"""The functions' ``DEFAULT_SITE``; declared only when the deployment has one."""

DESCRIPTIONS: Mapping[str, str] = {
    INPUT_BUCKET: "L4E input bucket (INPUT_BUCKET): the batcher writes, inference reads",
    OUTPUT_BUCKET: "results bucket (OUTPUT_BUCKET): results.jsonl under output/",
    QUARANTINE_BUCKET: "quarantined messages and rule errors (QUARANTINE_BUCKET)",
    ARTIFACTS_BUCKET: "models under models/, detector models under detectors/",
    STATE_TABLE: "DynamoDB state table (STATE_TABLE): schedulers, executions, detectors",
    ALERTS_TOPIC_ARN: "SNS topic the detectors publish alerts to (ALERTS_TOPIC_ARN)",
    SCHEDULERS: "the inference schedules deployed: [{name, upload_frequency, delay_offset_min}]",
    DETECTOR_MODEL_KEY: "the detector model the functions run (DETECTOR_MODEL_KEY)",
    ALARM_MODEL_KEYS: "the alarm models the functions run (ALARM_MODEL_KEYS)",
    DEFAULT_SITE: "the site whose assets have bare keys (DEFAULT_SITE)",
}


def schedulers_value(specs: tuple[SchedulerSpec, ...]) -> str:
    """The ``Schedulers`` output: compact JSON, read back by :meth:`Deployment.schedulers`."""
    return json.dumps(
        [
            {
                "name": s.name,
                "upload_frequency": s.upload_frequency,
                "delay_offset_min": s.delay_offset_min,
            }
            for s in specs
        ],
        separators=(",", ":"),
    )


@dataclass(frozen=True, slots=True)
class Deployment:
    """The outputs of one deployed stack."""

    stack: str
    outputs: Mapping[str, str]

    def get(self, name: str, flag: str) -> str:
        """Output *name*; a stack without it (deployed before it existed) is named, with the
        option that gives the value directly."""
        value = self.outputs.get(name)
        if not value:
            raise ConfigError(
                f"stack {self.stack!r} has no output {name} (deploy it again with this "
                f"version of plantwatch, or pass {flag})"
            )
        return value

    def schedulers(self) -> dict[str, SchedulerSpec]:
        """The deployed EventBridge schedules by scheduler name (empty if not declared)."""
        text = self.outputs.get(SCHEDULERS)
        if not text:
            return {}
        try:
            raw: Any = json.loads(text)
            specs = [
                SchedulerSpec(s["name"], s["upload_frequency"], int(s["delay_offset_min"]))
                for s in raw
            ]
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(
                f"stack {self.stack!r}: output {SCHEDULERS} is not valid: {exc}"
            ) from None
        return {s.name: s for s in specs}

    @property
    def detector_model_key(self) -> str | None:
        return self.outputs.get(DETECTOR_MODEL_KEY) or None

    @property
    def default_site(self) -> str | None:
        return self.outputs.get(DEFAULT_SITE) or None

    @property
    def alarm_model_keys(self) -> tuple[str, ...]:
        text = self.outputs.get(ALARM_MODEL_KEYS) or ""
        return tuple(k for k in text.split(",") if k)


def describe(stack: str, client: Any) -> Deployment:
    """Read the outputs of *stack* with a CloudFormation *client* (``describe_stacks``)."""
    try:
        found = client.describe_stacks(StackName=stack)["Stacks"]
    except NoCredentialsError:
        raise ConfigError(
            "AWS credentials: none found (run `aws configure`, or set AWS_PROFILE)"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", ""):
            region = client.meta.region_name
            raise NotFoundError(
                f"stack {stack!r}: not deployed in {region} (run `plantwatch deploy`, pass "
                "--region, or name the resources directly)"
            ) from None
        raise StorageError(f"stack {stack!r}: describe_stacks failed: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"stack {stack!r}: describe_stacks failed: {exc}") from exc
    if not found:
        raise NotFoundError(f"stack {stack!r}: not found")
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in found[0].get("Outputs", [])}
    return Deployment(stack, outputs)
