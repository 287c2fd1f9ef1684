"""Synthesize the whole app once per test session (with cdk-nag) and share the template."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

CONTEXT = {
    "alert_emails": ["ops@example.com"],
    "alert_phones": ["+4915112345678"],
    "schedulers": [
        {"name": "pumps", "upload_frequency": "PT5M", "delay_offset_min": 2},
        {"name": "fans", "upload_frequency": "PT1H", "delay_offset_min": 10},
    ],
    "retention": {"archive/": 365, "input/": 30, "quarantine/": 14, "stream/": 7},
    "default_site": "plant1",
    "detector_model_key": "detectors/site_pumps/0123456789ab.json",
    "alarm_model_keys": "alarms/score_high/0123456789ab.json,alarms/temp/ba9876543210.json",
}


@dataclass(frozen=True)
class Synthesized:
    outdir: Path
    template_path: Path
    template: dict[str, Any]
    assertions: Any  # aws_cdk.assertions.Template
    report: dict[str, Any]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == kind}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    from aws_cdk.assertions import Template

    from infra.app import build_app

    outdir = tmp_path_factory.mktemp("cdk") / "cdk.out"
    app, stack = build_app(outdir=str(outdir), context=CONTEXT)
    assembly = app.synth()  # raises ValidationFailed on an unacknowledged cdk-nag finding
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    template_path = outdir / artifact.template_file
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Synthesized(
        outdir=outdir,
        template_path=template_path,
        template=artifact.template,
        assertions=Template.from_json(artifact.template),
        report=report,
    )
