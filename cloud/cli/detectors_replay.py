"""``plantwatch detectors run|analyze``: try a detector model before it controls a plant.

``run`` replays BatchPutMessage-shaped JSONL offline on a manual clock and prints what the
model did (transitions, actions with evaluated payloads, timers, evaluation errors), then the
final DescribeDetector document of every instance; nothing is sent anywhere. ``analyze``
reports what AWS's StartDetectorModelAnalysis reports, on top of validation.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from cloud.cli import status
from cloud.cli.output import Column, print_json, print_line, print_table, stderr
from cloud.cli.template_values import add_parameter_argument
from edge.errors import UserError
from edge.user_files import read_document_text

MAX_MESSAGES_BYTES = 256 * 1024 * 1024
"""A replay file is read whole; far more than any hand-made trace, and /dev/zero stops here."""


def add_run_arguments(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="replay messages through a model offline and show what it does",
        description="Replay BatchPutMessage-shaped JSONL through a detector model on a manual"
        " clock. Actions are shown, never performed. Exit 0 done, 2 bad input.",
    )
    model_and_inputs(run)
    run.add_argument(
        "--messages",
        required=True,
        metavar="FILE",
        help='JSONL, one {"inputName", "payload", "messageId"?, "timestamp"?},'
        ' {"messages": [...]} (a BatchPutMessage request) or {"advance": "PT5M"} per line,'
        " or one request printed over several lines; - reads stdin",
    )
    clock_arguments(run, "timers fire")
    run.add_argument(
        "--evaluation-method",
        choices=("BATCH", "SERIAL"),
        help="override the model's evaluationMethod, to compare the two",
    )
    output = run.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON document")
    output.add_argument(
        "--jsonl",
        action="store_true",
        help="print one JSON line per event, then one line with the final detectors",
    )


def add_analyze_arguments(sub: Any) -> None:
    analyze = sub.add_parser(
        "analyze",
        help="report what AWS's detector model analysis reports",
        description="Validate a detector model, then report variables read before they are"
        " set, timers never set or never checked, unreachable states and conditions whose"
        " types can never match. Exit 0 no errors, 1 error findings, 2 invalid input.",
    )
    model_and_inputs(analyze)
    analyze.add_argument("--json", action="store_true", help="print one JSON document")


def model_and_inputs(parser: argparse.ArgumentParser) -> None:
    """MODEL.json, ``--input`` and ``--lenient``, as ``validate``, ``run`` and ``analyze`` take them."""
    parser.add_argument("model", type=Path, metavar="MODEL.json", help="CreateDetectorModel JSON")
    input_arguments(parser)
    parser.add_argument(
        "--lenient", action="store_true", help="skip AWS's structural limits (strict by default)"
    )


def input_arguments(parser: argparse.ArgumentParser) -> None:
    """``--input INPUT.json`` (repeatable) and ``--parameter NAME=VALUE`` for a template's
    parameters, as every command that loads a model takes them."""
    add_parameter_argument(parser)
    parser.add_argument(
        "--input",
        dest="inputs",
        type=Path,
        action="append",
        default=[],
        metavar="INPUT.json",
        help="CreateInput JSON the model reads (repeatable)",
    )


def clock_arguments(parser: argparse.ArgumentParser, why: str) -> None:
    """``--advance`` and ``--start``, as the replays take them."""
    parser.add_argument(
        "--advance",
        default="0s",
        metavar="DURATION",
        help=f"move the clock this far after the last line, so {why} (PT5M, 90s, 2h)",
    )
    parser.add_argument(
        "--start",
        metavar="TIME",
        help="ISO 8601 time the clock starts at (default: the first message timestamp,"
        " else 2026-01-01T00:00:00Z)",
    )


def run_replay(args: argparse.Namespace) -> int:
    from cloud.adapters.local import InMemoryStateStore
    from cloud.cli.template_values import parameter_values
    from cloud.detectors.model import check_references
    from cloud.detectors.replay import not_read_summary, read_steps, replay
    from cloud.migrate.iotevents import load_model_and_inputs

    model, inputs = load_model_and_inputs(
        args.model, args.inputs, "model", parameter_values(args.parameters), strict=not args.lenient
    )
    check_references(model, inputs)
    start, steps, advance = replay_steps(args, args.messages, read_steps, model, inputs)
    with silenced("cloud.detectors.engine"):
        result = replay(
            model,
            inputs,
            steps,
            InMemoryStateStore(),
            start=start,
            advance_after=advance,
            evaluation_method=args.evaluation_method,
        )
    for warning in result.warnings:
        stderr.print(f"warning: {warning}", markup=False, soft_wrap=True)
    if args.json:
        print_json(result.document())
    elif args.jsonl:
        summary = not_read_summary(result.model, result.not_read)
        if summary:  # stdout holds only the events' lines
            stderr.print(summary, markup=False, soft_wrap=True)
        for event in result.events():
            print_line(json.dumps(event, separators=(",", ":"), default=str))
        print_line(
            json.dumps(
                {"type": "detectors", "detectors": list(result.detectors)},
                separators=(",", ":"),
                default=str,
            )
        )
    else:
        _print_tables(result)
    return status.SUCCESS


def replay_steps(
    args: argparse.Namespace, messages: str, read: Callable[..., Any], model: Any, inputs: Any
) -> tuple[float, list[Any], float]:
    """The start, the checked steps of *messages* (read by *read*, a replay's reader) and
    ``--advance`` in seconds: every option and line checked before anything runs."""
    advance = advance_seconds(args.advance)
    start = start_time(args.start)
    lines, source = message_lines(messages)
    start, steps = read(lines, source, model, inputs, start=start)
    check_advance(start, steps, advance)
    return start, steps, advance


@contextmanager
def silenced(logger: str) -> Iterator[None]:
    """The replay's events carry every problem; the engine's own log lines would repeat them."""
    engine_log = logging.getLogger(logger)
    previous = engine_log.level
    engine_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        engine_log.setLevel(previous)


def start_time(text: str | None) -> float | None:
    """``--start`` as epoch seconds (None: not given); UserError for a time a replay cannot use."""
    from datetime import UTC

    from cloud.detectors.replay import LATEST, iso_time

    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"--start: expected an ISO 8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not moment.timestamp() <= LATEST:
        raise UserError(f"--start: after {iso_time(LATEST)}")
    return moment.timestamp()


def message_lines(name: str) -> tuple[Iterable[str], str]:
    """The lines of a replay file (``-``: stdin) and the name its errors are reported under."""
    if name == "-":
        return sys.stdin, "stdin"
    path = Path(name)
    try:
        text = read_document_text(path, limit=MAX_MESSAGES_BYTES)
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: {exc}") from None
    return io.StringIO(text, newline=None), path.name


def advance_seconds(text: str) -> float:
    """``--advance`` in seconds; UserError naming the option for a bad duration."""
    from cloud.detectors.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UserError(f"--advance: {exc}") from None


def check_advance(start: float, steps: Sequence[Any], advance: float) -> None:
    """UserError when ``--advance`` after the last step would move the clock past LATEST."""
    from cloud.detectors.replay import LATEST, iso_time

    last = max([start, *(step.at for step in steps)])
    if not last + advance <= LATEST:
        raise UserError(f"--advance: moves the clock past {iso_time(LATEST)}")


def _print_tables(result: Any) -> None:
    from cloud.detectors.durations import format_duration
    from cloud.detectors.replay import not_read_summary

    rows = [_row(event, result.start) for event in result.events()]
    print_table(
        rows,
        [
            Column("t", "t", justify="right"),
            Column("key", "key"),
            Column("type", "type"),
            Column("what", "what"),
            Column("detail", "detail"),
        ],
        title=f"{result.model} ({result.evaluation_method}) from {_iso(result.start)}",
        empty="no events (no line reached the model)",
    )
    summary = not_read_summary(result.model, result.not_read)
    if summary:
        print_line(summary)
    finals = []
    for doc in result.detectors:
        detector = doc["detector"]
        state = detector["state"]
        finals.append(
            {
                "key": detector.get("keyValue", ""),
                "state": state["stateName"],
                "variables": ", ".join(f"{v['name']}={v['value']}" for v in state["variables"]),
                "timers": ", ".join(
                    f"{t['name']}@{format_duration(t['timestamp'] - result.start)}"
                    for t in state["timers"]
                ),
            }
        )
    print_line()
    print_table(
        finals,
        ["key", "state", "variables", "timers"],
        title=f"detectors at {format_duration(result.end - result.start)}",
        empty="no detector instances",
    )


def _iso(epoch: float) -> str:
    from cloud.detectors.replay import iso_time

    return iso_time(epoch)


def _row(event: dict[str, Any], start: float) -> dict[str, Any]:
    from cloud.detectors.durations import format_duration

    kind = event["type"]
    what, detail = "", ""
    if kind == "input":
        what, detail = event["input"], f"messageId {event['messageId']}"
    elif kind == "skipped":
        what, detail = event["input"], event["reason"]
    elif kind == "created":
        what = f"in {event['state']}"
    elif kind == "transition":
        what, detail = f"{event['from']} -> {event['to']}", f"event {event['event']!r}"
    elif kind == "action":
        what = f"{event['action']} ({event['event']})"
        if event["action"] == "setVariable":
            detail = f"{event['target']['variableName']} = {_compact(event['value'])}"
        else:
            target = ", ".join(f"{k}={_compact(v)}" for k, v in event["target"].items())
            detail = f"{target}; payload {_compact(event['payload'])}"
    elif kind == "timer":
        what = f"{event['op']} {event['name']}"
        if "seconds" in event:
            detail = f"{event['seconds']:g} s, fires at {event['expires']}"
        elif event["op"] == "cleared" and not event.get("running", True):
            detail = "was not running"
    elif kind == "error":
        what = event["path"]
        detail = event["message"]
        if event.get("expression"):
            detail += f" in {event['expression']}"
    return {
        "t": format_duration(event["t"]),
        "key": event.get("key") or "",
        "type": kind,
        "what": what,
        "detail": detail,
    }


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def run_analyze(args: argparse.Namespace) -> int:
    from cloud.cli.template_values import parameter_values
    from cloud.detectors.analysis import analyze
    from cloud.detectors.model import check_references
    from cloud.migrate.iotevents import load_model_and_inputs

    model, inputs = load_model_and_inputs(
        args.model,
        args.inputs,
        "model",
        parameter_values(args.parameters),
        strict=not args.lenient,
        references=False,
    )
    warnings = check_references(model, inputs, analysis=True)
    findings = analyze(model, inputs)
    document = {
        "detectorModelName": model.name,
        "analysisResults": [f.as_dict() for f in findings],
        "warnings": warnings,
    }
    for warning in warnings:
        stderr.print(f"warning: {warning}", markup=False, soft_wrap=True)
    errors = sum(1 for f in findings if f.level == "ERROR")
    if args.json:
        print_json(document)
    else:
        print_table(
            [
                {"level": f.level, "type": f.type, "path": f.path, "message": f.message}
                for f in findings
            ],
            ["level", "type", "path", "message"],
            title=f"analysis of {model.name}",
            empty=f"{args.model.name}: no findings",
        )
    if errors:
        stderr.print(f"{args.model.name}: {errors} error finding(s)", markup=False)
        return status.FAILED
    return status.SUCCESS
