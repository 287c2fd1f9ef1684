"""plantwatch deploy|destroy build the documented cdk command lines."""

from __future__ import annotations

import json
import sys

from cloud.cli.main import main


def test_deploy_dry_run_prints_the_cdk_commands(capsys) -> None:
    assert (
        main(["deploy", "--dry-run", "--json", "--bootstrap", "-c", "alert_emails=a@b.example"])
        == 0
    )
    commands = json.loads(capsys.readouterr().out)["commands"]
    assert [c[3] for c in commands] == ["bootstrap", "deploy"]
    deploy = commands[1]
    assert deploy[:5] == ["npx", "--yes", "aws-cdk@2", "deploy", "plantwatch"]
    assert deploy[deploy.index("--app") + 1] == f"{sys.executable} -m infra.app"
    assert deploy[deploy.index("--context") + 1] == "alert_emails=a@b.example"


def test_destroy_with_yes_forces(capsys) -> None:
    assert main(["destroy", "--dry-run", "--yes"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("npx --yes aws-cdk@2 destroy plantwatch") and line.endswith("--force")


def test_a_context_without_value_is_bad_input(capsys) -> None:
    assert main(["deploy", "--dry-run", "-c", "alert_emails"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
