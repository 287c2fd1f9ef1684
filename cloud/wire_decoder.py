"""The telemetry payload (:mod:`edge.wire`) decoded by msgspec, for the cloud's hot path.

Why: ``edge.wire.decode`` (``json.loads`` and a Python check of every sample) cost the
rules runner about 66 us of its 164 us per 20-sample message. msgspec parses straight into
typed structs and checks types, ranges and lengths in C as it parses; what is left (the
name patterns) is checked here once per message, against caches of names already seen.
:func:`decode_rows` hands the batcher plain ``(ts_ms, values)`` rows with no per-sample
objects.

The contract stays ``edge.wire``'s, to the byte: this module accepts a payload only where
``edge.wire.decode`` would, and returns an equal :class:`~edge.wire.Telemetry` (or the
same message as :class:`~cloud.batcher.readings.Readings`). Anything the
fast path does not accept (a refused payload, or one it cannot judge, such as a ``NaN``
literal or an integer beyond 64 bits) goes to ``edge.wire.decode``, which raises the same
``WireFormatError`` with the same reason as before. The edge side keeps the stdlib decoder:
devices need no msgspec.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import msgspec
from msgspec import Meta

from cloud.batcher.csv_text import uniform_table
from cloud.batcher.readings import Readings, from_telemetry
from edge.wire import (
    MAX_ABS_VALUE,
    MAX_PAYLOAD_BYTES,
    MAX_SEQ,
    NAME_RE,
    SCHEMA_VERSION,
    SENSOR_RE,
    TS_MAX_MS,
    TS_MIN_MS,
    Sample,
    Telemetry,
)
from edge.wire import decode as decode_slowly

_Value = (
    Annotated[int, Meta(ge=-int(MAX_ABS_VALUE), le=int(MAX_ABS_VALUE))]
    | Annotated[float, Meta(ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE)]
    | None
)
"""A reading within ``edge.wire``'s bounds, checked by msgspec in C: ints exactly (as
``edge.wire`` compares them), floats by value (NaN and infinity fail the bounds)."""


class _SampleDoc(msgspec.Struct, forbid_unknown_fields=False, gc=False):
    ts: Annotated[int, Meta(ge=TS_MIN_MS, lt=TS_MAX_MS)]
    values: Annotated[dict[str, _Value], Meta(min_length=1)]


class _Doc(msgspec.Struct, forbid_unknown_fields=False, gc=False):
    v: int
    site: str
    asset: str
    sender: str
    seq: Annotated[int, Meta(ge=0, le=MAX_SEQ)]
    samples: Annotated[list[_SampleDoc], Meta(min_length=1)]


_DECODER = msgspec.json.Decoder(_Doc)
_ENCODER = msgspec.json.Encoder()
_SENSORS: set[str] = set()
"""Sensor names already seen to match ``SENSOR_RE`` (a fleet has few)."""
_NAMES: set[str] = set()
"""Site, asset and sender names already seen to match ``NAME_RE``."""


def decode(payload: bytes | str) -> Telemetry:
    """``edge.wire.decode``, faster: the same Telemetry, or the same WireFormatError."""
    readings = _fast(payload, columns=False)
    if readings is None:
        return decode_slowly(payload)
    site, asset, sender, seq, rows, *_ = readings
    return Telemetry(site, asset, sender, seq, tuple(Sample(ts, v) for ts, v in rows))


def decode_rows(payload: bytes | str) -> Readings:
    """The batcher's form of ``edge.wire.decode``: the same message as plain rows, with no
    per-sample objects, or the same WireFormatError."""
    readings = _fast(payload)
    return readings if readings is not None else from_telemetry(decode_slowly(payload))


def _fast(payload: bytes | str, *, columns: bool = True) -> Readings | None:
    """The message when every check passes; None when ``edge.wire`` must judge.

    msgspec checks types, bounds and lengths while it parses; what is left is the names,
    checked against caches of names already seen: once per message when every sample has
    the same sensors (found while taking their values out as the CSV's columns, which only
    the batcher wants: *columns* False skips that and checks each sample's names)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        doc = _DECODER.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if doc.v != SCHEMA_VERSION or not (_name(doc.site) and _name(doc.asset) and _name(doc.sender)):
        return None
    rows = [(raw.ts, raw.values) for raw in doc.samples]
    found = uniform_table(rows) if columns else None
    if found is not None:
        columns, table = found
        if not _SENSORS.issuperset(columns) and not _sensors(columns):
            return None
        return Readings(doc.site, doc.asset, doc.sender, doc.seq, rows, columns, table)
    for _, values in rows:
        if not _SENSORS.issuperset(values) and not _sensors(values):
            return None
    return Readings(doc.site, doc.asset, doc.sender, doc.seq, rows)


def dumps(value: object) -> str:
    """Compact JSON text, for the batcher's rows (:mod:`cloud.batcher.csv_text`): several
    times faster than ``json`` at writing floats. It writes magnitudes below 1e-4 without an
    exponent, unlike ``repr``; the batcher spots those and formats them itself."""
    return _ENCODER.encode(value).decode()


def _name(value: str) -> bool:
    if value in _NAMES:
        return True
    if NAME_RE.fullmatch(value) is None:
        return False
    if len(_NAMES) < 100_000:
        _NAMES.add(value)
    return True


def _sensors(names: Iterable[str]) -> bool:
    for name in names:
        if name not in _SENSORS:
            if SENSOR_RE.fullmatch(name) is None:
                return False
            if len(_SENSORS) < 100_000:
                _SENSORS.add(name)
    return True
