"""Take in IoT Events definitions as ``aws iotevents describe-*`` prints them.

A folder of JSON files, each one of:

- ``describe-detector-model`` output: ``{"detectorModel": {"detectorModelDefinition": ...,
  "detectorModelConfiguration": {detectorModelName, key, evaluationMethod, roleArn, ...}}}``;
- ``describe-input`` output: ``{"input": {"inputConfiguration": {inputName, ...},
  "inputDefinition": ...}}``;
- or the CreateDetectorModel / CreateInput bodies themselves.

Every file is unwrapped into its Create body, validated exactly as ``plantwatch detectors
validate`` does (a problem names the file and the JSON path *in that file*), and checked
against the inputs of the folder. Nothing is registered unless every file is valid. Then
the bodies are stored as one set, ``<detectors>/sets/<digest>/models/<name>.json`` and
``.../inputs/<name>.json``, and listed in ``<detectors>/registry.json``, which ``plantwatch
up --detector-model NAME`` reads.

All or nothing: the set is written to a staging folder, renamed into ``sets/`` whole, and
only then does the registry (replaced atomically) name it; a failure at any write removes
what this run staged and leaves the registry, and every file it names, as they were. The
set's name is a digest of its content, so importing the same folder again writes nothing
new. Sets (and files of the earlier ``models/``, ``inputs/`` layout) that the registry no
longer names are removed after the commit.

The report says, action by action, what would not run locally: ``lambda`` without a
registered callable (``ARN=module:function``), ``iotEvents`` into an input no model of the
import reads (``up`` routes one to every model it runs that reads the input), and the AWS-only ``sqs``, ``firehose``, ``dynamoDB``, ``dynamoDBv2`` and
``iotSiteWise`` (recorded in the action outbox, not performed), with the analyzer's
findings (``plantwatch detectors analyze``). It also names the inputs nothing feeds under
``plantwatch up``: the stack sends its detectors the scoring results as ``AnomalyResults``
(:mod:`cloud.feeder`) and routes an ``iotEvents`` action of a model it runs to the others
(:mod:`cloud.migrate.feeds`); an input that an IoT rule's ``iotEvents`` action fed on AWS
gets no messages locally (``plantwatch detectors run`` replays any input).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloud.detectors.alarms.model import AlarmModel, check_alarm_references, load_alarm_model
from cloud.detectors.analysis import analyze
from cloud.detectors.engine import used_inputs
from cloud.detectors.model import (
    NAME_RE,
    Action,
    DetectorModel,
    InputDefinition,
    check_references,
    load_detector_model,
    load_input,
    one_line,
    unknown_field,
)
from cloud.feeder import INPUT_NAME as RESULTS_INPUT
from cloud.migrate.cloudformation import (
    GIVEN,
    NestedStack,
    Resource,
    iotevents_resources,
    is_template,
    load_json,
    nested_stacks,
    typed,
)
from cloud.migrate.feeds import Feeds, ModelFeeds, local_feeds
from edge.errors import DetectorModelError, UserError
from edge.files import directory_lock, private_dir, write_private
from edge.user_files import parse_problem, read_document_text

REGISTRY_FILE = "registry.json"
PLACEHOLDER_ROLE = "arn:aws:iam::000000000000:role/plantwatch-import-no-role"
SETS_DIR = "sets"
STAGING_PREFIX = ".import-"
log = logging.getLogger(__name__)
AWS_ONLY = ("sqs", "firehose", "dynamoDB", "dynamoDBv2", "iotSiteWise")
_MODEL_FIELDS = (
    "detectorModelName",
    "detectorModelDescription",
    "key",
    "roleArn",
    "evaluationMethod",
)
_MODEL_OUTPUT_FIELDS = (
    "detectorModelVersion",
    "detectorModelArn",
    "creationTime",
    "lastUpdateTime",
    "status",
)
"""What DetectorModelConfiguration holds beside the CreateDetectorModel fields."""
_INPUT_FIELDS = ("inputName", "inputDescription")
_INPUT_OUTPUT_FIELDS = ("inputArn", "creationTime", "lastUpdateTime", "status")
"""What InputConfiguration holds beside the CreateInput fields."""
_ALARM_OUTPUT_FIELDS = (
    "alarmModelArn",
    "alarmModelVersion",
    "creationTime",
    "lastUpdateTime",
    "status",
    "statusMessage",
)
"""What describe-alarm-model prints beside the CreateAlarmModel fields."""
_CALLABLE_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass
class _Parsed:
    kind: str
    """``model``, ``input`` or ``alarm``."""
    path: Path
    body: dict[str, Any]
    wrapped: bool
    """It came as describe-* output (paths in errors get the wrapper back)."""
    outer: str = ""
    """The key describe-* output holds it under (``detectorModel``, ``input``); none when
    the output was narrowed to that object (``--query detectorModel``)."""
    version: str = "1"
    """``detectorModelVersion`` from the describe output."""
    resource: Resource | None = None
    """The CloudFormation resource it came from (paths in errors go back to the template)."""
    notes: list[str] = field(default_factory=list)
    """What the import filled in, reported with the model's warnings."""


@dataclass
class Unsupported:
    model: str
    path: str
    action: str
    reason: str
    source: str = ""
    """The file it came from."""

    def as_dict(self) -> dict[str, str]:
        return {
            "model": self.model,
            "file": self.source,
            "path": self.path,
            "action": self.action,
            "reason": self.reason,
        }


@dataclass
class IotEventsImport:
    models: list[dict[str, Any]] = field(default_factory=list)
    alarm_models: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    unsupported: list[Unsupported] = field(default_factory=list)
    unfed: list[dict[str, str]] = field(default_factory=list)
    """Inputs a model reads that nothing sends it under ``plantwatch up``."""
    lambdas: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "alarm_models": self.alarm_models,
            "inputs": self.inputs,
            "cannot_run_locally": [u.as_dict() for u in self.unsupported],
            "inputs_not_fed_locally": self.unfed,
            "lambdas": self.lambdas,
        }


def import_folder(
    folder: Path,
    detectors: Path,
    lambdas: Mapping[str, str] | None = None,
    *,
    resolve: Callable[[str], Any] | None = None,
    waiting: Callable[[], None] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> IotEventsImport:
    """Validate every JSON file of *folder* and register them under *detectors*.

    *lambdas* maps function ARNs to ``module:function`` callables (added to those already
    registered); *resolve* imports one, so a callable that does not exist is an error now,
    not when the alarm fires.

    The registration (registry read, set written, registry replaced, old sets removed)
    holds an exclusive lock on *detectors*: a second import at the same time waits for
    it (calling *waiting* once first) and then adds to what the first registered,
    instead of writing a registry that drops it.

    *parameters* are the values the stacks of the folder's templates were deployed with,
    of their parameters and pseudo parameters; one that no template declares is refused, as
    ``aws cloudformation deploy`` refuses it, so a misspelt name is not silently unused.
    """
    if not folder.is_dir():
        raise UserError(f"{folder}: not a directory of describe-* JSON or CloudFormation templates")
    assembly = cdk_templates(folder)
    files = _documents(folder) if assembly is None else assembly
    if assembly == []:
        raise UserError(f"{folder / CDK_MANIFEST}: a CDK cloud assembly naming no stack template")
    if not files:
        raise UserError(f"{folder}: no .json, .yaml, .yml or .template files")
    values = dict(parameters or {})
    declared: set[str] = set()
    parsed = [
        item
        for path in files
        for item in _parse(path, folder, values, declared, assembly=assembly is not None)
    ]
    refuse_undeclared(values, declared, f"in {folder}")
    for item in parsed:
        _fill_name(item, folder)
        _fill_role(item, folder)
    inputs: dict[str, tuple[InputDefinition, _Parsed]] = {}
    for item in parsed:
        if item.kind == "input":
            definition = _checked(item, lambda i=item: load_input(i.body, source=_name(i, folder)))
            if definition.name in inputs:
                raise UserError(
                    f"{_name(item, folder)}: input {definition.name!r} is also defined in "
                    f"{_name(inputs[definition.name][1], folder)}"
                )
            inputs[definition.name] = (definition, item)
    for arn, target in (lambdas or {}).items():
        if not _CALLABLE_RE.fullmatch(target):
            raise UserError(f"--lambda {arn}={target}: expected ARN=package.module:function")
        if resolve is not None:
            resolve(target)
    definitions = [d for d, _ in inputs.values()]
    models: list[tuple[DetectorModel, _Parsed, list[str]]] = _load_all(
        parsed,
        folder,
        "model",
        "detector model",
        load_detector_model,
        lambda m: check_references(m, definitions),
    )
    alarms: list[tuple[AlarmModel, _Parsed, list[str]]] = _load_all(
        parsed,
        folder,
        "alarm",
        "alarm model",
        load_alarm_model,
        lambda a: check_alarm_references(a, definitions),
    )
    if not models and not alarms:
        raise UserError(
            f"{folder}: no detector or alarm model (describe-detector-model or "
            "describe-alarm-model output, or a CloudFormation template)"
        )
    try:
        private_dir(detectors)
    except OSError as exc:
        raise UserError(
            f"{detectors}: cannot create: {exc.strerror or exc}; nothing of this import was "
            "registered; fix the permissions or pass another --data"
        ) from exc
    with directory_lock(detectors, exclusive=True, waiting=waiting):
        return _register(folder, detectors, lambdas or {}, inputs, models, alarms)


def _register(
    folder: Path,
    detectors: Path,
    lambdas: Mapping[str, str],
    inputs: dict[str, tuple[InputDefinition, _Parsed]],
    models: list[tuple[DetectorModel, _Parsed, list[str]]],
    alarms: list[tuple[AlarmModel, _Parsed, list[str]]],
) -> IotEventsImport:
    """Register what :func:`import_folder` validated, under its lock: the registry read
    here is the one the commit replaces."""
    registry = read_registry(detectors)
    known_lambdas = {**registry.get("lambdas", {}), **lambdas}
    report = IotEventsImport(lambdas=known_lambdas)
    definitions = [d for d, _ in inputs.values()]
    # everything is valid: work out what to register, then write it (nothing can fail
    # on the input from here, so a failure leaves no half-registered import behind)
    entries_inputs = dict(registry.get("inputs", {}))
    writes: list[tuple[str, bytes]] = []
    """(path inside the set, body)"""
    fresh: list[dict[str, Any]] = []
    """The registry entries of what this run writes."""
    for name, (_definition, item) in sorted(inputs.items()):
        writes.append((f"inputs/{name}.json", _dump(item.body)))
        entries_inputs[name] = {"file": f"inputs/{name}.json", "source": str(item.path)}
        fresh.append(entries_inputs[name])
        report.inputs.append({"name": name, "source": str(item.path)})
    feeds = local_feeds(
        [
            ModelFeeds(model.name, frozenset(used_inputs(model)), _sends(_actions(model)))
            for model, _item, _warnings in models
        ]
        + [
            ModelFeeds(alarm.name, frozenset(alarm.inputs_read()), _sends(alarm.actions))
            for alarm, _item, _warnings in alarms
        ],
        RESULTS_INPUT,
    )
    entries_models = dict(registry.get("models", {}))
    for model, item, warnings in models:
        used = sorted(used_inputs(model))
        problems = _unsupported_actions(model.name, _actions(model), feeds.served, known_lambdas)
        unfed = _unfed(model.name, used, feeds)
        report.unfed.extend(unfed)
        for problem in problems:  # where it is in the file the user has
            if item.resource is not None:
                problem.path = item.resource.template_path(problem.path)
            elif item.wrapped:
                problem.path = _rewrap(problem.path, "model", item.outer)
            problem.source = _name(item, folder)
        report.unsupported.extend(problems)
        findings = [f"{f.level} {f.path}: {f.message}" for f in analyze(model, definitions)]
        if item.resource is not None:
            findings = [_template_paths(f, item.resource) for f in findings]
        writes.append((f"models/{model.name}.json", _dump(item.body)))
        entries_models[model.name] = {
            "file": f"models/{model.name}.json",
            "inputs": used,
            "source": str(item.path),
            "version": item.version,
        }
        fresh.append(entries_models[model.name])
        report.models.append(
            {
                "name": model.name,
                "source": str(item.path),
                "key": model.key,
                "evaluation_method": model.evaluation_method,
                "states": len(model.states),
                "inputs": used,
                "runs_locally": not problems and not unfed,
                "cannot_run_locally": len(problems),
                "inputs_not_fed_locally": [u["input"] for u in unfed],
                "feeds": _feeds_others(_actions(model), used, feeds),
                "warnings": warnings,
                "findings": findings,
            }
        )
    entries_alarms = dict(registry.get("alarm_models", {}))
    for alarm, item, warnings in alarms:
        used = sorted(alarm.inputs_read())
        problems = _unsupported_actions(alarm.name, alarm.actions, feeds.served, known_lambdas)
        report.unfed.extend(_unfed(alarm.name, used, feeds, alarm=True))
        for problem in problems:
            if item.resource is not None:
                problem.path = item.resource.template_path(problem.path)
            problem.source = _name(item, folder)
        report.unsupported.extend(problems)
        file = f"alarm-models/{alarm.name}.json"
        writes.append((file, _dump(item.body)))
        entries_alarms[alarm.name] = {"file": file, "inputs": used, "source": str(item.path)}
        fresh.append(entries_alarms[alarm.name])
        report.alarm_models.append(
            {
                "name": alarm.name,
                "source": str(item.path),
                "key": alarm.key,
                "inputs": used,
                "cannot_run_locally": len(problems),
                "feeds": _feeds_others(alarm.actions, used, feeds),
                "warnings": warnings,
            }
        )
    set_name = _digest(writes)
    for entry in fresh:  # their files are in this run's set
        entry["file"] = f"{SETS_DIR}/{set_name}/{entry['file']}"
    for listed, entries in (
        (report.models, entries_models),
        (report.alarm_models, entries_alarms),
        (report.inputs, entries_inputs),
    ):
        for doc in listed:
            doc["file"] = str(detectors / entries[doc["name"]]["file"])
    registry_doc = {
        "models": entries_models,
        "alarm_models": entries_alarms,
        "inputs": entries_inputs,
        "lambdas": known_lambdas,
    }
    _commit(detectors, set_name, writes, _dump(registry_doc))
    _collect(detectors, registry_doc)
    return report


def _unfed(
    model_name: str, used: Iterable[str], feeds: Feeds, *, alarm: bool = False
) -> list[dict[str, str]]:
    """The inputs *model_name* reads that ``plantwatch up`` never sends it, so ``--strict``
    and the report tell the user it would sit idle there, and what can feed it instead:
    each kind of model has its own replay, and an ``iotEvents`` action of a model the stack
    runs reaches every model reading its input. An input such an action of a fed model of
    the import sends to is fed (:func:`cloud.migrate.feeds.local_feeds`)."""
    way = (
        "plantwatch alarms run replays it; a detector model's iotEvents action to it can feed it"
        if alarm
        else "plantwatch detectors run replays it"
    )
    found = []
    for name in used:
        if name in feeds.fed:
            continue
        reason = (
            f"plantwatch up sends its detectors only {RESULTS_INPUT} (the scoring results); "
            f"no local rule feeds this input ({way})"
        )
        if senders := feeds.senders.get(name):
            reason += (
                f"; the iotEvents action of {', '.join(senders)} sends to it, but nothing "
                "sends that model a message under plantwatch up"
            )
        found.append({"model": model_name, "input": name, "reason": reason})
    return found


def _actions(model: DetectorModel) -> list[Action]:
    return [action for event in model.events() for action in event.actions]


def _sends(actions: Iterable[Action]) -> frozenset[str]:
    """The inputs *actions* send to with ``iotEvents``."""
    return frozenset(
        str(action.fields.get("inputName", "")) for action in actions if action.kind == "iotEvents"
    )


def _feeds_others(actions: Iterable[Action], used: Iterable[str], feeds: Feeds) -> list[str]:
    """The inputs of other models of the import these actions send to: ``up`` routes them
    only when it runs those models too, as the import's next step does."""
    return sorted((_sends(actions) & feeds.served) - set(used))


def _digest(writes: list[tuple[str, bytes]]) -> str:
    """The set's name, from its files' names and bodies: importing the same folder again
    names the same set (nothing new written), and any change, an alarm file's included,
    names a new one, so a registered set is never rewritten in place."""
    digest = hashlib.sha256()
    for rel, body in sorted(writes):
        digest.update(rel.encode() + b"\0" + str(len(body)).encode() + b"\0" + body)
    return digest.hexdigest()[:20]


def _commit(
    detectors: Path, set_name: str, writes: list[tuple[str, bytes]], registry: bytes
) -> None:
    """Stage the set, rename it into ``sets/`` whole, then replace the registry: a failure
    at any step removes what this run made and leaves what ``up`` reads as it was."""
    final = detectors / SETS_DIR / set_name
    staging: Path | None = None
    created = False
    step = str(detectors / SETS_DIR)
    try:
        private_dir(detectors / SETS_DIR)
        step = str(detectors)  # the staging folder is made there
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=detectors))
        for rel, body in writes:
            step = str(final / rel)
            write_private(staging / rel, body)
        step = str(final)
        if _holds(final, writes):  # the same content registered before: nothing new
            shutil.rmtree(staging)
        else:
            if final.exists():  # a set of that name but not that content (half removed)
                shutil.rmtree(final)
            os.rename(staging, final)
            created = True
        step = str(detectors / REGISTRY_FILE)
        write_private(detectors / REGISTRY_FILE, registry)
    except OSError as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(final, ignore_errors=True)
        raise UserError(
            f"{step}: cannot write: {exc.strerror or exc}; nothing of this import was "
            "registered (the earlier registration is unchanged); free space or fix the "
            "permissions and run the import again"
        ) from exc


def _holds(folder: Path, writes: list[tuple[str, bytes]]) -> bool:
    """Whether *folder* holds exactly the set's files (names and bodies): only then may a
    set of that name be reused; one a killed clean-up left half removed is written again."""
    if not folder.is_dir():
        return False
    try:
        found = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
        return found == {rel for rel, _ in writes} and all(
            (folder / rel).read_bytes() == body for rel, body in writes
        )
    except OSError:
        return False


def _collect(detectors: Path, registry: Mapping[str, Any]) -> None:
    """Remove the sets and older-layout files the registry no longer names, and staging
    folders an import killed part way left over an hour ago. Best effort: a file left
    here is only disk space."""
    named = {
        str(entry.get("file", ""))
        for kind in ("models", "alarm_models", "inputs")
        for entry in registry.get(kind, {}).values()
        if isinstance(entry, Mapping)
    }
    sets_named = {
        f.split("/")[1] for f in named if f.startswith(f"{SETS_DIR}/") and f.count("/") > 1
    }
    try:
        for entry in os.scandir(detectors / SETS_DIR):
            if entry.name not in sets_named:
                shutil.rmtree(entry.path, ignore_errors=True)
        for kind in ("models", "inputs"):
            folder = detectors / kind
            if folder.is_dir():
                for path in folder.glob("*.json"):
                    if f"{kind}/{path.name}" not in named:
                        path.unlink(missing_ok=True)
        for entry in os.scandir(detectors):
            if (
                entry.name.startswith(STAGING_PREFIX)
                and entry.is_dir()
                and time.time() - entry.stat().st_mtime > 3600
            ):
                shutil.rmtree(entry.path, ignore_errors=True)
    except OSError as exc:
        log.warning("%s: could not remove superseded detector files: %s", detectors, exc)


def read_registry(detectors: Path) -> dict[str, Any]:
    path = detectors / REGISTRY_FILE
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        raise UserError(f"{path}: unreadable detector registry: {exc}") from None
    if not isinstance(document, dict):
        raise UserError(f"{path}: expected a JSON object")
    return document


def registered(detectors: Path, name: str) -> tuple[Path, list[Path], dict[str, str]] | None:
    """``(model file, input files, lambdas)`` of a registered model, or None."""
    registry = read_registry(detectors)
    entry = registry.get("models", {}).get(name)
    if entry is None:
        return None
    inputs = registry.get("inputs", {})
    missing = [i for i in entry.get("inputs", []) if i not in inputs]
    if missing:
        raise UserError(
            f"{detectors / REGISTRY_FILE}: model {name!r} reads inputs that are not registered: "
            f"{', '.join(missing)}"
        )
    return (
        detectors / entry["file"],
        [detectors / inputs[i]["file"] for i in entry.get("inputs", [])],
        dict(registry.get("lambdas", {})),
    )


def registered_alarm(detectors: Path, name: str) -> Path | None:
    """The file of an alarm model ``import iotevents`` registered, by name, or None."""
    entry = read_registry(detectors).get("alarm_models", {}).get(name)
    if not isinstance(entry, Mapping) or not isinstance(entry.get("file"), str):
        return None
    return detectors / entry["file"]


def registered_alarm_inputs(detectors: Path, name: str) -> list[Path]:
    """The input files a registered alarm model reads: an alarm engine is given the stack's
    inputs, and the detector model run beside it may read none of these."""
    registry = read_registry(detectors)
    entry = registry.get("alarm_models", {}).get(name)
    used = entry.get("inputs", []) if isinstance(entry, Mapping) else []
    inputs = registry.get("inputs", {})
    missing = [i for i in used if i not in inputs]
    if missing:
        raise UserError(
            f"{detectors / REGISTRY_FILE}: alarm model {name!r} reads inputs that are not "
            f"registered: {', '.join(missing)}"
        )
    return [detectors / inputs[i]["file"] for i in used]


def _unsupported_actions(
    model_name: str,
    actions: Iterable[Action],
    served: Collection[str],
    lambdas: Mapping[str, str],
) -> list[Unsupported]:
    """Actions that would not do locally what they did on AWS (the iotEvents ones feeding an
    input no model of the import reads, outside *served*, included)."""
    found = []
    for action in actions:
        reason = None
        if action.kind == "lambda":
            arn = str(action.fields.get("functionArn", ""))
            if arn not in lambdas:
                reason = (
                    f"no callable registered for {arn}; register one with "
                    f"--lambda {arn}=package.module:function (until then the action "
                    "is recorded in the action outbox)"
                )
        elif action.kind == "iotEvents":
            target = str(action.fields.get("inputName", ""))
            if target not in served:
                reason = (
                    f"sends to input {target!r}, which no model of this import reads; "
                    "recorded in the action outbox locally"
                )
        elif action.kind in AWS_ONLY:
            reason = f"{action.kind} exists only on AWS; recorded in the action outbox locally"
        if reason is not None:
            found.append(Unsupported(model_name, action.path, action.kind, reason))
    return found


def _parse(
    path: Path,
    folder: Path,
    values: Mapping[str, str] | None = None,
    declared: set[str] | None = None,
    *,
    assembly: bool = False,
    chain: tuple[Path, ...] = (),
) -> list[_Parsed]:
    """The models and inputs of one file (a CloudFormation template may hold several, its
    parameters taking *values*; the names of those it declares are added to *declared*).
    In a CDK cloud assembly (*assembly*) every file is a stack's template, and one without
    IoT Events resources holds nothing to import but may have nested stacks, which are
    followed (*chain*: the templates that led here)."""
    try:
        document = _read(path, _rel(path, folder))
    except UnicodeDecodeError as exc:
        raise UserError(f"{_rel(path, folder)}: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{_rel(path, folder)}: not valid JSON: {parse_problem(exc)}") from None
    found: list[_Parsed] = []
    if is_template(document):
        found = _template_items(document, path, folder, values, declared)
    elif not assembly:
        return [_parse_one(document, path, folder)]
    if assembly:
        found += _nested_items(document, path, folder, values or {}, (*chain, path))
    return found


def _template_items(
    document: Mapping[str, Any],
    path: Path,
    folder: Path,
    values: Mapping[str, str] | None,
    declared: set[str] | None,
) -> list[_Parsed]:
    source = _rel(path, folder)
    if declared is not None and isinstance(document.get("Parameters"), dict):
        declared.update(document["Parameters"])
    return [
        _Parsed(
            r.kind,
            path,
            r.body,
            wrapped=False,
            resource=r,
            notes=[f"{source}: {note}" for note in r.notes],
        )
        for r in iotevents_resources(document, source, values)
    ]


def _nested_items(
    document: Any,
    path: Path,
    folder: Path,
    values: Mapping[str, str],
    chain: tuple[Path, ...],
) -> list[_Parsed]:
    """The models and inputs of the CDK nested stacks of the template *document* (at
    *path*), and of theirs. Each nested template takes the parameter values its parent's
    ``AWS::CloudFormation::Stack`` resource passes, and the pseudo parameters the user gave
    (its Region and account are the parent's)."""
    if not isinstance(document, dict):
        return []
    found: list[_Parsed] = []
    for nested in nested_stacks(document, _rel(path, folder), values):
        child = _nested_template(nested, path, folder)
        if child in chain:
            raise UserError(
                f"{_rel(path, folder)}: $.Resources.{nested.logical_id}: nests "
                f"{_rel(child, folder)}, which contains this stack; run cdk synth again"
            )
        given = {name: value for name, value in values.items() if name in GIVEN}
        found += _parse(
            child, folder, {**given, **nested.parameters}, None, assembly=True, chain=chain
        )
    return found


def _nested_template(nested: NestedStack, path: Path, folder: Path) -> Path:
    """The file of *nested*'s template in the cloud assembly of *path*: its
    ``aws:asset:path``, else the file asset whose object key its ``TemplateURL`` ends with
    (``cdk synth`` without asset metadata)."""
    assembly = path.parent
    if nested.asset_path is not None:
        template: Path | None = assembly / nested.asset_path
        named = nested.asset_path
    else:
        key = nested.template_url.rsplit("/", 1)[-1]
        template = _file_asset(assembly, key)
        named = f"the asset of {nested.template_url}"
    if template is None or not template.is_file():
        raise UserError(
            f"{_rel(path, folder)}: $.Resources.{nested.logical_id}: the nested stack's "
            f"template ({named}) is not in {assembly}; run cdk synth again"
        )
    return template


def _file_asset(assembly: Path, key: str) -> Path | None:
    """The source file of the assembly's file asset published under object key *key*, as
    its asset manifests (``*.assets.json``, named by ``manifest.json``) list it."""
    for artifact in _manifest_artifacts(assembly) or []:
        name = artifact["properties"].get("file")
        if artifact.get("type") != "cdk:asset-manifest" or not isinstance(name, str):
            continue
        try:
            assets = json.loads(read_document_text(assembly / name))
        except (OSError, ValueError, RecursionError):
            continue
        files = assets.get("files") if isinstance(assets, dict) else None
        for asset in (files or {}).values() if isinstance(files, dict) else ():
            if not isinstance(asset, dict):
                continue
            destinations = asset.get("destinations")
            source = asset.get("source")
            if (
                isinstance(destinations, dict)
                and isinstance(source, dict)
                and isinstance(source.get("path"), str)
                and any(
                    isinstance(d, dict) and d.get("objectKey") == key for d in destinations.values()
                )
            ):
                return assembly / source["path"]
    return None


def _described(document: Any, outer: str, config: str) -> tuple[dict[str, Any], str] | None:
    """The DetectorModel or Input object of describe-* output and the key it sits under:
    ``{"detectorModel": {...}}`` as the CLI prints it, or the object itself when the output
    was narrowed with ``--query detectorModel`` (or ``jq .detectorModel``)."""
    if not isinstance(document, dict):
        return None
    if isinstance(document.get(outer), dict):
        return document[outer], outer
    if isinstance(document.get(config), dict):
        return document, ""
    return None


def _documents(folder: Path) -> list[Path]:
    """Every .json, .yaml, .yml and .template file under *folder*."""
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in _SUFFIXES):
        if path.is_file():
            files.append(path)
        elif not path.is_dir():  # a broken link or a pipe: named, not left out of the import
            raise UserError(
                f"{path}: not a regular file (a broken symbolic link?); fix or remove it and "
                "run the import again"
            )
    return files


CDK_MANIFEST = "manifest.json"


def cdk_templates(folder: Path, depth: int = 0) -> list[Path] | None:
    """The stack templates of the CDK cloud assembly *folder* (``cdk.out``), or None if it
    is not one. ``cdk synth`` writes beside the templates its own JSON (``manifest.json``,
    ``tree.json``, ``*.assets.json``), which is no IoT Events definition; the manifest
    names each stack's ``templateFile``, and each stage's nested assembly
    (``cdk:cloud-assembly``, a folder with its own manifest)."""
    manifest = folder / CDK_MANIFEST
    artifacts = _manifest_artifacts(folder)
    if artifacts is None:
        return None
    found: list[Path] = []
    for artifact in artifacts:
        properties = artifact["properties"]
        if artifact.get("type") == "aws:cloudformation:stack" and isinstance(
            properties.get("templateFile"), str
        ):
            template = folder / properties["templateFile"]
            if not template.is_file():
                raise UserError(
                    f"{manifest}: names the stack template {template}, which is not there; "
                    "run cdk synth again"
                )
            found.append(template)
        elif (
            artifact.get("type") == "cdk:cloud-assembly"
            and isinstance(properties.get("directoryName"), str)
            and depth < 8
        ):
            found.extend(cdk_templates(folder / properties["directoryName"], depth + 1) or [])
    return found


def _manifest_artifacts(assembly: Path) -> list[dict[str, Any]] | None:
    """The artifacts (with their ``properties``) the cloud assembly's ``manifest.json``
    lists, or None if *assembly* is no cloud assembly."""
    manifest = assembly / CDK_MANIFEST
    if not manifest.is_file():
        return None
    try:
        document = json.loads(read_document_text(manifest))
    except (OSError, ValueError, RecursionError):
        return None
    artifacts = document.get("artifacts") if isinstance(document, dict) else None
    if not isinstance(artifacts, dict):
        return None
    return [
        artifact
        for artifact in artifacts.values()
        if isinstance(artifact, dict) and isinstance(artifact.get("properties"), dict)
    ]


def _parse_one(document: Any, path: Path, folder: Path) -> _Parsed:
    if isinstance(document, dict):  # a boto3 response saved whole
        document = {k: v for k, v in document.items() if k != "ResponseMetadata"}
    found = _described(document, "detectorModel", "detectorModelConfiguration")
    if found is not None:
        wrapper, outer = found
        config = wrapper.get("detectorModelConfiguration")
        if not isinstance(config, dict):
            raise UserError(
                f"{_rel(path, folder)}: $.detectorModel.detectorModelConfiguration: expected "
                "an object (describe-detector-model output)"
            )
        _check_described(
            _rel(path, folder),
            document,
            outer,
            ("detectorModelDefinition", "detectorModelConfiguration"),
            (*_MODEL_FIELDS, *_MODEL_OUTPUT_FIELDS),
        )
        body: dict[str, Any] = {k: config[k] for k in _MODEL_FIELDS if k in config}
        body["detectorModelDefinition"] = wrapper.get("detectorModelDefinition")
        version = str(config.get("detectorModelVersion", "1"))
        return _Parsed("model", path, body, wrapped=True, outer=outer, version=version)
    found = _described(document, "input", "inputConfiguration")
    if found is not None:
        wrapper, outer = found
        config = wrapper.get("inputConfiguration")
        if not isinstance(config, dict):
            raise UserError(
                f"{_rel(path, folder)}: $.input.inputConfiguration: expected an object "
                "(describe-input output)"
            )
        _check_described(
            _rel(path, folder),
            document,
            outer,
            ("inputConfiguration", "inputDefinition"),
            (*_INPUT_FIELDS, *_INPUT_OUTPUT_FIELDS),
        )
        body = {k: config[k] for k in _INPUT_FIELDS if k in config}
        body["inputDefinition"] = wrapper.get("inputDefinition")
        return _Parsed("input", path, body, wrapped=True, outer=outer)
    if isinstance(document, dict) and "detectorModelDefinition" in document:
        return _Parsed("model", path, document, wrapped=False)
    if isinstance(document, dict) and "inputDefinition" in document:
        return _Parsed("input", path, document, wrapped=False)
    if isinstance(document, dict) and "alarmRule" in document:
        body = {k: v for k, v in document.items() if k not in _ALARM_OUTPUT_FIELDS}
        return _Parsed("alarm", path, body, wrapped=False)
    raise UserError(
        f"{_rel(path, folder)}: not describe-detector-model or describe-input output (expected "
        'a "detectorModel" or "input" object), describe-alarm-model output, a Create* body '
        "nor a CloudFormation template with AWS::IoTEvents resources"
    )


def _check_described(
    source: str,
    document: Mapping[str, Any],
    outer: str,
    members: tuple[str, str],
    configuration: tuple[str, ...],
) -> None:
    """Refuse a field describe-* output does not print, naming its path in the file and the
    field it most likely misspells. Only the Create fields are kept; without this a typo
    (``evaluationMethd``) would be dropped with the read-only fields (``creationTime``,
    ``status``, ...), and the model would run as if it had not been written.

    *members* are the DetectorModel or Input object's two (definition and configuration,
    the configuration named ``...Configuration``); *configuration* is what that one holds.
    """
    base = f"$.{outer}" if outer else "$"
    wrapper = document[outer] if outer else document
    (config_name,) = (name for name in members if name.endswith("Configuration"))
    levels: list[tuple[tuple[str, ...], str, Mapping[str, Any]]] = [
        (members, base, wrapper),
        (configuration, f"{base}.{config_name}", wrapper[config_name]),
    ]
    if outer:  # as printed: the object, and the console's schemaVersion beside it
        levels.insert(0, ((outer, "schemaVersion"), "$", document))
    for allowed, path, found in levels:
        for name in found:
            if name not in allowed:
                raise UserError(
                    one_line(f"{source}: {path}.{name}: {unknown_field(name, allowed)}")
                )


def _load_all(
    parsed: list[_Parsed],
    folder: Path,
    kind: str,
    what: str,
    load: Callable[..., Any],
    check: Callable[[Any], list[str]],
) -> list[tuple[Any, _Parsed, list[str]]]:
    """Load and check every item of *kind*: ``(model, item, notes and warnings)``."""
    found: list[tuple[Any, _Parsed, list[str]]] = []
    seen: dict[str, _Parsed] = {}
    for item in parsed:
        if item.kind != kind:
            continue
        loaded = _checked(item, lambda i=item: load(i.body, source=_name(i, folder)))
        if loaded.name in seen:
            raise UserError(
                f"{_name(item, folder)}: {what} {loaded.name!r} is also defined in "
                f"{_name(seen[loaded.name], folder)}"
            )
        seen[loaded.name] = item
        warnings = _checked(item, lambda m=loaded: check(m))
        if item.resource is not None:
            warnings = [_template_paths(w, item.resource) for w in warnings]
        found.append((loaded, item, item.notes + warnings))
    return found


_NAME_FIELDS = {"model": "detectorModelName", "alarm": "alarmModelName"}


def _fill_name(item: _Parsed, folder: Path) -> None:
    """Some of the console's templates (Device heartbeat, Simple alarm) have no name: the
    console asks for one when it creates the model. The file's name stands in, as a
    template resource's logical id does, and the report says so; a file name that is no
    model name (``^[a-zA-Z0-9_-]+$``) is refused saying what to add."""
    field = _NAME_FIELDS.get(item.kind)
    if field is None or item.resource is not None or item.body.get(field) is not None:
        return
    name = item.path.stem
    if not NAME_RE.fullmatch(name) or len(name) > 128:
        raise UserError(
            f"{_name(item, folder)}: $: missing required field {field!r} (a console template "
            f"has none), and the file's name {name!r} cannot stand in for it: add "
            f'"{field}": "NAME" to the file, or rename it to NAME.json'
        )
    item.body = {**item.body, field: name}
    item.notes.append(
        f"{_name(item, folder)}: no {field} (a console template); registered as {name!r}, "
        "the file's name"
    )


def _fill_role(item: _Parsed, folder: Path) -> None:
    """A console export ("Import detector model" file) has no ``roleArn``: the console asks
    for the role when it publishes. plantwatch never assumes it, so the import stores a
    placeholder and says so, rather than refusing the model."""
    if item.kind in ("model", "alarm") and item.body.get("roleArn") is None:
        item.body = {**item.body, "roleArn": PLACEHOLDER_ROLE}
        item.notes.append(
            f"{_name(item, folder)}: no roleArn (a console export); stored with "
            f"{PLACEHOLDER_ROLE}, which plantwatch does not use"
        )


def _checked(item: _Parsed, load: Callable[[], Any]) -> Any:
    """Run a validation; a problem's JSON path is given back in the file's own terms."""
    try:
        return load()
    except DetectorModelError as exc:
        if item.resource is not None:
            raise DetectorModelError(_template_paths(str(exc), item.resource)) from None
        if not item.wrapped:
            raise
        raise DetectorModelError(_rewrap(str(exc), item.kind, item.outer)) from None


_API_PATH_RE = re.compile(r"\$(?![A-Za-z{])(?:\.[A-Za-z0-9_`-]+(?:\[\d+\])*)*")
"""A JSON path in a message (``$`` alone too), not ``$input``/``$variable``/``${...}``."""


def _template_paths(message: str, resource: Resource) -> str:
    return _API_PATH_RE.sub(lambda m: resource.template_path(m.group(0)), message)


def _rewrap(message: str, kind: str, outer: str) -> str:
    """*message*'s Create-body paths as paths in the describe-* output, whose object sits
    under *outer* (at the top when it was narrowed to it)."""
    base = f"$.{outer}" if outer else "$"
    if kind == "model":
        if outer:
            message = message.replace(
                "$.detectorModelDefinition", f"{base}.detectorModelDefinition"
            )
        for name in _MODEL_FIELDS:
            message = message.replace(f"$.{name}", f"{base}.detectorModelConfiguration.{name}")
        return message
    if outer:
        message = message.replace("$.inputDefinition", f"{base}.inputDefinition")
    for name in ("inputName", "inputDescription"):
        message = message.replace(f"$.{name}", f"{base}.inputConfiguration.{name}")
    return message


def _name(item: _Parsed, folder: Path) -> str:
    return _rel(item.path, folder)


def _rel(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder.parent))
    except ValueError:
        return str(path)


YAML_SUFFIXES = (".yaml", ".yml")
TEMPLATE_SUFFIX = ".template"
"""CloudFormation's own sample templates (and many repositories) use it, JSON or YAML inside."""
_SUFFIXES = (".json", *YAML_SUFFIXES, TEMPLATE_SUFFIX)


def _is_yaml(path: Path) -> bool:
    return path.suffix in YAML_SUFFIXES


def _read(path: Path, name: str) -> Any:
    """The document of a ``.json`` file, or of a ``.yaml``/``.yml`` one (CloudFormation's
    short forms in their long form; a one-line :class:`UserError` naming *name* if it is
    not YAML)."""
    text = read_document_text(path)
    if _is_yaml(path) or (path.suffix == TEMPLATE_SUFFIX and not text.lstrip().startswith("{")):
        document = _load_yaml(text, name)
        # a template is typed once its functions are evaluated; an API body (describe
        # output, --output yaml) now: AWS's integers and Booleans print bare in YAML
        return _template_body(document if is_template(document) else typed(document), name)
    return _template_body(load_json(text, name), name)


def _load_yaml(text: str, name: str) -> Any:
    try:
        from cloud.migrate.cfn_yaml import load_yaml  # PyYAML only when a file is YAML
    except ImportError:
        raise UserError(
            f"{name}: reading YAML needs PyYAML, one of plantwatch's dependencies: run"
            " `make install` (or `pip install pyyaml`)"
        ) from None
    return load_yaml(text, name)


def _template_body(document: Any, name: str) -> Any:
    """The template ``aws cloudformation get-template`` output wraps: ``{"TemplateBody":
    ..., "StagesAvailable": [...]}``, the body being the template when it was JSON and its
    text when it was YAML (how a deployed stack's template is saved once its source is
    gone). Any other document is returned as it is."""
    if not (isinstance(document, dict) and "TemplateBody" in document):
        return document
    body = document["TemplateBody"]
    if not isinstance(body, str):
        return body
    source = f"{name}: $.TemplateBody"
    if body.lstrip().startswith("{"):
        try:
            return load_json(body, source)
        except (ValueError, RecursionError) as exc:
            raise UserError(f"{source}: not valid JSON: {parse_problem(exc)}") from None
    return _load_yaml(body, source)


def _dump(document: Any) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode()


def refuse_undeclared(values: Mapping[str, str], declared: set[str], where: str) -> None:
    """Refuse a ``--parameter`` that no template read (*where*) declares, nor is a pseudo
    parameter: ``aws cloudformation deploy`` refuses it, and a misspelt name would
    otherwise be silently unused."""
    if unknown := sorted(set(values) - declared - GIVEN):
        name = unknown[0]
        raise UserError(
            f"--parameter {name}={values[name]}: no template {where} declares a parameter "
            f"{name!r}, nor is it a pseudo parameter a stack gives ({', '.join(sorted(GIVEN))})"
        )


def load_model_and_inputs(
    model: Path,
    inputs: Iterable[Path],
    kind: str,
    parameters: Mapping[str, str],
    **options: Any,
) -> tuple[Any, list[InputDefinition]]:
    """The model of *kind* in *model* and every input of *inputs* (:func:`load_any`,
    :func:`load_inputs`), a template's parameters taking *parameters*, as ``detectors`` and
    ``alarms`` commands take them (``--parameter``); one that none of the templates
    declares is refused, as ``import iotevents`` refuses it."""
    declared: set[str] = set()
    loaded = [i for path in inputs for i in load_inputs(path, parameters, declared)]
    found = load_any(model, kind, parameters=parameters, declared=declared, **options)
    refuse_undeclared(parameters, declared, "among the files given")
    return found, loaded


def load_inputs(
    path: Path, parameters: Mapping[str, str] | None = None, declared: set[str] | None = None
) -> list[InputDefinition]:
    """Every input of *path*: one in a Create body, describe-input output or console
    export, and all of them in a CloudFormation template, since one stack often declares
    every input its models read (``--input stack.template.json`` for each). A template's
    parameters take *parameters*; the names it declares are added to *declared*."""
    try:
        document = _read(path, path.name)
    except (OSError, ValueError, RecursionError):
        document = None
    if not is_template(document):
        return [load_any(path, "input")]
    items = [item for item in _parse(path, path, parameters, declared) if item.kind == "input"]
    if not items:
        raise UserError(f"{path.name}: holds no input (AWS::IoTEvents::Input resource)")
    return [_checked(i, lambda i=i: load_input(i.body, source=path.name)) for i in items]


def load_any(
    path: Path,
    kind: str,
    *,
    parameters: Mapping[str, str] | None = None,
    declared: set[str] | None = None,
    **options: Any,
) -> Any:
    """One detector model (``kind="model"``), input or alarm model from *path*, in any shape
    the import takes: a Create body, describe-* output, a console export, or a CloudFormation
    template holding exactly one resource of that kind (for ``detectors validate``/``run`` and
    ``alarms validate``). A Create body goes to its loader unchanged, so its errors are the
    loader's; the others are unwrapped, and their errors name the file's own paths. Unlike the
    import, a missing ``roleArn`` stays an error, as in CreateDetectorModel. A template's
    parameters take *parameters*; the names it declares are added to *declared*."""
    load: Callable[..., Any] = {
        "model": load_detector_model,
        "input": load_input,
        "alarm": load_alarm_model,
    }[kind]
    try:
        document = _read(path, path.name)
    except (OSError, ValueError, RecursionError):
        return load(path, **options)  # the loader names the problem
    wrapped = is_template(document) or (
        isinstance(document, dict)
        and (
            isinstance(document.get("detectorModel"), dict)
            or isinstance(document.get("input"), dict)
            or isinstance(document.get("detectorModelConfiguration"), dict)
            or isinstance(document.get("inputConfiguration"), dict)
            or "alarmModelArn" in document
            or "ResponseMetadata" in document
        )
    )
    if not wrapped:
        if (
            kind != "input"
            and isinstance(document, dict)
            and document.get("roleArn") is None
            and ("detectorModelDefinition" in document or "alarmRule" in document)
        ):
            raise DetectorModelError(
                f"{path.name}: $: missing required field 'roleArn' (a console export has "
                "none): add one, or import its folder with `plantwatch import iotevents "
                "FOLDER`, which stores it with a placeholder role"
            )
        if _is_yaml(path):
            return load(document, source=path.name, **options)
        return load(path, **options)
    items = [item for item in _parse(path, path, parameters, declared) if item.kind == kind]
    what = {"model": "detector model", "input": "input", "alarm": "alarm model"}[kind]
    if len(items) != 1:
        raise UserError(
            f"{path.name}: holds {len(items)} {what}s; give a file with one, or import the "
            "folder with `plantwatch import iotevents FOLDER`"
        )
    item = items[0]
    return _checked(item, lambda: load(item.body, source=path.name, **options))
