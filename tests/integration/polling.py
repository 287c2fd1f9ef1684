"""Waiting on a running stack: poll a condition until it holds or time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(condition: Callable[[], bool], seconds: float = 15) -> bool:
    """True as soon as *condition* holds, else its last answer after *seconds*."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
