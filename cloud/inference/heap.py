"""Give freed memory back to the operating system between the phases of a long job.

Why: glibc's allocator keeps memory that numpy and pandas free in its heap, and raises its
threshold for returning large blocks each time one is freed; after reading a year of CSV
the process kept over 100 MB it no longer used, and each later phase added its own
high-water mark. ``malloc_trim`` hands free heap pages back. Elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_free_memory() -> None:
    """Return free heap memory to the OS (about a millisecond)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
