"""The Lambda code assets, built in Python on this machine: no Docker, no pip at deploy time.

Each function gets its own asset: the project files its handler reaches through its
imports (:mod:`cloud.handlers.packaging`, data files included), plus the pure-Python
packages the handlers need that the Lambda runtime lacks. So the batcher carries no
inference or detector code and the detector no pandas-facing modules, and a change to one
engine redeploys only the functions that run it. numpy, pandas and pyarrow come from the
AWS SDK for pandas layer and boto3 from the runtime, so nothing compiled is copied from this
machine.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from cloud.handlers import packaging

EXTRA_PACKAGES = ("aws_lambda_powertools", "typing_extensions", "threadpoolctl")
"""Pure-Python distributions the handlers import (Powertools and its one missing dependency;
threadpoolctl, which scoring uses to keep BLAS on one thread)."""


def _ignore(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}


def build_asset(dest: Path, module: str) -> Path:
    """Fill *dest* (emptied first) with the code of the handler module *module*
    (``cloud.handlers.inference``); returns *dest*."""
    found = packaging.bundle(module)
    unknown = sorted(set(found.install) - set(EXTRA_PACKAGES))
    if unknown:
        raise RuntimeError(f"{module} imports {unknown}: add them to infra.bundle.EXTRA_PACKAGES")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    packaging.write(found, dest)
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


def build_assets(dest: Path) -> dict[str, Path]:
    """One asset per function, ``dest/<function>``, by function name."""
    return {name: build_asset(dest / name, module) for name, module in packaging.HANDLERS.items()}
