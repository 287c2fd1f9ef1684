"""``plantwatch alarms``: validate, list, operator actions (directly and through a running
stack), history and sent alerts; one-line errors with exit 2."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.local import InMemoryNotifier, OutboxNotifier, SqliteStateStore
from cloud.cli.main import main
from cloud.detectors import load_input
from cloud.detectors.actions import LocalActionSink
from cloud.detectors.alarms import AlarmEngine, NotificationLimiter, load_alarm_model, operations
from cloud.detectors.alarms.model import default_alarm_path
from cloud.detectors.model import default_detector_paths
from edge.clock import ManualClock

DATA = Path(__file__).with_name("data") / "alarms"
BOILER, BOILER_INPUT = DATA / "boiler_high.json", DATA / "boiler_input.json"


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert captured.out == ""
    return lines[0]


def test_validate_ok_json_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alarms", "validate", str(BOILER), "--input", str(BOILER_INPUT)]) == 0
    out = capsys.readouterr().out
    assert "valid alarm model 'boilerHigh': $input.BoilerInput.temp GREATER 80" in out
    model, results = default_alarm_path(), default_detector_paths()[1]
    assert main(["alarms", "validate", str(model), "--input", str(results), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["alarmModelName"] == "anomaly_score"
    assert (doc["reminderInterval_s"], doc["reminderCap"]) == (1800.0, 3)
    body = json.loads(BOILER.read_text())
    body["alarmRule"]["simpleRule"]["comparisonOperator"] = "ABOVE"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(body))
    assert main(["alarms", "validate", str(bad), "--input", str(BOILER_INPUT)]) == 2
    assert one_error(capsys) == (
        "plantwatch: error: bad.json: $.alarmRule.simpleRule.comparisonOperator: 'ABOVE':"
        " expected one of GREATER, GREATER_OR_EQUAL, LESS, LESS_OR_EQUAL, EQUAL, NOT_EQUAL"
    )
    assert main(["alarms", "validate", str(BOILER)]) == 2
    assert "unknown input 'BoilerInput'" in one_error(capsys)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"severity": -1}, "$.severity: expected an integer 0-2147483647, got -1"),
        ({"alarmRule": {"simpleRule": {}}}, "$.alarmRule.simpleRule: missing required field"),
        ({"colour": "red"}, "$.colour: unknown field"),
        (
            {"alarmCapabilities": {"acknowledgeFlow": {"enabled": "yes"}}},
            "$.alarmCapabilities.acknowledgeFlow: expected true or false, got 'yes'",
        ),
        (
            {"tags": [{"key": "plantwatch:reminderInterval", "value": "soon"}]},
            "$.tags[0].value: expected a duration like PT5M",
        ),
        (
            {"alarmEventActions": {"alarmActions": [{"setTimer": {"timerName": "t"}}]}},
            "$.alarmEventActions.alarmActions[0].setTimer: unknown alarm action",
        ),
        (
            {
                "alarmRule": {
                    "simpleRule": {
                        "inputProperty": "42",
                        "comparisonOperator": "LESS",
                        "threshold": "50",
                    }
                }
            },
            "$.alarmRule.simpleRule.inputProperty: must read an input attribute",
        ),
    ],
)
def test_invalid_alarm_models_name_the_json_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], message: str
) -> None:
    body = {**json.loads(BOILER.read_text()), **change}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(body))
    assert main(["alarms", "validate", str(path), "--input", str(BOILER_INPUT)]) == 2
    assert one_error(capsys).startswith(f"plantwatch: error: m.json: {message}")


class Runtime:
    """What a stopped ``plantwatch up`` leaves behind: state.db with an alarm instance."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.store = SqliteStateStore(data / "state.db")
        self.clock = ManualClock()
        self.notifier = OutboxNotifier(data / "alerts.jsonl", clock=self.clock)
        limiter = NotificationLimiter(self.store)
        self.engine = AlarmEngine(
            load_alarm_model(BOILER),
            [load_input(BOILER_INPUT)],
            self.store,
            self.clock,
            LocalActionSink(self.notifier, None, state=self.store, limiter=limiter),
            limiter=limiter,
        )

    def temp(self, value: float, boiler: str = "b7") -> None:
        self.engine.put_message("BoilerInput", {"boilerId": boiler, "temp": value})
        self.clock.advance(60)


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    rt = Runtime(tmp_path)
    rt.temp(85)
    rt.temp(70, boiler="b8")
    rt.engine.close()
    return rt


def test_ack_without_a_running_stack_applies_directly(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(runtime.data)
    args = ["alarms", "ack", "boilerHigh", "b7", "--note", "valve closed", "--who", "ana"]
    assert main([*args, "--data", data]) == 0
    assert capsys.readouterr().out == (
        "boilerHigh/b7: ACKNOWLEDGED (acknowledge by ana: valve closed)\n"
    )
    assert main([*args, "--data", data]) == 2
    assert one_error(capsys) == (
        "plantwatch: error: cannot acknowledge alarm boilerHigh/b7: it is ACKNOWLEDGED"
        " (acknowledge applies to ACTIVE, LATCHED)"
    )
    assert main(["alarms", "ack", "boilerHigh", "b8", "--data", data]) == 2
    assert "it is NORMAL" in one_error(capsys)
    assert main(["alarms", "ack", "nope", "b8", "--data", data]) == 2
    assert one_error(capsys) == (
        "plantwatch: error: unknown alarm model 'nope' (known: boilerHigh)"
    )
    alerts = [json.loads(x) for x in (runtime.data / "alerts.jsonl").read_text().splitlines()]
    # the model's sns action (as email and SMS), then its notification email (own subject)
    assert [(a["channel"], a["attributes"]["kind"]) for a in alerts] == [
        ("email", "ALARM_ACTIVE"),
        ("sms", "ALARM_ACTIVE"),
        ("email", "ALARM_ACTIVE"),
        ("email", "ALARM_ACKNOWLEDGED"),
        ("sms", "ALARM_ACKNOWLEDGED"),
        ("email", "ALARM_ACKNOWLEDGED"),
    ]
    # subscription filter policies page on critical: an alarm needing action, not its ack
    severities = [a["attributes"]["severity"] for a in alerts]
    assert severities == ["critical"] * 3 + ["info"] * 3
    assert alerts[3]["subject"] == (
        "[plantwatch] ACKNOWLEDGED b7 acknowledged: valve closed (severity 3)"
    )


def test_snooze_history_and_list(runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(runtime.data)
    snooze = ["alarms", "snooze", "boilerHigh", "b7", "--for", "30m", "--note", "pump swap"]
    assert main([*snooze, "--who", "bo", "--data", data, "--json"]) == 0
    state = json.loads(capsys.readouterr().out)["alarm"]["alarmState"]
    assert state["stateName"] == "SNOOZE_DISABLED"
    assert state["customerAction"] == {
        "actionName": "SNOOZE",
        "snoozeActionConfiguration": {"note": "pump swap", "snoozeDuration": 1800},
    }
    assert main(["alarms", "snooze", "boilerHigh", "b8", "--for", "later", "--data", data]) == 2
    assert one_error(capsys).startswith("plantwatch: error: --for: expected a duration")
    assert main(["alarms", "history", "boilerHigh", "b7", "--data", data, "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [(h["action"], h["from"], h["to"], h["who"], h["note"]) for h in history] == [
        ("STATE_CHANGE", "NORMAL", "ACTIVE", "plantwatch", ""),
        ("SNOOZE", "ACTIVE", "SNOOZE_DISABLED", "bo", "pump swap"),
    ]
    assert main(["alarms", "list", "--data", data, "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["b7"]["state"] == "SNOOZE_DISABLED"
    assert rows["b7"]["last_action"] == "SNOOZE by bo"
    assert rows["b8"]["last_value"] == "70 (> 80)"
    assert main(["alarms", "list", "--data", data]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "alarm",
        "key",
        "state",
        "since",
        "(UTC)",
        "last",
        "value",
        "reminders",
        "suppressed",
        "last",
        "action",
    ]
    assert main(["alarms", "history", "--data", data]) == 0
    assert "pump swap" in capsys.readouterr().out


def test_reading_commands_before_a_runtime_list_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As `schedulers list` and `executions`: the folder exists, no stack has run yet."""
    assert main(["alarms", "list", "--data", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("no alarm instances yet")
    assert list(tmp_path.iterdir()) == []  # a read creates nothing
    assert main(["alarms", "list", "--data", str(tmp_path / "missing")]) == 2
    assert "no such data directory" in one_error(capsys)


def test_beside_a_running_stack_the_request_goes_to_the_stack(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI queues; the stack's loop applies it with its own engine and clock."""
    store = runtime.store
    stop = threading.Event()

    def stack_loop() -> None:
        while not stop.is_set():
            operations.drain(store, {"boilerHigh": runtime.engine})
            operations.beat(store, time.time(), ["boilerHigh"])
            stop.wait(0.02)

    operations.beat(store, time.time(), ["boilerHigh"])
    thread = threading.Thread(target=stack_loop, daemon=True)
    thread.start()
    try:
        data = str(runtime.data)
        assert main(["alarms", "ack", "boilerHigh", "b7", "--who", "cy", "--data", data]) == 0
        assert capsys.readouterr().out == "boilerHigh/b7: ACKNOWLEDGED (acknowledge by cy)\n"
        assert main(["alarms", "reset", "boilerHigh", "b9", "--data", data]) == 2
        assert "no instance for key 'b9'" in one_error(capsys)
    finally:
        stop.set()
        thread.join()
    assert runtime.engine.state_of("b7") == "ACKNOWLEDGED"  # the stack's own engine did it
    assert list(store.items(operations.REQUESTS)) == []  # answered requests are cleaned up


def test_sent_lists_the_outbox(runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alarms", "sent", "--data", str(runtime.data), "--json"]) == 0
    topic, notification = json.loads(capsys.readouterr().out)
    assert notification["asset"] == "b7" and notification["kind"] == "ALARM_ACTIVE"
    assert notification["subject"] == "Boiler"  # the email configuration's subject
    assert topic["subject"] == ("[plantwatch] ALARM b7: value 85 (alarm when > 80) (severity 3)")
    assert topic["sms"].endswith("Ack: plantwatch alarms ack boilerHigh b7")


def test_limiter_suppressed_counts_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    clock = ManualClock()
    limiter = NotificationLimiter(store, 1, 3600)
    engine = AlarmEngine(
        load_alarm_model(BOILER),
        [load_input(BOILER_INPUT)],
        store,
        clock,
        LocalActionSink(InMemoryNotifier(), None, state=store, limiter=limiter),
        limiter=limiter,
    )
    for value in (85, 70, 85):
        engine.put_message("BoilerInput", {"boilerId": "b7", "temp": value})
        clock.advance(60)
    assert main(["alarms", "list", "--data", str(tmp_path), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    # three state changes, each an sns alarm action and a notification: one of six was sent
    assert (row["state"], row["suppressed"]) == ("ACTIVE", 5)


def _stored_boiler(data: Path) -> None:
    """data/state.db with boilerHigh/b1 ACKNOWLEDGED (a note) beside its registry entry."""

    class Kept:
        def execute(self, request: Any) -> None:
            pass

    data.mkdir()
    with SqliteStateStore(data / "state.db") as store:
        engine = AlarmEngine(
            load_alarm_model(BOILER), [load_input(BOILER_INPUT)], store, ManualClock(), Kept()
        )
        engine.put_message("BoilerInput", {"boilerId": "b1", "temp": 90})
        engine.acknowledge("b1", note="valve")
        engine.close()


def _change(data: Path, namespace: str, key: str, change: Any) -> None:
    with SqliteStateStore(data / "state.db") as store:
        doc = store.get(namespace, key)
        store.put(namespace, key, change(doc))


@pytest.mark.parametrize(
    ("namespace", "key", "change", "named"),
    [
        ("alarm-models", "boilerHigh", lambda d: {**d, "definition": "x"}, "definition"),
        (
            "alarm-models",
            "boilerHigh",
            lambda d: {**d, "definition": {**d["definition"], "alarmRule": [1]}},
            "$.alarmRule",
        ),
        (
            "alarm-models",
            "boilerHigh",
            lambda d: {**d, "definition": {**d["definition"], "tags": [1]}},
            "$.tags[0]",
        ),
    ],
)
def test_alarms_list_names_a_registry_entry_it_cannot_read(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    namespace: str,
    key: str,
    change: Any,
    named: str,
) -> None:
    data = tmp_path / "data"
    _stored_boiler(data)
    _change(data, namespace, key, change)
    assert main(["alarms", "list", "--data", str(data)]) == 2
    line = one_error(capsys)
    assert "internal error" not in line and "boilerHigh" in line and named in line, line


@pytest.mark.parametrize(
    ("change", "shown"),
    [
        (lambda d: {**d, "since": 1e20}, "1e+20"),
        (lambda d: {**d, "snooze_until": 1e300}, "1e+300"),
        (
            lambda d: {
                **d,
                "customer_action": {**d["customer_action"], "acknowledgeActionConfiguration": [1]},
            },
            "ACKNOWLEDGE",
        ),
    ],
)
def test_alarms_list_shows_an_odd_instance_rather_than_failing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, shown: str
) -> None:
    data = tmp_path / "data"
    _stored_boiler(data)
    _change(data, "alarms/boilerHigh", "b1", change)
    assert main(["alarms", "list", "--data", str(data), "--json"]) == 0, capsys.readouterr().err
    (row,) = json.loads(capsys.readouterr().out)
    assert row["state"] == "ACKNOWLEDGED"
    assert shown in json.dumps(row)


def test_list_shows_a_snooze_that_ran_out_after_the_stack_stopped_as_normal(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stack that stopped while an alarm was snoozed never ran the expiry; the snooze has
    run out since ("After the snooze time, the alarm automatically changes to the NORMAL
    state", AlarmState), so the listing says NORMAL, since the snooze ended."""
    runtime.engine.snooze("b7", 60, who="bo")
    ended = runtime.clock.now() + 60  # the runtime's clock is long before this test's time
    runtime.engine.close()
    assert main(["alarms", "list", "--data", str(runtime.data), "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["b7"]["state"] == "NORMAL"
    assert rows["b7"]["since_epoch"] == ended
    assert rows["b7"]["snoozed_until"] == ""
    assert rows["b7"]["last_action"] == "SNOOZE by bo"
    assert runtime.store.get("alarms/boilerHigh", "b7")["state"] == "SNOOZE_DISABLED"  # read only
