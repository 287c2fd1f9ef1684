"""An alert SNS cannot take now (throttled) is kept in the outbox in the state table and sent
by a later timers invocation, once SNS takes it: never lost, never sent twice. One SNS will
refuse every time (a message SNS never takes) is a dead letter at once, with the reason;
a topic that does not exist is retried until an operator brings it back."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_support import (
    REGION,
    AtomicRequests,
    LambdaContext,
    create_state_table,
    iot_published,
    sns_sent,
)
from botocore.exceptions import ClientError
from moto import mock_aws

from cloud.adapters.aws import DynamoDbStateStore, IotDataPublisher, S3ObjectStore, SnsNotifier
from cloud.detectors import default_detector_paths, load_detector_model, load_input
from cloud.detectors.outbox import DEAD_LETTER_NAMESPACE, OUTBOX_NAMESPACE, redrive
from cloud.handlers import detector as detector_handler
from cloud.handlers import timers as timers_handler
from cloud.handlers.observability import Observability
from cloud.l4e.sites import SiteLayout
from edge.clock import ManualClock, SystemClock

T0 = 1_767_596_400  # 2026-01-05T07:00:00Z
KEY = "output/pump-02/2026-01-05T07:00:00Z/results.jsonl"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="pw-output")
        rows = [
            {"timestamp": f"2026-01-05T07:0{m}:00.000000", "prediction": 1, "anomaly_score": 0.9}
            for m in (1, 2, 3)
        ]
        s3.put_object(Bucket="pw-output", Key=KEY, Body="".join(json.dumps(r) + "\n" for r in rows))
        ddb = boto3.client("dynamodb", region_name=REGION)
        create_state_table(ddb, "pw-state")
        yield {
            "s3": s3,
            "sns": boto3.client("sns", region_name=REGION),
            "iot": boto3.client("iot-data", region_name=REGION),
            "state": DynamoDbStateStore("pw-state", AtomicRequests(ddb)),
        }


class ThrottledSns:
    """The SNS client, answering ``Throttled`` (botocore's retries spent) while ``down``."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.down = True

    def publish(self, **arguments: Any) -> Any:
        if self.down:
            raise ClientError(
                {
                    "Error": {"Code": "Throttled", "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "Publish",
            )
        return self.client.publish(**arguments)


def handlers(aws: dict[str, Any], sns: Any, topic: str) -> tuple[Any, Any]:
    model_path, input_path = default_detector_paths()
    common: dict[str, Any] = {
        "state": aws["state"],
        "notifier": SnsNotifier(topic, sns),
        "publisher": IotDataPublisher(aws["iot"]),
        "model": load_detector_model(model_path),
        "inputs": [load_input(input_path)],
        "observability": Observability(),
        "sites": SiteLayout(),
        "target": topic,
    }
    detect = detector_handler.make_handler(
        **common,
        open_store=lambda bucket: S3ObjectStore(bucket, client=aws["s3"]),
        prefix="output/",
        persistence=None,
        clock=ManualClock(T0 + 400),
    )
    return detect, timers_handler.make_handler(**common)


RECORD = {"s3": {"bucket": {"name": "pw-output"}, "object": {"key": KEY, "eTag": "e1"}}}


def test_a_throttled_alert_is_retried_by_the_timers_handler(aws: dict[str, Any]) -> None:
    # GIVEN SNS throttles every publish for now
    topic = aws["sns"].create_topic(Name="pw-alerts")["TopicArn"]
    sns = ThrottledSns(aws["sns"])
    detect, tick = handlers(aws, sns, topic)
    with contextlib.redirect_stdout(io.StringIO()):
        # WHEN pump-02 alarms: the shadow command goes out, the alert cannot
        detect({"Records": [RECORD]}, LambdaContext())
        assert [t for t, _ in iot_published()] == ["$aws/things/pump-02/shadow/update"]
        [(_key, pending)] = aws["state"].items(OUTBOX_NAMESPACE)
        assert pending["attempts"] == 1 and "Throttled" in pending["last_error"]
        # ... and once SNS takes publishes again, the next timers run sends it
        sns.down = False
        response = tick({"time": "2026-01-05T07:07:00Z"}, LambdaContext())
        again = tick({"time": "2026-01-05T07:08:00Z"}, LambdaContext())

    # THEN the alert went out once per channel, and nothing is left to retry
    assert response == {"timers_fired": 0, "alarm_timers_fired": 0, "actions_retried": 1}
    assert again == {"timers_fired": 0, "alarm_timers_fired": 0, "actions_retried": 0}
    assert [attrs["channel"] for _m, _s, attrs in sns_sent(topic)] == ["email", "sms"]
    assert list(aws["state"].items(OUTBOX_NAMESPACE)) == []
    assert list(aws["state"].items(DEAD_LETTER_NAMESPACE)) == []
    assert len(iot_published()) == 1


def test_an_alert_to_a_topic_that_does_not_exist_is_kept_until_the_topic_is_back(
    aws: dict[str, Any],
) -> None:
    # GIVEN the alerts topic does not exist (SNS answers NotFound to every publish)
    topic = f"arn:aws:sns:{REGION}:123456789012:pw-alerts"
    detect, tick = handlers(aws, aws["sns"], topic)
    with contextlib.redirect_stdout(io.StringIO()):
        detect({"Records": [RECORD]}, LambdaContext())
        # THEN the shadow command went out and the alert is kept, naming the cause
        assert [t for t, _ in iot_published()] == ["$aws/things/pump-02/shadow/update"]
        [(_key, pending)] = aws["state"].items(OUTBOX_NAMESPACE)
        assert "pw-alerts: email publish failed (NotFound)" in pending["last_error"]
        # WHEN an operator creates the topic again, the next timers run sends the alert
        aws["sns"].create_topic(Name="pw-alerts")
        response = tick({"time": "2026-01-05T07:07:00Z"}, LambdaContext())

    assert response["actions_retried"] == 1
    assert [attrs["channel"] for _m, _s, attrs in sns_sent(topic)] == ["email", "sms"]
    assert list(aws["state"].items(OUTBOX_NAMESPACE)) == []
    assert list(aws["state"].items(DEAD_LETTER_NAMESPACE)) == []


class RefusingSns:
    """The SNS client, answering ``InvalidParameter``: a message SNS never takes."""

    def publish(self, **_arguments: Any) -> Any:
        raise ClientError(
            {
                "Error": {"Code": "InvalidParameter", "Message": "Invalid parameter: Message"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            "Publish",
        )


def test_an_alert_sns_refuses_as_a_request_is_a_dead_letter_at_once(
    aws: dict[str, Any],
) -> None:
    topic = aws["sns"].create_topic(Name="pw-alerts")["TopicArn"]
    detect, tick = handlers(aws, RefusingSns(), topic)
    with contextlib.redirect_stdout(io.StringIO()):
        detect({"Records": [RECORD]}, LambdaContext())
        response = tick({"time": "2026-01-05T07:07:00Z"}, LambdaContext())

    # THEN the shadow command went out, the alert was tried once and kept with the reason
    assert [t for t, _ in iot_published()] == ["$aws/things/pump-02/shadow/update"]
    assert list(aws["state"].items(OUTBOX_NAMESPACE)) == []
    [(_key, dead)] = aws["state"].items(DEAD_LETTER_NAMESPACE)
    assert dead["attempts"] == 1
    assert dead["dead_reason"].startswith("refused (InvalidParameter)")
    assert "pw-alerts: email publish refused (InvalidParameter)" in dead["last_error"]
    assert response["actions_retried"] == 0


def test_a_dead_letter_redriven_by_the_operator_is_sent_by_the_next_timers_run(
    aws: dict[str, Any],
) -> None:
    # GIVEN an alert SNS refused is a dead letter
    topic = aws["sns"].create_topic(Name="pw-alerts")["TopicArn"]
    detect, _tick = handlers(aws, RefusingSns(), topic)
    with contextlib.redirect_stdout(io.StringIO()):
        detect({"Records": [RECORD]}, LambdaContext())
    [(key, _dead)] = aws["state"].items(DEAD_LETTER_NAMESPACE)
    # WHEN the operator fixed the cause and redrives it (what `alarms redrive --aws` runs)
    assert [(r.key, r.status) for r in redrive(aws["state"], SystemClock())] == [(key, "redriven")]
    # THEN the next timers run, now with an SNS that takes it, sends it once per channel
    _detect, tick = handlers(aws, aws["sns"], topic)
    with contextlib.redirect_stdout(io.StringIO()):
        response = tick({"time": "2026-01-05T07:07:00Z"}, LambdaContext())
        again = tick({"time": "2026-01-05T07:08:00Z"}, LambdaContext())
    assert (response["actions_retried"], again["actions_retried"]) == (1, 0)
    assert [attrs["channel"] for _m, _s, attrs in sns_sent(topic)] == ["email", "sms"]
    assert list(aws["state"].items(OUTBOX_NAMESPACE)) == []
    assert list(aws["state"].items(DEAD_LETTER_NAMESPACE)) == []
