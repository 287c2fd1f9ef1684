"""The Lambda code asset, built in Python on this machine: no Docker, no pip at deploy time.

The asset holds the project's ``edge/`` and ``cloud/`` packages, less what Lambda never
runs (the CLI, the local runtime, benchmarks), plus the pure-Python packages the handlers
need that the Lambda runtime lacks. numpy and pandas come from the AWS SDK for pandas
layer and boto3 from the runtime, so nothing compiled is copied from this machine.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("edge", "cloud")
EXCLUDED = ("cloud/cli", "cloud/runtime", "cloud/bench")
EXTRA_PACKAGES = ("aws_lambda_powertools", "typing_extensions")
"""Pure-Python distributions the handlers import (Powertools and its one missing dependency)."""


def _ignore(directory: str, names: list[str]) -> set[str]:
    rel = Path(directory).resolve()
    skipped = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}
    for name in names:
        path = (rel / name).resolve()
        if any(path == (ROOT / excluded).resolve() for excluded in EXCLUDED):
            skipped.add(name)
    return skipped


def build_asset(dest: Path) -> Path:
    """Fill *dest* (emptied first) with the handler code; returns *dest*."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for package in PROJECT_PACKAGES:
        shutil.copytree(ROOT / package, dest / package, ignore=_ignore)
    for name in EXTRA_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed; run `make install`")
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, dest / name, ignore=_ignore)
        else:
            shutil.copy2(origin, dest / origin.name)
    compiled = sorted(str(p.relative_to(dest)) for p in dest.rglob("*.so"))
    if compiled:
        raise RuntimeError(f"Lambda asset would carry machine-specific binaries: {compiled[:3]}")
    return dest
