"""Dataset and label CSVs a user hands to `model train` / `import l4e`: hostile cases.

A timestamp nanoseconds cannot hold (year 9999, year 1) is an unsupported timestamp like
any other unreadable one (counted, its row left out), not a pandas OutOfBoundsDatetime
ending the command as an internal error. A FIFO or a device where a CSV is expected is
discarded with its reason instead of blocking the reader or reading without end, and a
reader's error is one line.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.cli.main import main
from cloud.inference.dataset import load_dataset, load_labels, parse_timestamps, read_csv
from edge.errors import UserError

HEADER = "Timestamp,flow,temp\n"


@settings(max_examples=80, deadline=None)
@given(moment=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_any_iso_timestamp_parses_or_is_unsupported(moment: datetime) -> None:
    for text in (moment.isoformat(timespec="seconds"), moment.strftime("%Y-%m-%d %H:%M:%S")):
        for values in ([text], ["2026-01-01T00:00:00", text]):
            parsed = parse_timestamps(values)
            last = parsed[-1]
            exact = not pd.isna(last) and last.tz_localize(None) == moment.replace(microsecond=0)
            assert exact or (pd.isna(last) and not 1678 <= moment.year <= 2261)


@pytest.mark.parametrize(
    "stamp",
    ["9999-12-31T23:59:59", "0001-01-01T00:00:00", "2262-04-12 00:00:00", "31/12/9999 23:59"],
)
def test_a_timestamp_out_of_range_is_counted_unsupported(stamp: str) -> None:
    body = f"{HEADER}2026-01-01T00:00:00,1,2\n{stamp},3,4\n".encode()
    parsed = read_csv(body, "pump-01.csv")
    assert parsed.unsupported_timestamps == 1
    assert list(parsed.frame["flow"]) == [1.0]


def test_a_label_out_of_range_names_its_line(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "2026-01-01T00:00:00,2026-01-02T00:00:00\n9999-12-31T23:59:59,9999-12-31T23:59:59\n"
    )
    with pytest.raises(UserError, match=r"labels.csv: line 2: .*expected a supported timestamp"):
        load_labels(labels)


def test_a_fifo_or_device_in_a_dataset_is_discarded_not_read(tmp_path: Path) -> None:
    component = tmp_path / "ds" / "pump-01"
    component.mkdir(parents=True)
    (component / "a.csv").write_text(f"{HEADER}2026-01-01T00:00:00,1,2\n")
    os.mkfifo(component / "b.csv")
    os.symlink("/dev/zero", component / "c.csv")
    os.symlink(component / "d.csv", component / "d.csv")  # a loop
    dataset = load_dataset(tmp_path / "ds")
    assert sorted(Path(p).name for p in dataset.discarded) == ["b.csv", "c.csv", "d.csv"]
    assert list(dataset.frame.columns) == ["pump-01\\flow", "pump-01\\temp"]


def test_a_dataset_of_only_a_fifo_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    component = tmp_path / "ds" / "pump-01"
    component.mkdir(parents=True)
    os.mkfifo(component / "pump-01.csv")
    argv = ["model", "train", "--dataset", str(tmp_path / "ds"), "--name", "m1"]
    code = main([*argv, "--data", str(tmp_path / "data")])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert (
        err[-1].startswith("plantwatch: error: ") and "pump-01.csv: not a regular file" in err[-1]
    )


@pytest.mark.parametrize(
    ("where", "stamp"),
    [("dataset", "9999-12-31T23:59:59"), ("labels", "0001-01-01T00:00:00")],
)
def test_model_train_with_far_timestamps_exits_2_not_internal(
    where: str, stamp: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    component = tmp_path / "ds" / "pump-01"
    component.mkdir(parents=True)
    rows = "".join(f"2026-01-01T00:{m:02d}:00,{m},{m}\n" for m in range(30))
    far = f"{stamp},1,1\n" if where == "dataset" else ""
    (component / "pump-01.csv").write_text(HEADER + far + rows)
    labels = tmp_path / "labels.csv"
    labels.write_text(f"{stamp},{stamp}\n" if where == "labels" else "")
    argv = ["model", "train", "--dataset", str(tmp_path / "ds"), "--name", "m1"]
    if where == "labels":
        argv += ["--labels", str(labels)]
    code = main([*argv, "--data", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err
    assert code in (0, 2), err
    if where == "labels":
        assert code == 2 and "labels.csv: line 1" in err


def test_a_label_file_past_the_document_limit_is_refused_unread(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    with labels.open("wb") as fh:
        fh.truncate(1 << 30)  # sparse: read_text would take a gigabyte of memory
    with pytest.raises(UserError, match=r"labels.csv: not a readable label CSV \(larger than"):
        load_labels(labels)


@pytest.mark.parametrize("form", ["bytes", "file", "path"])
def test_a_first_line_past_a_mebibyte_is_refused_before_pandas_reads_it(
    tmp_path: Path, form: str
) -> None:
    body = b"Timestamp" + b",flow" * ((1 << 20) // 5 + 1) + b"\n2026-01-01T00:00:00,1\n"
    path = tmp_path / "pump-01.csv"
    path.write_bytes(body)
    source = {"bytes": body, "file": path.open("rb"), "path": path}[form]
    with pytest.raises(UserError, match=r"pump-01.csv: line 1: longer than 1 MiB"):
        read_csv(source, "pump-01.csv")
