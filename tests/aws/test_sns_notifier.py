"""SnsNotifier against moto: one publish per channel, routing attributes that subscription
filter policies act on, the email subject and the SMS limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from detector_models import alert_request
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from cloud.adapters.aws import SnsNotifier
from cloud.adapters.local import InMemoryStateStore
from cloud.alerts import SMS_MAX_SEPTETS, gsm7_septets
from cloud.detectors.actions import LocalActionSink
from cloud.detectors.outbox import DeliveryOutbox
from cloud.ports import Notification
from edge.clock import ManualClock
from edge.errors import RefusedError, StorageError

REGION = "us-east-1"
ARN = "arn:aws:sns:us-east-1:123456789012:plantwatch-alerts"
META = {"asset": "pump-02", "kind": "ALARM", "severity": "critical", "alert_id": "m|pump-02|a"}


@pytest.fixture
def sns() -> Iterator[tuple[Any, Any, str]]:
    with mock_aws():
        client = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        arn = client.create_topic(Name="plantwatch-alerts")["TopicArn"]
        yield client, sqs, arn


def subscribe(client: Any, sqs: Any, arn: str, channel: str) -> str:
    """An SQS stand-in for the email or SMS subscription, filtered the way the CDK app does."""
    url = sqs.create_queue(QueueName=f"alerts-{channel}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    client.subscribe(
        TopicArn=arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={
            "FilterPolicy": json.dumps({"channel": [channel]}),
            "RawMessageDelivery": "true",
        },
    )
    return url


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    return sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])


def test_each_channel_reaches_only_its_subscription_with_attributes(sns) -> None:
    client, sqs, arn = sns
    email_q, sms_q = subscribe(client, sqs, arn, "email"), subscribe(client, sqs, arn, "sms")
    notifier = SnsNotifier(arn, client, site="plant-a")
    notifier.send(Notification("email", arn, "[plantwatch] ALARM pump-02", "full body", META))
    notifier.send(
        Notification(
            "sms", arn, "", "PLANTWATCH ALARM pump-02", {**META, "AWS.SNS.SMS.SenderID": "PLANT"}
        )
    )
    [email], [sms] = received(sqs, email_q), received(sqs, sms_q)
    assert email["Body"] == "full body"
    attrs = {k: v["StringValue"] for k, v in email["MessageAttributes"].items()}
    assert attrs == {
        "channel": "email",
        "severity": "critical",
        "site": "plant-a",
        "asset": "pump-02",
        "kind": "ALARM",
        "alert_id": "m|pump-02|a",
    }
    sms_attrs = {k: v["StringValue"] for k, v in sms["MessageAttributes"].items()}
    assert sms["Body"] == "PLANTWATCH ALARM pump-02"
    assert sms_attrs["channel"] == "sms"
    assert sms_attrs["AWS.SNS.SMS.SMSType"] == "Transactional"
    assert sms_attrs["AWS.SNS.SMS.SenderID"] == "PLANT"
    assert "AWS.SNS.SMS.SMSType" not in attrs


def test_email_subject_is_a_valid_sns_subject(sns) -> None:
    client, _sqs, arn = sns
    SnsNotifier(arn, client).send(
        Notification("email", arn, "ALARM °C pump\n" + "x" * 300, "body", {"asset": "p"})
    )
    from moto.sns.models import sns_backends

    topic = sns_backends["123456789012"][REGION].topics[arn]
    [(_id, message, subject, attributes, _group)] = topic.sent_notifications
    assert message == "body"
    assert len(subject) <= 99 and subject.isascii() and "\n" not in subject
    assert attributes["site"]["Value"] == "unknown"
    assert attributes["severity"]["Value"] == "info"


def test_sms_never_exceeds_160_gsm7_characters() -> None:
    with mock_aws():
        client = boto3.client("sns", region_name=REGION)
        arn = client.create_topic(Name="t")["TopicArn"]
        from moto.sns.models import sns_backends

        sent = sns_backends["123456789012"][REGION].topics[arn].sent_notifications
        notifier = SnsNotifier(arn, client)

        @settings(max_examples=60)
        @given(body=st.text(min_size=1, max_size=400))
        def check(body: str) -> None:
            sent.clear()
            notifier.send(Notification("sms", arn, "", body, {}))
            [(_id, message, *_rest)] = sent
            septets = gsm7_septets(message)
            assert septets is not None and septets <= SMS_MAX_SEPTETS

        check()


def test_an_empty_alert_still_publishes_a_message(sns) -> None:
    # SNS rejects an empty Message ("Invalid parameter: Empty message"); moto does not, so
    # what was sent is checked: a model's action may well evaluate to empty text
    client, sqs, arn = sns
    email_q, sms_q = subscribe(client, sqs, arn, "email"), subscribe(client, sqs, arn, "sms")
    notifier = SnsNotifier(arn, client)
    for channel in ("email", "sms"):
        notifier.send(Notification(channel, arn, "", "", META))
    [email], [sms] = received(sqs, email_q), received(sqs, sms_q)
    assert email["Body"] == "plantwatch alert"
    assert sms["Body"] == "plantwatch alert"


def publish_size(message: str, attributes: dict[str, Any]) -> int:
    """What SNS counts against its 256 KiB limit: the message and every attribute's name,
    data type and value, as UTF-8 bytes."""
    size = len(message.encode())
    for name, value in attributes.items():
        size += len(name.encode()) + len(value["Type"].encode()) + len(value["Value"].encode())
    return size


@pytest.mark.parametrize("body", ["é" * 200_000, "x" * 300_000, "é" * 300_000])
def test_an_email_body_past_256_kib_is_cut_to_fit_with_a_note(sns, body: str) -> None:
    # GIVEN an email whose body (a model's own payload text) passes what one publish holds:
    # 262,144 bytes of UTF-8 with the message attributes (SNS Publish, Message constraints)
    client, _sqs, arn = sns
    # WHEN it is sent
    SnsNotifier(arn, client).send(Notification("email", arn, "ALARM pump-02", body, META))
    # THEN it goes out, cut at a character to fit, saying that it was cut
    from moto.sns.models import sns_backends

    [(_id, message, _subject, attributes, _group)] = (
        sns_backends["123456789012"][REGION].topics[arn].sent_notifications
    )
    assert publish_size(message, attributes) <= 262_144
    assert message.endswith("bytes of the alert were cut: SNS takes 256 KiB]")
    assert body.startswith(message[: message.rindex("\n")])


@pytest.mark.parametrize(
    "sender", ["plantwatch-alerts", "PW", "1234", "plant watch", "Plänt", "-PLANT", "PLANT-"]
)
def test_an_sms_sender_id_sns_would_refuse_is_left_out_not_the_sms(sns, sender: str) -> None:
    # GIVEN an SMS whose sender ID (an alarm model's smsConfigurations[].senderId, which
    # CreateAlarmModel does not check) breaks SNS's rule: 3-11 letters, digits or '-', at
    # least one letter; SNS refuses such a publish with ParameterValueInvalid, every time
    client, _sqs, arn = sns
    attributes = {**META, "AWS.SNS.SMS.SenderID": sender}
    # WHEN it is sent
    SnsNotifier(arn, client).send(Notification("sms", arn, "", "PLANTWATCH ALARM", attributes))
    # THEN the SMS goes out without it (the account's default sender shows instead)
    from moto.sns.models import sns_backends

    [(_id, message, _subject, sent, _group)] = (
        sns_backends["123456789012"][REGION].topics[arn].sent_notifications
    )
    assert message == "PLANTWATCH ALARM"
    assert "AWS.SNS.SMS.SenderID" not in sent
    assert sent["AWS.SNS.SMS.SMSType"]["Value"] == "Transactional"


class FailingSns:
    """An SNS client whose publish raises *error* (what botocore raises once its own
    retries are spent)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def publish(self, **_: Any) -> None:
        raise self.error


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} from SNS"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "Publish",
    )


def alert_outbox(notifier: Any) -> tuple[DeliveryOutbox, ManualClock]:
    clock = ManualClock(1_767_225_600.0)
    state = InMemoryStateStore()
    return DeliveryOutbox(LocalActionSink(notifier, None, state=state), state, clock), clock


ALERT = alert_request("p-1")


def test_a_topic_that_does_not_exist_is_retried_naming_the_cause(sns) -> None:
    # a deleted topic is the deployment's fault, not the alert's: once the topic is back,
    # the same alert goes out, so it is kept for the retries, not dead at the first try
    client, _sqs, arn = sns
    notifier = SnsNotifier(arn + "-gone", client)
    with pytest.raises(StorageError, match="plantwatch-alerts-gone: email publish failed") as e:
        notifier.send(Notification("email", "x", "s", "b", {}))
    assert not isinstance(e.value, RefusedError) and "(NotFound)" in str(e.value)

    outbox, clock = alert_outbox(notifier)
    outbox.execute(ALERT)
    clock.advance(3600)
    outbox.retry_due()
    [(_key, record)] = outbox.pending()
    assert record["attempts"] == 2 and "NotFound" in record["last_error"]
    assert outbox.dead_letters() == []


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("InvalidParameter", 400),
        ("ParameterValueInvalid", 400),
        ("ValidationException", 400),
    ],
)
def test_what_sns_refuses_every_time_is_refused(code: str, status: int) -> None:
    notifier = SnsNotifier(ARN, FailingSns(client_error(code, status)))
    with pytest.raises(RefusedError) as e:
        notifier.send(Notification("email", "x", "s", "b", {}))
    assert e.value.reason == code
    outbox, _clock = alert_outbox(notifier)
    outbox.execute(ALERT)
    assert outbox.pending() == [] and len(outbox.dead_letters()) == 1


def test_parameters_botocore_refuses_are_a_dead_letter_at_once_on_one_line() -> None:
    # botocore checks the request against the service model before sending: the same
    # request fails the same way every time
    error = ParamValidationError(report="Invalid type for parameter Message, value: 5")
    notifier = SnsNotifier(ARN, FailingSns(error))
    with pytest.raises(RefusedError, match="email publish refused by botocore") as e:
        notifier.send(Notification("email", "x", "s", "b", {}))
    assert e.value.reason == "ParamValidation"
    outbox, _clock = alert_outbox(notifier)
    outbox.execute(ALERT)
    [(_key, record)] = outbox.dead_letters()
    assert record["dead_reason"].startswith("refused (ParamValidation)")
    assert "\n" not in record["last_error"] and "parameter Message" in record["last_error"]


@pytest.mark.parametrize(
    "error",
    [
        client_error("Throttled", 400),
        client_error("Throttling", 400),
        client_error("KMSThrottling", 400),
        client_error("InternalError", 500),
        client_error("ServiceUnavailable", 503),
        EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://sns.us-east-1.amazonaws.com"),
        client_error("NotFound", 404),
        client_error("AuthorizationError", 403),
        client_error("KMSDisabled", 400),
        client_error("KMSAccessDenied", 400),
        client_error("InvalidSecurity", 403),
    ],
    ids=[
        "Throttled",
        "Throttling",
        "KMSThrottling",
        "InternalError",
        "503",
        "connect",
        "timeout",
        "NotFound",
        "AuthorizationError",
        "KMSDisabled",
        "KMSAccessDenied",
        "InvalidSecurity",
    ],
)
def test_a_transient_sns_failure_is_retried_with_backoff(error: Exception) -> None:
    notifier = SnsNotifier(ARN, FailingSns(error))
    with pytest.raises(StorageError) as e:
        notifier.send(Notification("email", "x", "s", "b", {}))
    assert not isinstance(e.value, RefusedError)
    outbox, _clock = alert_outbox(notifier)
    outbox.execute(ALERT)
    [(_key, record)] = outbox.pending()
    assert record["attempts"] == 1 and outbox.dead_letters() == []


def test_an_alert_with_a_lone_surrogate_is_published_not_failed_forever(sns) -> None:
    # a JSON payload may carry "\ud800", which json.loads turns into a lone surrogate;
    # botocore cannot encode it (UnicodeEncodeError on every attempt)
    client, sqs, arn = sns
    email_q = subscribe(client, sqs, arn, "email")
    odd = json.loads('"pump \\ud800"')
    SnsNotifier(arn, client).send(
        Notification("email", "x", "s", f"{odd} tripped", {**META, "asset": odd})
    )
    [message] = received(sqs, email_q)
    assert message["Body"] == "pump \ufffd tripped"
    assert message["MessageAttributes"]["asset"]["StringValue"] == "pump \ufffd"


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_a_huge_asset_name_leaves_the_alert_whole_and_the_publish_within_256_kib(
    sns, channel: str
) -> None:
    # GIVEN an alert whose asset (a custom payload's "asset", from device data) and id are
    # far longer than any filter policy needs; the attributes count against the 256 KiB
    # SNS takes in one publish, so sent as they are SNS refuses the alert every time
    client, _sqs, arn = sns
    body = "PLANTWATCH ALARM pump-02 score 0.91"
    attributes = {**META, "asset": "pump-" + "é" * 150_000, "alert_id": "m|" + "k" * 2000}
    # WHEN it is sent
    SnsNotifier(arn, client).send(Notification(channel, arn, "ALARM", body, attributes))
    # THEN the publish fits, the text is whole, and the attributes keep their start
    from moto.sns.models import sns_backends

    [(_id, message, _subject, sent, _group)] = (
        sns_backends["123456789012"][REGION].topics[arn].sent_notifications
    )
    assert publish_size(message, sent) <= 262_144
    assert message == body
    assert sent["asset"]["Value"].startswith("pump-éé")
    assert sent["alert_id"]["Value"].startswith("m|kk")
    assert all(len(v["Value"].encode()) <= 1024 for v in sent.values())


@pytest.mark.parametrize("body", ["   ", "\x00\x01", "\n\r\n", "\u200b\u2060", "🔥"])
def test_an_sms_with_nothing_to_read_sends_the_subject_not_a_blank_text(sns, body: str) -> None:
    # a body of only spaces, controls, zero-width characters or pictographs folds to
    # nothing readable in GSM-7: the phone would buzz with a blank text
    client, _sqs, arn = sns
    SnsNotifier(arn, client).send(Notification("sms", arn, "ALARM pump-02", body, META))
    from moto.sns.models import sns_backends

    [(_id, message, *_rest)] = sns_backends["123456789012"][REGION].topics[arn].sent_notifications
    assert message == "ALARM pump-02"
