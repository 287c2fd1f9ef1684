"""``plantwatch bench edge``: agent RSS and CPU at 100 readings/s, and backlog replay rate.

The steady-state figures come from the real ``plantwatch-edge run`` process (a synthetic
source inside it produces the readings), read from ``/proc``. The replay figure: an agent
queues 50,000 readings while its broker is down, then the broker starts and we time until
every reading is acknowledged. Without ``--broker`` an embedded amqtt broker is started as
a child process (``cloud.runtime.amqtt_server``; present in full installs, not on devices).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edge.cliargs import Parser, positive_float, positive_int
from edge.wire import Sample


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rate", type=positive_float, default=100.0, help="readings/s (default 100)"
    )
    parser.add_argument(
        "--duration", type=positive_float, default=10.0, help="steady-state seconds (default 10)"
    )
    parser.add_argument(
        "--backlog", type=positive_int, default=50_000, help="readings queued offline"
    )
    parser.add_argument(
        "--sensors", type=positive_int, default=10, help="sensors per reading (default 10)"
    )
    parser.add_argument(
        "--broker",
        "--broker-url",
        dest="broker",
        help="mqtt://HOST:PORT of a running broker (else embedded)",
    )


class RateSource:
    """Synthetic readings at a fixed rate, spread over the agent's assets."""

    def __init__(self, rate: float, assets: Sequence[str], sensors: int) -> None:
        self.rate = rate
        self.assets = tuple(assets)
        self.sensors = sensors
        self._start: float | None = None
        self._made = 0

    def poll(self, now: float) -> list[tuple[str, Sample]]:
        if self._start is None:
            self._start = now
        due = int((now - self._start) * self.rate) - self._made
        out = []
        for _ in range(max(0, due)):
            i = self._made
            values = {f"s{k}": round(20.0 + (i * 7 + k) % 100 / 10, 3) for k in range(self.sensors)}
            out.append(
                (self.assets[i % len(self.assets)], Sample(int(now * 1000) + i % 1000, values))
            )
            self._made += 1
        return out


def rate_source(options: Mapping[str, Any], assets: tuple[str, ...]) -> RateSource:
    """Plugin factory (``edge.bench:rate_source``) used by the steady-state run."""
    return RateSource(float(options.get("rate", 100)), assets, int(options.get("sensors", 10)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_broker(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloud.runtime.amqtt_server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("embedded broker did not start")


def _proc_stats(pid: int) -> tuple[float, float]:
    """(RSS in MB, user+system CPU seconds) of a process."""
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss_kb / 1024, (int(fields[11]) + int(fields[12])) / ticks


def steady_state(
    url: str, rate: float, duration: float, sensors: int, work: Path
) -> dict[str, Any]:
    config = work / "agent.toml"
    config.write_text(
        f"""
[agent]
site = "bench"
sender = "bench-gw"
broker = "{url}"
protocol = "3.1.1"
assets = ["b1", "b2", "b3"]
queue = "steady.db"
shadow = false
sampling_interval_s = 0.1

[[sources]]
type = "plugin"
factory = "edge.bench:rate_source"
rate = {rate}
sensors = {sensors}
"""
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "run",
            "--config",
            str(config),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(min(3.0, duration / 2))  # warm-up: imports, connect, first messages
        rss0, cpu0 = _proc_stats(proc.pid)
        t0 = time.monotonic()
        samples = [rss0]
        while time.monotonic() - t0 < duration:
            time.sleep(0.5)
            samples.append(_proc_stats(proc.pid)[0])
        rss1, cpu1 = _proc_stats(proc.pid)
        wall = time.monotonic() - t0
    finally:
        proc.terminate()
        proc.wait(30)
    status = json.loads((work / "steady.db.status.json").read_text())
    return {
        "rss_mb": round(max([*samples, rss1]), 1),
        "cpu_pct": round(100 * (cpu1 - cpu0) / wall, 1),
        "steady_readings_sent": status.get("sent"),
        "steady_seconds": round(wall, 1),
    }


def replay(backlog: int, sensors: int, work: Path) -> dict[str, Any]:
    """Queue *backlog* readings with no broker, start one, time until all are acknowledged."""
    from edge.agent import Agent, AgentConfig
    from edge.clock import SystemClock

    port = _free_port()
    agent = Agent(
        AgentConfig(
            site="bench",
            sender="bench-replay",
            broker_url=f"mqtt://127.0.0.1:{port}",
            queue_path=str(work / "replay.db"),
            assets=("r1", "r2", "r3"),
            protocol="3.1.1",
            shadow=False,
            backoff_min_s=0.05,
            backoff_max_s=0.2,
        ),
        SystemClock(),
    )
    t_fill = time.monotonic()
    for first in range(0, backlog, 500):
        batch: dict[str, list[Sample]] = {}
        for i in range(first, min(first + 500, backlog)):
            values = {f"s{k}": round(20.0 + (i * 7 + k) % 100 / 10, 3) for k in range(sensors)}
            batch.setdefault(agent.config.assets[i % 3], []).append(
                Sample(1_700_000_000_000 + i, values)
            )
        for asset, samples in batch.items():
            agent.submit(asset, samples)
    fill_s = time.monotonic() - t_fill
    broker = _start_broker(port)
    try:
        t0 = time.monotonic()
        agent.start()
        while agent.status()["queue_depth"] > 0 and time.monotonic() - t0 < 300:
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        status = agent.status()
        agent.stop(timeout=5)
    finally:
        broker.terminate()
        broker.wait(10)
    return {
        "replay_readings_per_s": round(backlog / elapsed, 1),
        "replay_s": round(elapsed, 2),
        "replay_messages": status["messages_sent"],
        "queue_fill_readings_per_s": round(backlog / fill_s, 1),
    }


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="plantwatch-bench-edge-") as tmp:
        work = Path(tmp)
        broker = None
        url = args.broker
        if url is None:
            port = _free_port()
            broker = _start_broker(port)
            url = f"mqtt://127.0.0.1:{port}"
        try:
            result = {
                "rate_readings_per_s": args.rate,
                "sensors_per_reading": args.sensors,
                **steady_state(url, args.rate, args.duration, args.sensors, work),
            }
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait(10)
        result.update(
            {"backlog_readings": args.backlog, **replay(args.backlog, args.sensors, work)}
        )
        result["note"] = "2-core machine shared with other work; compare ratios and medians"
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        width = max(len(key) for key in result)
        for key, value in result.items():
            print(f"{key.ljust(width)}  {value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="plantwatch-edge-bench")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
