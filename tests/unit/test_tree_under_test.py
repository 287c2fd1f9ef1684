"""The packages under test are the checkout's own, in this process and in a child started in
another folder."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

TREE = Path(__file__).resolve().parents[2]


def test_a_child_in_another_folder_imports_this_checkout(tmp_path: Path) -> None:
    probe = "import cloud, edge, infra, simulator; print(cloud.__file__, edge.__file__, infra.__file__, simulator.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    files = [Path(f) for f in out.stdout.split()]
    assert len(files) == 4 and all(f.is_relative_to(TREE) for f in files), files


def test_the_product_packages_here_are_the_checkouts_not_test_folders() -> None:
    """``tests/infra`` was a package named ``infra`` and shadowed the product's: its
    submodules then came through the editable install, from wherever that points."""
    for name in ("cloud", "edge", "infra", "simulator"):
        path = Path(importlib.import_module(name).__file__ or "")
        assert path.is_relative_to(TREE) and not path.is_relative_to(TREE / "tests"), path
