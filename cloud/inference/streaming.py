"""Streaming mode: score each reading as it arrives, write the same result lines.

The scorer takes telemetry payloads (the wire format of :mod:`edge.wire`), keeps one
:class:`~cloud.inference.model.StreamState` and one debouncer per asset, and hands L4E
result lines to a sink. It knows nothing of MQTT: the local runtime or a bench feeds it
from a subscription, a Lambda from Kinesis records.

Semantics worth knowing:
* readings are scored as they come, without resampling (a model trained with a
  ``TargetSamplingRate`` is applied per reading);
* a redelivered message (same ``sender:seq``) is ignored; a reading not newer than the
  asset's last scored reading is dropped and counted (``late``);
* with ``debounce_rows > 1`` the line's ``prediction`` is the debounced alarm, so it may
  differ from ``anomaly_score > 0.5`` for up to that many rows at each edge; with the default
  of 1 the L4E rule holds exactly;
* for a template model the diagnostics are named ``<asset>\\<sensor>``; an asset model
  (``component\\sensor`` names) takes the reading's plain sensor names for its component.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from cloud.inference.alarm import Debouncer
from cloud.inference.model import Model, StreamState
from cloud.inference.results import encode_results, result_lines, results_key
from cloud.l4e.naming import window_end
from cloud.ports import ObjectStore
from edge.errors import WireFormatError
from edge.wire import Telemetry, decode


class ResultSink(Protocol):
    def write(self, asset: str, lines: list[dict[str, Any]]) -> None: ...


@dataclass
class CallbackSink:
    """Hands lines to a function (tests, benches, the detector feeder)."""

    callback: Callable[[str, list[dict[str, Any]]], None]

    def write(self, asset: str, lines: list[dict[str, Any]]) -> None:
        self.callback(asset, lines)


class WindowedObjectSink:
    """Writes lines into the scheduler's layout, ``<prefix><asset>/<DataStartTime>/
    results.jsonl``, one object per upload window, rewritten as lines arrive."""

    def __init__(self, store: ObjectStore, prefix: str = "stream/", frequency_s: int = 300):
        self.store, self.prefix, self.frequency_s = store, prefix, frequency_s
        self._open: dict[tuple[str, float], list[dict[str, Any]]] = {}

    def write(self, asset: str, lines: list[dict[str, Any]]) -> None:
        touched = set()
        for line in lines:
            at = datetime.fromisoformat(line["timestamp"]).replace(tzinfo=UTC).timestamp()
            start = window_end(at, self.frequency_s) - self.frequency_s
            self._open.setdefault((asset, start), []).append(line)
            touched.add((asset, start))
        for asset_name, start in touched:
            key = results_key(
                self.prefix, datetime.fromtimestamp(start, tz=UTC), component=asset_name
            )
            self.store.put(key, encode_results(self._open[(asset_name, start)]))
        for key in [k for k in self._open if k[0] == asset and k not in touched]:
            del self._open[key]  # an older window of this asset is complete


@dataclass
class StreamStats:
    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    late: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class _AssetState:
    stream: StreamState | None = None
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
    ) -> None:
        self.model = model
        self.sink = sink
        Debouncer(debounce_rows)  # validates
        self.debounce_rows = debounce_rows
        self.quarantine = quarantine
        self.stats = StreamStats()
        self._assets: dict[str, _AssetState] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._dedup_window = dedup_window
        self._plain = tuple(s.rpartition("\\")[2] for s in model.sensors)
        self._off_plain = model.off.plain_sensor if model.off else None

    def handle(self, payload: bytes) -> list[dict[str, Any]]:
        """Decode, score and emit one message; malformed payloads go to quarantine."""
        try:
            message = decode(payload)
        except WireFormatError as exc:
            self.stats.quarantined += 1
            reasons = self.stats.quarantine_reasons
            reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
            if self.quarantine is not None:
                self.quarantine(payload, exc.reason, str(exc))
            return []
        return self.handle_message(message)

    def handle_message(self, message: Telemetry) -> list[dict[str, Any]]:
        self.stats.messages += 1
        if message.msg_id in self._seen:
            self.stats.duplicates += 1
            return []
        self._seen[message.msg_id] = None
        if len(self._seen) > self._dedup_window:
            self._seen.popitem(last=False)
        state = self._assets.setdefault(
            message.asset, _AssetState(debouncer=Debouncer(self.debounce_rows))
        )
        samples = sorted(message.samples, key=lambda s: s.ts_ms)
        fresh = [s for s in samples if s.ts_ms > state.last_ts_ms]
        self.stats.late += len(samples) - len(fresh)
        if not fresh:
            return []
        self.stats.readings += len(fresh)
        state.last_ts_ms = fresh[-1].ts_ms
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
        result = self.model.score_arrays(index, x, off, state.stream)
        state.stream = result.state
        if self.debounce_rows > 1:
            result.prediction = state.debouncer.run(result.prediction.astype(bool)).astype(np.int8)
        names = self.model.sensor_names(None if not self.model.is_template else message.asset)
        lines = result_lines(result, names)
        self.sink.write(message.asset, lines)
        return lines

    def _fill(self, x: np.ndarray, state: _AssetState) -> np.ndarray:
        """Missing values: the asset's previous reading, else the training mean."""
        if not np.isnan(x).any():
            return x
        previous = (
            state.stream.tail[-1]
            if state.stream is not None and len(state.stream.tail)
            else self.model.fill
        )
        for i in range(len(x)):
            gaps = np.isnan(x[i])
            x[i, gaps] = previous[gaps]
            previous = x[i]
        return x


def _value(value: float | None) -> float:
    return float("nan") if value is None else float(value)
