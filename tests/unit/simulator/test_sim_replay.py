"""Replay reads L4E-layout folders and SKAB CSVs and plays them on the sample grid."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.errors import UserError
from edge.wire import SENSOR_RE, Telemetry, decode, encode
from simulator.fleet import AssetSpec
from simulator.history import generate_history
from simulator.replay import Replay, load_dataset

SKAB = """datetime;Accelerometer1RMS;Current;Volume Flow RateRMS;anomaly;changepoint
2020-03-09 10:14:33;0.026;1.87;32.0;0.0;0.0
2020-03-09 10:14:34;0.027;1.90;32.1;0.0;0.0
2020-03-09 10:14:35;0.025;;32.0;1.0;1.0
2020-03-09 10:14:37;0.031;2.10;29.9;1.0;0.0
"""


def test_skab_folder_one_asset_per_file(tmp_path: Path) -> None:
    folder = tmp_path / "valve1"
    folder.mkdir()
    (folder / "0.csv").write_text(SKAB)
    (folder / "10.csv").write_text(SKAB)
    (folder / "2.csv").write_text(SKAB)
    frames = load_dataset(folder)
    assert list(frames) == ["valve1-0", "valve1-2", "valve1-10"]
    frame = frames["valve1-0"]
    assert list(frame.columns) == ["Accelerometer1RMS", "Current", "Volume_Flow_RateRMS"]
    assert all(SENSOR_RE.match(c) for c in frame.columns)
    assert frame.index[0].tzinfo is not None and len(frame) == 4


def test_replay_shifts_time_keeps_spacing_and_skips_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    path.write_text(SKAB)
    t0 = 1_700_000_000.0
    replay = Replay(load_dataset(path), start=t0)
    assert replay.assets == ("run",)
    assert (replay.start, replay.end, replay.rows) == (t0, t0 + 4, 4)
    first = replay.step(t0 + 1.5)["run"]
    ms = int(t0 * 1000)
    assert [s.ts_ms for s in first] == [ms, ms + 1_000]
    assert replay.step(t0 + 1.9) == {}
    rest = replay.step(t0 + 1_000)["run"]
    assert [s.ts_ms for s in rest] == [ms + 2_000, ms + 4_000]
    assert rest[0].values["Current"] is None
    message = Telemetry("s1", "run", "replay", 0, tuple(first + rest))
    assert decode(encode(message)) == message


def test_original_time_keeps_recorded_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    path.write_text(SKAB)
    replay = Replay(load_dataset(path), start=0.0, original_time=True)
    t0 = datetime(2020, 3, 9, 10, 14, 33, tzinfo=UTC).timestamp()
    assert replay.step(t0)["run"][0].ts_ms == round(t0 * 1000)


def test_replays_the_history_layout(tmp_path: Path) -> None:
    assets = [AssetSpec("pump-01", "pump", 1), AssetSpec("fan-02", "fan", 2)]
    frames = generate_history(assets, datetime(2026, 1, 5, tzinfo=UTC), 0.1, 60.0, tmp_path)
    loaded = load_dataset(tmp_path)
    assert set(loaded) == {"pump-01", "fan-02"}
    assert list(loaded["pump-01"].columns) == list(frames["pump-01"].columns)
    replay = Replay(loaded, start=0.0)
    out = replay.step(600.0)
    assert len(out["pump-01"]) == 11
    assert out["pump-01"][0].values["speed_rpm"] == frames["pump-01"]["speed_rpm"].iloc[0]


def test_component_folder_with_several_files_is_merged(tmp_path: Path) -> None:
    comp = tmp_path / "gearbox"
    comp.mkdir()
    (comp / "a.csv").write_text(
        "Timestamp,oil_temp\n2023-01-01 00:00:00,50\n2023-01-01 00:01:00,51\n"
    )
    (comp / "b.csv").write_text("Timestamp,vibration\n2023-01-01 00:00:00,1.5\n")
    frame = load_dataset(tmp_path)["gearbox"]
    assert list(frame.columns) == ["oil_temp", "vibration"] and len(frame) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [("Timestamp\n2023-01-01,1\n", "expected a timestamp column and at least one sensor"),
     ("Timestamp,x\nyesterday,1\n", "column 1 (Timestamp): bad timestamp")],
)  # fmt: skip
def test_bad_files_are_user_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=re.escape(message)):
        load_dataset(path)


def test_missing_or_empty_dataset(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(UserError, match="no CSV files"):
        load_dataset(tmp_path)


def test_align_starts_every_recording_at_the_replay_start(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("Timestamp,x\n2020-01-01 00:00:00,1\n2020-01-01 00:00:10,2\n")
    (tmp_path / "b.csv").write_text("Timestamp,x\n2020-01-02 00:00:00,3\n")
    frames = load_dataset(tmp_path)
    in_sequence = Replay(frames, start=0.0)
    assert (in_sequence.start, in_sequence.end) == (0.0, 86_400.0)
    side_by_side = Replay(frames, start=0.0, align=True)
    assert (side_by_side.start, side_by_side.end) == (0.0, 10.0)
    out = side_by_side.step(0.0)
    assert {a: [s.ts_ms for s in v] for a, v in out.items()} == {
        f"{tmp_path.name}-a": [0],
        f"{tmp_path.name}-b": [0],
    }
