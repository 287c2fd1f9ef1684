"""Output conventions: ``--json`` is one document on stdout; logs and progress go to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

stderr = Console(stderr=True, highlight=False)
"""Logs, progress bars and tables meant for people."""

stdout = Console(highlight=False)


def print_json(document: Any) -> None:
    """Print exactly one JSON document (object or array) on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()
