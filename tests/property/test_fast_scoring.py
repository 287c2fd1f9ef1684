"""Scoring's fast paths give the bits of the plain formulas: deviations, modes, shares,
index, the change statistic and the arrays' memory layout, for any model shape, data
layout and warm-up, on a BLAS whose row results do not depend on blocking; on one that
does, the values agree to within its last bits (:func:`same`)."""

from __future__ import annotations

import itertools
import json
import os
import select
import signal
import tracemalloc
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cloud.bench.train import generate
from cloud.inference import model as model_module
from cloud.inference import scratch
from cloud.inference.changes import _shift_statistic_simple, shift_statistic
from cloud.inference.episodes import DEFAULT_ALARM, STRETCH_ROWS, AlarmConfig, EpisodeTracker
from cloud.inference.model import (
    SCORE_BLOCK_ROWS,
    Model,
    TrainConfig,
    _deviations_fast,
    _deviations_simple,
    train,
)
from cloud.inference.monitor import Monitor, MonitorResult, MonitorState


@pytest.fixture(autouse=True)
def pool_keeps_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scoring's scratch pool keeps buffers of any size here, so that the fast path runs
    on buffers an earlier example left its values in, as a long-running process does."""
    monkeypatch.setattr(scratch.pool, "smallest", 0)


def random_model(rng: np.random.Generator, width: int, modes: int) -> Model:
    half = rng.normal(size=(modes, width, width))
    return Model(
        [f"s{i}" for i in range(width)],
        TrainConfig(alarm=None),
        fill=np.zeros(width),
        differenced=np.zeros(width, dtype=bool),
        center=rng.normal(size=width),
        scale=rng.uniform(0.5, 2.0, width),
        centroids=rng.normal(scale=3.0, size=(modes, width)),
        mode_means=rng.normal(size=(modes, width)),
        mode_scales=rng.uniform(0.5, 2.0, (modes, width)),
        mode_phi=half + np.swapaxes(half, 1, 2),
        threshold=float(rng.uniform(0.5, 50.0)),
    )


def random_rows(rng: np.random.Generator, model: Model, rows: int, order: str) -> np.ndarray:
    """Rows near the model's centroids (so every mode gets rows), in memory *order*;
    ``Fs`` and ``Cs``: rows of a larger array in that order (strided, not contiguous)."""
    if order in ("Fs", "Cs"):
        return random_rows(rng, model, rows + 7, order[0])[3 : 3 + rows]
    near = rng.integers(0, len(model.centroids), rows)
    x = (
        model.centroids[near] * model.scale
        + model.center
        + rng.normal(size=(rows, len(model.sensors)))
    )
    return np.asarray(x, order=order)


def reference_scores(model: Model, y: np.ndarray, factor: np.ndarray, off: np.ndarray):  # type: ignore[no-untyped-def]
    """``Model.score_arrays``' arithmetic as whole-array expressions."""
    contrib = _deviations_simple(model, y, factor)[0] ** 2
    contrib[off] = 0.0
    s = contrib.sum(1)
    share = np.full_like(contrib, 1.0 / len(model.sensors))
    np.divide(contrib, s[:, None], out=share, where=(s > 0)[:, None])
    return share, s, s / (s + model.threshold)


def poison_the_pool() -> None:
    """Every kept buffer of the scratch pool overwritten: NaN, or the lowest integer in
    an integer buffer (operating modes), so that a value read before it is written shows."""
    for array in scratch.pool.kept():
        array.fill(np.nan if array.dtype.kind == "f" else np.iinfo(array.dtype).min)


def blas_blocks_change_no_bit() -> bool:
    """Whether this BLAS gives a row of a matrix product the same bits whatever rows are
    multiplied with it. Scoring's fast paths split the rows into blocks (and threads), so
    they can be bit for bit the formula only where this holds: with OpenBLAS's SkylakeX
    kernels it does; with its Haswell kernels the last bit of a few rows depends on the
    block."""
    rng = np.random.default_rng(0)
    for order in ("C", "F"):
        a = np.asarray(rng.normal(size=(3 * SCORE_BLOCK_ROWS + 1, 30)), order=order)
        b = rng.normal(size=(30, 30))
        whole = a @ b
        for lo, hi in ((0, SCORE_BLOCK_ROWS), (SCORE_BLOCK_ROWS, 2 * SCORE_BLOCK_ROWS + 1)):
            if not np.array_equal(a[lo:hi] @ b, whole[lo:hi]):
                return False
    return True


EXACT = blas_blocks_change_no_bit()
"""Bit for bit where the BLAS allows it; elsewhere, equal within a few units in the last
place (``close``), which is all the BLAS itself gives."""


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal but for the last bits a BLAS that depends on blocking changes: NaN where the
    other is NaN, and nothing further apart than 1e-11 relative (shares and sums of a
    few ulp)."""
    return bool(np.allclose(a, b, rtol=1e-11, atol=1e-13, equal_nan=True))


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and a.flags.c_contiguous == b.flags.c_contiguous
        and a.flags.f_contiguous == b.flags.f_contiguous
        and (a.tobytes(order="A") == b.tobytes(order="A") if EXACT else close(a, b))
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    width=st.sampled_from([1, 2, 3, 5, 8, 17, 30, 33]),
    modes=st.integers(1, 4),
    extra=st.one_of(st.integers(0, 3_000), st.sampled_from([1, 2, 4_095, 4_096, 4_097])),
    order=st.sampled_from(["C", "F", "Cs", "Fs"]),
    warm=st.integers(0, 40),
    lonely=st.booleans(),
)
def test_fast_path_is_the_formula_bit_for_bit(
    seed: int, width: int, modes: int, extra: int, order: str, warm: int, lonely: bool
) -> None:
    rng = np.random.default_rng(seed)
    model = random_model(rng, width, modes)
    rows = 2 * SCORE_BLOCK_ROWS + extra
    y = random_rows(rng, model, rows, order)
    if lonely and modes > 1:  # one row alone in its mode: the formula's matrix-vector product
        far = model.centroids[0] * 50.0
        model.centroids[0] = far
        y[:] = np.where(np.arange(rows)[:, None] == 7, far * model.scale + model.center, y)
        y[np.arange(rows) != 7] += 0.0
    factor = np.ones(rows)
    factor[:warm] = np.sqrt(warm / np.arange(1, warm + 1)) if warm else 1.0
    off = rng.random(rows) < 0.01

    expected = _deviations_simple(model, y, factor)
    fast = _deviations_fast(model, y, factor)
    if fast is not None:
        assert same(fast[0], expected[0]) and np.array_equal(fast[1], expected[1])
    got = model.deviations(y, factor)
    assert same(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    given = rng.integers(0, modes, rows)  # the modes of other features of the same rows
    expected = _deviations_simple(model, y, factor, given)
    got = model.deviations(y, factor, given)
    assert same(got[0], expected[0]) and np.array_equal(got[1], expected[1])

    share, s, score = reference_scores(model, y, np.ones(rows), off)
    index = pd.date_range("2026-01-01", periods=rows, freq="1min", tz="UTC")
    result = model.score_arrays(index, y, off)
    assert same(result.contributions, share)
    assert same(result.raw, s)
    assert same(result.score, score)
    # prediction follows the score as results.jsonl writes it (5 decimals): L4E's rule
    written = np.isnan(score) | (np.round(score, 5) > 0.5)
    assert same(result.prediction, written.astype(np.int8))


@pytest.mark.parametrize("modes", [1, 3])
@pytest.mark.parametrize("order", ["C", "F", "Fs"])
def test_thread_counts_do_not_change_a_bit(
    monkeypatch: pytest.MonkeyPatch, modes: int, order: str
) -> None:
    """One BLAS thread and two scoring threads (the defaults on 2 cores) give the bits of
    the library's own BLAS threads and no scoring threads."""
    rng = np.random.default_rng(modes)
    model = random_model(rng, 30, modes)
    y = random_rows(rng, model, 3 * SCORE_BLOCK_ROWS + 1, order)
    off = rng.random(len(y)) < 0.01
    index = pd.date_range("2026-01-01", periods=len(y), freq="1min", tz="UTC")
    results = []
    for blas, scoring in [("0", "1"), ("1", "2"), ("1", "3")]:
        monkeypatch.setenv("PLANTWATCH_BLAS_THREADS", blas)
        monkeypatch.setenv("PLANTWATCH_SCORING_THREADS", scoring)
        result = model.score_arrays(index, y, off)
        results.append((result.contributions, result.raw, shift_statistic(result.contributions, 7)))
    for other in results[1:]:
        assert all(same(a, b) for a, b in zip(results[0], other, strict=True))


def test_small_inputs_take_the_formula(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    model = random_model(rng, 4, 2)
    y = random_rows(rng, model, 100, "C")

    def refuse(*_: object) -> None:
        raise AssertionError("fast path taken for 100 rows")

    monkeypatch.setattr(model_module, "_deviations_fast", refuse)
    got = model.deviations(y, np.ones(100))
    assert same(got[0], _deviations_simple(model, y, np.ones(100))[0])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    width=st.sampled_from([1, 2, 3, 8, 17, 30]),
    window=st.integers(1, 30),
    rows=st.one_of(st.integers(0, 9_000), st.sampled_from([4_096, 4_097, 4_098, 8_193])),
    order=st.sampled_from("CF"),
)
def test_shift_statistic_is_the_formula_bit_for_bit(
    seed: int, width: int, window: int, rows: int, order: str
) -> None:
    rng = np.random.default_rng(seed)
    deviations = np.asarray(rng.normal(size=(rows, width)), order=order)
    got = shift_statistic(deviations, window)
    assert got.tobytes() == _shift_statistic_simple(deviations, window).tobytes()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_scores_on_threads_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread pool does not survive a fork: a child that inherited it must not wait on
    its parent's threads."""
    monkeypatch.setenv("PLANTWATCH_SCORING_THREADS", "2")
    rng = np.random.default_rng(5)
    model = random_model(rng, 4, 3)
    y = random_rows(rng, model, 2 * SCORE_BLOCK_ROWS, "C")
    expected = model.deviations(y, np.ones(len(y)))[0]  # the parent's pool now exists
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        same_bits = same(model.deviations(y, np.ones(len(y)))[0], expected)
        os.write(write, b"1" if same_bits else b"0")
        os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 60)
    answer = os.read(read, 1) if ready else b""
    os.close(read)
    if not ready:
        os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    assert ready, "the forked child did not finish scoring in 60 s"
    assert answer == b"1"


def test_machine_off_given_as_row_numbers_is_indexed_as_the_formula_does() -> None:
    rng = np.random.default_rng(9)
    model = random_model(rng, 5, 2)
    y = random_rows(rng, model, 2 * SCORE_BLOCK_ROWS + 3, "F")
    off = np.array([0, 4_100, 8_000])
    share, s, score = reference_scores(model, y, np.ones(len(y)), off)
    index = pd.date_range("2026-01-01", periods=len(y), freq="1min", tz="UTC")
    result = model.score_arrays(index, y, off)
    assert same(result.contributions, share) and same(result.raw, s)
    assert same(result.score, score)


def test_consecutive_scorings_through_the_pool_give_fresh_identical_results() -> None:
    """A second call reuses the first call's scratch buffers: it allocates only its own
    results (the first call's are still alive), leaves the first call's results as they
    were, and gives the same bits; no result is a view of a pooled buffer. Once the second
    call's results are dropped, a third call allocates nothing at all (its results take
    their memory), and poisoned buffers (NaN) change nothing: every temporary and every
    result is written before it is read."""
    rng = np.random.default_rng(11)
    model = random_model(rng, 30, 3)
    y = random_rows(rng, model, 3 * SCORE_BLOCK_ROWS + 5, "F")
    off = rng.random(len(y)) < 0.01
    index = pd.date_range("2026-01-01", periods=len(y), freq="1min", tz="UTC")
    scratch.pool.clear()

    def allocations() -> int:
        return scratch.pool.allocated + scratch.pool.fresh_allocated

    first = model.score_arrays(index, y, off)
    assert scratch.pool.kept(), "the fast path leased nothing"
    snapshot = [np.copy(first.contributions, order="K"), first.raw.copy(), first.score.copy()]
    before = allocations()
    second = model.score_arrays(index, y, off)
    assert allocations() == before + 3  # contributions, raw and score: the first's live on
    for result in (first, second):
        got = [result.contributions, result.raw, result.score]
        assert all(same(a, b) for a, b in zip(got, snapshot, strict=True))
    assert not np.shares_memory(first.contributions, second.contributions)
    del second, result, got
    poison_the_pool()
    before = allocations()
    third = model.score_arrays(index, y, off)
    assert allocations() == before
    for result in (first, third):
        got = [result.contributions, result.raw, result.score]
        assert all(same(a, b) for a, b in zip(got, snapshot, strict=True))
        for array in (*got, result.prediction, result.machine_off):
            assert not any(np.shares_memory(array, buffer) for buffer in scratch.pool.kept())
    assert not np.shares_memory(first.contributions, third.contributions)


def test_the_monitor_through_the_pool_gives_fresh_identical_results() -> None:
    frame = generate(3 * SCORE_BLOCK_ROWS, 6, seed=3)
    model = train(frame, TrainConfig())
    monitor = Monitor(model)
    scratch.pool.clear()
    first = monitor.score(frame)
    snapshot = (
        np.copy(first.result.contributions, order="K"),
        first.ratio.copy(),
        first.moving.copy(),
    )
    poison_the_pool()
    second = monitor.score(frame)
    for result in (first, second):
        got = (result.result.contributions, result.ratio, result.moving)
        assert all(same(a, b) for a, b in zip(got, snapshot, strict=True))
        assert not any(
            np.shares_memory(array, buffer)
            for array in (*got, result.result.raw, result.result.score)
            for buffer in scratch.pool.kept()
        )


def test_a_series_scored_in_pieces_keeps_no_view_of_a_pooled_buffer_in_its_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The monitor's state (the change test's window, the episode's recent rows, here in
    an alarm at the cut) carries on unchanged when the next call reuses, or anything
    overwrites, the pooled buffers of the last: the same bits as without a pool."""
    frame = generate(5 * SCORE_BLOCK_ROWS, 6, seed=4)
    model = train(frame, TrainConfig())
    cut = len(frame) // 2
    frame.iloc[cut - 40 : cut + 20, 0] += 25 * frame.iloc[:, 0].std()  # an alarm at the cut
    monitor = Monitor(model)

    def in_pieces(poison: bool) -> list[np.ndarray]:
        first = monitor.score(frame.iloc[:cut])
        handed = json.dumps(first.state.to_dict())
        if poison:
            poison_the_pool()
        second = monitor.score(frame.iloc[cut:], first.state)
        assert json.dumps(first.state.to_dict()) == handed, "a later call changed the state"
        return [first.result.prediction, second.result.score, second.ratio, second.moving]

    scratch.pool.clear()
    pooled = in_pieces(poison=True)
    assert pooled[0][-1], "no alarm at the cut"
    monkeypatch.setenv(scratch.CAP_SETTING, "0")
    scratch.pool.clear()
    fresh = in_pieces(poison=False)
    assert all(same(a, b) for a, b in zip(pooled, fresh, strict=True))


def test_results_that_outlive_later_calls_keep_their_bits_with_gaps_and_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``bench train``'s pattern (each result alive while the next call runs, the monitor
    scoring in between) and others (a view kept after its array is dropped, results
    dropped before the next call, poisoned buffers) on data with gaps and machine-off
    rows, smoothing and differencing: every field of every call, and the stream state, has
    the bits of a process that keeps no memory between calls."""
    frame = generate(3 * SCORE_BLOCK_ROWS + 7, 8, seed=6)
    values = frame.to_numpy(copy=True)
    rng = np.random.default_rng(6)
    values[rng.random(values.shape) < 0.01] = np.nan
    values[:5, 3] = np.nan  # before any reading: the training mean
    values[rng.random(len(values)) < 0.03, 0] = -50.0  # machine off
    frame = pd.DataFrame(values, index=frame.index, columns=frame.columns)
    config = TrainConfig(off_condition="asset\\s00 < -40", smoothing=3, difference="auto")
    model = train(frame, config)
    monitor = Monitor(model)

    def fields(result: model_module.ScoreResult) -> list[np.ndarray]:
        assert result.state is not None
        arrays = [result.score, result.prediction, result.machine_off, result.contributions]
        return [np.copy(a, order="K") for a in (*arrays, result.raw, result.state.tail)]

    monkeypatch.setenv(scratch.CAP_SETTING, "0")
    scratch.pool.clear()
    expected = fields(model.score(frame))
    assert expected[2].any() and 0 < expected[1].sum() < len(frame)
    reference = monitor.score(frame)
    assert reference.state.stream is not None
    expected_watch = [reference.result.score.copy(), reference.state.stream.tail.copy()]
    monkeypatch.delenv(scratch.CAP_SETTING)

    first = model.score(frame)
    first_state = first.state
    column = first.contributions[:, 1]
    kept_column = column.copy()
    watched = monitor.score(frame)
    second = model.score(frame)  # the first is alive
    del first
    poison_the_pool()
    third = model.score(frame)  # a view of the first is alive
    got = [fields(second), fields(third)]
    del second, third
    fourth = model.score(frame)  # nothing of the last call alive: its memory again
    assert same(column, kept_column)
    for result_fields in (*got, fields(fourth)):
        assert all(same(a, b) for a, b in zip(result_fields, expected, strict=True))
    assert watched.state.stream is not None and first_state is not None
    watched_got = [watched.result.score, watched.state.stream.tail]
    assert all(same(a, b) for a, b in zip(watched_got, expected_watch, strict=True))
    assert same(first_state.tail, expected[5])  # kept through every later call
    assert fourth.state is not None and fourth.state.count == len(frame)


def plant_with_faults(seed: int, rows: int, width: int, stops: bool, gaps: bool) -> pd.DataFrame:
    """``bench train``'s generated plant with faults that hold and then come back part of
    the way (new operating points), optionally gaps and machine-off rows (sensor 0 at
    -500)."""
    frame = generate(rows, width, seed=seed)
    values = frame.to_numpy(copy=True)
    rng = np.random.default_rng(seed)
    for start in rng.integers(rows // 4, rows - 1_500, 3):
        sensor = int(rng.integers(1, width))
        values[start : start + 300, sensor] += 15 * values[:, sensor].std()
        values[start + 300 : start + 1_300, sensor] += 8 * values[:, sensor].std()
    if gaps:
        values[rng.random(values.shape) < 0.005] = np.nan
        values[:6, 1] = np.nan
    if stops:
        values[rng.random(rows) < 0.03, 0] = -500.0
        values[rows // 2 : rows // 2 + 150, 0] = -500.0
    return pd.DataFrame(values, index=frame.index, columns=frame.columns)


def monitor_fields(watched: MonitorResult) -> list[np.ndarray]:
    """Every array of a monitor's result, and its state as JSON, copied as laid out."""
    result = watched.result
    arrays = [result.score, result.prediction, result.machine_off, result.contributions]
    arrays += [result.raw, watched.ratio, watched.moving, watched.changepoint, watched.ended]
    if watched.state.stream is not None:
        arrays.append(watched.state.stream.tail)
    state = np.frombuffer(json.dumps(watched.state.to_dict()).encode(), dtype=np.uint8)
    return [np.copy(a, order="K") for a in arrays] + [state.copy()]


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # each example trains: no shrinking
)
@given(
    seed=st.integers(0, 2**16),
    stops=st.booleans(),
    gaps=st.booleans(),
    quiet=st.sampled_from([0, 2]),
    pieces=st.integers(1, 3),
)
def test_the_monitor_through_poisoned_buffers_gives_the_bits_of_a_pool_that_keeps_nothing(
    seed: int, stops: bool, gaps: bool, quiet: int, pieces: int
) -> None:
    """Every output of the monitor (scores, shares, predictions, ratios, moves, change
    points, ended faults, the state handed on) over a series with gaps, machine-off rows,
    several modes and the quiet rule, in one piece and in pieces with the state carried
    through JSON, each call's results alive while the next runs and every kept buffer
    poisoned between calls: the bits of a process whose pool keeps nothing. A result or a
    state that is, or keeps a view of, a scratch buffer, or a row left unwritten, differs."""
    frame = plant_with_faults(seed, 3 * SCORE_BLOCK_ROWS + 11, 7, stops, gaps)
    episodes = replace(DEFAULT_ALARM.episodes, fast_rows=quiet)
    config = TrainConfig(
        smoothing=3,
        difference="auto" if gaps else "none",
        off_condition="asset\\s00 < -400" if stops else None,
        alarm=AlarmConfig(episodes, DEFAULT_ALARM.changes),
    )
    model = train(frame.iloc[: len(frame) // 4], config)  # before the faults
    monitor = Monitor(model)
    cuts = np.linspace(0, len(frame), pieces + 1).astype(int)

    def scored(pooled: bool) -> list[list[np.ndarray]]:
        kept: list[MonitorResult] = []  # alive through every later call
        for _ in range(2):
            state = None
            for a, b in itertools.pairwise(cuts):
                watched = monitor.score(frame.iloc[a:b], state)
                if pooled:
                    poison_the_pool()
                kept.append(watched)
                doc = json.loads(json.dumps(watched.state.to_dict()))
                state = MonitorState.from_dict(doc, len(model.sensors))
        if pooled:
            poison_the_pool()
        return [monitor_fields(watched) for watched in kept]

    scratch.pool.clear()
    pooled = scored(pooled=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(scratch.CAP_SETTING, "0")
        scratch.pool.clear()
        expected = scored(pooled=False)
    assert any(fields[1].any() for fields in expected), "no alarm"
    assert any(fields[2].any() for fields in expected) == stops
    for got, want in zip(pooled, expected, strict=True):
        assert len(got) == len(want)
        assert all(same(a, b) for a, b in zip(got, want, strict=True))


def test_the_tracker_hands_back_zeros_for_machine_off_rows_whatever_its_buffers_held() -> None:
    """The tracker's ratios and residuals come from the pool, whose buffers hold what their
    last user left (here NaN): machine-off rows, which it never visits, are 0 as before.
    Its state keeps no view of deviations given in a scratch buffer."""
    rng = np.random.default_rng(12)
    w = rng.normal(scale=0.4, size=(3 * SCORE_BLOCK_ROWS, 9))
    w[5_000:5_400] += 3.0  # an alarm
    off = rng.random(len(w)) < 0.05
    modes = np.zeros(len(w), dtype=int)
    tracker = EpisodeTracker(DEFAULT_ALARM.episodes)
    scratch.pool.clear()
    tracker.run(w, modes, off)  # its buffers go back to the pool
    poison_the_pool()
    with scratch.lease(w.shape) as leased:  # deviations in a scratch buffer, as scored
        leased[...] = w
        result = tracker.run(leased, modes, off)
        state = json.dumps(result.state.to_dict())
    poison_the_pool()
    assert result.alarm.any()
    assert not result.ratio[off].any() and not result.residual[off].any()
    assert not np.isnan(result.ratio).any() and not np.isnan(result.residual).any()
    assert json.dumps(result.state.to_dict()) == state, "the state kept a view of the buffer"


@pytest.mark.parametrize("stops", [False, True])
def test_a_monitor_call_allocates_no_full_size_array_once_the_pool_has_its_buffers(
    stops: bool,
) -> None:
    """Scoring window after window of one shape, the state carried and the last call's
    results dropped, the monitor takes every full-size array from the scratch pool: the
    deviations, the residuals it hands back as shares, the rows that are on and every
    row's deviations when machines stop, the state's rows stacked before the features'
    and the change test's. A new full-size array per call faults its memory in (and
    zeroes it) again: measured 30-60 ms of system time per call for a year of one-minute
    data. What a call may still allocate: arrays of one value per row, and the tracker's
    stretches of normal rows (at most STRETCH_ROWS rows)."""
    rows, width = 8 * STRETCH_ROWS, 30
    frame = generate(2 * rows, width, seed=9)
    if stops:
        values = frame.to_numpy(copy=True)
        rng = np.random.default_rng(9)
        values[rng.random(values.shape) < 0.005] = np.nan
        values[rng.random(len(values)) < 0.03, 0] = -500.0
        frame = pd.DataFrame(values, index=frame.index, columns=frame.columns)
    config = TrainConfig(off_condition="asset\\s00 < -400" if stops else None)
    monitor = Monitor(train(frame.iloc[:20_000], config))
    first = monitor.score(frame.iloc[:rows])
    monitor.score(frame.iloc[rows:], first.state)  # dropped: the pool has its buffers
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        watched = monitor.score(frame.iloc[rows:], first.state)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert watched.result.machine_off.any() == stops
    full = rows * width * 8
    assert peak < full / 2, f"{peak} bytes allocated at once; a full-size array is {full}"
