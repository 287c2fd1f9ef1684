"""History in the L4E layout: files, determinism to the byte, labels equal to the faults."""

from __future__ import annotations

import csv
import functools
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cloud.cli import output
from cloud.cli.main import main
from simulator.fleet import AssetSpec
from simulator.history import generate_history
from simulator.labels import Label, labels_csv, read_labels
from simulator.physics import KINDS
from simulator.scenario import parse_scenario


@pytest.fixture(autouse=True)
def _no_progress_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused ``sim history`` is one line on stderr; on a loaded machine the work before
    the refusal (a fault on an unknown asset, a full disk) can pass the 2 s after which piped
    progress starts. The test of progress itself patches ``after_s=0`` over this."""
    monkeypatch.setattr(output, "progress", functools.partial(output.progress, after_s=3600))


START = datetime(2026, 1, 5, tzinfo=UTC)
ASSETS = [AssetSpec("pump-01", "pump", 1), AssetSpec("fan-02", "fan", 2)]
SCENARIO = """
[[faults]]
asset = "pump-01"
type = "bearing_wear"
start = "1d"
duration = "12h"
recovery = "1h"
profile = "accelerating"
ramp = "12h"
notes = "outer race"

[[faults]]
asset = "fan-02"
type = "sensor_dropout"
sensor = "motor_temp_c"
start = 2026-01-06T06:30:00Z
duration = "45m"

[[faults]]
asset = "fan-02"
type = "overheating"
start = "2d12h"
"""


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.csv"))}


def test_writes_l4e_layout_with_timestamp_first(tmp_path: Path) -> None:
    frames = generate_history(ASSETS, START, 1.0, 60.0, tmp_path)
    assert set(_tree(tmp_path)) == {
        "data/pump-01/pump-01.csv",
        "data/fan-02/fan-02.csv",
        "labels/labels.csv",
    }
    with (tmp_path / "data/fan-02/fan-02.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Timestamp", *KINDS["fan"].sensor_names]
    assert rows[1][0] == "2026-01-05T00:00:00"
    assert rows[-1][0] == "2026-01-05T23:59:00"
    assert len(rows) == 1 + 1440
    frame = frames["fan-02"]
    assert frame.index[0] == pd.Timestamp("2026-01-05", tz="UTC")
    assert frame.index.name == "Timestamp" and list(frame.columns) == list(
        KINDS["fan"].sensor_names
    )
    back = pd.read_csv(tmp_path / "data/fan-02/fan-02.csv", index_col=0)
    assert np.allclose(back.to_numpy(), frame.to_numpy(), equal_nan=True, atol=1e-9)
    assert (tmp_path / "labels/labels.csv").read_text() == ""


def test_same_seed_gives_byte_identical_output(tmp_path: Path) -> None:
    sc = parse_scenario(SCENARIO, "s.toml")
    generate_history(ASSETS, START, 3.0, 60.0, tmp_path / "a", scenario=sc, seed=4)
    generate_history(ASSETS, START, 3.0, 60.0, tmp_path / "b", scenario=sc, seed=4)
    generate_history(ASSETS, START, 3.0, 60.0, tmp_path / "c", scenario=sc, seed=5)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert a == b
    assert a["data/pump-01/pump-01.csv"] != c["data/pump-01/pump-01.csv"]


def test_an_asset_is_the_same_alone_or_in_a_fleet(tmp_path: Path) -> None:
    generate_history(ASSETS[:1], START, 10.0, 60.0, tmp_path / "alone")
    crowd = [*ASSETS, *(AssetSpec(f"pump-{i:02d}", "pump", i) for i in range(3, 9))]
    generate_history(crowd, START, 10.0, 60.0, tmp_path / "crowd")
    name = "data/pump-01/pump-01.csv"
    assert _tree(tmp_path / "alone")[name] == _tree(tmp_path / "crowd")[name]


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_labels_match_the_injected_intervals_exactly(tmp_path: Path) -> None:
    sc = parse_scenario(SCENARIO, "s.toml")
    frames = generate_history(ASSETS, START, 3.0, 60.0, tmp_path, scenario=sc)
    labels = read_labels(tmp_path / "labels/labels.csv")
    day = 86_400.0
    t0 = START.timestamp()
    assert labels == [
        Label(t0 + day, t0 + 1.5 * day + 3600, "BRG_WEAR", "pump-01", "outer race"),
        Label(_ts("2026-01-06T06:30"), _ts("2026-01-06T07:15"), "SENSOR_DROPOUT", "fan-02"),
        Label(t0 + 2.5 * day, t0 + 3 * day - 60, "OVERHEAT", "fan-02"),
    ]
    text = (tmp_path / "labels/labels.csv").read_text().splitlines()
    assert (
        text[0]
        == "2026-01-06T00:00:00.000000,2026-01-06T13:00:00.000000,BRG_WEAR,pump-01,outer race"
    )
    # the dropout label covers exactly the rows where the channel is lost
    temp = frames["fan-02"]["motor_temp_c"]
    lost = temp.index[temp.isna()]
    inside = (lost >= pd.Timestamp("2026-01-06T06:30", tz="UTC")) & (
        lost <= pd.Timestamp("2026-01-06T07:15", tz="UTC")
    )
    assert inside.sum() == 46


def test_faulty_history_differs_from_the_normal_one_only_inside_labels() -> None:
    sc = parse_scenario(SCENARIO, "s.toml")
    normal = generate_history(ASSETS, START, 3.0, 60.0)
    faulty = generate_history(ASSETS, START, 3.0, 60.0, scenario=sc)
    diff = ~np.isclose(
        normal["pump-01"].to_numpy(), faulty["pump-01"].to_numpy(), equal_nan=True, atol=0.02
    ).all(axis=1)
    changed = normal["pump-01"].index[diff]
    assert changed.min() >= pd.Timestamp("2026-01-06", tz="UTC")
    # bearing temperature takes a while to cool after the repair; vibration returns at once
    vib_n = normal["pump-01"]["vibration_x_mm_s"]
    vib_f = faulty["pump-01"]["vibration_x_mm_s"]
    after = vib_n.index > pd.Timestamp("2026-01-06T13:00", tz="UTC")
    assert np.allclose(vib_n[after], vib_f[after], equal_nan=True)


def test_labels_csv_is_headerless_and_quotes_notes() -> None:
    text = labels_csv([Label(60.0, 120.5, "LEAK", "p1", "a, b")])
    assert text == '1970-01-01T00:01:00.000000,1970-01-01T00:02:00.500000,LEAK,p1,"a, b"\n'


def test_cli_history_writes_data_and_reports_json(tmp_path: Path, capsys) -> None:
    code = main(
        ["sim", "history", "--assets", "2", "--kind", "mixed", "--days", "0.5", "--rate", "30s",
         "--start", "2026-01-05T00:00", "--out", str(tmp_path), "--json"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    import json

    doc = json.loads(out)
    assert doc["assets"] == 2 and doc["rows_per_asset"] == 1440 and doc["sensors"] == 20
    assert (tmp_path / "data/pump-01/pump-01.csv").exists()
    assert (tmp_path / "data/fan-02/fan-02.csv").exists()


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ('[[faults]]\nasset = "pump-01"\ntype = "rust"\nstart = "1h"\n', "faults[0].type: unknown fault type 'rust'"),
        ('[[faults]]\nasset = "pump-01"\ntype = "leak"\nstart = "1h"\nduration = "-2h"\n', "faults[0].duration: must not be negative"),
        ('[[faults]]\nasset = "pump-99"\ntype = "leak"\nstart = "1h"\n', "faults[0].asset: unknown asset 'pump-99'"),
        ('[[faults]\nasset = "pump-01"\n', "invalid TOML"),
    ],
)  # fmt: skip
def test_cli_bad_scenario_exits_2_with_one_line(
    tmp_path: Path, capsys, scenario: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(scenario)
    code = main(
        ["sim", "history", "--days", "0.1", "--out", str(tmp_path / "o"), "--scenario", str(path)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and str(path) in err
    assert len(err.strip().splitlines()) == 1


def test_cli_history_that_cannot_fit_on_the_disk_is_refused_before_writing(
    tmp_path: Path, capsys
) -> None:
    out = tmp_path / "new" / "history"
    argv = ["sim", "history", "--days", "900000", "--rate", "1s", "--out", str(out)]
    assert main([*argv, "--start", "1970-01-02T00:00"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "77,760,000,000 rows per asset need at least" in err and "GB are free" in err
    assert not (tmp_path / "new").exists()
    # without --start, so many days before today is before the year 1
    assert main(["sim", "history", "--days", "1e7", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "plantwatch: error: --days 1e+07: would start before the year 1; give --start or fewer days"
    )


def test_generation_reports_its_rows_as_it_goes(tmp_path: Path) -> None:
    """``on_rows`` hears every row once per asset, chunk by chunk, so the CLI can show progress."""
    heard: list[int] = []
    assets = [AssetSpec("pump-01"), AssetSpec("fan-01", kind="fan")]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    generate_history(assets, start, days=3, rate_s=10.0, out_dir=tmp_path, on_rows=heard.append)
    assert sum(heard) == 3 * 8640 * len(assets)
    assert len(heard) > 2  # more than one chunk: progress moves during the work


def test_cli_history_shows_progress_on_stderr(tmp_path: Path, capsys, monkeypatch) -> None:
    """A long ``sim history`` (minutes for a big fleet) said nothing until it was done."""
    monkeypatch.setattr(output, "progress", functools.partial(output.progress, after_s=0))
    argv = ["sim", "history", "--assets", "2", "--days", "1", "--rate", "10s"]
    assert main([*argv, "--out", str(tmp_path), "--start", "2025-01-01", "--json"]) == 0
    out, err = capsys.readouterr()
    assert out.lstrip().startswith("{")  # stdout stays the one JSON document
    lines = err.strip().splitlines()
    assert lines[0].startswith("sim history: ")
    assert lines[-1].startswith("sim history: ") and " done 17,280/17,280 (100%)" in lines[-1]


def test_a_full_disk_names_the_file_and_leaves_no_part_of_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sim history` on a full disk said only "No space left on device" and left a CSV cut
    off mid-row, which `model train` would then read as a dataset."""
    import errno
    import io
    import os

    from cloud.cli.main import main
    from simulator import history

    class Full(io.StringIO):
        def __init__(self, *_args: object, **_kwargs: object) -> None:
            super().__init__()
            self.writes = 0

        def write(self, text: str) -> int:
            self.writes += 1
            if self.writes > 1:  # the header fits, the rows do not
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return super().write(text)

    real_open = open

    def opening(path: object, mode: str = "r", **kwargs: object) -> object:
        if str(path).endswith(".partial"):
            real_open(path, mode, **kwargs).close()  # the file exists, as it would
            return Full()
        return real_open(path, mode, **kwargs)

    monkeypatch.setattr(history, "open", opening, raising=False)
    out = tmp_path / "hist"
    code = main(["sim", "history", "--out", str(out), "--days", "0.1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert ".csv: No space left on device; free space on that disk" in err, err
    assert [p for p in out.rglob("*") if p.is_file()] == []
