"""How many threads the BLAS library may use for scoring's matrix products.

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

``PLANTWATCH_BLAS_THREADS`` overrides the default of one thread (``0`` leaves the
library's own setting alone).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from functools import cache
from typing import Any

LIMIT_FROM_ROWS = 2_048
"""Below this many rows, OpenBLAS runs a product of this size on one thread by itself:
changing the setting would cost more than it saves."""


def _threads() -> int:
    value = os.environ.get("PLANTWATCH_BLAS_THREADS", "1").strip()
    try:
        return max(0, int(value))
    except ValueError:
        return 1


@cache
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController().select(user_api="blas")
    return controller if controller.lib_controllers else None


@contextlib.contextmanager
def scoring_threads(rows: int) -> Iterator[None]:
    """Inside this block, the BLAS library uses the scoring thread count when *rows* is
    large enough for it to matter; outside, its own setting holds again."""
    threads = _threads()
    controller = _controller() if threads and rows >= LIMIT_FROM_ROWS else None
    if controller is None:
        yield
        return
    with controller.limit(limits=threads):
        yield
