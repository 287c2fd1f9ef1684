"""``results.jsonl`` lines in L4E's format (§5) and their output keys."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from cloud.inference.model import ScoreResult

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
    scores = np.round(result.score, 5)
    shares = _round_shares(result.contributions)
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
