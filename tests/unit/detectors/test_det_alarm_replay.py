"""``plantwatch alarms run``: an alarm model replayed offline from a messages file, with
operator lines shaped after BatchAcknowledgeAlarm & co.; what would be sent, never sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.cli.main import main
from cloud.detectors import ActionRequest, load_input
from cloud.detectors.alarms import AlarmEngine, AlarmStateError, load_alarm_model
from edge.clock import ManualClock
from edge.errors import NotFoundError

START = 1767225600.0  # 2026-01-01T00:00:00Z, the replay's default start
INPUT = {
    "inputName": "BoilerInput",
    "inputDefinition": {"attributes": [{"jsonPath": "boilerId"}, {"jsonPath": "temp"}]},
}


def model_body(*, ack: bool = True, disabled: bool = False) -> dict[str, Any]:
    return {
        "alarmModelName": "boilerHigh",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "key": "boilerId",
        "severity": 3,
        "alarmRule": {
            "simpleRule": {
                "inputProperty": "$input.BoilerInput.temp",
                "comparisonOperator": "GREATER",
                "threshold": "80",
            }
        },
        "alarmNotification": {
            "notificationActions": [
                {
                    "action": {
                        "lambdaAction": {
                            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:notify"
                        }
                    },
                    "emailConfigurations": [
                        {
                            "from": "ops@example.com",
                            "content": {"subject": "Boiler"},
                            "recipients": {
                                "to": [{"ssoIdentity": {"identityStoreId": "d-1", "userId": "u"}}]
                            },
                        }
                    ],
                }
            ]
        },
        "alarmEventActions": {
            "alarmActions": [{"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:alarms"}}]
        },
        "alarmCapabilities": {
            "initializationConfiguration": {"disabledOnInitialization": disabled},
            "acknowledgeFlow": {"enabled": ack},
        },
    }


def temp(value: Any, boiler: str = "b7") -> dict[str, Any]:
    return {"inputName": "BoilerInput", "payload": {"boilerId": boiler, "temp": value}}


def operator(verb: str, key: str | None = "b7", **fields: Any) -> dict[str, Any]:
    """An operator line: one *verb* request entry (``acknowledge``, ``snooze`` ...) for alarm
    *key* (``None`` leaves ``keyValue`` out), with *fields* such as ``note``."""
    entry: dict[str, Any] = {} if key is None else {"keyValue": key}
    return {verb: entry | fields}


def files(tmp_path: Path, lines: list[Any], **model: bool) -> tuple[Path, Path, Path]:
    body, inp, messages = tmp_path / "model.json", tmp_path / "input.json", tmp_path / "m.jsonl"
    body.write_text(json.dumps(model_body(**model)))
    inp.write_text(json.dumps(INPUT))
    messages.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return body, inp, messages


def run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lines: list[Any], **model: bool
) -> dict[str, Any]:
    body, inp, messages = files(tmp_path, lines, **model)
    code = main(["alarms", "run", str(body), str(messages), "--input", str(inp), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def change_events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in doc["events"] if e["type"] == "change"]


def changes(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e["from"], e["to"], e["event"]) for e in change_events(doc)]


def final(doc: dict[str, Any]) -> dict[str, str]:
    return {a["alarm"]["keyValue"]: a["alarm"]["alarmState"]["stateName"] for a in doc["alarms"]}


def test_breach_acknowledge_and_return(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run(
        capsys,
        tmp_path,
        [
            temp(70),
            temp(85),
            operator("acknowledge", note="valve closed"),
            {"advance": "PT5M"},
            temp(75),
        ],
    )
    assert changes(doc) == [
        ("NORMAL", "ACTIVE", "rule"),
        ("ACTIVE", "ACKNOWLEDGED", "acknowledge"),
        ("ACKNOWLEDGED", "NORMAL", "rule"),
    ]
    assert final(doc) == {"b7": "NORMAL"}
    active = change_events(doc)[0]
    assert (active["keyValue"], active["value"], active["threshold"]) == ("b7", 85, 80)
    assert active["time"] == "2026-01-01T00:00:00Z"
    sent = {s["action"]: s for s in active["sent"]}
    assert set(sent) == {"sns", "notification"}
    # the alarm action gets the payload the running stack sends: the alarm state in AWS's shape
    assert sent["sns"]["target"] == {"targetArn": "arn:aws:sns:us-east-1:123456789012:alarms"}
    assert sent["sns"]["payload"] == {
        "alarmModelName": "boilerHigh",
        "keyValue": "b7",
        "severity": 3,
        "stateUpdateTime": int(START * 1000),
        "alarmModelVersion": "1",
        "alarmState": {
            "stateName": "ACTIVE",
            "ruleEvaluation": {
                "simpleRuleEvaluation": {
                    "inputPropertyValue": "85",
                    "operator": "GREATER",
                    "thresholdValue": "80",
                }
            },
        },
    }
    assert sent["notification"]["target"]["channel"] == "email"
    assert sent["notification"]["payload"]["alarmState"]["stateName"] == "ACTIVE"
    acked = change_events(doc)[1]
    ack_state = acked["sent"][0]["payload"]["alarmState"]
    assert ack_state["customerAction"] == {
        "actionName": "ACKNOWLEDGE",
        "acknowledgeActionConfiguration": {"note": "valve closed"},
    }
    back = change_events(doc)[2]
    assert back["time"] == "2026-01-01T00:05:00Z"


def test_acknowledge_flow_off_returns_straight_to_normal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = run(capsys, tmp_path, [temp(85), temp(75)], ack=False)
    assert changes(doc) == [("NORMAL", "ACTIVE", "rule"), ("ACTIVE", "NORMAL", "rule")]
    # without the acknowledge flow no notification is sent; the alarm action still is
    assert [[s["action"] for s in e["sent"]] for e in change_events(doc)] == [
        ["sns"],
        ["sns"],
    ]


def test_acknowledge_that_does_not_fit_is_ignored_and_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = run(capsys, tmp_path, [temp(70), operator("acknowledge")])
    ignored = [e for e in doc["events"] if e["type"] == "ignored"]
    assert len(ignored) == 1
    assert ignored[0]["line"] == 2 and "NORMAL" in ignored[0]["reason"]
    assert final(doc) == {"b7": "NORMAL"}


def test_snooze_then_normal_after_advance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = run(
        capsys,
        tmp_path,
        [
            temp(85),
            operator("snooze", snoozeDuration=600),
            temp(95),
            {"advance": "PT15M"},
        ],
    )
    assert changes(doc) == [
        ("NORMAL", "ACTIVE", "rule"),
        ("ACTIVE", "SNOOZE_DISABLED", "snooze"),
        ("SNOOZE_DISABLED", "NORMAL", "snooze_timeout"),
    ]
    expiry = change_events(doc)[2]
    assert expiry["time"] == "2026-01-01T00:10:00Z"
    payload = expiry["sent"][0]["payload"]
    assert payload["alarmState"]["systemEvent"]["stateChangeConfiguration"] == {
        "triggerType": "SNOOZE_TIMEOUT"
    }
    assert final(doc) == {"b7": "NORMAL"}


def test_disabled_ignores_data_until_enabled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = run(
        capsys,
        tmp_path,
        [temp(95), temp(99), operator("enable"), temp(90)],
        disabled=True,
    )
    created = [e for e in doc["events"] if e["type"] == "created"]
    assert [c["state"] for c in created] == ["DISABLED"]
    assert changes(doc) == [("DISABLED", "NORMAL", "enable"), ("NORMAL", "ACTIVE", "rule")]
    doc = run(capsys, tmp_path, [temp(70), operator("disable"), temp(95)])
    assert changes(doc) == [("NORMAL", "DISABLED", "disable")]
    assert final(doc) == {"b7": "DISABLED"}


def test_reset_and_whole_batch_requests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = {
        "resetActionRequests": [
            {"requestId": "r1", "alarmModelName": "boilerHigh", "keyValue": "b7", "note": "ok"},
            {"requestId": "r2", "alarmModelName": "boilerHigh", "keyValue": "b8"},
        ]
    }
    doc = run(capsys, tmp_path, [temp(85), temp(90, "b8"), request])
    assert final(doc) == {"b7": "NORMAL", "b8": "NORMAL"}
    assert changes(doc)[-2:] == [("ACTIVE", "NORMAL", "reset"), ("ACTIVE", "NORMAL", "reset")]


def test_table_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body, inp, messages = files(tmp_path, [temp(85)])
    assert main(["alarms", "run", str(body), str(messages), "--input", str(inp)]) == 0
    out = capsys.readouterr().out
    assert "NORMAL -> ACTIVE" in out and "b7" in out
    assert "arn:aws:sns:us-east-1:123456789012:alarms" in out


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            [temp(70), "{not json", temp(90)],
            "m.jsonl:2: not valid JSON",
        ),
        (
            [temp(70), temp(80), operator("snooze")],
            "m.jsonl:3: snooze.snoozeDuration: expected a whole number of seconds",
        ),
        (
            [operator("acknowledge", colour="red")],
            "m.jsonl:1: acknowledge.colour: unknown field",
        ),
        (
            [temp(70), operator("acknowledge", alarmModelName="other")],
            "m.jsonl:2: acknowledge.alarmModelName: 'other' is not this model ('boilerHigh')",
        ),
        (
            [temp(70), operator("reset", None, note="no key")],
            "m.jsonl:2: reset.keyValue: required: model 'boilerHigh' has key 'boilerId'",
        ),
        (
            [temp(70), {"inputName": "Nope!", "payload": {}}],
            "m.jsonl:2: inputName 'Nope!': not an input name",
        ),
    ],
)
def test_bad_line_is_named_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[Any], message: str
) -> None:
    body, inp, messages = files(tmp_path, lines)
    code = main(["alarms", "run", str(body), str(messages), "--input", str(inp), "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert message in captured.err


class _Drop:
    def execute(self, request: ActionRequest) -> None:
        pass


OPERATOR = st.one_of(
    st.tuples(st.sampled_from(["acknowledge", "reset", "enable", "disable"]), st.none()),
    st.tuples(st.just("snooze"), st.integers(1, 900)),
)
STEP = st.one_of(
    st.tuples(st.just("value"), st.integers(60, 100)),
    st.tuples(st.just("advance"), st.integers(1, 600)),
    st.tuples(st.just("op"), OPERATOR),
)


def step_line(kind: str, arg: Any, key: str) -> dict[str, Any]:
    """The messages-file line of one generated STEP for alarm *key*."""
    if kind == "value":
        return temp(arg, key)
    if kind == "advance":
        return {"advance": f"{arg}s"}
    verb, seconds = arg
    return operator(verb, key) if seconds is None else operator(verb, key, snoozeDuration=seconds)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(st.tuples(STEP, st.sampled_from(["b1", "b2"])), max_size=14),
    ack=st.booleans(),
    disabled=st.booleans(),
)
def test_replay_ends_where_the_engine_ends(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    steps: list[tuple[Any, str]],
    ack: bool,
    disabled: bool,
) -> None:
    lines: list[Any] = []
    clock = ManualClock(START)
    model = load_alarm_model(model_body(ack=ack, disabled=disabled))
    engine = AlarmEngine(model, [load_input(INPUT)], InMemoryStateStore(), clock, _Drop())
    for (kind, arg), key in steps:
        lines.append(step_line(kind, arg, key))
        if kind == "value":
            engine.put_message("BoilerInput", {"boilerId": key, "temp": arg})
        elif kind == "advance":
            target = clock.now() + arg
            while (due := engine.next_due()) is not None and due <= target:
                clock.set(max(due, clock.now()))
                engine.tick()
            clock.set(target)
        else:
            verb, seconds = arg
            try:
                if verb == "snooze":
                    engine.snooze(key, seconds)
                else:
                    getattr(engine, verb)(key)
            except (AlarmStateError, NotFoundError):
                pass
    if not lines:
        lines.append({"advance": "0s"})
    doc = run(capsys, tmp_path, lines, ack=ack, disabled=disabled)
    assert final(doc) == {key: engine.state_of(key) for key in engine.key_values()}


def test_reminders_fire_while_the_clock_moves_with_the_value_they_remind_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = model_body()
    body["tags"] = [
        {"key": "plantwatch:reminderInterval", "value": "PT30M"},
        {"key": "plantwatch:reminderCap", "value": "2"},
    ]
    model, inp, messages = files(tmp_path, [temp(85)])
    model.write_text(json.dumps(body))
    args = ["alarms", "run", str(model), str(messages), "--input", str(inp), "--json"]
    assert main([*args, "--advance", "2h"]) == 0
    doc = json.loads(capsys.readouterr().out)
    reminders = [e for e in change_events(doc) if e["event"] == "reminder"]
    assert [e["time"] for e in reminders] == ["2026-01-01T00:30:00Z", "2026-01-01T01:00:00Z"]
    assert all((e["value"], e["threshold"]) == (85, 80) for e in reminders)
    assert all([s["action"] for s in e["sent"]] == ["notification"] for e in reminders)
    assert doc["end"] == "2026-01-01T02:00:00Z"


def test_messages_for_inputs_the_model_does_not_read_are_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As ``detectors run``: BatchPutMessage hands a message only to the models reading its
    input, so a recorded file's other inputs are skipped, and counted once."""
    lines = [temp(70), {"inputName": "Pressure", "payload": {"boilerId": "b7"}}, temp(90)]
    body, inp, messages = files(tmp_path, lines)
    base = ["alarms", "run", str(body), str(messages), "--input", str(inp)]
    assert main([*base, "--json"]) == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)
    assert [(e["type"], e.get("to")) for e in doc["events"]] == [
        ("created", None),
        ("change", "ACTIVE"),
    ]
    assert (doc["messagesNotRead"], doc["inputsNotRead"]) == (1, {"Pressure": 1})
    assert main(base) == 0
    summary = [x for x in capsys.readouterr().out.splitlines() if "not read" in x]
    assert summary == ["1 message skipped: inputs model 'boilerHigh' does not read: Pressure (1)"]


class _Sends:
    """Keeps each request's key and name (``<kind>#<notice number>#<part>``)."""

    def __init__(self) -> None:
        self.names: list[tuple[str | None, str]] = []

    def execute(self, request: ActionRequest) -> None:
        self.names.append((request.key_value, request.event_name))


def drive(lines: list[Any], *, ack: bool = True) -> dict[tuple[str | None, int], list[str]]:
    """The requests of each (key, notice number) when the engine is driven directly with
    the replay's lines: the notice number counts an instance's changes and reminders."""
    clock = ManualClock(START)
    sends = _Sends()
    model = load_alarm_model(model_body(ack=ack))
    engine = AlarmEngine(model, [load_input(INPUT)], InMemoryStateStore(), clock, sends)

    def move(target: float) -> None:
        while (due := engine.next_due()) is not None and due <= target:
            clock.set(max(due, clock.now()))
            engine.tick()
        clock.set(max(target, clock.now()))

    for line in lines:
        if "advance" in line:
            move(clock.now() + float(line["advance"].rstrip("s")))
        elif "inputName" in line:
            if "timestamp" in line:
                move(line["timestamp"]["timeInMillis"] / 1000)
            engine.put_message("BoilerInput", line["payload"])
        else:
            ((verb, entry),) = line.items()
            try:
                if verb == "snooze":
                    engine.snooze(entry["keyValue"], entry["snoozeDuration"])
                else:
                    getattr(engine, verb)(entry["keyValue"])
            except (AlarmStateError, NotFoundError):
                pass
    grouped: dict[tuple[str | None, int], list[str]] = {}
    for key, name in sends.names:
        grouped.setdefault((key, int(name.split("#")[1])), []).append(name)
    return grouped


def assert_sends_are_their_own(doc: dict[str, Any], lines: list[Any], *, ack: bool) -> None:
    """Each change row holds exactly the requests of its own notice, as the engine made
    them, and what they carry is that change: its state and its time."""
    expected = drive(lines, ack=ack)
    seen: dict[str | None, int] = {}
    shown: dict[tuple[str | None, int], list[str]] = {}
    for change in change_events(doc):
        key = change["keyValue"]
        seen[key] = seen.get(key, 0) + 1
        names = [s["eventName"] for s in change["sent"]]
        shown[(key, seen[key])] = names
        for sent in change["sent"]:
            payload = sent["payload"]
            assert payload["alarmState"]["stateName"] == change["to"], (change, sent)
            assert payload["stateUpdateTime"] == round((START + change["t"]) * 1000), change
    assert {k: v for k, v in shown.items() if v} == expected


def at(minutes: float, value: int) -> dict[str, Any]:
    line = temp(value)
    line["timestamp"] = {"timeInMillis": round((START + minutes * 60) * 1000)}
    return line


SAME_TIME_CASES = {
    "a snooze runs out at a breach": [
        at(0, 85),
        operator("snooze", snoozeDuration=300),
        at(5, 95),
        at(6, 70),
    ],
    "a disable while ACTIVE, then enabled and breached at once": [
        at(0, 85),
        operator("disable"),
        operator("enable"),
        at(0, 90),
        operator("disable"),
    ],
    "an acknowledge and a new breach at one timestamp": [
        at(0, 85),
        at(1, 70),
        operator("acknowledge"),
        at(1, 99),
        operator("acknowledge"),
        at(1, 60),
    ],
}


@pytest.mark.parametrize("name", list(SAME_TIME_CASES))
def test_each_change_shows_the_sends_of_its_own_state_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    lines = SAME_TIME_CASES[name]
    doc = run(capsys, tmp_path, lines)
    assert len(change_events(doc)) >= 3
    assert_sends_are_their_own(doc, lines, ack=True)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(st.tuples(STEP, st.sampled_from(["b1", "b2"])), max_size=14),
    ack=st.booleans(),
)
def test_every_change_holds_the_requests_of_its_own_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], steps: list[tuple[Any, str]], ack: bool
) -> None:
    lines: list[Any] = [step_line(kind, arg, key) for (kind, arg), key in steps]
    lines.append({"advance": "900s"})
    doc = run(capsys, tmp_path, lines, ack=ack)
    assert_sends_are_their_own(doc, lines, ack=ack)


@pytest.mark.parametrize(
    "move",
    [{"advance": "PT20M"}, {**temp(70), "timestamp": {"timeInMillis": int(START + 1200) * 1000}}],
)
def test_what_the_clock_does_between_lines_is_not_labelled_with_a_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], move: dict[str, Any]
) -> None:
    """A snooze that runs out, or a reminder that fires, while the clock moves to a line
    happened before that line ran: like a timer ``detectors run`` shows between lines, it
    is labelled by its time alone (``line`` null), not with the next line's number."""
    body = model_body()
    body["tags"] = [{"key": "plantwatch:reminderInterval", "value": "PT5M"}]
    lines = [
        temp(85),
        operator("snooze", snoozeDuration=600),
        move,
        temp(90, "b8"),
        {"advance": "PT6M"},
        temp(91, "b8"),
    ]
    model, inp, messages = files(tmp_path, lines)
    model.write_text(json.dumps(body))
    assert main(["alarms", "run", str(model), str(messages), "--input", str(inp), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    labelled = [(e["keyValue"], e["event"], e["line"]) for e in change_events(doc)]
    assert labelled == [
        ("b7", "rule", 1),
        ("b7", "snooze", 2),
        ("b7", "snooze_timeout", None),
        ("b8", "rule", 4),
        ("b8", "reminder", None),
    ]
    expiry = change_events(doc)[2]
    assert expiry["time"] == "2026-01-01T00:10:00Z"
