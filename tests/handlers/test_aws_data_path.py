"""The whole AWS data path under moto, stage by stage, against the local pipeline.

Kinesis records (2 assets, 2 windows, a redelivered and a malformed message) -> batcher
handler -> input bucket, byte-identical to the local batcher; an EventBridge Scheduler
event -> inference handler -> results.jsonl equal to the local scheduler's; each S3 event
-> detector handler -> pump-02 in Alarm in DynamoDB, one SNS publish per channel, one
iot-data shadow command, and the companion alarm model ACTIVE beside it; the same event again
changes nothing; an operator acknowledges the alarm through `plantwatch alarms ack --aws`;
two overlapping timer invocations fire each due timer once, send each "went silent" alert
once, and send no reminder of the acknowledged alarm.

Each stage is a module fixture that runs once on the state the previous stage left; each
test checks one promise.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_support import (
    REGION,
    AtomicRequests,
    LambdaContext,
    create_idempotency_table,
    create_state_table,
    iot_published,
    kinesis_event,
    sns_sent,
)
from handler_contract import POWERTOOLS_KEYS, dotted, log_fields, parse_query
from moto import mock_aws

from cloud.adapters.aws import DynamoDbStateStore, IotDataPublisher, S3ObjectStore, SnsNotifier
from cloud.adapters.local import InMemoryObjectStore, InMemoryStateStore
from cloud.batcher import Batcher, BatcherConfig
from cloud.cli.main import main as cli_main
from cloud.detectors import default_detector_paths, load_detector_model, load_input
from cloud.detectors.alarms import load_alarm_model
from cloud.detectors.alarms.model import default_alarm_path
from cloud.handlers import batcher as batcher_handler
from cloud.handlers import detector as detector_handler
from cloud.handlers import inference as inference_handler
from cloud.handlers import timers as timers_handler
from cloud.handlers.observability import Observability
from cloud.inference.model import Model, TrainConfig, train
from cloud.inference.registry import ModelRegistry
from cloud.inference.scheduler import (
    Scheduler,
    SchedulerConfig,
    create_scheduler,
    list_executions,
)
from cloud.l4e.sites import SiteLayout
from cloud.ports import StateStore, Versioned
from cloud.rules.evaluate import Message, evaluate
from cloud.rules.runner import RulesRunner, load_rules
from edge import wire
from edge.clock import ManualClock

EVENTS = Path(__file__).parents[1] / "events"
T0 = 1_767_596_400  # 2026-01-05T07:00:00Z
SITE = "plant-a"
SITES = SiteLayout(default_site=SITE)  # plant-a keeps the flat L4E names
INPUT, OUTPUT, ARTIFACTS = "plantwatch-input", "plantwatch-output", "plantwatch-artifacts"
STATE, IDEMPOTENCY = "plantwatch-state", "plantwatch-idempotency"
STREAM = "plantwatch-telemetry"
ASSETS = ("pump-01", "pump-02")
MODEL_NS = "detectors/equipment_anomaly"
ALARM_NS = "alarms/anomaly_score"


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


# ---- data ---------------------------------------------------------------------------------


def plant(rng: np.random.Generator, load: np.ndarray) -> dict[str, np.ndarray]:
    """A pump whose sensors all follow the load."""
    n = len(load)
    return {
        "flow": 3.0 * load + rng.normal(0, 2.0, n),
        "motor_current": 0.2 * load + rng.normal(0, 0.3, n),
        "pressure": 0.05 * load + 1.0 + rng.normal(0, 0.05, n),
        "temperature": 40 + 0.1 * load + rng.normal(0, 0.5, n),
    }


def history() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = 3000
    load = np.where((np.arange(rows) // 200) % 2 == 1, 80.0, 40.0) + rng.normal(0, 2, rows)
    index = pd.date_range("2026-01-01", periods=rows, freq="60s", tz="UTC")
    return pd.DataFrame(plant(rng, load), index=index)


def telemetry() -> list[tuple[str, bytes]]:
    """MQTT messages in arrival order: 20 readings per asset every 30 s from 07:00:30 (two
    5-minute windows), pump-02 failing in the second; one message redelivered, one broken."""
    rng = np.random.default_rng(17)
    per_asset: dict[str, list[wire.Telemetry]] = {}
    for asset in ASSETS:
        values = plant(rng, 80.0 + rng.normal(0, 2, 20))
        if asset == "pump-02":
            values["motor_current"][10:] *= 1.8  # the motor labours from 07:05:30
            values["temperature"][10:] += 25
        samples = [
            wire.Sample(
                (T0 + 30 * (i + 1)) * 1000,
                {name: round(float(v[i]), 3) for name, v in sorted(values.items())},
            )
            for i in range(20)
        ]
        per_asset[asset] = wire.batch_samples(SITE, asset, f"{asset}-agent", 0, samples, 5)
    messages: list[tuple[str, bytes]] = []
    for first, second in zip(per_asset["pump-01"], per_asset["pump-02"], strict=True):
        messages += [(m.topic, wire.encode(m)) for m in (first, second)]
    messages.insert(3, messages[0])  # a redelivery
    broken = b'{"v": 1, "site": "plant-a", "asset": "pump-02", "samples": ['
    messages.insert(6, (wire.telemetry_topic(SITE, "pump-02"), broken))
    return messages


# ---- the AWS side -------------------------------------------------------------------------


@dataclass
class Aws:
    s3: Any
    ddb: Any
    sns: Any
    iot: Any
    kinesis: Any
    topic: str
    state: DynamoDbStateStore
    lines: list[dict[str, Any]] = field(default_factory=list)

    def store(self, bucket: str) -> S3ObjectStore:
        return S3ObjectStore(bucket, client=self.s3)

    def invoke(self, handle: Any, payload: dict[str, Any]) -> Any:
        """Run a handler the way Lambda does, keeping what it printed (log lines, EMF)."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            response = handle(payload, LambdaContext())
        self.lines += [json.loads(line) for line in out.getvalue().splitlines() if line]
        return response

    def logged(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("message") == message]

    def metrics(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if "_aws" in line]

    def table(self, name: str) -> list[dict[str, Any]]:
        return sorted(
            self.ddb.scan(TableName=name)["Items"],
            key=lambda item: json.dumps(item, sort_keys=True),
        )


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (INPUT, OUTPUT, ARTIFACTS):
            s3.create_bucket(Bucket=bucket)
        ddb = boto3.client("dynamodb", region_name=REGION)
        create_state_table(ddb, STATE)
        create_idempotency_table(ddb, IDEMPOTENCY)
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="plantwatch-alerts")["TopicArn"]
        kinesis = boto3.client("kinesis", region_name=REGION)
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)
        yield Aws(
            s3=s3,
            ddb=ddb,
            sns=sns,
            iot=boto3.client("iot-data", region_name=REGION),
            kinesis=kinesis,
            topic=topic,
            state=DynamoDbStateStore(STATE, AtomicRequests(ddb)),
        )


# ---- stage 1: Kinesis -> batcher --------------------------------------------------------

BATCH_AT = T0 + 640  # 07:10:40: both windows closed (end + 30 s grace)


@dataclass
class Batched:
    response: dict[str, Any]
    local: InMemoryObjectStore


@pytest.fixture(scope="module")
def batched(aws: Aws) -> Batched:
    [rule] = load_rules()
    clock = ManualClock(BATCH_AT)
    for topic, payload in telemetry():  # what the IoT rule puts on the stream
        output = evaluate(
            rule.statement, Message(topic, payload, "agent", timestamp_ms=BATCH_AT * 1000)
        )
        assert output is not None
        aws.kinesis.put_record(
            StreamName=STREAM, Data=output.to_bytes(), PartitionKey=topic.split("/")[3]
        )
    shard = aws.kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]
    iterator = aws.kinesis.get_shard_iterator(
        StreamName=STREAM,
        ShardId=shard["Shards"][0]["ShardId"],
        ShardIteratorType="TRIM_HORIZON",
    )["ShardIterator"]
    records = aws.kinesis.get_records(ShardIterator=iterator)["Records"]
    handle = batcher_handler.make_handler(
        aws.store(INPUT),
        BatcherConfig(grace_s=30, sites=SITES),
        clock,
        observability=Observability(),
    )
    response = aws.invoke(handle, kinesis_event(records, shard["StreamARN"]))

    local = InMemoryObjectStore()  # the local path: rules runner -> batcher, same messages
    runner = RulesRunner(
        "mqtt://127.0.0.1:1", [rule], Batcher(local, BatcherConfig(sites=SITES), clock), clock
    )
    for topic, payload in telemetry():
        runner.handle(topic, payload, client_id="agent")
    runner.batcher.flush_due()
    return Batched(response, local)


def test_batcher_handler_writes_the_local_batchers_bytes(aws: Aws, batched: Batched) -> None:
    input_bucket = aws.store(INPUT)
    written = {key: input_bucket.get(key) for key in input_bucket.list("input/")}
    assert sorted(written) == [
        "input/pump-01_20260105070500.csv",
        "input/pump-01_20260105071000.csv",
        "input/pump-02_20260105070500.csv",
        "input/pump-02_20260105071000.csv",
    ]
    assert written == {key: batched.local.get(key) for key in batched.local.list("input/")}
    assert written["input/pump-01_20260105070500.csv"].count(b"\n") == 11  # header + 10, once


def test_the_malformed_record_is_quarantined_not_failed(aws: Aws, batched: Batched) -> None:
    assert batched.response == {"batchItemFailures": []}
    [key] = aws.store(INPUT).list("quarantine/")
    assert key.startswith("quarantine/bad_json/2026-01-05/")
    [line] = aws.logged("quarantined")
    assert (line["site"], line["asset"], line["reason"]) == (SITE, "pump-02", "bad_json")
    [emf] = aws.metrics()
    assert emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["site"]]
    assert (emf["site"], emf["QuarantinedMessages"]) == (SITE, [1.0])


# ---- stage 2: EventBridge Scheduler -> inference ----------------------------------------

SCHEDULER = SchedulerConfig(
    name="pumps-scheduler",
    model_name="pumps",
    input_bucket=INPUT,
    output_bucket=OUTPUT,
    delay_offset_min=1,
)


@dataclass
class Inferred:
    response: dict[str, Any]
    local: InMemoryObjectStore


@pytest.fixture(scope="module")
def inferred(aws: Aws, batched: Batched) -> Inferred:
    model = train(history(), TrainConfig())
    registry = ModelRegistry(aws.store(ARTIFACTS), "models/")
    registry.save("pumps", model)
    create_scheduler(aws.state, SCHEDULER, float(T0))
    handle = inference_handler.make_handler(
        state=aws.state,
        input_store=aws.store(INPUT),
        output_store=aws.store(OUTPUT),
        registry=registry,
        observability=Observability(),
        sites=SITES,
    )
    response = aws.invoke(handle, event("inference_schedule.json"))

    local_state, local_out = InMemoryStateStore(), InMemoryObjectStore()
    create_scheduler(local_state, SCHEDULER, float(T0))
    local_model = Model.from_artifacts(model.to_artifacts(), "local")
    Scheduler(
        SCHEDULER, local_model, batched.local, local_out, local_state, ManualClock(T0 + 660)
    ).run_due()
    return Inferred(response, local_out)


def test_inference_handler_writes_the_local_schedulers_results(
    aws: Aws, inferred: Inferred
) -> None:
    assert inferred.response == {
        "scheduler": "pumps-scheduler",
        "executions": [
            {"data_start_time": "2026-01-05T07:00:00Z", "status": "SUCCESS"},
            {"data_start_time": "2026-01-05T07:05:00Z", "status": "SUCCESS"},
        ],
    }
    output = aws.store(OUTPUT)
    results = {key: output.get(key) for key in output.list("output/")}
    assert sorted(results) == [
        f"output/{asset}/2026-01-05T07:{m}:00Z/results.jsonl"
        for asset in ASSETS
        for m in ("00", "05")
    ]
    assert results == {key: inferred.local.get(key) for key in inferred.local.list("output/")}
    failing = [json.loads(x) for x in results[sorted(results)[3]].splitlines()]
    assert sum(row["prediction"] for row in failing) >= 3


def test_executions_are_kept_in_the_state_table_and_logged(aws: Aws, inferred: Inferred) -> None:
    executions = list_executions(aws.state, "pumps-scheduler")
    # newest first; each window lists the files named within [S - F, E + F] (§4): all four
    assert [
        (e.data_start.minute, e.status, e.input_files, len(e.result_keys)) for e in executions
    ] == [
        (5, "SUCCESS", 4, 2),
        (0, "SUCCESS", 4, 2),
    ]
    # §6: the version scored with, and the ARNs in the Region and account of the function
    # (LambdaContext's invoked_function_arn)
    scope = f"arn:aws:lookoutequipment:{REGION}:123456789012"
    assert {
        (e.model_version, e.model_arn, e.model_version_arn, e.scheduler_arn) for e in executions
    } == {
        (
            1,
            f"{scope}:model/pumps/plantwatch",
            f"{scope}:model/pumps/plantwatch/model-version/1",
            f"{scope}:inference-scheduler/pumps-scheduler/plantwatch",
        )
    }
    logged = aws.logged("execution")
    assert [
        (x["scheduler"], x["data_start_time"], x["data_end_time"], x["status"], x["input_files"])
        for x in logged
    ] == [
        ("pumps-scheduler", "2026-01-05T07:00:00Z", "2026-01-05T07:05:00Z", "SUCCESS", 4),
        ("pumps-scheduler", "2026-01-05T07:05:00Z", "2026-01-05T07:10:00Z", "SUCCESS", 4),
    ]
    assert all(x["failed_components"] == [] for x in logged)
    [emf] = [m for m in aws.metrics() if "ResultRows" in m]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["site"]]
    assert emf["ResultRows"] == [40.0] and emf["InferenceExecutions"] == [2.0]
    assert emf["InferenceFailures"] == [0.0]


def test_a_result_line_per_anomalous_row_and_a_window_line_per_results_object(
    aws: Aws, inferred: Inferred
) -> None:
    output = aws.store(OUTPUT)
    rows = {
        key: [json.loads(x) for x in output.get(key).splitlines()] for key in output.list("output/")
    }
    anomalous = [(key, r) for key, found in rows.items() for r in found if r["prediction"] == 1]
    assert anomalous  # pump-02's failing window
    # one result line per anomalous row, none for the others
    results = aws.logged("result")
    assert sorted((r["asset"], r["timestamp"]) for r in results) == sorted(
        (key.split("/")[1], r["timestamp"]) for key, r in anomalous
    )
    assert all(r["prediction"] == 1 for r in results)
    row = results[0]
    assert row["site"] == SITE and row["top_sensor"].startswith("pump-02\\")
    shares = [d["value"] for d in row["diagnostics"]]
    assert row["diagnostics"][0]["name"] == row["top_sensor"]
    assert shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(1, abs=1e-4)
    # one window line per results object: its counts, highest score and that row's top sensor
    windows = {(w["asset"], w["data_start_time"]): w for w in aws.logged("window")}
    assert len(windows) == len(rows) == 4
    for key, found in rows.items():
        _prefix, asset, start, _file = key.split("/")
        line = windows[(asset, start)]
        worst = max(found, key=lambda r: r["anomaly_score"])
        top = max(worst["diagnostics"], key=lambda d: d["value"])["name"]
        assert (line["site"], line["scheduler"]) == (SITE, "pumps-scheduler")
        assert line["rows"] == len(found) == 10
        assert line["anomalous_rows"] == sum(r["prediction"] for r in found)
        assert (line["max_score"], line["top_sensor"]) == (worst["anomaly_score"], top)
    [emf] = [m for m in aws.metrics() if "ResultRows" in m]
    assert emf["AnomalousRows"] == [float(len(anomalous))]


# ---- stage 3: S3 events -> detector --------------------------------------------------------


def s3_event(aws: Aws, key: str) -> dict[str, Any]:
    """The recorded notification, pointed at one object (URL-encoded key, its real ETag)."""
    body = event("s3_results_created.json")
    obj = body["Records"][0]["s3"]["object"]
    body["Records"][0]["s3"]["bucket"]["name"] = OUTPUT
    obj["key"] = key.replace(":", "%3A")
    obj["eTag"] = aws.s3.head_object(Bucket=OUTPUT, Key=key)["ETag"].strip('"')
    return body


def detector(aws: Aws) -> Any:
    model_path, input_path = default_detector_paths()
    return detector_handler.make_handler(
        open_store=aws.store,
        prefix="output/",
        state=aws.state,
        notifier=SnsNotifier(aws.topic, aws.sns),
        publisher=IotDataPublisher(aws.iot),
        model=load_detector_model(model_path),
        inputs=[load_input(input_path)],
        observability=Observability(),
        sites=SITES,
        target=aws.topic,
        persistence=DynamoDBPersistenceLayer(table_name=IDEMPOTENCY, boto3_client=aws.ddb),
        clock=ManualClock(T0 + 690),
        alarm_models=[load_alarm_model(default_alarm_path())],
    )


ALARMING = "output/pump-02/2026-01-05T07:05:00Z/results.jsonl"


@dataclass
class Detected:
    responses: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def detected(aws: Aws, inferred: Inferred) -> Detected:
    handle = detector(aws)
    responses = {}
    for minute in ("00", "05"):
        for asset in ASSETS:
            key = f"output/{asset}/2026-01-05T07:{minute}:00Z/results.jsonl"
            responses[key] = aws.invoke(handle, s3_event(aws, key))
    # and one for an object deleted before its event arrived: skipped, with its line
    gone = event("s3_results_created.json")
    gone["Records"][0]["s3"]["bucket"]["name"] = OUTPUT
    gone["Records"][0]["s3"]["object"]["key"] = (
        "output/pump-01/2026-01-05T06%3A55%3A00Z/results.jsonl"
    )
    responses["gone"] = aws.invoke(handle, gone)
    return Detected(responses)


def instance(aws: Aws, asset: str) -> dict[str, Any]:
    found = aws.state.get(MODEL_NS, asset)
    assert found is not None
    return found


def test_detector_handler_raises_the_alarm_in_dynamodb(aws: Aws, detected: Detected) -> None:
    assert instance(aws, "pump-02")["state"] == "Alarm"
    assert instance(aws, "pump-01")["state"] == "Normal"
    assert detected.responses[ALARMING]["objects"][0]["rows_fed"] == 10
    [change] = aws.logged("state_change")
    assert change == {
        **change,
        "site": SITE,
        "asset": "pump-02",
        "detector_model": "equipment_anomaly",
        "from_state": "Normal",
        "to_state": "Alarm",
        "event": "anomaly confirmed",
    }


def test_one_sns_publish_per_channel_with_attributes(aws: Aws, detected: Detected) -> None:
    [(email, subject, email_attrs), (sms, _none, sms_attrs)] = [
        x for x in sns_sent(aws.topic) if x[2]["kind"] == "ALARM"
    ]
    assert subject is not None and subject.startswith("[plantwatch] ALARM pump-02")
    assert "pump-02 is behaving abnormally" in email
    assert "plantwatch alarms ack anomaly_score pump-02" in email  # the companion watches it
    routing = {"severity": "critical", "site": SITE, "asset": "pump-02"}
    assert email_attrs == {**email_attrs, **routing, "channel": "email"}
    assert sms_attrs == {
        **sms_attrs,
        **routing,
        "channel": "sms",
        "AWS.SNS.SMS.SMSType": "Transactional",
    }
    assert sms.startswith("PLANTWATCH ALARM pump-02") and len(sms) <= 160
    # the companion alarm's ACTIVE notice (first anomalous row), then the detector's alarm
    # (three anomalous rows in a row)
    logged = aws.logged("alert")
    assert [(a["channel"], a["asset"]) for a in logged] == [
        ("email", "pump-02"),
        ("sms", "pump-02"),
        ("email", "pump-02"),
        ("sms", "pump-02"),
    ]
    for line in logged[:2]:
        assert line["subject"].startswith("[plantwatch] ALARM pump-02: anomaly_score 0.")
        assert line["subject"].endswith("(alarm when > 0.5) (severity 2)")
    assert [line["subject"] for line in logged[2:]] == [subject, subject]


def test_the_companion_alarm_runs_beside_the_detector(aws: Aws, detected: Detected) -> None:
    changes = aws.logged("alarm_state_change")
    assert [(c["asset"], c["alarm_model"], c["from_state"], c["to_state"]) for c in changes] == [
        ("pump-02", "anomaly_score", "NORMAL", "ACTIVE")
    ]
    alarm = aws.state.get(ALARM_NS, "pump-02")
    assert alarm is not None and (alarm["state"], alarm["pending"]) == ("ACTIVE", [])
    reminder = alarm["next_reminder"]
    assert reminder <= datetime.fromisoformat("2026-01-05T08:12:00+00:00").timestamp()


def test_one_shadow_command_through_iot_data(aws: Aws, detected: Detected) -> None:
    [(topic, payload)] = iot_published()
    assert topic == "$aws/things/pump-02/shadow/update"
    assert json.loads(payload) == {"state": {"desired": {"mode": "safe"}}}


def test_the_same_s3_event_again_changes_nothing(aws: Aws, detected: Detected) -> None:
    before = (
        aws.table(STATE),
        aws.table(IDEMPOTENCY),
        sns_sent(aws.topic),
        iot_published(),
    )
    again = aws.invoke(detector(aws), s3_event(aws, ALARMING))
    assert again == detected.responses[ALARMING]
    assert (aws.table(STATE), aws.table(IDEMPOTENCY), sns_sent(aws.topic), iot_published()) == (
        before
    )


def test_the_lines_printed_are_the_lines_the_source_and_the_dashboard_name(
    aws: Aws, detected: Detected
) -> None:
    from infra.parts import operations

    written = log_fields()
    printed: dict[str, list[dict[str, Any]]] = {}
    for line in aws.lines:
        if "_aws" not in line:
            printed.setdefault(line["message"], []).append(line)
    # every kind of line ran in this module, with exactly the fields its source passes
    assert set(printed) == set(written)
    for message, lines in printed.items():
        keys = set().union(*lines) - POWERTOOLS_KEYS
        left_out = {"failed_reason"} if message == "execution" else set()  # None on success
        assert keys == set(written[message]) - POWERTOOLS_KEYS - left_out, message
    # and every field a dashboard query reads, dotted paths included, is on such a line
    texts = [v for k, v in vars(operations).items() if k.isupper() and isinstance(v, str)]
    queries = [parse_query(t) for t in texts if "| filter message" in t]
    assert len(queries) >= 6
    for query in queries:
        [message] = query.messages
        for path in query.fields - POWERTOOLS_KEYS:
            assert any(dotted(line, path) for line in printed[message]), (message, path)


# ---- stage 4: an operator acknowledges the alarm through the AWS path ---------------------


@pytest.fixture(scope="module")
def acknowledged(aws: Aws, detected: Detected) -> dict[str, Any]:
    """``plantwatch alarms ack --aws``, naming the table and topic (no stack here), in a
    shell that sets the deployment's ``DEFAULT_SITE``."""
    out, err = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        patch.setenv("DEFAULT_SITE", SITE)  # as the functions have it
        code = cli_main(
            [
                *("alarms", "ack", "anomaly_score", "pump-02", "--aws", "--region", REGION),
                *("--state-table", STATE, "--alerts-topic", aws.topic),
                *("--who", "ana", "--note", "motor checked", "--json"),
            ]
        )
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


def test_an_ack_through_the_aws_path_moves_the_alarm_to_acknowledged(
    aws: Aws, acknowledged: dict[str, Any]
) -> None:
    assert acknowledged["alarm"]["alarmState"]["stateName"] == "ACKNOWLEDGED"
    alarm = aws.state.get(ALARM_NS, "pump-02")
    assert alarm is not None
    assert (alarm["state"], alarm.get("next_reminder"), alarm["pending"]) == (
        "ACKNOWLEDGED",
        None,
        [],
    )
    assert alarm["customer_action"]["who"] == "ana"
    acked = [a for _m, _s, a in sns_sent(aws.topic) if a["kind"] == "ALARM_ACKNOWLEDGED"]
    assert sorted((a["channel"], a["site"], a["asset"]) for a in acked) == [
        ("email", SITE, "pump-02"),
        ("sms", SITE, "pump-02"),
    ]


# ---- stage 5: two overlapping timer invocations -------------------------------------------


class Rendezvous:
    """The state table, except that each engine waits after loading its instances until the
    other has loaded too: both start from the same versions, as overlapping runs would."""

    def __init__(self, inner: StateStore, barrier: threading.Barrier) -> None:
        self._inner = inner
        self._barrier = barrier

    def items_versioned(self, namespace: str) -> Iterator[tuple[str, Versioned]]:
        loaded = list(self._inner.items_versioned(namespace))
        if namespace == MODEL_NS:
            self._barrier.wait(timeout=30)
        return iter(loaded)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_overlapping_timer_invocations_fire_each_due_timer_once(
    aws: Aws, detected: Detected, acknowledged: dict[str, Any]
) -> None:
    # GIVEN both heartbeats (set at 07:11:30 for the feeder's 600 s) are due at 08:12
    alerts_before = len(sns_sent(aws.topic))
    model_path, input_path = default_detector_paths()
    barrier = threading.Barrier(2)
    handlers = [
        timers_handler.make_handler(
            state=Rendezvous(aws.state, barrier),  # type: ignore[arg-type]
            notifier=SnsNotifier(aws.topic, aws.sns),
            publisher=IotDataPublisher(aws.iot),
            model=load_detector_model(model_path),
            inputs=[load_input(input_path)],
            observability=Observability(),
            sites=SITES,
            target=aws.topic,
            alarm_models=[load_alarm_model(default_alarm_path())],
        )
        for _ in range(2)
    ]
    responses: list[dict[str, Any]] = []
    out = io.StringIO()

    def invoke(handle: Any) -> None:
        responses.append(handle(event("timers_tick.json"), LambdaContext()))

    # WHEN two invocations run at once, from the same loaded versions
    with contextlib.redirect_stdout(out):
        threads = [threading.Thread(target=invoke, args=(h,)) for h in handlers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    lines = [json.loads(x) for x in out.getvalue().splitlines() if x]

    # THEN each timer fired once between them, each instance moved once, no alert repeated
    assert sorted(r["timers_fired"] for r in responses) in ([0, 2], [1, 1])
    # pump-02's reminder was due at 07:41; acknowledged, it is not sent
    assert [r["alarm_timers_fired"] for r in responses] == [0, 0]
    assert [r["actions_retried"] for r in responses] == [0, 0]
    changes = [x for x in lines if x.get("message") == "state_change"]
    assert sorted((c["asset"], c["from_state"], c["to_state"]) for c in changes) == [
        ("pump-01", "Normal", "Stale"),
        ("pump-02", "Alarm", "Stale"),
    ]
    assert instance(aws, "pump-01")["state"] == "Stale"
    assert instance(aws, "pump-02")["state"] == "Stale"
    sent = sns_sent(aws.topic)[alerts_before:]  # 'went silent' per asset and channel; no reminder
    assert sorted((a["asset"], a["channel"], a["kind"]) for _body, _subject, a in sent) == [
        ("pump-01", "email", "STALE"),
        ("pump-01", "sms", "STALE"),
        ("pump-02", "email", "STALE"),
        ("pump-02", "sms", "STALE"),
    ]
