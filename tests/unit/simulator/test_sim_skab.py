"""SKAB-shaped experiments: SKAB's file shape and label semantics, every fault type, faults
of SKAB's size, and plants that settle at a new operating point after the fault."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cloud.cli.main import main
from simulator import skab
from simulator.asset import AssetGroup, AssetSpec, Trim
from simulator.faults import FaultType
from simulator.physics import KINDS

T0 = 1_600_000_000.0
T = T0 + np.arange(600.0)


@pytest.fixture(scope="module")
def generated() -> list[tuple[skab.Case, pd.DataFrame]]:
    return list(skab.iter_frames(per_type=2, seed=3))


def _run(trims: list[Trim], names: tuple[str, ...] = ("a",)) -> np.ndarray:
    group = AssetGroup(
        [AssetSpec(n, "pump", 1) for n in names], [], rate_s=1.0, seed=2, load="high"
    )
    for trim in trims:
        group.add_trim(0, trim)
    return group.generate(T)[0]


def test_a_trim_moves_the_operating_point_from_its_time_on_along_its_ramp() -> None:
    flow = KINDS["pump"].sensor_names.index("flow_m3h")
    base = _run([])[0, :, flow]
    trimmed = _run([Trim(T0 + 300, ramp_s=100, opening=0.8)])[0, :, flow]
    assert np.array_equal(base[:300], trimmed[:300])
    shift = trimmed - base
    assert shift[400:].mean() < -5 * np.std(base[:300])
    assert abs(shift[350] - 0.5 * shift[450:].mean()) < 0.25 * abs(shift[450:].mean())


def test_a_trim_on_one_asset_leaves_the_others_alone() -> None:
    base = _run([], ("a", "b"))
    trimmed = _run([Trim(T0, speed=1.03, process_c=2.0, suction_head_m=0.5)], ("a", "b"))
    assert np.array_equal(base[1], trimmed[1], equal_nan=True)
    assert not np.allclose(base[0], trimmed[0], equal_nan=True)


def test_files_have_skabs_shape(generated) -> None:
    for case, frame in generated:
        sensors = list(KINDS[case.kind].sensor_names)
        assert list(frame.columns) == [*sensors, "anomaly", "changepoint"]
        assert frame.index.name == "datetime" and frame.index.tz is None
        assert len(frame) == case.rows
        steps = frame.index.to_series().diff().dt.total_seconds().to_numpy()[1:]
        assert steps.min() >= 1 and np.mean(steps == 1) > 0.85
        assert set(np.unique(frame["anomaly"])) == {0.0, 1.0}
        assert frame.iloc[:400]["anomaly"].sum() == 0  # the training head is normal


def test_labels_cover_the_fault_and_mark_its_changes(generated) -> None:
    for case, frame in generated:
        elapsed = (frame.index - pd.Timestamp(skab.START, unit="s")).total_seconds()
        anomaly = frame["anomaly"].to_numpy() == 1
        expected = (elapsed >= case.onset_s) & (elapsed <= case.label_end_s)
        assert np.array_equal(anomaly, expected)
        rows = np.flatnonzero(anomaly)
        assert np.all(np.diff(rows) == 1)  # one contiguous episode
        cps = np.flatnonzero(frame["changepoint"].to_numpy() == 1)
        assert cps[0] == rows[0] and rows[-1] + 1 in cps
        assert len(cps) == 2 + (case.ramp_s > 0) + (case.recovery_s > 0)


def test_every_fault_type_appears_and_the_set_is_reproducible(generated) -> None:
    assert {case.fault for case, _ in generated} == set(FaultType)
    again = list(skab.iter_frames(per_type=2, seed=3))
    for (_, a), (_, b) in zip(generated, again, strict=True):
        pd.testing.assert_frame_equal(a, b)
    other = skab.generate(skab.cases(1, seed=4)[0])
    assert not other.equals(generated[0][1])


def test_a_fault_moves_its_strongest_symptom_by_the_drawn_number_of_sigmas(generated) -> None:
    leak = next(c for c, _ in generated if c.fault is FaultType.LEAK)
    case = replace(leak, profile="step", ramp_s=0.0, recovery_s=0.0, trim=None)
    frame = skab.generate(case)
    sensors = frame.columns[:-2]
    rows = np.arange(len(frame))
    onset = int(np.flatnonzero(frame["anomaly"].to_numpy() == 1)[0])
    before = frame[(rows >= 400) & (rows < onset)][sensors]
    during = frame[(rows >= onset + 60) & (frame["anomaly"].to_numpy() == 1)][sensors]
    shift = (during.mean() - before.mean()).abs() / frame.iloc[:400][sensors].std()
    assert shift.max() == pytest.approx(case.symptom_sigmas, rel=0.35)


def test_some_plants_settle_at_a_new_operating_point_labelled_normal(generated) -> None:
    settled = [(c, f) for c, f in generated if c.trim is not None]
    assert 0 < len(settled) < len(generated)
    for case, frame in settled:
        sensors = frame.columns[:-2]
        head = frame.iloc[:400][sensors]
        tail = frame.iloc[-60:][sensors]
        assert frame.iloc[-60:]["anomaly"].sum() == 0
        moved = ((tail.mean() - head.mean()).abs() / head.std()).max()
        assert moved > 0.5 * case.settle_sigmas


def test_write_produces_skab_csvs(tmp_path: Path) -> None:
    paths = skab.write(tmp_path, per_type=1, seed=0)
    assert len(paths) == len(FaultType)
    first = paths[0]
    assert first.relative_to(tmp_path).parts == (FaultType.BEARING_WEAR.value, "0.csv")
    frame = pd.read_csv(first, sep=";", index_col="datetime", parse_dates=True)
    header = first.read_text().splitlines()[0].split(";")
    assert header[0] == "datetime" and header[-2:] == ["anomaly", "changepoint"]
    assert len(frame) == skab.cases(1, seed=0)[0].rows


def test_cli_writes_the_set_and_bench_skab_scores_it(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sim"
    assert main(["sim", "skab", "--out", str(out), "--per-type", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == len(FaultType)
    assert main(["bench", "skab", "--dataset", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["files"] == len(FaultType)
    assert set(doc["groups"]) == {t.value for t in FaultType}


def test_cli_bounds_the_set_before_drawing_it(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sim"
    assert main(["sim", "skab", "--out", str(out), "--per-type", "100000000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "plantwatch: error: argument --per-type: expected a whole number from 1 to 1000"
    )
    assert not out.exists()
