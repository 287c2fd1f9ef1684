"""The telemetry payload (:mod:`edge.wire`) decoded by msgspec, for the cloud's hot path.

Why: ``edge.wire.decode`` (``json.loads`` and a Python check of every sample) cost the
rules runner about 66 us of its 164 us per 20-sample message. msgspec parses straight into
typed structs and checks types, ranges and lengths in C as it parses; what is left (the
name patterns) is checked here once per message, against caches of names already seen.
:func:`decode_rows` hands the batcher plain ``(ts_ms, values)`` rows with no per-sample
objects. Once it has seen a sensor set, it decodes later messages with that set by a
decoder of its own (each sample's values a struct of exactly those sensors), so the CSV's
table comes straight out of it without a dict per sample (``_shaped``: about 12% of the
rules worker's instructions per message); any other message takes the general way.

The contract stays ``edge.wire``'s, to the byte: this module accepts a payload only where
``edge.wire.decode`` would, and returns an equal :class:`~edge.wire.Telemetry` (or the
same message as :class:`~cloud.batcher.readings.Readings`). Anything the
fast path does not accept (a refused payload, or one it cannot judge, such as a ``NaN``
literal, an integer beyond 64 bits, or a field the contract does not name, which may
nest past ``edge.wire.MAX_NESTING``) goes to ``edge.wire.decode``, which raises the same
``WireFormatError`` with the same reason as before. The edge side keeps the stdlib decoder:
devices need no msgspec.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from cloud.batcher.csv_text import uniform_table
from cloud.batcher.readings import Readings, TableRows, from_telemetry
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


class _SampleDoc(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    ts: Annotated[int, Meta(ge=TS_MIN_MS, lt=TS_MAX_MS)]
    values: Annotated[dict[str, _Value], Meta(min_length=1)]


class _Doc(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    v: int
    site: str
    asset: str
    sender: str
    seq: Annotated[int, Meta(ge=0, le=MAX_SEQ)]
    samples: Annotated[list[_SampleDoc], Meta(min_length=1)]


_DECODER = msgspec.json.Decoder(_Doc)
_Shape = tuple[msgspec.json.Decoder[Any], tuple[str, ...]]
_SHAPES: dict[bytes | str, _Shape] = {}
"""A decoder per sensor set and its sorted names, by the first sensor name a payload shows
(:func:`_shape_key`)."""
_SHAPE_OF: dict[tuple[str, ...], _Shape] = {}
"""The same, by the sorted names."""
MAX_SHAPES = 1_000
_TS = attrgetter("ts")
_VALUES = attrgetter("values")
_ROW = msgspec.structs.astuple
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
    the batcher wants: *columns* False skips that and checks each sample's names).

    A payload with any byte beyond ASCII goes to ``edge.wire`` too: msgspec skips a field
    the contract ignores without checking that its bytes are UTF-8, so it would take a
    payload that is not JSON text (``json`` refuses it: ``bad_json``). Every name the
    contract accepts is ASCII, so such a payload is one a device rarely sends; the test
    is a C scan of the bytes (about 0.1 us for a 2 KB message, O(1) for ``str``)."""
    if len(payload) > MAX_PAYLOAD_BYTES or not payload.isascii():
        return None
    key = _shape_key(payload) if columns else None
    shaped = _SHAPES.get(key) if key is not None else None
    if shaped is not None:
        readings = _shaped(*shaped, payload)
        if readings is not None:
            return readings
    doc = _parse(_DECODER, payload)
    if doc is None:
        return None
    rows = [(raw.ts, raw.values) for raw in doc.samples]
    found = uniform_table(rows) if columns else None
    if found is not None:
        columns, table = found
        if not _SENSORS.issuperset(columns) and not _sensors(columns):
            return None
        if key is not None:
            _learn_shape(key, columns)
        times = [ts for ts, _ in rows]
        return Readings(doc.site, doc.asset, doc.sender, doc.seq, rows, columns, table, times)
    for _, values in rows:
        if not _SENSORS.issuperset(values) and not _sensors(values):
            return None
    return Readings(doc.site, doc.asset, doc.sender, doc.seq, rows)


def _shaped(
    decoder: msgspec.json.Decoder[Any], names: tuple[str, ...], payload: bytes | str
) -> Readings | None:
    """The message by a sensor set's own decoder: each sample's values become a struct
    whose fields are exactly those sensors, sorted, so a row of the table is the struct as
    a tuple, with no dict per sample. A payload with other sensors, or any other fault,
    fails here and goes the general way, which judges it as before; one that passes is
    one the general way accepts with the same columns and table (same value types, same
    bounds, the same names, a repeated key's last value), its names checked once when
    the shape was learnt."""
    doc = _parse(decoder, payload)
    if doc is None:
        return None
    samples = doc.samples
    times = list(map(_TS, samples))
    table = list(map(_ROW, map(_VALUES, samples)))
    columns = list(names)
    rows = TableRows(times, columns, table)
    return Readings(doc.site, doc.asset, doc.sender, doc.seq, rows, columns, table, times)


def _parse(decoder: msgspec.json.Decoder[Any], payload: bytes | str) -> Any:
    """The document, if it parses and its version and names are the contract's."""
    try:
        doc = decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None  # edge.wire judges it (a RecursionError: nested too deeply, bad_json)
    if doc.v != SCHEMA_VERSION:
        return None
    site, asset, sender = doc.site, doc.asset, doc.sender
    if site in _NAMES and asset in _NAMES and sender in _NAMES:  # names seen before
        return doc
    return doc if _name(site) and _name(asset) and _name(sender) else None


def _shape_key(payload: bytes | str) -> bytes | str | None:
    """The first sensor name as the payload spells it (``"values":{"<name>"``), which
    picks the sensor set's decoder to try; None where the payload is spaced otherwise."""
    if isinstance(payload, bytes):
        start = payload.find(b'"values":{"')
        end = payload.find(b'"', start + 11) if start >= 0 else -1
    elif isinstance(payload, str):
        start = payload.find('"values":{"')
        end = payload.find('"', start + 11) if start >= 0 else -1
    else:
        return None
    return payload[start + 11 : end] if end > 0 else None


def _learn_shape(key: bytes | str, columns: list[str]) -> None:
    """Remember a decoder for *columns* (names already checked) under *key*."""
    names = tuple(columns)
    shape = _SHAPE_OF.get(names)
    if shape is None:
        if len(_SHAPE_OF) >= MAX_SHAPES:
            _SHAPE_OF.clear()
            _SHAPES.clear()
        shape = _SHAPE_OF[names] = (msgspec.json.Decoder(_shape_doc(names)), names)
    if len(_SHAPES) >= MAX_SHAPES:
        _SHAPES.clear()
    _SHAPES[key] = shape


def _shape_doc(names: tuple[str, ...]) -> type[msgspec.Struct]:
    """``_Doc`` whose samples' values have exactly *names* (sorted), each a ``_Value``;
    the fields are named ``f0``, ``f1``... and renamed to the sensors, which need not be
    identifiers."""
    values = msgspec.defstruct(
        "_ShapeValues",
        [(f"f{i}", _Value) for i in range(len(names))],
        rename={f"f{i}": name for i, name in enumerate(names)},
        forbid_unknown_fields=True,
        gc=False,
    )
    sample = msgspec.defstruct(
        "_ShapeSample",
        [("ts", Annotated[int, Meta(ge=TS_MIN_MS, lt=TS_MAX_MS)]), ("values", values)],
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.defstruct(
        "_ShapeDoc",
        [
            ("v", int),
            ("site", str),
            ("asset", str),
            ("sender", str),
            ("seq", Annotated[int, Meta(ge=0, le=MAX_SEQ)]),
            ("samples", Annotated[list[sample], Meta(min_length=1)]),  # type: ignore[valid-type]
        ],
        forbid_unknown_fields=True,
        gc=False,
    )


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
