"""Local adapters behave like the ports promise: prefix listing, atomic puts, persistence."""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import shutil
import stat
import threading
from pathlib import Path

import pytest
from detector_models import alert_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.adapters.local import (
    FsObjectStore,
    InMemoryObjectStore,
    InMemoryStateStore,
    OutboxNotifier,
    SqliteStateStore,
    fs_object_store,
    outbox_notifier,
)
from cloud.detectors.actions import LocalActionSink
from cloud.detectors.outbox import DeliveryOutbox
from cloud.ports import Notification
from edge.clock import ManualClock
from edge.errors import NotFoundError, RefusedError, StorageError


@pytest.fixture(params=["fs", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    return FsObjectStore(tmp_path) if request.param == "fs" else InMemoryObjectStore()


def test_object_store_put_get_list_delete(store) -> None:
    store.put("input/pump_20240101000500.csv", b"a")
    store.put("input/pump_20240101001000.csv", b"b")
    store.put("inputx/other.csv", b"c")
    assert store.get("input/pump_20240101001000.csv") == b"b"
    assert list(store.list("input/")) == [
        "input/pump_20240101000500.csv",
        "input/pump_20240101001000.csv",
    ]
    assert list(store.list("input")) == [
        "input/pump_20240101000500.csv",
        "input/pump_20240101001000.csv",
        "inputx/other.csv",
    ]
    store.delete("input/pump_20240101000500.csv")
    with pytest.raises(NotFoundError):
        store.get("input/pump_20240101000500.csv")


def test_fs_store_refuses_escaping_keys(tmp_path: Path) -> None:
    from edge.errors import StorageError

    with pytest.raises(StorageError):
        FsObjectStore(tmp_path).put("../evil", b"x")


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_state_store(kind: str, tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "s.db") if kind == "sqlite" else InMemoryStateStore()
    store.put("detectors", "pump-02", {"state": "Alarm", "n": 3})
    store.put("detectors", "pump-01", {"state": "Normal"})
    assert store.get("detectors", "pump-02") == {"state": "Alarm", "n": 3}
    assert [k for k, _ in store.items("detectors")] == ["pump-01", "pump-02"]
    store.delete("detectors", "pump-01")
    assert store.get("detectors", "pump-01") is None


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_both_state_stores_keep_the_same_json(kind: str, tmp_path: Path) -> None:
    """The in-memory store holds what a file would: a deep document a device sent (500
    levels: a deep copy ran out of stack there), a non-finite float as null, a tuple as a
    list; and what it hands out is a copy."""
    store = SqliteStateStore(tmp_path / "s.db") if kind == "sqlite" else InMemoryStateStore()
    deep: dict = {}
    inner = deep
    for _ in range(500):
        inner["a"] = {}
        inner = inner["a"]
    store.put("detectors", "k", {"input": deep, "x": float("nan"), "t": (1, 2)})
    got = store.get("detectors", "k")
    assert got == {"input": deep, "x": None, "t": [1, 2]}
    got["t"].append(3)
    assert store.get("detectors", "k")["t"] == [1, 2]


def test_sqlite_state_survives_reopen(tmp_path: Path) -> None:
    SqliteStateStore(tmp_path / "s.db").put("ns", "k", {"v": 1})
    assert SqliteStateStore(tmp_path / "s.db").get("ns", "k") == {"v": 1}


def test_outbox_appends_json_lines(tmp_path: Path) -> None:
    notifier = OutboxNotifier(tmp_path / "alerts.jsonl")
    notifier.send(Notification("sms", "+15555550100", "", "PLANTWATCH pump-02 ALARM"))
    notifier.send(Notification("email", "ops@example.com", "Alarm", "Body"))
    lines = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [x["channel"] for x in lines] == ["sms", "email"]
    assert lines[0]["body"] == "PLANTWATCH pump-02 ALARM"


def test_a_durable_put_syncs_the_folder_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename is what makes a put visible; a power cut can lose it unless the folder
    is synced after it (once per folder for a batch of puts)."""
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    store = FsObjectStore(tmp_path / "bucket")
    store.put("a/one.csv", b"1")
    assert synced == [str(tmp_path / "bucket" / "a")]
    synced.clear()
    assert (
        store.put_many([("a/two.csv", b"2"), ("a/three.csv", b"3"), ("b/x.csv", b"x")])
        == [None] * 3
    )
    assert sorted(synced) == [str(tmp_path / "bucket" / "a"), str(tmp_path / "bucket" / "b")]
    synced.clear()
    FsObjectStore(tmp_path / "scratch", fsync=False).put_many([("c/y.csv", b"y")])
    assert synced == []


def test_put_many_keeps_its_fsync_threads_between_calls(tmp_path: Path) -> None:
    """A flush of window files calls put_many every time; starting its fsync threads anew
    for each call cost more CPU than the syncs themselves."""
    store = FsObjectStore(tmp_path / "bucket")

    def fsync_threads() -> set[int]:
        return {t.ident for t in threading.enumerate() if t.name.startswith("store-fsync")}

    files = [(f"a/{i}.csv", b"x" * i) for i in range(20)]
    assert store.put_many(files) == [None] * 20
    first = fsync_threads()
    assert 1 <= len(first) <= fs_object_store.FSYNC_THREADS
    assert FsObjectStore(tmp_path / "other").put_many(files) == [None] * 20
    after = fsync_threads()  # shared by the process's stores, not made again
    assert first <= after and len(after) <= fs_object_store.FSYNC_THREADS
    assert [store.get(k) for k, _ in files] == [b for _, b in files]


def test_put_many_makes_a_folder_removed_meanwhile_and_skips_a_taken_temp_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FsObjectStore(tmp_path / "bucket")
    assert store.put_many([("s/a/1.csv", b"1")]) == [None]
    shutil.rmtree(tmp_path / "bucket" / "s")
    # a killed process with this pid left the next temporary name behind
    monkeypatch.setattr(fs_object_store, "_TEMP_NUMBERS", itertools.count(7))
    (tmp_path / "bucket" / "s" / "a").mkdir(parents=True)
    left = tmp_path / "bucket" / "s" / "a" / f".tmp-2.csv.{os.getpid()}.7"
    left.write_bytes(b"old")
    assert store.put_many([("s/a/2.csv", b"2"), ("s/b/3.csv", b"3")]) == [None, None]
    assert store.get("s/a/2.csv") == b"2" and store.get("s/b/3.csv") == b"3"
    assert stat.S_IMODE((tmp_path / "bucket" / "s" / "b").stat().st_mode) == 0o700
    assert left.read_bytes() == b"old"
    assert sorted(p.name for p in (tmp_path / "bucket").rglob(".tmp-*")) == [left.name]


def test_put_many_in_a_forked_child_syncs_with_its_own_threads(tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path / "bucket")
    assert store.put_many([("a/1.csv", b"1")]) == [None]  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # the child: the inherited pool has no threads
        code = 0 if store.put_many([("a/2.csv", b"2")]) == [None] else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get("a/2.csv") == b"2"


def _alert_through_outbox(
    notifier: OutboxNotifier, clock: ManualClock | None = None
) -> DeliveryOutbox:
    state = InMemoryStateStore()
    outbox = DeliveryOutbox(
        LocalActionSink(notifier, None, state=state), state, clock or ManualClock(1_767_225_600.0)
    )
    outbox.execute(alert_request())
    return outbox


def test_an_alerts_file_that_cannot_be_written_is_retried_until_it_can(tmp_path: Path) -> None:
    # the alerts file is the local deployment's, as the SNS topic is on AWS: an operator
    # can fix it, and the same alert must go out then (settled for SNS in errors.py)
    path = tmp_path / "alerts.jsonl"
    notifier = OutboxNotifier(path)
    path.unlink()
    path.mkdir()  # WHEN the alerts file became a directory
    with pytest.raises(StorageError, match=r"alerts\.jsonl: cannot append") as e:
        notifier.send(Notification("email", "ops@example.com", "s", "b", {}))
    assert not isinstance(e.value, RefusedError)
    clock = ManualClock(1_767_225_600.0)
    outbox = _alert_through_outbox(notifier, clock)
    # THEN the alert is kept for the retries, not a dead letter
    [(_key, record)] = outbox.pending()
    assert record["attempts"] == 1 and outbox.dead_letters() == []
    # WHEN an operator fixes the path, the next retry writes the alert
    path.rmdir()
    clock.advance(60)
    assert outbox.retry_due() == 1
    assert outbox.pending() == [] and outbox.dead_letters() == []
    sent = [json.loads(line)["channel"] for line in path.read_text().splitlines()]
    assert sent == ["email", "sms"]


@pytest.mark.parametrize(
    "code", [errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ENAMETOOLONG]
)
def test_a_path_the_operator_must_fix_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    notifier = OutboxNotifier(tmp_path / "alerts.jsonl")

    def refuse(*_a: object, **_k: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(outbox_notifier, "open", refuse, raising=False)
    with pytest.raises(StorageError, match=os.strerror(code)) as e:
        notifier.send(Notification("email", "ops@example.com", "s", "b", {}))
    assert not isinstance(e.value, RefusedError)


def test_a_full_disk_is_retried_with_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier = OutboxNotifier(tmp_path / "alerts.jsonl")

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StorageError) as e:
        notifier.send(Notification("email", "ops@example.com", "s", "b", {}))
    assert not isinstance(e.value, RefusedError)
    outbox = _alert_through_outbox(notifier)
    [(_key, record)] = outbox.pending()
    assert record["attempts"] == 1 and outbox.dead_letters() == []


def test_an_alert_with_a_lone_surrogate_is_written_not_refused(tmp_path: Path) -> None:
    # a JSON payload may carry "\ud800", which json.loads turns into a lone surrogate
    notifier = OutboxNotifier(tmp_path / "alerts.jsonl")
    body = json.loads('"pump \\ud800 tripped"')
    notifier.send(Notification("email", "ops@example.com", "s", body, {}))
    [line] = (tmp_path / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["body"] == body


@pytest.mark.parametrize("fsync", [False, True])
def test_a_put_on_a_full_disk_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool
) -> None:
    """`model train` on a full disk left `.tmp-model.npz.<pid>.<n>` in the version folder."""
    from cloud.adapters.local import fs_object_store

    store = FsObjectStore(tmp_path, fsync=fsync)
    store.put("m/v1/kept.json", b"{}")
    real = fs_object_store.os.fdopen

    class Full:
        def __init__(self, fd: int, mode: str) -> None:
            self._fh = real(fd, mode)

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self._fh.close()

        def write(self, _data: bytes) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fs_object_store.os, "fdopen", Full)
    with pytest.raises(StorageError, match=r"model\.npz: put failed: .*No space left.*free space"):
        store.put("m/v1/model.npz", b"x" * 1000)
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "m" / "v1").iterdir()) == ["kept.json"]


# A key the file system refuses for that key alone is a RefusedError (the same key fails
# the same way every time: retrying it would stall whoever retries); a store whose root is
# not a folder fails every key, and stays a StorageError that is retried.


def _put_one(store: FsObjectStore, method: str, key: str, body: bytes = b"x") -> None:
    if method == "put_many":
        [error] = store.put_many([(key, body)])
        if error is not None:
            raise error
    else:
        getattr(store, method)(key, body)


PUTS = ["put", "put_many", "append"]


@pytest.mark.parametrize("method", PUTS)
@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("raw/" + "k" * 256 + "/a.json", "longer than"),
        ("raw/" + "é" * 128, "longer than"),  # 256 bytes in UTF-8
        ("obj/below.json", "is an object"),  # 'obj' is an object already
        ("obj/deeper/below.json", "is an object"),
        ("dir", "holds other objects"),  # 'dir/x.json' exists
    ],
)
def test_fs_store_refuses_a_key_the_file_system_cannot_hold(
    tmp_path: Path, method: str, key: str, why: str
) -> None:
    store = FsObjectStore(tmp_path / "bucket")
    store.put("obj", b"1")
    store.put("dir/x.json", b"2")
    with pytest.raises(RefusedError, match=why) as e:
        _put_one(store, method, key)
    assert repr(key[:64])[:-1] in str(e.value)  # the message names the key
    assert store.get("obj") == b"1" and store.get("dir/x.json") == b"2"
    assert sorted(store.list()) == ["dir/x.json", "obj"]
    assert not list((tmp_path / "bucket").rglob(".tmp-*"))


@pytest.mark.parametrize("method", PUTS)
@pytest.mark.parametrize(
    "key",
    [
        *["", "/abs", "a/../b", "..", "a/", "b//", "./a", "a/./b", "a/.", "nul\x00l", "\ud800"],
        *[".tmp-x", "raw/.tmp-a.json"],  # the store's temporary names: never listed
    ],
)
def test_fs_store_refuses_a_key_it_cannot_map_to_one_file(
    tmp_path: Path, method: str, key: str
) -> None:
    store = FsObjectStore(tmp_path / "bucket")
    store.put("a", b"1")
    with pytest.raises(RefusedError, match="object key"):
        _put_one(store, method, key)
    assert store.get("a") == b"1"
    assert list(store.list()) == ["a"]


def test_fs_store_takes_a_segment_of_255_bytes_of_wide_characters(tmp_path: Path) -> None:
    # the temporary file's name beside it must fit too
    store = FsObjectStore(tmp_path / "bucket")
    for key in ("w/" + "\U0001f600" * 63 + "abc", "w/" + "é" * 127 + "x"):
        assert len(key.split("/")[1].encode()) == 255
        for method in PUTS:
            _put_one(store, method, key, b"v")
        assert store.get(key).startswith(b"v")
    assert len(list(store.list("w/"))) == 2


@pytest.mark.parametrize("method", PUTS)
def test_fs_store_whose_root_is_not_a_folder_is_retried_not_refused(
    tmp_path: Path, method: str
) -> None:
    root = tmp_path / "bucket"
    store = FsObjectStore(root)
    root.rmdir()
    root.write_bytes(b"not a folder")  # WHEN the whole store is broken
    with pytest.raises(StorageError) as e:
        _put_one(store, method, "a/b.json")
    assert not isinstance(e.value, RefusedError)
    root.unlink()
    root.mkdir()  # an operator fixes it: the same put works
    _put_one(store, method, "a/b.json")
    assert store.get("a/b.json") == b"x"


@pytest.mark.parametrize("key", ["obj/below.json", "dir", "k" * 300, "dir/x.json/y"])
def test_fs_store_get_and_delete_of_a_key_that_cannot_exist_is_not_found(
    tmp_path: Path, key: str
) -> None:
    store = FsObjectStore(tmp_path / "bucket")
    store.put("obj", b"1")
    store.put("dir/x.json", b"2")
    with pytest.raises(NotFoundError):
        store.get(key)
    with pytest.raises(NotFoundError), store.open_file(key):
        pass
    store.delete(key)
    assert sorted(store.list()) == ["dir/x.json", "obj"]


SEGMENTS = st.text(st.characters(codec="utf-8"), min_size=0, max_size=90) | st.sampled_from(
    ["", ".", "..", ".tmp-x", "é" * 128, "\U0001f600" * 63, "k" * 255, "k" * 256, "same"]
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(keys=st.lists(st.lists(SEGMENTS, min_size=1, max_size=4).map("/".join), max_size=5))
def test_fs_store_lists_and_reads_back_every_key_it_takes(
    tmp_path_factory: pytest.TempPathFactory, keys: list[str]
) -> None:
    """Whatever keys come (a rule's key template makes them from device payloads), each
    put either stores an object that get and list give back, or raises RefusedError and
    changes nothing: never an object stored out of sight, nor one stored under another key
    (an empty segment inside a key is taken and listed without it, as the file system
    reads the path)."""
    store = FsObjectStore(tmp_path_factory.mktemp("bucket"), fsync=False)
    expected: dict[str, bytes] = {}
    for i, key in enumerate(keys):
        body = str(i).encode()
        listed = re.sub("/+", "/", key)
        try:
            store.put(key, body)
        except RefusedError:
            assert listed not in expected or store.get(listed) == expected[listed]
            continue
        expected[listed] = body
    assert sorted(store.list()) == sorted(expected)
    for key, body in expected.items():
        assert store.get(key) == body


def test_fs_store_takes_an_empty_segment_inside_a_key_as_the_file_system_does(
    tmp_path: Path,
) -> None:
    """The project's errorAction key ``errors/${topic(4)}/...`` has an empty segment for a
    topic of fewer than 4 levels (a Basic Ingest message on ``lab/x``)."""
    store = FsObjectStore(tmp_path / "bucket")
    store.put("errors//1-uuid", b"report")
    assert store.get("errors//1-uuid") == b"report"
    assert list(store.list("errors/")) == ["errors/1-uuid"]


def test_fs_store_refuses_a_key_over_the_1024_bytes_s3_takes_before_touching_the_disk(
    tmp_path: Path,
) -> None:
    """S3 keys are at most 1,024 bytes of UTF-8; a longer one (say, thousands of ``a/``
    levels a payload made) made hundreds of nested folders before failing."""
    store = FsObjectStore(tmp_path / "bucket")
    deepest = "a/" * 511 + "b"  # 1,023 bytes, 512 levels
    store.put(deepest, b"x")
    assert list(store.list()) == [deepest] and store.get(deepest) == b"x"
    for key in ("c/" * 512 + "d", "raw/" + "a/" * 2000 + "b", "é" * 200 + "/" + "é" * 313):
        assert len(key.encode()) > 1024
        for method in PUTS:
            with pytest.raises(RefusedError, match="S3 takes at most 1,024"):
                _put_one(store, method, key)
    assert sorted(p.name for p in (tmp_path / "bucket").iterdir()) == ["a"]
