"""A sensor whose column name itself holds ``\\`` (``pump\\a\\b``: component ``pump``,
column ``a\\b``), as L4E names allow (the component ends at the first ``\\``).

Batch scoring and the streaming scorer took the plain name from the last ``\\`` (``b``), so
the column ``a\\b`` was reported missing and a reading carrying ``a\\b`` was skipped, while
a reading carrying ``b`` (another column) was scored as if it were ``a\\b``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import plant_frame

from cloud.inference.model import TrainConfig, train
from cloud.inference.monitor import Monitor
from cloud.inference.streaming import CallbackSink, StreamingScorer
from edge.errors import UserError
from edge.wire import Sample, Telemetry

NAMED = {"pump\\motor_current": "pump\\a\\b"}
TRAIN = plant_frame(rows=800).rename(columns=lambda c: NAMED.get(c, c))
MODEL = train(TRAIN, TrainConfig(smoothing=5, difference="auto", difference_above=0.0))
LIVE = plant_frame(rows=30, seed=4, start="2026-02-01").rename(
    columns=lambda c: NAMED.get(c, c).partition("\\")[2]
)


def _message(rows: pd.DataFrame, seq: int = 0) -> Telemetry:
    samples = tuple(
        Sample(int(ts.value // 1_000_000), {k: float(v) for k, v in row.items()})
        for ts, row in rows.iterrows()
    )
    return Telemetry("s1", "pump", "gw1", seq, samples)


def test_batch_scoring_finds_the_column_after_the_first_backslash() -> None:
    assert "a\\b" in LIVE.columns
    result = Monitor(MODEL).score(LIVE).result
    assert len(result.score) == len(LIVE)
    assert np.isfinite(result.score).all()


def test_a_reading_carrying_the_column_streams_and_scores_as_batch_does() -> None:
    got: list[dict] = []
    scorer = StreamingScorer(MODEL, CallbackSink(lambda _a, lines: got.extend(lines)))
    for i in range(len(LIVE)):
        scorer.handle_message(_message(LIVE.iloc[i : i + 1], seq=i))
    assert scorer.stats.no_model_sensors == 0
    whole = Monitor(MODEL).score(LIVE).result
    np.testing.assert_allclose(
        [line["anomaly_score"] for line in got], np.round(whole.score, 5), atol=1e-5
    )
    names = {d["name"] for d in got[0]["diagnostics"]}
    assert "pump\\a\\b" in names


def test_a_reading_of_that_column_alone_is_scored_not_skipped() -> None:
    scorer = StreamingScorer(MODEL, CallbackSink(lambda *_: None))
    ts = int(LIVE.index[0].value // 1_000_000)
    only = Telemetry("s1", "pump", "gw1", 0, (Sample(ts, {"a\\b": 8.0}),))
    assert len(scorer.handle_message(only)) == 1
    assert scorer.stats.no_model_sensors == 0


def test_the_last_part_alone_is_another_column() -> None:
    only_b = LIVE.rename(columns={"a\\b": "b"})
    with pytest.raises(UserError, match="a\\\\b missing"):
        Monitor(MODEL).score(only_b)
