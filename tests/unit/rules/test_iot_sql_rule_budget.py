"""One rule's evaluation on one message has a CPU budget. A nested SELECT runs its items
once per element of the array it names, and a 128 KiB payload holds 65,000 elements
(``[0,0,...]``): work of 20 microseconds an element, ``time_to_epoch`` or ``parse_time``
on each, is over a second per message, and three such items are several. Past the budget
the evaluation stops; the rules runner quarantines the message (``rule_failed``) and goes
on, and ``rules eval`` fails it in one line."""

from __future__ import annotations

import importlib
import json
import time

import pytest

from cloud.cli.main import main
from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse
from tests.unit.rules.test_rule_failures import message, runner

ELEMENTS = json.dumps({"e": [0] * 65_000}, separators=(",", ":"))
HEAVY = (
    "SELECT (SELECT VALUE 0 FROM e WHERE "
    "time_to_epoch('2024-01-15 10:20:30.123 +0100', 'yyyy-MM-dd HH:mm:ss.SSS Z') > 0 "
    "AND parse_time('yyyy-MM-dd HH:mm:ss.SSS Z', *, 'America/New_York') <> '' "
    "AND lpad(*, 100) <> ''"
    ") AS h FROM 'dt/plantwatch/+/+/telemetry'"
)
"""Three functions' work an element, in WHERE so that the output is two bytes an element:
as SELECT items, their output would reach the output's own bound first
(test_iot_sql_output_bound)."""
TOPIC = "dt/plantwatch/s1/pump-1/telemetry"


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> float:
    """A tenth of a second, so the cases that run over it cost the suite little."""
    module = importlib.import_module("cloud.rules.evaluate")
    monkeypatch.setattr(module, "RULE_TIME_BUDGET_S", 0.1, raising=False)
    return 0.1


def test_the_payload_is_within_128_kib() -> None:
    assert len(ELEMENTS) <= 131_072


def test_a_heavy_nested_select_stops_at_the_budget() -> None:
    started = time.thread_time()
    with pytest.raises(RuntimeError, match=r"ran over the 1\.0 s of CPU one rule may take"):
        evaluate(parse(HEAVY), Message(TOPIC, ELEMENTS.encode()))
    assert time.thread_time() - started < 1.5


def test_a_light_nested_select_on_as_many_elements_completes() -> None:
    sql = "SELECT (SELECT VALUE abs(*) FROM e) AS h FROM '#'"
    out = evaluate(parse(sql), Message(TOPIC, ELEMENTS.encode()))
    assert out is not None
    assert json.loads(out.to_bytes()) == {"h": [0] * 65_000}


def test_the_budget_counts_from_the_start_of_each_evaluation(small_budget: float) -> None:
    """Spent on one message, it is whole again for the next."""
    small = json.dumps({"e": [0] * 100}).encode()
    statement = parse(HEAVY)
    for _ in range(3):
        with pytest.raises(RuntimeError, match="ran over"):
            evaluate(statement, Message(TOPIC, ELEMENTS.encode()))
        out = evaluate(statement, Message(TOPIC, small))
        assert out is not None
        assert len(json.loads(out.to_bytes())["h"]) == 100


def test_the_runner_quarantines_the_message_and_runs_the_next(small_budget: float) -> None:
    rules_runner, store = runner(HEAVY)
    hostile = message(5)
    hostile.payload = ELEMENTS.encode()
    batch = [(1, message(1)), (1, hostile), (1, message(3))]
    assert rules_runner.process(batch) == batch
    assert rules_runner.counts["rule_failed"] == 1
    (key,) = list(store.list("quarantine/rule_failed/"))
    error = json.loads(store.get(key))["error"]
    assert error.startswith("the rules raised RuleTimeLimitError: ")


def test_rules_eval_fails_the_message_in_one_line(
    small_budget: float, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["rules", "eval", "--sql", HEAVY, "--topic", TOPIC, "--payload", ELEMENTS]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("plantwatch: error: ")
    assert "ran over the 0.1 s of CPU one rule may take on a message" in captured.err
    assert captured.err.count("\n") == 1
