"""Parsing a rule costs time linear in its length: a SELECT list of thousands of items
(a generated rule, or one a tool built from a device's field list) must not cost the
square of its length at every load."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from cloud.rules.sql import parse
from edge.errors import RuleSqlError


def _cpu_seconds(sql: str) -> float:
    """The least CPU time of three parses: the thread's own time, so other processes on a
    loaded machine do not count, and the least, so a pause inside one does not either."""
    spent = []
    for _ in range(3):
        started = time.thread_time()
        parse(sql)
        spent.append(time.thread_time() - started)
    return min(spent)


SHAPES: dict[str, Callable[[int], str]] = {
    "fields": lambda n: ", ".join(f"a{i}" for i in range(n)),
    "aliases": lambda n: ", ".join(f"{i} AS a{i}" for i in range(n)),
    "paths": lambda n: ", ".join(f"m.a{i}" for i in range(n)),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_four_times_the_items_cost_about_four_times_as_much(shape: str) -> None:
    """Linear is a ratio near 4; the square of the length is 16. 8 leaves room for noise."""
    small, large = (f"SELECT {SHAPES[shape](n)} FROM 'a/#'" for n in (1_500, 6_000))
    assert len(parse(large).items) == 6_000
    ratio = _cpu_seconds(large) / max(_cpu_seconds(small), 1e-6)
    assert ratio < 8, f"{ratio:.1f} times the CPU time for 4 times the items"


def test_an_output_name_used_twice_is_still_refused_among_thousands() -> None:
    items = [f"a{i}" for i in range(5_000)] + ["1 AS a4321"]
    with pytest.raises(RuleSqlError, match="'a4321' is used twice"):
        parse(f"SELECT {', '.join(items)} FROM 'a/#'")
