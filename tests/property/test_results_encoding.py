"""The vectorised results encoder writes exactly what ``json.dumps`` of each line writes."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cloud.inference.model import ScoreResult
from cloud.inference.results import encode_result_rows, encode_results, result_lines

NAMES = st.text(alphabet=st.sampled_from(list('ab_-.\\"/é€ 9')), min_size=1, max_size=8).filter(
    lambda s: s.strip()
)
SPECIAL = st.sampled_from([0.0, 1.0, 0.5, 1 / 3, 0.999996, 5e-6, 4.9e-6, 1e-5, 0.00012])


@st.composite
def results(draw: st.DrawFn) -> tuple[ScoreResult, list[str]]:
    rows = draw(st.integers(0, 40))
    width = draw(st.integers(1, 5))
    names = draw(st.lists(NAMES, min_size=width, max_size=width, unique=True))
    weights = draw(
        arrays(np.float64, (rows, width), elements=st.one_of(st.floats(0, 1e6), SPECIAL))
    )
    totals = weights.sum(1, keepdims=True)
    shares = np.divide(weights, totals, out=np.full_like(weights, 1 / width), where=totals > 0)
    scores = draw(
        arrays(np.float64, rows, elements=st.one_of(st.floats(0, 1, exclude_max=True), SPECIAL))
    )
    if rows and draw(st.booleans()):
        scores[draw(st.integers(0, rows - 1))] = draw(st.sampled_from([np.nan, -0.0, np.inf]))
    start = draw(st.sampled_from(["2026-01-01", "1969-12-31T23:59:59", "2262-01-01"]))
    step = draw(st.sampled_from(["1s", "10s", "1min", "1us", "1ns"]))
    index = pd.date_range(start, periods=rows, freq=step, tz=draw(st.sampled_from([None, "UTC"])))
    off = draw(arrays(np.bool_, rows))
    flagged = (scores > 0.5).astype(np.int8)
    if draw(st.booleans()):
        flagged = draw(arrays(np.int8, rows, elements=st.integers(0, 1)))
    return ScoreResult(index, scores, flagged, off, shares), names


@settings(max_examples=200, deadline=None)
@given(results())
def test_vectorised_encoding_is_json_dumps_of_each_line(
    case: tuple[ScoreResult, list[str]],
) -> None:
    result, names = case
    assert encode_result_rows(result, names) == encode_results(result_lines(result, names))


def test_a_long_result_spans_blocks_and_machine_off_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = 40_000
    rng = np.random.default_rng(0)
    shares = rng.random((rows, 3))
    shares /= shares.sum(1, keepdims=True)
    off = np.zeros(rows, dtype=bool)
    off[100:200] = True
    scores = rng.random(rows)
    result = ScoreResult(
        pd.date_range("2026-01-01", periods=rows, freq="1min", tz="UTC"),
        scores,
        (scores > 0.5).astype(np.int8),
        off,
        shares,
    )
    names = ["pump\\flow", "pump\\current", "pump\\temp"]
    expected = encode_results(result_lines(result, names))

    def line_by_line(*_: object) -> None:
        raise AssertionError("took the line-by-line path")

    monkeypatch.setattr("cloud.inference.results.result_lines", line_by_line)
    body = encode_result_rows(result, names)
    assert body == expected
    assert body.count(b"MACHINE_OFF") == 100


def _strict(line: bytes) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


@settings(max_examples=100, deadline=None)
@given(results(), st.data())
def test_every_line_is_json_with_a_score_in_0_1_and_shares_summing_to_1(
    case: tuple[ScoreResult, list[str]], data: st.DataObject
) -> None:
    # GIVEN results where the arithmetic overflowed: a NaN or infinite score or share
    result, names = case
    rows, width = result.contributions.shape
    if rows:
        row = data.draw(st.integers(0, rows - 1))
        result.contributions[row, data.draw(st.integers(0, width - 1))] = data.draw(
            st.sampled_from([np.nan, np.inf])
        )
    # WHEN encoded, THEN each line is JSON (no NaN/Infinity) and keeps §5's rules
    for line in encode_result_rows(result, names).splitlines():
        doc = _strict(line)
        if doc["prediction_reason"] != "MACHINE_OFF":
            assert 0 <= doc["anomaly_score"] <= 1
            values = [d["value"] for d in doc["diagnostics"]]
            assert all(0 <= v <= 1 for v in values)
            assert sum(values) == pytest.approx(1, abs=1e-4)


STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}")
SCORED_KEYS = ["timestamp", "prediction", "prediction_reason", "anomaly_score", "diagnostics"]


@settings(max_examples=150, deadline=None)
@given(results())
def test_every_line_has_l4e_keys_types_and_rounding(case: tuple[ScoreResult, list[str]]) -> None:
    # GIVEN any scored rows; WHEN encoded as results.jsonl (l4e-contracts §5)
    result, names = case
    body = encode_result_rows(result, names)
    lines = body.split(b"\n")
    # THEN one \n-terminated JSON object per row, in time order
    assert lines.pop() == b"" and len(lines) == len(result.index)
    docs = [json.loads(line) for line in lines]
    utc = result.index.tz_convert("UTC") if result.index.tz is not None else result.index
    for doc, at, off, flagged in zip(docs, utc, result.machine_off, result.prediction, strict=True):
        # timestamp: yyyy-MM-ddTHH:mm:ss.ffffff, UTC, no zone suffix
        assert STAMP.fullmatch(doc["timestamp"]) and doc["timestamp"] == at.strftime(
            "%Y-%m-%dT%H:%M:%S.%f"
        )
        assert type(doc["prediction"]) is int
        if off:  # MACHINE_OFF: prediction 0, no score, no diagnostics
            assert list(doc) == SCORED_KEYS[:3]
            assert (doc["prediction"], doc["prediction_reason"]) == (0, "MACHINE_OFF")
            continue
        assert list(doc) == SCORED_KEYS
        assert doc["prediction"] == int(flagged)
        reason = "ANOMALY_DETECTED" if flagged else "NO_ANOMALY_DETECTED"
        assert doc["prediction_reason"] == reason
        score = doc["anomaly_score"]
        assert type(score) is float and round(score, 5) == score
        assert [d["name"] for d in doc["diagnostics"]] == names
        assert all(
            list(d) == ["name", "value"]
            and type(d["value"]) is float
            and round(d["value"], 5) == d["value"]
            for d in doc["diagnostics"]
        )
    assert [d["timestamp"] for d in docs] == sorted(d["timestamp"] for d in docs)
