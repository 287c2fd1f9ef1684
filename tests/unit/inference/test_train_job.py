"""Training from a dataset folder end to end: the streamed diagnostics are the lines the
in-memory path wrote, ranges and templates pick the right rows, failures leave nothing."""

from __future__ import annotations

import argparse
import errno
import gc
import gzip
import io
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import plant_frame

from cloud.adapters.local import FsObjectStore
from cloud.inference.dataset import load_dataset
from cloud.inference.diagnostics import DIAGNOSTICS_FILE, GzipLineWriter
from cloud.inference.model import TrainConfig, train
from cloud.inference.monitor import Monitor
from cloud.inference.registry import ModelRegistry
from cloud.inference.results import encode_results, result_lines
from cloud.inference.train_job import TrainJob, run_train_job
from edge.errors import UserError


def write_component(root: Path, name: str, frame: pd.DataFrame) -> None:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    frame.rename(columns=lambda c: c.split("\\")[1]).to_csv(
        folder / f"{name}.csv", date_format="%Y-%m-%dT%H:%M:%S", index_label="Timestamp"
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two components with the same timestamps, a few gaps, one sustained fault."""
    root = tmp_path / "ds"
    for k, name in enumerate(["pump-a", "pump-b"]):
        frame = plant_frame(rows=12_000, seed=10 + k)
        frame = frame.mask(np.random.default_rng(k).random(frame.shape) < 0.002)
        if k == 1:
            frame.iloc[10_000:10_200, 1] -= 60
        write_component(root, name, frame)
    return root


class Recorder:
    def __init__(self) -> None:
        self.stages: list[str] = []
        self.advanced = 0.0

    def stage(self, description: str, total: float | None = None) -> None:
        self.stages.append(description)

    def advance(self, amount: float = 1.0) -> None:
        self.advanced += amount


def registry_at(folder: Path) -> ModelRegistry:
    return ModelRegistry(FsObjectStore(folder, create=False), where=str(folder))


def diagnostics(path: str) -> bytes:
    return gzip.decompress((Path(path) / DIAGNOSTICS_FILE).read_bytes())


def test_streamed_diagnostics_are_the_lines_of_scoring_in_one_piece(
    folder: Path, tmp_path: Path
) -> None:
    registry = registry_at(tmp_path / "models")
    recorder = Recorder()
    config = TrainConfig(smoothing=5)
    outcome = run_train_job(TrainJob(folder, "fleet", config), registry, recorder)
    frame = load_dataset(folder).frame
    expected = train(frame, config)
    whole = Monitor(expected).score(frame).result  # with its alarm rules, as scheduled
    body = diagnostics(outcome.path)
    lines = body.splitlines()
    assert len(lines) == len(frame) == outcome.scored_rows
    # smoothing sums in pieces: the same lines except where a 5-decimal rounding flips
    changed = sum(
        a != b
        for a, b in zip(
            lines, encode_results(result_lines(whole, expected.sensors)).splitlines(), strict=True
        )
    )
    assert changed <= len(lines) // 1000
    np.testing.assert_allclose(outcome.model.mode_phi, expected.mode_phi, rtol=1e-9, atol=1e-12)
    assert outcome.model.threshold == pytest.approx(expected.threshold, rel=1e-9)
    assert recorder.advanced == pytest.approx(len(frame) + 1)
    assert [s.split(" ")[0] for s in recorder.stages] == [
        "reading",
        "grading",
        "training",
        "scoring",
        "saving",
    ]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["fleet"]  # none staged


def test_default_model_diagnostics_are_byte_identical(folder: Path, tmp_path: Path) -> None:
    outcome = run_train_job(TrainJob(folder, "m", TrainConfig()), registry_at(tmp_path / "r"))
    frame = load_dataset(folder).frame
    result = Monitor(train(frame, TrainConfig())).score(frame).result
    assert diagnostics(outcome.path) == encode_results(result_lines(result, outcome.model.sensors))
    assert outcome.evaluation["rows"] == len(frame)


def test_template_and_ranges_pick_their_rows(folder: Path, tmp_path: Path) -> None:
    registry = registry_at(tmp_path / "models")
    index = load_dataset(folder).frame.index
    job = TrainJob(
        folder,
        "tpl",
        TrainConfig(),
        template="pump-b",
        train_range=(None, index[8_000]),
        eval_range=(index[8_001], None),
    )
    outcome = run_train_job(job, registry)
    assert outcome.model.is_template
    assert outcome.scored_rows == len(index) - 8_001
    lines = diagnostics(outcome.path).splitlines()
    assert len(lines) == outcome.scored_rows
    assert b'"name": "pump-b\\\\flow"' in lines[0]
    assert outcome.evaluation["range"] == "evaluation"
    assert outcome.evaluation["false_alarm_rate_pct"] > 0  # the fault is in the scored range


def test_model_diagnostics_name_each_microsecond_once(tmp_path: Path) -> None:
    """§5 lines (the model diagnostics are results.jsonl lines, §8): one line per timestamp,
    written to the microsecond; rows a few nanoseconds apart (9-digit fractions, §1.2
    Choice) are one timestamp, not two lines naming the same time."""
    # GIVEN history whose every row has a twin 250 ns later
    frame = plant_frame(rows=600, seed=3)
    twin = frame.set_axis(frame.index + pd.Timedelta(nanoseconds=250))
    history = pd.concat([frame, twin]).sort_index()
    folder = tmp_path / "ds" / "pump"
    folder.mkdir(parents=True)
    history = history.rename(columns=lambda c: c.split("\\")[1])
    history.index = [
        f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond:06d}{t.nanosecond:03d}" for t in history.index
    ]
    history.to_csv(folder / "pump.csv", index_label="Timestamp")
    # WHEN trained
    outcome = run_train_job(
        TrainJob(tmp_path / "ds", "m", TrainConfig()), registry_at(tmp_path / "r")
    )
    # THEN the diagnostics have one line per minute, in time order, none repeated
    stamps = [line.split(b'"')[3] for line in diagnostics(outcome.path).splitlines()]
    assert stamps == sorted(set(stamps))
    assert len(stamps) == 600


def test_bad_requests_are_user_errors_and_leave_no_version(folder: Path, tmp_path: Path) -> None:
    registry = registry_at(tmp_path / "models")
    with pytest.raises(UserError, match="--template pump-z: no such component"):
        run_train_job(TrainJob(folder, "m", TrainConfig(), template="pump-z"), registry)
    late = pd.Timestamp("2030-01-01", tz="UTC")
    with pytest.raises(UserError, match="no rows in the training range"):
        run_train_job(TrainJob(folder, "m", TrainConfig(), train_range=(late, None)), registry)
    assert registry.names() == []


def test_a_failure_while_scoring_leaves_no_partial_file(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = registry_at(tmp_path / "models")

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("cloud.inference.train_job.iter_result_rows", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_train_job(TrainJob(folder, "m", TrainConfig()), registry)
    assert registry.names() == []
    assert [p.name for p in (tmp_path / "models").iterdir()] == []  # nothing staged left


def test_writer_renames_when_complete_and_aborts_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "out" / "lines.json.gz"
    with GzipLineWriter(path) as writer:
        for i in range(100):
            writer.write(f'{{"i": {i}}}\n'.encode())
        assert not path.exists() and writer.partial.exists()
    assert gzip.decompress(path.read_bytes()).count(b"\n") == 100
    with pytest.raises(ValueError, match="stop"), GzipLineWriter(tmp_path / "b.gz") as writer:
        writer.write(b"x\n")
        raise ValueError("stop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_writer_reports_a_compression_error_to_the_producer(tmp_path: Path) -> None:
    with pytest.raises(ValueError), GzipLineWriter(tmp_path / "c.gz") as writer:
        writer._gzip.close()  # every write in the thread fails from now on
        for _ in range(10):
            writer.write(b"x\n")
    assert list(tmp_path.iterdir()) == []


class _FullDisk(io.FileIO):
    """A file on a disk that fills after *room* bytes: later writes fail as the kernel
    fails them (the gzip header fits; the compressed data, or its last flush, does not)."""

    room = 64

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


# the header is 44 bytes: 0 fails it, 48 fails the last flush, 5 MB the compressing thread
@pytest.mark.parametrize(("size", "room"), [(10, 0), (10, 48), (5_000_000, 48)])
def test_a_full_disk_names_the_diagnostics_file_and_leaves_no_part_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, room: int
) -> None:
    """The error (ENOSPC from the compressing thread, or from the last flush) carried no
    file name, so `model train` said only "No space left on device"; and the clean-up
    failed on the same flush, leaving the .partial file behind."""
    from cloud.inference import diagnostics

    monkeypatch.setattr(_FullDisk, "room", room)
    monkeypatch.setattr(
        diagnostics, "open", lambda path, mode: _FullDisk(path, mode), raising=False
    )
    path = tmp_path / DIAGNOSTICS_FILE
    with pytest.raises(OSError) as caught, GzipLineWriter(path) as writer:
        writer.write(os.urandom(size))
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(("size", "room"), [(10, 0), (10, 48), (5_000_000, 48)])
def test_a_full_disk_leaves_no_gzip_object_to_fail_when_collected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, room: int
) -> None:
    """With the header refused, the half-built GzipFile was left to the collector, whose
    close wrote to the closed file: ``Exception ignored in: <gzip ...>`` on stderr after
    the command's own error, on Python 3.12 and 3.13."""
    from cloud.inference import diagnostics

    ignored: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)
    monkeypatch.setattr(_FullDisk, "room", room)
    monkeypatch.setattr(
        diagnostics, "open", lambda path, mode: _FullDisk(path, mode), raising=False
    )

    def write() -> None:
        with GzipLineWriter(tmp_path / DIAGNOSTICS_FILE) as writer:
            writer.write(os.urandom(size))

    with pytest.raises(OSError):
        write()
    gc.collect()
    assert [str(u.exc_value) for u in ignored] == []


def test_the_cli_says_to_free_space_when_the_disk_is_full(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloud.cli import main as cli_main

    def full(_args: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x"))

    parser = cli_main.build_parser("status")
    monkeypatch.setattr(cli_main, "build_parser", lambda _selected: parser)
    monkeypatch.setattr(parser, "parse_args", lambda _argv: argparse.Namespace(_run=full))
    assert cli_main.main(["status"]) == 2  # as every OSError (import iotevents: the same)
    err = capsys.readouterr().err
    assert err == (
        f"plantwatch: error: {tmp_path / 'x'}: No space left on device; free space on that "
        "disk and run the command again\n"
    )
