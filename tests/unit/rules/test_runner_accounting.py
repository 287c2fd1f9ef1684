"""What ``bench ingest`` reads of the runner: its threads by role (the CPU split per thread)
and a callback per batch (the bench waits on it rather than polling the batcher)."""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt
import pytest

from cloud.adapters.local import InMemoryObjectStore
from cloud.batcher import Batcher, BatcherConfig
from cloud.bench.ingest import _by_thread, _thread_labels
from cloud.bench.proc_cpu import threads_cpu_s
from cloud.rules.runner import RulesRunner, load_rules
from edge import wire
from edge.clock import ManualClock

T0 = 1_700_000_000


def message(seq: int, asset: str = "pump-1") -> mqtt.MQTTMessage:
    sample = {"ts": T0 * 1000, "values": {"flow": 1.5}}
    body = {"v": wire.SCHEMA_VERSION, "site": "s1", "asset": asset, "sender": "e", "seq": seq}
    msg = mqtt.MQTTMessage(mid=seq, topic=b"dt/plantwatch/s1/pump-1/telemetry")
    msg.payload, msg.qos = json.dumps({**body, "samples": [sample]}).encode(), 1
    return msg


def test_the_worker_reports_each_batch_it_acknowledged() -> None:
    seen: list[int] = []
    clock = ManualClock(T0)
    batcher = Batcher(InMemoryObjectStore(), BatcherConfig(), clock)
    runner = RulesRunner("mqtt://127.0.0.1:1", load_rules(), batcher, clock, on_batch=seen.append)
    # a redelivery and a message for another asset (quarantined) are acknowledged too
    runner._process([(0, message(1)), (0, message(1)), (0, message(2, asset="other"))])
    runner._process([(0, message(3))])
    assert seen == [3, 1]
    assert batcher.stats["accepted"] == 2 and batcher.stats["duplicates"] == 1


def test_a_batch_whose_commit_fails_reports_none_acknowledged() -> None:
    seen: list[int] = []
    clock = ManualClock(T0)
    batcher = Batcher(InMemoryObjectStore(), BatcherConfig(), clock)
    batcher.spool.close()  # every spool write now fails
    runner = RulesRunner("mqtt://127.0.0.1:1", load_rules(), batcher, clock, on_batch=seen.append)
    runner._process([(0, message(1))])
    assert seen == [0]


def test_threads_are_read_by_native_id_and_named_by_role_or_threading_name() -> None:
    started, stop = threading.Event(), threading.Event()

    def spin() -> None:
        started.set()
        stop.wait(5)

    thread = threading.Thread(target=spin, name="store-fsync_3")
    thread.start()
    started.wait(5)
    try:
        tasks = threads_cpu_s()
        labels = _thread_labels({"worker": 12345})
    finally:
        stop.set()
        thread.join()
    assert thread.native_id in tasks and tasks[threading.main_thread().native_id][1] > 0
    assert labels[thread.native_id] == "store-fsync"
    assert labels[12345] == "worker" and labels[threading.main_thread().native_id] == "harness"


def test_the_split_by_thread_adds_up_to_the_process() -> None:
    before = {1: ("python", 1.0), 2: ("rules-worker", 2.0), 3: ("AwsEventLoop 1", 0.5)}
    after = {
        1: ("python", 1.1),
        2: ("rules-worker", 3.0),
        3: ("AwsEventLoop 1", 0.9),
        4: ("AwsEventLoop 2", 0.1),  # started after the first reading
        5: ("store-fsync_0", 0.2),
    }
    labels = _thread_labels({"worker": 2}) | {1: "harness"}
    split = _by_thread(before, after, labels, process_s=2.0)
    assert split == pytest.approx(
        {
            "harness": 0.1,
            "worker": 1.0,
            "network": 0.4 + 0.1,  # awscrt's event loops, however many
            "store-fsync": 0.2,  # any other thread by its name without the number
            "ended_threads": 2.0 - 1.8,  # the process's time the live threads do not hold
        }
    )
