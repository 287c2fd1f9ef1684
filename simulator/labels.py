"""Ground-truth labels in the L4E label CSV format, with plantwatch's extension columns.

L4E reads two columns (start, end; no header). plantwatch adds ``fault_code,equipment,notes``
(l4e-contracts §2), so the same file trains an L4E-compatible model and scores per fault.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


@dataclass(frozen=True, slots=True)
class Label:
    start: float
    """Epoch seconds, UTC."""
    end: float
    fault_code: str
    equipment: str
    notes: str = ""

    def row(self) -> list[str]:
        return [_fmt(self.start), _fmt(self.end), self.fault_code, self.equipment, self.notes]


def _fmt(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime(TS_FORMAT)


def labels_csv(labels: Iterable[Label]) -> str:
    """The label file text: one row per label, sorted by start, no header."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for label in sorted(labels, key=lambda x: (x.start, x.equipment, x.fault_code)):
        writer.writerow(label.row())
    return buf.getvalue()


def write_labels(path: Path, labels: Iterable[Label]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(labels_csv(labels))
    return path


def read_labels(path: Path) -> list[Label]:
    """Read a label CSV written by :func:`write_labels` (two to five columns)."""
    out = []
    with path.open(newline="") as fh:
        for row in csv.reader(fh):
            if not row:
                continue
            start = datetime.strptime(row[0], TS_FORMAT).replace(tzinfo=UTC).timestamp()
            end = datetime.strptime(row[1], TS_FORMAT).replace(tzinfo=UTC).timestamp()
            code = row[2] if len(row) > 2 else ""
            equipment = row[3] if len(row) > 3 else ""
            notes = row[4] if len(row) > 4 else ""
            out.append(Label(start, end, code, equipment, notes))
    return out
