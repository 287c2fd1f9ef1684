"""``results.jsonl`` lines in L4E's format (§5) and their output keys."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import numpy as np

from cloud.inference.blockwise import blocks
from cloud.inference.model import SCORE_DECIMALS, ScoreResult

RESULTS_FILE = "results.jsonl"


def result_lines(result: ScoreResult, sensors: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per timestamp, in time order; MACHINE_OFF lines carry no score/diagnostics.

    Diagnostics are rounded to 5 decimals and the largest one absorbs the rounding
    remainder, so each line's values add up to exactly 1 (to 5 decimals).
    """
    if len(sensors) != result.contributions.shape[1]:
        raise ValueError(f"{len(sensors)} sensor names for {result.contributions.shape[1]} columns")
    stamps = result.index.tz_localize(None) if result.index.tz is not None else result.index
    texts = stamps.strftime("%Y-%m-%dT%H:%M:%S.%f")
    score, contributions = _finite(result.score, result.contributions)
    scores = np.round(score, SCORE_DECIMALS)
    shares = _round_shares(contributions)
    names = list(sensors)
    lines: list[dict[str, Any]] = []
    for i, text in enumerate(texts):
        if result.machine_off[i]:
            lines.append({"timestamp": text, "prediction": 0, "prediction_reason": "MACHINE_OFF"})
            continue
        flagged = bool(result.prediction[i])
        lines.append(
            {
                "timestamp": text,
                "prediction": int(flagged),
                "prediction_reason": "ANOMALY_DETECTED" if flagged else "NO_ANOMALY_DETECTED",
                "anomaly_score": float(scores[i]),
                "diagnostics": [
                    {"name": name, "value": float(v)}
                    for name, v in zip(names, shares[i], strict=True)
                ],
            }
        )
    return lines


def _finite(score: np.ndarray, shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores and shares as JSON numbers where the arithmetic overflowed (a reading such
    as 1e200 squares to infinity, and ``inf / inf`` is NaN): the score takes its limit,
    1, and the sensors whose share is not a number split what the others leave of 1.
    Finite rows are returned untouched (the same arrays when every value is finite)."""
    if np.isfinite(score).all() and np.isfinite(shares).all():
        return score, shares
    score = np.where(np.isfinite(score), score, 1.0)
    shares = shares.copy()
    bad = ~np.isfinite(shares)
    rows = bad.any(1)
    left = np.clip(1.0 - np.where(bad, 0.0, shares).sum(1), 0.0, 1.0)
    count = np.maximum(bad.sum(1), 1)
    shares[bad] = np.broadcast_to((left / count)[:, None], shares.shape)[bad]
    shares[rows] = np.clip(shares[rows], 0.0, 1.0)
    return score, shares


def _round_shares(shares: np.ndarray) -> np.ndarray:
    rounded = np.round(shares, 5)
    if rounded.size:
        top = rounded.argmax(1)
        rows = np.arange(len(rounded))
        rounded[rows, top] = np.round(rounded[rows, top] + 1.0 - rounded.sum(1), 5)
    return rounded


def encode_results(lines: Iterable[dict[str, Any]]) -> bytes:
    """``\\n``-terminated JSON lines, keys in L4E's order."""
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def encode_result_rows(result: ScoreResult, sensors: Sequence[str]) -> bytes:
    """``encode_results(result_lines(result, sensors))``, byte for byte, without a Python
    object per value (see :func:`iter_result_rows`)."""
    return b"".join(iter_result_rows(result, sensors))


def iter_result_rows(
    result: ScoreResult, sensors: Sequence[str], rows: int = 2048
) -> Iterator[bytes]:
    """The encoded lines of *result*, *rows* lines at a time.

    Why: a year of one-minute results for 30 sensors is 16 million diagnostics values;
    one dict per value and ``json.dumps`` per line took 25 s. Here every line is laid out
    in a fixed-width byte grid (constant text, timestamp digits, values looked up in a
    table of the 100,001 possible 5-decimal texts, NUL padding) and the padding is deleted
    at the end. A block with a value outside the table (NaN, infinity, -0.0) takes the
    line-by-line path; either way the bytes are ``json.dumps``' own.
    """
    if len(sensors) != result.contributions.shape[1]:
        raise ValueError(f"{len(sensors)} sensor names for {result.contributions.shape[1]} columns")
    stamps = _timestamp_bytes(result)
    if stamps is None:
        yield encode_results(result_lines(result, sensors))
        return
    layout = _layout(tuple(sensors))
    grid = layout.grid(min(len(stamps), rows))
    for block in blocks(len(stamps), rows):
        score, shares = _finite(result.score[block], result.contributions[block])
        score_keys = _table_keys(np.round(score, SCORE_DECIMALS))
        share_keys = _table_keys(_round_shares(shares))
        off = np.asarray(result.machine_off[block], dtype=bool)
        if score_keys is None or (share_keys is None and not off.all()):
            yield encode_results(result_lines(_rows(result, block), sensors))
            continue
        flagged = np.asarray(result.prediction[block]) != 0
        yield layout.render(grid[: len(off)], stamps[block], flagged, score_keys, share_keys, off)


def _rows(result: ScoreResult, block: slice) -> ScoreResult:
    return ScoreResult(
        result.index[block],
        result.score[block],
        result.prediction[block],
        result.machine_off[block],
        result.contributions[block],
    )


_DECIMALS = 100_000
_SLOT = 8
"""Bytes per value slot: the longest text (``0.00012``) and the character after it, one
uint64; shorter texts are NUL-padded."""


@cache
def _value_table(after: bytes) -> np.ndarray:
    """``repr`` of every 5-decimal value in [0, 1] (``k / 1e5``) followed by *after*, in 8
    bytes, each as one uint64 so that a slot is filled with one integer copy. Most texts
    are 7 characters, so most slots hold no NUL and there is little to delete."""
    texts = [repr(k / _DECIMALS).encode() + after for k in range(_DECIMALS + 1)]
    return np.array(texts, dtype=f"S{_SLOT}").view(np.uint64)


def _table_keys(values: np.ndarray) -> np.ndarray | None:
    """Row of each (already rounded) value in the table; None if any is not ``k / 1e5``
    for k in 0..100000 (so its text is not the table's)."""
    with np.errstate(invalid="ignore"):
        keys = np.rint(values * _DECIMALS)
        ok = (keys >= 0) & (keys <= _DECIMALS) & ~np.signbit(values)
    if not ok.all():
        return None
    keys = keys.astype(np.intp)
    if not np.array_equal(keys / _DECIMALS, values):
        return None
    return keys


def _timestamp_bytes(result: ScoreResult) -> np.ndarray | None:
    """The ``timestamp`` texts (``yyyy-MM-ddTHH:mm:ss.ffffff``) as rows of 26 bytes, from
    integer arithmetic; None where that would not be ``strftime``'s text (sub-microsecond
    parts, instants before 1970)."""
    index = result.index.tz_localize(None) if result.index.tz is not None else result.index
    ns = np.asarray(index.as_unit("ns").asi8)
    if len(ns) and ((ns % 1000).any() or ns.min() < 0):
        return None
    micros = ns // 1000
    days, of_day = np.divmod(micros, 86_400_000_000)
    year, month, day = _civil(days)
    seconds, fraction = np.divmod(of_day, 1_000_000)
    fields = [
        (year, 4, 0),
        (month, 2, 5),
        (day, 2, 8),
        (seconds // 3600, 2, 11),
        (seconds // 60 % 60, 2, 14),
        (seconds % 60, 2, 17),
        (fraction, 6, 20),
    ]
    out = np.empty((len(ns), 26), dtype=np.uint8)
    out[:] = np.frombuffer(b"0000-00-00T00:00:00.000000", dtype=np.uint8)
    for value, digits, at in fields:
        for k in range(digits):
            out[:, at + digits - 1 - k] = value // 10**k % 10 + ord("0")
    return out


def _civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month, day of days since 1970-01-01 (proleptic Gregorian; H. Hinnant's
    ``civil_from_days``)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (month <= 2), month, day


class _Layout:
    """Where each field of a line sits in the fixed-width grid."""

    def __init__(self, sensors: tuple[str, ...]) -> None:
        row = bytearray()
        self.slots: dict[str, int] = {}

        def slot(name: str, size: int) -> None:
            self.slots[name] = len(row)
            row.extend(b"\0" * size)

        row += b'{"timestamp": "'
        slot("timestamp", 26)
        row += b'", "prediction": '
        slot("prediction", 1)
        row += b', "prediction_reason": "'
        slot("reason", _REASONS.shape[1])
        row += b'", "anomaly_score": '
        slot("score", _SLOT)  # the score and its ","
        row += b' "diagnostics": ['
        for j, name in enumerate(sensors):
            row += (", " if j else "").encode() + b'{"name": ' + json.dumps(name).encode()
            row += b', "value": '
            slot(f"value{j}", _SLOT)  # the value and its "}"
        row += b"]}\n"
        self.template = np.frombuffer(bytes(row), dtype=np.uint8)
        self.values = [self.slots[f"value{j}"] for j in range(len(sensors))]
        off = b'{"timestamp": "' + b"\0" * 26 + b'", "prediction": 0, "prediction_reason": '
        off += b'"MACHINE_OFF"}\n'
        self.off_template = np.zeros(len(row), dtype=np.uint8)
        self.off_template[: len(off)] = np.frombuffer(off, dtype=np.uint8)

    def grid(self, rows: int) -> np.ndarray:
        """A grid of *rows* lines holding the constant text, reused block after block."""
        grid = np.empty((rows, len(self.template)), dtype=np.uint8)
        grid[:] = self.template
        return grid

    def render(
        self,
        grid: np.ndarray,
        stamps: np.ndarray,
        flagged: np.ndarray,
        score_keys: np.ndarray,
        share_keys: np.ndarray | None,
        off: np.ndarray,
    ) -> bytes:
        at = self.slots["timestamp"]
        grid[:, at : at + 26] = stamps
        grid[:, self.slots["prediction"]] = np.where(flagged, ord("1"), ord("0"))
        at = self.slots["reason"]
        grid[:, at : at + _REASONS.shape[1]] = _REASONS[flagged.astype(np.intp)]
        np.take(_value_table(b","), score_keys, out=self._slot(grid, self.slots["score"]))
        if share_keys is not None:
            table = _value_table(b"}")
            for j, at in enumerate(self.values):
                np.take(table, share_keys[:, j], out=self._slot(grid, at))
        if not off.any():
            return grid.tobytes().replace(b"\0", b"")
        grid[off] = self.off_template
        at = self.slots["timestamp"]
        grid[off, at : at + 26] = stamps[off]
        text = grid.tobytes().replace(b"\0", b"")
        grid[off] = self.template  # the next block starts from the constant text again
        return text

    @staticmethod
    def _slot(grid: np.ndarray, at: int) -> np.ndarray:
        return grid[:, at : at + _SLOT].view(np.uint64)[:, 0]


_REASONS = (
    np.array([b"NO_ANOMALY_DETECTED", b"ANOMALY_DETECTED"], dtype="S19")
    .view(np.uint8)
    .reshape(2, 19)
)


@cache
def _layout(sensors: tuple[str, ...]) -> _Layout:
    return _Layout(sensors)


def decode_results(body: bytes) -> list[dict[str, Any]]:
    """Tolerant reader: older L4E files lack ``anomaly_score`` or ``prediction_reason``."""
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def folder_time(data_start: datetime) -> str:
    """The output folder name: ``DataStartTime`` as ``yyyy-MM-dd'T'HH:mm:ss'Z'``."""
    return data_start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def results_key(output_prefix: str, data_start: datetime, component: str | None = None) -> str:
    """``<prefix><DataStartTime>/results.jsonl``; a fleet scheduler adds ``<component>/``."""
    middle = f"{component}/" if component else ""
    return f"{output_prefix}{middle}{folder_time(data_start)}/{RESULTS_FILE}"
