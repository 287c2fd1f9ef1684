"""IoT SQL and rule-file cases from iot-core-rules-and-limits §1 that the tables in
``test_iot_sql_tables.py`` leave out: payloads that are JSON but not objects, numeric strings
in other scripts, whole-number results, and rule files a user exports from AWS."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from cloud.adapters.local import InMemoryObjectStore, InMemoryPublisher
from cloud.batcher import Batcher, BatcherConfig
from cloud.cli.main import main
from cloud.rules.definitions import rules_from_document
from cloud.rules.evaluate import Message, evaluate
from cloud.rules.runner import RulesRunner
from cloud.rules.sql import parse
from edge.clock import ManualClock
from edge.errors import ConfigError, RuleSqlError
from tests.rules_runner import offline_runner

TOPIC = "dt/plantwatch/s1/dev7/telemetry"
FROM = "FROM 'dt/plantwatch/+/+/telemetry'"


def output(sql: str, payload: bytes) -> bytes | None:
    out = evaluate(parse(sql), Message(TOPIC, payload, client_id="dev7", timestamp_ms=1))
    return None if out is None else out.to_bytes()


@pytest.mark.parametrize("payload", [b"[1,2]", b"80", b'"dry"', b"null", b"true", b" [1] "])
def test_select_star_is_the_whole_payload_when_it_is_json_but_not_an_object(
    payload: bytes,
) -> None:
    """§1.2: ``*`` is the whole payload; an array or a number must not become ``{}``."""
    assert output(f"SELECT * {FROM}", payload) == payload


@pytest.mark.parametrize("text", ["\u0661\u0662", "\uff11\uff12", "1\u0662", "\u0661e1"])
def test_numeric_strings_are_ascii_digits_only(text: str) -> None:
    """§1.4: a String converts to a number only if it matches ``-?\\d+...`` in the rules
    engine's (Java) regex, whose ``\\d`` is ASCII; Arabic-Indic or full-width digits stay
    non-numeric, so comparisons and arithmetic on them are Undefined."""
    payload = json.dumps({"x": text}).encode()
    assert output(f"SELECT x {FROM} WHERE x > 5", payload) is None
    assert output(f"SELECT x - 1 AS y, abs(x) AS z {FROM}", payload) == b"{}"
    assert output(f"SELECT x {FROM} WHERE x > 5", b'{"x": "12"}') == b'{"x":"12"}'


def payload_rule(**payload: object) -> dict:
    base = {
        "sql": f"SELECT * {FROM}",
        "awsIotSqlVersion": "2016-03-23",
        "actions": [{"kinesis": {"streamName": "s", "partitionKey": "${topic(4)}"}}],
    }
    base.update(payload)
    return {"rules": [{"ruleName": "good_one", "topicRulePayload": base}]}


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (payload_rule(sql="SELECT * FROM x"), "topicRulePayload.sql"),
        (payload_rule(awsIotSqlVersion="2015-10-08"), "topicRulePayload.awsIotSqlVersion"),
        (payload_rule(actions="kinesis"), "topicRulePayload.actions"),
        (payload_rule(ruleDisabled="no"), "topicRulePayload.ruleDisabled"),
        (payload_rule(errorAction={"lambda": {}}), "topicRulePayload.errorAction"),
        (
            payload_rule(actions=[{"republish": {"topic": "a", "qos": True}}]),
            "republish.qos",
        ),
        (payload_rule(actions=[{"republish": {"topic": "a", "qos": 1.0}}]), "republish.qos"),
        (payload_rule(actions=[{"republish": {"topic": "a", "qos": 2}}]), "republish.qos"),
    ],
)
def test_rule_file_errors_name_the_rule_and_the_field(doc: dict, field: str) -> None:
    with pytest.raises((ConfigError, RuleSqlError)) as info:
        rules_from_document(doc, "rules.json")
    message = str(info.value)
    assert "good_one" in message and field in message, message


def test_cli_check_exits_2_with_one_line_naming_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = payload_rule()
    doc["rules"].append(
        {
            "ruleName": "second",
            "topicRulePayload": {**doc["rules"][0]["topicRulePayload"], "sql": "SELECT a[0] AS b"},
        }
    )
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(doc))
    assert main(["rules", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("plantwatch: error: ") and "second" in line and "rules[1]" in line


def test_cli_check_refuses_a_hostile_rules_file_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000)
    assert main(["rules", "check", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"plantwatch: error: {path}: JSON nested too deeply to be a rules file"


def test_where_reads_the_payload_not_the_select_aliases() -> None:
    """§1.3: WHERE is evaluated before SELECT and may not use its aliases."""
    sql = f"SELECT moisture AS level {FROM} WHERE level < 20"
    assert output(sql, b'{"moisture": 12}') is None
    assert output(sql, b'{"moisture": 12, "level": 5}') == b'{"level":12}'


def local_runner(
    doc: dict, store: InMemoryObjectStore, publisher: InMemoryPublisher | None = None
) -> RulesRunner:
    """A runner whose messages are handed to ``handle`` directly (no broker)."""
    return offline_runner(doc, store, ManualClock(1652443800), publisher=publisher)


class BrokenPublisher(InMemoryPublisher):
    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        raise OSError(f"cannot reach {topic}")


def test_every_action_runs_and_the_error_action_gets_the_documented_message() -> None:
    """§1.8: one errorAction message per failed execution with exactly the documented
    fields; the other actions of the rule still run."""
    doc = payload_rule(
        sql=f"SELECT moisture {FROM}",
        actions=[
            {"republish": {"topic": "alerts/${topic(4)}", "qos": 1}},
            {"s3": {"bucketName": "raw", "key": "raw/${topic(4)}.json"}},
        ],
        errorAction={"s3": {"bucketName": "errors", "key": "errors/${topic(4)}/${timestamp()}"}},
    )
    store = InMemoryObjectStore()
    local_runner(doc, store, BrokenPublisher()).handle(TOPIC, b'{"moisture": 3}', client_id="dev7")
    assert store.get("raw/dev7.json") == b'{"moisture":3}'
    (key,) = store.list("errors/")
    report = json.loads(store.get(key))
    assert set(report) == {
        "ruleName",
        "topic",
        "cloudwatchTraceId",
        "clientId",
        "base64OriginalPayload",
        "failures",
    }
    assert (report["ruleName"], report["topic"], report["clientId"]) == ("good_one", TOPIC, "dev7")
    assert len(report["cloudwatchTraceId"]) == 36
    (failure,) = report["failures"]
    assert set(failure) == {"failedAction", "failedResource", "errorMessage"}
    assert failure["failedAction"] == "RepublishAction"
    assert failure["failedResource"].startswith("alerts/")
    assert failure["errorMessage"] == "OSError: cannot reach alerts/dev7"


@pytest.mark.parametrize(
    "chain",
    [
        lambda n: "SELECT a" + ".b" * n + " AS x " + FROM,
        lambda n: "SELECT " + " + ".join(["a"] * n) + " AS x " + FROM,
        lambda n: f"SELECT a {FROM} WHERE " + " OR ".join(["a = 1"] * n),
        lambda n: "SELECT concat(" + " * ".join(["a"] * n) + ") AS x " + FROM,
    ],
)
def test_a_rule_that_loads_is_a_rule_the_evaluator_can_run(chain) -> None:
    """Chains of operators and fields parse in loops; an evaluator that recursed through a
    few thousand of them raised RecursionError on every message, which the runner leaves
    unacknowledged forever. Such SQL is refused at load time, with a position."""
    runs = evaluate(parse(chain(200)), Message(TOPIC, b'{"a": 1}', timestamp_ms=1))
    assert runs is not None
    with pytest.raises(RuleSqlError, match="levels deep") as info:
        parse(chain(3000))
    assert info.value.position is not None


def test_a_deep_template_is_refused_when_the_rules_file_loads() -> None:
    doc = payload_rule(actions=[{"s3": {"key": "k/${" + " + ".join(["a"] * 3000) + "}"}}])
    with pytest.raises(RuleSqlError, match=r"good_one.*s3\.key.*levels deep"):
        rules_from_document(doc, "rules.json")


@pytest.mark.parametrize("depth", [100, 400, 900, 5000])
def test_a_deeply_nested_payload_never_makes_a_rule_raise(depth: int) -> None:
    """A device's payload may nest arrays as deep as the JSON reader takes; comparing or
    converting such values must give a value or Undefined, not a RecursionError that
    fails the message every time it is redelivered."""
    nested = "[" * depth + "]" * depth
    payload = f'{{"a": {nested}, "b": {nested}, "m": 1}}'.encode()
    doc = payload_rule(
        sql=f"SELECT m, cast(a AS String) AS s, concat(a, 'x') AS c {FROM} WHERE a = b",
        actions=[{"s3": {"bucketName": "raw", "key": "raw/${topic(4)}.json"}}],
    )
    store = InMemoryObjectStore()
    local_runner(doc, store).handle(TOPIC, payload)
    if depth <= 400:  # within what the JSON reader takes on any stack: the rule ran
        assert json.loads(store.get("raw/dev7.json"))["m"] == 1


def test_cli_eval_takes_a_binary_payload_and_refuses_a_topic_no_device_can_publish(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """§1.7: a payload need not be JSON or UTF-8; its bytes reach encode(*). §2: a topic is
    UTF-8 and a message's topic has no wildcards (exit 2, one line)."""
    sql = "SELECT encode(*, 'base64') AS d FROM 'a/#'"
    binary = os.fsdecode(b"\xff\xfe\x00")
    assert main(["rules", "eval", "--sql", sql, "--topic", "a/b", "--payload", binary]) == 0
    assert json.loads(capsys.readouterr().out) == {"d": "//4A"}
    for topic in (os.fsdecode(b"a/\xff"), "a/+", "a/#"):
        assert main(["rules", "eval", "--sql", sql, "--topic", topic, "--payload", "{}"]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith("plantwatch: error: --topic")
        assert len(captured.err.strip().splitlines()) == 1


def test_cli_run_refuses_a_bad_rules_file_before_creating_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(payload_rule(sql="SELECT a[0] AS b FROM 'a'")))
    store = tmp_path / "store"
    argv = ["rules", "run", "--broker", "mqtt://127.0.0.1:1", "--store", str(store)]
    assert main([*argv, "--rules", str(path)]) == 2
    assert "good_one" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules.json"]


def test_newuuid_is_new_per_call_and_traceid_is_one_per_message() -> None:
    """§1.6: newuuid() is a random UUID per call; traceid() is the message's UUID."""
    uuid_re = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    sql = f"SELECT newuuid() AS a, newuuid() AS b, traceid() AS t, traceid() AS u {FROM}"
    message = Message(TOPIC, b"{}", timestamp_ms=1)
    first = evaluate(parse(sql), message)
    again = evaluate(parse(sql), message)
    assert first is not None and again is not None
    out, out2 = first.value, again.value
    assert all(re.fullmatch(uuid_re, out[k]) for k in "abtu")
    assert out["a"] != out["b"] and out2["a"] not in (out["a"], out["b"])
    assert out["t"] == out["u"] == out2["t"] == message.trace_id


def test_a_rule_has_at_most_10_actions() -> None:
    """§1.8 and §3: actions per rule, 10, not adjustable."""
    s3 = {"s3": {"bucketName": "b", "key": "k"}}
    assert len(rules_from_document(payload_rule(actions=[s3] * 10))[0].actions) == 10
    with pytest.raises(ConfigError, match=r"good_one.*actions: expected a list of 0 to 10"):
        rules_from_document(payload_rule(actions=[s3] * 11))
    with pytest.raises(ConfigError, match=r"good_one.*actions: expected a list of 0 to 10"):
        rules_from_document(payload_rule(actions={"s3": s3["s3"]}))


def test_a_rule_may_have_no_actions() -> None:
    """AWS's TopicRulePayload: actions "Array Members: Minimum number of 0 items. Maximum
    number of 10 items." A rule without actions loads and runs to no effect."""
    [rule] = rules_from_document(payload_rule(actions=[]))
    assert rule.actions == ()
    store, publisher, clock = InMemoryObjectStore(), InMemoryPublisher(), ManualClock(1_700_000_000)
    runner = RulesRunner(
        "mqtt://127.0.0.1:1",
        [rule],
        Batcher(store, BatcherConfig(), clock),
        clock,
        republisher=publisher,
    )
    runner.handle("dt/plantwatch/s1/dev7/telemetry", b'{"moisture": 12}')
    assert publisher.published == [] and list(store.list("")) == []


@pytest.mark.parametrize("bad", ["a/\\ud800", "a/\\u0000/b"])
def test_cli_check_refuses_a_from_filter_no_broker_takes(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """§2: topics are UTF-8, and MQTT forbids U+0000 in a filter (a broker closes the
    subscriber's connection); a rules file written with JSON escapes can hold either."""
    text = json.dumps(payload_rule()).replace("dt/plantwatch/+/+/telemetry", bad)
    path = tmp_path / "rules.json"
    path.write_text(text)
    assert main(["rules", "check", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "good_one" in line and "FROM: the topic filter" in line


def test_encoding_a_string_with_no_utf8_form_is_undefined_not_an_error() -> None:
    """A device's JSON may carry a lone surrogate (``"\\ud800"``): a string with no UTF-8
    bytes to encode. That is Undefined (§1.4), not an exception failing the message."""
    sql = f"SELECT encode(s, 'base64') AS e, encode(*, 'base64') AS raw {FROM}"
    payload = b'{"s": "\\ud800"}'
    assert output(sql, payload) == b'{"raw":"eyJzIjogIlx1ZDgwMCJ9"}'
