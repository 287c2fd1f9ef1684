"""Inference events (§6 Choice): maximal runs of ``prediction = 1`` across executions.

Events are derived from the results objects the scheduler wrote, so they always agree with
what a user reads in the output bucket. A failed or missing execution ends a run: no data
is not evidence that the anomaly went on; nor is a window that never ran (a stopped
scheduler), or one whose results object is gone since: its rows are not consecutive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloud.inference.results import decode_results
from cloud.inference.scheduler import Execution
from cloud.ports import ObjectStore
from edge.errors import NotFoundError


@dataclass
class InferenceEvent:
    scheduler: str
    start: datetime
    end: datetime
    component: str | None = None
    """Set for fleet schedulers (template models): which asset the event belongs to."""
    _sums: dict[str, float] = field(default_factory=dict, repr=False)
    _rows: int = 0

    @property
    def duration_s(self) -> int:
        return int((self.end - self.start).total_seconds())

    @property
    def diagnostics(self) -> list[dict[str, Any]]:
        """Each sensor's mean share over the event's rows."""
        return [
            {"name": name, "value": round(total / self._rows, 5)}
            for name, total in self._sums.items()
        ]

    def add(self, at: datetime, line: dict[str, Any]) -> None:
        self.end = at
        self._rows += 1
        for item in line.get("diagnostics", []):
            self._sums[item["name"]] = self._sums.get(item["name"], 0.0) + float(item["value"])

    def to_summary(self) -> dict[str, Any]:
        """``InferenceEventSummary`` shape; ``Diagnostics`` is a JSON string as in L4E."""
        doc: dict[str, Any] = {
            "InferenceSchedulerName": self.scheduler,
            "EventStartTime": _iso(self.start),
            "EventEndTime": _iso(self.end),
            "Diagnostics": _diagnostics_text(self.diagnostics),
            "EventDurationInSeconds": self.duration_s,
        }
        if self.component:
            doc["Component"] = self.component
        return doc


DIAGNOSTICS_CHARS = 50_000
"""``InferenceEventSummary.Diagnostics``' length limit (API reference)."""


def _diagnostics_text(diagnostics: list[dict[str, Any]]) -> str:
    """``{"diagnostics": [...]}`` within L4E's limit: 300 sensors with long
    ``component\\sensor`` names need more, and then the sensors that contributed least are
    left out (the rest keep their order), so the string stays what an L4E reader accepts."""
    text = json.dumps({"diagnostics": diagnostics})
    if len(text) <= DIAGNOSTICS_CHARS:
        return text
    ranked = sorted(range(len(diagnostics)), key=lambda i: -diagnostics[i]["value"])
    size, kept = len('{"diagnostics": []}'), set()
    for i in ranked:
        size += len(json.dumps(diagnostics[i])) + 2  # and its ", "
        if size > DIAGNOSTICS_CHARS:
            break
        kept.add(i)
    return json.dumps({"diagnostics": [d for i, d in enumerate(diagnostics) if i in kept]})


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _component_of(key: str, output_prefix: str) -> str | None:
    middle = key[len(output_prefix) :].split("/")
    return middle[0] if len(middle) == 3 else None


def list_events(
    executions: list[Execution],
    output_store: ObjectStore,
    output_prefix: str,
    interval_start: datetime | None = None,
    interval_end: datetime | None = None,
) -> list[InferenceEvent]:
    """Events ending at or after *interval_start* and starting before *interval_end*."""
    open_events: dict[str | None, InferenceEvent | None] = {}
    done: list[InferenceEvent] = []
    covered: datetime | None = None
    for execution in sorted(executions, key=lambda e: e.data_start):
        gap = covered is not None and execution.data_start > covered  # a window never run
        covered = execution.data_end if covered is None else max(covered, execution.data_end)
        if execution.status != "SUCCESS" or gap:
            for key, event in open_events.items():
                if event is not None:
                    done.append(event)
                    open_events[key] = None
            if execution.status != "SUCCESS":
                continue
        seen: set[str | None] = set()
        for key in execution.result_keys or (
            (execution.result_key,) if execution.result_key else ()
        ):
            component = _component_of(key, output_prefix)
            seen.add(component)
            try:
                lines = decode_results(output_store.get(key))
            except NotFoundError:  # rows nobody can read: no evidence the anomaly went on
                if open_events.get(component) is not None:
                    done.append(open_events[component])
                    open_events[component] = None
                continue
            for line in lines:
                at = datetime.fromisoformat(line["timestamp"]).replace(tzinfo=UTC)
                current = open_events.get(component)
                if line.get("prediction") == 1:
                    if current is None:
                        current = InferenceEvent(execution.scheduler, at, at, component)
                        open_events[component] = current
                    current.add(at, line)
                elif current is not None:
                    done.append(current)
                    open_events[component] = None
        for component, event in open_events.items():
            if component not in seen and event is not None:
                done.append(event)
                open_events[component] = None
    done.extend(e for e in open_events.values() if e is not None)
    done.sort(key=lambda e: (e.start, e.component or ""))
    return [
        e
        for e in done
        if (interval_start is None or e.end >= interval_start)
        and (interval_end is None or e.start < interval_end)
    ]
