"""``plantwatch detectors validate|run|analyze|list|describe``: check, try, inspect models.

``validate`` takes CreateDetectorModel and CreateInput bodies exactly as AWS does; a
reference to an input or attribute that no given ``--input`` defines is an error.
``run`` and ``analyze`` live in :mod:`cloud.cli.detectors_replay`.
``list`` and ``describe`` read the detector state a local runtime keeps in ``DIR/state.db``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Any

from cloud.cli import aws_target, status
from cloud.cli.detectors_replay import (
    add_analyze_arguments,
    add_run_arguments,
    model_and_inputs,
    run_analyze,
    run_replay,
)
from cloud.cli.output import Column, print_fields, print_json, print_line, print_table, stderr
from cloud.runtime.layout import DEFAULT_DATA_DIR as DEFAULT_DATA
from cloud.runtime.layout import DataLayout
from edge.cliargs import add_subcommands
from edge.errors import NotFoundError, UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_subcommands(parser, "action")
    validate = sub.add_parser(
        "validate",
        help="validate CreateDetectorModel JSON",
        description="Validate a CreateDetectorModel body (and the CreateInput bodies it "
        "reads) exactly as AWS IoT Events would.",
    )
    model_and_inputs(validate)
    validate.add_argument("--json", action="store_true", help="print one JSON document")
    add_run_arguments(sub)
    add_analyze_arguments(sub)
    push = sub.add_parser(
        "push",
        help="upload a detector model to the AWS deployment's artifacts bucket",
        description="Validate a CreateDetectorModel body against the results feeder's input "
        "(as the deployed functions load it) and upload it under detectors/ in the artifacts "
        "bucket; prints the key to deploy with -c detector_model_key=KEY.",
    )
    push.add_argument("model", type=Path, metavar="MODEL.json", help="CreateDetectorModel JSON")
    push.add_argument("--json", action="store_true", help="print one JSON document")
    aws_target.add_arguments(push, aws_target.ARTIFACTS, required=True)
    for name, summary in (
        ("list", "list detector instances"),
        ("describe", "DescribeDetector for one key"),
    ):
        child = sub.add_parser(name, help=summary, description=summary)
        child.add_argument(
            "--data",
            type=Path,
            default=Path(DEFAULT_DATA),
            metavar="DIR",
            help=f"runtime data directory holding state.db (default: {DEFAULT_DATA})",
        )
        child.add_argument("--model", help="detector model name (default: the only one)")
        if name == "describe":
            child.add_argument("key", nargs="?", help="key value (omit for keyless models)")
        else:
            child.add_argument(
                "--state",
                metavar="STATE",
                help="only instances in this state (ListDetectors' stateName filter)",
            )
        child.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    if args.action == "validate":
        return _validate(args)
    if args.action == "run":
        return run_replay(args)
    if args.action == "analyze":
        return run_analyze(args)
    if args.action == "push":
        return _push(args)
    return _inspect(args)


def _push(args: argparse.Namespace) -> int:
    """The key holds a digest of the body, so a changed model is a new key: deploying it
    changes the functions' ``DETECTOR_MODEL_KEY``, and new execution environments load it
    (a running one keeps the model it loaded)."""
    import hashlib

    from cloud.detectors.model import (
        check_references,
        default_detector_paths,
        load_detector_model,
        load_input,
    )
    from infra.config import DETECTORS_PREFIX

    body = args.model.read_bytes()
    model = load_detector_model(args.model)
    check_references(model, [load_input(default_detector_paths()[1])])
    key = f"{DETECTORS_PREFIX}{model.name}/{hashlib.sha256(body).hexdigest()[:12]}.json"
    target = aws_target.AwsTarget(args)
    bucket = target.name(aws_target.ARTIFACTS)
    target.bucket(bucket).put(key, body)
    deployed = target.deployment().detector_model_key if not args.artifacts_bucket else None
    document = {
        "detectorModelName": model.name,
        "bucket": bucket,
        "key": key,
        "deployed": deployed == key,
    }
    if args.json:
        print_json(document)
    else:
        print_fields({"detector model": model.name, "uploaded": f"s3://{bucket}/{key}"})
    if deployed != key:
        stderr.print(
            f"next: plantwatch deploy -c detector_model_key={key} (keep your other -c options)",
            markup=False,
        )
    return status.SUCCESS


def _validate(args: argparse.Namespace) -> int:
    from cloud.cli.template_values import parameter_values
    from cloud.detectors.model import check_references
    from cloud.migrate.iotevents import load_model_and_inputs

    model, inputs = load_model_and_inputs(
        args.model, args.inputs, "model", parameter_values(args.parameters), strict=not args.lenient
    )
    warnings = check_references(model, inputs)
    events = sum(len(s.on_enter) + len(s.on_input) + len(s.on_exit) for s in model.states.values())
    transitions = sum(len(s.transitions) for s in model.states.values())
    summary = {
        "valid": True,
        "detectorModelName": model.name,
        "key": model.key,
        "evaluationMethod": model.evaluation_method,
        "initialStateName": model.initial_state,
        "states": list(model.states),
        "events": events,
        "transitionEvents": transitions,
        "inputs": [i.name for i in inputs],
        "warnings": warnings,
    }
    for warning in warnings:
        stderr.print(f"warning: {warning}", markup=False)
    if args.json:
        print_json(summary)
    else:
        print_line(
            f"{args.model.name}: valid detector model {model.name!r}: {len(model.states)} states"
            f" ({', '.join(model.states)}), {events} events, {transitions} transitions,"
            f" key {model.key or '(none)'}, {model.evaluation_method};"
            f" inputs {', '.join(i.name for i in inputs) or '(none)'}"
        )
    return status.SUCCESS


def _states(registered: Any) -> list[str] | None:
    """The state names a model's registry document lists (None if it lists none)."""
    states = registered.get("states") if isinstance(registered, dict) else None
    if isinstance(states, list) and all(isinstance(s, str) for s in states):
        return states
    return None


def _inspect(args: argparse.Namespace) -> int:
    from cloud.adapters.local.sqlite_state_store import SqliteStateStore
    from cloud.detectors.engine import REGISTRY_NAMESPACE, describe_document
    from cloud.detectors.instances import key_misfit, key_value_problem

    db = DataLayout.existing(args.data).state_db
    if not os.path.lexists(db):  # no stack ran here yet (a directory there is named)
        from cloud.adapters.local.memory import InMemoryStateStore

        opened = contextlib.nullcontext(InMemoryStateStore())
    else:
        opened = SqliteStateStore(db, readonly=True)
    with opened as store:
        models = dict(store.items(REGISTRY_NAMESPACE))
        if args.model is not None:
            if args.model not in models:
                raise NotFoundError(
                    f"--model {args.model}: unknown detector model"
                    f" (known: {', '.join(models) or 'none'})"
                )
            names = [args.model]
        else:
            names = list(models)
        if args.action == "describe":
            if len(names) != 1:
                raise UserError(
                    f"--model: give one of: {', '.join(names) or 'none (no detectors yet)'}"
                )
            name = names[0]
            registered = models[name] if isinstance(models[name], dict) else {}
            model_key = registered.get("key")
            if args.key is not None:
                problem = key_value_problem("detector", name, args.key)
                if problem is not None:
                    raise UserError(problem)
            key = args.key or ""
            doc = store.get(f"detectors/{name}", key)
            if doc is None:
                # a registry written before it held the key cannot say whether one fits
                misfit = (
                    key_misfit("detector", name, model_key, args.key)
                    if "key" in registered
                    else None
                )
                raise NotFoundError(
                    misfit or f"detector {name!r} has no instance for key {args.key!r}"
                )
            described = describe_document(
                name, models[name].get("version", "1"), key, doc, _states(models[name])
            )
            if args.json:
                print_json(described)
            else:
                print_fields(_fields(described["detector"]))
            return status.SUCCESS
        rows: list[dict[str, Any]] = []
        for name in names:
            for key, doc in store.items(f"detectors/{name}"):
                described = describe_document(
                    name, models[name].get("version", "1"), key, doc, _states(models[name])
                )
                if args.state is None or described["detector"]["state"]["stateName"] == args.state:
                    rows.append(described["detector"])
    if args.json:
        print_json(rows)
        return status.SUCCESS
    print_table(
        [_fields(row) for row in rows],
        [Column(header, header) for header in _FIELDS],
        title="detector instances",
        empty=(
            f"no detector instances yet in {db}"
            if args.state is None
            else f"no detector instances in state {args.state!r} in {db}"
        ),
    )
    return status.SUCCESS


_FIELDS = ("model", "key", "state", "variables", "timers", "updated (UTC)")


def _fields(detector: dict[str, Any]) -> dict[str, Any]:
    from datetime import UTC, datetime

    def clock(epoch: float) -> str:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")

    state = detector["state"]
    return {
        "model": detector["detectorModelName"],
        "key": detector.get("keyValue", ""),
        "state": state["stateName"],
        "variables": ", ".join(f"{v['name']}={v['value']}" for v in state["variables"]),
        "timers": ", ".join(f"{t['name']}@{clock(t['timestamp'])}" for t in state["timers"]),
        "updated (UTC)": clock(detector["lastUpdateTime"]),
    }
