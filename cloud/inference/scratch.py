"""Scratch arrays for scoring's full-size temporaries, kept from one call to the next.

Why: scoring a year of one-minute data (525,600 rows x 30 sensors) needs several
temporaries of 126 MB each. A fresh array that large is a fresh ``mmap`` (glibc hands
anything over 32 MB straight to the kernel and back on ``free``), so every call faults
its pages in again, and numpy asks for transparent huge pages on it, which a host with
``defrag=madvise`` may compact memory for on the spot. Measured on a 2-core host: 200 ms
of arithmetic per call, and 70-700 ms of system time for the faults. The scheduler,
streaming and the Lambda handler score window after window of the same shape, so the
same buffers serve each call once they are faulted in.

A temporary is leased (:meth:`ScratchPool.lease`) and goes back when its block ends. A
result handed to a caller is never a view of a leased buffer, so a second call cannot
overwrite the first call's results: a large one comes from :meth:`ScratchPool.fresh`, an
array that is the caller's alone for as long as anything refers to it (the array or any
view of it) and whose memory the pool takes back only once nothing does. Why: the fresh
result was the one full-size array a call still faulted in (126 MB for a year, and with
transparent huge pages the kernel may compact memory for it on the spot: measured
30-850 ms of system time for it on a loaded 2-core host); a caller that drops the last
call's results before the next call, or keeps one at a time, now faults nothing in.

The pool keeps returned buffers up to a byte cap, ``PLANTWATCH_SCORING_SCRATCH_MB``
(default :data:`DEFAULT_CAP_MB`; ``0`` keeps nothing, every lease is a fresh array),
dropping the least recently used first, so that scoring many shapes does not make it
grow. A buffer is leased to one caller at a time; threads lease concurrently.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import Any

import numpy as np

HUGEPAGE_SETTING = "NUMPY_MADVISE_HUGEPAGE"


def _no_hugepage_advice() -> None:
    """Ask numpy not to advise transparent huge pages for its large arrays, unless the
    user set ``NUMPY_MADVISE_HUGEPAGE`` themselves.

    Why: on a host with ``defrag=madvise`` (a common default) each advised fault waits for
    the kernel to compact memory into a 2 MB page. Measured on a 2-core host, a year of
    one-minute data for 30 sensors: the second monitor call spent 280-435 ms of system
    time in a few thousand such faults (886-1,175 ms on the first), against 64-80
    (184-216) ms for the many more 4 kB faults without the advice; user time, where huge
    pages would save TLB misses, was the same. The pool above keeps the pages it faults in,
    so their size matters little after that.
    """
    if HUGEPAGE_SETTING in os.environ:
        return
    multiarray = getattr(getattr(np, "_core", None), "multiarray", None)
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is not None:
        setter(False)


_no_hugepage_advice()

DEFAULT_CAP_MB = 1024
"""Room for what scoring a year of one-minute data of 30 sensors leases and hands back
(126 MB per full-size array), the model's and the monitor's calls taking turns: about
400 MB for gap-free data, about 750 MB with gaps and smoothing (the filled rows and the
features are two more). At 512 MB the latter evicted buffers on every call and paid for
them again: measured on a loaded 2-core host, a median 680 ms of system time per monitor
call after the first (85-920 ms) against 200 ms (30-390 ms) at this cap."""
CAP_SETTING = "PLANTWATCH_SCORING_SCRATCH_MB"
SMALLEST_KEPT = 4 * 2**20
"""Smaller arrays are leased fresh and not kept: the C library's heap reuses their memory
anyway, and a stream of windows of many lengths would otherwise fill the pool with them."""

Key = tuple[tuple[int, ...], str, str]


def layout(rows: np.ndarray) -> str:
    """The order numpy gives a new array like *rows* (``order="K"``, as ``empty_like`` and
    ``zeros_like`` do), for a buffer from this pool that stands in for one: columns first
    when its rows are closer together in memory than its columns."""
    if rows.ndim != 2:
        return "C"
    return "F" if rows.strides[0] < rows.strides[1] and not rows.flags.c_contiguous else "C"


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
        self.fresh_allocated = 0
        """The same for :meth:`fresh` (a result it could not serve from a kept buffer)."""
        self._returned: deque[tuple[Key, np.ndarray]] = deque()
        """Buffers of results nothing refers to any more, waiting to be kept: a finaliser
        may run at any point of any thread, even one holding the lock, so it only appends
        here (atomic) and the next call into the pool keeps them."""

    @property
    def held_bytes(self) -> int:
        """Bytes of the buffers kept for later leases (leased ones are not counted)."""
        self._keep_returned()
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

    def fresh(
        self, shape: tuple[int, ...], dtype: Any = np.float64, order: str = "C"
    ) -> np.ndarray:
        """An array of *shape*, *dtype* and *order* to hand to a caller as a result, with
        whatever values its last user left in it (write every element).

        Nothing else holds or gets its memory while the array or any view of it is alive:
        when the last reference goes, its memory comes back to the pool for later leases
        and results, within the cap, as a returned lease would. An array under the
        smallest kept size is a plain new array."""
        key: Key = (tuple(int(s) for s in shape), np.dtype(dtype).str, order)
        if np.dtype(dtype).itemsize * int(np.prod(key[0])) < self.smallest:
            return np.empty(key[0], dtype=dtype, order=order)  # type: ignore[call-overload]
        array = self._take(key)
        if array is None:
            array = np.empty(key[0], dtype=dtype, order=order)  # type: ignore[call-overload]
            with self._lock:
                self.fresh_allocated += 1
        return np.asarray(_Handed(self, key, array))

    def kept(self) -> list[np.ndarray]:
        """The buffers kept for later leases, least recently returned first."""
        self._keep_returned()
        with self._lock:
            return [array for arrays in self._free.values() for array in arrays]

    def clear(self) -> None:
        """Drop every kept buffer (their memory goes back to the system)."""
        self._returned.clear()
        with self._lock:
            self._free.clear()
            self._held = 0

    def _keep_returned(self) -> None:
        while self._returned:
            try:
                key, array = self._returned.popleft()
            except IndexError:  # another thread took the last one
                return
            self._give_back(key, array)

    def _take(self, key: Key) -> np.ndarray | None:
        self._keep_returned()
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


class _Handed:
    """The owner of a result's memory (the ``base`` of the array :meth:`ScratchPool.fresh`
    hands out, and of every view of it): once nothing refers to it, its buffer goes back
    to the pool."""

    def __init__(self, pool: ScratchPool, key: Key, array: np.ndarray) -> None:
        self._pool, self._key, self._array = pool, key, array
        self.__array_interface__ = array.__array_interface__

    def __del__(self) -> None:
        self._pool._returned.append((self._key, self._array))


pool = ScratchPool()
"""The process's pool, which scoring leases its temporaries from."""
lease = pool.lease
fresh = pool.fresh

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=pool._after_fork)
