"""``plantwatch sim``: history, fleet, replay and skab subcommands (thin: parse, build, run)."""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.cliargs import (
    add_subcommands,
    duration,
    int_range,
    non_negative_int,
    positive_float,
    positive_int,
    rate,
)
from edge.errors import UserError
from edge.signals import stop_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from edge.clock import Clock
    from simulator.fleet import Sink
    from simulator.runner import FleetSource

KIND_CHOICES = ("pump", "fan", "mixed")
GATEWAY_ABOVE = 20
"""More assets than this share gateway agents (12 assets a connection) instead of one agent each."""
MAX_ASSETS = 10_000
"""A simulated fleet this large is already hours of history or thousands of connections;
the bound keeps a typo from drawing assets until memory runs out."""
MAX_SKAB_PER_TYPE = 1000
"""9,000 experiments of about 1,100 rows, some minutes of writing: a development set well
beyond SKAB's own 34 files, and a bound that keeps a typo from running for days."""


def sample_period(text: str) -> float:
    """A --rate as a period in seconds: ``10s``, ``1min``, or readings per unit (``6/min``),
    at least :data:`simulator.scenario.MIN_RATE_S` apart."""
    from simulator.scenario import MIN_RATE_S

    return rate(bare=None, high_hz=1.0 / MIN_RATE_S, as_period=True)(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_subcommands(parser, "sim_command")

    h = sub.add_parser(
        "history",
        help="write L4E-layout training data and ground-truth labels",
        description="Write DAYS of simulated history as L4E input CSVs (OUT/data/<asset>/) and "
        "the injected faults as L4E label CSVs (OUT/labels/), for `plantwatch model train`.",
    )
    _asset_args(h)
    h.add_argument("--days", type=positive_float, default=180.0, help="days of data (default 180)")
    h.add_argument(
        "--rate",
        type=sample_period,
        default=60.0,
        help="sample period, at least 1ms, e.g. 10s, 1min, or readings per unit, e.g. 6/min "
        "(default 1min)",
    )
    h.add_argument("--start", help="first timestamp, ISO 8601 UTC (default: DAYS before today)")
    h.add_argument("--out", required=True, type=Path, help="output folder (data/ and labels/)")
    h.set_defaults(_sim=run_history)

    f = sub.add_parser(
        "fleet",
        help="run simulated assets live, publishing over MQTT",
        description="Run simulated assets on an accelerated clock, publishing their readings "
        "over MQTT through the edge agent (or paho with --direct).",
    )
    _asset_args(f)
    f.add_argument(
        "--rate",
        type=sample_period,
        help="sample period per asset, e.g. 10s, or readings per unit, e.g. 20/s; at least 1ms "
        "(default: scenario's, or 10s)",
    )
    f.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        help="simulated seconds per wall second (default 1)",
    )
    f.add_argument(
        "--duration",
        type=duration,
        help="simulated run time, e.g. 2h (default: scenario's, or forever)",
    )
    f.add_argument("--start", help="simulated start, ISO 8601 UTC (default: now)")
    f.add_argument("--demo", action="store_true", help="use the demo scenario")
    _publish_args(f, "scenario's, or s1")
    f.add_argument(
        "--gateway", action="store_true", help="gateway agents (12 assets each), not one per asset"
    )
    f.add_argument("--direct", action="store_true", help="publish with paho, not the edge agent")
    f.add_argument("--queue-dir", type=Path, help="edge agent queues (default: a temp folder)")
    f.add_argument(
        "--labels-out", type=Path, help="write the ground-truth label CSV here at the end"
    )
    f.set_defaults(_sim=run_fleet)

    r = sub.add_parser(
        "replay",
        help="publish a recorded dataset (L4E layout or SKAB) live",
        description="Publish a recorded dataset (an L4E folder or a SKAB CSV) over MQTT.",
    )
    r.add_argument("--dataset", type=Path, help="dataset folder (L4E layout) or CSV file")
    # --data was this option's old name; it meant the state directory everywhere else
    r.add_argument("--data", dest="dataset_deprecated", type=Path, help=argparse.SUPPRESS)
    r.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        help="recorded seconds per wall second (default 1)",
    )
    r.add_argument("--original-time", action="store_true", help="keep recorded timestamps")
    r.add_argument(
        "--align", action="store_true", help="start every asset now (side by side), not in sequence"
    )
    _publish_args(r, "s1")
    r.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    r.set_defaults(_sim=run_replay)

    k = sub.add_parser(
        "skab",
        help="write labelled SKAB-shaped experiments (the detection development set)",
        description="Write the simulator's SKAB-shaped experiments, every fault type, as "
        "OUT/<fault type>/<k>.csv in SKAB's CSV format, for `plantwatch bench skab --dataset OUT`.",
    )
    k.add_argument("--out", required=True, type=Path, help="output folder")
    k.add_argument(
        "--per-type",
        type=int_range(1, MAX_SKAB_PER_TYPE, what=f"a whole number from 1 to {MAX_SKAB_PER_TYPE}"),
        default=3,
        help=f"experiments per fault type, at most {MAX_SKAB_PER_TYPE} (default 3)",
    )
    k.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    k.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    k.set_defaults(_sim=run_skab)


def _asset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--assets",
        type=int_range(1, MAX_ASSETS, what=f"a whole number from 1 to {MAX_ASSETS}"),
        help=f"number of assets, at most {MAX_ASSETS} (default: scenario's, or 3)",
    )
    p.add_argument("--kind", choices=KIND_CHOICES, default="pump", help="equipment (default pump)")
    p.add_argument("--scenario", type=Path, help="scenario TOML: faults (and assets)")
    p.add_argument("--seed", type=non_negative_int, help="random seed (default: scenario's, or 0)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def _publish_args(p: argparse.ArgumentParser, site_default: str) -> None:
    p.add_argument("--broker", "--broker-url", default="mqtt://127.0.0.1:1883", help="broker URL")
    p.add_argument("--site", help=f"site name in topics (default: {site_default})")
    p.add_argument("--per-message", type=positive_int, default=20, help="samples per MQTT message")


def run(args: argparse.Namespace) -> int:
    return int(args._sim(args))


def _scenario(args: argparse.Namespace) -> Any:
    from simulator.scenario import demo_scenario, load_scenario

    if getattr(args, "demo", False):
        return demo_scenario()
    return load_scenario(args.scenario) if args.scenario else None


def _assets(args: argparse.Namespace, scenario: Any) -> list[Any]:
    from simulator.asset import AssetSpec

    if args.assets is None and scenario is not None and scenario.assets:
        return list(scenario.assets)
    n = 3 if args.assets is None else args.assets
    kinds = ["pump", "fan"] if args.kind == "mixed" else [args.kind]
    return [
        AssetSpec(f"{kinds[i % len(kinds)]}-{i + 1:02d}", kinds[i % len(kinds)], i + 1)
        for i in range(n)
    ]


SIM_EPOCH = datetime(1970, 1, 2, tzinfo=UTC)
SIM_LATEST = datetime(2261, 12, 31, tzinfo=UTC)
"""Simulated time: each day's operating modes (and the previous day's) are seeded by the
day's number since 1970, and written timestamps must fit the readers' nanosecond instants."""


def _shown(url: str) -> str:
    """*url* for a message: a password in it is shown as ``***``."""
    from cloud.adapters.local.mqtt_url import redact

    return redact(url)


def _when(text: str | None, default: datetime, option: str) -> datetime:
    if text is None:
        return default
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"{option}: expected an ISO 8601 time like 2025-01-01T00:00, got {text!r}"
        ) from None
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    if not SIM_EPOCH <= at <= SIM_LATEST:  # days are counted from 1970 to seed each day
        raise UserError(
            f"{option}: expected a time from {SIM_EPOCH:%Y-%m-%d} to {SIM_LATEST:%Y-%m-%d}, "
            f"got {text!r}"
        )
    return at


def _seed(args: argparse.Namespace, scenario: Any) -> int:
    if args.seed is not None:
        return int(args.seed)
    return scenario.seed if scenario is not None else 0


def run_skab(args: argparse.Namespace) -> int:
    from cloud.cli.output import print_json, print_line, progress
    from simulator import skab

    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out}: exists and is not a folder")
    files = args.per_type * len(skab.FAULT_TYPES)
    with progress(files, f"sim skab: writing {files} experiments to {args.out}") as bar:
        paths = skab.write(args.out, args.per_type, args.seed, on_file=lambda _p: bar.advance())
    summary = {"out": str(args.out), "files": len(paths), "per_type": args.per_type}
    if args.json:
        print_json(summary)
    else:
        print_line(f"wrote {len(paths)} SKAB-shaped files under {args.out}")
    return 0


def run_history(args: argparse.Namespace) -> int:
    from cloud.cli.output import print_json, print_line
    from simulator.history import generate_history
    from simulator.labels import read_labels
    from simulator.physics import KINDS

    scenario = _scenario(args)
    assets = _assets(args, scenario)
    rate = args.rate
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if args.start is not None:
        start = _when(args.start, today, "--start")
    else:
        try:
            start = today - timedelta(days=args.days)
        except OverflowError:
            raise UserError(
                f"--days {args.days:g}: would start before the year 1; give --start or fewer days"
            ) from None
    _check_room(args, assets, KINDS)
    from cloud.cli import output

    rows_per_asset = math.ceil(args.days * 86_400.0 / rate - 1e-9)
    rows = rows_per_asset * len(assets)
    began = time.perf_counter()
    with output.progress(rows, f"sim history: rows of {len(assets)} assets") as bar:
        generate_history(
            assets,
            start,
            args.days,
            rate,
            args.out,
            scenario=scenario,
            seed=_seed(args, scenario),
            keep_frames=False,
            on_rows=bar.advance,
        )
    seconds = time.perf_counter() - began
    sensors = sum(len(KINDS[a.kind].sensors) for a in assets)
    labels = read_labels(args.out / "labels" / "labels.csv")
    summary = {
        "out": str(args.out),
        "assets": len(assets),
        "rows": rows,
        "rows_per_asset": rows_per_asset,
        "sensors": sensors,
        "labels": len(labels),
        "elapsed_s": round(seconds, 3),
    }
    if args.json:
        print_json(summary)
    else:
        print_line(
            f"wrote {len(assets)} assets x {rows_per_asset} rows ({sensors} sensors) "
            f"and {len(labels)} labels to {args.out} in {seconds:.1f} s"
        )
    return 0


def _check_room(args: argparse.Namespace, assets: list[Any], kinds: dict[str, Any]) -> None:
    """Refuse a history that cannot fit on the disk before writing any of it: a typo in
    --days or --rate would otherwise fill the disk for hours and then fail half-written.
    The bound counts a timestamp, commas and a newline per row (every cell empty), so it
    never refuses a history that would fit."""
    from cloud.runtime.layout import check_creatable_dir

    check_creatable_dir(Path(args.out), "--out")  # /sys would report 0 GB free, not unwritable
    rows = math.ceil(args.days * 86_400.0 / args.rate - 1e-9)
    needed = rows * sum(20 + len(kinds[a.kind].sensors) for a in assets)
    folder = Path(args.out).absolute()
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise UserError(
            f"--days {args.days:g} at --rate {args.rate:g}s: {rows:,} rows per asset need at "
            f"least {needed / 1e9:,.1f} GB under {args.out}, and {free / 1e9:,.1f} GB are free"
        )


def _check_output_file(path: Path, option: str) -> None:
    """A file this command writes at the end: not a folder, and its folder can be made."""
    if path.is_dir():
        raise UserError(f"{option} {path}: is a folder; expected a file name")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"{option} {path}: {ancestor} is not a folder")
    try:  # a folder nobody may write in (a read-only mount, /sys) shows only on writing
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as exc:
        raise UserError(f"{option} {path}: cannot write in {ancestor} ({exc.strerror})") from None


def run_fleet(args: argparse.Namespace) -> int:
    from cloud.cli.output import print_json, print_line, stderr
    from edge.clock import SimulatedClock
    from simulator.fleet import FleetSimulator
    from simulator.labels import write_labels
    from simulator.runner import FleetSource, run

    scenario = _scenario(args)
    assets = _assets(args, scenario)
    if args.labels_out is not None:  # written after the run: a bad path must fail before it
        _check_output_file(args.labels_out, "--labels-out")
    if args.rate is not None:
        rate = args.rate
    else:
        rate = scenario.rate_s if scenario is not None and scenario.rate_s else 10.0
    now = datetime.now(UTC).timestamp()
    aligned = datetime.fromtimestamp(now - now % rate, UTC)  # samples on whole multiples of rate
    start = _when(args.start, aligned, "--start").timestamp()
    duration = args.duration or (scenario.duration_s if scenario is not None else None)
    site = args.site or (scenario.site if scenario is not None else "s1")
    try:
        fleet = FleetSimulator(
            assets, scenario, start=start, rate_s=rate, seed=_seed(args, scenario)
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    source = FleetSource(fleet)
    clock = SimulatedClock(start, args.speed)
    names = [a.name for a in assets]
    route, stop_publisher, via = _open_route(args, names, site, clock, source)
    stderr.print(
        f"fleet: {len(names)} assets at site {site}, every {rate:g} s, speed x{args.speed:g}, "
        f"via {via} -> {_shown(args.broker)}",
        markup=False,
        soft_wrap=True,
    )
    stop = stop_event()
    began = time.perf_counter()
    until = None if duration is None else start + duration
    tick = 0.2 * args.speed  # step about five times per wall second
    sent = run(source, route, clock, until=until, tick_s=tick, stop=stop)
    stop_publisher()
    wall = time.perf_counter() - began
    if args.labels_out is not None:
        write_labels(args.labels_out, fleet.labels())
    summary = {
        "assets": len(names),
        "readings": sent,
        "simulated_s": round(fleet.now - start, 3),
        "wall_s": round(wall, 3),
        "readings_per_s": round(sent / wall, 1) if wall > 0 else 0.0,
        "labels": [
            {
                "start": lb.start,
                "end": lb.end,
                "fault_code": lb.fault_code,
                "equipment": lb.equipment,
            }
            for lb in fleet.labels()
        ],
        "via": via,
    }
    if args.json:
        print_json(summary)
    else:
        print_line(f"fleet: sent {sent} readings in {wall:.1f} s")
    return 0


def _open_route(
    args: argparse.Namespace, names: list[str], site: str, clock: Clock, source: FleetSource
) -> tuple[Sink, Callable[[], None], str]:
    """``(sink, stop, description)``: the edge agent when installed (and not ``--direct``),
    else paho QoS 1 straight from the simulator."""
    from edge.config import refuse_url_credentials
    from simulator.runner import DirectPublisher, agent_sinks

    gateway = args.gateway or len(names) > GATEWAY_ABOVE
    if not args.direct:
        refuse_url_credentials(
            args.broker, "--broker", "the edge agent takes them from [auth] only; add --direct"
        )
        # without --queue-dir the agents' queues live in a temp folder removed at the end
        temporary = args.queue_dir is None
        queue_dir = args.queue_dir or Path(tempfile.mkdtemp(prefix="plantwatch-fleet-"))
        made = agent_sinks(
            names,
            site=site,
            broker_url=args.broker,
            data_dir=queue_dir,
            clock=clock,
            gateway=gateway,
            source=source,
            samples_per_message=args.per_message,
        )
        if made is not None:
            sink, stop_agents = made

            def stop_and_clean() -> None:
                try:
                    stop_agents()
                finally:
                    if temporary:
                        shutil.rmtree(queue_dir, ignore_errors=True)

            return sink, stop_and_clean, "edge agent" + (" (gateway)" if gateway else "")
        if temporary:
            shutil.rmtree(queue_dir, ignore_errors=True)
    publisher = DirectPublisher(
        args.broker,
        site=site,
        sender=f"sim-{site}",
        samples_per_message=args.per_message,
        on_command=source.apply,
        assets=names,
    )

    def stop() -> None:
        publisher.flush()
        publisher.close()

    return publisher, stop, "direct paho QoS 1"


def run_replay(args: argparse.Namespace) -> int:
    from cloud.cli.output import print_json, print_line, stderr
    from edge.clock import SimulatedClock
    from simulator.replay import Replay, load_dataset
    from simulator.runner import DirectPublisher, run

    dataset = args.dataset or args.dataset_deprecated
    if dataset is None:
        raise UserError("--dataset: required (an L4E dataset folder or a SKAB CSV file)")
    if args.dataset is None:
        stderr.print("note: --data is now --dataset", markup=False)
    frames = load_dataset(dataset)
    now = datetime.now(UTC).timestamp()
    replay = Replay(frames, start=now, original_time=args.original_time, align=args.align)
    site = args.site or "s1"
    publisher = DirectPublisher(
        args.broker, site=site, sender=f"replay-{site}", samples_per_message=args.per_message
    )
    clock = SimulatedClock(replay.start, args.speed, anchor=time.time())
    stderr.print(
        f"replay: {replay.rows} rows of {len(frames)} assets over "
        f"{replay.end - replay.start:.0f} s at x{args.speed:g} -> {_shown(args.broker)}",
        markup=False,
        soft_wrap=True,
    )
    began = time.perf_counter()
    tick = 0.2 * args.speed  # step about five times per wall second
    sent = run(replay, publisher, clock, until=replay.end, tick_s=tick, stop=stop_event())
    publisher.flush()
    publisher.close()
    wall = time.perf_counter() - began
    summary = {
        "assets": list(replay.assets),
        "readings": sent,
        "messages": publisher.messages,
        "wall_s": round(wall, 3),
        "readings_per_s": round(sent / wall, 1) if wall > 0 else 0.0,
    }
    if args.json:
        print_json(summary)
    else:
        print_line(f"replay: sent {sent} readings in {wall:.1f} s")
    return 0
