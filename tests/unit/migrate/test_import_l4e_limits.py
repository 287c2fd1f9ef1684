"""``plantwatch import l4e`` without ``--train`` checks the dataset limits of
l4e-contracts §1.4 too (sensors, files and bytes per historical dataset), with the
messages ``model train`` gives, naming ``--input``; a refused import registers nothing.
A scheduler's flat inference input is not a historical dataset: any number of its files
is imported (its sensors are still at most 3,000)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.adapters.local import SqliteStateStore
from cloud.cli import imports, output
from cloud.cli.main import main
from cloud.inference import dataset
from cloud.inference.dataset import MAX_DATASET_FILES, MAX_DATASET_SENSORS
from cloud.migrate import l4e


@pytest.fixture(autouse=True)
def _no_progress_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal is one line on stderr; on a loaded machine the check can pass the 2 s after
    which piped progress starts, and a progress line is not what these tests are about."""
    monkeypatch.setattr(imports, "progress", functools.partial(output.progress, after_s=3600))


def _csv(path: Path, sensors: int, rows: int = 2, minute: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "Timestamp," + ",".join(f"s{i}" for i in range(sensors))
    lines = [
        f"2026-01-01T00:{(minute + r) % 60:02d}:{(minute + r) // 60 % 60:02d},"
        + ",".join(["1.5"] * sensors)
        for r in range(rows)
    ]
    path.write_text("\n".join([header, *lines]) + "\n")


def _import(source: Path, data: Path, *extra: str) -> int:
    return main(["import", "l4e", "--input", str(source), "--data", str(data), *extra])


def _registered(data: Path) -> list[str]:
    if not (data / "state.db").exists():
        return []
    with SqliteStateStore(data / "state.db") as state:
        return [k for k, _ in state.items(l4e.DATASETS_NS)]


def _refused(err: str, source: Path) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"--input {source}" in err
    return err


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(extra=st.integers(1, 40))
def test_more_sensors_than_a_dataset_holds_is_refused_without_train(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], extra: int
) -> None:
    root = tmp_path_factory.mktemp("sensors")
    half = (MAX_DATASET_SENSORS + extra) // 2
    _csv(root / "ds" / "a" / "a.csv", half)
    _csv(root / "ds" / "b" / "b.csv", MAX_DATASET_SENSORS + extra - half)
    capsys.readouterr()
    assert _import(root / "ds", root / "data") == 2
    err = _refused(capsys.readouterr().err, root / "ds")
    assert f"{MAX_DATASET_SENSORS + extra:,} sensors" in err and "at most 3,000" in err
    assert "l4e-contracts §1.4" in err
    assert _registered(root / "data") == []


def test_a_dataset_at_the_sensor_limit_is_imported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _csv(tmp_path / "ds" / "a" / "a.csv", MAX_DATASET_SENSORS)
    assert _import(tmp_path / "ds", tmp_path / "data") == 0
    assert _registered(tmp_path / "data") == ["ds"]
    capsys.readouterr()


def test_more_files_than_a_dataset_holds_is_refused_without_train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(MAX_DATASET_FILES + 1):
        _csv(tmp_path / "ds" / "ab"[i % 2] / f"{i}.csv", 1, rows=1, minute=i)
    assert _import(tmp_path / "ds", tmp_path / "data") == 2
    err = _refused(capsys.readouterr().err, tmp_path / "ds")
    assert "1,001 CSV files" in err and "at most 1,000" in err
    assert _registered(tmp_path / "data") == []
    (tmp_path / "ds" / "a" / "0.csv").unlink()
    assert _import(tmp_path / "ds", tmp_path / "data") == 0
    assert _registered(tmp_path / "data") == ["ds"]
    capsys.readouterr()


def test_more_bytes_than_a_dataset_holds_is_refused_without_train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _csv(tmp_path / "ds" / "a" / "a.csv", 3, rows=20)
    _csv(tmp_path / "ds" / "b" / "b.csv", 3, rows=20)
    size = sum(p.stat().st_size for p in (tmp_path / "ds").rglob("*.csv"))
    monkeypatch.setattr(dataset, "MAX_DATASET_BYTES", size - 1)
    assert _import(tmp_path / "ds", tmp_path / "data") == 2
    err = _refused(capsys.readouterr().err, tmp_path / "ds")
    assert f"{size:,} bytes" in err and "l4e-contracts §1.4" in err
    assert _registered(tmp_path / "data") == []
    monkeypatch.setattr(dataset, "MAX_DATASET_BYTES", size)
    assert _import(tmp_path / "ds", tmp_path / "data") == 0
    capsys.readouterr()


def test_model_train_refuses_more_bytes_than_a_dataset_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge.errors import UserError

    _csv(tmp_path / "ds" / "a" / "a.csv", 3, rows=20)
    size = (tmp_path / "ds" / "a" / "a.csv").stat().st_size
    monkeypatch.setattr(dataset, "MAX_DATASET_BYTES", size - 1)
    with pytest.raises(UserError, match=f"{size:,} bytes"):
        dataset.load_dataset(tmp_path / "ds")
    monkeypatch.setattr(dataset, "MAX_DATASET_BYTES", size)
    assert list(dataset.load_dataset(tmp_path / "ds").frame.columns) == ["a\\s0", "a\\s1", "a\\s2"]


def test_a_scheduler_input_of_more_files_than_a_dataset_holds_is_imported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # five-minute inference input over about three and a half days: not a dataset
    start = 1_767_225_600
    folder = tmp_path / "input"
    folder.mkdir()
    for i in range(MAX_DATASET_FILES + 1):
        stamp = start + 300 * i
        name = f"pump_{stamp}.csv"
        (folder / name).write_text(f"Timestamp,flow\n{stamp},1.0\n")
        os.utime(folder / name)
    argv = ["--timestamp-format", "EPOCH", "--name", "pump-line", "--json"]
    assert _import(folder, tmp_path / "data", *argv) == 0
    assert _registered(tmp_path / "data") == ["pump-line"]
    capsys.readouterr()
