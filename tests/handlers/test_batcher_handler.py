"""The Lambda batcher fed recorded Kinesis events, over S3 (moto)."""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from cloud.adapters.aws import S3ObjectStore
from cloud.batcher import BatcherConfig
from cloud.handlers import batcher as batcher_handler
from edge.clock import ManualClock
from edge.errors import StorageError

EVENTS = Path(__file__).parents[1] / "events"
T0 = 1652443800  # 2022-05-13T12:10:00Z


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="plantwatch-input")
        yield client


def test_kinesis_batch_lands_as_l4e_files_with_dedup_quarantine_and_late_file(s3: Any) -> None:
    # GIVEN the batcher handler over the bucket, at 12:16:40
    store = S3ObjectStore("plantwatch-input", client=s3)
    clock = ManualClock(T0 + 400)
    handle = batcher_handler.make_handler(store, BatcherConfig(grace_s=30), clock)

    # WHEN a batch arrives: 2 pump messages (one spans two windows), a redelivery, a fan
    # message, a non-JSON payload and a record that is not the rule's envelope
    response = handle(event("kinesis_telemetry.json"), None)

    # THEN no record failed, the closed window 12:15 is written, the open one is not
    assert response == {"batchItemFailures": []}
    assert list(store.list("input/")) == [
        "input/fan_20220513121500.csv",
        "input/pump_20220513121500.csv",
    ]
    assert store.get("input/pump_20220513121500.csv") == (
        b"Timestamp,flow,motor_current\n"
        b"2022-05-13T12:11:00.000000,301.2,12.4\n"
        b"2022-05-13T12:12:00.000000,300.9,12.6\n"
        b"2022-05-13T12:14:00.000000,301,12.5\n"
    )
    reasons = sorted(key.split("/")[1] for key in store.list("quarantine/"))
    assert reasons == ["bad_envelope", "bad_json"]

    # WHEN a late reading for 12:15 arrives, and later the schedule flushes idle windows
    clock.advance(600)
    assert handle(event("kinesis_late.json"), None) == {"batchItemFailures": []}
    handle(event("schedule_flush.json"), None)

    # THEN the late reading has its own file inside its window, and 12:20 is written
    assert store.get("input/pump_20220513121459.csv") == (
        b"Timestamp,flow,motor_current\n2022-05-13T12:11:30.000000,299,13\n"
    )
    assert store.get("input/pump_20220513122000.csv") == (
        b"Timestamp,flow,motor_current\n2022-05-13T12:16:00.000000,,12.7\n"
    )
    assert list(store.list("spool/pending/")) == []


def test_redelivered_batch_after_a_cold_start_stays_deduplicated(s3: Any) -> None:
    store = S3ObjectStore("plantwatch-input", client=s3)
    clock = ManualClock(T0 + 200)
    batcher_handler.make_handler(store, BatcherConfig(), clock)(
        event("kinesis_telemetry.json"), None
    )
    # a new execution environment (cold start) gets the same batch again
    again = batcher_handler.make_handler(store, BatcherConfig(), clock)
    again(event("kinesis_telemetry.json"), None)
    clock.advance(3600)
    again(event("schedule_flush.json"), None)
    body = store.get("input/pump_20220513121500.csv").decode()
    assert body.count("12:11:00") == 1 and len(body.splitlines()) == 4


def kinesis_record(
    payload: bytes, seq: int, topic: str = "dt/plantwatch/s1/pump/telemetry"
) -> dict:
    """One telemetry-rule envelope as a Kinesis stream record."""
    envelope = {
        "payload": base64.b64encode(payload).decode(),
        "topic": topic,
        "clientid": "pump",
        "received_ms": T0 * 1000,
    }
    record = copy.deepcopy(event("kinesis_late.json")["Records"][0])
    record["kinesis"]["data"] = base64.b64encode(json.dumps(envelope).encode()).decode()
    record["kinesis"]["sequenceNumber"] = f"{seq:056d}"
    record["eventID"] = f"shardId-000000000000:{seq:056d}"
    return record


def test_out_of_range_numbers_are_quarantined_not_retried(s3: Any) -> None:
    # GIVEN a batch with a ts of 10**400, a value of -10**400 and a good reading between them
    store = S3ObjectStore("plantwatch-input", client=s3)
    handle = batcher_handler.make_handler(store, BatcherConfig(grace_s=30), ManualClock(T0 + 400))
    head = b'{"v":1,"site":"s1","asset":"pump","sender":"pump","seq":'
    records = [
        kinesis_record(head + b'1,"samples":[{"ts":1' + b"0" * 400 + b',"values":{"a":1}}]}', 1),
        kinesis_record(head + b'2,"samples":[{"ts":1652443860000,"values":{"a":2}}]}', 2),
        kinesis_record(
            head + b'3,"samples":[{"ts":1652443870000,"values":{"a":-1' + b"0" * 400 + b"}}]}",
            3,
        ),
    ]

    # WHEN the batch is handled
    response = handle({"Records": records}, None)

    # THEN no record is failed (a failed record is retried forever and blocks the shard), the
    # poison ones are quarantined as out of range, and the good reading is written
    assert response == {"batchItemFailures": []}
    reasons = sorted(key.split("/")[1] for key in store.list("quarantine/"))
    assert reasons == ["out_of_range", "out_of_range"]
    assert store.get("input/pump_20220513121500.csv") == (
        b"Timestamp,a\n2022-05-13T12:11:00.000000,2\n"
    )


def test_sites_get_their_own_input_folders_through_the_object_store_spool(s3: Any) -> None:
    # GIVEN the handler configured with plant1 as the default site
    store = S3ObjectStore("plantwatch-input", client=s3)
    config = batcher_handler.config_from_env({"DEFAULT_SITE": "plant1"})
    handle = batcher_handler.make_handler(store, config, ManualClock(T0 + 400))
    doc = b'{"v":1,"site":"%s","asset":"pump","sender":"g","seq":0,"samples":[{"ts":1652443860000,"values":{"a":%d}}]}'
    records = [
        kinesis_record(doc % (b"plant1", 1), 1, "dt/plantwatch/plant1/pump/telemetry"),
        kinesis_record(doc % (b"plant2", 2), 2, "dt/plantwatch/plant2/pump/telemetry"),
    ]

    # WHEN both sites' pump readings for one window are handled
    assert handle({"Records": records}, None) == {"batchItemFailures": []}

    # THEN the default site keeps the flat name and plant2 has its own folder
    assert list(store.list("input/")) == [
        "input/plant2/pump_20220513121500.csv",
        "input/pump_20220513121500.csv",
    ]
    assert store.get("input/plant2/pump_20220513121500.csv").endswith(b",2\n")
    assert list(store.list("spool/pending/")) == []


class FailingStore(S3ObjectStore):
    """S3 whose quarantine writes fail: storage trouble, not bad data."""

    def put(self, key: str, body: bytes) -> None:
        if key.startswith("quarantine/"):
            raise StorageError(f"s3://{self.bucket}/{key}: put failed: throttled")
        super().put(key, body)


def test_storage_failures_are_reported_as_batch_item_failures(s3: Any) -> None:
    store = FailingStore("plantwatch-input", client=s3)
    handle = batcher_handler.make_handler(store, BatcherConfig(), ManualClock(T0 + 200))
    response = handle(event("kinesis_telemetry.json"), None)
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    records = event("kinesis_telemetry.json")["Records"]
    assert failed == [
        records[4]["kinesis"]["sequenceNumber"],
        records[5]["kinesis"]["sequenceNumber"],
    ]


def test_entry_point_reads_its_configuration_from_the_environment(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INPUT_BUCKET", "plantwatch-input")
    monkeypatch.setenv("MAX_SKEW_S", str(10 * 365 * 86400))  # the recorded event is from 2022
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(batcher_handler, "_handler", None)
    response = batcher_handler.handler(event("kinesis_telemetry.json"), None)
    assert response == {"batchItemFailures": []}
    written = [k for k in S3ObjectStore("plantwatch-input", client=s3).list("input/")]
    assert "input/pump_20220513121500.csv" in written


def test_missing_bucket_setting_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.errors import ConfigError

    monkeypatch.delenv("INPUT_BUCKET", raising=False)
    monkeypatch.setattr(batcher_handler, "_handler", None)
    with pytest.raises(ConfigError, match="INPUT_BUCKET"):
        batcher_handler.handler({"Records": []}, None)


def test_bad_environment_names_the_setting() -> None:
    from edge.errors import ConfigError

    with pytest.raises(ConfigError, match="DataUploadFrequency"):
        batcher_handler.config_from_env({"UPLOAD_FREQUENCY": "PT2M"})


def test_records_that_do_not_decode_are_quarantined_not_retried(s3: Any) -> None:
    # GIVEN a batch where one record's data is not base64, one has no data and one is not a
    # Kinesis record at all, around a good reading
    store = S3ObjectStore("plantwatch-input", client=s3)
    handle = batcher_handler.make_handler(store, BatcherConfig(grace_s=30), ManualClock(T0 + 400))
    good = b'{"v":1,"site":"s1","asset":"pump","sender":"pump","seq":1,"samples":[{"ts":1652443860000,"values":{"a":2}}]}'
    not_base64, no_data = kinesis_record(good, 1), kinesis_record(good, 2)
    not_base64["kinesis"]["data"] = "!!not base64**"
    del no_data["kinesis"]["data"]
    records = [not_base64, no_data, {"eventID": "x"}, kinesis_record(good, 4)]

    # WHEN the batch is handled
    response = handle({"Records": records}, None)

    # THEN none is a batch item failure (it would fail the same way forever and block the
    # shard): each is quarantined with the field that is wrong, and the good one is written
    assert response == {"batchItemFailures": []}
    keys = list(store.list("quarantine/"))
    assert [k.split("/")[1] for k in keys] == ["bad_envelope"] * 3
    errors = sorted(json.loads(store.get(k))["error"] for k in keys)
    assert errors == ["kinesis.data: expected a base64 string"] * 2 + [
        "kinesis.data: expected base64"
    ]
    assert store.get("input/pump_20220513121500.csv").endswith(b",2\n")


KINESIS_DATA = st.one_of(
    st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
    st.text(max_size=24),
    st.none(),
    st.integers(),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.lists(KINESIS_DATA, min_size=1, max_size=4))
def test_any_record_data_is_quarantined_never_failed(s3: Any, data: list[Any]) -> None:
    # GIVEN records whose data is random bytes, text that may not be base64, or not a string
    bucket = f"fuzz-{len(list(s3.list_buckets()['Buckets']))}"
    s3.create_bucket(Bucket=bucket)
    store = S3ObjectStore(bucket, client=s3)
    handle = batcher_handler.make_handler(store, BatcherConfig(), ManualClock(T0 + 400))
    records = []
    for seq, value in enumerate(data):
        record = kinesis_record(b"{}", seq)
        record["kinesis"]["data"] = value
        records.append(record)
    # WHEN the batch is handled
    response = handle({"Records": records}, None)
    # THEN no record is failed and each one is in the quarantine (none is a rule envelope)
    assert response == {"batchItemFailures": []}
    assert len(list(store.list("quarantine/"))) == len(records)


def test_a_damaged_spool_object_blocks_neither_its_window_nor_the_others(s3: Any) -> None:
    # GIVEN two assets' readings in the spool, and beside them a pending object that does not
    # decode and a damaged written/ record for a third window
    store = S3ObjectStore("plantwatch-input", client=s3)
    clock = ManualClock(T0 + 100)
    handle = batcher_handler.make_handler(store, BatcherConfig(grace_s=30), clock)
    doc = b'{"v":1,"site":"s1","asset":"%s","sender":"g","seq":0,"samples":[{"ts":1652443860000,"values":{"a":1}}]}'
    records = [
        kinesis_record(doc % b"fan", 1, "dt/plantwatch/s1/fan/telemetry"),
        kinesis_record(doc % b"pump", 2),
    ]
    assert handle({"Records": records}, None) == {"batchItemFailures": []}
    store.put("spool/pending/fan/1652444100/zz-broken.json", b"{not json")
    store.put("spool/pending/mixer/1652444100/a.json", b'[{"msg_id": "m", "samples": []}]')
    store.put("spool/written/mixer/1652444100.json", b"[]")

    # WHEN the schedule flushes the due windows
    clock.advance(600)
    assert handle({}, None)["written"] == [
        "input/fan_20220513121500.csv",
        "input/pump_20220513121500.csv",
    ]

    # THEN both assets' windows are written, the broken object is kept aside as it was
    assert store.get("spool/corrupt/pending/fan/1652444100/zz-broken.json") == b"{not json"
    assert "spool/pending/fan/1652444100/zz-broken.json" not in list(store.list("spool/"))


def test_a_storage_failure_gets_one_error_line_naming_the_record(
    s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a batch two of whose records the store fails to take
    store = FailingStore("plantwatch-input", client=s3)
    handle = batcher_handler.make_handler(store, BatcherConfig(), ManualClock(T0 + 200))
    records = event("kinesis_telemetry.json")["Records"]
    # WHEN it is handled
    with caplog.at_level(logging.INFO):
        handle({"Records": records}, None)
    # THEN each failed record gets one error line naming its sequence number, partition
    # key and the error, without a traceback: the batchItemFailures response alone shows
    # nowhere in the function's log
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 2
    for line, record in zip(errors, records[4:6], strict=True):
        kinesis = record["kinesis"]
        assert re.fullmatch(
            rf"kinesis record {kinesis['sequenceNumber']} \(partition key "
            rf"{re.escape(kinesis['partitionKey'])}\): not stored, retried: "
            r"s3://plantwatch-input/quarantine/\S+: put failed: throttled",
            line.getMessage(),
        ), line.getMessage()
    assert not any(r.exc_info for r in errors)
