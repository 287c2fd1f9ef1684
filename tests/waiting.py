"""Waiting on a condition instead of sleeping a fixed time: tests stay fast on a quiet
machine and still pass on a loaded one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0) -> None:
    """Return once *predicate()* is true; fail the test after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, poll: float = 0.02) -> bool:
    """Whether *predicate()* became true within *timeout* seconds: for a caller that asserts
    with its own message (``assert wait_until(done, 30), f"{n} of {total}"``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True
