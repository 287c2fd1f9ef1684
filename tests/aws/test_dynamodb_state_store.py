"""DynamoDbStateStore under moto: what DynamoDB refuses becomes the project's errors, with
the namespace and key named, and the 400 KB item limit is stated before a write is sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_support import REGION, AtomicRequests, create_state_table
from botocore.exceptions import ClientError
from detector_models import RecordingSink, event, one_state_model
from moto import mock_aws

from cloud.adapters.aws import DynamoDbStateStore
from cloud.adapters.aws.dynamodb_state_store import MAX_ITEM_BYTES
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.router import MessageRouter
from cloud.feeder import quarantine_key
from cloud.handlers.settings import RETENTION
from edge.clock import ManualClock
from edge.errors import StorageError, VersionConflictError


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_state_table(client, "state")
        yield client


class Refusing:
    """A DynamoDB client whose update_item answers with one error code, as the service
    does once botocore's own retries are spent."""

    def __init__(self, client: Any, code: str) -> None:
        self._client = client
        self._code = code

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_item(self, **kwargs: Any) -> Any:
        error = {"Error": {"Code": self._code, "Message": f"{self._code} (test)"}}
        raise ClientError(error, "UpdateItem")  # type: ignore[arg-type]


def test_a_lost_condition_is_a_version_conflict(ddb: Any) -> None:
    store = DynamoDbStateStore("state", client=ddb)
    version = store.put_if_version("detectors/m", "pump-1", {"state": "Normal"}, None)
    store.put_if_version("detectors/m", "pump-1", {"state": "Alarm"}, version)
    with pytest.raises(VersionConflictError, match="detectors/m/pump-1: expected version 1"):
        store.put_if_version("detectors/m", "pump-1", {"state": "Normal"}, version)
    with pytest.raises(VersionConflictError, match="expected absent"):
        store.put_if_version("detectors/m", "pump-1", {"state": "Normal"}, None)


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"]
)
def test_throttling_is_a_storage_error_naming_the_item(ddb: Any, code: str) -> None:
    store = DynamoDbStateStore("state", client=Refusing(ddb, code))
    with pytest.raises(StorageError, match=rf"dynamodb://state/detectors/m/pump-1: .*{code}"):
        store.put_if_version("detectors/m", "pump-1", {"state": "Normal"}, 3)
    with pytest.raises(StorageError, match=code):
        store.put("alerts/limit", "pump-1", {})


def test_a_document_past_400_kb_is_refused_naming_its_size(ddb: Any) -> None:
    # GIVEN a store, and documents just under and just over what one item holds
    store = DynamoDbStateStore("state", client=ddb)
    fits = {"pad": "x" * 390_000}
    too_big = {"pad": "x" * MAX_ITEM_BYTES}
    # WHEN both are written
    store.put("detectors/m", "pump-1", fits)
    # THEN the one that fits is stored, the other is refused before it is sent, with its
    # size and the limit named, and the stored one is left as it was
    with pytest.raises(StorageError, match=r"detectors/m/pump-1: .* bytes; a DynamoDB item holds"):
        store.put_if_version("detectors/m", "pump-1", too_big, 1)
    assert store.get("detectors/m", "pump-1") == fits
    assert MAX_ITEM_BYTES == 400 * 1024


def test_a_fleet_executions_record_fits_one_item(ddb: Any) -> None:
    # GIVEN the execution of a fleet scheduler over 10,000 components, 500 of whose input
    # files could not be read: its result keys alone are about 550 KB of JSON
    from datetime import UTC, datetime

    from cloud.inference.scheduler import (
        EXECUTIONS_NS,
        Execution,
        execution_key,
        list_executions,
    )

    start = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
    keys = tuple(f"output/pump-{i:05d}/2026-01-05T07:05:00Z/results.jsonl" for i in range(10_000))
    skipped = [{"key": f"input/pump-{i:05d}_x.csv", "reason": "not UTF-8 " * 5} for i in range(500)]
    dropped = [
        {"key": f"input/pump-{i:05d}_y.csv", "reason": "3 rows whose timestamp is in no " * 2}
        for i in range(10_000)
    ]  # and every other component's file had rows whose time could not be read
    execution = Execution(
        "plantwatch",
        start,
        start,
        start,
        "SUCCESS",
        None,
        keys[0],
        keys,
        skipped=skipped,
        dropped_rows=dropped,
    )
    store = DynamoDbStateStore("state", client=ddb)
    # WHEN the scheduler records it in the state table
    store.put(EXECUTIONS_NS, execution_key("plantwatch", start), execution.to_record())
    # THEN it is written (a write over 400 KB fails every time: the scheduler would never
    # move past the window), and read back with every result key; only the skipped list is
    # cut, saying how many were left out
    [back] = list_executions(store)
    assert back.result_keys == keys
    assert back.skipped == skipped[:100]
    assert back.skipped_omitted == 400
    assert back.dropped_rows == dropped[:100]
    assert back.dropped_rows_omitted == 9_900


def test_an_empty_key_is_stored_under_a_key_dynamodb_takes(ddb: Any) -> None:
    # DynamoDB refuses "" as a sort key (AtomicRequests stands in for moto, which takes it);
    # a detector or alarm model without a key keeps its one instance under ""
    store = DynamoDbStateStore("state", client=AtomicRequests(ddb))
    keys = ["", "~", "~~", "~x", "x~", "pump-1"]
    for number, key in enumerate(keys):
        assert store.put_if_version("detectors/m", key, {"n": number}, None) == 1
    for number, key in enumerate(keys):
        assert store.get("detectors/m", key) == {"n": number}
    assert [k for k, _ in store.items("detectors/m")] == sorted(keys)
    store.put_if_version("detectors/m", "", {"n": 9}, 1)
    store.put("detectors/m", "~", {"n": 10})
    assert store.get("detectors/m", "") == {"n": 9}
    assert store.get("detectors/m", "~") == {"n": 10}
    store.delete("detectors/m", "")
    assert store.get("detectors/m", "") is None and store.get("detectors/m", "~") == {"n": 10}


def test_a_keyless_detector_model_runs_on_dynamodb(ddb: Any) -> None:
    body = one_state_model(
        event({"setVariable": {"variableName": "seen", "value": "$input.In.n"}}),
        name="plant",
        key=None,
    )
    model = load_detector_model(body)
    inputs = [
        load_input({"inputName": "In", "inputDefinition": {"attributes": [{"jsonPath": "n"}]}})
    ]
    store = DynamoDbStateStore("state", client=AtomicRequests(ddb))
    engine = DetectorEngine(model, inputs, store, ManualClock(), RecordingSink())
    engine.put_message("In", {"n": 4})
    again = DetectorEngine(model, inputs, store, ManualClock(), RecordingSink())
    [variable] = again.describe()["detector"]["state"]["variables"]
    assert variable == {"name": "seen", "value": "4"}


def test_a_quarantine_record_of_the_longest_s3_key_starting_with_a_tilde_fits(ddb: Any) -> None:
    store = DynamoDbStateStore("state", client=AtomicRequests(ddb))
    s3_key = "~" + "k" * 1021  # "~k...k#1": 1,024 bytes before the store's escape
    store.put("feeder-quarantine/output/", quarantine_key(s3_key, 1), {"reason": "bad"})
    [(key, _record)] = store.items("feeder-quarantine/output/")
    assert key == quarantine_key(s3_key, 1)


def test_what_a_router_message_reached_expires_by_ttl_after_14_days(ddb: Any) -> None:
    """The record of the models a failed message reached is kept only for retries: the
    handlers' store gives it DynamoDB's TTL, 14 days, as the feeder's progress."""
    store = DynamoDbStateStore("state", client=ddb, retention=RETENTION, now=lambda: 1_000.0)
    clock = ManualClock(1_000.0)

    class Model:
        def __init__(self, name: str, *, throttled: bool) -> None:
            self.namespace = f"detectors/{name}"
            self.inputs = {"In": None}
            self.throttled = throttled

        def put_message(self, input_name: str, payload: Any, message_id: Any = None) -> None:
            if self.throttled:
                raise StorageError("throttled")

    with pytest.raises(StorageError, match="throttled"):
        MessageRouter(
            [Model("a", throttled=False), Model("b", throttled=True)], store, clock
        ).put_message("In", {"n": 1}, "m1")
    [item] = ddb.scan(TableName="state")["Items"]
    assert item["namespace"]["S"] == "router/partial"
    assert int(item["expires_at"]["N"]) == 1_000 + 14 * 86_400
