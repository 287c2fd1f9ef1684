"""The Lambda entry points fed what S3, EventBridge and a misconfigured deployment can
deliver: every outcome is a clear error naming what is wrong, or a structured line (and a
metric) for what was set aside; nothing raises that a retry could not fix."""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from typing import Any
from urllib.parse import quote_plus

import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_support import LambdaContext
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from test_aws_data_path import history
from test_entry_points import env, event

from cloud.adapters.aws import DynamoDbStateStore, S3ObjectStore
from cloud.handlers import batcher, detection, detector, inference, settings, timers
from cloud.inference.model import TrainConfig, train
from cloud.inference.registry import ModelRegistry
from cloud.inference.scheduler import SchedulerConfig, create_scheduler
from edge.errors import ConfigError, NotFoundError, StorageError

__all__ = ["env"]
ROW = {"timestamp": "2026-01-05T07:06:00.000000", "prediction": 0}
T0 = 1_767_596_400.0  # 2026-01-05T07:00:00Z
KEY = "output/pump-2/2026-01-05T07:05:00Z/results.jsonl"


def invoke(handle: Any, payload: Any) -> tuple[Any, list[dict[str, Any]]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        response = handle(payload, LambdaContext())
    return response, [json.loads(line) for line in out.getvalue().splitlines()]


def created(key: str, etag: str = "e1") -> dict[str, Any]:
    record = event("s3_results_created.json")["Records"][0]
    record["s3"]["bucket"]["name"] = "pw-out"
    record["s3"]["object"]["key"] = key
    record["s3"]["object"]["eTag"] = etag
    return record


def quarantined_metric(lines: list[dict[str, Any]]) -> dict[str, float]:
    return {
        line["site"]: line["QuarantinedMessages"][0]
        for line in lines
        if "QuarantinedMessages" in line
    }


def test_an_object_deleted_before_the_event_is_skipped_with_a_line(env: dict[str, Any]) -> None:
    # GIVEN an event for an object that is gone, then one for an object that exists
    env["s3"].put_object(Bucket="pw-out", Key=KEY, Body=json.dumps(ROW) + "\n")
    gone = "output/pump-1/2026-01-05T07:05:00Z/results.jsonl"
    # WHEN the detector handler gets both records in one event
    response, lines = invoke(detector.handler, {"Records": [created(gone), created(KEY)]})
    # THEN the gone object is skipped with a line saying so (no retry can read it), and the
    # other object is still fed
    assert [(o["key"], o["rows_fed"], o.get("skipped")) for o in response["objects"]] == [
        (gone, 0, "object not found"),
        (KEY, 1, None),
    ]
    [skipped] = [line for line in lines if line.get("message") == "skipped"]
    assert (skipped["key"], skipped["reason"]) == (gone, "object not found")


def test_bad_result_lines_give_a_quarantined_line_and_the_metric_once(
    env: dict[str, Any],
) -> None:
    # GIVEN a results object with a good row, a line that is not JSON and a row whose
    # prediction is out of range
    body = "\n".join([json.dumps(ROW), "not json", json.dumps({**ROW, "prediction": 7})])
    env["s3"].put_object(Bucket="pw-out", Key=KEY, Body=body + "\n")
    # WHEN its event arrives, and again as a new version of the object (new ETag)
    response, lines = invoke(detector.handler, {"Records": [created(KEY)]})
    again, lines_again = invoke(detector.handler, {"Records": [created(KEY, "e2")]})
    # THEN the good row is fed, each bad line is quarantined with its site, asset, line and
    # reason, and counted once for the site; the new version quarantines nothing again
    assert response["objects"][0]["rows_fed"] == 1
    found = [line for line in lines if line.get("message") == "quarantined"]
    assert [(q["site"], q["asset"]) for q in found] == [("plant-a", "pump-2")] * 2
    assert found[0]["reason"].startswith(f"{KEY} line 2: Expecting value")
    assert found[1]["reason"] == f"{KEY} line 3: 'prediction': expected 0 or 1, got 7"
    assert quarantined_metric(lines) == {"plant-a": 2.0}
    assert again["objects"][0]["rows_fed"] == 0
    assert not [line for line in lines_again if line.get("message") == "quarantined"]


def test_a_line_nested_too_deep_is_quarantined_not_a_failed_object(env: dict[str, Any]) -> None:
    body = "\n".join(["[" * 100_000, json.dumps(ROW), "\udcff\x00"])
    env["s3"].put_object(Bucket="pw-out", Key=KEY, Body=body.encode("utf-8", "surrogateescape"))
    response, lines = invoke(detector.handler, {"Records": [created(KEY)]})
    assert response["objects"][0]["rows_fed"] == 1
    found = [line["reason"] for line in lines if line.get("message") == "quarantined"]
    assert len(found) == 2
    assert found[0].startswith(f"{KEY} line 1: maximum recursion depth exceeded")
    assert found[1].startswith(f"{KEY} line 3: ")


def test_a_key_outside_the_layout_is_quarantined_with_its_reason(env: dict[str, Any]) -> None:
    # S3 event keys are URL-encoded: this one decodes to a component with a space and a "+"
    key = "output/pump 9+ü/2026-01-05T07:05:00Z/results.jsonl"
    env["s3"].put_object(Bucket="pw-out", Key=key, Body=json.dumps(ROW) + "\n")
    encoded = "output/pump+9%2B%C3%BC/2026-01-05T07%3A05%3A00Z/results.jsonl"
    response, lines = invoke(detector.handler, {"Records": [created(encoded)]})
    assert response["objects"][0]["key"] == key
    [line] = [line for line in lines if line.get("message") == "quarantined"]
    assert line["reason"] == f"{key}: component 'pump 9+ü' is not a valid detector key"
    assert quarantined_metric(lines) == {"plant-a": 1.0}


S3_TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2026-01-05T07:00:00.000Z",
    "Bucket": "pw-out",
    "RequestId": "5582815E1AEA5ADF",
    "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
}


@pytest.mark.parametrize(
    "payload", [{"Records": None}, {"Records": "x"}, {}, {"Records": [5]}, S3_TEST_EVENT]
)
def test_an_event_with_no_s3_records_does_nothing(env: dict[str, Any], payload: Any) -> None:
    assert invoke(detector.handler, payload)[0] == {"objects": []}


@pytest.mark.parametrize(
    "config",
    [
        {"name": "broken"},
        {"name": "broken", "model_name": "m", "delay_offset_min": "x"},
        {"name": "broken", "model_name": "m", "naming": 5},
        "not a mapping",
    ],
)
def test_a_scheduler_record_that_is_not_a_config_is_named(env: dict[str, Any], config: Any) -> None:
    DynamoDbStateStore("state").put("schedulers", "broken", {"config": config})
    with pytest.raises(ConfigError, match="scheduler 'broken': its record in the state table"):
        invoke(inference.handler, {"scheduler": "broken", "time": "2026-01-05T07:11:00Z"})


def metric(lines: list[dict[str, Any]], name: str) -> list[float]:
    return [value for line in lines if "_aws" in line for value in line.get(name, ())]


def test_a_missing_model_is_named_and_counted(env: dict[str, Any]) -> None:
    config = SchedulerConfig(
        name="s1", model_name="nomodel", input_bucket="pw-in", output_bucket="pw-out"
    )
    create_scheduler(DynamoDbStateStore("state"), config, T0)
    out = io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        pytest.raises(NotFoundError, match=r"model 'nomodel': not found under s3://pw-art/"),
    ):
        inference.handler({"scheduler": "s1", "time": "2026-01-05T07:11:00Z"}, LambdaContext())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert metric(lines, "InferenceFailures") == [1.0]


def test_no_input_files_fail_each_window_with_its_line_and_metric(env: dict[str, Any]) -> None:
    # GIVEN a registered model and scheduler and an empty input bucket
    ModelRegistry(S3ObjectStore("pw-art"), "models/").save("pumps", train(history(), TrainConfig()))
    config = SchedulerConfig(
        name="s1", model_name="pumps", input_bucket="pw-in", output_bucket="pw-out"
    )
    create_scheduler(DynamoDbStateStore("state"), config, T0)
    # WHEN the schedule fires after two windows
    response, lines = invoke(inference.handler, {"scheduler": "s1", "time": "2026-01-05T07:11:00Z"})
    # THEN each window is a FAILED execution naming the missing data, logged and counted
    assert [e["status"] for e in response["executions"]] == ["FAILED", "FAILED"]
    executions = [line for line in lines if line.get("message") == "execution"]
    assert [(x["status"], x["input_files"]) for x in executions] == [("FAILED", 0)] * 2
    assert all("Could not find data file" in x["failed_reason"] for x in executions)
    assert metric(lines, "InferenceFailures") == [2.0]
    assert metric(lines, "InferenceExecutions") == [2.0]


@pytest.mark.parametrize("value", [5, "", ["2026-01-05T07:11:00Z"]])
def test_an_event_time_that_is_not_a_string_is_bad_input(value: Any) -> None:
    with pytest.raises(ConfigError, match="event time"):
        settings.event_clock({"time": value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GRACE_S", "soon"),
        ("GRACE_S", "-1"),
        ("MAX_SKEW_S", "nan"),
        ("UPLOAD_FREQUENCY", "5 minutes"),
        ("INPUT_PREFIX", "input"),
        ("QUARANTINE_PREFIX", ""),
        ("QUARANTINE_PREFIX", "quarantine"),
    ],
)
def test_a_bad_batcher_setting_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        batcher.config_from_env({name: value})


@pytest.mark.parametrize("doc", ["{not json", "[]", '"text"'])
def test_a_corrupt_instance_does_not_stop_the_fleets_timers(
    env: dict[str, Any], doc: str, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a detector instance with a heartbeat timer (fed one row), and beside it an item
    # in the model's namespace that is not a plantwatch state document
    env["s3"].put_object(Bucket="pw-out", Key=KEY, Body=json.dumps(ROW) + "\n")
    invoke(detector.handler, {"Records": [created(KEY)]})
    corrupt = {"namespace": {"S": "detectors/equipment_anomaly"}, "key": {"S": "pump-9"}}
    env["ddb"].put_item(
        TableName="state", Item={**corrupt, "doc": {"S": doc}, "version": {"N": "1"}}
    )
    # WHEN the timers run long after the heartbeat is due
    response, _lines = invoke(timers.handler, {"time": "2030-01-01T00:00:00Z"})
    # THEN the healthy instance's timer fires, the corrupt item is named in the log and left
    # in the table for an operator
    assert response["timers_fired"] == 1
    assert "dynamodb://state/detectors/equipment_anomaly/pump-9: not a plantwatch state item" in (
        caplog.text
    )
    assert "Item" in env["ddb"].get_item(TableName="state", Key=corrupt)


def test_an_object_put_again_after_a_skip_is_fed(env: dict[str, Any]) -> None:
    # GIVEN an event handled while its object was gone
    invoke(detector.handler, {"Records": [created(KEY, "same")]})
    # WHEN the same content is put again under the key (same ETag) and its event arrives
    env["s3"].put_object(Bucket="pw-out", Key=KEY, Body=json.dumps(ROW) + "\n")
    response, _lines = invoke(detector.handler, {"Records": [created(KEY, "same")]})
    # THEN it is fed: the skip was not remembered as the object's result
    assert response["objects"][0]["rows_fed"] == 1


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
S3_RECORD = st.fixed_dictionaries(
    {},
    optional={
        "s3": JSON
        | st.fixed_dictionaries(
            {},
            optional={
                "bucket": JSON | st.fixed_dictionaries({"name": JSON}),
                "object": JSON
                | st.fixed_dictionaries(
                    {"key": JSON | st.text(max_size=40).map(lambda t: t + "results.jsonl")},
                    optional={"eTag": JSON},
                ),
            },
        )
    },
)


@settings_(max_examples=200, deadline=None)
@given(record=JSON | S3_RECORD)
def test_any_s3_record_is_a_results_object_or_ignored(record: Any) -> None:
    found = detector.s3_object(record)
    assert found is None or (
        found["key"].endswith("results.jsonl") and isinstance(found["bucket"], str)
    )


def test_a_bad_default_site_is_named() -> None:
    with pytest.raises(ConfigError, match=r"DEFAULT_SITE: default site 'plant a'"):
        settings.site_layout({"DEFAULT_SITE": "plant a"})


@pytest.mark.parametrize(
    ("handle", "name"),
    [
        (batcher.handler, "INPUT_BUCKET"),
        (inference.handler, "STATE_TABLE"),
        (detector.handler, "ALERTS_TOPIC_ARN"),
        (timers.handler, "STATE_TABLE"),
    ],
)
def test_an_empty_required_setting_is_named(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, handle: Any, name: str
) -> None:
    monkeypatch.setattr(batcher, "_handler", None)
    monkeypatch.setenv(name, "  ")
    with pytest.raises(ConfigError, match=rf"^{name}: required \("):
        invoke(handle, {"time": "2026-01-05T07:11:00Z", "scheduler": "s1"})


@pytest.mark.parametrize("name", [5, "", "a b", "x" * 201, ["s1"]])
def test_a_malformed_scheduler_name_is_bad_input_not_the_default(name: Any) -> None:
    with pytest.raises(ConfigError, match=r"inference event: scheduler .*: must match"):
        inference.scheduler_name({"scheduler": name}, "pumps-scheduler")
    assert inference.scheduler_name({}, "pumps-scheduler") == "pumps-scheduler"


def test_timers_on_an_empty_table_do_nothing_and_write_nothing(env: dict[str, Any]) -> None:
    response, lines = invoke(timers.handler, event("timers_tick.json"))
    assert response == {"timers_fired": 0, "alarm_timers_fired": 0, "actions_retried": 0}
    assert not [line for line in lines if line.get("message")]
    namespaces = {i["namespace"]["S"] for i in env["ddb"].scan(TableName="state")["Items"]}
    assert namespaces == {"detectors", "alarm-models"}  # the model registrations only


def skipped_lines(lines: list[dict[str, Any]]) -> list[tuple[Any, Any, str]]:
    return [
        (line.get("bucket"), line.get("key"), line["reason"])
        for line in lines
        if line.get("message") == "skipped"
    ]


def test_events_and_records_that_are_not_a_results_object_are_skipped_with_a_line(
    env: dict[str, Any],
) -> None:
    # GIVEN a results object that exists, and events S3 (or a mis-wired trigger) can send
    # that do not announce one: its test event, a deletion of the object, another key
    env["s3"].put_object(Bucket="pw-out", Key=KEY, Body=json.dumps(ROW) + "\n")
    removed = created(KEY)
    removed["eventName"] = "ObjectRemoved:Delete"
    del removed["s3"]["object"]["eTag"]
    other = created("output/pump-2/_SUCCESS")
    # WHEN the detector handler gets them
    test_event, test_lines = invoke(detector.handler, S3_TEST_EVENT)
    response, lines = invoke(detector.handler, {"Records": [removed, other, 5]})
    nothing, nothing_lines = invoke(detector.handler, {"detail-type": "Object Created"})
    # THEN nothing is fed, and each gets a skipped line naming what it was, so a wrong
    # notification configuration shows in the log instead of silence
    assert test_event == response == nothing == {"objects": []}
    assert skipped_lines(test_lines) == [("pw-out", None, "s3:TestEvent")]
    assert skipped_lines(lines) == [
        ("pw-out", KEY, "ObjectRemoved:Delete: not an object creation"),
        ("pw-out", "output/pump-2/_SUCCESS", "not a results.jsonl key"),
        (None, None, "Records[2]: not an S3 event record"),
    ]
    assert skipped_lines(nothing_lines) == [(None, None, "not an S3 event: no Records list")]
    progress = env["ddb"].scan(TableName="state")["Items"]
    assert not [i for i in progress if i["namespace"]["S"].startswith("feeder/")]


class RefusingStore:
    """The state table, except that writes of one detector key fail as DynamoDB fails a
    write whose item would pass 400 KB (a ValidationException, retried in vain)."""

    def __init__(self, inner: DynamoDbStateStore, key: str) -> None:
        self._inner = inner
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def put_if_version(self, namespace: str, key: str, value: Any, version: Any) -> int:
        if namespace.startswith("detectors/") and key == self._key:
            raise StorageError(f"dynamodb://state/{namespace}/{key}: item size exceeded")
        return self._inner.put_if_version(namespace, key, value, version)


def test_one_instance_that_cannot_be_saved_does_not_stop_the_fleets_timers(
    env: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN two assets with a due heartbeat timer, the first of which can no longer be saved
    for asset in ("pump-1", "pump-2"):
        key = f"output/{asset}/2026-01-05T07:05:00Z/results.jsonl"
        env["s3"].put_object(Bucket="pw-out", Key=key, Body=json.dumps(ROW) + "\n")
        invoke(detector.handler, {"Records": [created(key)]})
    adapters = detection.detector_adapters(os.environ)
    adapters["state"] = RefusingStore(DynamoDbStateStore("state"), "pump-1")
    handle = timers.make_handler(**adapters)
    # WHEN the timers run long after both are due
    with pytest.raises(StorageError, match="pump-1"):
        invoke(handle, {"time": "2030-01-01T00:00:00Z"})
    # THEN the other asset's timer fired and was saved, the failure is named in the log, and
    # the invocation still fails (so EventBridge retries it and its dead-letter queue shows it)
    stored = DynamoDbStateStore("state").get("detectors/equipment_anomaly", "pump-2")
    assert stored is not None and not stored["timers"]
    assert "pump-1" in caplog.text


def test_a_key_as_long_as_s3_allows_is_quarantined_not_a_failed_event(
    env: dict[str, Any],
) -> None:
    # GIVEN a results object under a key of 1,024 bytes, the most S3 allows, outside the
    # layout; its quarantine record's key (<key>#<line>) would pass the 1,024 bytes a
    # DynamoDB sort key holds (DynamoDB constraints, "Partition keys and sort keys")
    key = "output/a" + "ü" * 500 + "/x/results.jsonl"
    assert len(key.encode()) == 1024
    env["s3"].put_object(Bucket="pw-out", Key=key, Body=json.dumps(ROW) + "\n")
    # WHEN its event arrives, twice (S3 delivers at least once)
    response, lines = invoke(detector.handler, {"Records": [created(key)]})
    again, lines_again = invoke(detector.handler, {"Records": [created(key, "e2")]})
    # THEN it is quarantined with its reason and its whole key, once
    assert response["objects"][0]["rows_fed"] == again["objects"][0]["rows_fed"] == 0
    [line] = [x for x in lines if x.get("message") == "quarantined"]
    assert line["reason"].startswith(f"{key}: not [<site>/]<component>/")
    assert not [x for x in lines_again if x.get("message") == "quarantined"]


@pytest.mark.parametrize(
    ("handle", "name", "value", "expected"),
    [
        (batcher.handler, "INPUT_BUCKET", "s3://pw-in", "an S3 bucket name"),
        (batcher.handler, "QUARANTINE_BUCKET", "Bad_Bucket", "an S3 bucket name"),
        (inference.handler, "OUTPUT_BUCKET", "pw-out/results", "an S3 bucket name"),
        (inference.handler, "ARTIFACTS_BUCKET", "x", "an S3 bucket name"),
        (detector.handler, "STATE_TABLE", "st ate", "a DynamoDB table name or ARN"),
        (detector.handler, "IDEMPOTENCY_TABLE", "a", "a DynamoDB table name or ARN"),
        (timers.handler, "ALERTS_TOPIC_ARN", "plantwatch-alerts", "an SNS topic ARN"),
        (timers.handler, "IOT_DATA_ENDPOINT", "not a host", "Invalid endpoint"),
        (inference.handler, "S3_ENDPOINT_URL", "localhost:9000", "Invalid endpoint"),
    ],
)
def test_a_malformed_setting_is_named_at_cold_start(
    env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    handle: Any,
    name: str,
    value: str,
    expected: str,
) -> None:
    # GIVEN a setting that no AWS call could accept (a URL for a bucket, a name for an ARN)
    monkeypatch.setattr(batcher, "_handler", None)
    monkeypatch.setenv(name, value)
    # WHEN the function starts, THEN it stops with one line naming the variable and the
    # form it expects, before any event is looked at (not at the first alert, days later)
    with pytest.raises(ConfigError, match=rf"^{name} {value!r}: .*{expected}"):
        invoke(handle, {"time": "2026-01-05T07:11:00Z", "scheduler": "s1", "Records": []})


def test_a_table_given_by_its_arn_is_accepted(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_TABLE", "arn:aws:dynamodb:us-east-1:123456789012:table/state")
    assert settings.state_store(os.environ).table.endswith(":table/state")


def test_an_unreachable_idempotency_table_is_a_storage_error_naming_it(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a deployment whose idempotency table is gone (deleted, or another account's)
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "no-such-table")
    env["s3"].put_object(Bucket="pw-out", Key=KEY, Body=json.dumps(ROW) + "\n")
    # WHEN an event arrives, THEN the invocation fails (Lambda retries it, then its
    # dead-letter queue keeps it) with the project's storage error naming the table
    with pytest.raises(StorageError, match=r"idempotency table 'no-such-table'"):
        invoke(detector.handler, {"Records": [created(KEY)]})


def test_an_event_already_in_progress_elsewhere_is_retried_not_fed_twice(
    env: dict[str, Any],
) -> None:
    # GIVEN an object whose event another invocation is handling right now (S3 delivers at
    # least once, so two invocations can hold the same event at the same time)
    env["s3"].put_object(Bucket="pw-out", Key=KEY, Body=json.dumps(ROW) + "\n")
    invoke(detector.handler, {"Records": [created(KEY)]})
    [item] = env["ddb"].scan(TableName="idem")["Items"]
    later_ms = str(int((time.time() + 60) * 1000))
    env["ddb"].update_item(
        TableName="idem",
        Key={"id": item["id"]},
        UpdateExpression="SET #s = :s, in_progress_expiration = :t",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "INPROGRESS"}, ":t": {"N": later_ms}},
    )
    # WHEN the duplicate arrives, THEN it fails with a storage error saying so (Lambda
    # retries it later, when the other invocation's result is stored) and feeds nothing
    with pytest.raises(StorageError, match=rf"{KEY}: .*another invocation"):
        invoke(detector.handler, {"Records": [created(KEY)]})


class ThrottledS3:
    """A moto S3 client, except that reading one key fails as S3 fails a request past its
    request rate once botocore's retries are spent (``SlowDown``, HTTP 503)."""

    def __init__(self, inner: Any, key: str) -> None:
        self._inner = inner
        self.key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_object(self, **kwargs: Any) -> Any:
        if kwargs["Key"] == self.key:
            error = {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}
            raise ClientError(error, "GetObject")  # type: ignore[arg-type]
        return self._inner.get_object(**kwargs)


def test_a_record_that_fails_does_not_hold_back_the_others_of_its_event(
    env: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN two results objects announced in one event, the first of which S3 throttles
    first = "output/pump-1/2026-01-05T07:05:00Z/results.jsonl"
    for key in (first, KEY):
        env["s3"].put_object(Bucket="pw-out", Key=key, Body=json.dumps(ROW) + "\n")
    s3 = ThrottledS3(env["s3"], first)
    handle = detector.make_handler(
        **detection.detector_adapters(os.environ),
        open_store=lambda bucket: S3ObjectStore(bucket, client=s3),
        prefix="output/",
        persistence=DynamoDBPersistenceLayer(table_name="idem"),
    )
    event_ = {"Records": [created(first), created(KEY)]}
    # WHEN the detector handler gets the event, THEN the invocation fails naming the
    # throttled object (an asynchronous invocation is retried whole: Lambda, "How Lambda
    # handles errors and retries with asynchronous invocation"), but the other object was
    # fed all the same: a record failing every attempt must not take the others with it
    with pytest.raises(StorageError, match=f"s3://pw-out/{first}"):
        invoke(handle, event_)
    assert f"s3://pw-out/{first}: not fed, retried" in caplog.text
    store = DynamoDbStateStore("state")
    assert store.get("feeder/output/", KEY) == {"rows": 1, "settled": False}
    assert store.get("feeder/output/", first) is None
    # WHEN the event is retried once S3 answers, THEN the throttled object is fed and the
    # other is not fed a second time
    s3.key = ""
    response, _ = invoke(handle, event_)
    assert [(o["key"], o["rows_fed"]) for o in response["objects"]] == [(first, 1), (KEY, 1)]
    assert store.get("feeder/output/", KEY) == {"rows": 1, "settled": False}
    assert store.get("feeder/output/", first) == {"rows": 1, "settled": False}


@settings_(max_examples=200, deadline=None)
@given(
    name=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40),
    safe=st.sampled_from(["", "/", "/-_.!~*'()"]),
)
def test_any_key_s3_url_encodes_in_its_event_is_read_back_as_stored(name: str, safe: str) -> None:
    # GIVEN a results key with any characters S3 keys hold (UTF-8: spaces, '+', '%',
    # accents, emoji), URL-encoded as S3 puts it in the event (space as '+', the rest as
    # %XX of its UTF-8 bytes: S3, "Event message structure": "The s3 key provides
    # information about the bucket and object involved in the event. The object key name
    # value is URL encoded")
    key = f"output/{name}/results.jsonl"
    record = created(quote_plus(key, safe=safe))
    # WHEN the detector reads the record, THEN it names the object as stored
    assert detector.s3_object(record) == {"bucket": "pw-out", "key": key, "etag": "e1"}
