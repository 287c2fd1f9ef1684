"""Scratch arrays for scoring's full-size temporaries, kept from one call to the next.

Why: scoring a year of one-minute data (525,600 rows x 30 sensors) needs several
temporaries of 126 MB each. A fresh array that large is a fresh ``mmap`` (glibc hands
anything over 32 MB straight to the kernel and back on ``free``), so every call faults
its pages in again, and numpy asks for transparent huge pages on it, which a host with
``defrag=madvise`` may compact memory for on the spot. Measured on a 2-core host: 200 ms
of arithmetic per call, and 70-700 ms of system time for the faults. The scheduler,
streaming and the Lambda handler score window after window of the same shape, so the
same buffers serve each call once they are faulted in.

Only temporaries come from here: an array handed to a caller (a result) is always a
fresh one, never a view of a leased buffer, so a second call cannot overwrite the first
call's results.

The pool keeps returned buffers up to a byte cap, ``PLANTWATCH_SCORING_SCRATCH_MB``
(default :data:`DEFAULT_CAP_MB`; ``0`` keeps nothing, every lease is a fresh array),
dropping the least recently used first, so that scoring many shapes does not make it
grow. A buffer is leased to one caller at a time; threads lease concurrently.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np

DEFAULT_CAP_MB = 512
"""Room for the temporaries of scoring a year of one-minute data of 30 sensors through the
monitor (about 400 MB), so that the scheduler's and the bench's calls fault nothing in."""
CAP_SETTING = "PLANTWATCH_SCORING_SCRATCH_MB"
SMALLEST_KEPT = 4 * 2**20
"""Smaller arrays are leased fresh and not kept: the C library's heap reuses their memory
anyway, and a stream of windows of many lengths would otherwise fill the pool with them."""

Key = tuple[tuple[int, ...], str, str]


def cap_bytes() -> int:
    """The cap from ``PLANTWATCH_SCORING_SCRATCH_MB`` (MB, at least 0), read at each return
    so that a process can change it; a value that is not a number keeps the default."""
    value = os.environ.get(CAP_SETTING, "").strip()
    try:
        mb = float(value) if value else DEFAULT_CAP_MB
    except ValueError:
        mb = DEFAULT_CAP_MB
    return max(0, int(mb * 2**20))


class ScratchPool:
    """Leases of arrays by (shape, dtype, order), kept after their return up to a byte cap.

    *cap* (bytes) fixes the cap; None reads :func:`cap_bytes` at each return. Arrays under
    *smallest* bytes are not kept.
    """

    def __init__(self, cap: int | None = None, smallest: int = SMALLEST_KEPT) -> None:
        self._cap = cap
        self.smallest = smallest
        self._lock = threading.Lock()
        self._free: OrderedDict[Key, list[np.ndarray]] = OrderedDict()
        self._held = 0
        self.allocated = 0
        """Arrays this pool has had to allocate (a lease it could not serve from a kept
        buffer): the count tests and measurements read."""

    @property
    def held_bytes(self) -> int:
        """Bytes of the buffers kept for later leases (leased ones are not counted)."""
        return self._held

    @contextlib.contextmanager
    def lease(
        self, shape: tuple[int, ...], dtype: Any = np.float64, order: str = "C"
    ) -> Iterator[np.ndarray]:
        """An array of *shape*, *dtype* and *order* (``"C"`` or ``"F"``) for the block's
        duration, with whatever values its last user left in it. It goes back to the pool
        when the block ends; nothing may keep a view of it after that."""
        key: Key = (tuple(int(s) for s in shape), np.dtype(dtype).str, order)
        array = self._take(key)
        if array is None:
            array = np.empty(key[0], dtype=dtype, order=order)  # type: ignore[call-overload]
            with self._lock:
                self.allocated += 1
        try:
            yield array
        finally:
            self._give_back(key, array)

    def kept(self) -> list[np.ndarray]:
        """The buffers kept for later leases, least recently returned first."""
        with self._lock:
            return [array for arrays in self._free.values() for array in arrays]

    def clear(self) -> None:
        """Drop every kept buffer (their memory goes back to the system)."""
        with self._lock:
            self._free.clear()
            self._held = 0

    def _take(self, key: Key) -> np.ndarray | None:
        with self._lock:
            kept = self._free.get(key)
            if not kept:
                return None
            array = kept.pop()
            if not kept:
                del self._free[key]
            self._held -= array.nbytes
            return array

    def _give_back(self, key: Key, array: np.ndarray) -> None:
        cap = cap_bytes() if self._cap is None else self._cap
        if array.nbytes > cap or array.nbytes < self.smallest:
            return
        with self._lock:
            self._free.setdefault(key, []).append(array)
            self._free.move_to_end(key)
            self._held += array.nbytes
            while self._held > cap:  # least recently returned first
                oldest, kept = next(iter(self._free.items()))
                self._held -= kept.pop(0).nbytes
                if not kept:
                    del self._free[oldest]

    def _after_fork(self) -> None:
        """A forked child has none of its parent's threads: none can hold the lock."""
        self._lock = threading.Lock()


pool = ScratchPool()
"""The process's pool, which scoring leases its temporaries from."""
lease = pool.lease

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=pool._after_fork)
