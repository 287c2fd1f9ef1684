"""A child process started in another folder imports the checkout under test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import TREE


def test_a_child_in_another_folder_imports_this_checkout(tmp_path: Path) -> None:
    probe = "import cloud, edge, infra, simulator; print(cloud.__file__, edge.__file__, infra.__file__, simulator.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    files = [Path(f) for f in out.stdout.split()]
    assert len(files) == 4 and all(f.is_relative_to(TREE) for f in files), files
