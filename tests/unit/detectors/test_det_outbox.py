"""Detector actions that fail are retried from a durable outbox, counted, and never doubled."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.adapters.local import InMemoryPublisher, InMemoryStateStore, SqliteStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.actions import LocalActionSink
from cloud.detectors.engine import ActionRequest
from cloud.detectors.outbox import DeliveryOutbox
from cloud.feeder import default_detector_paths
from cloud.ports import Notification
from edge.clock import ManualClock
from edge.errors import ConfigError, PlantwatchError, RefusedError, StorageError

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FlakyNotifier:
    """Fails the channels in ``down`` (for now, or for good when *refused*); records what
    it delivered."""

    def __init__(self, *down: str, refused: bool = False) -> None:
        self.down = set(down)
        self.refused = refused
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        if notification.channel in self.down:
            if self.refused:
                raise RefusedError(
                    f"sns: {notification.channel} refused", reason="InvalidParameter"
                )
            raise PlantwatchError(f"{notification.channel}: provider unavailable")
        self.sent.append(notification)


class FlakyPublisher(InMemoryPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        if self.down:
            raise PlantwatchError(f"publish to {topic!r} not acknowledged")
        super().publish(topic, payload, qos)


def alarm(kind: str = "sns") -> ActionRequest:
    target = (
        {"targetArn": "arn:aws:sns:us-east-1:123456789012:alerts"}
        if kind == "sns"
        else {"mqttTopic": "$aws/things/pump-01/shadow/update"}
    )
    payload = (
        {"eventTime": 1, "eventName": "alarm", "payload": {"detector": {"keyValue": "pump-01"}}}
        if kind == "sns"
        else {"state": {"desired": {"mode": "safe"}}}
    )
    return ActionRequest(
        kind=kind,
        target=target,
        payload=payload,
        payload_type="DEFAULT" if kind == "sns" else "JSON",
        detector_model="equipment_anomaly",
        key_value="pump-01",
        event_name="alarm",
        state_name="Alarm",
        state_entry=2,
        event_time_ms=int(T0 * 1000),
    )


def test_a_failed_alert_is_retried_with_backoff_and_sent_once(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    state = SqliteStateStore(tmp_path / "state.db")
    notifier = FlakyNotifier("email", "sms")
    outbox = DeliveryOutbox(LocalActionSink(notifier, None, state=state), state, clock)

    # WHEN the alert fails to go out
    outbox.execute(alarm())

    # THEN it is kept with its error and next attempt, and counted
    [(_key, record)] = outbox.pending()
    assert record["attempts"] == 1 and "provider unavailable" in record["last_error"]
    assert record["next_at"] == T0 + 2
    assert outbox.retry_due() == 0  # not due yet
    clock.advance(2)
    assert outbox.retry_due() == 0  # due, fails again: the delay doubles
    assert outbox.pending()[0][1]["next_at"] == T0 + 2 + 4

    # WHEN email recovers first, then sms
    notifier.down = {"sms"}
    clock.advance(4)
    assert outbox.retry_due() == 0
    notifier.down = set()
    clock.advance(8)
    assert outbox.retry_due() == 1

    # THEN each channel went out exactly once, and the outbox is empty
    assert [n.channel for n in notifier.sent] == ["email", "sms"]
    assert outbox.pending() == []
    assert outbox.stats == {
        "delivered": 1,
        "delivered_after_retry": 1,
        "failed_attempts": 3,
        "pending": 0,
        "dead": 0,
    }
    clock.advance(1000)
    assert outbox.retry_due() == 0 and len(notifier.sent) == 2


def test_a_restart_resumes_pending_deliveries(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    publisher = FlakyPublisher()
    publisher.down = True
    state = SqliteStateStore(tmp_path / "state.db")
    DeliveryOutbox(LocalActionSink(FlakyNotifier(), publisher), state, clock).execute(
        alarm("iotTopicPublish")
    )
    assert publisher.published == []
    state.close()

    # a new process on the same state file, with the broker back
    restarted_state = SqliteStateStore(tmp_path / "state.db")
    publisher.down = False
    outbox = DeliveryOutbox(LocalActionSink(FlakyNotifier(), publisher), restarted_state, clock)
    clock.advance(2)
    assert outbox.retry_due() == 1
    assert publisher.published == [
        ("$aws/things/pump-01/shadow/update", b'{"state":{"desired":{"mode":"safe"}}}', 1)
    ]
    assert outbox.retry_due() == 0 and outbox.pending() == []


def test_after_max_attempts_an_action_is_a_dead_letter_not_a_loss() -> None:
    clock = ManualClock(T0)
    state = InMemoryStateStore()
    outbox = DeliveryOutbox(
        LocalActionSink(FlakyNotifier("email"), None), state, clock, max_attempts=3
    )
    outbox.execute(alarm())
    for _ in range(5):
        clock.advance(600)
        outbox.retry_due()
    assert outbox.pending() == []
    [(_key, record)] = outbox.dead_letters()
    assert record["attempts"] == 3 and record["request"]["event_name"] == "alarm"
    assert outbox.stats["dead"] == 1 and outbox.stats["failed_attempts"] == 3


def test_the_engine_alarm_reaches_the_device_once_the_broker_is_back() -> None:
    clock = ManualClock(T0)
    state = InMemoryStateStore()
    publisher = FlakyPublisher()
    publisher.down = True
    notifier = FlakyNotifier()
    outbox = DeliveryOutbox(LocalActionSink(notifier, publisher, state=state), state, clock)
    model_path, input_path = default_detector_paths()
    engine = DetectorEngine(
        load_detector_model(model_path), [load_input(input_path)], state, clock, outbox
    )
    for minute in range(3):
        engine.put_message(
            "AnomalyResults",
            {
                "asset": "pump-01",
                "thing": "pump-01",
                "timestamp": f"2026-01-01T00:0{minute}:00.000000",
                "prediction": 1,
                "anomaly_score": 0.9,
            },
        )
    assert engine.describe("pump-01")["detector"]["state"]["stateName"] == "Alarm"
    assert [n.channel for n in notifier.sent] == ["email", "sms"]
    assert publisher.published == [] and len(outbox.pending()) == 1
    publisher.down = False
    clock.advance(2)
    assert outbox.retry_due() == 1
    assert [t for t, _p, _q in publisher.published] == ["$aws/things/pump-01/shadow/update"]


@pytest.mark.parametrize("kind", ["lambda", "iotEvents"])
def test_actions_that_stay_in_process_pass_straight_through(kind: str) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def execute(self, request: ActionRequest) -> None:
            self.seen.append(request.kind)

    recorder = Recorder()
    outbox = DeliveryOutbox(recorder, InMemoryStateStore(), ManualClock(T0))
    outbox.execute(ActionRequest(kind, {}, {}, "DEFAULT", "m", "k", "e", "s", 1, int(T0 * 1000)))
    assert recorder.seen == [kind] and outbox.pending() == []


class RefusingNotifier:
    """Refuses every alert the way an adapter says a service will never take it."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def send(self, notification: Notification) -> None:
        self.calls += 1
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        RefusedError(
            "sns arn:...:alerts: email publish refused (InvalidParameter)",
            reason="InvalidParameter",
        ),
        ConfigError("qos 2: AWS IoT Core publishes with QoS 0 or 1"),
    ],
)
def test_a_refused_action_is_a_dead_letter_at_once_with_its_reason(error: Exception) -> None:
    clock = ManualClock(T0)
    notifier = RefusingNotifier(error)
    outbox = DeliveryOutbox(LocalActionSink(notifier, None), InMemoryStateStore(), clock)

    outbox.execute(alarm())
    for _ in range(3):
        clock.advance(600)
        outbox.retry_due()

    # THEN each channel was tried once, it is not pending, and its dead letter says why
    assert notifier.calls == 2 and outbox.pending() == []
    [(_key, record)] = outbox.dead_letters()
    assert record["attempts"] == 1
    assert record["dead_reason"].startswith("refused")
    assert str(error) in record["last_error"]
    assert outbox.stats == {
        "delivered": 0,
        "delivered_after_retry": 0,
        "failed_attempts": 1,
        "pending": 0,
        "dead": 1,
    }


def test_a_transient_failure_keeps_the_backoff() -> None:
    clock = ManualClock(T0)
    notifier = RefusingNotifier(StorageError("sns: publish failed (Throttled)"))
    outbox = DeliveryOutbox(LocalActionSink(notifier, None), InMemoryStateStore(), clock)
    outbox.execute(alarm())
    [(_key, record)] = outbox.pending()
    assert record["attempts"] == 1 and record["next_at"] == T0 + 2.0
    assert outbox.dead_letters() == []


@pytest.mark.parametrize("refused", [True, False], ids=["dead-letter", "retried"])
def test_a_multi_line_error_is_kept_and_logged_on_one_line(
    refused: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # botocore's ParamValidationError reads "Parameter validation failed:\nInvalid type
    # for parameter Message, ...": the log line and the stored error stay one line
    text = "sns: publish refused by botocore: Parameter validation failed:\nInvalid type"
    error = RefusedError(text, reason="ParamValidation") if refused else StorageError(text)
    outbox = DeliveryOutbox(
        LocalActionSink(RefusingNotifier(error), None), InMemoryStateStore(), ManualClock(T0)
    )
    with caplog.at_level("WARNING", logger="cloud.detectors.outbox"):
        outbox.execute(alarm())

    [(_key, record)] = outbox.dead_letters() if refused else outbox.pending()
    assert "\n" not in record["last_error"]
    assert "Parameter validation failed:" in record["last_error"]
    assert "Invalid type" in record["last_error"]
    [logged] = [r.getMessage() for r in caplog.records if r.name == "cloud.detectors.outbox"]
    assert "\n" not in logged and "Invalid type" in logged


@pytest.mark.parametrize(
    "stored",
    [
        {"request": "missing state_entry", "attempts": 1, "next_at": 0},
        {"request": "not an action", "attempts": 1, "next_at": 0},
        {"attempts": 1, "next_at": 0},
        ["not", "a", "record"],
    ],
    ids=["older-schema", "request-not-an-object", "no-request", "not-a-record"],
)
def test_a_stored_action_that_cannot_be_read_is_a_dead_letter_and_blocks_no_other(
    stored: object, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a pending record that no longer reads as an action (written by an older
    # version whose action had other fields, or edited by hand) beside a due alert
    from dataclasses import asdict

    from cloud.detectors.outbox import DEAD_LETTER_LOG_PHRASE, OUTBOX_NAMESPACE

    clock = ManualClock(T0)
    state = InMemoryStateStore()
    notifier = FlakyNotifier()
    outbox = DeliveryOutbox(LocalActionSink(notifier, None, state=state), state, clock)
    whole = asdict(alarm())
    if isinstance(stored, dict) and stored.get("request") == "missing state_entry":
        stored = {**stored, "request": {k: v for k, v in whole.items() if k != "state_entry"}}
    elif isinstance(stored, dict) and stored.get("request") == "not an action":
        stored = {**stored, "request": ["sns"]}
    state.put(OUTBOX_NAMESPACE, "000000000000000-a", stored)
    state.put(OUTBOX_NAMESPACE, "000000000000000-b", {"request": whole, "next_at": 0})
    # WHEN the retries run
    with caplog.at_level("ERROR", logger="cloud.detectors.outbox"):
        delivered = outbox.retry_due()
    # THEN the alert goes out, and the unreadable record is kept as a dead letter saying
    # why (retrying cannot make it readable), logged and counted, never raised
    assert delivered == 1 and [n.channel for n in notifier.sent] == ["email", "sms"]
    assert outbox.pending() == []
    [(key, dead)] = outbox.dead_letters()
    assert key == "000000000000000-a"
    assert dead["dead_reason"].startswith("unreadable")
    assert outbox.stats["dead"] == 1
    [logged] = [r.getMessage() for r in caplog.records if r.name == "cloud.detectors.outbox"]
    assert DEAD_LETTER_LOG_PHRASE in logged and "000000000000000-a" in logged
    clock.advance(1000)
    assert outbox.retry_due() == 0


def test_an_email_the_service_refuses_keeps_no_sms_from_the_operator(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    state = SqliteStateStore(tmp_path / "state.db")
    notifier = FlakyNotifier("email", refused=True)
    outbox = DeliveryOutbox(LocalActionSink(notifier, None, state=state), state, clock)
    # WHEN SNS refuses the alert's email for good
    outbox.execute(alarm())
    # THEN the SMS still goes out, and the refused email is a dead letter, not retried
    assert [n.channel for n in notifier.sent] == ["sms"]
    assert outbox.pending() == []
    [(_key, dead)] = outbox.dead_letters()
    assert "refused" in dead["last_error"]


def test_an_email_that_fails_for_now_is_retried_alone_after_the_sms(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    state = SqliteStateStore(tmp_path / "state.db")
    notifier = FlakyNotifier("email")
    outbox = DeliveryOutbox(LocalActionSink(notifier, None, state=state), state, clock)
    # WHEN the email fails for a while (throttled)
    outbox.execute(alarm())
    # THEN the SMS goes out at once and the alert waits in the outbox for its email
    assert [n.channel for n in notifier.sent] == ["sms"]
    assert len(outbox.pending()) == 1
    # AND once email works again, only the email is sent: the SMS is not doubled
    notifier.down.clear()
    clock.advance(3600)
    assert outbox.retry_due() == 1
    assert [n.channel for n in notifier.sent] == ["sms", "email"]
    assert outbox.pending() == [] and outbox.dead_letters() == []
