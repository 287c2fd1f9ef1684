"""The demo story: train, run a fleet, inject a fault, detect, alert, command, recover.

Everything runs for real on one machine (embedded broker, edge agent with its durable queue,
rules and batcher writing L4E CSVs, scheduler, detectors, shadow service) on a simulated
clock, so hours of plant time pass in a minute and the results match real time.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cloud.runtime.layout import INPUT_PREFIX, DataLayout
from cloud.runtime.stack import LocalStack, StackConfig
from edge.clock import SimulatedClock

SITE = "s1"
ASSETS = ("pump-01", "pump-02", "pump-03")
MODEL_NAME = "pump-fleet"
RATE_S = 10.0
START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC).timestamp()
ACK_NOTE = "bearing temperature rising; maintenance called"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    out: Path
    fast: bool = False
    speed: float | None = None
    seed: int = 7
    broker_kind: str = "amqtt"
    quiet: bool = False
    streaming: bool = False

    @property
    def sim_speed(self) -> float:
        return self.speed or (240.0 if self.fast else 120.0)

    @property
    def history_days(self) -> float:
        """A full week, so training sees weekday shifts, weekends and night stops alike."""
        return 7.0


@dataclass(slots=True)
class Story:
    """What happened, in simulated epoch seconds; None until it happens."""

    faulted_asset: str
    fault_onset: float | None = None
    first_anomaly: float | None = None
    alarm: float | None = None
    alert: float | None = None
    command_desired: float | None = None
    command_applied: float | None = None
    alarm_active: float | None = None
    acknowledged: float | None = None
    ack_command: list[str] = field(default_factory=list)
    ack_result: str = ""
    ack_process: Any = None
    recovered: float | None = None
    alerts_by_asset: dict[str, int] = field(default_factory=dict)
    executions: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return None not in (self.first_anomaly, self.alert, self.command_applied, self.acknowledged)


def _clock_text(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")


def run_demo(options: DemoOptions) -> dict[str, Any]:
    console = Console(stderr=options.quiet, highlight=False)
    layout = DataLayout.at(options.out)
    wall_start = time.monotonic()

    from simulator.fleet import AssetSpec, FleetSimulator
    from simulator.scenario import demo_scenario

    scenario = demo_scenario()
    specs = [AssetSpec(name, "pump", seed=options.seed + i) for i, name in enumerate(ASSETS)]
    console.rule("[bold]plantwatch demo")
    console.print(f"output: {layout.root}")

    model_info = _train(console, layout, specs, options)

    # The stack and the agent start in the five minutes of plant time before the fleet's
    # first reading, so the first scheduled window already finds its data.
    clock = SimulatedClock(start=START - 300, speed=options.sim_speed)
    story = Story(faulted_asset=_faulted_asset(scenario))
    fleet = FleetSimulator(specs, scenario, start=START - 60, rate_s=RATE_S, seed=options.seed)
    from cloud.detectors.alarms.model import default_alarm_path
    from cloud.feeder import default_detector_paths

    detector_model, detector_input = default_detector_paths()

    def on_event(kind: str, detail: dict[str, Any]) -> None:
        now = _clock_text(clock.now())
        if kind == "broker":
            console.print(f"[dim]{now}[/] broker     {detail['kind']} at {detail['url']}")
        elif kind == "execution":
            story.executions += 1
            ex = detail["execution"]
            style = "green" if ex.status == "SUCCESS" else "red"
            console.print(
                f"[dim]{now}[/] scheduler  window {ex.data_start:%H:%M}-"
                f"{ex.data_end:%H:%M} [{style}]{ex.status}[/]"
                + (f" ({ex.failed_reason})" if ex.failed_reason else "")
            )
            _note_anomalies(layout, ex, story, clock.now(), console)
        elif kind == "alert":
            _note_alert(detail, story, clock.now(), console)
        elif kind == "error":
            story.errors.append(detail["error"])
            console.print(f"[dim]{now}[/] [red]error[/]      {detail['error']}")

    stack = LocalStack(
        StackConfig(
            data=layout,
            broker_kind=options.broker_kind,
            port=0,
            upload_frequency="PT5M",
            delay_offset_min=2,
            grace_s=60.0,
            model_name=MODEL_NAME,
            detector_model=detector_model,
            detector_inputs=(detector_input,),
            alarm_models=(default_alarm_path(),),
            shadow_limits=False,
            streaming=options.streaming,
        ),
        clock,
        on_event,
    ).start()
    protocol = "3.1.1" if stack.broker is not None and stack.broker.kind == "amqtt" else "auto"
    agent = _start_agent(layout, stack.broker_url, protocol, clock, fleet, story, console)
    console.print(
        f"[dim]{_clock_text(clock.now())}[/] fleet      {len(ASSETS)} pumps at site "
        f"{SITE}, one reading every {RATE_S:.0f} s; {options.sim_speed:.0f}x real time"
    )
    try:
        _run_fleet(fleet, agent, stack, clock, story, options, console)
    finally:
        agent.stop(flush=True)
        time.sleep(0.5)
        artefacts = _export(layout, stack, ASSETS)
        stack.stop()
    story.errors.extend(e for e in stack.errors if e not in story.errors)
    summary = _summary(story, options, layout, model_info, artefacts, time.monotonic() - wall_start)
    from cloud.runtime.report import write_report

    summary["report"] = str(
        write_report(layout, summary, story.faulted_asset, stack.results_prefix)
    )
    (layout.root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(console, summary)
    return summary


def _faulted_asset(scenario: Any) -> str:
    faults = getattr(scenario, "faults", ())
    return faults[0].asset if faults else ASSETS[1]


def _train(console: Console, layout: DataLayout, specs: list, options: DemoOptions) -> dict:
    from cloud.runtime.training import train_fleet_model

    console.print(
        f"training   {options.history_days:g} days of fault-free history for {len(specs)} pumps ..."
    )
    info = train_fleet_model(
        layout, specs, MODEL_NAME, START, options.history_days, RATE_S, options.seed
    )
    console.print(
        f"training   model {MODEL_NAME} v{info['version']}: {info['rows']:,} rows, "
        f"{info['sensors']} sensors, {info['train_s']:.1f} s"
    )
    return info


def _start_agent(
    layout: DataLayout,
    broker_url: str,
    protocol: str,
    clock: SimulatedClock,
    fleet: Any,
    story: Story,
    console: Console,
) -> Any:
    from edge.agent import Agent, AgentConfig

    agent = Agent(
        AgentConfig(
            site=SITE,
            sender="gw-s1",
            broker_url=broker_url,
            queue_path=str(layout.edge_dir / "queue.db"),
            assets=ASSETS,
            # amqtt speaks MQTT 3.1.1 only; saying so spares the agent seconds of probing.
            protocol=protocol,
        ),
        clock,
    )

    def apply_mode(asset: str, value: object) -> object:
        if value not in ("normal", "safe", "stop"):
            raise ValueError(f"mode must be normal, safe or stop, not {value!r}")
        fleet.set_mode(asset, str(value))
        if asset == story.faulted_asset and value == "safe" and story.command_applied is None:
            story.command_applied = clock.now()
            console.print(
                f"[dim]{_clock_text(clock.now())}[/] [cyan]device[/]     {asset} "
                f"applied shadow command mode=safe and reported it"
            )
        return value

    agent.register_command("mode", apply_mode)
    layout.edge_dir.mkdir(parents=True, exist_ok=True)
    agent.start()
    return agent


def _run_fleet(
    fleet: Any,
    agent: Any,
    stack: LocalStack,
    clock: SimulatedClock,
    story: Story,
    options: DemoOptions,
    console: Console,
) -> None:
    end = fleet.start + (fleet.scenario.duration_s or 9000.0)
    onset = _fault_onset(fleet, story.faulted_asset)
    while clock.now() < end:
        for asset, samples in fleet.step(clock.now()).items():
            if samples:
                agent.submit(asset, samples)
        if story.fault_onset is None and onset is not None and clock.now() >= onset:
            story.fault_onset = onset
            console.print(
                f"[dim]{_clock_text(onset)}[/] [yellow]fault[/]      injected on "
                f"{story.faulted_asset} (ground truth; the pipeline is not told)"
            )
        _note_detector(stack, story, clock.now(), console)
        _acknowledge(stack, story, clock.now(), console)
        if stack.streaming is not None and story.first_anomaly is None:
            _note_stream(stack.config.data, stack.results_prefix, story, clock.now(), console)
        if story.recovered is not None and clock.now() > story.recovered + 900:
            break
        time.sleep(0.05)
    if story.ack_process is not None and story.ack_process.poll() is None:
        story.ack_process.wait(timeout=30)
        _acknowledge(stack, story, clock.now(), console)


def _fault_onset(fleet: Any, asset: str) -> float | None:
    return next((float(f.start) for f in fleet.faults if f.asset == asset), None)


def _note_stream(
    layout: DataLayout, prefix: str, story: Story, now: float, console: Console
) -> None:
    """Streaming mode has no executions to report; look at the newest results object."""
    newest = sorted((layout.bucket / prefix / story.faulted_asset).glob("*/results.jsonl"))
    if newest:
        key = str(newest[-1].relative_to(layout.bucket))
        _note_result(layout, key, story, now, console)


def _note_detector(stack: LocalStack, story: Story, now: float, console: Console) -> None:
    if stack.engine is None:
        return
    try:
        state = stack.engine.describe(story.faulted_asset)["detector"]["state"]["stateName"]
    except Exception:
        return
    if state == "Alarm" and story.alarm is None:
        story.alarm = now
        console.print(
            f"[dim]{_clock_text(now)}[/] [red]detector[/]   {story.faulted_asset}: Normal -> Alarm"
        )
    elif state == "Normal" and story.alarm is not None and story.recovered is None:
        story.recovered = now
        console.print(
            f"[dim]{_clock_text(now)}[/] [green]detector[/]   {story.faulted_asset}: "
            "Alarm -> Normal (recovered)"
        )


def _acknowledge(stack: LocalStack, story: Story, now: float, console: Console) -> None:
    """The operator's part, through the same path a user takes: `plantwatch alarms ack`.

    The command runs as its own process beside the running stack; it queues the request,
    the stack applies it on its next step, and the command prints the new state.
    """
    engine = stack.alarms.get("anomaly_score")
    if engine is None:
        return
    asset = story.faulted_asset
    try:
        state = engine.state_of(asset)
    except KeyError:
        return
    if state == "ACTIVE" and story.alarm_active is None:
        story.alarm_active = now
        console.print(
            f"[dim]{_clock_text(now)}[/] [red]alarm[/]      anomaly_score/{asset}: ACTIVE"
        )
    if story.alarm_active is not None and story.ack_process is None:
        story.ack_command = [
            "plantwatch",
            "alarms",
            "ack",
            "anomaly_score",
            asset,
            "--note",
            ACK_NOTE,
            "--who",
            "demo",
            "--data",
            str(stack.config.data.root),
        ]
        story.ack_process = subprocess.Popen(
            [sys.executable, "-m", "cloud.cli.main", *story.ack_command[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        console.print(
            f"[dim]{_clock_text(now)}[/] [cyan]operator[/]   "
            + escape(shlex.join(story.ack_command[:7]))
        )
    process = story.ack_process
    if process is not None and story.acknowledged is None and process.poll() is not None:
        out, err = process.communicate()
        story.ack_result = (out or err).strip()
        if process.returncode == 0:
            story.acknowledged = now
            console.print(
                f"[dim]{_clock_text(now)}[/] [cyan]operator[/]   {escape(story.ack_result)}"
            )
        else:
            story.errors.append(f"acknowledge failed: {story.ack_result}")
            console.print(
                f"[dim]{_clock_text(now)}[/] [red]error[/]      {escape(story.ack_result)}"
            )


def _note_anomalies(
    layout: DataLayout, execution: Any, story: Story, now: float, console: Console
) -> None:
    for key in execution.result_keys:
        _note_result(layout, key, story, now, console)


def _note_result(layout: DataLayout, key: str, story: Story, now: float, console: Console) -> None:
    path = layout.bucket / key
    if not path.exists():
        return
    asset = _asset_of(key)
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    anomalous = [x for x in lines if x.get("prediction") == 1]
    if not anomalous:
        return
    top = max(anomalous, key=lambda x: x.get("anomaly_score", 0))
    diag = max(top.get("diagnostics", []), key=lambda d: d["value"], default=None)
    console.print(
        f"[dim]{_clock_text(now)}[/] [red]anomaly[/]    {asset}: {len(anomalous)}/"
        f"{len(lines)} rows, score {top.get('anomaly_score', 0):.2f}"
        + (f", top sensor {escape(diag['name'])} ({diag['value']:.0%})" if diag else "")
    )
    if asset == story.faulted_asset and story.first_anomaly is None:
        story.first_anomaly = (
            datetime.fromisoformat(anomalous[0]["timestamp"]).replace(tzinfo=UTC).timestamp()
        )


def _asset_of(result_key: str) -> str:
    parts = result_key.split("/")
    return parts[1] if len(parts) >= 4 else ""


def _note_alert(detail: dict, story: Story, now: float, console: Console) -> None:
    text = f"{detail.get('subject', '')} {detail.get('body', '')}"
    asset = next((a for a in ASSETS if a in text), "?")
    story.alerts_by_asset[asset] = story.alerts_by_asset.get(asset, 0) + 1
    if asset == story.faulted_asset and story.alert is None:
        story.alert = now
    channel = detail["channel"]
    console.print(
        f"[dim]{_clock_text(now)}[/] [magenta]alert[/]      {channel}: "
        f"{escape(detail.get('subject') or detail.get('body') or '')}"
    )
    if channel == "sms":
        console.print(
            f"             [magenta]SMS text[/] ({len(detail['body'])} chars): {escape(detail['body'])}"
        )
    elif channel == "email":
        body = detail["body"].strip().splitlines()
        console.print(
            "             [magenta]email body[/]:\n"
            + "\n".join(f"               {escape(line)}" for line in body[:12])
        )


def _export(layout: DataLayout, stack: LocalStack, assets: tuple[str, ...]) -> dict[str, Any]:
    shadows_dir = layout.root / "shadows"
    shadows_dir.mkdir(exist_ok=True)
    for thing in assets:
        doc = stack.shadow_service.get_document(thing)
        if doc is not None:
            (shadows_dir / f"{thing}.json").write_text(json.dumps(doc, indent=2) + "\n")
    executions = [value for _key, value in stack.state.items("executions")]
    (layout.root / "executions.json").write_text(json.dumps(executions, indent=2, default=str))
    inputs = sorted(stack.bucket.list(INPUT_PREFIX))
    return {"input_files": len(inputs), "shadows": str(shadows_dir), "executions": len(executions)}


def _summary(
    story: Story,
    options: DemoOptions,
    layout: DataLayout,
    model_info: dict,
    artefacts: dict,
    wall_s: float,
) -> dict[str, Any]:
    healthy = [a for a in ASSETS if a != story.faulted_asset]
    delay = (
        story.first_anomaly - story.fault_onset
        if story.first_anomaly and story.fault_onset
        else None
    )

    def iso(t: float | None) -> str | None:
        return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()

    checks = {
        "detected": story.first_anomaly is not None,
        "alerted": story.alert is not None,
        "command_applied": story.command_applied is not None,
        "acknowledged": story.acknowledged is not None,
        "recovered": story.recovered is not None,
        "healthy_assets_quiet": all(story.alerts_by_asset.get(a, 0) == 0 for a in healthy),
    }
    return {
        "story_complete": story.complete,
        "checks": checks,
        "faulted_asset": story.faulted_asset,
        "times": {
            "fault_onset": iso(story.fault_onset),
            "first_anomaly": iso(story.first_anomaly),
            "alarm": iso(story.alarm),
            "alert": iso(story.alert),
            "command_applied": iso(story.command_applied),
            "alarm_active": iso(story.alarm_active),
            "acknowledged": iso(story.acknowledged),
            "recovered": iso(story.recovered),
        },
        "acknowledgement": {
            "command": shlex.join(story.ack_command),
            "result": story.ack_result,
        },
        "detection_delay_s": delay,
        "alerts_by_asset": story.alerts_by_asset,
        "model": model_info,
        "input_files": artefacts["input_files"],
        "executions": artefacts["executions"],
        "errors": story.errors,
        "out": str(layout.root),
        "speed": options.sim_speed,
        "wall_s": round(wall_s, 1),
    }


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    table = Table(title="demo summary", show_header=False)
    for name, ok in summary["checks"].items():
        table.add_row(name.replace("_", " "), "[green]yes[/]" if ok else "[red]no[/]")
    delay = summary["detection_delay_s"]
    table.add_row("detection delay", "-" if delay is None else f"{delay / 60:.1f} min (plant time)")
    ack = summary["acknowledgement"]
    if ack["result"]:
        table.add_row("acknowledged by", escape(ack["result"]))
    table.add_row("input CSV files", str(summary["input_files"]))
    table.add_row("executions", str(summary["executions"]))
    table.add_row("wall time", f"{summary['wall_s']} s")
    table.add_row("report", summary.get("report", "-"))
    console.print(table)
    verdict = (
        "[green]story complete[/]" if summary["story_complete"] else "[red]story incomplete[/]"
    )
    console.print(verdict + f" - everything is in {summary['out']}")
