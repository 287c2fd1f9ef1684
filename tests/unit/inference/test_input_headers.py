"""Input CSV headers a user gets wrong in two common ways, refused with a reason that says
what is wrong and what is expected, wherever the CSV is read (training, evaluation, the
scheduler): a file separated by ``;`` or tabs (L4E input CSVs are comma-separated,
l4e-contracts §1.1), and headers naming a sensor in full, ``<component>\\<sensor>``, as
results.jsonl diagnostics do (a header is the column name alone: the component is the
file's folder or name, §1.1 and §1.3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from conftest import plant_frame

from cloud.adapters.local import InMemoryObjectStore, InMemoryStateStore
from cloud.cli.main import main
from cloud.inference.dataset import load_dataset, read_csv
from cloud.inference.model import Model, train
from cloud.inference.scheduler import Execution, Scheduler, SchedulerConfig, create_scheduler
from edge.clock import ManualClock
from edge.errors import UserError

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
HISTORY = plant_frame(rows=3000, start="2025-12-29")
LIVE = plant_frame(rows=120, seed=11, start="2026-01-01")
SEPARATORS = {";": "';'", "\t": "tabs"}


def body(frame: pd.DataFrame, *, sep: str = ",", full_names: bool = False) -> bytes:
    """*frame* (``pump\\<sensor>`` columns) as an input CSV: bare sensor names unless
    *full_names*."""
    if not full_names:
        frame = frame.rename(columns=lambda c: c.removeprefix("pump\\"))
    return frame.to_csv(
        sep=sep, date_format="%Y-%m-%dT%H:%M:%S.%f", index_label="Timestamp"
    ).encode()


@pytest.fixture(scope="module")
def asset_model() -> Model:
    return train(HISTORY)


@pytest.fixture(scope="module")
def template_model() -> Model:
    return train(HISTORY.rename(columns=lambda c: c.removeprefix("pump\\")))


def run_window(model: Model, data: bytes) -> Execution:
    """The window ending 00:05 of a pump scheduler whose only file holds *data*."""
    state = InMemoryStateStore()
    config = SchedulerConfig(name="pump-sched", model_name="pump")
    create_scheduler(state, config, T0)
    inputs = InMemoryObjectStore()
    inputs.put("input/pump_20260101000500.csv", data)
    scheduler = Scheduler(
        config, model, inputs, InMemoryObjectStore(), state, ManualClock(T0 + 420)
    )
    [execution] = scheduler.run_due()
    return execution


def window_rows() -> pd.DataFrame:
    return LIVE.loc[: pd.Timestamp("2026-01-01 00:05", tz="UTC")]


# -- separators ------------------------------------------------------------------------


@pytest.mark.parametrize("sep", list(SEPARATORS))
def test_a_file_separated_otherwise_than_by_commas_says_so(sep: str) -> None:
    with pytest.raises(UserError) as raised:
        read_csv(body(window_rows(), sep=sep), "pump.csv")
    assert str(raised.value) == (
        f"pump.csv: line 1 seems to be separated by {SEPARATORS[sep]}, not commas; "
        "L4E input CSVs are comma-separated (expected a timestamp column and at least one "
        "sensor column)"
    )


@pytest.mark.parametrize("header", ["Timestamp", "Timestamp;flow,", "Timestamp;flow,pressure"])
def test_a_header_with_commas_or_no_separator_is_not_called_semicolon_separated(
    header: str,
) -> None:
    """A header holding a comma is read as comma-separated, whatever else it holds; one
    with no separator at all keeps the plain message."""
    data = f"{header}\n2026-01-01T00:00:00,1,2\n".encode()
    try:
        read_csv(data, "pump.csv")
    except UserError as exc:
        assert "separated by" not in str(exc)


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_model_train_and_evaluate_name_the_separator(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data", str(tmp_path / "data")]
    good, bad = tmp_path / "good" / "pump", tmp_path / "bad" / "pump"
    good.mkdir(parents=True)
    bad.mkdir(parents=True)
    (good / "pump.csv").write_bytes(body(HISTORY))
    (bad / "pump.csv").write_bytes(body(HISTORY, sep=";"))
    labels = tmp_path / "labels.csv"
    labels.write_text("")
    if command == "evaluate":
        assert main(["model", "train", "--dataset", str(good), "--name", "m1", *data]) == 0
        argv = ["model", "evaluate", "--labels", str(labels)]
    else:
        argv = ["model", "train"]
    capsys.readouterr()
    code = main([*argv, "--dataset", str(tmp_path / "bad"), "--name", "m1", *data])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{bad / 'pump.csv'}: line 1 seems to be separated by ';', not commas" in err
    assert "L4E input CSVs are comma-separated" in err


def test_the_scheduler_names_the_separator_of_a_file_it_leaves_out(asset_model: Model) -> None:
    execution = run_window(asset_model, body(window_rows(), sep=";"))
    assert execution.status == "FAILED"
    assert [s["reason"] for s in execution.skipped] == [
        "input/pump_20260101000500.csv: line 1 seems to be separated by ';', not commas; "
        "L4E input CSVs are comma-separated (expected a timestamp column and at least one "
        "sensor column)"
    ]
    assert "separated by ';'" in (execution.failed_reason or "")


# -- full sensor names as headers ------------------------------------------------------


FULL_NAME_REASON = (
    "line 1, column 2: sensor name 'pump\\motor_current' names the component too; "
    "expected the sensor name alone ('motor_current'): the component, 'pump', is the "
    "file's folder or name"
)


def test_a_header_naming_the_files_component_is_refused_naming_it() -> None:
    with pytest.raises(UserError) as raised:
        read_csv(body(window_rows(), full_names=True), "pump.csv", component="pump")
    assert str(raised.value) == f"pump.csv: {FULL_NAME_REASON}"


def test_a_backslash_header_of_another_name_is_still_a_column_name() -> None:
    """§1.1 lets a column name hold ``\\``: only the file's own component before it reads
    as a full sensor name written where the column name belongs."""
    data = b"Timestamp,gearbox\\oil_temp\n2026-01-01T00:00:00,1\n"
    parsed = read_csv(data, "pump.csv", component="pump")
    assert list(parsed.frame.columns) == ["gearbox\\oil_temp"]


def test_training_refuses_full_sensor_names_instead_of_doubling_the_component(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ds" / "pump"
    folder.mkdir(parents=True)
    (folder / "pump.csv").write_bytes(body(HISTORY, full_names=True))
    with pytest.raises(UserError) as raised:
        load_dataset(tmp_path / "ds")
    assert f"{folder / 'pump.csv'}: {FULL_NAME_REASON}" in str(raised.value)
    argv = ["model", "train", "--dataset", str(tmp_path / "ds"), "--name", "m1"]
    assert main([*argv, "--data", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert FULL_NAME_REASON in err and "pump\\pump\\" not in err


@pytest.mark.parametrize("kind", ["asset", "template"])
def test_the_scheduler_names_a_full_sensor_name_header(
    kind: str, asset_model: Model, template_model: Model
) -> None:
    model = asset_model if kind == "asset" else template_model
    execution = run_window(model, body(window_rows(), full_names=True))
    assert execution.status == "FAILED"
    assert [s["reason"] for s in execution.skipped] == [
        f"input/pump_20260101000500.csv: {FULL_NAME_REASON}"
    ]
    reason = execution.failed_reason or ""
    assert FULL_NAME_REASON in reason and "pump\\pump\\" not in reason


def test_import_l4e_discards_a_file_of_full_sensor_names_naming_the_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "src" / "pump"
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text("Timestamp,flow\n2026-01-01T00:00:00,1\n")
    (folder / "b.csv").write_text("Timestamp,pump\\flow\n2026-01-01T00:05:00,2\n")
    argv = ["import", "l4e", "--input", str(tmp_path / "src"), "--data", str(tmp_path / "d")]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["DiscardedFiles"] == [
        {
            "Key": "pump/b.csv",
            "Reason": "pump/b.csv: line 1, column 2: sensor name 'pump\\flow' names the "
            "component too; expected the sensor name alone ('flow'): the component, 'pump', "
            "is the file's folder or name",
        }
    ]
