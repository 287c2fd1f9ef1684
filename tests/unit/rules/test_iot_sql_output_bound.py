"""A rule's output on one message is bounded. A nested SELECT runs its items once per
element, and cheap work an element (``rpad(*, 1000)`` on each of 30,000 one-letter strings)
builds tens of MB well within the CPU budget. Past the bound the evaluation stops before
building the rest; the rules runner quarantines the message (``rule_failed``) and goes on,
and ``rules eval`` fails it in one line."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.cli.main import main
from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse
from tests.unit.rules.test_rule_failures import message, runner

TOPIC = "dt/plantwatch/s1/pump-1/telemetry"
LETTERS = json.dumps({"e": ["a"] * 30_000}, separators=(",", ":"))
PADDED = "SELECT (SELECT VALUE rpad(*, 1000) FROM e) AS h FROM 'dt/plantwatch/+/+/telemetry'"
BOUND = 1024 * 1024


def test_the_payload_is_within_128_kib() -> None:
    assert len(LETTERS) <= 131_072


def test_a_nested_select_stops_before_building_tens_of_megabytes() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(RuntimeError, match=r"output would be over the 1,048,576 bytes"):
            evaluate(parse(PADDED), Message(TOPIC, LETTERS.encode()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * BOUND


def test_items_that_each_copy_the_payload_are_refused_together() -> None:
    """No nested SELECT: ten copies of a 120 KB payload are 1.2 MB of output."""
    sql = "SELECT " + ", ".join(f"* AS c{i}" for i in range(10)) + " FROM '#'"
    payload = json.dumps({"s": "x" * 120_000}).encode()
    with pytest.raises(RuntimeError, match="output would be over"):
        evaluate(parse(sql), Message(TOPIC, payload))


@settings(max_examples=20, deadline=None)
@given(copies=st.integers(1, 8), length=st.integers(0, 120_000))
def test_an_output_within_the_bound_is_whole(copies: int, length: int) -> None:
    sql = "SELECT " + ", ".join(f"(SELECT * FROM e) AS c{i}" for i in range(copies))
    payload = json.dumps({"e": ["x" * length]}).encode()
    out = evaluate(parse(sql + " FROM '#'"), Message(TOPIC, payload))
    assert out is not None
    assert json.loads(out.to_bytes()) == {f"c{i}": ["x" * length] for i in range(copies)}


def test_nested_results_are_counted_once() -> None:
    """An inner SELECT's result inside an outer one's is one part of the output, not two:
    700 KB of output through three levels of nesting is within the bound."""
    payload = json.dumps({"e": [[["x" * 1000] * 7] * 10] * 10}).encode()
    sql = "SELECT (SELECT VALUE (SELECT VALUE (SELECT * FROM *) FROM *) FROM e) AS h"
    out = evaluate(parse(sql + " FROM '#'"), Message(TOPIC, payload))
    assert out is not None and len(out.to_bytes()) > 700_000


def test_the_runner_quarantines_the_message_and_runs_the_next() -> None:
    rules_runner, store = runner(PADDED)
    hostile = message(5)
    hostile.payload = LETTERS.encode()
    batch = [(1, message(1)), (1, hostile), (1, message(3))]
    assert rules_runner.process(batch) == batch
    assert rules_runner.counts["rule_failed"] == 1
    (key,) = list(store.list("quarantine/rule_failed/"))
    error = json.loads(store.get(key))["error"]
    assert error.startswith("the rules raised RuleOutputLimitError: ")
    assert "1,048,576 bytes" in error


def test_rules_eval_fails_the_message_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["rules", "eval", "--sql", PADDED, "--topic", TOPIC, "--payload", LETTERS]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("plantwatch: error: ")
    assert "output would be over the 1,048,576 bytes" in captured.err
    assert captured.err.count("\n") == 1
