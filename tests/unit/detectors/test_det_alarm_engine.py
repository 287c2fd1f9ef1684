"""Alarm models (spec §7): exact state sequences for every transition, notifications,
reminders, the per-asset limit, restart safety and AWS's payload shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.local import InMemoryNotifier, InMemoryStateStore
from cloud.detectors import ActionRequest, load_input
from cloud.detectors.actions import LocalActionSink
from cloud.detectors.alarms import (
    CLAIM_S,
    AlarmEngine,
    AlarmStateError,
    NotificationLimiter,
    load_alarm_model,
)
from cloud.detectors.trace import TraceRecorder
from edge.clock import ManualClock
from edge.errors import NotFoundError

DATA = Path(__file__).with_name("data") / "alarms"


class Sink:
    """Notifications go through the local sink (texts, the budget); alarm actions are kept."""

    def __init__(self, notifier: Any, store: Any, limiter: NotificationLimiter | None) -> None:
        self.local = LocalActionSink(notifier, None, state=store, limiter=limiter)
        self.requests: list[ActionRequest] = []

    def execute(self, request: ActionRequest) -> None:
        if request.target.get("channel"):  # a notification: email or SMS text
            self.local.execute(request)
        else:  # an alarm action: kept, not performed
            self.requests.append(request)


class Harness:
    """One alarm engine on a manual clock with in-memory adapters and a trace."""

    def __init__(
        self,
        name: str,
        input_name: str,
        *,
        body: dict[str, Any] | None = None,
        store: Any = None,
        clock: ManualClock | None = None,
        notifier: Any = None,
        limiter: bool = False,
    ) -> None:
        self.model = load_alarm_model(body if body is not None else DATA / f"{name}.json")
        self.input = load_input(DATA / f"{input_name}.json")
        self.store = store if store is not None else InMemoryStateStore()
        self.clock = clock or ManualClock()
        self.notifier = notifier if notifier is not None else InMemoryNotifier()
        budget = NotificationLimiter(self.store, 2, 3600) if limiter else None
        self.sink = Sink(self.notifier, self.store, budget)
        self.trace = TraceRecorder()
        self.engine = AlarmEngine(
            self.model,
            [self.input],
            self.store,
            self.clock,
            self.sink,
            limiter=budget,
            observer=self.trace,
        )

    def send(self, payload: dict[str, Any], advance: float = 60.0) -> str:
        self.engine.put_message(self.input.name, payload)
        self.clock.advance(advance)
        self.engine.tick()
        return self.engine.state_of(self._key(payload))

    def _key(self, payload: dict[str, Any]) -> str | None:
        if self.model.key_path is None:
            return None
        node: Any = payload
        for part in self.model.key_path:
            node = node[part]
        return str(node)

    def states(self) -> list[tuple[str, str, str]]:
        return [
            (r.detail["from"], r.detail["to"], r.detail["event"])
            for r in self.trace.of_kind("transition")
        ]

    def notified(self) -> list[str]:
        return [n.attributes["kind"] for n in self.notifier.sent if n.channel in ("email", "sms")]


def boiler(**kw: Any) -> Harness:
    return Harness("boiler_high", "boiler_input", **kw)


def temp(value: float) -> dict[str, Any]:
    return {"boilerId": "b7", "temp": value}


def test_breach_acknowledge_and_clear() -> None:
    h = boiler()
    assert [h.send(temp(t)) for t in (70, 85, 90)] == ["NORMAL", "ACTIVE", "ACTIVE"]
    h.engine.acknowledge("b7", note="valve checked", who="ana")
    assert [h.send(temp(t)) for t in (95, 70)] == ["ACKNOWLEDGED", "NORMAL"]
    assert h.states() == [
        ("NORMAL", "ACTIVE", "rule"),
        ("ACTIVE", "ACKNOWLEDGED", "acknowledge"),
        ("ACKNOWLEDGED", "NORMAL", "rule"),
    ]
    # one email per state change (the only notification configured), and an sns action each
    assert h.notified() == ["ALARM_ACTIVE", "ALARM_ACKNOWLEDGED", "ALARM_NORMAL"]
    assert [r.event_name for r in h.sink.requests] == [
        "ACTIVE#1#a0",
        "ACKNOWLEDGED#2#a0",
        "NORMAL#3#a0",
    ]


def test_latch_re_breach_and_acknowledge_from_latched() -> None:
    h = boiler()
    sequence = [h.send(temp(t)) for t in (85, 70, 85, 70)]
    assert sequence == ["ACTIVE", "LATCHED", "ACTIVE", "LATCHED"]
    assert h.send(temp(60)) == "LATCHED"  # back in range is not enough: someone must look
    h.engine.acknowledge("b7", who="ana")
    assert h.engine.state_of("b7") == "NORMAL"
    assert h.states()[-1] == ("LATCHED", "NORMAL", "acknowledge")


def test_snooze_ignores_data_and_expires_to_normal() -> None:
    h = boiler()
    h.send(temp(85))
    h.engine.snooze("b7", 300, note="maintenance", who="ana")
    assert h.send(temp(99), advance=299) == "SNOOZE_DISABLED"  # data ignored while snoozed
    assert h.engine.tick() == 0
    h.clock.advance(1)  # 300 s after the snooze
    assert h.engine.tick() == 1
    described = h.engine.describe("b7")["alarm"]["alarmState"]
    assert described["stateName"] == "NORMAL"
    assert described["systemEvent"] == {
        "eventType": "STATE_CHANGE",
        "stateChangeConfiguration": {"triggerType": "SNOOZE_TIMEOUT"},
    }
    assert h.send(temp(90)) == "ACTIVE"
    assert h.states() == [
        ("NORMAL", "ACTIVE", "rule"),
        ("ACTIVE", "SNOOZE_DISABLED", "snooze"),
        ("SNOOZE_DISABLED", "NORMAL", "snooze_timeout"),
        ("NORMAL", "ACTIVE", "rule"),
    ]


def test_disable_enable_and_reset() -> None:
    h = boiler()
    h.send(temp(85))
    h.engine.disable("b7", who="ana")
    assert [h.send(temp(t)) for t in (99, 10)] == ["DISABLED", "DISABLED"]
    h.engine.enable("b7", who="ana")
    assert h.send(temp(85)) == "ACTIVE"
    h.engine.acknowledge("b7", who="ana")
    h.engine.reset("b7", note="sensor replaced", who="bo")
    assert h.engine.state_of("b7") == "NORMAL"
    assert h.states() == [
        ("NORMAL", "ACTIVE", "rule"),
        ("ACTIVE", "DISABLED", "disable"),
        ("DISABLED", "NORMAL", "enable"),
        ("NORMAL", "ACTIVE", "rule"),
        ("ACTIVE", "ACKNOWLEDGED", "acknowledge"),
        ("ACKNOWLEDGED", "NORMAL", "reset"),
    ]
    history = [e for _k, e in h.store.items("alarm-history/boilerHigh")]
    assert [(e["action"], e["who"], e["note"]) for e in history][-2:] == [
        ("ACKNOWLEDGE", "ana", ""),
        ("RESET", "bo", "sensor replaced"),
    ]


@pytest.mark.parametrize(
    ("setup", "action", "state"),
    [
        ((70,), "acknowledge", "NORMAL"),
        ((70,), "enable", "NORMAL"),
        ((85, "ack"), "acknowledge", "ACKNOWLEDGED"),
        ((85, "disable"), "snooze", "DISABLED"),
        ((85, "disable"), "disable", "DISABLED"),
        ((85, "disable"), "reset", "DISABLED"),
        ((85, "snooze"), "snooze", "SNOOZE_DISABLED"),
    ],
)
def test_an_action_that_does_not_fit_names_the_state(
    setup: tuple[Any, ...], action: str, state: str
) -> None:
    h = boiler()
    for step in setup:
        if step == "ack":
            h.engine.acknowledge("b7")
        elif step == "disable":
            h.engine.disable("b7")
        elif step == "snooze":
            h.engine.snooze("b7", 600)
        else:
            h.send(temp(step))
    before = h.store.get("alarms/boilerHigh", "b7")
    call = getattr(h.engine, action)
    with pytest.raises(AlarmStateError) as info:
        call("b7", 60) if action == "snooze" else call("b7")
    assert info.value.state == state
    assert f"it is {state}" in str(info.value)
    assert h.store.get("alarms/boilerHigh", "b7") == before  # nothing changed


def test_unknown_key_is_not_found() -> None:
    h = boiler()
    h.send(temp(70))
    with pytest.raises(NotFoundError, match="no instance for key 'b8' \\(known: b7\\)"):
        h.engine.acknowledge("b8")


def test_defaults_start_disabled_and_ack_flow_off_returns_to_normal_silently() -> None:
    h = Harness("tank_low", "tank_input")
    tank = {"tank": {"id": "t1"}, "level": 5, "limit": 10}
    assert h.send(tank) == "DISABLED"  # disabledOnInitialization defaults to true
    h.engine.enable("t1", who="ana")
    assert h.send(tank) == "ACTIVE"  # 5 < 10: the threshold is the message's own limit
    assert h.send({**tank, "level": 12}) == "NORMAL"  # acknowledge flow off: no LATCHED
    with pytest.raises(AlarmStateError):
        h.engine.acknowledge("t1")
    assert h.notifier.sent == []  # no notification actions: nothing emailed
    topics = [r.target["mqttTopic"] for r in h.sink.requests if r.kind == "iotTopicPublish"]
    assert topics == ["plant/tanks/t1/alarm"] * 3  # enable, ACTIVE, NORMAL
    payloads = [r.payload for r in h.sink.requests if r.kind == "lambda"]
    assert payloads == [
        {"tank": "t1", "level": 5},
        {"tank": "t1", "level": 5},
        {"tank": "t1", "level": 12},
    ]


def test_keyless_string_rule_reminds_until_acknowledged_and_stops_at_the_cap() -> None:
    h = Harness("valve_open", "valve_input")
    assert h.send({"position": "OPEN"}, advance=0) == "ACTIVE"
    for _ in range(4):
        h.clock.advance(600)  # PT10M reminders, at most 2
        h.engine.tick()
    assert h.notified() == ["ALARM_ACTIVE", "ALARM_REMINDER", "ALARM_REMINDER"]
    sms = [n.body for n in h.notifier.sent]
    assert sms[1].startswith(
        "PLANTWATCH REMINDER valveOpen still ACTIVE and not acknowledged (1/2)"
    )
    assert all(len(b) <= 160 and b.endswith("Ack: plantwatch alarms ack valveOpen") for b in sms)
    assert h.notifier.sent[0].attributes["AWS.SNS.SMS.SenderID"] == "PLANT"


def test_acknowledged_alarms_are_never_reminded() -> None:
    h = Harness("valve_open", "valve_input")
    h.send({"position": "OPEN"}, advance=300)
    h.engine.acknowledge(None, note="closing it", who="ana")
    for _ in range(5):
        h.clock.advance(600)
        h.engine.tick()
        h.engine.put_message("ValveInput", {"position": "OPEN"})
    assert h.notified() == ["ALARM_ACTIVE", "ALARM_ACKNOWLEDGED"]


def test_flapping_signal_is_limited_per_asset_and_counted() -> None:
    h = boiler(limiter=True)  # 2 notifications per hour per asset
    for t in (85, 70, 85, 70, 85):
        h.send(temp(t))
    assert h.notified() == ["ALARM_ACTIVE", "ALARM_LATCHED"]
    state = NotificationLimiter(h.store, 2, 3600).state("b7", h.clock.now())
    assert state.suppressed == 3
    doc = h.store.get("alarms/boilerHigh", "b7")
    assert doc["pending"] == []
    suppressed = [
        r.detail["notice"] for r in h.trace.of_kind("action") if r.detail.get("suppressed")
    ]
    assert suppressed == ["ACTIVE", "LATCHED", "ACTIVE"]  # one answer per notice: email and SMS
    assert len(h.sink.requests) == 5  # alarm actions are not notifications: never limited


def test_what_a_crash_left_unsent_is_sent_once_after_restart() -> None:
    store, clock = InMemoryStateStore(), ManualClock()
    first = boiler(store=store, clock=clock)
    first.engine._deliver = lambda alarm, ids: None  # the process dies right after the write
    first.send(temp(85))
    [pending] = store.get("alarms/boilerHigh", "b7")["pending"]
    assert (pending["kind"], pending["state"]) == ("ACTIVE", "ACTIVE")
    assert first.notified() == [] and first.sink.requests == []
    restarted = boiler(store=store, clock=clock)  # a new process over the same store
    assert restarted.notified() == []  # its maker's claim still holds: it may be sending
    clock.advance(CLAIM_S)
    restarted.engine.tick()  # the claim lapsed: claimed here and sent
    assert restarted.notified() == ["ALARM_ACTIVE"]
    assert [r.event_name for r in restarted.sink.requests] == ["ACTIVE#1#a0"]
    assert [e["action"] for _k, e in store.items("alarm-history/boilerHigh")] == ["STATE_CHANGE"]
    restarted.engine.close()
    assert store.get("alarms/boilerHigh", "b7")["pending"] == []
    clock.advance(CLAIM_S)
    again = boiler(store=store, clock=clock)
    again.engine.tick()
    assert again.notified() == [] and again.sink.requests == []


def test_a_request_handed_over_twice_is_sent_once() -> None:
    """A crash between handing a notification over and recording it: the id drops the repeat."""
    store, clock = InMemoryStateStore(), ManualClock()
    first = boiler(store=store, clock=clock)
    first.engine.put_message("BoilerInput", temp(85))  # sent; the document still lists it
    assert first.notified() == ["ALARM_ACTIVE"]
    assert store.get("alarms/boilerHigh", "b7")["pending"] != []
    clock.advance(CLAIM_S)
    restarted = boiler(store=store, clock=clock, notifier=first.notifier)
    assert restarted.engine.tick() == 0
    assert restarted.notified() == ["ALARM_ACTIVE"]  # the same one, not a second
    assert len(list(store.items("alarm-history/boilerHigh"))) == 1  # its entry, once


def test_a_reminder_due_during_downtime_fires_once_after_restart() -> None:
    store, clock = InMemoryStateStore(), ManualClock()
    first = Harness("valve_open", "valve_input", store=store, clock=clock)
    first.send({"position": "OPEN"}, advance=0)
    first.engine.close()  # a clean stop
    clock.advance(3 * 600)  # down for three reminder intervals
    restarted = Harness("valve_open", "valve_input", store=store, clock=clock)
    assert restarted.engine.tick() == 1
    assert restarted.notified() == ["ALARM_REMINDER"]  # once, not once per missed interval
    assert restarted.engine.tick() == 0
    clock.advance(600)
    assert restarted.engine.tick() == 1  # the second and last
    clock.advance(600)
    assert restarted.engine.tick() == 0
    assert restarted.notified() == ["ALARM_REMINDER", "ALARM_REMINDER"]


def test_aws_shapes_of_describe_notification_event_and_action_payload() -> None:
    h = boiler()
    h.send(temp(85.5))
    described = h.engine.describe("b7")["alarm"]
    assert described == {
        "alarmModelName": "boilerHigh",
        "alarmModelVersion": "1",
        "keyValue": "b7",
        "severity": 3,
        "creationTime": 1_700_000_000.0,
        "lastUpdateTime": 1_700_000_000.0,
        "alarmState": {
            "stateName": "ACTIVE",
            "ruleEvaluation": {
                "simpleRuleEvaluation": {
                    "inputPropertyValue": "85.5",
                    "operator": "GREATER",
                    "thresholdValue": "80",
                }
            },
        },
    }
    notice = {"state": "ACTIVE", "time": 1_700_000_000.0, "value": 85.5, "threshold": 80}
    event = h.engine.notification_event("b7", notice)
    assert json.loads(event["notificationEventPayload"]) == {
        "alarmModelName": "boilerHigh",
        "keyValue": "b7",
        "severity": 3,
        "stateUpdateTime": 1_700_000_000_000,
        "alarmState": {
            "stateName": "ACTIVE",
            "ruleEvaluation": {
                "simpleRule": {"inputProperty": 85.5, "operator": "GREATER", "threshold": 80}
            },
        },
    }
    assert event["emailConfigurations"] == [
        {
            "from": "ops@example.com",
            "to": ["ops@example.com"],
            "cc": [],
            "bcc": [],
            "subject": "Boiler",
            "additionalMessage": "Check valve",
        }
    ]
    [sns] = h.sink.requests
    assert sns.payload["alarmModelVersion"] == "1"
    assert sns.payload["alarmState"]["stateName"] == "ACTIVE"
    assert sns.payload["alarmState"]["ruleEvaluation"]["simpleRuleEvaluation"] == {
        "inputPropertyValue": "85.5",
        "operator": "GREATER",
        "thresholdValue": "80",
    }
    email = h.notifier.sent[0]
    assert email.subject == "Boiler"  # the email configuration's own subject wins, as on AWS
    assert email.target == "ops@example.com"  # the directory's address for the recipient
    assert 'plantwatch alarms ack boilerHigh b7 --note "what you found"' in email.body
    assert "Check valve" in email.body


def test_changed_definition_resets_instances_and_raises_the_version() -> None:
    store = InMemoryStateStore()
    boiler(store=store).send(temp(85))
    body = json.loads((DATA / "boiler_high.json").read_text())
    body["alarmRule"]["simpleRule"]["threshold"] = "90"
    changed = boiler(store=store, body=body)
    assert changed.engine.version == "2"
    assert changed.engine.key_values() == []


def test_missing_data_keeps_the_state_and_says_why() -> None:
    h = boiler()
    h.send(temp(85))
    h.send({"boilerId": "b7", "pressure": 3})
    assert h.engine.state_of("b7") == "ACTIVE"
    [error] = h.trace.of_kind("error")
    assert "no value to compare" in error.detail["message"]


def test_an_undeclared_attribute_is_undefined_to_the_rule() -> None:
    # iotevents-contracts §1 Decision: the rule reads only what the input declares
    body = json.loads((DATA / "boiler_high.json").read_text())
    body["alarmRule"]["simpleRule"]["inputProperty"] = "$input.BoilerInput.pressure"
    h = Harness("boiler_high", "boiler_input", body=body)
    assert h.send({"boilerId": "b7", "temp": 20, "pressure": 999}) == "NORMAL"
    assert h.send({"boilerId": "b7", "temp": 95, "pressure": 999}) == "NORMAL"


@pytest.mark.parametrize(
    ("capabilities", "disabled", "ack"),
    [
        (None, True, True),
        ({}, True, True),
        ({"acknowledgeFlow": {"enabled": False}}, True, False),
        ({"initializationConfiguration": {"disabledOnInitialization": False}}, False, True),
    ],
)
def test_each_capability_left_out_takes_its_own_default(
    capabilities: dict[str, Any] | None, disabled: bool, ack: bool
) -> None:
    """InitializationConfiguration: "The default value is TRUE" (API reference); the
    acknowledge flow is on unless turned off (spec §7). One member given leaves the other's
    default alone."""
    body: dict[str, Any] = {
        "alarmModelName": "a",
        "roleArn": "arn:aws:iam::1:role/r",
        "key": "id",
        "alarmRule": {
            "simpleRule": {
                "inputProperty": "$input.In.v",
                "comparisonOperator": "GREATER",
                "threshold": "5",
            }
        },
    }
    if capabilities is not None:
        body["alarmCapabilities"] = capabilities
    model = load_alarm_model(body)
    assert (model.disabled_on_initialization, model.acknowledge_flow) == (disabled, ack)


def test_notification_configurations_that_say_the_same_to_the_same_address_send_once() -> None:
    # GIVEN a model whose notification lists the same SMS and email configuration twice,
    # and a directory that gives every recipient one address (on AWS: the alerts topic,
    # whose subscribers would each get every copy)
    from cloud.detectors.alarms import StaticDirectory

    body = json.loads((DATA / "boiler_high.json").read_text())
    action = body["alarmNotification"]["notificationActions"][0]
    someone = {"ssoIdentity": {"identityStoreId": "d-123", "userId": "u-2"}}
    action["smsConfigurations"] = [
        {"senderId": "PLANT", "recipients": [someone]},
        {"senderId": "PLANT", "recipients": [someone]},
        {"senderId": "PLANT", "additionalMessage": "Call the shift lead", "recipients": [someone]},
    ]
    action["emailConfigurations"].append(json.loads(json.dumps(action["emailConfigurations"][0])))
    harness = boiler(body=body)
    topic = "arn:aws:sns:us-east-1:123456789012:plantwatch-alerts"
    harness.engine._directory = StaticDirectory(email_address=topic, phone_number=topic)
    # WHEN the alarm fires
    harness.send(temp(85))
    # THEN each distinct text goes to the address once: the repeated configurations add
    # nothing, the one with its own message is its own text
    sent = [(n.channel, n.body) for n in harness.notifier.sent]
    assert len(sent) == len(set(sent)) == 3
    assert [c for c, _ in sent] == ["email", "sms", "sms"]
    assert "Call the shift lead" in sent[2][1]
