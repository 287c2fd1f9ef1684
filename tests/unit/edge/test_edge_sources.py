"""Sources: L4E timestamp formats, CSV replay of an L4E dataset layout, plugin loading."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import ConfigError
from edge.sources import CsvReplaySource, load_plugin, parse_l4e_timestamp

T = 1_672_531_200_000  # 2023-01-01T00:00:00Z


@pytest.mark.parametrize(
    "text",
    [
        "2023-01-01 00:00:00",
        "2023-01-01T00:00:00",
        "2023-01-01-00-00-00",
        "2023-01-01-00:00:00",
        "2023/01/01 00:00:00",
        "20230101T00:00:00",
        "20230101000000",
        "2023 01 01 00:00:00",
        "2023-01-01T00:00:00.000000",
        "2023-01-01T00:00:00Z",
        "2023-01-01T01:00:00+01:00",
        "2023-01-01 00:00",
        "202301010000",
        "1/1/2023 0:00",
    ],
)
def test_every_l4e_timestamp_format(text: str) -> None:
    assert parse_l4e_timestamp(text) == T


@given(st.integers(0, 4_000_000_000), st.integers(0, 999))
def test_iso_with_milliseconds_round_trips(seconds: int, millis: int) -> None:
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(seconds, UTC)
    text = at.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}"
    assert parse_l4e_timestamp(text) == seconds * 1000 + millis


def dataset(root: Path) -> Path:
    pump = root / "pump"
    pump.mkdir(parents=True)
    (pump / "a.csv").write_text(
        "Timestamp,motor_current,flow\n2023-01-01 00:00:00,1.0,10\n2023-01-01 00:00:01,2.0,\n"
        "garbage,9,9\n2023-01-01 00:00:02,3.0,30\n"
    )
    (pump / "b.csv").write_text("Timestamp;Volume Flow;anomaly\n2023-01-01 00:00:01;5.5;0\n")
    (root / "fan").mkdir()
    (root / "fan" / "fan.csv").write_text("Timestamp,rpm\n2023-01-01 00:00:00,900\n")
    return root


def test_csv_replay_merges_component_files_and_paces_by_timestamp(tmp_path: Path) -> None:
    source = CsvReplaySource(
        dataset(tmp_path / "data"),
        ["pump-1", "fan"],
        asset_map={"pump": "pump-1"},
        exclude=["anomaly"],
    )
    first = source.poll(100.0)
    assert sorted(a for a, _ in first) == ["fan", "pump-1"]
    assert source.poll(100.5) == []
    second = source.poll(101.0)
    assert [(a, s.ts_ms, dict(s.values)) for a, s in second] == [
        ("pump-1", T + 1000, {"motor_current": 2.0, "flow": None, "Volume_Flow": 5.5})
    ]
    third = source.poll(110.0)
    assert [s.ts_ms for _a, s in third] == [T + 2000]  # the unparsable row was dropped
    assert source.done


def test_csv_replay_restamps_and_speeds_up(tmp_path: Path) -> None:
    source = CsvReplaySource(dataset(tmp_path / "data"), ["fan", "pump"], speed=10, restamp=True)
    source.poll(50.0)
    out = source.poll(50.2)  # 0.2 s at 10x = 2 s of data
    assert {s.ts_ms for _a, s in out} == {50_200}
    assert source.done


def test_csv_replay_with_no_matching_asset_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set asset_map"):
        CsvReplaySource(dataset(tmp_path / "data"), ["other"])


def test_plugin_factory_errors_name_the_factory() -> None:
    with pytest.raises(ConfigError, match=r"expected 'package\.module:function'"):
        load_plugin("nocolon", {}, ("a",))
    with pytest.raises(ConfigError, match="is not a function"):
        load_plugin("edge.sources:nothing_here", {}, ("a",))
    source = load_plugin("edge.bench:rate_source", {"rate": 10, "sensors": 2}, ("a",))
    source.poll(0.0)
    assert len(source.poll(1.0)) == 10


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'Timestamp,t\n2023-01-01T00:00:00,"' + b"1" * 200_000 + b'"\n', "not a readable CSV"),
        (b"Timestamp,t\n2023-01-01T00:00:00,\xff\xfe\n", "not a readable CSV"),
        (b"Timestamp,t,t\n2023-01-01T00:00:00,1,2\n", "column 't' appears twice"),
        (b"Timestamp,a b,a_b\n2023-01-01T00:00:00,1,2\n", "column 'a_b' appears twice"),
        (b"Timestamp,t\n2023-01-01T00:00:00,abc\n", r"x.csv:2: column 't': 'abc' is not a number"),
    ],
)
def test_a_csv_the_source_cannot_read_is_one_line_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    folder = tmp_path / "data" / "pump-1"
    folder.mkdir(parents=True)
    (folder / "x.csv").write_bytes(content)
    with pytest.raises(ConfigError, match=message) as info:
        CsvReplaySource(tmp_path / "data", ["pump-1"])
    assert "x.csv" in str(info.value) and "\n" not in str(info.value)


def test_csv_replay_goes_on_after_the_clock_steps_back(tmp_path: Path) -> None:
    source = CsvReplaySource(dataset(tmp_path / "data"), ["pump"])
    start = 1_700_000_000.0
    assert [s.ts_ms for _a, s in source.poll(start)] == [T]
    stepped = start - 3600  # NTP steps the clock back an hour
    assert source.poll(stepped) == []
    assert [s.ts_ms for _a, s in source.poll(stepped + 1.0)] == [T + 1000]
    assert [s.ts_ms for _a, s in source.poll(stepped + 2.0)] == [T + 2000]


def test_rows_skipped_for_their_timestamp_are_named_in_one_line_per_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """L4E skips a row whose timestamp it cannot parse, and so does the replay, but not
    silently: a file cut mid-line or hand-edited would otherwise lose rows unseen."""
    folder = tmp_path / "data" / "pump"
    folder.mkdir(parents=True)
    lines = ["Timestamp,t", "2023-01-01 00:00:00,1"]
    lines += [f"bad-{i},{i}" for i in range(500)]
    lines += ["2023-01-01 00:00:01,2", "2023-01-01 00:0"]  # the last line cut short
    (folder / "x.csv").write_text("\n".join(lines) + "\n")
    caplog.set_level("WARNING", logger="edge.sources")
    source = CsvReplaySource(tmp_path / "data", ["pump"])
    assert [s.ts_ms for _a, s in source.poll(100.0)] == [T]
    warned = [r.getMessage() for r in caplog.records if "x.csv" in r.getMessage()]
    assert len(warned) == 1 and len(warned[0]) < 300, warned
    assert "501 rows skipped" in warned[0] and "line 3" in warned[0], warned
    assert "'bad-0'" in warned[0], warned


def test_a_repeated_timestamp_keeps_the_later_row_and_says_so_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """GIVEN a CSV with two rows for one instant (a logger that wrote a row twice)
    WHEN the replay reads it
    THEN one reading leaves for that instant, the later row's, as model training and the
    cloud read the same file (L4E counts such rows as DuplicateTimestamps; a message's
    samples sharing a ts are one reading, the later value winning), and one line names the
    file, how many rows were replaced and where the first one was: the earlier row used to
    be overwritten without a word."""
    folder = tmp_path / "data" / "pump"
    folder.mkdir(parents=True)
    lines = ["Timestamp,t,p", "2023-01-01 00:00:00,1,10", "2023-01-01 00:00:01,2,20"]
    lines += ["2023-01-01 00:00:00,3,", "2023-01-01T00:00:01Z,4,40"]  # the same two instants
    (folder / "x.csv").write_text("\n".join(lines) + "\n")
    caplog.set_level("WARNING", logger="edge.sources")
    source = CsvReplaySource(tmp_path / "data", ["pump"])
    assert [(s.ts_ms, dict(s.values)) for _a, s in source.poll(100.0)] == [
        (T, {"t": 3.0, "p": None})  # the whole later row: its blank is a gap, as in training
    ]
    assert [(s.ts_ms, dict(s.values)) for _a, s in source.poll(101.0)] == [
        (T + 1000, {"t": 4.0, "p": 40.0})
    ]
    warned = [r.getMessage() for r in caplog.records if "x.csv" in r.getMessage()]
    assert len(warned) == 1 and len(warned[0]) < 300, warned
    assert "2 rows" in warned[0] and "line 4" in warned[0] and "line 2" in warned[0], warned


def test_one_sensor_at_one_instant_in_two_files_keeps_the_later_file_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """GIVEN a component whose two files both hold sensor t at one instant
    WHEN the replay merges them
    THEN the file later by name gives the value (a blank there leaves the earlier file's
    value), as training merges a component's files, and one line names both files and the
    count: the earlier value used to be replaced, even by a blank, without a word."""
    folder = tmp_path / "data" / "pump"
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text("Timestamp,t,p\n2023-01-01 00:00:00,1,10\n")
    (folder / "b.csv").write_text("Timestamp,t,p,q\n2023-01-01 00:00:00,2,,7\n")
    caplog.set_level("WARNING", logger="edge.sources")
    source = CsvReplaySource(tmp_path / "data", ["pump"])
    assert [dict(s.values) for _a, s in source.poll(100.0)] == [{"t": 2.0, "p": 10.0, "q": 7.0}]
    warned = [r.getMessage() for r in caplog.records if "b.csv" in r.getMessage()]
    assert len(warned) == 1 and "a.csv" in warned[0] and "1 reading" in warned[0], warned


_CELL = st.one_of(st.none(), st.integers(-1000, 1000).map(float))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 5), _CELL, _CELL), min_size=1, max_size=12))
def test_the_replay_sends_what_training_reads_from_a_file_with_repeated_timestamps(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[int, float | None, float | None]]
) -> None:
    """Whatever rows repeat an instant, the readings the replay sends are the rows model
    training reads from the same file (``cloud.inference.dataset.read_csv``), and the count
    the replay reports is the DuplicateTimestamps training reports."""
    import logging

    from cloud.inference.dataset import read_csv

    folder = tmp_path_factory.mktemp("data") / "pump"
    folder.mkdir()
    text = "Timestamp,t,p\n" + "".join(
        f"2023-01-01 00:00:0{s},{'' if a is None else a},{'' if b is None else b}\n"
        for s, a, b in rows
    )
    (folder / "x.csv").write_text(text)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("edge.sources").addHandler(handler)
    try:
        source = CsvReplaySource(folder.parent, ["pump"])
    finally:
        logging.getLogger("edge.sources").removeHandler(handler)
    polled = source.poll(0.0) + source.poll(1e9)  # the first poll releases the first instant
    sent = {s.ts_ms: dict(s.values) for _a, s in polled}
    parsed = read_csv(folder / "x.csv", "x.csv")
    trained = {
        int(at.timestamp() * 1000): {k: (None if v != v else v) for k, v in row.items()}
        for at, row in parsed.frame.to_dict("index").items()
    }
    assert sent == trained
    said = [r.getMessage() for r in records if "repeat" in r.getMessage()]
    if parsed.duplicate_timestamps:
        assert len(said) == 1 and f"{parsed.duplicate_timestamps} row" in said[0], said
    else:
        assert not said, said
