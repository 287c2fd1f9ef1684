"""L4E-shaped ARNs for plantwatch's models, model versions and schedulers (l4e-contracts §6).

An ``InferenceExecutionSummary`` names its model, model version and scheduler by ARN as
well as by name. L4E's ARNs are ``arn:<partition>:lookoutequipment:<region>:<account>:``
followed by ``model/<name>/<id>``, ``model/<name>/<id>/model-version/<N>`` or
``inference-scheduler/<name>/<id>``, where ``<id>`` is an identifier L4E generates (the
patterns of the ``ModelArn``, ``ModelVersionArn`` and ``InferenceSchedulerArn`` shapes in
the ``lookoutequipment`` 2020-12-15 API model).

plantwatch's resources have no such identifier and are no resources of the
``lookoutequipment`` service: these ARNs keep code that reads or parses the summaries
working, but IAM, tagging and the AWS APIs do not know them. Their ``<id>`` is
:data:`RESOURCE_ID`. They are only made where the Region and account are known (the
inference Lambda's own ARN gives both); elsewhere none is made up (docs/migrating.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

RESOURCE_ID = "plantwatch"
"""The ``<id>`` segment L4E fills with a generated identifier."""
_ARN_RE = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z-]+)?):[^:]+:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):.+"
)


@dataclass(frozen=True, slots=True)
class ArnScope:
    """The partition, Region and account the ARNs are made in."""

    partition: str
    region: str
    account: str

    @classmethod
    def from_arn(cls, arn: Any) -> ArnScope | None:
        """The scope of another resource's ARN (a Lambda function's), or None when *arn*
        is no ARN with a Region and a 12-digit account."""
        match = _ARN_RE.fullmatch(arn) if isinstance(arn, str) else None
        if match is None:
            return None
        return cls(match["partition"], match["region"], match["account"])

    def _prefix(self) -> str:
        return f"arn:{self.partition}:lookoutequipment:{self.region}:{self.account}"

    def model(self, name: str) -> str:
        return f"{self._prefix()}:model/{name}/{RESOURCE_ID}"

    def model_version(self, name: str, version: int) -> str:
        return f"{self.model(name)}/model-version/{version}"

    def inference_scheduler(self, name: str) -> str:
        return f"{self._prefix()}:inference-scheduler/{name}/{RESOURCE_ID}"
