"""``plantwatch import iotevents cdk.out``: the folder ``cdk synth`` writes is a cloud
assembly, its ``manifest.json`` naming each stack's template beside CDK's own files
(``tree.json``, ``*.assets.json``, the ``cdk.out`` marker) and the nested assemblies of
CDK stages. The import reads the templates the manifest names, those of nested
assemblies included, and passes over the stacks that hold no IoT Events resource."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from detector_models import cdk_detector_model

from cloud.cli.main import main
from tests.detector_models import replay_registered


def _watch(name: str, input_logical: str, input_name: str) -> dict[str, Any]:
    """A stack as the CDK synthesizes it: an input and a detector model reading it."""
    ref = {"Ref": input_logical}
    return {
        "Resources": {
            input_logical: {
                "Type": "AWS::IoTEvents::Input",
                "Properties": {
                    "InputName": input_name,
                    "InputDefinition": {
                        "Attributes": [
                            {"JsonPath": "payload.deviceId"},
                            {"JsonPath": "payload.temp"},
                        ]
                    },
                },
                "Metadata": {"aws:cdk:path": f"{name}/Input/Resource"},
            },
            "WatchRoleF2FB4D88": {"Type": "AWS::IAM::Role", "Properties": {}},
            "Watch559C0B0E": cdk_detector_model(
                name,
                "payload.deviceId",
                {"Fn::GetAtt": ["WatchRoleF2FB4D88", "Arn"]},
                {"Fn::Join": ["", ["$input.", ref, ".payload.temp > 30"]]},
            ),
        },
        "Parameters": {
            "BootstrapVersion": {
                "Type": "AWS::SSM::Parameter::Value<String>",
                "Default": "/cdk-bootstrap/hnb659fds/version",
            }
        },
        "Rules": {
            "CheckBootstrapVersion": {
                "Assertions": [
                    {
                        "Assert": {
                            "Fn::Not": [{"Fn::Contains": [["1", "2"], {"Ref": "BootstrapVersion"}]}]
                        },
                        "AssertDescription": "CDK bootstrap stack version 6 required.",
                    }
                ]
            }
        },
    }


def _stack(template: str) -> dict[str, Any]:
    return {
        "type": "aws:cloudformation:stack",
        "environment": "aws://unknown-account/unknown-region",
        "properties": {"templateFile": template},
    }


def _assembly(tmp_path: Path) -> Path:
    out = tmp_path / "cdk.out"
    out.mkdir()
    (out / "cdk.out").write_text(json.dumps({"version": "36.0.0"}))
    (out / "tree.json").write_text(json.dumps({"version": "tree-0.1", "tree": {"id": "App"}}))
    (out / "PlantStack.assets.json").write_text(json.dumps({"version": "36.0.0", "files": {}}))
    (out / "PlantStack.template.json").write_text(
        json.dumps(_watch("plantWatch", "In1", "PlantIn"))
    )
    bucket = {"Resources": {"Logs": {"Type": "AWS::S3::Bucket", "Properties": {}}}}
    (out / "LogsStack.template.json").write_text(json.dumps(bucket))
    stage = out / "assembly-Prod"
    stage.mkdir()
    (stage / "ProdPlantStack.template.json").write_text(
        json.dumps(_watch("prodWatch", "In2", "ProdIn"))
    )
    (stage / "manifest.json").write_text(
        json.dumps(
            {
                "version": "36.0.0",
                "artifacts": {"ProdPlantStack": _stack("ProdPlantStack.template.json")},
            }
        )
    )
    manifest = {
        "version": "36.0.0",
        "artifacts": {
            "PlantStack.assets": {
                "type": "cdk:asset-manifest",
                "properties": {"file": "PlantStack.assets.json"},
            },
            "PlantStack": _stack("PlantStack.template.json"),
            "LogsStack": _stack("LogsStack.template.json"),
            "assembly-Prod": {
                "type": "cdk:cloud-assembly",
                "properties": {"directoryName": "assembly-Prod", "displayName": "Prod"},
            },
            "Tree": {"type": "cdk:tree", "properties": {"file": "tree.json"}},
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_the_folder_cdk_synth_writes_is_imported_whole(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = _assembly(tmp_path)
    code = main(["import", "iotevents", str(out), "--data", str(tmp_path / "d"), "--json"])
    text = capsys.readouterr().out
    assert code == 0, text
    report = json.loads(text)
    assert sorted(m["name"] for m in report["models"]) == ["plantWatch", "prodWatch"]
    assert sorted(i["name"] for i in report["inputs"]) == ["PlantIn", "ProdIn"]
    message = {"inputName": "ProdIn", "payload": {"payload": {"deviceId": "d1", "temp": 31}}}
    run = replay_registered(tmp_path / "d", "prodWatch", message, capsys)
    (detector,) = run["detectors"]
    assert detector["detector"]["state"]["stateName"] == "hot"


def test_a_template_the_manifest_names_but_is_missing_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = _assembly(tmp_path)
    (out / "PlantStack.template.json").unlink()
    code = main(["import", "iotevents", str(out), "--data", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2
    assert "PlantStack.template.json" in err and "manifest.json" in err, err
