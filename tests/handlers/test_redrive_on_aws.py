"""Dead letters in the deployment's DynamoDB state table: ``alarms dead-letters --aws`` lists
them, ``alarms redrive --aws`` puts them back due now, the conditional writes keep two racing
redrives from putting one back twice, and the next outbox retry (the timers function's)
sends it once."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_support import REGION, create_state_table
from detector_models import EventSink, action_request
from moto import mock_aws
from stale_listing import Stale

from cloud.adapters.aws import DynamoDbStateStore
from cloud.cli.main import main
from cloud.detectors.outbox import (
    DEAD_LETTER_NAMESPACE,
    OUTBOX_NAMESPACE,
    DeliveryOutbox,
    redrive,
)
from edge.clock import ManualClock, SystemClock
from edge.errors import RefusedError

TABLE = "pw-state"
TOPIC = f"arn:aws:sns:{REGION}:123456789012:alerts"


@pytest.fixture
def state(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoDbStateStore]:
    """The state table with one dead letter: an alert refused while the topic was gone."""
    with mock_aws():
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        client = boto3.client("dynamodb", region_name=REGION)
        create_state_table(client, TABLE)
        store = DynamoDbStateStore(TABLE, client)
        gone = RefusedError(f"sns {TOPIC}: NotFound", reason="NotFound")
        DeliveryOutbox(EventSink(gone), store, ManualClock(SystemClock().now() - 600)).execute(
            action_request(
                target={"targetArn": TOPIC}, key_value="pump-02", event_time_ms=1_767_596_400_000
            )
        )
        yield store


def cli(*argv: str) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--aws", "--region", REGION, "--state-table", TABLE])
    text = out.getvalue()
    return code, json.loads(text) if text.startswith("[") else text, err.getvalue()


def test_the_cli_lists_and_redrives_a_dead_letter_on_the_state_table(
    state: DynamoDbStateStore,
) -> None:
    code, rows, err = cli("alarms", "dead-letters", "--json")
    assert code == 0, err
    [row] = rows
    assert (row["kind"], row["target"], row["dead_reason"]) == (
        "sns",
        TOPIC,
        "refused (NotFound): retrying cannot help",
    )
    code, done, err = cli("alarms", "redrive", row["key"], "--json")
    assert code == 0, err
    assert done == [{"key": row["key"], "status": "redriven", "redrives": 1}]
    assert "timers function" in err
    assert list(state.items(DEAD_LETTER_NAMESPACE)) == []
    [(key, record)] = state.items(OUTBOX_NAMESPACE)
    assert (key, record["attempts"], record["redrives"]) == (row["key"], 0, 1)
    # the timers function's next retry sends it, once
    sink = EventSink()
    assert DeliveryOutbox(sink, state, SystemClock()).retry_due() == 1
    assert DeliveryOutbox(sink, state, SystemClock()).retry_due() == 0
    assert sink.done == ["alarm raised"]


def test_an_unknown_key_exits_2_on_aws_too(state: DynamoDbStateStore) -> None:
    code, out, err = cli("alarms", "redrive", "nope")
    assert (code, out) == (2, "")
    assert err.startswith("plantwatch: error: no dead letter 'nope'") and err.count("\n") == 1


def test_two_racing_redrives_put_it_back_once(state: DynamoDbStateStore) -> None:
    clock = SystemClock()
    seen_by_both = list(state.items_versioned(DEAD_LETTER_NAMESPACE))
    first = redrive(state, clock)
    second = redrive(Stale(state, DEAD_LETTER_NAMESPACE, seen_by_both), clock)  # type: ignore[arg-type]
    assert ([r.status for r in first], [r.status for r in second]) == (["redriven"], ["taken"])
    assert len(list(state.items(OUTBOX_NAMESPACE))) == 1
