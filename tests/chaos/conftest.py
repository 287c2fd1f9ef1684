"""Chaos tests share the agent's test peers (receiver, shadow responder)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "edge"))
