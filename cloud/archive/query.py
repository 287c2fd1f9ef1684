"""SQL over a data directory with DuckDB: views ``readings``, ``results``, ``alerts``,
``executions``.

``readings`` (``ts, site, asset, sensor, value, date``) reads the archive's complete parts
(:func:`cloud.archive.layout.committed_files`); ``ts`` is a UTC ``TIMESTAMP`` and ``date``
the ``YYYY-MM-DD`` partition, so a filter on ``site``, ``asset`` or ``date`` skips whole
files. The same view over the Firehose archive on Athena has the same columns
(``docs/query.md``).

``results`` reads every ``results.jsonl`` of the bucket (scheduler output, streaming output
and imported L4E results), with the site, asset and source the key names; ``alerts`` reads
the local outbox; ``executions`` the scheduler executions the caller passes in. A line that
is not JSON is left out of ``results`` and ``alerts`` (the results feeder quarantines such
lines with their reason) rather than failing every query.

Nothing is written: the database is in memory, DuckDB spills (rarely) into a temporary
folder this module removes, and the archive is read under a shared lock so compaction
never replaces parts under a running query. Once the views exist the connection is locked
down: DuckDB may open only the files the views read (``allowed_paths`` with
``enable_external_access`` off: no ``COPY ... TO``, ``ATTACH``, ``read_csv('/etc/...')``,
``INSTALL``/``LOAD``), its settings are frozen (``lock_configuration``, so a query cannot
lift the memory limit), and :meth:`Catalog.query` runs one reading statement at a time on
a worker thread, so Ctrl-C interrupts DuckDB instead of waiting for it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cloud.archive.layout import committed_files
from cloud.l4e.result_keys import stored_result_keys
from cloud.l4e.sites import DEFAULT_SITE
from edge.errors import StorageError, UserError
from edge.files import directory_lock

RESULTS_FILE = "results.jsonl"
_FOLDER_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_GENERATION_RE = re.compile(r"[0-9a-f]{12}")
"""``imported/<name>/<generation>/``: one import's results (``cloud.migrate.l4e``)."""
_HIVE_TYPES = "{'site': VARCHAR, 'asset': VARCHAR, 'date': VARCHAR}"
_RESULT_COLUMNS = (
    "{'timestamp': 'VARCHAR', 'prediction': 'INTEGER', 'prediction_reason': 'VARCHAR', "
    "'anomaly_score': 'DOUBLE', 'diagnostics': 'STRUCT(name VARCHAR, value DOUBLE)[]'}"
)
_ALERT_COLUMNS = (
    "{'sent_at': 'DOUBLE', 'channel': 'VARCHAR', 'target': 'VARCHAR', 'subject': 'VARCHAR', "
    "'body': 'VARCHAR', 'attributes': 'JSON'}"
)
VIEWS = ("readings", "results", "alerts", "executions")
MAX_ROWS = 100_000
"""Rows :meth:`Catalog.query` holds in memory; a bigger answer is refused (``--csv`` streams)."""
MEMORY_LIMIT = "2GB"
"""DuckDB's own bound (its default is 80% of the machine); bigger sorts and joins spill."""
_READING = ("SELECT", "EXPLAIN")
"""Statement types a query may be (``DESCRIBE``, ``SUMMARIZE``, ``SHOW`` parse as SELECT)."""
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ResultsObject:
    """One ``results.jsonl`` and whose rows it holds."""

    path: Path
    bucket: str
    key: str
    source: str
    """``output``, ``stream`` or ``imported/<name>``: which writer put it there."""
    site: str | None
    asset: str | None


@dataclass(frozen=True)
class Sources:
    """What the views read; any part may be missing (the view is then empty)."""

    archive: Path | None = None
    buckets: Path | None = None
    """The folder holding one folder per local bucket (``DIR/buckets``)."""
    alerts: Path | None = None
    executions: list[Mapping[str, Any]] = field(default_factory=list)
    default_site: str = DEFAULT_SITE


@dataclass(frozen=True, slots=True)
class Answer:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


class Catalog:
    """An in-memory DuckDB with the four views; use as a context manager."""

    def __init__(
        self, sources: Sources, *, threads: int | None = None, memory_limit: str = MEMORY_LIMIT
    ) -> None:
        import duckdb

        self.sources = sources
        self._exit = ExitStack()
        self._spill = Path(tempfile.gettempdir()) / f"plantwatch-query-{os.getpid()}-{id(self):x}"
        self._exit.callback(shutil.rmtree, self._spill, ignore_errors=True)
        self.db = duckdb.connect(":memory:")
        self._exit.callback(self.db.close)
        self.db.execute("SET TimeZone = 'UTC'")
        self.db.execute("SET temp_directory = ?", [str(self._spill)])
        self.db.execute("SET autoinstall_known_extensions = false")
        self.db.execute("SET autoload_known_extensions = false")
        self.db.execute("SET memory_limit = ?", [memory_limit])
        if threads is not None:
            self.db.execute(f"SET threads = {int(threads)}")
        archive = sources.archive
        if archive is not None and archive.is_dir():
            # held until close: compaction waits rather than delete a file being read
            self._exit.enter_context(directory_lock(archive, exclusive=False))
        self._read: list[str] = []
        """Every file a view reads: all DuckDB may open once locked down."""
        try:
            self._readings()
            self._results()
            self._alerts()
            self._executions()
            self._lock_down()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._exit.close()

    # ---- views ----------------------------------------------------------------------

    def _readings(self) -> None:
        import duckdb

        archive = self.sources.archive
        files = [str(p) for p in committed_files(archive)] if archive is not None else []
        if not files:
            self.db.execute(
                "CREATE VIEW readings AS SELECT CAST(NULL AS TIMESTAMP) AS ts, "
                "CAST(NULL AS VARCHAR) AS site, CAST(NULL AS VARCHAR) AS asset, "
                "CAST(NULL AS VARCHAR) AS sensor, CAST(NULL AS DOUBLE) AS value, "
                "CAST(NULL AS VARCHAR) AS date WHERE false"
            )
            return
        self._read.extend(files)
        self.db.execute("SET VARIABLE plantwatch_archive_files = ?", [files])
        if archive is not None and _shadowed(archive):
            # the partition values from the end of each path (no pruning by folder)
            tail = "/site=([^/]*)/asset=([^/]*)/date=([^/]*)/[^/]*$"
            source = (
                f"SELECT ts, regexp_extract(filename, '{tail}', 1) AS site, "
                f"regexp_extract(filename, '{tail}', 2) AS asset, sensor, value, "
                f"regexp_extract(filename, '{tail}', 3) AS date FROM "
                "read_parquet(getvariable('plantwatch_archive_files'), filename = true)"
            )
        else:
            source = (
                "SELECT ts, site, asset, sensor, value, date FROM "
                "read_parquet(getvariable('plantwatch_archive_files'), hive_partitioning = "
                f"true, hive_types = {_HIVE_TYPES})"
            )
        try:  # DuckDB reads a part's footer here: a damaged first part fails now
            self.db.execute(f"CREATE VIEW readings AS {source}")
        except duckdb.Error as exc:
            raise StorageError(
                f"archive: {_first_line(exc)} (move a damaged part out of {archive} to read "
                "the rest)"
            ) from exc

    def _results(self) -> None:
        buckets = self.sources.buckets
        objects: list[ResultsObject] = []
        if buckets is not None and buckets.is_dir():
            registered = {
                key
                for doc in self.sources.executions
                for key in stored_result_keys(doc) or [doc.get("result_key")]
            }
            for bucket in sorted(p for p in buckets.iterdir() if p.is_dir()):
                objects.extend(
                    o
                    for o in results_objects(bucket, self.sources.default_site)
                    # an imported object no import registers: one a killed import left
                    # before its commit, or an earlier import's not yet removed
                    if not o.source.startswith("imported/") or o.key in registered
                )
        self.db.execute(
            "CREATE TABLE plantwatch_result_files (file VARCHAR, bucket VARCHAR, key VARCHAR,"
            " source VARCHAR, site VARCHAR, asset VARCHAR)"
        )
        if not objects:
            self.db.execute(
                "CREATE VIEW results AS SELECT CAST(NULL AS VARCHAR) AS site, "
                "CAST(NULL AS VARCHAR) AS asset, CAST(NULL AS TIMESTAMP) AS timestamp, "
                "CAST(NULL AS INTEGER) AS prediction, CAST(NULL AS VARCHAR) AS "
                "prediction_reason, CAST(NULL AS DOUBLE) AS anomaly_score, "
                "CAST(NULL AS VARCHAR) AS top_sensor, "
                "CAST(NULL AS STRUCT(name VARCHAR, value DOUBLE)[]) AS diagnostics, "
                "CAST(NULL AS VARCHAR) AS source, CAST(NULL AS VARCHAR) AS bucket, "
                "CAST(NULL AS VARCHAR) AS key WHERE false"
            )
            return
        self._insert(
            "plantwatch_result_files",
            ["file", "bucket", "key", "source", "site", "asset"],
            [[str(o.path), o.bucket, o.key, o.source, o.site, o.asset] for o in objects],
        )
        self._read.extend(str(o.path) for o in objects)
        self.db.execute(
            "SET VARIABLE plantwatch_results_files = ?", [[str(o.path) for o in objects]]
        )
        self.db.execute(
            "CREATE VIEW results AS SELECT f.site, f.asset, "
            "TRY_CAST(r.timestamp AS TIMESTAMP) AS timestamp, r.prediction, "
            "r.prediction_reason, r.anomaly_score, "
            "r.diagnostics[list_position(list_transform(r.diagnostics, lambda d: d.value), "
            "list_max(list_transform(r.diagnostics, lambda d: d.value)))].name AS top_sensor, "
            "r.diagnostics, f.source, f.bucket, f.key "
            "FROM read_json(getvariable('plantwatch_results_files'), "
            "format = 'newline_delimited', filename = true, ignore_errors = true, "
            f"columns = {_RESULT_COLUMNS}) AS r "
            "JOIN plantwatch_result_files AS f ON r.filename = f.file"
        )

    def _alerts(self) -> None:
        path = self.sources.alerts
        if path is None or not path.is_file() or path.stat().st_size == 0:
            self.db.execute(
                "CREATE VIEW alerts AS SELECT CAST(NULL AS TIMESTAMP) AS sent_at, "
                "CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS VARCHAR) AS target, "
                "CAST(NULL AS VARCHAR) AS site, CAST(NULL AS VARCHAR) AS asset, "
                "CAST(NULL AS VARCHAR) AS kind, CAST(NULL AS VARCHAR) AS subject, "
                "CAST(NULL AS VARCHAR) AS body, CAST(NULL AS JSON) AS attributes WHERE false"
            )
            return
        self._read.append(str(path))
        self.db.execute("SET VARIABLE plantwatch_alerts_file = ?", [str(path)])
        key = "json_extract_string(attributes, '$.asset')"
        self.db.execute(
            "CREATE VIEW alerts AS SELECT "
            "make_timestamp(CAST(round(sent_at * 1000000) AS BIGINT)) AS sent_at, "
            "channel, target, "
            f"CASE WHEN contains({key}, ':') THEN split_part({key}, ':', 1) "
            f"ELSE '{self.sources.default_site}' END AS site, "
            f"CASE WHEN contains({key}, ':') THEN split_part({key}, ':', 2) ELSE {key} END "
            "AS asset, json_extract_string(attributes, '$.kind') AS kind, subject, body, "
            "attributes FROM read_json(getvariable('plantwatch_alerts_file'), "
            "format = 'newline_delimited', ignore_errors = true, "
            f"columns = {_ALERT_COLUMNS})"
        )

    def _executions(self) -> None:
        self.db.execute(
            "CREATE TABLE plantwatch_executions (scheduler VARCHAR, model_name VARCHAR, "
            "data_start TIMESTAMP, data_end TIMESTAMP, scheduled_start TIMESTAMP, "
            "status VARCHAR, failed_reason VARCHAR, anomalous BOOLEAN, rows BIGINT, "
            "result_keys VARCHAR[], model_version BIGINT)"
        )
        rows = [
            [
                doc.get("scheduler"),
                doc.get("model_name"),
                _naive(doc.get("data_start")),
                _naive(doc.get("data_end")),
                _naive(doc.get("scheduled_start")),
                doc.get("status"),
                doc.get("failed_reason"),
                bool(doc.get("anomalous")),
                int(doc.get("rows") or 0),
                stored_result_keys(doc) or ([doc["result_key"]] if doc.get("result_key") else []),
                _version(doc.get("model_version")),
            ]
            for doc in self.sources.executions
        ]
        names = [
            "scheduler", "model_name", "data_start", "data_end", "scheduled_start", "status",
            "failed_reason", "anomalous", "rows", "result_keys", "model_version",
        ]  # fmt: skip
        self._insert("plantwatch_executions", names, rows)
        self.db.execute("CREATE VIEW executions AS SELECT * FROM plantwatch_executions")

    def _lock_down(self) -> None:
        """From here on DuckDB opens only the views' files, and no setting changes."""
        self.db.execute("SET allowed_paths = ?", [self._read])
        self.db.execute("SET enable_external_access = false")
        self.db.execute("SET lock_configuration = true")

    def _insert(self, table: str, names: list[str], rows: list[list[Any]]) -> None:
        """Many rows at once, through Arrow (executemany goes row by row)."""
        import pyarrow as pa

        if not rows:
            return
        columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
        self.db.register("plantwatch_rows", pa.table(columns))
        try:
            self.db.execute(f"INSERT INTO {table} SELECT * FROM plantwatch_rows")
        finally:
            self.db.unregister("plantwatch_rows")

    # ---- asking ---------------------------------------------------------------------

    def query(
        self, sql: str, params: list[Any] | None = None, *, max_rows: int | None = None
    ) -> Answer:
        """Run one reading statement; a DuckDB error is bad input naming what DuckDB said.
        An answer of more than *max_rows* (:data:`MAX_ROWS`) rows is refused."""
        limit = MAX_ROWS if max_rows is None else max_rows
        self._check(sql)

        def run() -> tuple[Any, list[tuple[Any, ...]]]:
            cursor = self.db.execute(sql, params)
            description = cursor.description or []
            return description, cursor.fetchmany(limit + 1) if description else []

        description, rows = self.interruptible(run)
        if len(rows) > limit:
            raise UserError(
                f"query: the answer has more than {limit:,} rows; add a LIMIT or aggregate, "
                "or use --csv, which streams any number"
            )
        return Answer([str(d[0]) for d in description], [str(d[1]) for d in description], rows)

    def stream(
        self, sql: str, params: list[Any] | None = None, batch: int = 10_000
    ) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        """The column names and the rows of a large answer, without holding them all
        (``export``, ``query --csv``)."""
        self._check(sql)
        cursor = self.interruptible(lambda: self.db.execute(sql, params))

        def rows() -> Iterator[tuple[Any, ...]]:
            while chunk := self.interruptible(lambda: cursor.fetchmany(batch)):
                yield from chunk

        return [str(d[0]) for d in cursor.description or []], rows()

    def interruptible(self, work: Callable[[], T]) -> T:
        """*work* (a DuckDB call) on a worker thread: Ctrl-C lands in the main thread,
        never inside DuckDB's C++ call, so it interrupts DuckDB and re-raises once DuckDB
        has let go. DuckDB errors become one-line bad input."""
        import duckdb

        box: dict[str, Any] = {}
        done = threading.Event()

        def target() -> None:
            try:
                box["value"] = work()
            except BaseException as exc:  # handed to the caller's thread below
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=target, name="plantwatch-query", daemon=True).start()
        try:
            while not done.wait(0.1):
                pass
        except KeyboardInterrupt:
            # An interrupt that lands before DuckDB has started the statement is lost, so
            # it is repeated until the worker lets go (a Ctrl-C right at the start hung).
            self.db.interrupt()
            while not done.wait(0.1):
                self.db.interrupt()
            raise
        error = box.get("error")
        if isinstance(error, duckdb.Error):
            raise UserError(f"query: {_first_line(error)}") from error
        if error is not None:
            raise error
        return box["value"]  # type: ignore[no-any-return]

    def _check(self, sql: str) -> None:
        """One reading statement: docs/query.md promises the command only reads."""
        import duckdb

        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise UserError(f"query: {_first_line(exc)}") from exc
        if len(statements) != 1:
            raise UserError(f"query: expected one SQL statement, got {len(statements)}")
        kind = statements[0].type.name
        if kind not in _READING:
            raise UserError(
                f"query: {kind} statements are refused: the command only reads "
                "(one SELECT, FROM, DESCRIBE, SUMMARIZE or EXPLAIN statement)"
            )


def _shadowed(archive: Path) -> bool:
    """A folder above the archive is named like a partition (``site=...``): DuckDB's Hive
    reading takes the first ``site=`` of a path, which would be that one."""
    above = [*archive.parts, *archive.resolve().parts]
    return any(part.partition("=")[0] in ("site", "asset", "date") for part in above if "=" in part)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def results_objects(bucket: Path, default_site: str = DEFAULT_SITE) -> Iterator[ResultsObject]:
    """Every ``results.jsonl`` under one local bucket with whose rows it holds.

    Keys: ``<source>/[<site>/]<asset>/<DataStartTime>/results.jsonl`` (fleet and streaming
    layouts, :mod:`cloud.l4e.sites`), ``<source>/<DataStartTime>/results.jsonl`` (one
    asset model: the asset is not in the key), where ``<source>`` is the first folder
    (``output``, ``stream`` ...) or ``imported/<name>``; an import's objects are under a
    folder of their own, ``imported/<name>/<generation>/<asset>/...``.
    """
    if not bucket.is_dir():
        return
    for path in sorted(bucket.rglob(RESULTS_FILE)):
        parts = path.relative_to(bucket).parts
        if len(parts) < 3:
            continue
        source, rest = (
            ("/".join(parts[:2]), parts[2:]) if parts[0] == "imported" else (parts[0], parts[1:])
        )
        if source.startswith("imported/") and len(rest) == 4 and _GENERATION_RE.fullmatch(rest[0]):
            rest = rest[1:]
        middle = rest[:-2]
        if len(rest) < 2 or not _FOLDER_RE.fullmatch(rest[-2]) or len(middle) > 2:
            continue
        site = middle[0] if len(middle) == 2 else default_site
        asset = middle[-1] if middle else None
        yield ResultsObject(path, bucket.name, "/".join(parts), source, site, asset)


def _version(value: Any) -> int | None:
    """A record's ``model_version``; None for a record that names none, or a value no
    version can be (a record edited by hand must not stop the view)."""
    return value if type(value) is int and value > 0 else None


def _naive(text: Any) -> Any:
    """An ISO time string (``...Z``) as a naive UTC datetime for DuckDB's TIMESTAMP."""
    from datetime import UTC, datetime

    if not isinstance(text, str):
        return None
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at
