"""Scoring's outputs pinned bit for bit to what main c302449 computed, on small seeded
frames that take the fast paths (more than two blocks of rows, one and three operating
modes, data in either memory order, gaps, machine-off rows, smoothing and differencing,
a series in pieces): a change of speed must not change a bit of a score, a prediction,
a share, an index or a result line.

Why digests of the raw bytes: the result lines round to 5 decimals and would hide a
change in the last bits that a threshold or a later sum still sees. The bits of a matrix
product are the BLAS library's on the CPU it runs on, so the digests hold where they
were taken (numpy and OpenBLAS as recorded, that CPU architecture); elsewhere the test
skips rather than fail on a difference that is the library's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pytest

from cloud.bench.train import generate
from cloud.inference.model import Model, ScoreResult, TrainConfig, train
from cloud.inference.monitor import Monitor, MonitorResult
from cloud.inference.results import encode_result_rows

PINNED_ON = {"numpy": "2.", "blas": "openblas 0.3.31.188.0 SkylakeX"}
"""Where the digests below were taken (numpy's major version, BLAS and its kernels)."""
ROWS = 20_000


def blas() -> str:
    from threadpoolctl import threadpool_info

    libraries = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not libraries:
        return "none"
    info = libraries[0]
    return f"{info.get('internal_api')} {info.get('version')} {info.get('architecture')}"


@pytest.fixture(autouse=True)
def where_pinned() -> None:
    if not np.__version__.startswith(PINNED_ON["numpy"]) or blas() != PINNED_ON["blas"]:
        pytest.skip(f"digests taken with {PINNED_ON}; here numpy {np.__version__}, {blas()}")


def digest(arrays: Iterable[np.ndarray]) -> str:
    """SHA-256 over each array's dtype, shape, memory order and bytes."""
    h = hashlib.sha256()
    for array in arrays:
        a = np.asarray(array)
        order = "F" if a.flags.f_contiguous and not a.flags.c_contiguous else "C"
        h.update(f"{a.dtype.str}{a.shape}{order}".encode())
        h.update(a.tobytes(order="A"))
    return h.hexdigest()[:32]


def scored(result: ScoreResult) -> list[np.ndarray]:
    state = [] if result.state is None else [result.state.tail, np.array(result.state.count)]
    return [
        result.score,
        result.prediction,
        result.machine_off,
        result.contributions,
        result.raw,
        *state,
    ]


def watched(out: MonitorResult) -> list[np.ndarray]:
    return [*scored(out.result), out.ratio, out.moving, out.changepoint, out.ended]


def plant(seed: int, gaps: bool = False) -> pd.DataFrame:
    """Generated plant data (three operating modes); with *gaps*, 0.5 % of readings
    missing and a stretch with the first sensor at 0 (machine off)."""
    frame = generate(ROWS, 12, seed)
    if gaps:
        rng = np.random.default_rng(seed)
        values = frame.to_numpy(copy=True)
        values[rng.random(values.shape) < 0.005] = np.nan
        values[9_000:9_400, 0] = 0.0
        frame = pd.DataFrame(values, index=frame.index, columns=frame.columns)
    return frame


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[Model, pd.DataFrame]]:
    modes = plant(3)
    off = plant(4, gaps=True)
    first = str(off.columns[0])
    return {
        "modes": (train(modes.iloc[:15_000], TrainConfig()), modes),
        "one": (train(modes.iloc[:15_000], TrainConfig(max_modes=1)), modes),
        "smoothed": (
            train(off.iloc[:15_000], TrainConfig(off_condition=f"{first} < 1", smoothing=5)),
            off,
        ),
        "differenced": (train(off.iloc[:15_000], TrainConfig(difference="auto")), off),
    }


EXPECTED = {
    "modes": "8d3f983b351dfbc9e360631a1e3bf0f5",
    "one": "635cf38c70da8e7dd21dc0c147aa1a13",
    "smoothed": "a3bd6a58deef911337c3b8378cced9a1",
    "differenced": "2bc1fa7d89d5a0ade4ac2211b14314e1",
    "modes/C": "9149ac49850edec3375f0cd8d3904829",
    "smoothed/pieces": "d54cd3e94b245894580ec0931bed158b",
    "modes/monitor": "bd3ab589fd3f507a67808e34b6d1f3d1",
    "smoothed/monitor": "b2305de7773702aef78c68af5b789d5d",
    "differenced/monitor": "eef8cfef8bbe2c53ae5487072c79d373",
    "smoothed/monitor/pieces": "91eed48ededb31ed3044fed31d139caf",
    "modes/lines": "2d7d7e5004f5815e5967a5a097535670",
    "smoothed/lines": "9350402ea915a4b88e14b5c7e74462bb",
}


@pytest.mark.parametrize("name", ["modes", "one", "smoothed", "differenced"])
def test_model_scores_are_the_pinned_bits(models, name: str) -> None:  # type: ignore[no-untyped-def]
    model, frame = models[name]
    assert digest(scored(model.score(frame))) == EXPECTED[name]


def test_row_major_readings_score_to_the_pinned_bits(models) -> None:  # type: ignore[no-untyped-def]
    model, frame = models["modes"]
    x = np.ascontiguousarray(frame.to_numpy())
    off = np.zeros(len(x), dtype=bool)
    result = model.score_arrays(pd.DatetimeIndex(frame.index), x, off)
    assert digest(scored(result)) == EXPECTED["modes/C"]


def test_a_series_in_pieces_scores_to_the_pinned_bits(models) -> None:  # type: ignore[no-untyped-def]
    model, frame = models["smoothed"]
    first = model.score(frame.iloc[:11_000])
    second = model.score(frame.iloc[11_000:], first.state)
    assert digest(scored(first) + scored(second)) == EXPECTED["smoothed/pieces"]


@pytest.mark.parametrize("name", ["modes", "smoothed", "differenced"])
def test_monitor_results_are_the_pinned_bits(models, name: str) -> None:  # type: ignore[no-untyped-def]
    model, frame = models[name]
    assert digest(watched(Monitor(model).score(frame))) == EXPECTED[f"{name}/monitor"]


def test_monitor_in_pieces_gives_the_pinned_bits(models) -> None:  # type: ignore[no-untyped-def]
    model, frame = models["smoothed"]
    monitor = Monitor(model)
    first = monitor.score(frame.iloc[:10_000])
    second = monitor.score(frame.iloc[10_000:], first.state)
    assert digest(watched(first) + watched(second)) == EXPECTED["smoothed/monitor/pieces"]


@pytest.mark.parametrize("name", ["modes", "smoothed"])
def test_result_lines_are_the_pinned_bytes(models, name: str) -> None:  # type: ignore[no-untyped-def]
    model, frame = models[name]
    body = encode_result_rows(Monitor(model).score(frame).result, model.sensors)
    assert hashlib.sha256(body).hexdigest()[:32] == EXPECTED[f"{name}/lines"]
