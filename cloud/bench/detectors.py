"""``plantwatch bench detectors``: inputs/s through the default detector and alarm models.

Runs the shipped ``equipment_anomaly`` detector model and its companion ``anomaly_score``
alarm model (both fed each message, as the local stack routes them) over a stream of
AnomalyResults messages spread over many assets (so instances alarm, recover, notify and
publish), once with InMemoryStateStore and once with SqliteStateStore (the local runtime's
store, one write per message per model). ``without_alarms`` is the detector model alone on
SQLite, for the cost of evaluating alarms too.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cloud.cli import status
from cloud.cli.output import print_report, stderr
from edge.cliargs import non_negative_int, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=positive_int, default=5000, help="messages per run")
    parser.add_argument("--assets", type=positive_int, default=20, help="distinct key values")
    parser.add_argument(
        "--repeat", type=positive_int, default=3, help="runs per store; median reported"
    )
    parser.add_argument("--seed", type=non_negative_int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--timer-instances",
        type=positive_int,
        default=2000,
        help="instances whose heartbeat expires",
    )


def _messages(n: int, assets: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        anomalous = rng.random() < 0.4
        out.append(
            {
                "asset": f"pump-{i % assets:03d}",
                "thing": f"pump-{i % assets:03d}",
                "timestamp": f"2026-01-01T00:00:{i % 60:02d}.000000",
                "prediction": int(anomalous),
                "prediction_reason": "ANOMALY_DETECTED" if anomalous else "NO_ANOMALY_DETECTED",
                "anomaly_score": round(rng.uniform(0.5, 1.0) if anomalous else rng.random() / 2, 5),
                "top_sensor": "pump\\bearing_vibration_x",
                "top_share": 0.61,
                "top_sensors": "pump\\bearing_vibration_x=0.61;pump\\motor_current=0.22",
                "stale_after_s": 600,
            }
        )
    return out


def _run_once(
    store_kind: str, messages: list[dict[str, Any]], workdir: Path, *, alarms: bool = True
) -> dict[str, float]:
    from cloud.adapters.local import (
        InMemoryNotifier,
        InMemoryPublisher,
        InMemoryStateStore,
        SqliteStateStore,
    )
    from cloud.detectors import (
        DetectorEngine,
        default_detector_paths,
        load_detector_model,
        load_input,
    )
    from cloud.detectors.actions import LocalActionSink
    from cloud.detectors.alarms import AlarmEngine, NotificationLimiter, load_alarm_model
    from cloud.detectors.alarms.model import default_alarm_path
    from cloud.detectors.router import MessageRouter
    from edge.clock import ManualClock

    model_path, input_path = default_detector_paths()
    model, definition = load_detector_model(model_path), load_input(input_path)
    store: Any
    if store_kind == "sqlite":
        store = SqliteStateStore(workdir / f"state-{time.perf_counter_ns()}.db")
    else:
        store = InMemoryStateStore()
    notifier, publisher = InMemoryNotifier(), InMemoryPublisher()
    clock = ManualClock()
    # With alarms, the runtime's notification budget applies, as in plantwatch up.
    limiter = NotificationLimiter(store) if alarms else None
    sink = LocalActionSink(notifier, publisher, limiter=limiter)
    engines: list[Any] = [DetectorEngine(model, [definition], store, clock, sink)]
    if alarms:
        alarm_model = load_alarm_model(default_alarm_path())
        engines.append(AlarmEngine(alarm_model, [definition], store, clock, sink, limiter=limiter))
    router = MessageRouter(engines, store, clock)
    start = time.perf_counter()
    for message in messages:
        router.put_message("AnomalyResults", message)
        clock.advance(1.0)
        if alarms:
            engines[1].tick()
    seconds = time.perf_counter() - start
    if store_kind == "sqlite":
        store.close()
    return {
        "inputs_per_s": len(messages) / seconds if seconds > 0 else 0.0,
        "seconds": seconds,
        "notifications": len(notifier.sent),
        "publishes": len(publisher.published),
    }


def _timers_once(instances: int) -> float:
    """Timer evaluations/s: every instance's heartbeat expires in one ``tick``."""
    from cloud.adapters.local import InMemoryNotifier, InMemoryPublisher, InMemoryStateStore
    from cloud.detectors import (
        DetectorEngine,
        default_detector_paths,
        load_detector_model,
        load_input,
    )
    from cloud.detectors.actions import LocalActionSink
    from edge.clock import ManualClock

    model_path, input_path = default_detector_paths()
    clock = ManualClock()
    engine = DetectorEngine(
        load_detector_model(model_path),
        [load_input(input_path)],
        InMemoryStateStore(),
        clock,
        LocalActionSink(InMemoryNotifier(), InMemoryPublisher()),
    )
    for i in range(instances):
        engine.put_message(
            "AnomalyResults",
            {"asset": f"a{i}", "timestamp": "t", "prediction": 0, "stale_after_s": 3600},
        )
    clock.advance(3601)
    start = time.perf_counter()
    fired = engine.tick()
    seconds = time.perf_counter() - start
    return fired / seconds if seconds > 0 else 0.0


def run(args: argparse.Namespace) -> int:
    messages = _messages(args.messages, args.assets, args.seed)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pw-bench-detectors-") as tmp:
        for kind in ("memory", "sqlite"):
            runs = [_run_once(kind, messages, Path(tmp)) for _ in range(max(1, args.repeat))]
            rates = [r["inputs_per_s"] for r in runs]
            results[kind] = {
                "inputs_per_s": round(statistics.median(rates), 1),
                "runs_inputs_per_s": [round(r, 1) for r in rates],
                "notifications": runs[0]["notifications"],
                "shadow_publishes": runs[0]["publishes"],
            }
            stderr.print(
                f"{kind}: {results[kind]['inputs_per_s']:.0f} inputs/s (median of {len(runs)})"
            )
        alone = [
            _run_once("sqlite", messages, Path(tmp), alarms=False)["inputs_per_s"]
            for _ in range(max(1, args.repeat))
        ]
    timer_rates = [_timers_once(args.timer_instances) for _ in range(max(1, args.repeat))]
    stderr.print(f"timers: {statistics.median(timer_rates):.0f} evaluations/s")
    document = {
        "inputs_per_s": results["sqlite"]["inputs_per_s"],
        "timer_evals_per_s": round(statistics.median(timer_rates), 1),
        "timer_instances": args.timer_instances,
        "store": "sqlite",
        "models": ["equipment_anomaly", "anomaly_score"],
        "without_alarms": {
            "inputs_per_s": round(statistics.median(alone), 1),
            "runs_inputs_per_s": [round(r, 1) for r in alone],
        },
        "messages": args.messages,
        "assets": args.assets,
        "stores": results,
        "baseline": {
            "store": "memory",
            "inputs_per_s": results["memory"]["inputs_per_s"],
            "ratio": round(results["sqlite"]["inputs_per_s"] / results["memory"]["inputs_per_s"], 3)
            if results["memory"]["inputs_per_s"]
            else None,
        },
    }
    print_report(document, as_json=args.json)
    return status.SUCCESS
