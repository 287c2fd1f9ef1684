"""``bench ingest``: end-to-end readings/s, publisher -> broker -> rules runner -> batcher ->
CSV files on disk, with every reading counted (lost, duplicated) and, in the same run, the
raw broker pub->sub rate as the baseline.

Processes: the broker, the rules runner (rules + batcher + spool, as ``plantwatch up`` runs
it), and this process publishing. A reading is one sample (one timestamp of one asset).
``runner_cpu_us_per_message`` is the runner process's CPU from the first publish to the end
of its stop; ``threads_cpu_us_per_message`` splits it by thread.

The payload is by default what the edge agent sends for a simulated pump: its default
``samples_per_message`` (20) samples of the pump's 10 sensors. ``--payload synthetic`` sends
``--sensors`` made-up values instead (the figures before the pump payload were taken so).

``--in-process`` leaves out the broker and paho: it hands the encoded messages, in the
runner's batches, to the rules runner's worker path (rules, batcher, SQLite spool, CSV files
with fsync) in this process, on a manual clock that follows the data, so windows close and
are written as they would live. It reports the runner's cost per message, which does not
depend on the broker, and is steadier under machine load than the end-to-end rate. Its
baseline is ``json.loads`` of the same payloads: the least any Python consumer pays to read
a message.
"""

from __future__ import annotations

import argparse
import csv
import io
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cloud.bench.proc_cpu import threads_cpu_s
from cloud.cli import status
from edge.cliargs import positive_int

AGENT_SAMPLES_PER_MESSAGE = 20
"""``edge.agent.AgentConfig.samples_per_message``'s default (a test keeps them equal)."""
IN_PROCESS_END_S = 1_699_999_200
"""Where the in-process run's data ends: a fixed time on a window boundary, so every run
does the same work."""
FLOOR_READINGS = 40_000
"""Readings decoded and rendered for the floor: 2,000 of the agent's messages, enough for
a per-message figure without doubling the bench's time."""
FLOOR_PASSES = 3
"""Passes over them, the median counting: one pass is at the mercy of a noisy machine."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--readings", type=positive_int, default=200_000, help="samples to publish")
    parser.add_argument(
        "--per-message",
        type=positive_int,
        default=AGENT_SAMPLES_PER_MESSAGE,
        help="samples per MQTT message (default 20, the edge agent's samples_per_message)",
    )
    parser.add_argument(
        "--assets", type=positive_int, default=4, help="publishing assets (default 4)"
    )
    parser.add_argument(
        "--payload",
        choices=("pump", "synthetic"),
        default="pump",
        help="pump: a simulated pump's 10 sensors, as the edge agent sends them (default); "
        "synthetic: --sensors made-up values",
    )
    parser.add_argument(
        "--sensors", type=positive_int, default=6, help="values per synthetic sample (default 6)"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="no broker: time the rules runner's batch path in this process (us per message)",
    )
    parser.add_argument(
        "--broker",
        choices=("amqtt", "mosquitto"),
        default="amqtt",
        help="embedded broker (default amqtt)",
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=1, help="end-to-end runs; median counts"
    )
    parser.add_argument(
        "--baseline-messages",
        type=positive_int,
        default=10_000,
        help="raw QoS 1 messages for the baseline (default 10000)",
    )
    parser.add_argument(
        "--spool",
        choices=("file", "memory"),
        default="file",
        help="batcher spool: a SQLite file or memory (default file)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the CSV files and spool")
    parser.add_argument(
        "--runners",
        type=positive_int,
        default=1,
        help="rules runner processes; >1 uses a $share group and a shared spool (mosquitto)",
    )
    parser.add_argument(
        "--client",
        choices=("auto", "paho", "crt"),
        default="auto",
        help="the rules runner's MQTT client, as for rules run (default auto: crt on "
        "mosquitto, paho on amqtt)",
    )
    parser.add_argument(
        "--archive",
        action="store_true",
        help="also write the Parquet archive, as plantwatch up does",
    )


def _runner_main(
    url: str,
    root: str,
    spool: str | None,
    expected: int,
    index: int,
    runners: int,
    ready: Any,
    go: Any,
    counts: Any,
    finished: Any,
    out: Any,
    archive: bool = False,
    client: str = "auto",
    client_id: str = "bench-rules",
    group: str = "bench",
) -> None:
    from cloud import wire_decoder
    from cloud.adapters.local import FsObjectStore
    from cloud.batcher import Batcher, BatcherConfig
    from cloud.rules.runner import RulesRunner, load_rules
    from edge.clock import SystemClock

    clock = SystemClock()
    batcher = Batcher(
        FsObjectStore(root),  # fsync on, as plantwatch up runs it
        BatcherConfig(grace_s=0),
        clock,
        spool,
        shared_spool=runners > 1,
        decode=wire_decoder.decode_rows,  # as plantwatch up runs it
        dumps=wire_decoder.dumps,
        archive=archive,
    )
    writer = None
    if archive:
        from cloud.archive import ArchivePolicy, ArchiveWriter

        # plantwatch up's policy: the size bound flushes during the run, the rest at close
        writer = ArchiveWriter(Path(root) / "archive", batcher.spool, clock, ArchivePolicy()).open()
        writer.start()

    def count(acked: int) -> None:
        # the worker's, after each batch: whichever runner completes the count wakes all
        with counts.get_lock():
            counts[index] += acked
            if sum(counts) >= expected:
                finished.set()

    runner = RulesRunner(
        url,
        load_rules(),
        batcher,
        clock,
        client_id=client_id,
        shared_group=group if runners > 1 else None,
        client=client,
        on_batch=count,
    )
    runner.start()
    ready.release()
    go.wait()
    cpu_at_go = time.process_time()
    tasks_at_go = threads_cpu_s()
    deadline_s = max(120.0, expected / 200)
    complete = finished.wait(deadline_s)  # no polling: the harness costs ~nothing
    done_at = time.time()
    tasks_at_done = threads_cpu_s()
    cpu_at_done = time.process_time()
    labels = _thread_labels(runner.thread_ids)
    by_thread = _by_thread(tasks_at_go, tasks_at_done, labels, cpu_at_done - cpu_at_go)
    thread_cpu: dict[str, float | None] = {
        name: tasks_at_done[tid][1] if tid in tasks_at_done else None
        for name, tid in runner.thread_ids.items()
    }
    if runner.client_kind == "crt":
        # awscrt's native event-loop threads (its client runs on one of them) are the
        # network side; only the runner uses awscrt in this process
        thread_cpu["network"] = sum(
            seconds for name, seconds in tasks_at_done.values() if name.startswith("AwsEventLoop")
        )
    runner.stop()
    archived, drain_s = 0, 0.0
    if writer is not None:
        began = time.time()
        writer.close()
        drain_s = time.time() - began
        archived = writer.counts["readings_written"]
    cpu_s = time.process_time() - cpu_at_go  # everything: the run, the last flush, the drain
    by_thread["stop"] = time.process_time() - cpu_at_done
    out.put(
        {
            "done_at": done_at,
            "complete": complete,
            "deadline_s": deadline_s,
            "cpu_s": cpu_s,
            "archive_drain_s": drain_s,
            "drained_at": time.time(),
            "stats": batcher.stats,
            "failures": runner.failures,
            "batches": runner.batches,
            "threads_cpu_s": thread_cpu,
            "by_thread_cpu_s": by_thread,
            "client": runner.client_kind,
            "archived_values": archived,
        }
    )
    batcher.close()


def _thread_labels(runner_threads: dict[str, int]) -> dict[int, str]:
    """The runner's own threads by role; this process's main thread is the bench's
    harness (it only waits for the count); other Python threads by their ``threading``
    name (Python 3.11 does not hand it to the kernel), without its number."""
    labels = {tid: name for name, tid in runner_threads.items()}
    main_id = threading.main_thread().native_id
    if main_id is not None:
        labels.setdefault(main_id, "harness")
    for thread in threading.enumerate():
        # awscrt's event loops call into Python as "Dummy" threads: their kernel name tells
        if thread.native_id is not None and not isinstance(thread, threading._DummyThread):
            labels.setdefault(thread.native_id, thread.name.rstrip(_NUMBERING))
    return labels


_NUMBERING = "0123456789 _-"


def _by_thread(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    labels: dict[int, str],
    process_s: float,
) -> dict[str, float]:
    """CPU seconds each thread used between two readings, by role (see
    :func:`_thread_labels`; awscrt's event loops are the ``network``, any other thread goes
    by its kernel name without digits); ``ended_threads`` is what the process used in
    threads that are gone by the second reading, so the parts add up to *process_s*."""
    split: dict[str, float] = {}
    for tid, (name, seconds) in after.items():
        label = labels.get(tid)
        if label is None:
            label = "network" if name.startswith("AwsEventLoop") else name.rstrip(_NUMBERING)
        used = seconds - before.get(tid, (name, 0.0))[1]
        split[label] = split.get(label, 0.0) + used
    split["ended_threads"] = max(0.0, process_s - sum(split.values()))
    return split


def _messages(
    n_readings: int,
    per_message: int,
    assets: int,
    sensors: int,
    end_s: int,
    payload: str = "synthetic",
) -> list:
    """The messages a fleet of *assets* publishes at one sample a second up to *end_s*."""
    from edge import wire

    per_asset = n_readings // assets
    start_ms = (end_s - per_asset) * 1000
    out = []
    for a in range(assets):
        asset = f"asset-{a}"
        if payload == "pump":
            samples = _pump_samples(asset, per_asset, end_s)
        else:
            samples = [
                wire.Sample(
                    start_ms + i * 1000,
                    {f"s{k}": round(100 * k + (i % 997) * 0.01, 2) for k in range(sensors)},
                )
                for i in range(per_asset)
            ]
        out.extend(wire.batch_samples("b1", asset, "bench", 0, samples, per_message))
    # interleave assets, as a fleet publishes
    out.sort(key=lambda m: (m.seq, m.asset))
    return out


def _pump_samples(asset: str, count: int, end_s: int) -> list:
    """*count* one-second samples of a simulated pump ending at *end_s*, as the agent
    publishes them (the simulator's values and sensor names)."""
    from simulator.asset import AssetSpec
    from simulator.fleet import FleetSimulator

    fleet = FleetSimulator(
        [AssetSpec(asset, "pump", seed=1)], None, start=end_s - count, rate_s=1.0
    )
    return fleet.step(end_s)[asset]


def _count_rows(root: Path) -> tuple[int, int]:
    rows = 0
    unique: set[tuple[str, str]] = set()
    # the bench publishes as a site other than the default, which has its own folder
    for path in sorted((root / "input").rglob("*.csv")):
        asset = path.name.rsplit("_", 1)[0]
        reader = csv.reader(io.StringIO(path.read_text()))
        next(reader)
        for row in reader:
            rows += 1
            unique.add((asset, row[0]))
    return rows, len(unique)


def _one_run(url: str, args: argparse.Namespace, runner_id: str | None = None) -> dict[str, Any]:
    import paho.mqtt.client as mqtt

    from cloud.adapters.local.mqtt_url import parse_broker_url, stop_client
    from edge import wire

    messages = _messages(
        args.readings,
        args.per_message,
        args.assets,
        args.sensors,
        int(time.time()),
        getattr(args, "payload", "synthetic"),
    )
    payloads = [(m.topic, wire.encode(m)) for m in messages]
    readings = sum(len(m.samples) for m in messages)
    workdir = Path(tempfile.mkdtemp(prefix="plantwatch-bench-ingest-"))
    ctx = mp.get_context("spawn")
    ready, go, finished, out = ctx.Semaphore(0), ctx.Event(), ctx.Event(), ctx.Queue()
    counts = ctx.Array("q", args.runners)
    # names of this run only: a session left by an earlier run must not share its group
    tag = time.time_ns()
    client_ids = [runner_id or f"bench-rules-{i}-{tag}" for i in range(args.runners)]
    spool = str(workdir / "spool.db") if args.spool == "file" or args.runners > 1 else None
    procs = [
        ctx.Process(
            target=_runner_main,
            args=(
                url,
                str(workdir / "bucket"),
                spool,
                len(payloads),
                i,
                args.runners,
                ready,
                go,
                counts,
                finished,
                out,
                getattr(args, "archive", False),
                getattr(args, "client", "auto"),
                client_ids[i],
                f"bench-{tag}",
            ),
            daemon=True,
        )
        for i in range(args.runners)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        if not ready.acquire(timeout=60):
            for proc in procs:
                proc.kill()
            raise RuntimeError("rules runner did not start")
    address = parse_broker_url(url)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-ingest-{time.time_ns()}")
    pub.max_inflight_messages_set(100)
    pub.max_queued_messages_set(0)
    pub.connect(address.host, address.port, keepalive=60)
    pub.loop_start()
    go.set()
    start = time.time()
    last = None
    for topic, body in payloads:
        last = pub.publish(topic, body, qos=1)
    if last is not None:
        last.wait_for_publish(timeout=300)
    published_at = time.time()
    results = [out.get(timeout=max(300.0, len(payloads) / 100)) for _ in procs]
    for proc in procs:
        proc.join(30)
    stop_client(pub)
    _end_sessions(address, client_ids)
    elapsed = max(r["done_at"] for r in results) - start
    drained = max(r["drained_at"] for r in results) - start
    rows, unique = _count_rows(workdir / "bucket")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "readings": readings,
        "messages": len(payloads),
        "payload_bytes": round(statistics.mean(len(b) for _, b in payloads)),
        "seconds": round(elapsed, 3),
        "publish_seconds": round(published_at - start, 3),
        "readings_per_s": round(readings / elapsed, 1),
        "messages_per_s": round(len(payloads) / elapsed, 1),
        "drained_s": round(drained, 3),
        "runner_cpu_us_per_reading": round(
            1e6 * sum(r["cpu_s"] for r in results) / max(readings, 1), 2
        ),
        "runner_cpu_us_per_message": round(
            1e6 * sum(r["cpu_s"] for r in results) / max(len(payloads), 1), 1
        ),
        "archived_values": sum(r["archived_values"] for r in results),
        "archive_drain_s": round(max(r["archive_drain_s"] for r in results), 3),
        "rows_written": rows,
        "lost": readings - unique,
        "duplicated": rows - unique,
        "deadline_passed": not all(r["complete"] for r in results),
        "files_written": sum(r["stats"]["files_written"] for r in results),
        "quarantined": sum(r["stats"]["quarantined"] for r in results),
        "runner_failures": sum(r["failures"] for r in results),
        "client": results[0]["client"],
        **_thread_split(results, len(payloads)),
        "threads_cpu_us_per_message": _per_thread(results, len(payloads)),
        "messages_per_batch": round(len(payloads) / max(sum(r["batches"] for r in results), 1), 1),
        "messages_per_runner": [r["stats"]["accepted"] + r["stats"]["duplicates"] for r in results],
        **({"workdir": str(workdir)} if args.keep else {}),
    }


def _end_sessions(address: Any, client_ids: list[str]) -> None:
    """Discard the runners' persistent sessions once they have stopped.

    The runner keeps its session on purpose (what arrives while it is down waits for it).
    A bench runner's client id is never used again, so its session would stay subscribed:
    the broker would queue every later run's and baseline's messages for it, and a shared
    group's dead members would take their share of the next run's messages.
    """
    import paho.mqtt.client as mqtt

    from cloud.adapters.local.mqtt_url import stop_client

    for client_id in client_ids:
        cleaner = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True
        )
        address.apply(cleaner)
        connected = threading.Event()
        cleaner.on_connect = lambda *_a, done=connected: done.set()
        cleaner.connect(address.host, address.port, keepalive=10)
        cleaner.loop_start()
        connected.wait(10)
        stop_client(cleaner)


def _in_process_run(payloads: list[tuple[str, bytes]], args: argparse.Namespace) -> dict[str, Any]:
    """One pass of the runner's worker path over *payloads*; seconds spent, split."""
    import paho.mqtt.client as mqtt

    from cloud import wire_decoder
    from cloud.adapters.local import FsObjectStore
    from cloud.batcher import Batcher, BatcherConfig
    from cloud.rules.runner import RulesRunner, load_rules
    from edge import wire
    from edge.clock import ManualClock

    workdir = Path(tempfile.mkdtemp(prefix="plantwatch-bench-ingest-"))
    clock = ManualClock(IN_PROCESS_END_S)
    batcher = Batcher(
        FsObjectStore(workdir / "bucket"),  # fsync on, as plantwatch up runs it
        BatcherConfig(grace_s=0),
        clock,
        str(workdir / "spool.db"),
        decode=wire_decoder.decode_rows,
        dumps=wire_decoder.dumps,
        archive=getattr(args, "archive", False),
    )
    runner = RulesRunner("mqtt://127.0.0.1:1", load_rules(), batcher, clock)  # never connects
    items = []
    for topic, body in payloads:
        msg = mqtt.MQTTMessage(mid=1, topic=topic.encode())
        msg.payload, msg.qos = body, 1
        items.append((0, msg))
    # the data's own time when each batch arrives: windows close as they would live
    stamps = [wire.decode(body).samples[-1].ts_ms / 1000 for _, body in payloads]
    intake_s = flush_s = 0.0
    acked = 0
    cpu_at_start = time.process_time()
    for first in range(0, len(items), runner.max_batch):
        batch = items[first : first + runner.max_batch]
        clock.set(max(stamps[first : first + runner.max_batch]) + 1)
        began = time.perf_counter()
        acked += len(runner.process(batch))
        flushed = time.perf_counter()
        batcher.flush_due()
        intake_s += flushed - began
        flush_s += time.perf_counter() - flushed
    began = time.perf_counter()
    batcher.flush_all()
    flush_s += time.perf_counter() - began
    cpu_s = time.process_time() - cpu_at_start
    stats = batcher.stats
    batcher.close()
    rows, unique = _count_rows(workdir / "bucket")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "intake_s": intake_s,
        "flush_s": flush_s,
        "cpu_s": cpu_s,
        "acked": acked,
        "rows": rows,
        "unique": unique,
        "files_written": stats["files_written"],
        "quarantined": stats["quarantined"],
        **({"workdir": str(workdir)} if args.keep else {}),
    }


def _per_thread(results: list[dict[str, Any]], messages: int) -> dict[str, float]:
    """``runner_cpu_us_per_message`` split by thread (summed over the runners): the
    ``network``, ``worker`` and ``flush`` threads, the bench's ``harness`` (the runner
    process's main thread, which waits for the count), the object store's ``store-fsync``
    threads, ``ended_threads`` (threads gone before the count was reached), ``stop`` (the
    runner's stop: the last flush, closing the client and the archive) and any other
    thread by name. The parts add up to the total."""
    total: dict[str, float] = {}
    for result in results:
        for name, seconds in result["by_thread_cpu_s"].items():
            total[name] = total.get(name, 0.0) + seconds
    return {name: round(1e6 * s / max(messages, 1), 1) for name, s in sorted(total.items())}


def _thread_split(results: list[dict[str, Any]], messages: int) -> dict[str, float]:
    """Runner CPU per message spent in the MQTT client's network thread (paho's, or awscrt's
    event-loop thread) and in the rules worker (:func:`_per_thread` splits the rest)."""
    split: dict[str, float] = {}
    for name in ("network", "worker"):
        seconds = [r["threads_cpu_s"].get(name) for r in results]
        if seconds and all(s is not None for s in seconds):
            split[f"{name}_cpu_us_per_message"] = round(1e6 * sum(seconds) / max(messages, 1), 1)
    return split


def _floor(
    args: argparse.Namespace, client: str, floors: list[Any], runner_us: float
) -> dict[str, Any]:
    """The least a Python rules runner pays per message with these libraries, to set its
    CPU against: the MQTT client receiving and acknowledging (measured in a subscriber that
    does nothing else), the wire decode and the CSV render, with no spool, file or fsync.
    Issue 15 asks 40 us per message of the runner; this says how much of that the
    libraries take before the runner's own work begins."""
    from cloud.batcher.csv_text import fragment
    from cloud.wire_decoder import decode_rows, dumps
    from edge import wire

    messages = _messages(
        min(args.readings, FLOOR_READINGS),
        args.per_message,
        args.assets,
        args.sensors,
        int(time.time()),
        getattr(args, "payload", "synthetic"),
    )
    bodies = [wire.encode(m) for m in messages]
    decode_s, render_s = [], []
    for _ in range(FLOOR_PASSES):
        began = time.thread_time()
        decoded = [decode_rows(body) for body in bodies]
        middle = time.thread_time()
        for r in decoded:
            fragment(r.rows, dumps, columns=r.columns, table=r.table, times=r.times)
        decode_s.append(middle - began)
        render_s.append(time.thread_time() - middle)
    network = statistics.median(f.subscriber_cpu_us_per_message for f in floors)
    decode = 1e6 * statistics.median(decode_s) / len(bodies)
    render = 1e6 * statistics.median(render_s) / len(bodies)
    total = network + decode + render
    return {
        "what": (
            "a subscriber on the runner's MQTT client that only acknowledges (CPU per "
            "message, median of runs), plus the wire decode and the CSV render of the same "
            "payloads: no spool, no file, no fsync"
        ),
        "client": client,
        "network_cpu_us_per_message": round(network, 1),
        "decode_us_per_message": round(decode, 1),
        "render_us_per_message": round(render, 1),
        "total_us_per_message": round(total, 1),
        "runner_over_floor": round(runner_us / total, 3) if total else None,
    }


def _json_loads_s(payloads: list[tuple[str, bytes]]) -> float:
    import json

    began = time.perf_counter()
    for _, body in payloads:
        json.loads(body)
    return time.perf_counter() - began


def run_in_process(args: argparse.Namespace) -> int:
    from cloud.cli.output import print_report, stderr
    from edge import wire

    messages = _messages(
        args.readings,
        args.per_message,
        args.assets,
        args.sensors,
        IN_PROCESS_END_S,
        args.payload,
    )
    payloads = [(m.topic, wire.encode(m)) for m in messages]
    n = len(payloads)
    readings = sum(len(m.samples) for m in messages)
    runs, base_runs = [], []
    for i in range(args.repeat):  # alternate, so both see the same machine load
        figures = _in_process_run(payloads, args)
        runs.append(figures)
        base_runs.append(_json_loads_s(payloads))
        total = figures["intake_s"] + figures["flush_s"]
        stderr.print(
            f"in-process run {i + 1}: {1e6 * total / n:,.1f} us per message "
            f"(intake {1e6 * figures['intake_s'] / n:,.1f}, "
            f"flush {1e6 * figures['flush_s'] / n:,.1f}), lost {readings - figures['unique']}",
            markup=False,
        )
    median = sorted(runs, key=lambda r: r["intake_s"] + r["flush_s"])[len(runs) // 2]
    total_s = median["intake_s"] + median["flush_s"]
    base_s = statistics.median(base_runs)
    report: dict[str, Any] = {
        "mode": "in_process",
        "us_per_message": round(1e6 * total_s / n, 2),
        "intake_us_per_message": round(1e6 * median["intake_s"] / n, 2),
        "flush_us_per_message": round(1e6 * median["flush_s"] / n, 2),
        "cpu_us_per_message": round(1e6 * statistics.median(r["cpu_s"] for r in runs) / n, 2),
        "readings_per_s": round(readings / total_s, 1),
        "messages_per_s": round(n / total_s, 1),
        "lost": sum(readings - r["unique"] for r in runs),
        "duplicated": sum(r["rows"] - r["unique"] for r in runs),
        "readings": readings,
        "messages": n,
        "per_message": args.per_message,
        "payload": args.payload,
        "payload_bytes": round(statistics.mean(len(b) for _, b in payloads)),
        "files_written": median["files_written"],
        "runs_us_per_message": [round(1e6 * (r["intake_s"] + r["flush_s"]) / n, 2) for r in runs],
        "baseline": {
            "what": "json.loads of the same payloads, nothing else (median of runs)",
            "us_per_message": round(1e6 * base_s / n, 2),
            "messages_per_s": round(n / base_s, 1),
            "runs_us_per_message": [round(1e6 * s / n, 2) for s in base_runs],
        },
        "ratio": round(base_s / total_s, 3),
    }
    print_report(report, as_json=args.json)
    return status.SUCCESS if report["lost"] == 0 and report["duplicated"] == 0 else status.FAILED


def run(args: argparse.Namespace) -> int:
    from cloud.bench.mqtt_load import pubsub_rate
    from cloud.cli.output import print_report, stderr
    from cloud.runtime.broker import EmbeddedBroker
    from edge.errors import UserError

    if args.in_process:
        if args.runners > 1:
            raise UserError("--in-process runs one runner; leave out --runners")
        return run_in_process(args)
    if args.runners > 1 and args.broker != "mosquitto":
        raise UserError(
            "--runners > 1 needs --broker mosquitto (amqtt has no shared subscriptions)"
        )
    runs = []
    baselines = []
    floors = []
    # amqtt as plantwatch up runs it: a reading is PUBACKed once the runner has spooled it
    # (its session ends after each run, so one client id serves every run)
    durable = f"bench-rules-{os.getpid()}" if args.broker == "amqtt" else None
    with EmbeddedBroker(args.broker, durable_subscriber=durable) as broker:
        # baseline and end-to-end runs alternate, so both see the same machine load
        for i in range(args.repeat):
            figures = _one_run(broker.url, args, durable)
            runs.append(figures)
            stderr.print(
                f"ingest run {i + 1}: {figures['readings_per_s']:,.0f} readings/s, "
                f"{figures['messages_per_s']:,.0f} msgs/s, lost {figures['lost']}, "
                f"duplicated {figures['duplicated']}"
            )
            if figures["deadline_passed"]:
                stderr.print(
                    f"ingest run {i + 1}: the runner stopped waiting before every message "
                    f"arrived; the {figures['lost']} readings counted as lost had not landed "
                    "by then (on a loaded machine, a deadline rather than data lost)"
                )
            base = pubsub_rate(broker.url, args.baseline_messages, figures["payload_bytes"], qos=1)
            baselines.append(base)
            stderr.print(
                f"baseline run {i + 1}: {base.msgs_per_s:,.0f} msgs/s pub->sub "
                f"({figures['payload_bytes']} B, {base.received}/{base.sent} received)"
            )
            bare = pubsub_rate(
                broker.url,
                args.baseline_messages,
                figures["payload_bytes"],
                qos=1,
                subscriber_client=figures["client"],
            )
            floors.append(bare)
            stderr.print(
                f"floor run {i + 1}: a {figures['client']} subscriber that only acknowledges, "
                f"{bare.subscriber_cpu_us_per_message:,.1f} us CPU per message"
            )
    payload_bytes = runs[0]["payload_bytes"]
    base_rate = statistics.median(b.msgs_per_s for b in baselines)
    median = sorted(runs, key=lambda r: r["readings_per_s"])[len(runs) // 2]
    runner_cpu = statistics.median(r["runner_cpu_us_per_message"] for r in runs)
    report: dict[str, Any] = {
        "broker": args.broker,
        "client": median["client"],
        "readings_per_s": median["readings_per_s"],
        "messages_per_s": median["messages_per_s"],
        "runner_cpu_us_per_message": runner_cpu,
        "runner_cpu_us_per_reading": statistics.median(
            r["runner_cpu_us_per_reading"] for r in runs
        ),
        **{
            key: statistics.median(r[key] for r in runs)
            for key in ("network_cpu_us_per_message", "worker_cpu_us_per_message")
            if all(key in r for r in runs)
        },
        "threads_cpu_us_per_message": {
            name: statistics.median(r["threads_cpu_us_per_message"].get(name, 0.0) for r in runs)
            for name in sorted({n for r in runs for n in r["threads_cpu_us_per_message"]})
        },
        "lost": sum(r["lost"] for r in runs),
        "duplicated": sum(r["duplicated"] for r in runs),
        "deadline_passed": any(r["deadline_passed"] for r in runs),
        "readings": median["readings"],
        "messages": median["messages"],
        "per_message": args.per_message,
        "payload_bytes": payload_bytes,
        "spool": args.spool,
        "runners": args.runners,
        "end_to_end_ack": durable is not None,
        "runs": runs,
        "baseline": {
            "what": "raw broker pub->sub, same payload size, QoS 1 (median of runs)",
            "msgs_per_s": round(base_rate, 1),
            "readings_per_s": round(base_rate * args.per_message, 1),
            "runs_msgs_per_s": [round(b.msgs_per_s, 1) for b in baselines],
        },
        "ratio": round(median["messages_per_s"] / base_rate, 3) if base_rate else None,
        "floor": _floor(args, median["client"], floors, runner_cpu),
    }
    print_report(report, as_json=args.json)
    return status.SUCCESS if report["lost"] == 0 and report["duplicated"] == 0 else status.FAILED
