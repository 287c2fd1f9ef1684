"""The vectorised CSV reader against the cell-by-cell reader it replaced: same frame, same
counts of unsupported timestamps, duplicates and invalid values, the same invalid cells
kept (so the same missing values), for any mix of cells (infinite readings, such as
``inf`` or ``1e400``, count as invalid values)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.inference.dataset import (
    BLANKS,
    CsvFrame,
    merge,
    missing_values,
    parse_timestamps,
    read_csv,
)
from edge.errors import UserError


def reference_read_csv(body: bytes, name: str) -> CsvFrame:
    """The reader as it was: every cell read as text, then converted column by column;
    and a first data row wider than the header refused (pandas would take its first
    cell as a row label)."""
    rows = [(n, line.split(",")) for n, line in enumerate(body.decode().split("\n"), 1) if line]
    if len(rows) > 1 and len(rows[1][1]) > len(rows[0][1]):
        (line, cells), width = rows[1], len(rows[0][1])
        raise UserError(
            f"{name}: line {line}: {len(cells)} cells and the header has {width}; "
            "expected one cell per header column"
        )
    try:
        raw = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{name}: not a readable CSV ({exc})") from None
    if raw.shape[1] < 2:
        raise UserError(f"{name}: expected a timestamp column and at least one sensor column")
    raw.columns = [str(c).strip() for c in raw.columns]
    stamps = parse_timestamps(raw.iloc[:, 0])
    good = ~stamps.isna()
    values = raw.iloc[:, 1:][good]
    numeric = values.apply(pd.to_numeric, errors="coerce").astype(float)
    numeric = numeric.mask(np.isinf(numeric))  # an infinite reading is invalid, not a number
    blank = values.apply(lambda col: col.str.strip().isin(list(BLANKS))).astype(bool)
    bad = numeric.isna() & ~blank
    invalid = bad.sum()
    frame = numeric.astype(float)
    frame.index = stamps[good]
    frame.index.name = "Timestamp"
    kept = ~frame.index.duplicated(keep="last")
    duplicates = int((~kept).sum())
    invalid_at = {
        str(c): frame.index[kept & bad[c].to_numpy()] for c in bad.columns if bad[c][kept].any()
    }
    frame = frame[kept].sort_index()
    return CsvFrame(
        frame,
        int((~good).sum()),
        duplicates,
        {str(k): int(v) for k, v in invalid.items() if v},
        invalid_at=invalid_at,
    )


NUMBERS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.floats(-1e3, 1e3).map(lambda v: f"{v:.3f}"),
)
ODD = st.sampled_from(
    [
        *BLANKS,
        " nan",
        "nan ",
        "  ",
        " 1.5",
        "2.5 ",
        "inf",
        "-inf",
        "Infinity",
        "NA",
        "N/A",
        "None",
        "True",
        "False",
        "true",
        "-0",
        "+1",
        "1e5",
        "1E-3",
        ".5",
        "5.",
        "0x10",
        "1_000",
        "-",
        "abc",
        "1.0e",
        "00012",
        "1d5",
        "18446744073709551616",
    ]
)
CELLS = st.one_of(NUMBERS, NUMBERS, ODD)
STAMPS = st.one_of(
    st.integers(0, 40).map(lambda m: f"2026-01-01T00:{m:02d}:00"),
    st.integers(0, 40).map(lambda m: f"2026-01-01 00:{m:02d}:00.000000"),
    st.sampled_from(["", "bad", "nan", "2026-13-01T00:00:00"]),
)


@st.composite
def csv_bodies(draw: st.DrawFn) -> bytes:
    width = draw(st.integers(1, 4))
    column_kinds = draw(st.lists(st.sampled_from(["numbers", "mixed"]), min_size=width))
    rows = draw(st.integers(0, 25))
    ragged = draw(st.booleans()) and draw(st.booleans())
    header = ["Timestamp"] + [f" s{i} " if i == 0 else f"s{i}" for i in range(width)]
    lines = [",".join(header)]
    for _ in range(rows):
        cells = [draw(STAMPS)]
        for kind in column_kinds[:width]:
            cells.append(draw(NUMBERS if kind == "numbers" else CELLS))
        if ragged and draw(st.integers(0, 9)) == 0:
            cells = cells[:-1] if draw(st.booleans()) else [*cells, "1"]
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def _same(new: CsvFrame, old: CsvFrame) -> None:
    pd.testing.assert_frame_equal(new.frame, old.frame, check_freq=False, check_dtype=True)
    assert new.unsupported_timestamps == old.unsupported_timestamps
    assert new.duplicate_timestamps == old.duplicate_timestamps
    assert new.invalid_values == old.invalid_values
    assert new.invalid_at.keys() == old.invalid_at.keys()
    for sensor, at in old.invalid_at.items():
        assert sorted(new.invalid_at[sensor]) == sorted(at)
        assert 0 <= missing_values(new, sensor) == missing_values(old, sensor)


@settings(max_examples=150, deadline=None)
@given(csv_bodies(), st.integers(1, 30))
def test_reader_matches_the_cell_by_cell_reader(body: bytes, chunk_rows: int) -> None:
    try:
        old = reference_read_csv(body, "x.csv")
    except UserError as exc:
        with pytest.raises(UserError) as raised:
            read_csv(body, "x.csv", chunk_rows=chunk_rows)
        assert str(raised.value).split(" (")[0] == str(exc).split(" (")[0]
        return
    _same(read_csv(body, "x.csv", chunk_rows=chunk_rows), old)


def test_reader_reads_a_path_and_keeps_bad_cells_counted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    body = b"Timestamp,a,b\n2026-01-01T00:00:00,1,x\n2026-01-01T00:01:00, nan,2\n"
    path = tmp_path / "c.csv"
    path.write_bytes(body)
    parsed = read_csv(path, str(path))
    _same(parsed, reference_read_csv(body, "c.csv"))
    assert parsed.invalid_values == {"b": 1}
    assert np.isnan(parsed.frame["a"].iloc[1])


def _combine_first(frames: list[pd.DataFrame]) -> pd.DataFrame:
    result = frames[0]
    order = list(result.columns)
    for frame in frames[1:]:
        order += [c for c in frame.columns if c not in order]
        result = frame.combine_first(result)
    return result[order]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(0, 30), min_size=1, max_size=12, unique=True),
            st.lists(st.sampled_from("abcd"), min_size=1, max_size=3, unique=True),
        ),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
def test_merge_is_an_outer_join_where_later_frames_win(
    specs: list[tuple[list[int], list[str]]], same_rows: bool
) -> None:
    rng = np.random.default_rng(len(specs))
    frames = []
    for k, (minutes, names) in enumerate(specs):
        chosen = specs[0][0] if same_rows else minutes
        index = pd.DatetimeIndex(
            [pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=m) for m in sorted(chosen)]
        )
        values = rng.normal(size=(len(index), len(names)))
        values[rng.random(values.shape) < 0.2] = np.nan
        frames.append(pd.DataFrame(values, index=index, columns=[f"{n}{k % 2}" for n in names]))
    expected = _combine_first(frames)
    pd.testing.assert_frame_equal(merge(frames), expected, check_freq=False)


HOSTILE = st.sampled_from(
    [",", ";", "\t", '"', "'", "\r", "\n", "\r\n", "\ufeff", "\x00", "é", " ", "\\", "#"]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(HOSTILE, STAMPS, CELLS, st.just("Timestamp"), st.just("flow")), max_size=40),
    st.booleans(),
)
def test_any_text_reads_or_is_refused_with_a_user_error(parts: list[str], bom: bool) -> None:
    # Hostile inputs at the L4E boundary (BOM, CR/LF, quotes, NUL, a timestamp in any
    # column): a CsvFrame or one UserError, never another exception
    body = ("\ufeff" if bom else "") + "".join(parts)
    try:
        read_csv(body.encode(), "x.csv")
    except UserError as exc:
        assert str(exc).startswith("x.csv: ") and "\n" not in str(exc)  # one line


@settings(max_examples=60, deadline=None)
@given(csv_bodies(), st.data())
def test_a_timestamp_column_moved_off_the_front_is_refused_naming_it(
    body: bytes, data: st.DataObject
) -> None:
    lines = body.decode().splitlines()
    width = len(lines[0].split(","))
    if len(lines) < 2 or width < 2 or len(lines[1].split(",")) != width:
        return
    first = lines[1].split(",")[0]
    if pd.isna(parse_timestamps([first])[0]):
        return  # the first row has no timestamp to find elsewhere
    to = data.draw(st.integers(1, width - 1))

    def moved(line: str) -> str:
        cells = line.split(",")
        return ",".join([*cells[1 : to + 1], cells[0], *cells[to + 1 :]])

    with pytest.raises(UserError, match=rf"column {to + 1}: 'Timestamp' holds the timestamps"):
        read_csv(("\n".join(moved(x) for x in lines) + "\n").encode(), "x.csv")
