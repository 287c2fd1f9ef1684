"""``plantwatch up``: the local stack in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cloud.cli import status
from cloud.runtime.layout import DEFAULT_DATA_DIR
from edge.cliargs import int_range, non_negative_float, port
from edge.signals import stop_event
from edge.wire import MAX_PUBLISHES_PER_S


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", default=DEFAULT_DATA_DIR, help="data directory (default: %(default)s)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="broker bind address; anything but loopback needs --auth",
    )
    parser.add_argument(
        "--port", type=port, default=1883, help="broker port; 0 picks a free one (default 1883)"
    )
    parser.add_argument(
        "--broker",
        choices=("amqtt", "mosquitto", "auto"),
        default="amqtt",
        help="embedded broker (default: %(default)s, installed with pip)",
    )
    parser.add_argument(
        "--broker-url",
        help="use this external broker instead (mqtt://[USER:PASSWORD@]HOST:PORT)",
    )
    parser.add_argument(
        "--auth",
        action="store_true",
        help="broker credentials and topic ACLs (DATA/auth/); add devices with "
        "`plantwatch auth add-device`",
    )
    parser.add_argument(
        "--max-message-kb",
        type=int_range(1, 262_144, what="a size in KB from 1 to 262144"),
        default=128,
        help="disconnect a client that publishes a larger message (default: %(default)s, "
        "as IoT Core)",
    )
    parser.add_argument(
        "--max-publishes-per-s",
        type=int_range(0, 1_000_000, what="a count from 0 to 1000000"),
        default=MAX_PUBLISHES_PER_S,
        help="embedded amqtt broker: drop a connection's publishes past this many a second, "
        "unacknowledged, as IoT Core does (default: %(default)s, as IoT Core; 0: no limit; "
        "the stack's services are exempt)",
    )
    parser.add_argument(
        "--model", help="trained model name to schedule (see `plantwatch model train`)"
    )
    parser.add_argument(
        "--upload-frequency",
        default="PT5M",
        choices=("PT5M", "PT10M", "PT15M", "PT30M", "PT1H"),
        help="length of a batch window and of the scheduler's period (default PT5M)",
    )
    parser.add_argument(
        "--delay-offset",
        type=int_range(0, 60, what="a whole number of minutes 0-60"),
        default=1,
        help="scheduler delay offset, minutes 0-60 (default 1)",
    )
    parser.add_argument(
        "--streaming",
        action="store_true",
        help="score each reading as it arrives (results under stream/) instead of per window",
    )
    parser.add_argument(
        "--site",
        action="append",
        dest="sites",
        metavar="SITE",
        help="a site to score, repeatable; the first keeps the flat L4E names "
        "(input/<asset>_<ts>.csv), each other one gets input/<site>/, output/<site>/ and "
        "its own scheduler (default: s1)",
    )
    parser.add_argument(
        "--no-archive",
        action="store_true",
        help="do not keep readings in the Parquet archive (DIR/buckets/plantwatch/archive/)",
    )
    parser.add_argument(
        "--archive-flush-s",
        type=non_negative_float,
        default=60.0,
        metavar="SECONDS",
        help="longest a written window waits before its readings reach the archive "
        "(default 60; 200,000 waiting readings flush at once)",
    )
    parser.add_argument(
        "--detector-model",
        type=Path,
        action="append",
        default=[],
        help="IoT Events detector-model JSON, or the name of one registered with "
        "`plantwatch import iotevents` (its inputs and callables come with it); repeatable: "
        "each runs on the detector inputs, and an iotEvents action reaches every model "
        "reading its input",
    )
    parser.add_argument(
        "--detector-input",
        type=Path,
        action="append",
        default=[],
        help="IoT Events input JSON (repeatable)",
    )
    parser.add_argument(
        "--alarm-model",
        type=Path,
        action="append",
        default=[],
        help="IoT Events CreateAlarmModel JSON, or the name of one `plantwatch import "
        "iotevents` registered, run on the detector inputs (repeatable; with --model and no "
        "--detector-model, the shipped anomaly_score alarm)",
    )
    parser.add_argument(
        "--alert-limit",
        default="10/PT1H",
        metavar="N/DURATION",
        help="per-asset notification budget; alerts over it are counted, not sent"
        " (default: %(default)s)",
    )
    add_dashboard_arguments(parser)


def add_dashboard_arguments(parser: argparse.ArgumentParser, *, free_port: bool = False) -> None:
    """The dashboard options ``up`` and ``demo`` share (the demo serves on a free port)."""
    default = "0 (a free port)" if free_port else "8600, or a free port when 8600 is busy"
    parser.add_argument(
        "--dashboard-port",
        type=port,
        default=0 if free_port else None,
        metavar="PORT",
        help=f"web dashboard port; 0 picks a free one (default {default})",
    )
    parser.add_argument(
        "--dashboard-host",
        default="127.0.0.1",
        metavar="HOST",
        help="web dashboard bind address (default 127.0.0.1); anything else needs --auth, "
        "and then asks for HTTP Basic auth as plantwatch-operator",
    )
    parser.add_argument(
        "--no-dashboard", action="store_true", help="do not serve the web dashboard"
    )
    parser.add_argument(
        "--alarm-actions",
        action="store_true",
        help="let the dashboard acknowledge and snooze alarms (read-only otherwise)",
    )


def dashboard_config(args: argparse.Namespace) -> Any:
    """The DashboardConfig the options ask for, or None with --no-dashboard."""
    if args.no_dashboard:
        return None
    from cloud.dashboard.server import DEFAULT_PORT, DashboardConfig

    chosen = args.dashboard_port
    config = DashboardConfig(
        host=args.dashboard_host,
        port=DEFAULT_PORT if chosen is None else chosen,
        alarm_actions=args.alarm_actions,
        any_port_if_busy=chosen is None,
    )
    if not getattr(args, "auth", False):
        config.check()  # with --auth the stack gives it the operator's credential
    return config


def run(args: argparse.Namespace) -> int:
    from cloud.archive import ArchivePolicy
    from cloud.cli.output import stderr
    from cloud.l4e.sites import DEFAULT_SITE
    from cloud.runtime.layout import DataLayout
    from cloud.runtime.stack import LocalStack, StackConfig
    from edge.clock import SystemClock

    if not args.broker_url and args.port:
        _check_port_free(args.host, args.port)
    if not args.no_dashboard and args.dashboard_port:  # asked for by number: it must be free
        _check_port_free(args.dashboard_host, args.dashboard_port, "--dashboard-port")
    detector_models, detector_inputs, lambdas, alarm_models = resolve_models(args)
    config = StackConfig(
        data=DataLayout.at(args.data),
        broker_url=args.broker_url,
        broker_kind=args.broker,
        host=args.host,
        port=args.port,
        upload_frequency=args.upload_frequency,
        delay_offset_min=args.delay_offset,
        model_name=args.model,
        detector_models=detector_models,
        detector_inputs=detector_inputs,
        detector_lambdas=lambdas,
        alarm_models=alarm_models,
        alert_limit=parse_alert_limit(args.alert_limit),
        streaming=args.streaming,
        sites=tuple(args.sites or (DEFAULT_SITE,)),
        dashboard=dashboard_config(args),
        auth=args.auth,
        max_message_kb=args.max_message_kb,
        max_publishes_per_s=args.max_publishes_per_s,
        archive=not args.no_archive,
        archive_policy=ArchivePolicy(flush_age_s=args.archive_flush_s),
    )

    def on_event(kind: str, detail: dict) -> None:
        if kind == "batch":
            stderr.print(f"batch      {detail['key']}", markup=False, soft_wrap=True)
        elif kind == "alert":
            line = f"alert      {detail['channel']}: {detail['subject'] or detail['body']}"
            stderr.print(line, markup=False, soft_wrap=True)
        elif kind == "error":
            stderr.print(f"error      {detail['error']}", markup=False, soft_wrap=True)
        elif kind == "execution":
            ex = detail["execution"]
            stderr.print(f"execution  {ex.data_end:%H:%M} {ex.status}", markup=False)

    # before start: a stop that comes once the address is printed must find the handler
    # (Python's default SIGTERM action would exit without flushing the open windows)
    done = stop_event()
    stack = LocalStack(config, SystemClock(), on_event).start()
    print(f"broker: {stack.broker_url}", flush=True)
    if stack.dashboard is not None:
        print(f"dashboard: {stack.dashboard.url}", flush=True)
    stderr.print(
        f"data: {config.data.root} (runtime.json written); Ctrl-C to stop",
        markup=False,
        soft_wrap=True,
    )
    if stack.auth is not None:
        stderr.print(
            f"auth: anonymous clients refused; credentials in {stack.auth.root} "
            "(add a device: plantwatch auth add-device THING --site SITE)",
            markup=False,
            soft_wrap=True,
        )
    done.wait()
    stderr.print("stopping: flushing open windows")
    stack.stop()
    sys.stdout.flush()
    return status.SUCCESS


def resolve_models(
    args: argparse.Namespace,
) -> tuple[tuple[Path, ...], tuple[Path, ...], tuple[tuple[str, str], ...], tuple[Path, ...]]:
    """``(detector models, input files, lambdas, alarm model files)`` the stack runs, from
    files or the names ``import iotevents`` registered, each loaded once to check it.

    The engines share one list of inputs: the ``--detector-input`` files, then each input a
    registered model reads that the list does not hold yet, by name. A registered detector
    model brings the registry's callables; an imported alarm model may read an input that a
    detector model's ``iotEvents`` action feeds, which no detector model reads."""
    detector_models: list[Path] = []
    detector_inputs = tuple(args.detector_input)
    lambdas: dict[str, str] = {}
    for given in args.detector_model:
        if given.exists():
            detector_models.append(given)
            continue
        model, inputs, registered_lambdas = _registered(args.data, given)
        detector_models.append(model)
        detector_inputs += _new_inputs(inputs, detector_inputs)
        lambdas.update(registered_lambdas)
    alarm_models = tuple(_alarm_model_file(args.data, path) for path in args.alarm_model)
    if args.model and not detector_models:
        from cloud.detectors.alarms.model import default_alarm_path
        from cloud.feeder import default_detector_paths

        default_model, default_input = default_detector_paths()
        detector_models.append(default_model)
        detector_inputs = detector_inputs or (default_input,)
        alarm_models = alarm_models or (default_alarm_path(),)
    detector_inputs += _registered_alarm_inputs(args.data, alarm_models, detector_inputs)
    models = tuple(detector_models)
    callables = tuple(sorted(lambdas.items()))
    _check_models(args.data, args.model, models, detector_inputs, alarm_models, callables)
    return models, detector_inputs, callables, alarm_models


def _new_inputs(inputs: Iterable[Path], given: tuple[Path, ...]) -> tuple[Path, ...]:
    """The input files of *inputs* whose input names *given* does not hold yet (nor an
    earlier one of *inputs*): the engines share one list, in which a name is one input."""
    from cloud.detectors import load_input

    names = {load_input(path).name for path in given}
    added: list[Path] = []
    for path in inputs:
        name = load_input(path).name
        if name not in names:
            names.add(name)
            added.append(path)
    return tuple(added)


def _registered_alarm_inputs(
    data: str, alarm_models: tuple[Path, ...], given: tuple[Path, ...]
) -> tuple[Path, ...]:
    """The registered inputs of the alarm models ``import iotevents`` registered that the
    stack's inputs (*given*) do not hold yet, by input name."""
    from cloud.detectors.alarms import load_alarm_model
    from cloud.migrate.iotevents import registered_alarm, registered_alarm_inputs
    from cloud.runtime.layout import DataLayout

    detectors = DataLayout(Path(data)).detectors
    found: list[Path] = []
    for path in alarm_models:
        name = load_alarm_model(path).name
        stored = registered_alarm(detectors, name)
        if stored is None or stored.resolve() != path.resolve():
            continue  # a file of the user's own: its inputs are theirs to give
        found.extend(registered_alarm_inputs(detectors, name))
    return _new_inputs(found, given)


def _check_models(
    data: str,
    model_name: str | None,
    detector_models: tuple[Path, ...],
    detector_inputs: tuple[Path, ...],
    alarm_models: tuple[Path, ...],
    lambdas: tuple[tuple[str, str], ...],
) -> None:
    """Load every model, input and callable the stack is given before anything starts.
    The stack loads them only after the broker, shadow service and ingest are up, so a
    bad file was found seconds later and everything was stopped again; the files are
    small, so reading them twice costs little."""
    from cloud.detectors import load_detector_model, load_input
    from cloud.detectors.actions import load_callable
    from cloud.detectors.alarms import load_alarm_model
    from cloud.detectors.alarms.model import check_alarm_references
    from cloud.runtime.layout import DataLayout
    from cloud.runtime.stack import load_model
    from edge.errors import ConfigError

    inputs = [load_input(path) for path in detector_inputs]
    detectors: dict[str, Path] = {}
    for path in detector_models:
        name = load_detector_model(path).name
        if name in detectors:  # one state namespace: the second would take the first's place
            raise ConfigError(
                f"--detector-model {path}: detectorModelName {name!r} is also "
                f"{detectors[name]}'s; each detector model needs its own name"
            )
        detectors[name] = path
    names: dict[str, Path] = {}
    for path in alarm_models:
        alarm = load_alarm_model(path)
        if inputs:  # as the stack's alarm engine checks it, before anything starts
            check_alarm_references(alarm, inputs)
        name = alarm.name
        if name in names:
            # a second engine of one name would delete the first's instances (as an
            # UpdateAlarmModel) and take its place: one of the two would never run
            raise ConfigError(
                f"--alarm-model {path}: alarmModelName {name!r} is also {names[name]}'s;"
                " each alarm model needs its own name"
            )
        names[name] = path
    for _arn, spec in lambdas:
        load_callable(spec)
    if model_name:
        load_model(DataLayout(Path(data)).models, model_name)


def _registered(
    data: str, name: Path
) -> tuple[Path, tuple[Path, ...], tuple[tuple[str, str], ...]]:
    """A model ``plantwatch import iotevents`` registered in DATA/detectors/, by name."""
    from cloud.migrate.iotevents import registered
    from cloud.runtime.layout import DataLayout
    from edge.errors import ConfigError

    detectors = DataLayout(Path(data)).detectors
    found = registered(detectors, str(name))
    if found is None:
        raise ConfigError(
            f"--detector-model {name}: no such file, and no model of that name registered in "
            f"{detectors} (see `plantwatch import iotevents`)"
        )
    model, inputs, lambdas = found
    return model, tuple(inputs), tuple(sorted(lambdas.items()))


def _alarm_model_file(data: str, name: Path) -> Path:
    """``--alarm-model`` as a file, or as the name of an alarm model ``plantwatch import
    iotevents`` registered: its stored file moves with each import, its name does not."""
    if name.exists():
        return name
    from cloud.migrate.iotevents import registered_alarm
    from cloud.runtime.layout import DataLayout
    from edge.errors import ConfigError

    detectors = DataLayout(Path(data)).detectors
    found = registered_alarm(detectors, str(name))
    if found is None:
        raise ConfigError(
            f"--alarm-model {name}: no such file, and no alarm model of that name registered "
            f"in {detectors} (see `plantwatch import iotevents`)"
        )
    return found


def parse_alert_limit(text: str) -> tuple[int, float]:
    """``10/PT1H`` -> (10, 3600.0); UserError naming the option otherwise."""
    from cloud.detectors.durations import parse_duration
    from edge.errors import UserError

    count, _, window = text.partition("/")
    try:
        limit, seconds = int(count), parse_duration(window or "PT1H")
    except ValueError:
        raise UserError(
            f"--alert-limit: expected N/DURATION such as 10/PT1H, got {text!r}"
        ) from None
    if limit < 1 or seconds <= 0:
        raise UserError(f"--alert-limit: needs N >= 1 and a positive duration, got {text!r}")
    return limit, seconds


def _check_port_free(host: str, number: int, option: str = "--port") -> None:
    """A busy port is bad input, named before the broker starts (not a broker crash)."""
    import socket

    from edge.errors import ConfigError

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, number))
        except OSError as exc:
            raise ConfigError(
                f"{option} {number}: cannot listen on {host}:{number} ({exc.strerror}); "
                "pick another port or --port 0 for a free one"
            ) from None
