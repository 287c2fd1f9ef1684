"""Each Lambda role holds the actions its handler's code calls, on the stack's resources.

What the code calls (``cloud/adapters/aws``, ``cloud/handlers``): the state store
``get_item``/``query``/``update_item``/``delete_item``; Powertools idempotency (detector
only) ``get_item``/``put_item``/``update_item``/``delete_item``; iot-data ``publish`` only
(``IotDataShadowClient`` is the CLI's, no handler reads or updates a shadow through the
shadow API). The detector actions may publish what the local ``plantwatch-detectors``
credential may: shadow update requests and ``cmd/plantwatch/...``, never shadow replies.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloud.runtime.broker_auth import SERVICE_GRANTS, acl_matches
from tests.infra.iot_policy import Connection, allowed
from tests.infra.test_device_policy import ARN, resolve

STATE = {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
IDEMPOTENCY = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
TABLES = {
    # handler: {table logical-id fragment: dynamodb actions}
    "batcher": {},
    "inference": {"StateTable": STATE},
    "detector": {"StateTable": STATE, "IdempotencyTable": IDEMPOTENCY},
    "timers": {"StateTable": STATE},
}
TOPICS = [
    "$aws/things/pump-01/shadow/update",
    "$aws/things/pump-01/shadow/name/cfg/update",
    "$aws/things/pump-01/shadow/update/delta",
    "$aws/things/pump-01/shadow/update/accepted",
    "$aws/things/pump-01/shadow/name/cfg/update/delta",
    "$aws/things/pump-01/shadow/get",
    "$aws/things/pump-01/shadow/delete",
    "cmd/plantwatch/s1/pump-01/req",
    "dt/plantwatch/s1/pump-01/telemetry",
    "$aws/rules/plantwatch_telemetry_to_batcher/dt/plantwatch/s1/pump-01/telemetry",
]


def role_statements(synthesized, handler: str) -> list[dict[str, Any]]:
    (function,) = [
        f["Properties"]
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == f"cloud.handlers.{handler}.handler"
    ]
    role = function["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def resources(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


@pytest.mark.parametrize("handler", sorted(TABLES))
def test_each_role_has_the_dynamodb_actions_its_handler_calls(synthesized, handler) -> None:
    granted: dict[str, set[str]] = {}
    for statement in role_statements(synthesized, handler):
        wanted = [a for a in actions(statement) if a.startswith("dynamodb:")]
        for resource in resources(statement) if wanted else []:
            (table,) = [k for k in TABLES["detector"] if k in resource["Fn::GetAtt"][0]]
            granted.setdefault(table, set()).update(wanted)
    assert granted == TABLES[handler]


@pytest.mark.parametrize("handler", sorted(TABLES))
def test_no_role_uses_wildcard_actions_or_the_shadow_api(synthesized, handler) -> None:
    for statement in role_statements(synthesized, handler):
        assert statement["Effect"] == "Allow"
        for action in actions(statement):
            assert action != "*" and not action.endswith(":*"), (handler, action)
            assert action not in ("iot:GetThingShadow", "iot:UpdateThingShadow"), handler
        assert "*" not in resources(statement), handler


@pytest.mark.parametrize("handler", ["detector", "timers"])
@pytest.mark.parametrize("topic", TOPICS)
def test_detector_actions_publish_what_the_local_detectors_may(
    synthesized, handler: str, topic: str
) -> None:
    statements = [
        {**resolve(s), "Action": "iot:Publish"}
        for s in role_statements(synthesized, handler)
        if "iot:Publish" in actions(s)
    ]
    document = {"Statement": statements}
    nobody = Connection(client_id="-", thing_name=None)
    aws = allowed([document], "iot:Publish", topic, nobody, ARN)
    local = any(
        access in ("write", "readwrite") and acl_matches(pattern, topic)
        for access, pattern in SERVICE_GRANTS["plantwatch-detectors"]
    )
    assert aws == local, (topic, aws, local)


def test_the_other_roles_publish_nothing(synthesized) -> None:
    for handler in ("batcher", "inference"):
        for statement in role_statements(synthesized, handler):
            assert not any(a.startswith(("iot:", "sns:")) for a in actions(statement)), handler


def test_only_the_batcher_deletes_objects_and_only_its_spool(synthesized) -> None:
    """The batcher's spool (``spool/`` of the input bucket) is the only place a handler
    deletes from (``store_spool`` deletes spooled records once written); the L4E input
    files under ``input/`` are what training and inference read, and inference writes
    results but never deletes them."""
    deletes = []
    for handler in sorted(TABLES):
        for statement in role_statements(synthesized, handler):
            if any(a.startswith("s3:DeleteObject") for a in actions(statement)):
                assert handler == "batcher"
                deletes += resources(statement)
    assert deletes, "the batcher deletes spooled records"
    for resource in deletes:
        text = json.dumps(resource)
        joined = resource.get("Fn::Join", [None, [""]])[1] if isinstance(resource, dict) else [""]
        assert "StorageInput" in text and joined[-1] == "/spool/*", text


def test_the_batcher_writes_only_l4e_input_files_and_its_spool_in_the_input_bucket(
    synthesized,
) -> None:
    """The batcher puts L4E input files under ``input/`` (``<INPUT_PREFIX><site>/`` for a
    site) and spool records under ``spool/``; nothing else in the input bucket."""
    written = set()
    for statement in role_statements(synthesized, "batcher"):
        if "s3:PutObject" in actions(statement):
            for resource in resources(statement):
                if "StorageInput" in json.dumps(resource):
                    joined = resource.get("Fn::Join", [None, [""]])[1]
                    written.add(joined[-1] if isinstance(joined[-1], str) else json.dumps(resource))
    assert written == {"/input/*", "/spool/*"}


def test_the_batcher_writes_only_the_quarantine_prefix_of_the_quarantine_bucket(
    synthesized,
) -> None:
    """``errors/`` in the same bucket holds the topic rules' errorAction reports; the batcher
    quarantines under ``quarantine/`` and must not overwrite them."""
    for statement in role_statements(synthesized, "batcher"):
        for resource in resources(statement):
            text = json.dumps(resource)
            if "StorageQuarantine" in text:
                assert resource["Fn::Join"][1][-1] == "/quarantine/*", text


FIREHOSE_S3 = {
    "s3:AbortMultipartUpload",
    "s3:GetBucketLocation",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:PutObject",
}
"""The S3 actions Firehose needs for an S3 destination (AWS's documented delivery role)."""


def test_the_archive_delivery_role_has_firehoses_s3_actions_and_no_delete(synthesized) -> None:
    (role,) = [k for k in synthesized.resources("AWS::IAM::Role") if "ArchiveDeliveryRole" in k]
    granted = {
        action
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in actions(statement)
        if action.startswith("s3:")
    }
    assert granted == FIREHOSE_S3


def object_reads(synthesized, handler: str, bucket: str) -> set[str]:
    """What follows the ARN of *bucket* (a logical-id fragment) in the object resources
    *handler*'s role may ``s3:GetObject``: ``/*`` for the whole bucket."""
    read = set()
    for statement in role_statements(synthesized, handler):
        if "s3:GetObject*" in actions(statement) or "s3:GetObject" in actions(statement):
            for resource in resources(statement):
                if bucket in json.dumps(resource) and "Fn::Join" in resource:
                    read.add(resource["Fn::Join"][1][-1])
    return read


ARTIFACT_READS = {
    "batcher": set(),
    "inference": {"/models/*"},
    "detector": {"/detectors/*", "/alarms/*"},
    "timers": {"/detectors/*", "/alarms/*"},
}
"""Inference loads models from the registry under ``models/``; the detector and timers
load ``DETECTOR_MODEL_KEY`` and ``ALARM_MODEL_KEYS``, which the stack's context accepts
only under ``detectors/`` and ``alarms/`` (``infra/config.py``)."""


@pytest.mark.parametrize("handler", sorted(TABLES))
def test_each_role_reads_only_the_artifacts_its_handler_loads(synthesized, handler) -> None:
    assert object_reads(synthesized, handler, "StorageArtifacts") == ARTIFACT_READS[handler]


def test_the_detector_reads_only_results_under_the_output_prefix(synthesized) -> None:
    """It is notified of ``output/**/results.jsonl`` only and reads just that object."""
    assert object_reads(synthesized, "detector", "StorageOutput") == {"/output/*"}


def test_the_batcher_reads_only_its_input_files_and_spool(synthesized) -> None:
    """It reads back an input file to merge late readings into it (``input/``, per site
    ``input/<site>/``) and its spool records (``spool/``); nothing else in the bucket."""
    assert object_reads(synthesized, "batcher", "StorageInput") == {"/input/*", "/spool/*"}
