"""The Lambda entry points build their adapters from the environment names of the
deployment contract; a missing or bad setting is a ConfigError naming it."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_support import REGION, LambdaContext, create_idempotency_table, create_state_table
from moto import mock_aws

from cloud.detectors import default_detector_paths
from cloud.handlers import detection, detector, inference, settings, timers
from edge.errors import ConfigError, DetectorModelError

EVENTS = Path(__file__).parents[1] / "events"


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A deployed environment under moto, and fresh entry points."""
    for module in (inference, detector, timers):
        monkeypatch.setattr(module, "_handler", None)
    with mock_aws():
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in ("pw-in", "pw-out", "pw-art"):
            s3.create_bucket(Bucket=bucket)
        ddb = boto3.client("dynamodb", region_name=REGION)
        create_state_table(ddb, "state")
        create_idempotency_table(ddb, "idem")
        topic = boto3.client("sns", region_name=REGION).create_topic(Name="a")["TopicArn"]
        values = {
            "INPUT_BUCKET": "pw-in",
            "OUTPUT_BUCKET": "pw-out",
            "ARTIFACTS_BUCKET": "pw-art",
            "STATE_TABLE": "state",
            "IDEMPOTENCY_TABLE": "idem",
            "ALERTS_TOPIC_ARN": topic,
            "DEFAULT_SITE": "plant-a",
        }
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        yield {"s3": s3, "ddb": ddb, **values}


def call(handle: Any, payload: dict[str, Any]) -> Any:
    with contextlib.redirect_stdout(io.StringIO()):
        return handle(payload, LambdaContext())


def test_inference_names_an_unregistered_scheduler(env: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="scheduler 'pumps-scheduler': not registered"):
        call(inference.handler, event("inference_schedule.json"))


def test_inference_needs_a_scheduler_name(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="SCHEDULER_NAME"):
        call(inference.handler, {"time": "2026-01-05T07:11:00Z"})


def test_missing_settings_are_named(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARTIFACTS_BUCKET")
    with pytest.raises(ConfigError, match="ARTIFACTS_BUCKET: required"):
        call(inference.handler, {})
    monkeypatch.delenv("IDEMPOTENCY_TABLE")
    with pytest.raises(ConfigError, match="IDEMPOTENCY_TABLE: required"):
        call(detector.handler, {"Records": []})
    monkeypatch.delenv("ALERTS_TOPIC_ARN")
    with pytest.raises(ConfigError, match="ALERTS_TOPIC_ARN: required"):
        call(timers.handler, {})


def test_detector_model_from_the_artifacts_bucket(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a custom detector model (the default one, renamed) in the artifacts bucket
    model_path, _input = default_detector_paths()
    body = json.loads(model_path.read_text())
    body["detectorModelName"] = "site_pumps"
    env["s3"].put_object(Bucket="pw-art", Key="detectors/site_pumps.json", Body=json.dumps(body))
    monkeypatch.setenv("DETECTOR_MODEL_KEY", "detectors/site_pumps.json")
    key = "output/pump-09/2026-01-05T07:05:00Z/results.jsonl"
    row = {"timestamp": "2026-01-05T07:06:00.000000", "prediction": 0}
    env["s3"].put_object(Bucket="pw-out", Key=key, Body=json.dumps(row) + "\n")
    notification = event("s3_results_created.json")
    notification["Records"][0]["s3"]["bucket"]["name"] = "pw-out"
    notification["Records"][0]["s3"]["object"]["key"] = key
    other = json.loads(json.dumps(notification["Records"][0]))
    other["s3"]["object"]["key"] = "output/pump-09/_SUCCESS"
    notification["Records"].append(other)
    # WHEN the detector handler gets the event (with a record for another key)
    response = call(detector.handler, notification)
    # THEN the custom model ran on the results object, the other record was ignored
    assert [o["rows_fed"] for o in response["objects"]] == [1]
    item = env["ddb"].get_item(
        TableName="state",
        Key={"namespace": {"S": "detectors/site_pumps"}, "key": {"S": "pump-09"}},
    )
    assert json.loads(item["Item"]["doc"]["S"])["state"] == "Normal"
    assert call(timers.handler, event("timers_tick.json")) == {
        "timers_fired": 0,
        "alarm_timers_fired": 0,
        "actions_retried": 0,
    }


def test_a_bad_detector_model_key_is_named(env: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"DETECTOR_MODEL_KEY 'detectors/none\.json'"):
        detection.detector_definitions({**env, "DETECTOR_MODEL_KEY": "detectors/none.json"})
    env["s3"].put_object(Bucket="pw-art", Key="detectors/bad.json", Body=b"{")
    with pytest.raises(DetectorModelError, match=r"detectors/bad\.json: not JSON"):
        detection.detector_definitions({**env, "DETECTOR_MODEL_KEY": "detectors/bad.json"})


@pytest.mark.parametrize("depth", [900, 100_000])
def test_a_model_artifact_nested_too_deeply_is_a_model_error(
    env: dict[str, Any], depth: int
) -> None:
    """Nested near the parser's limit (a copy needs more stack than the parse did) or past
    it: either is a one-line model error naming the key, never a RecursionError at cold start."""
    body = (
        '{"detectorModelName": "m", "roleArn": "arn:aws:iam::1:role/r", "tags": '
        + "[" * depth
        + "]" * depth
        + ', "detectorModelDefinition": {"initialStateName": "A",'
        ' "states": [{"stateName": "A"}]}}'
    )
    env["s3"].put_object(Bucket="pw-art", Key="detectors/deep.json", Body=body.encode())
    with pytest.raises(
        DetectorModelError, match=r"detectors/deep\.json: not (usable )?JSON: nested too deeply"
    ):
        detection.detector_definitions({**env, "DETECTOR_MODEL_KEY": "detectors/deep.json"})
    alarm = body.replace("detectorModelName", "alarmModelName")
    env["s3"].put_object(Bucket="pw-art", Key="alarms/deep.json", Body=alarm.encode())
    with pytest.raises(
        DetectorModelError, match=r"alarms/deep\.json: not (usable )?JSON: nested too deeply"
    ):
        detection.alarm_definitions({**env, "ALARM_MODEL_KEYS": "alarms/deep.json"}, [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-01-05T07:11:00Z", 1_767_597_060.0), ("2026-01-05T08:11:00+01:00", 1_767_597_060.0)],
)
def test_event_time_is_the_clock(text: str, expected: float) -> None:
    assert settings.event_clock({"time": text}).now() == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-01-05T07:11:00"])
def test_a_bad_event_time_is_bad_input(text: str) -> None:
    with pytest.raises(ConfigError, match="event time"):
        settings.event_clock({"time": text})
