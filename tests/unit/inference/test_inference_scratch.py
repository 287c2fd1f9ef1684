"""The scratch pool scoring leases its full-size temporaries from: reuse, its byte cap and
its least-recently-used order."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from cloud.inference import scratch
from cloud.inference.scratch import ScratchPool

MB = 2**20


def test_a_returned_buffer_serves_the_next_lease_of_its_shape_dtype_and_order() -> None:
    pool = ScratchPool(cap=64 * MB, smallest=0)
    with pool.lease((100, 3), np.float64, "F") as first:
        assert first.shape == (100, 3) and first.dtype == np.float64
        assert first.flags.f_contiguous and not first.flags.c_contiguous
    with pool.lease((100, 3), np.float64, "F") as again:
        assert again is first
    with pool.lease((100, 3), np.float64, "C") as other_order:
        assert other_order is not first and other_order.flags.c_contiguous
    with pool.lease((100, 3), np.float32, "F") as other_dtype:
        assert other_dtype is not first and other_dtype.dtype == np.float32
    assert pool.allocated == 3


def test_leases_held_at_once_are_distinct_arrays() -> None:
    pool = ScratchPool(cap=64 * MB, smallest=0)
    with pool.lease((10, 2)) as a, pool.lease((10, 2)) as b:
        assert not np.shares_memory(a, b)
    assert len(pool.kept()) == 2


def test_the_pool_keeps_at_most_its_cap_dropping_the_least_recently_returned() -> None:
    pool = ScratchPool(cap=3 * MB, smallest=0)
    shapes = [(MB // 8 + i,) for i in range(6)]  # each a little over 1 MB of float64
    returned = []
    for shape in shapes:
        with pool.lease(shape) as array:
            returned.append(array)
        assert pool.held_bytes <= 3 * MB
    kept = pool.kept()
    assert pool.held_bytes == sum(a.nbytes for a in kept) <= 3 * MB
    assert [a.shape for a in kept] == shapes[-2:]  # the two most recent fit
    with pool.lease(shapes[0]) as array:  # dropped: a new array
        assert all(array is not r for r in returned)


def test_an_array_over_the_cap_or_under_the_smallest_kept_size_is_not_kept() -> None:
    pool = ScratchPool(cap=1 * MB, smallest=1024)
    with pool.lease((MB // 8 + 1,)):
        pass
    with pool.lease((10,)):
        pass
    assert pool.kept() == [] and pool.held_bytes == 0
    with pool.lease((1000,)):
        pass
    assert pool.held_bytes == 8000


def test_the_cap_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = ScratchPool(smallest=0)
    monkeypatch.setenv(scratch.CAP_SETTING, "0")
    with pool.lease((4,)):
        pass
    assert pool.kept() == []  # 0 keeps nothing
    monkeypatch.setenv(scratch.CAP_SETTING, "2")
    assert scratch.cap_bytes() == 2 * MB
    with pool.lease((4,)):
        pass
    assert pool.held_bytes == 32
    monkeypatch.setenv(scratch.CAP_SETTING, "lots")
    assert scratch.cap_bytes() == scratch.DEFAULT_CAP_MB * MB
    monkeypatch.delenv(scratch.CAP_SETTING)
    assert scratch.cap_bytes() == scratch.DEFAULT_CAP_MB * MB


def test_threads_lease_and_return_concurrently_without_sharing_a_buffer() -> None:
    pool = ScratchPool(cap=64 * MB, smallest=0)
    errors: list[str] = []

    def work(value: float) -> None:
        for _ in range(200):
            with pool.lease((64, 4)) as array:
                array.fill(value)
                if not (array == value).all():
                    errors.append(f"buffer of {value} changed under it")

    threads = [threading.Thread(target=work, args=(float(v),)) for v in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(pool.kept()) <= 4  # at most one per thread was ever leased at once


def test_a_fresh_result_comes_back_only_when_nothing_refers_to_it() -> None:
    """A result's memory serves nothing else while the array or any view of it is alive;
    when the last one goes, the next lease (or result) of its shape reuses it."""
    pool = ScratchPool(cap=64 * MB, smallest=0)
    result = pool.fresh((100, 3), np.float64, "F")
    assert result.shape == (100, 3) and result.flags.f_contiguous and result.flags.writeable
    result.fill(7.0)
    column = result[:, 1]
    del result
    assert pool.kept() == []  # a view still refers to it
    with pool.lease((100, 3), np.float64, "F") as other:
        assert not np.shares_memory(other, column)
        other.fill(-1.0)
    assert (column == 7.0).all()
    second = pool.fresh((100, 3), np.float64, "F")  # the returned lease, not column's memory
    assert not np.shares_memory(second, column)
    del column
    kept = pool.kept()
    assert len(kept) == 1 and kept[0].shape == (100, 3)
    with pool.lease((100, 3), np.float64, "F") as again:
        assert again is kept[0]
    assert pool.allocated == 1 and pool.fresh_allocated == 1


def test_fresh_results_stay_within_the_cap_and_small_ones_are_plain_arrays() -> None:
    pool = ScratchPool(cap=3 * MB, smallest=1024)
    small = pool.fresh((10,))
    assert small.base is None and pool.fresh_allocated == 0
    results = [pool.fresh((MB // 8 + i,)) for i in range(6)]  # each a little over 1 MB
    assert pool.fresh_allocated == 6
    del results
    assert pool.held_bytes <= 3 * MB and len(pool.kept()) == 2
    pool.clear()
    late = pool.fresh((MB // 8,))
    del late
    assert len(pool.kept()) == 1


def test_a_result_dropped_on_another_thread_goes_back_without_blocking() -> None:
    """The last reference may go on any thread, even one inside the pool: the memory is
    kept at the next call into the pool, never by taking the lock in a finaliser."""
    pool = ScratchPool(cap=64 * MB, smallest=0)
    box = [pool.fresh((50, 2))]
    with pool._lock:  # a finaliser that took the lock would deadlock here
        thread = threading.Thread(target=box.clear)
        thread.start()
        thread.join(10)
        assert not thread.is_alive()
    assert len(pool.kept()) == 1


@pytest.mark.parametrize(("setting", "advised"), [(None, False), ("1", True), ("0", False)])
def test_numpys_huge_page_advice_is_off_unless_the_user_sets_it(
    setting: str | None, advised: bool
) -> None:
    """The pool keeps its pages; advising huge pages only made faults wait for compaction."""
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    root = Path(__file__).resolve().parents[3]
    env["PYTHONPATH"] = str(root)
    if setting is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = setting
    probe = (
        "import cloud.inference.scratch, numpy._core.multiarray as m;"
        "print(m._set_madvise_hugepage(True))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(advised)
