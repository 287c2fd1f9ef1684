"""Alert text: SNS subject rules, SMS within 160 GSM-7 septets, full email body, dedup."""

from __future__ import annotations

import dataclasses
import shlex
import string
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cloud import alerts
from cloud.adapters.local import InMemoryNotifier
from cloud.detectors.actions import LocalActionSink
from cloud.detectors.engine import ActionRequest


def default_payload(
    asset: str = "pump-01",
    *,
    state: str = "Alarm",
    event: str = "alarm raised",
    variables: dict | None = None,
) -> dict:
    return {
        "eventTime": 1_767_225_780_000,
        "eventName": event,
        "payload": {
            "actionExecutionId": "5d7444df-a655-3587-a609-dbd7a0f55267",
            "detector": {
                "detectorModelName": "equipment_anomaly",
                "keyValue": asset,
                "detectorModelVersion": "1",
            },
            "eventTriggerDetails": {
                "inputName": "AnomalyResults",
                "messageId": "1",
                "triggerType": "Message",
            },
            "state": {
                "stateName": state,
                "variables": variables
                if variables is not None
                else {
                    "last_score": 0.83,
                    "last_timestamp": "2026-01-01T00:03:00.000000",
                    "last_reason": "ANOMALY_DETECTED",
                    "top_sensors": "pump-01\\bearing_vibration_x=0.61;pump-01\\motor_current=0.22",
                },
                "timers": {},
            },
        },
    }


def assert_valid_subject(subject: str) -> None:
    assert 0 < len(subject) <= alerts.SUBJECT_MAX
    assert subject.isascii()
    assert all(32 <= ord(c) < 127 for c in subject)
    assert subject[0] in string.ascii_letters + string.digits + string.punctuation


def assert_valid_sms(text: str) -> None:
    septets = alerts.gsm7_septets(text)
    assert septets is not None, f"not GSM-7: {text!r}"
    assert septets <= alerts.SMS_MAX_SEPTETS


def test_gsm7_counts_extension_characters_twice() -> None:
    assert alerts.gsm7_septets("abc") == 3
    assert alerts.gsm7_septets("€[]") == 6
    assert alerts.gsm7_septets("25°C") is None
    assert alerts.to_gsm7("25°C") == "25C"
    assert alerts.fit_sms("€" * 100) == "€" * 78 + "..."
    assert alerts.gsm7_septets(alerts.fit_sms("€" * 100)) == 159


def test_alarm_email_and_sms() -> None:
    content = alerts.content_from_payload(default_payload())
    subject, body = alerts.build_email(content)
    assert subject == "[plantwatch] ALARM pump-01: anomaly score 0.83"
    for needle in (
        "Asset:      pump-01",
        "State:      Alarm",
        "Time:       2026-01-01T00:03:00Z",
        "Score:      0.830",
        "pump-01\\bearing_vibration_x: 61%",
        "pump-01\\motor_current: 22%",
        "What to do:",
        "safe mode",
    ):
        assert needle in body
    sms = alerts.build_sms(content)
    assert sms == (
        "PLANTWATCH ALARM pump-01 score 0.83 top bearing_vibration_x 61% at 2026-01-01 00:03 UTC."
        " Safe mode commanded."
    )
    assert_valid_sms(sms)


def test_recovery_and_stale_kinds() -> None:
    recovered = alerts.content_from_payload(default_payload(state="Normal", event="recovered"))
    assert recovered.kind == "RECOVERED"
    assert alerts.build_email(recovered)[0].startswith("[plantwatch] RECOVERED pump-01")
    stale = alerts.content_from_payload(
        default_payload(state="Stale", event="results stopped", variables={})
    )
    assert stale.kind == "STALE"
    assert "no results since 2026-01-01 00:03 UTC" in alerts.build_sms(stale)


def test_custom_json_payload_is_read_too() -> None:
    content = alerts.content_from_payload(
        {
            "asset": "fan-7",
            "state": "Alarm",
            "anomaly_score": 0.9,
            "top_sensor": "fan-7\\rpm",
            "top_share": 0.5,
        }
    )
    assert (content.asset, content.score, content.sensors) == ("fan-7", 0.9, (("fan-7\\rpm", 0.5),))


names = st.text(min_size=0, max_size=300)


@settings(max_examples=300)
@given(
    asset=names,
    sensor=names,
    state=st.text(max_size=50),
    event=st.text(max_size=50),
    score=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    share=st.floats(allow_nan=True, allow_infinity=True),
    when=st.text(max_size=60),
)
def test_any_input_gives_a_valid_subject_and_sms(
    asset: str, sensor: str, state: str, event: str, score: float | None, share: float, when: str
) -> None:
    payload = default_payload(
        asset,
        state=state,
        event=event,
        variables={"last_score": score, "top_sensors": f"{sensor}={share}", "last_timestamp": when},
    )
    content = alerts.content_from_payload(payload)
    subject, body = alerts.build_email(content)
    assert_valid_subject(subject)
    assert body
    assert_valid_sms(alerts.build_sms(content))


@given(st.text(max_size=400))
def test_fit_sms_never_exceeds(text: str) -> None:
    assert_valid_sms(alerts.fit_sms(text))


def request(entry: int = 2, state: str = "Alarm", event: str = "alarm raised") -> ActionRequest:
    return ActionRequest(
        kind="sns",
        target={"targetArn": "arn:aws:sns:us-east-1:1:alerts"},
        payload=default_payload(state=state, event=event),
        payload_type="DEFAULT",
        detector_model="equipment_anomaly",
        key_value="pump-01",
        event_name=event,
        state_name=state,
        state_entry=entry,
        event_time_ms=1_767_225_780_000,
    )


def test_sns_action_sends_email_and_transactional_sms_once_per_state_entry() -> None:
    notifier = InMemoryNotifier()
    sink = LocalActionSink(
        notifier,
        None,
        email_target="ops@plant.test",
        sms_target="+15550001111",
        sender_id="PLANTWATCH",
    )
    sink.execute(request())
    sink.execute(request())  # the same alert again: not sent
    email, sms = notifier.sent
    assert (email.channel, email.target) == ("email", "ops@plant.test")
    assert (sms.channel, sms.target) == ("sms", "+15550001111")
    assert sms.attributes["AWS.SNS.SMS.SMSType"] == "Transactional"
    assert sms.attributes["AWS.SNS.SMS.SenderID"] == "PLANTWATCH"
    sink.execute(request(entry=4))  # a later entry into Alarm is a new alert
    assert len(notifier.sent) == 4


def test_dedup_survives_a_restart_with_a_state_store() -> None:
    from cloud.adapters.local import InMemoryStateStore

    store, notifier = InMemoryStateStore(), InMemoryNotifier()
    LocalActionSink(notifier, None, state=store).execute(request())
    LocalActionSink(notifier, None, state=store).execute(request())
    assert len(notifier.sent) == 2


@settings(max_examples=300)
@given(text=st.text(max_size=120))
def test_decomposed_text_reads_as_its_composed_form(text: str) -> None:
    # a name typed on a system that stores accents as combining marks (NFD, as macOS file
    # names do) must read the same as the composed one: "Cafe\u0301" is "Café" in an SMS,
    # not "Cafe?", since é is in GSM-7
    composed, decomposed = unicodedata.normalize("NFC", text), unicodedata.normalize("NFD", text)
    assert alerts.to_gsm7(decomposed) == alerts.to_gsm7(composed)
    assert alerts.ascii_subject(decomposed) == alerts.ascii_subject(composed)


@pytest.mark.parametrize(
    ("name", "sms", "subject"),
    [
        ("Cafe\u0301 tank", "Café tank", "Cafe tank"),
        ("tank 1½", "tank 1 1/2", "tank 1 1/2"),
        ("area 10²", "area 10^2", "area 10^2"),
        ("flow ≥ 5 m³/h", "flow >= 5 m^3/h", "flow >= 5 m^3/h"),
        ("temp ±2°C", "temp +/-2C", "temp +/-2C"),
        ("pump\u00ad01\u200b", "pump01", "pump01"),
        ("hot 🔥 pump", "hot  pump", "hot pump"),
        ("Łódź µm μm", "Lodz um um", "Lodz um um"),
    ],
)
def test_inserted_names_are_transliterated_without_changing_numbers(
    name: str, sms: str, subject: str
) -> None:
    # "1½" must not read "112" nor "10²" "102"; marks and zero-width characters are
    # dropped rather than shown as "?", and known symbols get their ASCII spelling
    assert alerts.to_gsm7(name) == sms
    assert alerts.ascii_subject(name) == subject


alarm_text = st.text(max_size=200)


@settings(max_examples=300)
@example(  # a name whose GSM-7 spelling is long ("(c)", "(R)", "...") left no room for "Ack"
    kind="ACTIVE",
    cause="rule",
    model="0" * 74
    + "\u00a9\u00a9\u00ae\u2018\u2018\u2026\u20ac\u2120\u2260\u2264\u2264\ufb00\ufb00",
    key=None,
    who=None,
    note=None,
    prop="",
    value=None,
    threshold=None,
    severity=None,
    snooze_s=None,
    additional=None,
)
@given(
    kind=st.sampled_from(
        ["ACTIVE", "REMINDER", "ACKNOWLEDGED", "LATCHED", "NORMAL", "SNOOZE_DISABLED", "DISABLED"]
    ),
    cause=st.sampled_from(["rule", "ACKNOWLEDGE", "RESET", "ENABLE", "SNOOZE_TIMEOUT"]),
    model=alarm_text,
    key=st.none() | alarm_text,
    who=st.none() | alarm_text,
    note=st.none() | alarm_text,
    prop=alarm_text,
    value=st.none() | st.floats() | st.integers() | st.booleans(),
    threshold=st.none() | st.floats(),
    severity=st.none() | st.integers(),
    snooze_s=st.none() | st.floats(min_value=0, max_value=1e9),
    additional=st.none() | alarm_text,
)
def test_any_alarm_notice_gives_a_valid_subject_and_sms(
    kind: str,
    cause: str,
    model: str,
    key: str | None,
    who: str | None,
    note: str | None,
    prop: str,
    value: object,
    threshold: float | None,
    severity: int | None,
    snooze_s: float | None,
    additional: str | None,
) -> None:
    # alarm names, keys, operator names and notes are anyone's text: the email subject and
    # the SMS stay within SNS's rules, and an alarm that needs acknowledging keeps the
    # start of its ack command
    notice = alerts.AlarmNotice(
        kind=kind,
        model=model,
        key=key,
        state=kind,
        previous=None,
        severity=severity,
        property_name=prop,
        value=value,
        operator="GREATER",
        threshold=threshold,
        time="2026-01-01T00:00:00Z",
        cause=cause,
        reminder=1,
        reminder_cap=3,
        who=who,
        note=note,
        snooze_s=snooze_s,
        additional=additional,
    )
    subject, body = alerts.build_alarm_email(notice)
    assert_valid_subject(subject)
    assert body
    sms = alerts.build_alarm_sms(notice)
    assert_valid_sms(sms)
    if kind in ("ACTIVE", "REMINDER", "LATCHED"):
        assert ". Ack: plantwatch alarms" in sms


@pytest.mark.parametrize("kind", ["ACTIVE", "REMINDER", "LATCHED", "ACKNOWLEDGED", "NORMAL"])
def test_an_sms_carries_the_additional_message_its_configuration_names(kind: str) -> None:
    # smsConfigurations[].additionalMessage (at most 200 characters) is the model author's
    # instruction to whoever gets the text; AWS's notification function appends it
    notice = alerts.AlarmNotice(
        kind=kind,
        model="valveOpen",
        key="v3",
        state=kind,
        previous=None,
        severity=1,
        property_name="position",
        value=None,
        operator="EQUAL",
        threshold=None,
        time="2026-01-01T00:00:00Z",
        reminder=1,
        reminder_cap=2,
        additional="Close the bypass valve",
    )
    sms = alerts.build_alarm_sms(notice)
    assert "Close the bypass valve" in sms
    assert_valid_sms(sms)
    if kind in ("ACTIVE", "REMINDER", "LATCHED"):
        assert sms.endswith(". Ack: plantwatch alarms ack valveOpen v3")
    # a long one is cut to what is left, the ack command stays whole
    long = alerts.build_alarm_sms(dataclasses.replace(notice, additional="Close it. " * 20))
    assert_valid_sms(long)
    assert "Close it." in long
    if kind in ("ACTIVE", "REMINDER", "LATCHED"):
        assert long.endswith(". Ack: plantwatch alarms ack valveOpen v3")


@pytest.mark.parametrize(
    ("sender", "valid"),
    [
        ("PLANT", True),
        ("plant-01", True),
        ("A12", True),
        ("-PLANT", False),
        ("PLANT-", False),
        ("123", False),
        ("PW", False),
        ("PLANTWATCH-1", False),
        ("PLANT 1", False),
    ],
)
def test_sender_id_follows_sns(sender: str, valid: bool) -> None:
    # SNS (Publish text message, Sender ID): 3-11 letters, digits or '-', at least one
    # letter, starting and ending with a letter or digit; anything else is refused with
    # ParameterValueInvalid, the whole SMS with it
    assert alerts.valid_sender_id(sender) is valid


PAYLOAD_KEYS = st.sampled_from(
    [
        *("payload", "detector", "state", "variables", "keyValue", "detectorModelName"),
        *("stateName", "eventName", "eventTime", "asset", "anomaly_score", "last_score"),
        *("top_sensors", "top_sensor", "top_share", "timestamp", "last_timestamp"),
        *("prediction_reason", "alarmModelName", "alarmState", "notice", "ruleEvaluation"),
        *("simpleRuleEvaluation", "customerAction", "actionName", "severity"),
        *("stateUpdateTime", "kind", "reminder", "reminderCap", "snooze_s", "who", "note"),
        *("inputPropertyValue", "thresholdValue", "operator", "previous", "cause"),
    ]
)
shaped_payloads = st.dictionaries(
    PAYLOAD_KEYS,
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(PAYLOAD_KEYS, inner, max_size=6)
        ),
        max_leaves=30,
    ),
    max_size=8,
)


@settings(max_examples=500)
@given(payload=shaped_payloads)
def test_any_custom_payload_still_makes_an_alert(payload: dict) -> None:
    # an sns action's custom JSON payload is the model author's: any member may hold any
    # JSON value. The alert goes out with what can be read, never an error the outbox
    # would retry for hours in vain
    content = alerts.content_from_payload(payload, event_time_ms=1_767_225_780_000)
    subject, body = alerts.build_email(content)
    assert_valid_subject(subject)
    assert body
    assert_valid_sms(alerts.build_sms(content))
    notice = alerts.alarm_notice_from_payload(payload)
    subject, body = alerts.build_alarm_email(notice)
    assert_valid_subject(subject)
    assert body
    assert_valid_sms(alerts.build_alarm_sms(notice))


names_with_shell = st.text(
    st.sampled_from(list("ab-_ ;|&$`'\"’‘()<>*?~\\\n#!{}é")), min_size=1, max_size=12
)


@settings(max_examples=300)
@given(model=names_with_shell, key=names_with_shell)
def test_the_commands_alerts_tell_an_operator_to_run_quote_the_names(model: str, key: str) -> None:
    # an asset key comes from device data; pasted from an alert into a shell, the ack
    # command must run `plantwatch alarms ack MODEL KEY` and nothing else, whatever the
    # names hold (`pump; rm -rf ~`), also once folded to GSM-7 for an SMS (’ becomes ')
    command = alerts.ack_command(model, key)
    assert shlex.split(command) == [
        "plantwatch",
        "alarms",
        "ack",
        model,
        key,
        "--note",
        "what you found",
    ]
    sms_command = shlex.join(
        ["plantwatch", "alarms", "ack", alerts.to_gsm7(model), alerts.to_gsm7(key)]
    )
    notice = alerts.AlarmNotice(
        kind="ACTIVE",
        model=model,
        key=key,
        state="ACTIVE",
        previous=None,
        severity=None,
        property_name="t",
        value=85.0,
        operator="GREATER",
        threshold=80.0,
        time="2026-01-01T00:00:00Z",
    )
    assert alerts.build_alarm_sms(notice).endswith(". Ack: " + sms_command)
    _subject, body = alerts.build_alarm_email(notice)
    assert f"Acknowledge:  {command}\n" in body
    target = shlex.join([model, key])
    assert f"plantwatch alarms snooze {target} --for 30m" in body
    assert f"History:      plantwatch alarms history {target}\n" in body
    content = dataclasses.replace(
        alerts.content_from_payload({"asset": key, "state": "Alarm"}), ack=command
    )
    assert alerts.build_sms(content).endswith(" Ack: " + sms_command)


@given(st.text(alphabet=string.ascii_lowercase + "_\\", min_size=1, max_size=20))
@example("valve\\pos")
def test_the_sms_names_the_whole_column_of_a_sensor_holding_a_backslash(column: str) -> None:
    """A component holds no ``\\`` and a column may: the asset is cut at the first one."""
    variables = {
        "last_score": 0.83,
        "last_timestamp": "2026-01-01T00:03:00.000000",
        "top_sensors": f"pump-01\\{column}=0.61",
    }
    sms = alerts.build_sms(alerts.content_from_payload(default_payload(variables=variables)))
    assert f" top {column} 61% " in sms
