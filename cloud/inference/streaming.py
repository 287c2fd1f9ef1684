"""Streaming mode: score each reading as it arrives, write the same result lines.

The scorer takes telemetry payloads (the wire format of :mod:`edge.wire`), keeps one
:class:`~cloud.inference.monitor.MonitorState` per asset (the model's moving means, its
change test and alarm episode: the same rules the scheduler and ``bench skab`` run, see
:mod:`cloud.inference.monitor`), and hands L4E result lines to a sink. It knows nothing of
MQTT: the local runtime or a bench feeds it from a subscription, a Lambda from Kinesis
records.

Semantics worth knowing:
* readings are scored as they come, without resampling (a model trained with a
  ``TargetSamplingRate`` is applied per reading);
* a redelivered message (same ``sender:seq``, asset and sample times) is ignored; a
  reading not newer than the asset's last scored reading is dropped and counted
  (``late``); samples of one message that share a timestamp are one reading, merged as
  the batcher merges them (a later sample's value wins, a value wins over a null);
* a reading that carries none of the model's sensors (only other names) is not scored:
  filled with the training means it would be a made-up normal row. It is skipped, counted
  (``no_model_sensors``) and logged (one warning line a minute at most), as the scheduler
  scores no input file without the model's sensors; it does not advance the asset's
  last reading. A reading with a model sensor whose value is null is scored, its gap
  filled, as a blank cell is in the scheduler;
* given a clock, a message with a reading more than ``max_skew_s`` from now is refused
  whole (``timestamp_out_of_range``, the batcher's check): one reading dated 2199 would
  otherwise make every real reading of its asset "late" until a restart;
* given the topic (the local runtime passes it), a payload whose site and asset are not
  the topic's is refused (``topic_mismatch``), as the batcher refuses it;
* sites are kept apart (:mod:`cloud.l4e.sites`): state is per ``(site, asset)`` and the sink
  is handed the site layout's key, ``<asset>`` or ``<site>:<asset>``;
* a message's state (its id, the asset's last reading and model state) is committed only
  after the sink has stored its lines, so a message whose lines could not be stored is
  scored again when it is redelivered;
* ``prediction`` is the model's alarm and ``prediction = 1`` exactly when
  ``anomaly_score > 0.5``. For a model without alarm rules (``TrainConfig.alarm = None``)
  ``debounce_rows > 1`` debounces the row-by-row prediction instead, which may then differ
  from ``anomaly_score > 0.5`` for up to that many rows at each edge;
* for a template model the diagnostics are named ``<asset>\\<sensor>``; an asset model
  (``component\\sensor`` names) takes the reading's plain sensor names for its component.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from cloud.inference.alarm import Debouncer
from cloud.inference.model import Model
from cloud.inference.monitor import Monitor, MonitorState
from cloud.inference.results import encode_results, result_lines, results_key
from cloud.l4e.naming import plain_sensor, window_end
from cloud.l4e.sites import SiteLayout
from cloud.ports import AppendableObjectStore, ObjectStore
from cloud.wire_decoder import decode
from edge.clock import Clock
from edge.errors import ConfigError, NotFoundError, WireFormatError
from edge.logs import LineEvery
from edge.wire import Sample, Telemetry, parse_telemetry_topic

log = logging.getLogger(__name__)

SKIP_LOG_INTERVAL_S = 60.0
"""At most one warning line about skipped readings per this many seconds."""

MAX_SKEW_S = 7 * 24 * 3600
"""Default clock-skew bound, the batcher's (``BatcherConfig.max_skew_s``)."""


class ResultSink(Protocol):
    def write(self, asset: str, lines: list[dict[str, Any]]) -> None: ...


@dataclass
class CallbackSink:
    """Hands lines to a function (tests, benches, the detector feeder)."""

    callback: Callable[[str, list[dict[str, Any]]], None]

    def write(self, asset: str, lines: list[dict[str, Any]]) -> None:
        self.callback(asset, lines)


StoredLines = Callable[[str, str, int, list[dict[str, Any]]], None]
"""``(asset, results key, first row, lines)``: lines stored as rows ``first row ...`` of the
object, told to whoever feeds them on (the detector feeder in the local stack)."""


class WindowedObjectSink:
    """Writes lines into the scheduler's layout, ``<prefix>[<site>/]<asset>/<DataStartTime>/
    results.jsonl``, one object per upload window, growing as lines arrive.

    A store that can append (a local directory) gets each message's lines appended and
    synced; rewriting and syncing the whole window on every reading cost time in
    proportion to the window's length. Other stores (S3) get the window rewritten.
    The first write to a window in this process reads back what is stored (written before
    a restart) and keeps its lines older than the new ones, so a redelivered message is not
    written twice and a line torn by a crash is dropped; that write replaces the object.
    A failed write leaves the window as it was stored. *on_stored* is told of every write.
    """

    def __init__(
        self,
        store: ObjectStore,
        prefix: str = "stream/",
        frequency_s: int = 300,
        sites: SiteLayout | None = None,
        on_stored: StoredLines | None = None,
    ):
        self.store, self.prefix, self.frequency_s = store, prefix, frequency_s
        self.sites = sites or SiteLayout()
        self.on_stored = on_stored
        self._append = store.append if isinstance(store, AppendableObjectStore) else None
        self._open: dict[tuple[str, float], int] = {}
        """Rows of each open window."""
        self._lines: dict[tuple[str, float], list[dict[str, Any]]] = {}
        """The open windows' lines, kept only to rewrite them (a store that cannot append)."""

    def write(self, asset: str, lines: list[dict[str, Any]]) -> None:
        """*asset* is the site layout's key of the asset (``<asset>`` or ``<site>:<asset>``)."""
        site, name = self.sites.split(asset)
        prefix = self.sites.prefix(self.prefix, site)
        grouped: dict[float, list[dict[str, Any]]] = {}
        for line in lines:
            at = datetime.fromisoformat(line["timestamp"]).replace(tzinfo=UTC).timestamp()
            start = window_end(at, self.frequency_s) - self.frequency_s
            grouped.setdefault(start, []).append(line)
        try:
            for start, new in sorted(grouped.items()):
                self._write_window(asset, name, prefix, start, new)
        except BaseException:
            # Lines of this call may be stored in part (an earlier window of it, or half an
            # append): the scorer commits nothing and the message comes again. Those windows
            # are read back on their next write, which keeps only their lines older than the
            # new ones: redelivered lines are not stored twice, a torn line is dropped.
            for start in grouped:
                self._open.pop((asset, start), None)
                self._lines.pop((asset, start), None)
            raise
        for window in [k for k in self._open if k[0] == asset and k[1] not in grouped]:
            del self._open[window]  # an older window of this asset is complete
            self._lines.pop(window, None)

    def _write_window(
        self, asset: str, name: str, prefix: str, start: float, new: list[dict[str, Any]]
    ) -> None:
        key = results_key(prefix, datetime.fromtimestamp(start, tz=UTC), component=name)
        window = (asset, start)
        first = self._open.get(window)
        if first is None:
            old = self._stored(key, new[0]["timestamp"])
            self.store.put(key, encode_results([*old, *new]))
            first = len(old)
        elif self._append is not None:
            self._append(key, encode_results(new))
        else:
            old = self._lines[window]
            self.store.put(key, encode_results([*old, *new]))
        self._open[window] = first + len(new)
        if self._append is None:
            self._lines[window] = [*self._lines.get(window, old), *new]
        if self.on_stored is not None:
            self.on_stored(asset, key, first, new)

    def _stored(self, key: str, before: str) -> list[dict[str, Any]]:
        """The window's stored lines before *before*; a line that does not parse (torn by a
        crash in the middle of an append) is left out."""
        try:
            body = self.store.get(key)
        except NotFoundError:
            return []
        kept = []
        for text in body.decode("utf-8", errors="replace").splitlines():
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                continue
            if isinstance(line, dict) and str(line.get("timestamp", "")) < before:
                kept.append(line)
        return kept


@dataclass
class StreamStats:
    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    late: int = 0
    no_model_sensors: int = 0
    """Readings skipped because they carry none of the model's sensors."""
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class _AssetState:
    monitor: MonitorState | None = None
    debouncer: Debouncer = field(default_factory=Debouncer)
    last_ts_ms: int = -1


class StreamingScorer:
    def __init__(
        self,
        model: Model,
        sink: ResultSink,
        *,
        debounce_rows: int = 1,
        quarantine: Callable[[bytes, str, str], None] | None = None,
        dedup_window: int = 10_000,
        clock: Clock | None = None,
        max_skew_s: float = MAX_SKEW_S,
        sites: SiteLayout | None = None,
        decode: Callable[[bytes | str], Telemetry] = decode,
    ) -> None:
        self.decode = decode
        """The wire decoder (the local runtime passes the msgspec one)."""
        self.model = model
        self.sink = sink
        self.clock = clock
        self.max_skew_s = max_skew_s
        self.sites = sites or SiteLayout()
        Debouncer(debounce_rows)  # validates
        self.monitor = Monitor(model)
        if debounce_rows > 1 and self.monitor.alarm is not None:
            raise ConfigError(
                f"debounce_rows {debounce_rows}: the model's alarm rules raise after "
                f"{self.monitor.alarm.episodes.raise_rows} rows already (debounce is for a "
                "model trained without them)"
            )
        self.debounce_rows = debounce_rows
        self.quarantine = quarantine
        self.stats = StreamStats()
        self._assets: dict[str, _AssetState] = {}
        self._seen: OrderedDict[tuple[object, ...], None] = OrderedDict()
        self._topics: dict[str, tuple[str, str]] = {}
        """Telemetry topics already parsed: a fleet has few."""
        self._dedup_window = dedup_window
        self._plain = tuple(plain_sensor(s) for s in model.sensors)
        self._plain_set = frozenset(self._plain)
        self._skip_lines = LineEvery(SKIP_LOG_INTERVAL_S)
        self._off_plain = model.off.plain_sensor if model.off else None

    def handle(self, payload: bytes, topic: str | None = None) -> list[dict[str, Any]]:
        """Decode, score and emit one message; malformed payloads go to quarantine. With the
        *topic* it came on, the payload's site and asset must be the topic's, as the batcher
        requires (``topic_mismatch``): a device allowed its own topic only must not put
        readings on another asset's results."""
        try:
            message = self.decode(payload)
            where = None if topic is None else self._topic(topic)
        except WireFormatError as exc:
            self._refuse(payload, exc.reason, str(exc))
            return []
        if where is not None and where != (message.site, message.asset):
            self._refuse(
                payload,
                "topic_mismatch",
                f"payload site/asset {message.site}/{message.asset} differs from topic "
                f"{where[0]}/{where[1]}",
            )
            return []
        return self.handle_message(message, payload)

    def _topic(self, topic: str) -> tuple[str, str]:
        where = self._topics.get(topic)
        if where is None:
            where = parse_telemetry_topic(topic)
            if len(self._topics) < 100_000:
                self._topics[topic] = where
        return where

    def _refuse(self, payload: bytes | None, reason: str, error: str) -> None:
        self.stats.quarantined += 1
        reasons = self.stats.quarantine_reasons
        reasons[reason] = reasons.get(reason, 0) + 1
        if self.quarantine is not None and payload is not None:
            self.quarantine(payload, reason, error)

    def _skewed(self, message: Telemetry) -> str | None:
        if self.clock is None:
            return None
        now = self.clock.now()
        for i, sample in enumerate(message.samples):
            skew = sample.ts_ms / 1000 - now
            if abs(skew) > self.max_skew_s:
                return (
                    f"samples[{i}].ts: {sample.ts_ms} is {skew:+.0f} s from now; "
                    f"at most {self.max_skew_s:.0f} s allowed"
                )
        return None

    def handle_message(
        self, message: Telemetry, payload: bytes | None = None
    ) -> list[dict[str, Any]]:
        """Score one decoded message; *payload* (its raw bytes) is what a refusal keeps."""
        self.stats.messages += 1
        if _identity(message) in self._seen:
            self.stats.duplicates += 1
            return []
        skewed = self._skewed(message)
        if skewed is not None:
            self._refuse(payload, "timestamp_out_of_range", skewed)
            return []
        key = self.sites.key(message.site, message.asset)
        state = self._assets.setdefault(key, _AssetState(debouncer=Debouncer(self.debounce_rows)))
        samples = sorted(message.samples, key=lambda s: s.ts_ms)
        wanted = self._plain_set
        carrying = [s for s in samples if not wanted.isdisjoint(s.values)]
        if len(carrying) < len(samples):
            self._skip_foreign(message, len(samples) - len(carrying))
            if not carrying:
                self._remember(message)
                return []
            samples = carrying
        fresh = [s for s in samples if s.ts_ms > state.last_ts_ms]
        if not fresh:
            self._remember(message)
            self.stats.late += len(samples)
            return []
        late = len(samples) - len(fresh)
        if len({s.ts_ms for s in fresh}) != len(fresh):
            fresh = _merged(fresh)
        x = np.array(
            [[_value(s.values.get(name)) for name in self._plain] for s in fresh], dtype=float
        )
        off = np.zeros(len(fresh), dtype=bool)
        if self.model.off is not None:
            values = np.array([_value(s.values.get(self._off_plain)) for s in fresh])
            with np.errstate(invalid="ignore"):
                off = (
                    values < self.model.off.value
                    if self.model.off.op == "<"
                    else values > self.model.off.value
                )
        x = self._fill(x, state)
        index = pd.DatetimeIndex(pd.to_datetime([s.ts_ms for s in fresh], unit="ms", utc=True))
        out = self.monitor.score_arrays(index, x, off, state.monitor)
        result = out.result
        if self.debounce_rows > 1:
            result.prediction = state.debouncer.run(result.prediction.astype(bool)).astype(np.int8)
        names = self.model.sensor_names(None if not self.model.is_template else message.asset)
        lines = result_lines(result, names)
        self.sink.write(key, lines)
        # stored: only now does this message count as scored
        state.monitor = out.state
        state.last_ts_ms = fresh[-1].ts_ms
        self._remember(message)
        self.stats.late += late
        self.stats.readings += len(fresh)
        return lines

    def _skip_foreign(self, message: Telemetry, count: int) -> None:
        """Count *count* readings of *message* that carry none of the model's sensors;
        log them, at most one line a minute with the count since the last line."""
        self.stats.no_model_sensors += count
        skipped = self._skip_lines.add(count)
        if not skipped:
            return
        log.warning(
            "streaming: %d reading(s) with none of the model's sensors not scored (last: "
            "%s/%s %s); %d in all",
            skipped,
            message.site,
            message.asset,
            message.msg_id,
            self.stats.no_model_sensors,
        )

    def _remember(self, message: Telemetry) -> None:
        self._seen[_identity(message)] = None
        if len(self._seen) > self._dedup_window:
            self._seen.popitem(last=False)

    def _fill(self, x: np.ndarray, state: _AssetState) -> np.ndarray:
        """Missing values: the asset's previous reading, else the training mean."""
        if not np.isnan(x).any():
            return x
        stream = state.monitor.stream if state.monitor is not None else None
        previous = stream.tail[-1] if stream is not None and len(stream.tail) else self.model.fill
        for i in range(len(x)):
            gaps = np.isnan(x[i])
            x[i, gaps] = previous[gaps]
            previous = x[i]
        return x


def _identity(message: Telemetry) -> tuple[object, ...]:
    """What makes a delivery a redelivery: the id, where it is for, and its sample times.
    ``sender:seq`` alone is not enough: a device whose queue was reset numbers from 0 again,
    and a gateway that numbers per asset repeats ids across assets; their new readings were
    taken for redeliveries and never scored (the batcher keeps them, as id conflicts)."""
    samples = message.samples
    return (
        message.site,
        message.asset,
        message.msg_id,
        len(samples),
        samples[0].ts_ms,
        samples[-1].ts_ms,
    )


def _merged(samples: list[Sample]) -> list[Sample]:
    """One sample per timestamp of *samples* (sorted by time, stably), merged as the
    batcher merges a message's rows: a later sample's value wins, a value wins over a null.
    Scored apiece, a repeated timestamp gave two result lines for one instant and moved the
    model's state twice."""
    out: list[Sample] = []
    for sample in samples:
        if out and out[-1].ts_ms == sample.ts_ms:
            values = dict(out[-1].values)
            for name, value in sample.values.items():
                if value is not None or name not in values:
                    values[name] = value
            out[-1] = Sample(sample.ts_ms, values)
        else:
            out.append(sample)
    return out


def _value(value: float | None) -> float:
    return float("nan") if value is None else float(value)
