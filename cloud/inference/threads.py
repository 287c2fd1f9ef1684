"""How many threads scoring uses: its own, over blocks of rows and operating modes, and
the BLAS library's, for its matrix products.

Why: scoring multiplies tall, narrow matrices (a year of rows by 30 sensors, times 30 x 30
or 30 x modes). OpenBLAS splits such a product over every core; for these shapes the
threads spend more time starting, waiting and spinning than multiplying. Measured on a
2-core host under load, one product of 525,600 x 30 by 30 x 3 took 264 ms of wall time on
two threads and 11 ms on one.

The bits do not change: OpenBLAS shares a matrix-matrix product out by rows and columns,
never by the inner sum, so each element of a product written into a new C-ordered array
is computed the same way on any number of threads. Scoring uses this only for such
products (``tests/property/test_fast_scoring.py`` holds it to the library's own threads).
Matrix-vector products can split their sums, and numpy may compute a product into a
Fortran-ordered output in pieces; those keep the library's setting.

Scoring's own threads split the element-wise passes by blocks of rows and the products
by operating mode (numpy releases the GIL in both). Every row is computed by the same
calls whichever thread runs it, so the bits do not depend on the count either. The
default is the number of cores, at most 2: a 2-core host or Lambda function gets both,
and a bigger host keeps its other cores for the rest of the stack.

``PLANTWATCH_SCORING_THREADS`` sets scoring's thread count (1: none besides the caller's);
``PLANTWATCH_BLAS_THREADS`` the BLAS library's during scoring (default 1; ``0`` leaves the
library's own setting alone).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

LIMIT_FROM_ROWS = 2_048
"""Below this many rows, OpenBLAS runs a product of this size on one thread by itself:
changing the setting would cost more than it saves."""
MAX_DEFAULT_THREADS = 2


def _setting(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return max(0, int(value)) if value else default
    except ValueError:
        return default


def worker_count() -> int:
    """Scoring's own threads (``PLANTWATCH_SCORING_THREADS``, else cores up to 2)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, _setting("PLANTWATCH_SCORING_THREADS", min(cores, MAX_DEFAULT_THREADS)))


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="plantwatch-score")


def run_all(tasks: Sequence[Callable[[], None]]) -> None:
    """Run *tasks* on scoring's threads (in the caller's when there is one) and wait for
    all of them; the first error is raised."""
    workers = min(worker_count(), len(tasks))
    if workers <= 1:
        for task in tasks:
            task()
        return
    for future in [_pool(workers).submit(task) for task in tasks]:
        future.result()


def split(items: Sequence[Any], parts: int | None = None) -> list[Sequence[Any]]:
    """*items* in at most *parts* (default: one per scoring thread) consecutive runs of
    nearly equal length, none empty."""
    parts = max(1, min(parts or worker_count(), len(items)))
    size, extra = divmod(len(items), parts)
    runs, start = [], 0
    for i in range(parts):
        stop = start + size + (1 if i < extra else 0)
        runs.append(items[start:stop])
        start = stop
    return [run for run in runs if len(run)]


@cache
def _controller() -> Any:
    """threadpoolctl's handle on the loaded BLAS libraries; None without one (then the
    library keeps its own setting: slower on many cores, the same bits)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    controller = ThreadpoolController().select(user_api="blas")
    return controller if controller.lib_controllers else None


_lock = threading.Lock()
_depth = 0
_limit: Any = None


@contextlib.contextmanager
def scoring_threads(rows: int) -> Iterator[None]:
    """Inside this block, the BLAS library uses the scoring thread count when *rows* is
    large enough for it to matter; outside, its own setting holds again. Blocks may nest
    and overlap across threads: the first to enter sets the count, the last to leave
    restores it."""
    global _depth, _limit
    threads = _setting("PLANTWATCH_BLAS_THREADS", 1)
    controller = _controller() if threads and rows >= LIMIT_FROM_ROWS else None
    if controller is None:
        yield
        return
    with _lock:
        if _depth == 0:
            _limit = controller.limit(limits=threads)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _limit.restore_original_limits()
                _limit = None


def _after_fork_in_child() -> None:
    """A forked child has none of its parent's threads: no pool, and no scoring call that
    could still hold the lock or the BLAS limit."""
    global _lock, _depth, _limit
    _pool.cache_clear()
    _lock, _depth, _limit = threading.Lock(), 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
