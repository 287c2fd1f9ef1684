"""The raw archive: every reading the input files hold, as Hive-partitioned Parquet.

``archive/site=<site>/asset=<asset>/date=<YYYY-MM-DD>/part-<n>.parquet``, one row per cell
(``ts``, ``sensor``, ``value``), the layout the AWS deployment's Firehose writes, so the
same ``readings`` query runs on DuckDB here and on Athena there (``docs/query.md``).

- :mod:`cloud.archive.writer`: queued window files -> parts, idempotent across crashes;
- :mod:`cloud.archive.compaction`: merges small parts, journaled;
- :mod:`cloud.archive.layout`: paths, the ``_committed`` mark, locks;
- :mod:`cloud.archive.query`: DuckDB views ``readings``, ``results``, ``alerts``,
  ``executions``;
- :mod:`cloud.archive.retention`: per-prefix expiry of the local bucket.
"""

from cloud.archive.writer import ArchivePolicy, ArchiveQueue, ArchiveWriter

__all__ = ["ArchivePolicy", "ArchiveQueue", "ArchiveWriter"]
