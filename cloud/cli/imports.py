"""``plantwatch import l4e|iotevents``: carry a retired L4E or IoT Events setup over.

Sources are only read (``s3://BUCKET/PREFIX`` or a folder); what is imported goes into
``--data DIR``. ``docs/migrating.md`` walks through both, step by step.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from cloud.cli import status
from cloud.cli.model import model_name
from cloud.cli.output import Column, print_fields, print_json, print_line, print_table, progress
from cloud.cli.template_values import add_parameter_argument, parameter_values
from cloud.l4e.naming import DELIMITERS, KEY_PATTERN_DELIMITERS
from cloud.runtime.layout import DEFAULT_DATA_DIR, QUARANTINE_PREFIX
from edge.cliargs import add_subcommands, int_range

UPLOAD_FREQUENCIES = ("PT5M", "PT10M", "PT15M", "PT30M", "PT1H")
_GENERIC = {"input", "inputs", "inference", "inference-data", "data", "output", "s3:"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_subcommands(parser, "source")
    l4e = sub.add_parser(
        "l4e",
        help="an L4E input bucket, its results.jsonl and labels (read only)",
        description="Register an L4E dataset's components and sensors, index its old "
        "results as executions and events, and train a model if asked. The sources are "
        "only read.",
    )
    l4e.add_argument(
        "--input",
        required=True,
        metavar="SRC",
        help="inference input files (<component>_<yyyyMMddHHmmss>.csv) or a historical "
        "dataset (<component>/*.csv): s3://BUCKET/PREFIX or a folder",
    )
    l4e.add_argument(
        "--output",
        metavar="SRC",
        help="the scheduler's output: <DataStartTime>/results.jsonl under s3://BUCKET/PREFIX "
        "or a folder",
    )
    l4e.add_argument(
        "--labels", metavar="SRC", help="label CSVs (start,end per line): s3://... or a folder"
    )
    l4e.add_argument(
        "--name",
        help="name of the imported scheduler and dataset (default: from the input location)",
    )
    l4e.add_argument(
        "--train", metavar="MODEL", type=model_name, help="also train this model from the input"
    )
    l4e.add_argument("--sampling-rate", help="TargetSamplingRate for --train, PT1S..PT1H")
    l4e.add_argument(
        "--off-condition", help="OffCondition for --train, e.g. 'pump\\motor_current < 1'"
    )
    l4e.add_argument(
        "--upload-frequency",
        choices=UPLOAD_FREQUENCIES,
        help="DataUploadFrequency of the old scheduler (default: read from the results)",
    )
    l4e.add_argument(
        "--delay-offset",
        type=int_range(0, 60, what="a whole number of minutes 0-60"),
        default=0,
        help="DataDelayOffsetInMinutes of the old scheduler (default 0)",
    )
    l4e.add_argument(
        "--delimiter",
        default="_",
        choices=DELIMITERS,
        metavar="DELIMITER",  # the choices hold a line feed: not for a usage line
        help="ComponentTimestampDelimiter of the input names: - _ '' or one whitespace "
        "character (default _)",
    )
    l4e.add_argument(
        "--timestamp-format",
        default="yyyyMMddHHmmss",
        choices=("yyyyMMddHHmmss", "yyyy-MM-dd-HH-mm-ss", "EPOCH"),
        help="TimestampFormat of the input names (default yyyyMMddHHmmss)",
    )
    l4e.add_argument("--tz-offset", default="+00:00", help="InputTimeZoneOffset, e.g. +05:30")
    l4e.add_argument(
        "--flat-delimiter",
        choices=KEY_PATTERN_DELIMITERS,
        help="also read a historical dataset flat under --input as <component><D>*.csv, the "
        "component being the name up to the first D (L4E's KeyPattern {prefix}/"
        "{component_name}[DELIMITER]*: '_', ' ', '.' or '-')",
    )
    l4e.add_argument("--endpoint-url", help="S3-compatible endpoint for s3:// sources (MinIO, ...)")
    _common(l4e)

    iot = sub.add_parser(
        "iotevents",
        help="detector models and inputs as `aws iotevents describe-*` prints them",
        description="Validate and register the describe-detector-model and describe-input "
        "JSON files of a folder; report what cannot run locally.",
    )
    iot.add_argument(
        "folder", type=Path, help="folder of describe-*/Create* JSON and CloudFormation JSON/YAML"
    )
    iot.add_argument(
        "--lambda",
        dest="lambdas",
        action="append",
        default=[],
        metavar="ARN=MODULE:FUNCTION",
        help="a Python callable that stands in for a Lambda function (repeatable)",
    )
    add_parameter_argument(iot)
    iot.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 if any action cannot run locally or any input is fed by nothing",
    )
    _common(iot)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="data directory to import into (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    if args.source == "l4e":
        return _l4e(args)
    return _iotevents(args)


# ---- L4E ------------------------------------------------------------------------------


def _source(text: str | None, option: str, endpoint: str | None) -> Any:
    from cloud.migrate.l4e import Source
    from cloud.migrate.source import Location, ReadOnlyStore
    from edge.errors import ConfigError

    if text is None:
        return None
    where = Location.parse(text, option)
    if where.bucket is not None:
        from cloud.adapters.aws import S3ObjectStore

        store: Any = S3ObjectStore(where.bucket, endpoint_url=endpoint)
    else:
        from cloud.adapters.local import FsObjectStore

        folder = Path(text)
        if not folder.is_dir():
            raise ConfigError(f"{option} {text}: no such folder (or pass s3://BUCKET/PREFIX)")
        store = FsObjectStore(folder, fsync=False)
    return Source(ReadOnlyStore(store, text), where.prefix, text)


def default_name(text: str) -> str:
    """The last meaningful part of the input location, as a scheduler name."""
    parts = [p for p in re.split(r"[/\\]", text.removeprefix("s3://")) if p]
    meaningful = [p for p in parts if p.lower() not in _GENERIC] or parts or ["l4e"]
    name = re.sub(r"[^0-9a-zA-Z_-]", "-", meaningful[-1]).strip("-")[:200]
    return name or "l4e"


def _l4e(args: argparse.Namespace) -> int:
    from cloud.adapters.local import FsObjectStore, SqliteStateStore
    from cloud.l4e.naming import InputNaming
    from cloud.migrate.l4e import L4EImporter, L4EOptions, TrainRequest
    from cloud.runtime.layout import DataLayout
    from edge.clock import SystemClock

    layout = DataLayout.planned(args.data)
    naming = InputNaming(args.delimiter, args.timestamp_format, args.tz_offset)
    inputs = _source(args.input, "--input", args.endpoint_url)
    outputs = _source(args.output, "--output", args.endpoint_url)
    labels = _source(args.labels, "--labels", args.endpoint_url)
    train = None
    if args.train:
        from cloud.inference.model import TrainConfig

        train = TrainRequest(
            args.train,
            TrainConfig(sampling_rate=args.sampling_rate, off_condition=args.off_condition),
        )
    options = L4EOptions(
        name=args.name or default_name(args.input),
        naming=naming,
        upload_frequency=args.upload_frequency,
        delay_offset_min=args.delay_offset,
        train=train,
        flat_delimiter=args.flat_delimiter,
    )
    layout = DataLayout.at(layout.root)
    state = SqliteStateStore(layout.state_db)
    try:
        with progress(None, f"import l4e {options.name}") as bar:

            def step(stage: str, total: int | None) -> None:
                if stage:
                    bar.stage(f"import l4e {options.name}: {stage}", total)
                else:
                    bar.advance(total or 1)

            importer = L4EImporter(
                FsObjectStore(layout.bucket), state, layout.registry(), SystemClock().now(), step
            )
            report = importer.run(options, inputs, outputs, labels)
    finally:
        state.close()
    if args.json:
        print_json(report)
        return status.SUCCESS
    _print_l4e(report, args.data, layout.bucket / QUARANTINE_PREFIX / "bad_result_line")
    return status.SUCCESS


def _print_l4e(report: dict[str, Any], data: str, quarantine: Path) -> None:
    name = report["Name"]
    model = report.get("Model")
    print_fields(
        {
            "scheduler": f"{name} (STOPPED, imported)",
            "input": report["Input"],
            "output": report["Output"],
            "components": len(report["Components"]),
            "files discarded": len(report["DiscardedFiles"]),
            "keys skipped": len(report["SkippedKeys"]),
            "upload frequency": report["UploadFrequency"],
            "executions": f"{report['Executions']} ({report['AnomalousExecutions']} anomalous)",
            "result rows": report["ResultRows"],
            "result lines quarantined": report["QuarantinedResultLines"],
            "events": report["Events"],
            "labels": report["LabelCount"],
            "model": f"{model['ModelName']} v{model['ModelVersion']} ({model['ModelQuality']})"
            if model
            else None,
        }
    )
    print_line()
    print_table(
        [
            {**c, "SensorList": ", ".join(c["Sensors"]), "SensorCount": len(c["Sensors"])}
            for c in report["Components"]
        ],
        [
            Column("component", "ComponentName"),
            Column("sensors", "SensorCount", "right"),
            Column("files", "Files", "right"),
            Column("rows", "Rows", "right"),
            Column("from", "DataStartTime"),
            Column("to", "DataEndTime"),
            Column("sensor names", "SensorList"),
        ],
        title="components",
    )
    if report["DiscardedFiles"]:
        print_line()
        print_table(
            report["DiscardedFiles"],
            [Column("discarded file", "Key"), Column("reason", "Reason")],
        )
    if report["QuarantinedResultLines"]:
        print_line()
        print_line(
            f"{report['QuarantinedResultLines']} results.jsonl line(s) were not results; "
            f"each is kept with its file, line and reason under {quarantine}"
        )
    print_line()
    print_line(f"next: plantwatch executions --scheduler {name} --data {data}")
    print_line(f"      plantwatch events --scheduler {name} --data {data}")


# ---- IoT Events -----------------------------------------------------------------------


def _iotevents(args: argparse.Namespace) -> int:
    from cloud.detectors.actions import load_callable
    from cloud.migrate.iotevents import import_folder
    from cloud.runtime.layout import DataLayout
    from edge.errors import UserError

    layout = DataLayout.planned(args.data)
    lambdas: dict[str, str] = {}
    for item in args.lambdas:
        arn, sep, target = item.partition("=")
        if not sep or not arn or not target:
            raise UserError(f"--lambda {item}: expected ARN=package.module:function")
        lambdas[arn] = target
    parameters = parameter_values(args.parameters)
    if not args.folder.is_dir():
        raise UserError(f"{args.folder}: no such folder of describe-* JSON or template files")
    layout = DataLayout.at(layout.root)
    report = import_folder(
        args.folder,
        layout.detectors,
        lambdas,
        resolve=load_callable,
        waiting=lambda: print(
            f"plantwatch: import iotevents: waiting for another import into "
            f"{layout.detectors} to finish (Ctrl-C stops)",
            file=sys.stderr,
            flush=True,
        ),
        parameters=parameters,
    )
    document = report.as_dict()
    if args.json:
        print_json(document)
    else:
        where = f"registered in {layout.detectors}"
        if document["models"]:  # an alarm-only import has none: no empty table
            print_table(
                [
                    {
                        **m,
                        "inputs": ", ".join(m["inputs"]),
                        "local": "yes" if m["runs_locally"] else "no, see below",
                    }
                    for m in document["models"]
                ],
                [
                    Column("detector model", "name"),
                    Column("states", "states", "right"),
                    Column("key", "key"),
                    Column("inputs", "inputs"),
                    Column("runs locally", "local"),
                ],
                title=where,
            )
        if document["alarm_models"]:
            if document["models"]:
                print_line()
            print_table(
                [{**a, "inputs": ", ".join(a["inputs"])} for a in document["alarm_models"]],
                [
                    Column("alarm model", "name"),
                    Column("key", "key"),
                    Column("inputs", "inputs"),
                    Column("file", "file"),
                ],
                title="alarm models" if document["models"] else f"alarm models {where}",
            )
        if document["cannot_run_locally"]:
            print_line()
            print_table(
                document["cannot_run_locally"],
                [
                    Column("model", "model"),
                    Column("action", "action"),
                    Column("where", "path"),
                    Column("why", "reason"),
                ],
                title="cannot run locally",
            )
        if document["inputs_not_fed_locally"]:
            print_line()
            print_table(
                document["inputs_not_fed_locally"],
                [Column("model", "model"), Column("input", "input"), Column("why", "reason")],
                title="inputs nothing feeds under plantwatch up",
            )
        notes = [
            f"{m['name']}: {text}"
            for m in document["models"]
            for text in m["warnings"] + m["findings"]
        ] + [f"{a['name']}: {text}" for a in document["alarm_models"] for text in a["warnings"]]
        notes += [
            f"{m['name']}: its iotEvents actions feed {', '.join(m['feeds'])}, read by other "
            "models of this import: plantwatch up routes them when it runs those models too"
            for m in document["models"] + document["alarm_models"]
            if m["feeds"]
        ]
        if notes:
            print_line()
            for note in notes:
                print_line(note)
        print_line()
        command = ["plantwatch", "up", "--data", str(args.data)]
        for model in document["models"]:  # up runs them together, routing between them
            command += ["--detector-model", model["name"]]
        for alarm in document["alarm_models"]:
            command += ["--alarm-model", alarm["file"]]
        print_line(f"next: {shlex.join(command)}")  # pasted into a shell as it is
    if args.strict and (document["cannot_run_locally"] or document["inputs_not_fed_locally"]):
        return status.FAILED
    return status.SUCCESS
