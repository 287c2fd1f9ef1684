"""``plantwatch import iotevents cdk.out`` follows CDK nested stacks: a ``NestedStack``'s
resources are in their own ``*.nested.template.json`` in cdk.out, which the parent's
``AWS::CloudFormation::Stack`` resource names (its ``aws:asset:path`` metadata, or, when
``cdk synth`` wrote no asset metadata, the asset manifest's file whose object key its
``TemplateURL`` ends with) and passes its ``Parameters``: here a ``Ref`` to the parent's
input and to a parent parameter the user gives with ``--parameter``. The files are in the
shape ``cdk synth`` (aws-cdk-lib 2) writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from detector_models import cdk_detector_model

from cloud.cli.main import main
from cloud.migrate.iotevents import registered

NESTED_FILE = "PlantStackNested4F8BB6D6.nested.template.json"
ASSET_HASH = "be21e8f3201f37e11c3c0590c74afefb27dc6c36ac72e0dcc278b94d2c8ce80a"
INPUT_PARAMETER = "referencetoPlantStackInE6C9B136Ref"
LIMIT_PARAMETER = "referencetoPlantStackLimitRef"


def _parent() -> dict[str, Any]:
    stack = {
        "Type": "AWS::CloudFormation::Stack",
        "Properties": {
            "Parameters": {
                INPUT_PARAMETER: {"Ref": "In"},
                LIMIT_PARAMETER: {"Ref": "Limit"},
            },
            "TemplateURL": {
                "Fn::Join": [
                    "",
                    [
                        "https://s3.",
                        {"Ref": "AWS::Region"},
                        ".",
                        {"Ref": "AWS::URLSuffix"},
                        "/",
                        {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"},
                        f"/{ASSET_HASH}.json",
                    ],
                ]
            },
        },
        "UpdateReplacePolicy": "Delete",
        "DeletionPolicy": "Delete",
        "Metadata": {
            "aws:cdk:path": "PlantStack/Nested.NestedStack/Nested.NestedStackResource",
            "aws:asset:path": NESTED_FILE,
            "aws:asset:property": "TemplateURL",
        },
    }
    return {
        "Parameters": {
            "Limit": {"Type": "Number"},
            "BootstrapVersion": {
                "Type": "AWS::SSM::Parameter::Value<String>",
                "Default": "/cdk-bootstrap/hnb659fds/version",
            },
        },
        "Resources": {
            "In": {
                "Type": "AWS::IoTEvents::Input",
                "Properties": {
                    "InputDefinition": {"Attributes": [{"JsonPath": "id"}, {"JsonPath": "temp"}]},
                    "InputName": "PumpIn",
                },
                "Metadata": {"aws:cdk:path": "PlantStack/In"},
            },
            "NestedNestedStackNestedNestedStackResourceDEFDAA4D": stack,
        },
    }


def _nested() -> dict[str, Any]:
    condition = {
        "Fn::Join": [
            "",
            ["$input.", {"Ref": INPUT_PARAMETER}, ".temp > ", {"Ref": LIMIT_PARAMETER}],
        ]
    }
    return {
        "Resources": {
            "Watch": cdk_detector_model(
                "watch", "id", "arn:aws:iam::123456789012:role/r", condition
            )
        },
        "Parameters": {INPUT_PARAMETER: {"Type": "String"}, LIMIT_PARAMETER: {"Type": "String"}},
    }


def _assets() -> dict[str, Any]:
    destination = {
        "bucketName": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}",
        "objectKey": f"{ASSET_HASH}.json",
    }
    return {
        "version": "55.0.0",
        "files": {
            ASSET_HASH: {
                "displayName": "Nested Nested Stack Template",
                "source": {"path": NESTED_FILE, "packaging": "file"},
                "destinations": {"current_account-current_region-bdb9ef55": destination},
            }
        },
    }


def _assembly(tmp_path: Path) -> Path:
    out = tmp_path / "cdk.out"
    out.mkdir()
    (out / "cdk.out").write_text(json.dumps({"version": "55.0.0"}))
    (out / "PlantStack.template.json").write_text(json.dumps(_parent()))
    (out / NESTED_FILE).write_text(json.dumps(_nested()))
    (out / "PlantStack.assets.json").write_text(json.dumps(_assets()))
    manifest = {
        "version": "55.0.0",
        "artifacts": {
            "PlantStack.assets": {
                "type": "cdk:asset-manifest",
                "properties": {"file": "PlantStack.assets.json"},
            },
            "PlantStack": {
                "type": "aws:cloudformation:stack",
                "environment": "aws://unknown-account/unknown-region",
                "properties": {"templateFile": "PlantStack.template.json"},
                "dependencies": ["PlantStack.assets"],
            },
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _condition(data: Path) -> str:
    found = registered(data / "detectors", "watch")
    assert found is not None
    body = json.loads(found[0].read_text())
    (state, _hot) = body["detectorModelDefinition"]["states"]
    return state["onInput"]["transitionEvents"][0]["condition"]


def _imported(capsys: pytest.CaptureFixture[str], out: Path, data: Path) -> dict[str, Any]:
    code = main(
        ["import", "iotevents", str(out), "--data", str(data), "--json", "--parameter", "Limit=30"]
    )
    text = capsys.readouterr()
    assert code == 0, text.err
    return json.loads(text.out)


def test_a_nested_stacks_models_are_imported_with_the_parents_parameters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = _imported(capsys, _assembly(tmp_path), tmp_path / "d")
    assert [m["name"] for m in report["models"]] == ["watch"]
    assert [i["name"] for i in report["inputs"]] == ["PumpIn"]
    assert _condition(tmp_path / "d") == "$input.PumpIn.temp > 30"


def test_without_asset_metadata_the_asset_manifest_names_the_nested_template(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = _assembly(tmp_path)
    parent = _parent()
    del parent["Resources"]["NestedNestedStackNestedNestedStackResourceDEFDAA4D"]["Metadata"]
    (out / "PlantStack.template.json").write_text(json.dumps(parent))
    _imported(capsys, out, tmp_path / "d")
    assert _condition(tmp_path / "d") == "$input.PumpIn.temp > 30"


def test_a_nested_template_missing_from_cdk_out_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = _assembly(tmp_path)
    (out / NESTED_FILE).unlink()
    code = main(
        ["import", "iotevents", str(out), "--data", str(tmp_path / "d"), "--parameter", "Limit=30"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert NESTED_FILE in err and "cdk synth" in err, err
