"""Import directions stay one way: engines know nothing of AWS or of the local runtime.

Scans the source (not runtime imports), so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

AWS_MODULES = ("boto3", "botocore", "aws_lambda_powertools", "mypy_boto3")
ENGINE_PACKAGES = (
    "cloud/rules",
    "cloud/batcher",
    "cloud/inference",
    "cloud/detectors",
    "cloud/shadow",
    "cloud/l4e",
    "cloud/devices",
    "cloud/archive",
    "cloud/migrate",
    "cloud/alerts.py",
    "cloud/feeder.py",
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _files(*relative: str) -> list[Path]:
    out: list[Path] = []
    for rel in relative:
        target = ROOT / rel
        out.extend([target] if target.is_file() else sorted(target.rglob("*.py")))
    return out


@pytest.mark.parametrize("path", _files(*ENGINE_PACKAGES), ids=lambda p: str(p.relative_to(ROOT)))
def test_engines_do_not_import_aws_or_runtime(path: Path) -> None:
    bad = {
        name
        for name in _imports(path)
        if name.startswith(AWS_MODULES)
        or name.startswith(("cloud.adapters.aws", "cloud.runtime", "cloud.handlers", "cloud.cli"))
    }
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _files("edge"), ids=lambda p: str(p.relative_to(ROOT)))
def test_edge_stands_alone(path: Path) -> None:
    bad = {n for n in _imports(path) if n.startswith(("cloud", "simulator", "infra"))}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _files("cloud/handlers"), ids=lambda p: str(p.relative_to(ROOT)))
def test_handlers_import_no_runtime_cli_or_local_adapter(path: Path) -> None:
    """A Lambda bundle holds neither the local runtime, the CLI nor the local adapters."""
    bad = {
        name
        for name in _imports(path)
        if name.startswith(("cloud.runtime", "cloud.cli", "cloud.adapters.local", "simulator"))
    }
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_only_aws_adapters_and_handlers_import_boto3() -> None:
    allowed = ("cloud/adapters/aws/", "cloud/handlers/", "cloud/cli/", "cloud/bench/", "infra/")
    offenders = []
    for path in _files("cloud", "simulator", "edge"):
        rel = str(path.relative_to(ROOT))
        if rel.startswith(allowed):
            continue
        if any(n.startswith(AWS_MODULES) for n in _imports(path)):
            offenders.append(rel)
    assert not offenders
