"""edge/ runs on devices: it imports only the stdlib, awscrt/awsiotsdk, paho and edge.*."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

EDGE = Path(__file__).resolve().parents[3] / "edge"
ALLOWED = {"edge", "awscrt", "awsiot", "paho"}


def test_edge_imports_nothing_from_cloud_or_simulator() -> None:
    offenders = []
    for path in sorted(EDGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in ALLOWED and top not in sys.stdlib_module_names:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
