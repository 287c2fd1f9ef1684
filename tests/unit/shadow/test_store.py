"""The SQLite shadow store: versions, tombstones, and writers on separate connections."""

from __future__ import annotations

import threading
from pathlib import Path

from cloud.shadow.client import DirectShadowClient
from cloud.shadow.store import TOMBSTONE_SECONDS, ShadowStore
from edge.clock import ManualClock
from edge.errors import ConflictError


def test_writers_on_separate_connections_serialise_and_each_version_is_won_once(tmp_path: Path):
    """Each round all three read the same version, then race: exactly one wins, two get 409."""
    db = tmp_path / "shadows.db"
    clock = ManualClock()
    setup = DirectShadowClient(db, clock)
    setup.update("pump", desired={"n": 0})
    setup.close()
    rounds = 30
    read_done = threading.Barrier(3, timeout=10)
    round_done = threading.Barrier(3, timeout=10)
    errors: list[BaseException] = []
    won: list[tuple[int, str]] = []
    conflicts: list[int] = []
    lock = threading.Lock()

    def writer(label: str) -> None:
        try:
            race(label)
        except BaseException as exc:
            errors.append(exc)
            read_done.abort()
            round_done.abort()

    def race(label: str) -> None:
        mine = DirectShadowClient(db, clock)
        for _ in range(rounds):
            version = mine.get("pump")["version"]
            read_done.wait()
            try:
                mine.update("pump", desired={"n": version, "by": label}, version=version)
            except ConflictError:
                with lock:
                    conflicts.append(version)
            else:
                with lock:
                    won.append((version, label))
            round_done.wait()
        mine.close()

    threads = [threading.Thread(target=writer, args=(x,)) for x in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(v for v, _ in won) == list(range(1, rounds + 1))
    assert sorted(conflicts) == sorted(list(range(1, rounds + 1)) * 2)
    check = DirectShadowClient(db, clock)
    final = check.get("pump")
    assert final["version"] == rounds + 1
    assert final["state"]["desired"]["by"] == max(won)[1]
    check.close()


def test_tombstone_keeps_the_version_for_48_hours_only(tmp_path: Path):
    clock = ManualClock(0)
    api = DirectShadowClient(tmp_path / "s.db", clock)
    for i in range(5):
        api.update("pump", reported={"i": i})
    api.delete("pump")
    store = ShadowStore(tmp_path / "s.db")
    assert store.load("pump", None, int(clock.now())).missing_version == 5
    assert store.load("pump", None, TOMBSTONE_SECONDS).missing_version == 0
    store.close()
    clock.advance(TOMBSTONE_SECONDS)
    assert api.update("pump", reported={"i": 0})["version"] == 1
    api.close()


def test_documents_survive_reopening_the_file(tmp_path: Path):
    clock = ManualClock()
    first = DirectShadowClient(tmp_path / "s.db", clock)
    first.update("pump", desired={"mode": "safe"}, name="config")
    first.close()
    again = DirectShadowClient(tmp_path / "s.db", clock)
    assert again.get("pump", name="config")["state"]["desired"] == {"mode": "safe"}
    again.close()
