"""``regexp_matches``/``regexp_replace``/``regexp_substr`` on a string a device controls:
a backtracking pattern the rule's author wrote (``(a+)+$``, or plain ``a+b``) could hold the
rules worker for minutes on a hostile string. A rule's regular expressions on one message
share a CPU time budget; over it, the evaluation stops with an error naming the function and pattern,
and the runner quarantines that message (reason ``rule_failed``) and carries on."""

from __future__ import annotations

import importlib
import json
import re

import pytest

from cloud.cli.main import main
from cloud.rules.evaluate import (
    REGEX_TIME_BUDGET_S,
    Message,
    RegexTimeLimitError,
    evaluate,
)
from cloud.rules.sql import parse
from tests.unit.rules.test_rule_failures import TOPIC, message, runner

LONG = "a" * 131_072  # AWS's payload limit, 128 KiB


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> float:
    """A tenth of the budget, so the cases that run over it cost the suite little."""
    module = importlib.import_module("cloud.rules.evaluate")
    monkeypatch.setattr(module, "REGEX_TIME_BUDGET_S", REGEX_TIME_BUDGET_S / 10)
    return REGEX_TIME_BUDGET_S / 10


def run(expr: str, subject: str) -> object:
    out = evaluate(parse(f"SELECT {expr} AS x FROM '#'"), Message("t", json.dumps({"s": subject})))
    assert out is not None
    return json.loads(out.to_bytes()).get("x", "<undefined>")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("expr", "subject"),
    [
        ("regexp_matches(s, '(a+)+$')", LONG + "!"),
        ("regexp_substr(s, '(a|aa)+$')", LONG + "!"),
        ("regexp_replace(s, 'a+b', 'x')", LONG),
    ],
)
def test_a_backtracking_pattern_on_a_long_string_stops_with_a_named_error(
    expr: str, subject: str, small_budget: float
) -> None:
    name, pattern = expr.split("(s, ")[0], expr.split("'")[1]
    with pytest.raises(RegexTimeLimitError) as info:
        run(expr, subject)
    assert str(info.value) == (
        f"{name}(): pattern {pattern!r} on a {len(subject)}-character string ran over the "
        f"{small_budget} s one rule's regular expressions may take on a message"
    )


@pytest.mark.timeout(60)
def test_the_classic_exponential_case_answers() -> None:
    """``(a+)+$`` on 40 characters: 2**40 steps for a plain backtracking engine."""
    assert run("regexp_matches(s, '(a+)+$')", "a" * 40 + "!") is False
    assert run("regexp_substr(s, '(a+)+$')", "a" * 40) == "a" * 40


def test_ordinary_patterns_on_a_whole_payload_stay_within_the_budget() -> None:
    assert run("regexp_matches(s, 'x=[0-9]+;')", LONG) is False
    assert run("regexp_substr(s, 'a{3}$')", LONG) == "aaa"
    replaced = run("regexp_replace(s, 'a', '$0b')", LONG[:65_536])
    assert replaced == "ab" * 65_536


def test_the_budget_is_fresh_for_each_evaluation(small_budget: float) -> None:
    statement = parse("SELECT regexp_matches(s, 'a+b') AS x FROM '#'")
    with pytest.raises(RegexTimeLimitError):
        evaluate(statement, Message("t", json.dumps({"s": LONG}).encode()))
    out = evaluate(statement, Message("t", b'{"s": "aab"}'))
    assert out is not None and out.to_bytes() == b'{"x":true}'


def test_a_spent_budget_stops_even_a_trivial_match(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.import_module("cloud.rules.evaluate"), "REGEX_TIME_BUDGET_S", 0)
    with pytest.raises(RegexTimeLimitError, match=re.escape("regexp_matches(): pattern 'b'")):
        run("regexp_matches(s, 'b')", "abc")


def test_the_budget_covers_every_call_in_a_nested_select(small_budget: float) -> None:
    """A nested SELECT calls the function once per element: the calls share one budget, so
    an array of hostile strings cannot multiply it."""
    payload = json.dumps({"arr": [{"s": "a" * 30_000}] * 40}).encode()
    sql = "SELECT (SELECT VALUE regexp_matches(s, 'a+b') FROM arr) AS x FROM '#'"
    with pytest.raises(RegexTimeLimitError):
        evaluate(parse(sql), Message("t", payload))


def test_the_runner_quarantines_the_message_and_runs_the_next(small_budget: float) -> None:
    sql = (
        "SELECT encode(*, 'base64') AS payload, topic() AS topic "
        "FROM 'dt/plantwatch/+/+/telemetry' "
        "WHERE NOT regexp_matches(sender, '(a+)+$')"
    )
    rules_runner, store = runner(sql)
    hostile = message(5)
    hostile.payload = hostile.payload.replace(
        b'"sender": "e"', b'"sender": "' + b"a" * 100_000 + b'!"'
    )
    batch = [(1, message(1)), (1, hostile), (1, message(3))]
    assert rules_runner.process(batch) == batch
    assert rules_runner.counts["rule_failed"] == 1
    (key,) = list(store.list("quarantine/"))
    assert key.startswith("quarantine/rule_failed/")
    error = json.loads(store.get(key))["error"]
    assert error.startswith("the rules raised RegexTimeLimitError: regexp_matches(): ")
    assert rules_runner.batcher.stats["accepted"] == 2
    assert hostile.topic == TOPIC


@pytest.mark.timeout(60)
def test_rules_eval_fails_the_message_in_one_line(
    small_budget: float, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = "SELECT regexp_matches(s, 'a+b') AS m FROM 't'"
    payload = json.dumps({"s": "a" * 100_000})
    assert main(["rules", "eval", "--sql", sql, "--topic", "t", "--payload", payload]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "plantwatch: error: regexp_matches(): pattern 'a+b' on a 100000-character string "
        f"ran over the {small_budget} s one rule's regular expressions may take on a message\n"
    )
