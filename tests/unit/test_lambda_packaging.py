"""Lambda bundles: only the project's own code, never boto3/numpy/pandas/pyarrow (the runtime and
the AWS SDK for pandas layer provide those), and nothing of the local runtime, CLI or local
adapters; a written bundle imports its handler from its own files alone, and each CDK code
asset is its function's bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cloud.handlers import packaging

FORBIDDEN = ("cloud/runtime/", "cloud/cli/", "cloud/adapters/local/", "simulator/", "infra/")
LAYERED = {"boto3", "botocore", "numpy", "pandas", "pyarrow"}


@pytest.mark.parametrize("name", sorted(packaging.HANDLERS))
def test_bundle_holds_only_what_a_handler_may_reach(name: str) -> None:
    found = packaging.bundle(packaging.HANDLERS[name])
    assert found.handler == f"cloud.handlers.{name}.handler"
    assert f"cloud/handlers/{name}.py" in found.files
    assert not [f for f in found.files if f.startswith(FORBIDDEN)]
    assert not [f for f in found.files if Path(f).parts[0] in LAYERED]
    assert LAYERED.isdisjoint(found.install)
    assert "boto3" in found.provided
    scoring = ("threadpoolctl",) if name == "inference" else ()
    assert found.install == ("aws_lambda_powertools", *scoring)
    assert ("numpy" in found.provided) == (name == "inference")
    for package in {str(Path(f).parent) for f in found.files if f.endswith(".py")}:
        assert f"{package}/__init__.py" in found.files, package


def test_the_detector_bundle_carries_the_default_model() -> None:
    files = packaging.bundle(packaging.HANDLERS["detector"]).files
    assert "cloud/detectors/models/equipment_anomaly.json" in files
    assert "cloud/detectors/models/anomaly_results_input.json" in files


def test_type_checking_imports_are_not_followed(tmp_path: Path) -> None:
    (tmp_path / "cloud").mkdir()
    (tmp_path / "cloud" / "__init__.py").write_text("")
    (tmp_path / "cloud" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from cloud import b\nelse:\n    from . import c\n"
        "def f():\n    import requests\n"
    )
    for name in ("b", "c"):
        (tmp_path / "cloud" / f"{name}.py").write_text("")
    found = packaging.bundle("cloud.a", root=tmp_path)
    assert found.modules == ("cloud", "cloud.a", "cloud.c")
    assert found.install == ("requests",)


def test_a_written_bundle_imports_its_handler_from_its_own_files(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = subprocess.run(
        [sys.executable, "-m", "cloud.handlers.packaging", "detector", "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    manifest = json.loads(result.stdout)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        manifest["files"]
    )
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import cloud.handlers.detector as h;"
        "mods = [m for n, m in list(sys.modules.items()) if n.split('.')[0] in ('cloud', 'edge')];"
        "print(all(getattr(m, '__file__', None) is None or m.__file__.startswith(sys.argv[1])"
        " for m in mods), callable(h.handler))"
    )
    check = subprocess.run(
        [sys.executable, "-c", probe, str(out)], capture_output=True, text=True, check=True
    )
    assert check.stdout.split() == ["True", "True"]


@pytest.mark.parametrize("name", sorted(packaging.HANDLERS))
def test_each_function_asset_is_its_bundle_plus_the_pure_python_extras(
    tmp_path: Path, name: str
) -> None:
    from infra.bundle import EXTRA_PACKAGES, build_asset

    module = packaging.HANDLERS[name]
    asset = build_asset(tmp_path / name, module)
    found = packaging.bundle(module)
    project = {
        str(p.relative_to(asset))
        for p in asset.rglob("*")
        if p.is_file() and p.relative_to(asset).parts[0].removesuffix(".py") not in EXTRA_PACKAGES
    }
    assert project == set(found.files)  # what the handler reaches, and nothing else
    assert set(found.install) <= set(EXTRA_PACKAGES)
    assert all(
        (asset / extra).exists() or (asset / f"{extra}.py").exists() for extra in EXTRA_PACKAGES
    )
    assert not [n for n in found.provided if (asset / n).exists()]
    assert not list(asset.rglob("__pycache__"))
