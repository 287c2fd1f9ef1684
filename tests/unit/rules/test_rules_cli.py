"""``plantwatch rules eval`` and ``rules check``: output, silence, and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.cli.main import main
from cloud.rules.definitions import DEFAULT_RULES

SQL = "SELECT topic(4) AS thing, moisture FROM 'dt/plantwatch/+/+/telemetry' WHERE moisture < 20"
TOPIC = "dt/plantwatch/s1/dev7/telemetry"


def test_eval_prints_the_action_message(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rules", "eval", "--sql", SQL, "--topic", TOPIC, "--payload", '{"moisture": 12}'])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {"thing": "dev7", "moisture": 12}


@pytest.mark.parametrize(
    ("topic", "payload"),
    [(TOPIC, '{"moisture": 40}'), ("dt/plantwatch/s1/telemetry", '{"moisture": 1}')],
)
def test_eval_prints_nothing_when_not_matched(
    topic: str, payload: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", "eval", "--sql", SQL, "--topic", topic, "--payload", payload]) == 0
    assert capsys.readouterr().out == ""


def test_eval_clientid(capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT clientid() AS c FROM 'a/#'"
    assert (
        main(
            ["rules", "eval", "--sql", sql, "--topic", "a/b", "--payload", "{}", "--clientid", "x1"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {"c": "x1"}


def test_eval_rejects_sql_outside_the_subset(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["rules", "eval", "--sql", "SELECT a[0] AS x FROM 'a'", "--topic", "a", "--payload", "{}"]
    )
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "position 9" in captured.err and "get(x, n)" in captured.err


def test_check_accepts_the_default_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(DEFAULT_RULES), "--json"]) == 0
    (rule,) = json.loads(capsys.readouterr().out)
    assert rule["from"] == "dt/plantwatch/+/+/telemetry"
    assert rule["actions"] == ["kinesis"] and rule["errorAction"] == "s3"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"sql": "SELECT * FROM 'a'", "actions": [{"kinesis": {}}]}, "awsIotSqlVersion"),
        (
            {
                "sql": "SELECT * FROM a",
                "awsIotSqlVersion": "2016-03-23",
                "actions": [{"kinesis": {}}],
            },
            "position 15",
        ),
        (
            {
                "sql": "SELECT * FROM 'a'",
                "awsIotSqlVersion": "2016-03-23",
                "actions": [{"sns": {}}],
            },
            "actions[0]: action 'sns' is not supported",
        ),
        (
            {
                "sql": "SELECT * FROM 'a'",
                "awsIotSqlVersion": "2016-03-23",
                "actions": [{"s3": {"key": "x/${topic(}"}}],
            },
            "actions[0].s3.key",
        ),
    ],
)
def test_check_names_the_bad_part(
    payload: dict, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [{"ruleName": "r1", "topicRulePayload": payload}]}))
    assert main(["rules", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err


@pytest.mark.parametrize(
    ("sql", "printed"),
    [
        (SQL, {"thing": "dev7", "moisture": 12}),  # FROM is not checked: the topic names the rule
        ("SELECT topic() AS t, moisture WHERE moisture < 20", {"t": TOPIC, "moisture": 12}),
    ],
)
def test_eval_on_a_basic_ingest_topic_runs_as_the_runner_does(
    sql: str, printed: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--topic '$aws/rules/<rule>/<topic>'`` evaluates as the rules runner does: on the topic
    after the prefix, whatever FROM says, and a rule without FROM runs there."""
    topic = f"$aws/rules/dry/{TOPIC}"
    code = main(["rules", "eval", "--sql", sql, "--topic", topic, "--payload", '{"moisture": 12}'])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == printed
