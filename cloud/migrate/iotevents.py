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
registered callable (``ARN=module:function``), ``iotEvents`` into an input the model does
not read, and the AWS-only ``sqs``, ``firehose``, ``dynamoDB``, ``dynamoDBv2`` and
``iotSiteWise`` (recorded in the action outbox, not performed), with the analyzer's
findings (``plantwatch detectors analyze``). It also names the inputs nothing feeds under
``plantwatch up``: the stack sends its detectors the scoring results as ``AnomalyResults``
(:mod:`cloud.feeder`); an input that an IoT rule's ``iotEvents`` action fed on AWS gets no
messages locally (``plantwatch detectors run`` replays any input).
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloud.detectors.analysis import analyze
from cloud.detectors.engine import used_inputs
from cloud.detectors.model import (
    DetectorModel,
    InputDefinition,
    check_references,
    load_detector_model,
    load_input,
)
from cloud.feeder import INPUT_NAME as RESULTS_INPUT
from edge.errors import DetectorModelError, UserError
from edge.files import private_dir, write_private
from edge.user_files import parse_problem, read_document_text

REGISTRY_FILE = "registry.json"
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
_CALLABLE_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass
class _Parsed:
    kind: str
    """``model`` or ``input``."""
    path: Path
    body: dict[str, Any]
    wrapped: bool
    """It came as describe-* output (paths in errors get the wrapper back)."""
    version: str = "1"
    """``detectorModelVersion`` from the describe output."""


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
    inputs: list[dict[str, Any]] = field(default_factory=list)
    unsupported: list[Unsupported] = field(default_factory=list)
    unfed: list[dict[str, str]] = field(default_factory=list)
    """Inputs a model reads that nothing sends it under ``plantwatch up``."""
    lambdas: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "models": self.models,
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
) -> IotEventsImport:
    """Validate every JSON file of *folder* and register them under *detectors*.

    *lambdas* maps function ARNs to ``module:function`` callables (added to those already
    registered); *resolve* imports one, so a callable that does not exist is an error now,
    not when the alarm fires.
    """
    if not folder.is_dir():
        raise UserError(f"{folder}: not a directory of describe-detector-model/describe-input JSON")
    files = sorted(p for p in folder.rglob("*.json") if p.is_file())
    if not files:
        raise UserError(f"{folder}: no .json files")
    parsed = [_parse(path, folder) for path in files]
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
    registry = read_registry(detectors)
    known_lambdas = dict(registry.get("lambdas", {}))
    for arn, target in (lambdas or {}).items():
        if not _CALLABLE_RE.fullmatch(target):
            raise UserError(f"--lambda {arn}={target}: expected ARN=package.module:function")
        if resolve is not None:
            resolve(target)
        known_lambdas[arn] = target
    report = IotEventsImport(lambdas=known_lambdas)
    models: list[tuple[DetectorModel, _Parsed, list[str]]] = []
    seen_models: dict[str, _Parsed] = {}
    for item in parsed:
        if item.kind != "model":
            continue
        model = _checked(item, lambda i=item: load_detector_model(i.body, source=_name(i, folder)))
        if model.name in seen_models:
            raise UserError(
                f"{_name(item, folder)}: detector model {model.name!r} is also defined in "
                f"{_name(seen_models[model.name], folder)}"
            )
        seen_models[model.name] = item
        warnings = _checked(
            item, lambda m=model: check_references(m, [d for d, _ in inputs.values()])
        )
        models.append((model, item, warnings))
    if not models:
        raise UserError(f"{folder}: no detector model (describe-detector-model output)")
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
    entries_models = dict(registry.get("models", {}))
    for model, item, warnings in models:
        used = sorted(used_inputs(model))
        problems = _unsupported(model, set(used), known_lambdas)
        unfed = [
            {
                "model": model.name,
                "input": name,
                "reason": f"plantwatch up sends its detectors only {RESULTS_INPUT} (the "
                "scoring results); no local rule feeds this input (plantwatch detectors run "
                "replays it)",
            }
            for name in used
            if name != RESULTS_INPUT
        ]
        report.unfed.extend(unfed)
        for problem in problems:  # where it is in the file the user has
            problem.path = _rewrap(problem.path, "model") if item.wrapped else problem.path
            problem.source = _name(item, folder)
        report.unsupported.extend(problems)
        findings = [
            f"{f.level} {f.path}: {f.message}"
            for f in analyze(model, [d for d, _ in inputs.values()])
        ]
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
                "warnings": warnings,
                "findings": findings,
            }
        )
    set_name = _digest(writes)
    for entry in fresh:  # their files are in this run's set
        entry["file"] = f"{SETS_DIR}/{set_name}/{entry['file']}"
    for listed, entries in ((report.models, entries_models), (report.inputs, entries_inputs)):
        for doc in listed:
            doc["file"] = str(detectors / entries[doc["name"]]["file"])
    registry_doc = {"models": entries_models, "inputs": entries_inputs, "lambdas": known_lambdas}
    _commit(detectors, set_name, writes, _dump(registry_doc))
    _collect(detectors, registry_doc)
    return report


def _digest(writes: list[tuple[str, bytes]]) -> str:
    """The set's name: a digest of its files' names and bodies."""
    digest = hashlib.sha256()
    for rel, body in sorted(writes):
        digest.update(rel.encode() + b"\0" + str(len(body)).encode() + b"\0" + body)
    return digest.hexdigest()[:20]


def _commit(
    detectors: Path, set_name: str, writes: list[tuple[str, bytes]], registry: bytes
) -> None:
    """Stage the set, rename it into ``sets/`` whole, then replace the registry: a failure
    at any step removes what this run made and leaves what ``up`` reads as it was."""
    sets = private_dir(detectors / SETS_DIR)
    final = sets / set_name
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=detectors))
    created = False
    step = f"{final}"
    try:
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
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(final, ignore_errors=True)
        raise UserError(
            f"{step}: cannot write: {exc.strerror or exc}; nothing of this import was "
            "registered (the earlier registration is unchanged); free space or fix the "
            "permissions and run the import again"
        ) from exc


def _holds(folder: Path, writes: list[tuple[str, bytes]]) -> bool:
    """Whether *folder* holds exactly the set's files (names and bodies)."""
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
        for kind in ("models", "inputs")
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


def _unsupported(
    model: DetectorModel, served: set[str], lambdas: Mapping[str, str]
) -> list[Unsupported]:
    found = []
    for event in model.events():
        for action in event.actions:
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
                        f"sends to input {target!r}, which this model does not read; "
                        "recorded in the action outbox locally"
                    )
            elif action.kind in AWS_ONLY:
                reason = f"{action.kind} exists only on AWS; recorded in the action outbox locally"
            if reason is not None:
                found.append(Unsupported(model.name, action.path, action.kind, reason))
    return found


def _parse(path: Path, folder: Path) -> _Parsed:
    try:
        document = json.loads(read_document_text(path))
    except UnicodeDecodeError:
        raise UserError(f"{_rel(path, folder)}: not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{_rel(path, folder)}: not valid JSON: {parse_problem(exc)}") from None
    if isinstance(document, dict) and isinstance(document.get("detectorModel"), dict):
        wrapper = document["detectorModel"]
        config = wrapper.get("detectorModelConfiguration")
        if not isinstance(config, dict):
            raise UserError(
                f"{_rel(path, folder)}: $.detectorModel.detectorModelConfiguration: expected "
                "an object (describe-detector-model output)"
            )
        body: dict[str, Any] = {k: config[k] for k in _MODEL_FIELDS if k in config}
        body["detectorModelDefinition"] = wrapper.get("detectorModelDefinition")
        return _Parsed(
            "model", path, body, wrapped=True, version=str(config.get("detectorModelVersion", "1"))
        )
    if isinstance(document, dict) and isinstance(document.get("input"), dict):
        wrapper = document["input"]
        config = wrapper.get("inputConfiguration")
        if not isinstance(config, dict):
            raise UserError(
                f"{_rel(path, folder)}: $.input.inputConfiguration: expected an object "
                "(describe-input output)"
            )
        body = {k: config[k] for k in ("inputName", "inputDescription") if k in config}
        body["inputDefinition"] = wrapper.get("inputDefinition")
        return _Parsed("input", path, body, wrapped=True)
    if isinstance(document, dict) and "detectorModelDefinition" in document:
        return _Parsed("model", path, document, wrapped=False)
    if isinstance(document, dict) and "inputDefinition" in document:
        return _Parsed("input", path, document, wrapped=False)
    raise UserError(
        f"{_rel(path, folder)}: not describe-detector-model or describe-input output (expected "
        'a "detectorModel" or "input" object) nor a CreateDetectorModel/CreateInput body'
    )


def _checked(item: _Parsed, load: Callable[[], Any]) -> Any:
    """Run a validation; a problem's JSON path is given back in the file's own terms."""
    try:
        return load()
    except DetectorModelError as exc:
        if not item.wrapped:
            raise
        raise DetectorModelError(_rewrap(str(exc), item.kind)) from None


def _rewrap(message: str, kind: str) -> str:
    if kind == "model":
        message = message.replace(
            "$.detectorModelDefinition", "$.detectorModel.detectorModelDefinition"
        )
        for name in _MODEL_FIELDS:
            message = message.replace(
                f"$.{name}", f"$.detectorModel.detectorModelConfiguration.{name}"
            )
        return message
    message = message.replace("$.inputDefinition", "$.input.inputDefinition")
    for name in ("inputName", "inputDescription"):
        message = message.replace(f"$.{name}", f"$.input.inputConfiguration.{name}")
    return message


def _name(item: _Parsed, folder: Path) -> str:
    return _rel(item.path, folder)


def _rel(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder.parent))
    except ValueError:
        return str(path)


def _dump(document: Any) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode()
