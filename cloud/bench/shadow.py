"""``plantwatch bench shadow``: accepted shadow updates per second through the local broker.

The service runs in this process (as in ``plantwatch up``); the writers run in a separate
process, one thread and one MQTT connection per thing, each waiting for its
``update/accepted`` before sending the next (the device SDK's request/response pattern).
The store-only rate (engine plus SQLite, no MQTT) is reported beside it, to show where the
time goes, and the same broker's raw paho QoS 1 pub->sub rate is the same-run ``baseline``
(each update crosses the broker twice: request in, ``update/accepted`` out).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from edge.cliargs import non_negative_int, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--updates", type=positive_int, default=2000, help="total updates (default 2000)"
    )
    parser.add_argument(
        "--things", type=positive_int, default=4, help="concurrent writers (default 4)"
    )
    parser.add_argument(
        "--broker", choices=("amqtt", "mosquitto", "auto"), default="amqtt", help="embedded broker"
    )
    parser.add_argument(
        "--baseline-messages",
        type=non_negative_int,
        default=5000,
        help="raw QoS 1 messages for the baseline (0 skips it; default 5000)",
    )
    parser.add_argument(
        "--limits",
        action="store_true",
        help="keep AWS's per-thing limits on (20 requests/s): measures throttling, not speed",
    )


def _writers(url: str, things: int, per_thing: int, out: Any) -> None:
    from cloud.shadow.client import ShadowClient
    from edge.errors import PlantwatchError

    latencies: list[float] = []
    rejected = 0
    lock = threading.Lock()

    def writer(index: int) -> None:
        nonlocal rejected
        mine: list[float] = []
        refused = 0
        with ShadowClient(url, f"bench-writer-{index}") as client:
            for i in range(per_thing):
                start = time.perf_counter()
                try:
                    client.update(f"bench-{index}", desired={"i": i, "setpoints": {"t": i % 90}})
                except PlantwatchError:
                    refused += 1
                mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)
            rejected += refused

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(things)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((time.perf_counter() - start, latencies, rejected))


def _store_rate(path: Path, updates: int) -> float:
    from cloud.shadow.operations import ShadowOperations
    from cloud.shadow.store import ShadowStore
    from edge.clock import SystemClock

    store = ShadowStore(path)
    ops = ShadowOperations(store, SystemClock())
    start = time.perf_counter()
    for i in range(updates):
        ops.update(
            "bench-store", None, {"state": {"desired": {"i": i, "setpoints": {"t": i % 90}}}}
        )
    elapsed = time.perf_counter() - start
    store.close()
    return updates / elapsed


def run(args: argparse.Namespace) -> int:
    from cloud.cli.output import print_report, stderr
    from cloud.runtime.broker import EmbeddedBroker
    from cloud.shadow.service import ShadowService
    from edge.clock import SystemClock

    things = max(1, args.things)
    per_thing = max(1, args.updates // things)
    workdir = Path(tempfile.mkdtemp(prefix="plantwatch-bench-shadow-"))
    with (
        EmbeddedBroker(args.broker) as broker,
        ShadowService(broker.url, str(workdir / "shadows.db"), SystemClock(), limits=args.limits),
    ):
        stderr.print(
            f"[dim]{things} writers x {per_thing} updates via {broker.kind} {broker.url}[/]"
        )
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        proc = ctx.Process(target=_writers, args=(broker.url, things, per_thing, out), daemon=True)
        proc.start()
        elapsed, latencies, rejected = out.get(timeout=max(120.0, per_thing * things / 20))
        proc.join(10)
        kind = broker.kind
        baseline = None
        if args.baseline_messages > 0:
            from cloud.bench.mqtt_load import pubsub_rate

            baseline = pubsub_rate(broker.url, messages=args.baseline_messages, qos=1).msgs_per_s
    store_rate = _store_rate(workdir / "store-only.db", min(args.updates, 2000))
    total = per_thing * things
    ordered = sorted(latencies)
    result = {
        "updates_per_s": round((total - rejected) / elapsed, 1),
        "updates": total,
        "rejected": rejected,
        "things": things,
        "seconds": round(elapsed, 3),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 3),
        "broker": kind,
        "limits": bool(args.limits),
        "store_only_updates_per_s": round(store_rate, 1),
    }
    if baseline:
        result["baseline"] = {"msgs_per_s": round(baseline, 1)}
        result["ratio"] = round(result["updates_per_s"] / baseline, 3)
    print_report(result, as_json=args.json)
    return 0
