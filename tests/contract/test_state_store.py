"""One StateStore contract, run against every adapter (DynamoDB under moto).

The versioned half is what keeps two Lambdas on one detector instance from overwriting
each other: a write conditional on a version either lands whole or raises
``VersionConflictError`` and changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_support import AtomicRequests, create_state_table
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from cloud.adapters.aws import DynamoDbStateStore
from cloud.adapters.local import InMemoryStateStore, SqliteStateStore
from cloud.ports import StateStore, Versioned, batched
from edge.errors import ConflictError, VersionConflictError

TABLE = "plantwatch-state"


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "memory":
        yield InMemoryStateStore()
    elif request.param == "sqlite":
        sqlite = SqliteStateStore(tmp_path / "state.db")
        yield sqlite
        sqlite.close()
    else:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_state_table(client, TABLE)
            yield DynamoDbStateStore(TABLE, AtomicRequests(client))


def test_put_get_items_delete(store: StateStore) -> None:
    store.put("detectors/m", "pump-02", {"state": "Alarm", "n": 3, "x": 0.1, "t": None})
    store.put("detectors/m", "pump-01", {"state": "Normal", "nested": {"a": [1, 2.5, "é"]}})
    store.put("detectors/other", "pump-00", {"state": "Normal"})
    assert store.get("detectors/m", "pump-02") == {"state": "Alarm", "n": 3, "x": 0.1, "t": None}
    assert [k for k, _ in store.items("detectors/m")] == ["pump-01", "pump-02"]
    assert dict(store.items("detectors/m"))["pump-01"] == {
        "state": "Normal",
        "nested": {"a": [1, 2.5, "é"]},
    }
    store.delete("detectors/m", "pump-01")
    store.delete("detectors/m", "pump-01")
    assert store.get("detectors/m", "pump-01") is None
    assert store.get("nothing", "here") is None
    assert list(store.items("nothing")) == []


def test_every_write_raises_the_version(store: StateStore) -> None:
    assert store.get_versioned("ns", "k") is None
    store.put("ns", "k", {"v": 1})
    first = store.get_versioned("ns", "k")
    assert first is not None and first.value == {"v": 1} and first.version == 1
    store.put("ns", "k", {"v": 2})
    assert store.put_if_version("ns", "k", {"v": 3}, 2) == 3
    again = store.get_versioned("ns", "k")
    assert again is not None and again.value == {"v": 3} and again.version == 3
    assert [(k, v.version, v.value) for k, v in store.items_versioned("ns")] == [("k", 3, {"v": 3})]


def test_create_only_when_absent(store: StateStore) -> None:
    assert store.put_if_version("ns", "k", {"who": "a"}, None) == 1
    with pytest.raises(VersionConflictError) as caught:
        store.put_if_version("ns", "k", {"who": "b"}, None)
    assert isinstance(caught.value, ConflictError)
    assert "ns/k" in str(caught.value)
    assert store.get("ns", "k") == {"who": "a"}


def test_a_stale_version_changes_nothing(store: StateStore) -> None:
    store.put("ns", "k", {"v": 1})
    store.put("ns", "k", {"v": 2})
    with pytest.raises(VersionConflictError):
        store.put_if_version("ns", "k", {"v": "stale"}, 1)
    with pytest.raises(VersionConflictError):
        store.put_if_version("ns", "absent", {"v": "x"}, 1)
    assert store.get_versioned("ns", "k") is not None
    assert store.get("ns", "k") == {"v": 2}
    assert store.get("ns", "absent") is None


def test_delete_if_version_deletes_only_the_version_read(store: StateStore) -> None:
    """A conditional delete removes the document only when nobody wrote it since it was
    read: a writer in between (or an earlier delete) makes it raise and delete nothing."""
    store.put("ns", "k", {"v": 1})
    read = store.get_versioned("ns", "k")
    assert read is not None
    store.put("ns", "k", {"v": 2})  # someone wrote in between
    with pytest.raises(VersionConflictError) as caught:
        store.delete_if_version("ns", "k", read.version)
    assert "ns/k" in str(caught.value) and f"version {read.version}" in str(caught.value)
    assert store.get("ns", "k") == {"v": 2}
    store.delete_if_version("ns", "k", read.version + 1)
    assert store.get_versioned("ns", "k") is None
    with pytest.raises(VersionConflictError):  # gone: nothing of that version to delete
        store.delete_if_version("ns", "k", read.version + 1)
    with pytest.raises(VersionConflictError):
        store.delete_if_version("ns", "never", 1)
    store.put("ns", "k", {"v": "again"})  # a document written anew starts over at 1
    assert store.get_versioned("ns", "k") == Versioned({"v": "again"}, 1)


@settings(max_examples=15, deadline=None)
@given(writes=st.integers(1, 5), expected=st.integers(1, 6))
def test_delete_if_version_any_version(writes: int, expected: int) -> None:
    store = InMemoryStateStore()
    for n in range(writes):
        store.put("ns", "k", {"n": n})
    if expected == writes:
        store.delete_if_version("ns", "k", expected)
        assert store.get("ns", "k") is None
    else:
        with pytest.raises(VersionConflictError):
            store.delete_if_version("ns", "k", expected)
        assert store.get("ns", "k") == {"n": writes - 1}


def test_lost_race_two_writers_one_version(store: StateStore) -> None:
    # GIVEN two writers that both read version 1
    store.put("detectors/m", "pump-02", {"state": "Normal", "count": 0})
    read_a = store.get_versioned("detectors/m", "pump-02")
    read_b = store.get_versioned("detectors/m", "pump-02")
    assert read_a is not None and read_b is not None and read_a.version == read_b.version
    # WHEN both write conditionally on that version
    outcomes = []
    for who, read in (("a", read_a), ("b", read_b)):
        try:
            store.put_if_version("detectors/m", "pump-02", {"state": who}, read.version)
            outcomes.append(who)
        except VersionConflictError:
            outcomes.append("conflict")
    # THEN exactly one wins and the other gets the conflict error
    assert outcomes == ["a", "conflict"]
    assert store.get("detectors/m", "pump-02") == {"state": "a"}


def test_concurrent_read_modify_write_loses_no_update(store: StateStore) -> None:
    """Threads incrementing one counter with compare-and-set and retry: every increment lands."""
    store.put("counters", "c", {"n": 0})
    threads, per_thread = 4, 10
    conflicts: list[int] = []

    def work() -> None:
        for _ in range(per_thread):
            while True:
                current = store.get_versioned("counters", "c")
                assert current is not None
                try:
                    store.put_if_version(
                        "counters", "c", {"n": current.value["n"] + 1}, current.version
                    )
                    break
                except VersionConflictError:
                    conflicts.append(1)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert store.get("counters", "c") == {"n": threads * per_thread}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def test_documents_round_trip_exactly() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_state_table(client, TABLE)
        stores: list[StateStore] = [InMemoryStateStore(), DynamoDbStateStore(TABLE, client)]

        @settings(max_examples=40)
        @given(doc=st.dictionaries(st.text(max_size=8), json_values, max_size=5))
        def check(doc: dict[str, Any]) -> None:
            for store in stores:
                store.put("ns", "k", doc)
                assert store.get("ns", "k") == doc

        check()


def test_sqlite_store_from_before_versions_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / "old.db")
    db.execute(
        "CREATE TABLE state (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
        " PRIMARY KEY (ns, key))"
    )
    db.execute("INSERT INTO state VALUES ('detectors/m', 'pump-01', '{\"state\":\"Alarm\"}')")
    db.commit()
    db.close()
    with SqliteStateStore(tmp_path / "old.db", readonly=True) as looking:
        assert [(k, v.version) for k, v in looking.items_versioned("detectors/m")] == [
            ("pump-01", 1)
        ]
    store = SqliteStateStore(tmp_path / "old.db")
    found = store.get_versioned("detectors/m", "pump-01")
    assert found is not None and found.value == {"state": "Alarm"} and found.version == 1
    assert store.put_if_version("detectors/m", "pump-01", {"state": "Normal"}, 1) == 2


def test_dynamodb_retention_sets_the_ttl_attribute() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_state_table(client, TABLE)
        store = DynamoDbStateStore(
            TABLE,
            client,
            retention={"feeder/": 86400, "feeder/output/": 3600},
            now=lambda: 1_000_000.0,
        )
        store.put("feeder/output/", "output/a/results.jsonl", {"rows": 3})
        store.put("feeder/stream/", "stream/a/results.jsonl", {"rows": 1})
        store.put("detectors/m", "pump-01", {"state": "Normal"})

        def expires(namespace: str, key: str) -> str | None:
            item = client.get_item(
                TableName=TABLE, Key={"namespace": {"S": namespace}, "key": {"S": key}}
            )["Item"]
            return item.get("expires_at", {}).get("N")

        assert expires("feeder/output/", "output/a/results.jsonl") == "1003600"
        assert expires("feeder/stream/", "stream/a/results.jsonl") == "1086400"
        assert expires("detectors/m", "pump-01") is None


def test_dynamodb_storage_failure_names_the_item() -> None:
    from edge.errors import StorageError

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        store = DynamoDbStateStore("no-such-table", client)
        with pytest.raises(StorageError, match="dynamodb://no-such-table/ns/k: get failed"):
            store.get("ns", "k")


def test_a_batch_groups_writes_and_each_write_stands(store: StateStore) -> None:
    """``batched`` works over every store (SQLite: one transaction; others: as they are).
    Reads inside see the block's writes; a lost race inside raises there and changes nothing
    else; an exception leaving the block keeps what was written before it (grouping, not
    atomicity)."""
    store.put("ns", "seen", {"v": 0})
    with pytest.raises(RuntimeError), batched(store):
        store.put("ns", "a", {"v": 1})
        with batched(store):  # nested blocks are one block
            assert store.put_if_version("ns", "seen", {"v": 1}, 1) == 2
        assert store.get("ns", "a") == {"v": 1}
        with pytest.raises(VersionConflictError):
            store.put_if_version("ns", "seen", {"v": "stale"}, 1)
        store.delete("ns", "a")
        store.put("ns", "b", {"v": 2})
        raise RuntimeError("the step failed after its writes")
    assert store.get("ns", "a") is None
    assert store.get("ns", "b") == {"v": 2}
    assert store.get_versioned("ns", "seen") == Versioned({"v": 1}, 2)
    with batched(store):
        pass  # a block that writes nothing


def test_sqlite_batch_is_one_commit_seen_by_other_connections(tmp_path: Path) -> None:
    """Another process sees a block's writes all at once, at its end; a block that writes
    nothing holds no lock, so another process can write meanwhile."""
    path = tmp_path / "state.db"
    store, other = SqliteStateStore(path), SqliteStateStore(path)
    store.put("ns", "k", {"v": 0})
    with batched(store):
        other.put("ns", "outside", {"v": 1})  # nothing written here yet: no lock held
        store.put("ns", "k", {"v": 1})
        store.put("ns", "j", {"v": 1})
        assert other.get("ns", "k") == {"v": 0} and other.get("ns", "j") is None
    assert other.get("ns", "k") == {"v": 1} and other.get("ns", "j") == {"v": 1}
    assert store.get("ns", "outside") == {"v": 1}
    store.close()
    other.close()


def test_sqlite_batch_holds_no_lock_other_threads_wait_on(tmp_path: Path) -> None:
    """Engines call each other from several threads (a stack step, the streaming feed); a
    block must not make them wait on a lock it holds. Another thread's write during the
    block joins the transaction and is committed with it."""
    path = tmp_path / "state.db"
    store, other = SqliteStateStore(path), SqliteStateStore(path)
    with batched(store):
        store.put("ns", "block", {"v": 1})
        thread = threading.Thread(target=lambda: store.put("ns", "thread", {"v": 1}))
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive()  # it did not wait for the block
        assert other.get("ns", "thread") is None  # not committed yet: the block's
    assert other.get("ns", "thread") == {"v": 1} and other.get("ns", "block") == {"v": 1}
    store.close()
    other.close()


def test_sqlite_writes_strict_json_and_keeps_non_string_keys_as_json_did(
    tmp_path: Path,
) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    store.put("ns", "keys", {"timers": {1: "one"}, "t": 1_700_000_000.5})
    assert store.get("ns", "keys") == {"timers": {"1": "one"}, "t": 1_700_000_000.5}
    store.put("ns", "nan", {"x": float("nan"), "y": [float("inf")]})
    assert store.get("ns", "nan") == {"x": None, "y": [None]}  # JSON has no NaN
    store.close()
