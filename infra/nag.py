"""cdk-nag 3 acknowledgements: every finding the stack accepts is acknowledged here, with
the reason, on the narrowest construct that raises it.

cdk-nag 3 reports wildcard IAM findings one by one (``AwsSolutions-IAM5[Action::s3:List*]``),
so each is acknowledged by its own id; a new wildcard still fails the synth.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

GRANT_ACTION_FAMILIES = (
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
    "s3:Abort*",
    "s3:DeleteObject*",
    "s3:GetBucket*",
    "s3:GetObject*",
    "s3:List*",
)
"""Action families that CDK's grant helpers (``grant_read``, ``grant_write``,
``grant_encrypt_decrypt``) expand to, scoped to one bucket or key each."""


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Accept AwsSolutions *rule* (e.g. ``AwsSolutions-S1``) on *construct* and below."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))


def acknowledge_wildcards(
    construct: IConstruct,
    reason: str,
    *,
    resources: Iterable[str] = (),
    grant_actions: bool = True,
) -> None:
    """Accept the IAM5 findings of CDK grant helpers and of the named wildcard *resources*
    (as cdk-nag prints them, e.g. ``<StorageInput124FA7A1.Arn>/*``)."""
    if grant_actions:
        for action in GRANT_ACTION_FAMILIES:
            acknowledge(
                construct,
                f"AwsSolutions-IAM5[Action::{action}]",
                "CDK grant helper action family, scoped to one bucket or one key.",
            )
    for resource in resources:
        acknowledge(construct, f"AwsSolutions-IAM5[Resource::{resource}]", reason)


def arn_of(resource: IConstruct) -> str:
    """How cdk-nag prints the ARN of an L2 *resource* of this stack: ``<LogicalId.Arn>``."""
    from aws_cdk import CfnElement, Stack

    element = resource.node.default_child
    assert isinstance(element, CfnElement)
    stack = Stack.of(resource)
    return f"<{stack.resolve(stack.get_logical_id(element))}.Arn>"
