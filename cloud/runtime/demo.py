"""The demo story: train, run a fleet, inject a fault, detect, alert, command, acknowledge,
recover.

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

from cloud.runtime.layout import INPUT_PREFIX, DataLayout
from cloud.runtime.stack import LocalStack, StackConfig
from edge.clock import SimulatedClock

SITE = "s1"
ASSETS = ("pump-01", "pump-02", "pump-03")
MODEL_NAME = "pump-fleet"
RATE_S = 10.0
START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC).timestamp()
ALARM_MODEL = "anomaly_score"
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
    keep_files: bool = True
    """False for a throw-away temp folder: no report is drawn and the summary says so."""
    dashboard: Any = None
    """A ``cloud.dashboard.server.DashboardConfig`` to serve the dashboard during the run."""

    @property
    def sim_speed(self) -> float:
        return self.speed or (240.0 if self.fast else 120.0)

    @property
    def history_days(self) -> float:
        """A full week, so training sees weekday shifts, weekends and night stops alike."""
        return 7.0


@dataclass(slots=True)
class Story:
    """What happened, in simulated epoch seconds; None until it happens.

    ``first_anomaly`` is the timestamp of the first anomalous reading (data time);
    ``detected`` is the plant time at which the pipeline first reported it (a window's
    execution, or a streamed result), so window and streaming mode differ in ``detected``
    and ``alarm``, not in ``first_anomaly``. ``alarm`` is the instant the detector entered
    Alarm, which is the instant it sent its alert.

    Only what comes at or after the fault's onset (the ground truth, ``onset``) counts as
    detecting it: an anomalous result row of the faulted asset timestamped before the onset,
    or an alarm or command before it, is a false alarm, counted on its own.
    """

    faulted_asset: str
    onset: float | None = None
    """When the fault starts (ground truth, known to the story, not to the pipeline)."""
    fault_onset: float | None = None
    """When the run reached the onset (and printed it)."""
    first_anomaly: float | None = None
    detected: float | None = None
    alarm: float | None = None
    alert: float | None = None
    command_desired: float | None = None
    command_applied: float | None = None
    alarm_active: float | None = None
    """When the companion alarm of the faulted asset went ACTIVE."""
    acknowledged: float | None = None
    """When ``plantwatch alarms ack`` (run as the operator would) reported the new state."""
    ack_command: list[str] = field(default_factory=list)
    ack_result: str = ""
    ack_process: Any = None
    recovered: float | None = None
    alerts_by_asset: dict[str, int] = field(default_factory=dict)
    executions: int = 0
    errors: list[str] = field(default_factory=list)
    false_alarm_rows: set[float] = field(default_factory=set)
    """Timestamps of the faulted asset's anomalous rows before the onset."""
    alarms_before_onset: int = 0

    @property
    def complete(self) -> bool:
        return None not in (self.first_anomaly, self.alert, self.command_applied, self.acknowledged)

    def before_onset(self, t: float) -> bool:
        return self.onset is None or t < self.onset

    def note_anomalies(self, asset: str, timestamps: list[float], now: float) -> None:
        """Anomalous result rows of *asset*, reported at plant time *now*: the first at or
        after the onset detects the fault; earlier ones are false alarms (each row counted
        once, however often its results object is read)."""
        if asset != self.faulted_asset:
            return
        for t in timestamps:
            if self.before_onset(t):
                self.false_alarm_rows.add(t)
            elif self.first_anomaly is None or t < self.first_anomaly:
                if self.first_anomaly is None:
                    self.detected = now
                self.first_anomaly = t


def _clock_text(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")


def _console(options: DemoOptions) -> Console:
    """The CLI's consoles: never wrapped or cut when piped, so ``| tee`` keeps whole lines."""
    from cloud.cli import output

    return output.stderr if options.quiet else output.stdout


def run_demo(options: DemoOptions) -> dict[str, Any]:
    console = _console(options)
    layout = DataLayout.at(options.out)
    wall_start = time.monotonic()

    from simulator.fleet import AssetSpec, FleetSimulator
    from simulator.scenario import demo_scenario

    scenario = demo_scenario()
    specs = [AssetSpec(name, "pump", seed=options.seed + i) for i, name in enumerate(ASSETS)]
    console.print("[bold]plantwatch demo[/]")
    console.print(f"output: {escape(str(layout.root))}")

    model_info = _train(console, layout, specs, options)

    # The stack and the agent start in the five minutes of plant time before the fleet's
    # first reading, so the first scheduled window already finds its data.
    clock = SimulatedClock(start=START - 300, speed=options.sim_speed)
    fleet = FleetSimulator(specs, scenario, start=START - 60, rate_s=RATE_S, seed=options.seed)
    faulted = _faulted_asset(scenario)
    story = Story(faulted_asset=faulted, onset=_fault_onset(fleet, faulted))
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
            detector_models=(detector_model,),
            detector_inputs=(detector_input,),
            alarm_models=(default_alarm_path(),),
            shadow_limits=False,
            streaming=options.streaming,
            dashboard=options.dashboard,
        ),
        clock,
        on_event,
    ).start()
    agent = None
    try:  # from here on, an interrupt (Ctrl-C) still stops the stack and its broker
        if stack.dashboard is not None:
            console.print(
                f"[dim]{_clock_text(clock.now())}[/] dashboard  {stack.dashboard.url}"
                " (live while the demo runs)",
                soft_wrap=True,
            )
        protocol = "3.1.1" if stack.broker is not None and stack.broker.kind == "amqtt" else "auto"
        agent = _agent(layout, stack.broker_url, protocol, clock, fleet, story, console)
        agent.start()
        console.print(
            f"[dim]{_clock_text(clock.now())}[/] fleet      {len(ASSETS)} pumps at site "
            f"{SITE}, one reading every {RATE_S:.0f} s; {options.sim_speed:.0f}x real time"
        )
        _run_fleet(fleet, agent, stack, clock, story, options, console)
    finally:
        if agent is not None:
            agent.stop(flush=True)
            time.sleep(0.5)
        artefacts = _export(layout, stack, ASSETS)
        stack.stop()
    story.errors.extend(e for e in stack.errors if e not in story.errors)
    summary = _summary(story, options, layout, model_info, artefacts, time.monotonic() - wall_start)
    if stack.dashboard is not None:
        summary["dashboard"] = stack.dashboard.url
    if options.keep_files:
        from cloud.runtime.report import write_report

        summary["report"] = str(
            write_report(layout, summary, story.faulted_asset, stack.results_prefix)
        )
    (layout.root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(console, summary, options)
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


def _agent(
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
        from edge.commands import parse_value

        value = parse_value("mode", value)
        fleet.set_mode(asset, str(value))
        if (
            asset == story.faulted_asset
            and value == "safe"
            and story.command_applied is None
            and not story.before_onset(clock.now())
        ):
            story.command_applied = clock.now()
            console.print(
                f"[dim]{_clock_text(clock.now())}[/] [cyan]device[/]     {asset} "
                f"applied shadow command mode=safe and reported it"
            )
        return value

    agent.register_command("mode", apply_mode)
    layout.edge_dir.mkdir(parents=True, exist_ok=True)
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
        if stack.streaming is not None and story.first_anomaly is None:
            _note_stream(stack.config.data, stack.results_prefix, story, clock.now(), console)
        _acknowledge(stack, story, clock.now(), console)
        if story.recovered is not None and clock.now() > story.recovered + 900:
            break
        time.sleep(0.05)
    if story.ack_process is not None and story.acknowledged is None:
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


def _acknowledge(stack: LocalStack, story: Story, now: float, console: Console) -> None:
    """The operator's part, through the same path a user takes: ``plantwatch alarms ack``.

    Once the faulted asset's companion alarm is ACTIVE, the command runs as its own process
    beside the running stack: it queues the request, the stack applies it on its next step,
    and the command prints the new state, which the story keeps.
    """
    engine = stack.alarms.get(ALARM_MODEL)
    if engine is None or story.fault_onset is None:
        return  # an alarm before the fault began is a false alarm, not the story's
    asset = story.faulted_asset
    if story.alarm_active is None:
        try:
            state = engine.state_of(asset)
        except KeyError:
            return
        if state != "ACTIVE":
            return
        story.alarm_active = now
        console.print(
            f"[dim]{_clock_text(now)}[/] [red]alarm[/]      {ALARM_MODEL}/{asset}: ACTIVE",
            soft_wrap=True,
        )
    if story.ack_process is None:
        story.ack_command = [
            *("plantwatch", "alarms", "ack", ALARM_MODEL, asset, "--note", ACK_NOTE),
            *("--who", "demo", "--data", str(stack.config.data.root)),
        ]
        story.ack_process = subprocess.Popen(
            [sys.executable, "-m", "cloud.cli.main", *story.ack_command[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        console.print(
            f"[dim]{_clock_text(now)}[/] [cyan]operator[/]   "
            + escape(shlex.join(story.ack_command[:7])),
            soft_wrap=True,
        )
    process = story.ack_process
    if story.acknowledged is None and not story.ack_result and process.poll() is not None:
        out, err = process.communicate()
        story.ack_result = (out or err).strip()
        if process.returncode == 0:
            story.acknowledged = now
            label = "[cyan]operator[/]  "
        else:
            story.errors.append(f"acknowledge failed: {story.ack_result}")
            label = "[red]error[/]     "
        console.print(
            f"[dim]{_clock_text(now)}[/] {label} {escape(story.ack_result)}", soft_wrap=True
        )


def _note_anomalies(
    layout: DataLayout, execution: Any, story: Story, now: float, console: Console
) -> None:
    for key in execution.result_keys:
        _note_result(layout, key, story, now, console)


def _note_result(layout: DataLayout, key: str, story: Story, now: float, console: Console) -> None:
    """One line per results object with anomalies; every figure is the first anomalous
    row's (its time, score and top sensor), so the line describes one reading."""
    path = layout.bucket / key
    if not path.exists():
        return
    asset = _asset_of(key)
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    anomalous = [x for x in lines if x.get("prediction") == 1]
    if not anomalous:
        return
    first = anomalous[0]
    at = datetime.fromisoformat(first["timestamp"]).replace(tzinfo=UTC).timestamp()
    diag = max(first.get("diagnostics", []), key=lambda d: d["value"], default=None)
    console.print(
        f"[dim]{_clock_text(now)}[/] [red]anomaly[/]    {asset}: {len(anomalous)} of "
        f"{len(lines)} rows; first at {_clock_text(at)}, score "
        f"{first.get('anomaly_score', 0):.2f}"
        + (f", top sensor {escape(diag['name'])} ({diag['value']:.0%})" if diag else ""),
        soft_wrap=True,
    )
    story.note_anomalies(
        asset,
        [datetime.fromisoformat(x["timestamp"]).replace(tzinfo=UTC).timestamp() for x in anomalous],
        now,
    )


def _asset_of(result_key: str) -> str:
    parts = result_key.split("/")
    return parts[1] if len(parts) >= 4 else ""


def _note_alert(detail: dict, story: Story, now: float, console: Console) -> None:
    """The detector sends its alert as it enters a state, so an ALARM alert is the moment
    of the alarm and a RECOVERED one the moment of recovery; the lines shown are the
    alert's own text, built from the one result row that triggered the transition."""
    attributes = detail.get("attributes") or {}
    text = f"{detail.get('subject', '')} {detail.get('body', '')}"
    asset = attributes.get("asset") or next((a for a in ASSETS if a in text), "?")
    kind = attributes.get("kind", "")
    channel = detail["channel"]
    if channel == "email":
        story.alerts_by_asset[asset] = story.alerts_by_asset.get(asset, 0) + 1
        if kind == "ALARM" and asset == story.faulted_asset and story.before_onset(now):
            story.alarms_before_onset += 1
        elif kind == "ALARM" and asset == story.faulted_asset and story.alarm is None:
            story.alarm = story.alert = now
            console.print(
                f"[dim]{_clock_text(now)}[/] [red]detector[/]   {asset}: Normal -> Alarm",
                soft_wrap=True,
            )
        elif kind == "RECOVERED" and asset == story.faulted_asset and story.recovered is None:
            story.recovered = now
            console.print(
                f"[dim]{_clock_text(now)}[/] [green]detector[/]   {asset}: Alarm -> Normal "
                "(recovered)",
                soft_wrap=True,
            )
    console.print(
        f"[dim]{_clock_text(now)}[/] [magenta]alert[/]      {channel}: "
        f"{escape(detail.get('subject') or detail.get('body') or '')}",
        soft_wrap=True,
    )
    if channel == "sms":
        console.print(
            f"             [magenta]SMS text[/] ({len(detail['body'])} chars): "
            f"{escape(detail['body'])}",
            soft_wrap=True,
        )
    elif channel == "email":
        body = detail["body"].strip().splitlines()
        console.print(
            "             [magenta]email body[/]:\n"
            + "\n".join(f"               {escape(line)}" for line in body[:12]),
            soft_wrap=True,
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

    def since_onset(t: float | None) -> float | None:
        if t is None or story.fault_onset is None:
            return None
        return round(t - story.fault_onset, 1)

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
        "mode": "streaming" if options.streaming else "window",
        "times": {name: _iso(value) for name, value in _moments(story)},
        "first_anomalous_reading_s": since_onset(story.first_anomaly),
        "detection_delay_s": since_onset(story.detected),
        "alarm_delay_s": since_onset(story.alarm),
        "acknowledgement": {
            "command": shlex.join(story.ack_command),
            "result": story.ack_result,
        },
        "false_alarms_before_onset": {
            "anomalous_rows": len(story.false_alarm_rows),
            "first": _iso(min(story.false_alarm_rows, default=None)),
            "alarms": story.alarms_before_onset,
        },
        "alerts_by_asset": story.alerts_by_asset,
        "model": model_info,
        "input_files": artefacts["input_files"],
        "executions": artefacts["executions"],
        "errors": story.errors,
        "out": str(layout.root),
        "files_kept": options.keep_files,
        "speed": options.sim_speed,
        "wall_s": round(wall_s, 1),
    }


def _moments(story: Story) -> list[tuple[str, float | None]]:
    """The story's moments in time order (a moment that did not happen goes last)."""
    moments = [
        ("fault_onset", story.fault_onset),
        ("first_anomalous_reading", story.first_anomaly),
        ("detected", story.detected),
        ("alarm", story.alarm),
        ("alert", story.alert),
        ("command_applied", story.command_applied),
        ("alarm_active", story.alarm_active),
        ("acknowledged", story.acknowledged),
        ("recovered", story.recovered),
    ]
    # stable: moments at the same instant keep the causal order listed above
    return sorted(moments, key=lambda m: (m[1] is None, m[1] or 0.0))


def _iso(t: float | None) -> str | None:
    """One precision everywhere: whole seconds of plant time, UTC."""
    return None if t is None else datetime.fromtimestamp(int(t), UTC).isoformat()


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _print_summary(console: Console, summary: dict[str, Any], options: DemoOptions) -> None:
    mode = summary["mode"]
    fields: dict[str, str] = {
        name.replace("_", " "): "yes" if ok else "NO" for name, ok in summary["checks"].items()
    }
    fields["first anomalous reading"] = (
        f"{_minutes(summary['first_anomalous_reading_s'])} after the fault began (data time)"
    )
    fields["detection delay"] = (
        f"{_minutes(summary['detection_delay_s'])} from fault to first anomalous result "
        f"({mode} mode, plant time)"
    )
    fields["alarm delay"] = f"{_minutes(summary['alarm_delay_s'])} from fault to alarm"
    if summary["acknowledgement"]["result"]:
        fields["acknowledgement"] = summary["acknowledgement"]["result"]
    early = summary["false_alarms_before_onset"]
    fields["false alarms before onset"] = (
        f"{early['anomalous_rows']} anomalous rows, {early['alarms']} alarms"
    )
    fields["input CSV files"] = str(summary["input_files"])
    fields["executions"] = str(summary["executions"])
    fields["wall time"] = f"{summary['wall_s']} s"
    if "report" in summary:
        fields["report"] = summary["report"]
    width = max(len(k) for k in fields)
    console.print("[bold]demo summary[/]")
    for key, value in fields.items():
        console.print(f"{key.ljust(width)}  {escape(value)}", soft_wrap=True)
    verdict = (
        "[green]story complete[/]" if summary["story_complete"] else "[red]story incomplete[/]"
    )
    where = (
        f"everything is in {escape(summary['out'])}"
        if options.keep_files
        else "its files are in a temporary folder, removed on exit (keep them with --out DIR "
        "or --keep)"
    )
    console.print(f"{verdict} - {where}", soft_wrap=True)
