"""Parsing a rule costs time linear in its length: a SELECT list of thousands of items
(a generated rule, or one a tool built from a device's field list) must not cost the
square of its length at every load."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.sql import _Parser, parse
from edge.errors import RuleSqlError


def _cpu_seconds(sql: str) -> float:
    """The least CPU time of three parses: the thread's own time, so other processes on a
    loaded machine do not count, and the least, so a pause inside one does not either."""
    spent = []
    for _ in range(3):
        started = time.thread_time()
        with contextlib.suppress(RuleSqlError):  # refused: finding that out counts too
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


def test_a_chain_of_case_minus_costs_a_look_ahead_once() -> None:
    """``case - x`` is the field ``case`` minus x unless a WHEN follows at its level; each
    ``case -`` looking ahead to the end of its expression made a chain of them cost the
    square of its length before it was refused as too deep."""
    chain = [" - ".join(["case"] * n) + " AS x" for n in (1_000, 4_000)]
    small, large = (f"SELECT {c} FROM 'a/#'" for c in chain)
    with pytest.raises(RuleSqlError, match="more than 256 levels deep"):
        parse(small)
    ratio = _cpu_seconds(large) / max(_cpu_seconds(small), 1e-6)
    assert ratio < 8, f"{ratio:.1f} times the CPU time for 4 times the length"


def test_case_minus_costs_no_more_than_case_plus() -> None:
    """200 ``case -`` (within the depth limit) before a call of 4,000 arguments: each used
    to look ahead across the whole call."""
    call = f"concat({', '.join(['1'] * 4_000)}) AS x"
    minus, plus = (f"SELECT {('case ' + op + ' ') * 200}{call} FROM 'a/#'" for op in "-+")
    ratio = _cpu_seconds(minus) / max(_cpu_seconds(plus), 1e-6)
    assert ratio < 2, f"case - costs {ratio:.1f} times case +"


def _when_follows_by_scan(parser: _Parser) -> bool:
    """The look-ahead written out: the first token at this level that ends an expression."""
    for tok in parser.level_ahead():
        if tok is None:
            return False
        if (
            (tok.kind == "op" and tok.value == ",")
            or (tok.kind == "kw" and tok.value in ("select", "from", "where", "as"))
            or (tok.kind == "name" and tok.value.lower() in ("when", "then", "else", "end"))
        ):
            return tok.kind == "name" and tok.value.lower() == "when"
    return False


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(
        st.sampled_from(
            [
                "case",
                "-",
                "1",
                "x",
                ",",
                "(",
                ")",
                "[",
                "]",
                "{",
                "}",
                "WHEN",
                "when",
                "THEN",
                "ELSE",
                "END",
                "AS",
                "FROM",
                "SELECT",
            ]
        )
        | st.sampled_from(["where", "+", "'s'", "NOT"]),
        max_size=30,
    )
)
def test_the_table_answers_as_the_look_ahead_would(words: list[str]) -> None:
    parser = _Parser(" ".join(words))
    for i in range(len(parser.tokens)):
        parser.i = i
        assert parser.when_follows() == _when_follows_by_scan(parser), (words, i)


def test_select_value_minus_in_thousands_of_nested_selects_costs_a_look_ahead_each() -> None:
    """``SELECT VALUE -x`` looks ahead for an alias or a comma (``value - 1 AS v`` is the
    field ``value``); each look-ahead copied every token left in the statement."""
    items = (
        ", ".join(f"(SELECT VALUE {x} FROM e) AS a{i}" for i in range(6_000)) for x in ("-x", "x")
    )
    minus, plain = (f"SELECT {list_} FROM 'a/#'" for list_ in items)
    assert len(parse(minus).items) == 6_000
    ratio = _cpu_seconds(minus) / max(_cpu_seconds(plain), 1e-6)
    assert ratio < 2, f"SELECT VALUE -x costs {ratio:.1f} times SELECT VALUE x"
