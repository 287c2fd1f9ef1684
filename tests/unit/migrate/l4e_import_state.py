"""What an ``import l4e`` leaves in a data directory, for tests that compare two runs:
every bucket file (quarantine records by content without their arrival time, counted) and
the state it registers (without its clock readings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cloud.adapters.local import SqliteStateStore
from cloud.inference.scheduler import EXECUTIONS_NS, SCHEDULERS_NS
from cloud.migrate import l4e

NAMESPACES = (EXECUTIONS_NS, SCHEDULERS_NS, l4e.DATASETS_NS, l4e.LABELS_NS)


def bucket_files(data: Path) -> dict[Any, Any]:
    files: dict[Any, Any] = {}
    for path in sorted((data / "buckets").rglob("*")):
        if path.is_file():
            body = path.read_bytes()
            if "quarantine" in path.parts:
                record = json.loads(body)
                record.pop("received_at")
                body = json.dumps(record, sort_keys=True).encode()
                files[("quarantine", body)] = files.get(("quarantine", body), 0) + 1
            else:
                files[str(path.relative_to(data))] = body
    return files


def registered(data: Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    state = SqliteStateStore(data / "state.db")
    try:
        docs = {ns: sorted(state.items(ns)) for ns in NAMESPACES}
    finally:
        state.close()
    for _key, doc in docs[l4e.DATASETS_NS]:
        doc.pop("ImportedAt", None)
    for _key, doc in docs[SCHEDULERS_NS]:
        doc.pop("created_at", None)
    return docs


def import_state(data: Path) -> dict[str, Any]:
    return {"files": bucket_files(data), "state": registered(data)}
