"""Take in what a retired Lookout for Equipment setup left behind, reading it only.

- **Input** (l4e-contracts §1 and §4): inference input files named
  ``<component><delimiter><timestamp>.csv`` flat under the prefix (AWS's default ``_`` and
  ``yyyyMMddHHmmss`` unless told otherwise), and historical ``<component>/*.csv`` folders.
  Every file is read; the components and their sensors, files, rows and time range are
  registered as the dataset's schema (``DatasetSchema.InlineDataSchema``) in the state store
  (namespace ``datasets``). A file that cannot be read is listed as discarded, as L4E's
  ingestion lists it, and the rest go on.
- **Output** (§5): ``<DataStartTime>/results.jsonl`` (and plantwatch's fleet layout
  ``<component>/<DataStartTime>/results.jsonl``). Each object is copied to the local bucket
  under ``imported/<name>/<generation>/<asset>/<DataStartTime>/results.jsonl`` (a line that is not a
  result goes to ``quarantine/bad_result_line/`` with its source and line number instead)
  and indexed as a SUCCESS
  execution of a STOPPED scheduler ``<name>`` (§6), so ``plantwatch executions``,
  ``events`` and ``query`` see the old results beside new ones; events come from them as
  from any run (maximal runs of ``prediction = 1``).
- **Labels** (§2): label CSVs, registered (namespace ``labels``) and used for training.
- **Training**, if asked: a model from the historical input with the labels kept out of the
  normal data, saved in the model registry as a new version.

The sources are wrapped read-only (:class:`cloud.migrate.source.ReadOnlyStore`). Running
the import again with the same name replaces what the earlier run registered, quarantined
lines included (a line already set aside is not set aside twice). Everything that reads a
source or can fail on its content (input files, results objects, labels, training) runs
before the first write to the data directory, with the results objects staged in a
temporary folder: an import that fails on its sources leaves the data directory as it was
(a model it trained before failing stays in the registry as a new version).

The state transaction is the commit point. The results objects are written before it under
``<generation>`` (from their keys and content), a folder the earlier import's records do not
name, and the earlier import's objects are removed after it: a crash at any point leaves the
earlier import or the new one to every reader (``query`` shows only registered imported
objects), and a re-run converges (it removes the objects a killed run left).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import math
import re
import shutil
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from cloud.batcher.quarantine import Quarantine
from cloud.inference.dataset import MAX_CSV_BYTES, check_dataset_limits
from cloud.inference.registry import ModelRegistry
from cloud.inference.results import RESULTS_FILE, folder_time
from cloud.inference.scheduler import (
    EXECUTIONS_NS,
    SCHEDULERS_NS,
    WHOLE_READ_BYTES,
    Execution,
    SchedulerConfig,
    execution_key,
    iso,
    list_executions,
)
from cloud.l4e.naming import COMPONENT_RE, UPLOAD_FREQUENCIES, InputNaming, flat_component
from cloud.ports import FileObjectStore, ObjectStore, StateStore, atomically
from edge import user_files
from edge.errors import ConflictError, NotFoundError, StorageError, UserError
from edge.user_files import read_header_line

log = logging.getLogger(__name__)

DATASETS_NS = "datasets"
LABELS_NS = "labels"
IMPORTED_PREFIX = "imported/"
QUARANTINE_PREFIX = "quarantine/"
BUCKET = "plantwatch"
_FOLDER_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

Progress = Callable[[str, int | None], None]
"""``(stage, total)`` when a stage begins (total None: unknown), ``("", 1)`` per unit done."""


@dataclass(frozen=True)
class Source:
    store: ObjectStore
    prefix: str
    where: str
    """How to name it in messages (``s3://bucket/prefix`` or a folder)."""

    @property
    def bucket(self) -> str | None:
        """The S3 bucket read from, None for a folder."""
        if not self.where.startswith("s3://"):
            return None
        return self.where[len("s3://") :].partition("/")[0] or None


@dataclass(frozen=True)
class TrainRequest:
    model_name: str
    config: Any = None
    """A ``cloud.inference.model.TrainConfig``; None takes its defaults."""


@dataclass(frozen=True)
class L4EOptions:
    name: str
    """The imported scheduler's (and dataset's) name."""
    naming: InputNaming = field(default_factory=InputNaming)
    upload_frequency: str | None = None
    """None: read from the spacing of the result folders (or of the input file names)."""
    delay_offset_min: int = 0
    train: TrainRequest | None = None
    flat_delimiter: str | None = None
    """The ``[DELIMITER]`` of a historical dataset flat under the input prefix
    (``{prefix}/{component_name}[DELIMITER]*``, l4e-contracts §1.1); None: only the
    ``{prefix}/{component_name}/*`` folders are a historical dataset."""


@dataclass(frozen=True)
class _Staged:
    """One results object, read and checked, waiting in the staging folder."""

    start: datetime
    where: str
    """The source object, as messages name it."""
    local: str
    """Its key in the local bucket."""
    path: Path
    """Its good lines."""
    rows: int
    anomalous: bool
    bad: list[tuple[int, str, str]]
    """``(line number, text, reason)`` of the lines that are not results."""


@dataclass
class _Component:
    name: str
    sensors: list[str] = field(default_factory=list)
    timestamp_column: str = ""
    """Column 1's header in the first file read (§1.3: the schema names the CSV's headers)."""
    files: int = 0
    rows: int = 0
    start: Any = None
    end: Any = None

    def summary(self) -> dict[str, Any]:
        return {
            "ComponentName": self.name,
            "Sensors": self.sensors,
            "Files": self.files,
            "Rows": self.rows,
            "DataStartTime": _time(self.start),
            "DataEndTime": _time(self.end),
        }


class L4EImporter:
    """Reads the sources, writes only to the local bucket, state store and model registry."""

    def __init__(
        self,
        bucket: ObjectStore,
        state: StateStore,
        models: ModelRegistry,
        now: float,
        progress: Progress | None = None,
    ) -> None:
        self.bucket = bucket
        self.state = state
        self.models = models
        self.now = now
        self._progress = progress or (lambda _stage, _total: None)
        self._quarantine = Quarantine(bucket, QUARANTINE_PREFIX)
        self.counts: Counter[str] = Counter()

    def run(
        self,
        options: L4EOptions,
        inputs: Source,
        outputs: Source | None = None,
        labels: Source | None = None,
    ) -> dict[str, Any]:
        name = options.name
        if not re.fullmatch(r"[0-9a-zA-Z_-]{1,200}", name):
            raise UserError(f"--name {name!r}: must match ^[0-9a-zA-Z_-]{{1,200}}$")
        existing = self.state.get(SCHEDULERS_NS, name)
        if existing is not None and "imported_from" not in existing:
            raise ConflictError(
                f"scheduler {name!r} already exists and was not imported; pass another --name"
            )
        found, skipped, stamps, historical = self._list_inputs(
            inputs, options.naming, options.flat_delimiter
        )
        # §1.4 limits hold for a historical dataset (<component>/*.csv, or flat by its
        # KeyPattern), checked as `model train` checks them; a scheduler's flat inference
        # input (one file per run) is not one: any number of its files is imported
        # (--train stages it as one and checks)
        check_dataset_limits(f"--input {inputs.where}", files=len(historical))
        results = self._results(outputs) if outputs is not None else []  # listed before any read
        staging = Path(tempfile.mkdtemp(prefix="plantwatch-import-"))
        try:
            components, discarded = self._read_inputs(
                inputs, found, historical, staging / "dataset" if options.train else None
            )
            frequency = options.upload_frequency or _frequency(
                [start for _key, _c, start in results] or stamps
            )
            label_list = self._labels(labels, staging / "labels") if labels is not None else []
            staged = (
                self._stage_results(name, outputs, results, staging / "results")
                if outputs is not None
                else []
            )
            model = None
            if options.train is not None:
                model = self._train(options.train, staging / "dataset", label_list)
            model_name = options.train.model_name if options.train else name
            # from here on only the data directory is written. The state transaction is the
            # one point where this import replaces the earlier one: before it the result
            # objects go to keys of their own (their generation, from their content), which
            # nothing registered names, so a crash or a full disk up to the commit leaves
            # the earlier import whole; after it the earlier import's objects are removed,
            # which a re-run finishes if a crash stopped it.
            generation = _generation(staged)
            staged = [
                replace(entry, local=_generation_key(entry.local, name, generation))
                for entry in staged
            ]
            earlier = set(self.bucket.list(_imported_prefix(name, None)))
            try:
                executions = self._index_results(
                    name, model_name, staged, frequency, options.delay_offset_min
                )
                with atomically(self.state):
                    self._forget(name)
                    self._register_dataset(name, inputs, components, discarded)
                    if labels is not None:
                        self.state.put(
                            LABELS_NS,
                            name,
                            {
                                "source": labels.where,
                                "labels": [_label_doc(lab) for lab in label_list],
                            },
                        )
                    for execution in executions:
                        self.state.put(
                            EXECUTIONS_NS,
                            execution_key(name, execution.data_start),
                            execution.to_record(),
                        )
                    self._register_scheduler(
                        name, model_name, frequency, options, inputs, outputs, generation
                    )
            except BaseException:  # not registered: take back what this run wrote
                for entry in staged:
                    if entry.local not in earlier:
                        with suppress(NotFoundError, StorageError):
                            self.bucket.delete(entry.local)
                raise
            self._forget_objects(name, {entry.local for entry in staged})
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        events = self._events(name, generation)
        return {
            "Name": name,
            "Input": inputs.where,
            "Output": outputs.where if outputs else None,
            "Labels": labels.where if labels else None,
            "DatasetSchema": {"Components": [_schema(c) for c in components.values()]},
            "Components": [c.summary() for c in components.values()],
            "DiscardedFiles": discarded,
            "SkippedKeys": skipped,
            "UploadFrequency": frequency,
            "Executions": len(executions),
            "AnomalousExecutions": sum(1 for e in executions if e.anomalous),
            "ResultRows": sum(e.rows for e in executions),
            "QuarantinedResultLines": self.counts["bad_result_lines"],
            "Events": events,
            "LabelCount": len(label_list),
            "Model": model,
        }

    # ---- input -----------------------------------------------------------------------

    def _list_inputs(
        self, source: Source, naming: InputNaming, flat_delimiter: str | None = None
    ) -> tuple[list[tuple[str, str]], list[dict[str, str]], list[datetime], set[str]]:
        """``(component, key)`` of each input file, the keys that are not, name times, and
        the keys of historical dataset files among the input files."""
        found: list[tuple[str, str]] = []
        skipped: list[dict[str, str]] = []
        stamps: list[datetime] = []
        historical: set[str] = set()
        expected = (
            f"<component>{naming.delimiter}<{naming.timestamp_format}>.csv or <component>/*.csv"
        )
        if flat_delimiter is not None:
            expected += f" or <component>{flat_delimiter}*.csv"
        for key in source.store.list(source.prefix):
            rest = key[len(source.prefix) :]
            parsed = naming.parse(key, source.prefix)
            if parsed is not None and COMPONENT_RE.fullmatch(parsed[0]):
                found.append((parsed[0], key))
                stamps.append(parsed[1])
                continue
            folder, _, file = rest.partition("/")
            # {prefix}/{component_name}/* takes every key under the folder (KeyPattern,
            # IngestionS3InputConfiguration), subfolders included, as `model train` does
            if file and file.lower().endswith(".csv") and COMPONENT_RE.fullmatch(folder):
                found.append((folder, key))
                historical.add(key)
                continue
            flat = (
                flat_component(rest, flat_delimiter)
                if flat_delimiter is not None and not file and rest.lower().endswith(".csv")
                else None
            )
            if flat is not None:  # {prefix}/{component_name}[DELIMITER]* (§1.1)
                found.append((flat, key))
                historical.add(key)
                continue
            skipped.append({"Key": key, "Reason": f"not an L4E input file ({expected})"})
        if not found:
            hint = (
                "; a historical dataset flat under the prefix (<component><D>*.csv) needs "
                "--flat-delimiter D"
                if flat_delimiter is None and skipped
                else ""
            )
            raise UserError(
                f"--input {source.where}: no L4E input files (expected {expected}){hint}"
            )
        return found, skipped, stamps, historical

    def _read_inputs(
        self,
        source: Source,
        found: list[tuple[str, str]],
        historical: set[str],
        staging: Path | None,
    ) -> tuple[dict[str, _Component], list[dict[str, str]]]:
        components: dict[str, _Component] = {}
        discarded: list[dict[str, str]] = []
        where = f"--input {source.where}"
        size = 0
        """Bytes of the historical files read so far (§1.4: 50 GB in a dataset)."""
        self._progress("reading input files", len(found))
        with closing(_opened_in_order(source.store, [key for _c, key in found])) as opened:
            for index, ((component, key), handle) in enumerate(zip(found, opened, strict=True)):
                if isinstance(handle, NotFoundError):  # listed, then gone or not a file
                    discarded.append({"Key": key, "Reason": str(handle)})
                    self._progress("", 1)
                    continue
                if key in historical:
                    length = handle.seek(0, io.SEEK_END)
                    size += length if length <= MAX_INPUT_BYTES else 0  # else discarded
                    check_dataset_limits(where, size=size)
                self._read_one(components, discarded, component, key, handle, index, staging)
        if not components:
            first = f": {discarded[0]['Reason']}" if discarded else ""
            more = f" (and {len(discarded) - 1} more discarded)" if len(discarded) > 1 else ""
            raise UserError(f"{where}: no readable L4E input file{first}{more}")
        check_dataset_limits(where, sensors=sum(len(c.sensors) for c in components.values()))
        if source.bucket is not None:  # IngestedFilesSummary.DiscardedFiles: {Bucket, Key}
            discarded = [{"Bucket": source.bucket, **entry} for entry in discarded]
        return dict(sorted(components.items())), discarded

    def _read_one(
        self,
        components: dict[str, _Component],
        discarded: list[dict[str, str]],
        component: str,
        key: str,
        handle: BinaryIO,
        index: int,
        staging: Path | None,
    ) -> None:
        """Add one file to its component's summary, or to the discarded list. The object
        is read from its file a chunk at a time: an input CSV may be 5 GB (§1.4)."""
        from cloud.inference.dataset import read_csv

        size = handle.seek(0, io.SEEK_END)
        handle.seek(0)
        try:
            if size > MAX_INPUT_BYTES:
                raise UserError(
                    f"{key}: {size:,} bytes; an L4E input CSV is at most 5 GB (l4e-contracts §1.4)"
                )
            read_header_line(handle, key, limit=user_files.MAX_HEADER_BYTES)
            parsed = read_csv(
                handle.read() if size <= WHOLE_READ_BYTES else handle, key, component=component
            )
        except UserError as exc:
            discarded.append({"Key": key, "Reason": str(exc)})
            self._progress("", 1)
            return
        frame = parsed.frame
        summary = components.setdefault(component, _Component(component))
        summary.timestamp_column = summary.timestamp_column or parsed.timestamp_column
        summary.files += 1
        summary.rows += len(frame)
        summary.sensors += [str(c) for c in frame.columns if str(c) not in summary.sensors]
        if len(frame):
            first, last = frame.index.min(), frame.index.max()
            summary.start = first if summary.start is None else min(summary.start, first)
            summary.end = last if summary.end is None else max(summary.end, last)
        if staging is not None:
            folder = staging / component
            folder.mkdir(parents=True, exist_ok=True)
            handle.seek(0)
            with (folder / f"{index:08d}.csv").open("wb") as copy:
                shutil.copyfileobj(handle, copy, 1 << 20)
        self._progress("", 1)

    def _register_dataset(
        self,
        name: str,
        source: Source,
        components: dict[str, _Component],
        discarded: list[dict[str, str]],
    ) -> None:
        self.state.put(
            DATASETS_NS,
            name,
            {
                "DatasetName": name,
                "DatasetSchema": {"Components": [_schema(c) for c in components.values()]},
                "Components": [c.summary() for c in components.values()],
                "IngestedFilesSummary": {
                    "TotalNumberOfFiles": sum(c.files for c in components.values())
                    + len(discarded),
                    "IngestedNumberOfFiles": sum(c.files for c in components.values()),
                    "DiscardedFiles": discarded,
                },
                "Source": source.where,
                "ImportedAt": self.now,
            },
        )

    # ---- output ----------------------------------------------------------------------

    def _results(self, source: Source) -> list[tuple[str, str | None, datetime]]:
        """``(key, component or None, DataStartTime)`` of each results object."""
        found = []
        for key in source.store.list(source.prefix):
            parts = key[len(source.prefix) :].split("/")
            if parts[-1] != RESULTS_FILE:
                continue
            if len(parts) == 2 and _FOLDER_RE.fullmatch(parts[0]):
                found.append((key, None, _folder(parts[0])))
            elif (
                len(parts) == 3
                and _FOLDER_RE.fullmatch(parts[1])
                and COMPONENT_RE.fullmatch(parts[0])
            ):
                found.append((key, parts[0], _folder(parts[1])))
        if not found:
            raise UserError(
                f"--output {source.where}: no results (expected <DataStartTime>/results.jsonl, "
                "e.g. 2021-04-13T14:15:00Z/results.jsonl)"
            )
        return found

    def _stage_results(
        self,
        name: str,
        source: Source,
        results: list[tuple[str, str | None, datetime]],
        folder: Path,
    ) -> list[_Staged]:
        """Read every results object into *folder* before anything is written: an object
        that went away since the listing fails the import here, not half way through."""
        folder.mkdir(parents=True)
        self._progress("reading results", len(results))
        staged = []
        for index, (key, component, start) in enumerate(results):
            where = f"{source.where.rstrip('/')}/{key[len(source.prefix) :]}"
            try:
                body = source.store.get(key)
            except NotFoundError as exc:
                raise NotFoundError(
                    f"--output {where}: listed, then gone ({exc}); nothing was imported"
                ) from None
            lines, bad = _read_results(body)
            path = folder / f"{index:08d}.jsonl"
            path.write_text("".join(text + "\n" for text, _doc in lines))
            staged.append(
                _Staged(
                    start=start,
                    where=where,
                    local=f"{IMPORTED_PREFIX}{name}/{component or name}/{folder_time(start)}/"
                    f"{RESULTS_FILE}",
                    path=path,
                    rows=len(lines),
                    anomalous=any(doc.get("prediction") == 1 for _t, doc in lines),
                    bad=bad,
                )
            )
            self._progress("", 1)
        return staged

    def _index_results(
        self,
        name: str,
        model_name: str,
        staged: list[_Staged],
        frequency: str,
        delay_offset_min: int,
    ) -> list[Execution]:
        if not staged:
            return []
        period = timedelta(seconds=UPLOAD_FREQUENCIES[frequency])
        by_start: dict[datetime, list[_Staged]] = {}
        for entry in staged:
            by_start.setdefault(entry.start, []).append(entry)
        already = self._quarantined("bad_result_line")
        self._progress("copying results", len(staged))
        executions = []
        for start, objects in sorted(by_start.items()):
            for entry in objects:
                self.bucket.put(entry.local, entry.path.read_bytes())
                for number, text, reason in entry.bad:  # set aside with the reason
                    error = f"{entry.where} line {number}: {reason}"
                    self.counts["bad_result_lines"] += 1
                    if (error, text) in already:  # an earlier run of this import did
                        continue
                    self._quarantine.put(
                        "bad_result_line",
                        error,
                        text.encode(),
                        topic="",
                        client_id="n/a",
                        received_at=self.now,
                    )
                self._progress("", 1)
            keys = [entry.local for entry in objects]
            bad = sum(len(entry.bad) for entry in objects)
            execution = Execution(
                scheduler=name,
                data_start=start,
                data_end=start + period,
                scheduled_start=start + period + timedelta(minutes=delay_offset_min),
                status="SUCCESS",
                failed_reason=None,
                result_key=keys[0],
                result_keys=tuple(keys),
                anomalous=any(entry.anomalous for entry in objects),
                model_name=model_name,
                rows=sum(entry.rows for entry in objects),
                skipped=[
                    {"key": k, "reason": f"{bad} lines are not L4E results (quarantined)"}
                    for k in keys[:1]
                    if bad
                ],
            )
            executions.append(execution)
        return executions

    def _quarantined(self, reason: str) -> set[tuple[str, str]]:
        """``(error, payload)`` of what is already set aside under *reason*."""
        found = set()
        for key in self.bucket.list(f"{QUARANTINE_PREFIX}{reason}/"):
            try:
                record = json.loads(self.bucket.get(key))
            except (NotFoundError, ValueError):
                continue
            if isinstance(record, dict) and isinstance(record.get("payload"), str):
                found.add((str(record.get("error")), record["payload"]))
        return found

    def _register_scheduler(
        self,
        name: str,
        model_name: str,
        frequency: str,
        options: L4EOptions,
        inputs: Source,
        outputs: Source | None,
        generation: str | None,
    ) -> None:
        config = SchedulerConfig(
            name=name,
            model_name=model_name,
            input_bucket=BUCKET,
            input_prefix="input/",
            output_bucket=BUCKET,
            output_prefix=_imported_prefix(name, generation),
            upload_frequency=frequency,
            delay_offset_min=options.delay_offset_min,
            naming=options.naming,
        )
        starts = [e.data_start for e in list_executions(self.state, name)]
        self.state.put(
            SCHEDULERS_NS,
            name,
            {
                "config": config.to_dict(),
                "status": "STOPPED",
                "created_at": self.now,
                "started_at": None,
                "last_window_end": (max(starts) + timedelta(seconds=config.frequency_s)).timestamp()
                if starts
                else None,
                "imported_from": {
                    "input": inputs.where,
                    "output": outputs.where if outputs else None,
                },
            },
        )

    def _forget(self, name: str) -> None:
        """The executions an earlier import under *name* registered, so a second run
        replaces them."""
        for key, _doc in list(self.state.items(EXECUTIONS_NS)):
            if key.startswith(f"{name}/"):
                self.state.delete(EXECUTIONS_NS, key)

    def _forget_objects(self, name: str, kept: set[str]) -> None:
        """The result objects under *name* this run did not write (an earlier import's,
        or those a failed or killed run left unregistered). Runs after the state commit:
        nothing registered names them any more."""
        stale = [k for k in self.bucket.list(f"{IMPORTED_PREFIX}{name}/") if k not in kept]
        if not stale:
            return
        self._progress("removing the earlier import's results", len(stale))
        for key in stale:
            self.bucket.delete(key)
            self._progress("", 1)

    def _events(self, name: str, generation: str | None) -> int:
        from cloud.inference.events import list_events

        return len(
            list_events(
                list_executions(self.state, name),
                self.bucket,
                _imported_prefix(name, generation),
            )
        )

    # ---- labels and training ----------------------------------------------------------

    def _labels(self, source: Source, staging: Path) -> list[Any]:
        from cloud.inference.dataset import load_labels

        keys = [k for k in source.store.list(source.prefix) if k.lower().endswith(".csv")]
        if not keys:
            raise UserError(f"--labels {source.where}: no label CSV")
        staging.mkdir(parents=True)
        for index, key in enumerate(keys):
            with _open(source.store, key) as handle:  # the label reader refuses one this long
                body = handle.read(user_files.MAX_DOCUMENT_BYTES + 1)
            (staging / f"{index:06d}.csv").write_bytes(body)
        try:
            return load_labels(staging)
        except UserError as exc:  # name the source object, not the staging copy
            text = str(exc)
            for index, key in enumerate(keys):
                text = text.replace(
                    str(staging / f"{index:06d}.csv"),
                    source.where.rstrip("/") + "/" + key[len(source.prefix) :],
                )
            raise UserError(text) from None

    def _train(self, request: TrainRequest, dataset_dir: Path, labels: list[Any]) -> dict[str, Any]:
        from cloud.inference.dataset import MAX_MODEL_SENSORS, load_dataset, short_range_warning
        from cloud.inference.evaluation import evaluate
        from cloud.inference.model import TrainConfig, select_sensors, train
        from cloud.inference.quality import quality_report

        self._progress(f"training {request.model_name}", None)
        dataset = load_dataset(dataset_dir)
        config = request.config or TrainConfig()
        sensors = len(select_sensors(dataset.frame, config))
        if sensors > MAX_MODEL_SENSORS:
            raise UserError(  # train() would point at --sensors, which this command lacks
                f"--train {request.model_name}: the input has {sensors} sensors; an L4E model "
                f"takes at most {MAX_MODEL_SENSORS} (l4e-contracts §1.4): import without "
                "--train, then train on at most 300 with `plantwatch model train --sensors`"
            )
        periods = [(label.start, label.end) for label in labels]
        warning = short_range_warning(dataset.frame.index, "the historical input")
        if warning:
            log.warning("%s", warning)
        model = train(dataset.frame, config, exclude=periods)
        quality = quality_report(dataset)
        result = model.score(dataset.frame)
        evaluation = evaluate(result.index, result.prediction, result.machine_off, periods)
        evaluation["range"] = "training"
        evaluation["model_quality"] = (
            "CANNOT_DETERMINE_QUALITY"
            if not labels
            else ("QUALITY_THRESHOLD_MET" if evaluation["f1"] >= 0.5 else "POOR_QUALITY_DETECTED")
        )
        version = self.models.save(
            request.model_name, model, {"quality": quality, "evaluation": evaluation}
        )
        return {
            "ModelName": request.model_name,
            "ModelVersion": version,
            "Sensors": list(model.sensors),
            "TrainingRows": model.info.get("training_rows"),
            "ModelQuality": evaluation["model_quality"],
            "Evaluation": {k: v for k, v in evaluation.items() if k != "counts"},
        }


OPEN_AHEAD = 8
"""Objects opened (S3: fetched) ahead of the one being parsed, since S3 answers in
parallel; only these few are held, so memory does not grow with the number of files."""

MAX_INPUT_BYTES = MAX_CSV_BYTES
"""l4e-contracts §1.4: each CSV is at most 5 GB. A larger object is discarded with that
reason (as L4E's ingestion discards a file it cannot take) rather than read for minutes."""


@contextmanager
def _open(store: ObjectStore, key: str) -> Iterator[BinaryIO]:
    if isinstance(store, FileObjectStore):
        with store.open_file(key) as handle:
            yield handle
    else:
        yield io.BytesIO(store.get(key))


def _opened_in_order(store: ObjectStore, keys: list[str]) -> Iterator[BinaryIO | NotFoundError]:
    """Each object as an open file, in order, fetched up to :data:`OPEN_AHEAD` ahead of
    the reader and closed once the reader moves on. A missing object (or one that is no
    regular file) is its NotFoundError, so that file is discarded with its reason (as
    L4E's ingestion does) rather than ending the import."""

    def enter(key: str) -> tuple[ExitStack | None, BinaryIO | NotFoundError]:
        stack = ExitStack()
        try:
            return stack, stack.enter_context(_open(store, key))
        except NotFoundError as exc:
            stack.close()
            return None, exc
        except BaseException:
            stack.close()
            raise

    pending: deque[Future[tuple[ExitStack | None, BinaryIO | NotFoundError]]] = deque()
    queue = iter(keys)
    with ThreadPoolExecutor(max_workers=OPEN_AHEAD) as pool:
        try:
            pending.extend(pool.submit(enter, key) for key in itertools.islice(queue, OPEN_AHEAD))
            while pending:
                stack, handle = pending.popleft().result()
                pending.extend(pool.submit(enter, key) for key in itertools.islice(queue, 1))
                try:
                    yield handle
                finally:
                    if stack is not None:
                        stack.close()
        finally:
            for future in pending:  # the reader stopped early: close what was opened for it
                with suppress(BaseException):
                    opened, _handle = future.result()
                    if opened is not None:
                        opened.close()


GENERATION_RE = re.compile(r"[0-9a-f]{12}")
"""The folder of one import's results under ``imported/<name>/`` (:func:`_generation`)."""


def _generation(staged: list[_Staged]) -> str | None:
    """A name for this import's set of results objects, from their keys and content: the
    same results imported again get the same keys (a re-run rewrites them in place), other
    results get other keys, so they are written beside the earlier import's objects
    without touching them. None when there are no results."""
    if not staged:
        return None
    digest = hashlib.sha256()
    for entry in sorted(staged, key=lambda e: e.local):
        body = entry.path.read_bytes()
        digest.update(f"{entry.local}\n{len(body)}\n".encode())
        digest.update(body)
    return digest.hexdigest()[:12]


def _generation_key(key: str, name: str, generation: str | None) -> str:
    """``imported/<name>/<rest>`` as ``imported/<name>/<generation>/<rest>``."""
    rest = key[len(f"{IMPORTED_PREFIX}{name}/") :]
    return f"{_imported_prefix(name, generation)}{rest}"


def _imported_prefix(name: str, generation: str | None) -> str:
    return f"{IMPORTED_PREFIX}{name}/" + (f"{generation}/" if generation else "")


def _schema(component: _Component) -> dict[str, Any]:
    """``DatasetSchema.InlineDataSchema`` entry (l4e-contracts §1.3)."""
    return {
        "ComponentName": component.name,
        "Columns": [
            {"Name": component.timestamp_column or "Timestamp", "Type": "DATETIME"},
            *({"Name": s, "Type": "DOUBLE"} for s in component.sensors),
        ],
    }


RESULT_TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?")
"""A results line's ``timestamp`` (l4e-contracts §5): UTC, no zone suffix."""


def _read_results(
    body: bytes,
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[int, str, str]]]:
    """``(text, object)`` of each good line of a results object, and ``(line number, text,
    reason)`` of each line that is not an L4E result: a JSON object whose ``timestamp`` is
    a real instant in §5's form and whose ``prediction`` is 0 or 1. Such a line cannot be
    kept: events and queries read the times back."""
    good, bad = [], []
    # utf-8-sig: a results.jsonl saved again by a Windows editor starts with a BOM, which
    # would make its first line no JSON
    for number, text in enumerate(body.decode("utf-8-sig", errors="replace").splitlines(), 1):
        if not text.strip():
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            bad.append((number, text, "not a JSON object"))
        elif not _result_timestamp(doc.get("timestamp")):
            bad.append((number, text, "timestamp is not yyyy-MM-ddTHH:mm:ss.ffffff (UTC)"))
        elif doc.get("prediction") not in (0, 1) or isinstance(doc.get("prediction"), bool):
            bad.append((number, text, "prediction is not 0 or 1"))
        else:
            good.append((text, doc))
    return good, bad


def _result_timestamp(value: Any) -> bool:
    if not isinstance(value, str) or not RESULT_TIMESTAMP_RE.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)  # 2022-02-30 has the form but is no date
    except ValueError:
        return False
    return True


def _frequency(starts: list[datetime]) -> str:
    """The upload frequency the windows show: the longest allowed F that every gap between
    two of them, and every one's time past the hour, is a whole multiple of (§3: runs at
    each multiple of F past the hour). A window that failed leaves no results folder, so
    the gaps of a PT1H scheduler may be 2 h and 3 h; and PT5M when fewer than two windows
    show no spacing (AWS samples' frequency)."""
    ordered = sorted(set(starts))
    if len(ordered) < 2:
        return "PT5M"
    step = 0
    for a, b in itertools.pairwise(ordered):
        step = math.gcd(step, int((b - a).total_seconds()))
    for at in ordered:
        step = math.gcd(step, int(at.timestamp()) % 3600)
    fitting = [name for name, seconds in UPLOAD_FREQUENCIES.items() if step % seconds == 0]
    return max(fitting, key=UPLOAD_FREQUENCIES.__getitem__, default="PT5M")


def _folder(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _time(value: Any) -> str | None:
    return None if value is None else iso(value.to_pydatetime())


def _label_doc(label: Any) -> dict[str, Any]:
    return {
        "StartTime": _time(label.start),
        "EndTime": _time(label.end),
        "FaultCode": label.fault_code,
        "Equipment": label.equipment,
        "Notes": label.notes,
        "Rating": "ANOMALY",
    }
