"""Alarm models on the AWS path (moto): the detector function runs the companion alarm
model beside the detector model, an operator acknowledges through ``plantwatch alarms ack
--aws --stack``, and two overlapping timers invocations send a due reminder once and none
for the acknowledged alarm.

The deployment is a CloudFormation stack whose outputs carry the names the CDK app declares
(``infra.outputs``); the CLI finds the state table and the alerts topic through them.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_support import REGION, AtomicRequests, LambdaContext, sns_sent, table_resource
from moto import mock_aws

from cloud.adapters.aws import DynamoDbStateStore
from cloud.cli.main import main
from cloud.detectors.alarms.model import default_alarm_path
from cloud.handlers import detection, detector, settings, timers
from cloud.ports import StateStore, Versioned
from edge.clock import ManualClock
from infra import outputs

EVENTS = Path(__file__).parents[1] / "events"
STACK = "plantwatch-alarms"
T0 = 1_767_596_400  # 2026-01-05T07:00:00Z
ALARMS_NS = "alarms/anomaly_score"
SITE = "plant-b"
"""The deployment's DEFAULT_SITE: its assets have bare keys."""


def stack_template() -> dict[str, Any]:
    """The data resources the alarm path uses, with the outputs the CDK app declares."""
    return {
        "Resources": {
            "Output": {"Type": "AWS::S3::Bucket"},
            "Artifacts": {"Type": "AWS::S3::Bucket"},
            "State": table_resource([("namespace", "HASH"), ("key", "RANGE")]),
            "Idempotency": table_resource([("id", "HASH")]),
            "Alerts": {"Type": "AWS::SNS::Topic"},
        },
        "Outputs": {
            outputs.OUTPUT_BUCKET: {"Value": {"Ref": "Output"}},
            outputs.ARTIFACTS_BUCKET: {"Value": {"Ref": "Artifacts"}},
            outputs.STATE_TABLE: {"Value": {"Ref": "State"}},
            outputs.ALERTS_TOPIC_ARN: {"Value": {"Ref": "Alerts"}},
            outputs.DEFAULT_SITE: {"Value": SITE},
            "IdempotencyTable": {"Value": {"Ref": "Idempotency"}},
        },
    }


@dataclass
class Deployed:
    outputs: dict[str, str]
    lines: list[dict[str, Any]]

    @property
    def topic(self) -> str:
        return self.outputs[outputs.ALERTS_TOPIC_ARN]

    def env(self) -> dict[str, str]:
        o = self.outputs
        return {
            "OUTPUT_BUCKET": o[outputs.OUTPUT_BUCKET],
            "ARTIFACTS_BUCKET": o[outputs.ARTIFACTS_BUCKET],
            "STATE_TABLE": o[outputs.STATE_TABLE],
            "IDEMPOTENCY_TABLE": o["IdempotencyTable"],
            "ALERTS_TOPIC_ARN": o[outputs.ALERTS_TOPIC_ARN],
            "DEFAULT_SITE": SITE,
        }

    def sent(self) -> list[tuple[str, str, str]]:
        """``(asset, kind, channel)`` of every SNS publish so far."""
        return [(a["asset"], a["kind"], a["channel"]) for _m, _s, a in sns_sent(self.topic)]

    def alarm(self, asset: str) -> dict[str, Any]:
        item = boto3.client("dynamodb", region_name=REGION).get_item(
            TableName=self.outputs[outputs.STATE_TABLE],
            Key={"namespace": {"S": ALARMS_NS}, "key": {"S": asset}},
        )
        return json.loads(item["Item"]["doc"]["S"])


def results(asset: str, scores: list[float]) -> bytes:
    rows = [
        {
            "timestamp": f"2026-01-05T07:0{i}:00.000000",
            "prediction": int(score > 0.5),
            "anomaly_score": score,
        }
        for i, score in enumerate(scores)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    body = json.loads((EVENTS / "s3_results_created.json").read_text())
    body["Records"][0]["s3"]["bucket"]["name"] = bucket
    body["Records"][0]["s3"]["object"]["key"] = key
    body["Records"][0]["s3"]["object"]["eTag"] = key  # one object, one ETag
    return body


def cli(*argv: str) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    text = out.getvalue()
    return code, json.loads(text) if text.strip().startswith(("{", "[")) else text, err.getvalue()


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    """A stack, and the detector function run on two assets' anomalous results: both
    companion alarms ACTIVE at 07:03."""
    for module in (detector, timers):
        monkeypatch.setattr(module, "_handler", None)
    with mock_aws():
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        monkeypatch.delenv("DEFAULT_SITE", raising=False)  # the CLI reads the stack's
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(stack_template()))
        [stack] = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
        found = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        deployment = Deployed(found, [])
        s3 = boto3.client("s3", region_name=REGION)
        bucket = found[outputs.OUTPUT_BUCKET]
        handle = detector.make_handler(
            **{**detection.detector_adapters(deployment.env()), "persistence": None},
            open_store=settings.bucket_store,
            prefix="output/",
            clock=ManualClock(T0 + 200),
        )
        for asset in ("pump-a", "pump-b"):
            key = f"output/{asset}/2026-01-05T07:00:00Z/results.jsonl"
            s3.put_object(Bucket=bucket, Key=key, Body=results(asset, [0.2, 0.8, 0.9]))
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                handle(s3_event(bucket, key), LambdaContext())
            deployment.lines += [json.loads(x) for x in out.getvalue().splitlines() if x]
        yield deployment


def test_the_detector_function_runs_the_companion_alarm_model(deployed: Deployed) -> None:
    changes = [x for x in deployed.lines if x.get("message") == "alarm_state_change"]
    assert [
        (c["site"], c["asset"], c["alarm_model"], c["from_state"], c["to_state"]) for c in changes
    ] == [
        (SITE, "pump-a", "anomaly_score", "NORMAL", "ACTIVE"),
        (SITE, "pump-b", "anomaly_score", "NORMAL", "ACTIVE"),
    ]
    active = [s for s in deployed.sent() if s[1] == "ALARM_ACTIVE"]
    assert Counter(active) == {
        ("pump-a", "ALARM_ACTIVE", "email"): 1,
        ("pump-a", "ALARM_ACTIVE", "sms"): 1,
        ("pump-b", "ALARM_ACTIVE", "email"): 1,
        ("pump-b", "ALARM_ACTIVE", "sms"): 1,
    }
    doc = deployed.alarm("pump-b")
    assert (doc["state"], doc["pending"], doc["next_reminder"]) == ("ACTIVE", [], T0 + 200 + 1800)


class Rendezvous:
    """The state table, except that each timers run waits after loading the alarm instances
    until the other has loaded them too: both start from the same versions."""

    def __init__(self, inner: StateStore, barrier: threading.Barrier) -> None:
        self._inner = inner
        self._barrier = barrier

    def items_versioned(self, namespace: str) -> Iterator[tuple[str, Versioned]]:
        loaded = list(self._inner.items_versioned(namespace))
        if namespace == ALARMS_NS:
            self._barrier.wait(timeout=30)
        return iter(loaded)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_an_ack_through_the_cli_stops_reminders_and_overlapping_runs_remind_once(
    deployed: Deployed,
) -> None:
    # GIVEN an operator acknowledges pump-a on the deployment, found by its stack name
    code, described, err = cli(
        *("alarms", "ack", "anomaly_score", "pump-a", "--aws", "--stack", STACK),
        *("--who", "ana", "--note", "valve closed", "--json"),
    )
    assert code == 0, err
    assert described["alarm"]["alarmState"]["stateName"] == "ACKNOWLEDGED"
    assert described["alarm"]["alarmState"]["customerAction"] == {
        "actionName": "ACKNOWLEDGE",
        "acknowledgeActionConfiguration": {"note": "valve closed"},
    }
    acked = [s for s in deployed.sent() if s[1] == "ALARM_ACKNOWLEDGED"]
    assert sorted(acked) == [
        ("pump-a", "ALARM_ACKNOWLEDGED", "email"),
        ("pump-a", "ALARM_ACKNOWLEDGED", "sms"),
    ]
    _m, _s, attributes = sns_sent(deployed.topic)[-1]
    assert (attributes["site"], attributes["asset"]) == (SITE, "pump-a")  # the stack's site
    assert deployed.alarm("pump-a")["pending"] == []  # the hand-over is written
    # a second acknowledgement does not fit: exit 2, one line naming the state
    code, _out, err = cli("alarms", "ack", "anomaly_score", "pump-a", "--aws", "--stack", STACK)
    assert code == 2 and err.count("\n") == 1 and "it is ACKNOWLEDGED" in err
    code, listed, _err = cli("alarms", "list", "--aws", "--stack", STACK, "--json")
    assert [(r["key"], r["state"], r["last_action"]) for r in listed] == [
        ("pump-a", "ACKNOWLEDGED", "ACKNOWLEDGE by ana"),
        ("pump-b", "ACTIVE", ""),
    ]
    code, history, _err = cli(
        "alarms", "history", "anomaly_score", "pump-a", "--aws", "--stack", STACK, "--json"
    )
    assert [(h["action"], h["to"], h["who"], h["note"]) for h in history] == [
        ("STATE_CHANGE", "ACTIVE", "plantwatch", ""),
        ("ACKNOWLEDGE", "ACKNOWLEDGED", "ana", "valve closed"),
    ]

    # WHEN two timers runs overlap 31 minutes after both went ACTIVE
    before = len(sns_sent(deployed.topic))
    barrier = threading.Barrier(2)
    adapters = detection.detector_adapters(deployed.env())
    table = DynamoDbStateStore(
        deployed.outputs[outputs.STATE_TABLE],
        AtomicRequests(boto3.client("dynamodb", region_name=REGION)),
    )
    handlers = [
        timers.make_handler(**{**adapters, "state": Rendezvous(table, barrier)})  # type: ignore[arg-type]
        for _ in range(2)
    ]
    tick = json.loads((EVENTS / "timers_tick.json").read_text())
    tick["time"] = "2026-01-05T07:34:00Z"
    responses: list[dict[str, Any]] = []
    out = io.StringIO()

    def run(handle: Any) -> None:
        responses.append(handle(tick, LambdaContext()))

    with contextlib.redirect_stdout(out):
        threads = [threading.Thread(target=run, args=(h,)) for h in handlers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    # THEN pump-b is reminded once between them, pump-a (acknowledged) not at all
    assert sorted(r["alarm_timers_fired"] for r in responses) == [0, 1]
    # (the detector model's heartbeat also ran out: its "went silent" alerts are not alarms)
    assert sorted(s for s in deployed.sent()[before:] if s[1].startswith("ALARM_")) == [
        ("pump-b", "ALARM_REMINDER", "email"),
        ("pump-b", "ALARM_REMINDER", "sms"),
    ]
    doc = deployed.alarm("pump-b")
    assert (doc["reminders_sent"], doc["next_reminder"], doc["pending"]) == (
        1,
        T0 + 34 * 60 + 1800,
        [],
    )
    assert deployed.alarm("pump-a").get("next_reminder") is None


def test_alarm_models_from_the_artifacts_bucket(deployed: Deployed, tmp_path: Path) -> None:
    # GIVEN an alarm model pushed to the deployment and named in ALARM_MODEL_KEYS
    body = json.loads(default_alarm_path().read_text())
    body["alarmModelName"] = "score_high"
    body["alarmRule"]["simpleRule"]["threshold"] = "0.85"
    path = tmp_path / "score_high.json"
    path.write_text(json.dumps(body))
    code, pushed, err = cli("alarms", "push", str(path), "--aws", "--stack", STACK, "--json")
    assert code == 0, err
    assert pushed["key"].startswith("alarms/score_high/") and not pushed["deployed"]
    assert f"-c alarm_model_keys={pushed['key']}" in err
    env = {**deployed.env(), "ALARM_MODEL_KEYS": pushed["key"]}
    [model] = detection.alarm_definitions(env, detection.detector_definitions(env)[1])
    assert (model.name, model.rule.threshold_text) == ("score_high", "0.85")
    assert detection.alarm_definitions({**env, "ALARM_MODEL_KEYS": "none"}, []) == []
    with pytest.raises(Exception, match=r"ALARM_MODEL_KEYS 'alarms/nope\.json'"):
        detection.alarm_definitions({**env, "ALARM_MODEL_KEYS": "alarms/nope.json"}, [])
