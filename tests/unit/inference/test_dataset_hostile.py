"""Dataset and label CSVs a user hands to `model train` / `import l4e`: hostile cases.

A timestamp nanoseconds cannot hold (year 9999, year 1) is an unsupported timestamp like
any other unreadable one (counted, its row left out), not a pandas OutOfBoundsDatetime
ending the command as an internal error. A FIFO or a device where a CSV is expected is
discarded with its reason instead of blocking the reader or reading without end, and a
reader's error is one line.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_inference_dataset import PATTERNS

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


# Timestamps (l4e-contracts §1.2 Choice): every listed pattern, fractional seconds of 1-9
# digits, an optional Z/±HH:MM zone and M/d/yyyy H:mm[:ss]; anything else unsupported.

LISTED = {
    **PATTERNS,
    "M/d/yyyy H:mm": "{month}/{day}/%Y {hour}:%M",
    "M/d/yyyy H:mm:ss": "{month}/{day}/%Y {hour}:%M:%S",
}
ALSO = {  # the listed separators in every combination, as the reader has always taken them
    f"yyyy{s}MM{s}dd{t}HH{c}mm{end}"
    for s in "-/ "
    for t in ("'T'", " ", "-")
    for c in ":-"
    for end in ("", f"{c}ss")
} | {
    f"yyyyMMdd{t}HH{c}mm{end}"
    for t in ("'T'", " ", "")
    for c in (":", "")
    for end in ("", f"{c}ss")
}
LISTED |= {
    pattern: pattern.replace("'T'", "T")
    .replace("yyyy", "%Y")
    .replace("MM", "%m")
    .replace("dd", "%d")
    .replace("HH", "%H")
    .replace("mm", "%M")
    .replace("ss", "%S")
    for pattern in sorted(ALSO - set(LISTED))
}
WITH_SECONDS = sorted(p for p in LISTED if p.endswith("ss"))
ZONES = {"": 0, "Z": 0, "+00:00": 0, "-00:00": 0, "+05:30": 330, "-11:45": -705, "+23:59": 1439}


def _render(at: datetime, pattern: str) -> str:
    form = LISTED[pattern].format(month=at.month, day=at.day, hour=at.hour)
    return at.strftime(form)


@st.composite
def accepted(draw: st.DrawFn) -> tuple[str, pd.Timestamp]:
    """A timestamp in an accepted form, and the UTC instant it names."""
    at = draw(st.datetimes(min_value=datetime(1678, 1, 2), max_value=datetime(2261, 12, 30)))
    at = at.replace(microsecond=0)
    pattern = draw(st.sampled_from(sorted(LISTED)))
    text = _render(at, pattern)
    instant = pd.Timestamp(at.replace(second=at.second if pattern in WITH_SECONDS else 0))
    if pattern in WITH_SECONDS and draw(st.booleans()):
        digits = draw(st.integers(1, 9))
        fraction = f"{draw(st.integers(0, 10**9 - 1)):09d}"[:digits]
        text += "." + fraction
        instant += pd.Timedelta(int(fraction.ljust(9, "0")), "ns")
    zone = draw(st.sampled_from(sorted(ZONES)))
    instant -= pd.Timedelta(minutes=ZONES[zone])
    return text + zone, instant.tz_localize("UTC")


NEAR_MISSES = [
    "",
    " ",
    "nan",
    "NaN",
    "None",
    "NaT",
    "0",
    "1652444100",
    "1652444100.5",
    "20220513",
    "2022-05-13",
    "2022-05-13T12",
    "2022-05-13T12:00:00.",
    "2022-05-13T12:00:00.1234567891",
    "2022-05-13t12:00:00",
    "2022-05-13T12:00:00z",
    "2022-05-13T12:00:00+0530",
    "2022-05-13T12:00:00+05",
    "2022-05-13T12:00:00 +05:30",
    "2022-05-13T12:00:00UTC",
    "2022-05-13T1:00:00",
    "2022-5-13T12:00:00",
    "2022-05-3 12:00:00",
    "22-05-13 12:00:00",
    "+2022-05-13T12:00:00",
    "02022-05-13T12:00:00",
    "2022-05-13\u00a012:00:00",
    "\uff12\uff10\uff12\uff12-05-13 12:00:00",
    "\u0662\u0660\u0662\u0662-05-13 12:00:00",
    "2022-05-13 24:00:00",
    "2022-05-13 12:60:00",
    "2022-05-13 12:00:60",
    "2022-05-13T23:59:60Z",
    "20220513240000",
    "202205131260",
    "2022-05-13-24-00-00",
    "2022 05 13 24:00",
    "5/13/2022 24:00",
    "5/13/2022 25:10",
    "5/13/2022 12:60",
    "5/13/2022 012:00",
    "13/5/2022 12:00",
    "0/13/2022 12:00",
    "2022-13-01 00:00:00",
    "2022-00-10 00:00:00",
    "2022-01-32 00:00:00",
    "2022-01-00 00:00:00",
    "2022-02-29 00:00:00",
    "2022-02-30T00:00:00",
    "2022-05-13T12:00:00+24:00",
    "2022-05-13T12:00:00-24:00",
    "2022-05-13T12:00:00-99:99",
    "2022-05-13T12:00:00+05:60",
    "1677-12-31T23:59:59",
    "1677-09-22T00:00:00",
    "2262-01-01T00:00:00",
    "2262-04-11T23:47:16.854775807",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59",
    # separators that differ within the date or the clock, or doubled
    "2022-05/13 12:00:00",
    "2022/05-13 12:00",
    "2022-05-13 12:00-00",
    "2022-05-13 12-00:00",
    "20220513T12:0000",
    "20220513-12:00",
    "2022-05-13  12:00:00",
    "2022-05-13\t12:00:00",
    # a fraction of a second with no seconds
    "2022-05-13 12:00.5",
    "2022-05-13T12:00.000000",
    "2022/05/13 12:00.123456789Z",
    "202205131200.5",
    "5/13/2022 12:00.5",
]
FIRST_ROWS = [
    "2022-05-13 12:00:00",
    "2022-05-13T12:00:00",
    "2022-05-13T12:00:00.5",
    "2022-05-13T12:00:00.000000",
    "2022-05-13T12:00:00Z",
    "2022-05-13T12:00:00.123+01:00",
    "20220513120000",
    "5/13/2022 12:00",
]


def _same(a: object, b: object) -> bool:
    return (pd.isna(a) and pd.isna(b)) or a == b


@pytest.mark.parametrize("stamp", NEAR_MISSES)
def test_a_near_miss_is_unsupported_wherever_it_falls_in_a_column(stamp: str) -> None:
    # a row's reading does not depend on the layout of the row before it
    for first in FIRST_ROWS:
        parsed = parse_timestamps([first, stamp, first])
        assert pd.isna(parsed[1]), (first, stamp, parsed[1])
        assert not parsed[[0, 2]].isna().any()
    assert pd.isna(parse_timestamps([stamp])[0])


@pytest.mark.parametrize(
    "stamp",
    [
        "2022-05-13 24:00:00",
        "2022-05-13 12:60:00",
        "2022-05-13 12:00:60",
        "5/13/2022 25:10",
        "2022-13-01 00:00:00",
        "2022-01-32 00:00:00",
        "2022-02-30 00:00:00",
        "2022-05-13T12:00:00+24:00",
        "2022-05-13T12:00:00-99:99",
        "2022-05-13T12:00:00+05:60",
    ],
)
def test_out_of_range_fields_and_zones_are_counted_unsupported_not_rolled_over(
    stamp: str,
) -> None:
    body = f"{HEADER}2022-05-13 12:00:00,1,2\n{stamp},3,4\n".encode()
    parsed = read_csv(body, "pump-01.csv")
    assert parsed.unsupported_timestamps == 1
    assert list(parsed.frame["flow"]) == [1.0]


def test_the_widest_zones_and_the_year_bounds_are_read_exactly() -> None:
    stamps = [
        "2022-05-13T12:00:00+23:59",
        "2022-05-13T12:00:00-23:59",
        "1678-01-01T00:00:00",
        "1678-01-01T00:00:00+23:59",
        "2261-12-31T23:59:59.999999999",
        "2261-12-31T23:59:59.999999999-23:59",
    ]
    expected = [
        pd.Timestamp("2022-05-12 12:01:00", tz="UTC"),
        pd.Timestamp("2022-05-14 11:59:00", tz="UTC"),
        pd.Timestamp("1678-01-01", tz="UTC"),
        pd.Timestamp("1677-12-31 00:01", tz="UTC"),
        pd.Timestamp("2261-12-31 23:59:59.999999999", tz="UTC"),
        pd.Timestamp("2262-01-01 23:58:59.999999999", tz="UTC"),
    ]
    for order in (stamps, stamps[::-1]):
        assert [parse_timestamps([s])[0] for s in order] == [
            expected[stamps.index(s)] for s in order
        ]
        assert list(parse_timestamps(order)) == [expected[stamps.index(s)] for s in order]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(accepted(), st.sampled_from(NEAR_MISSES)), min_size=1, max_size=8))
def test_each_row_reads_as_it_would_alone_whatever_comes_first(
    rows: list[tuple[str, pd.Timestamp] | str],
) -> None:
    column = [row[0] if isinstance(row, tuple) else row for row in rows]
    parsed = parse_timestamps(column)
    for i, row in enumerate(rows):
        alone = parse_timestamps([column[i]])[0]
        assert _same(parsed[i], alone), (column, i)
        assert _same(alone, row[1] if isinstance(row, tuple) else pd.NaT), column[i]


@settings(max_examples=100, deadline=None)
@given(accepted(), st.sampled_from(["", " ", "  ", "\t"]), st.sampled_from(["", " ", "\t"]))
def test_an_accepted_timestamp_padded_with_blanks_reads_the_same(
    row: tuple[str, pd.Timestamp], before: str, after: str
) -> None:
    text, instant = row
    padded = before + text + after
    assert parse_timestamps([padded])[0] == instant == reference(padded)
    assert list(parse_timestamps([text, padded, text])) == [instant] * 3


@pytest.mark.parametrize(
    "values",
    [
        [None, "2022-05-13 12:00:00"],
        [float("nan"), "2022-05-13 12:00:00"],
        pd.Series([pd.NA, "2022-05-13 12:00:00"], dtype="string"),
        pd.Series([None, "2022-05-13 12:00:00"], dtype=object),
        ["\udcff2022-05-13 12:00:00", "2022-05-13 12:00:00"],  # bytes not UTF-8, from argv
    ],
)
def test_a_missing_or_unencodable_value_is_unsupported_not_a_crash(values: object) -> None:
    parsed = parse_timestamps(values)  # type: ignore[arg-type]
    assert pd.isna(parsed[0])
    assert parsed[1] == pd.Timestamp("2022-05-13 12:00", tz="UTC")


def test_a_time_option_not_utf8_is_a_user_error() -> None:
    from cloud.cli.times import parse_time_option

    with pytest.raises(UserError, match="--from"):
        parse_time_option("2022-05-13\udcff", "from")


def _java_regex(pattern: str) -> str:
    """A listed pattern (Java letters) as a regular expression of ASCII digits."""
    fields = {"yyyy": r"(?P<y>[0-9]{4})", "MM": r"(?P<mo>[0-9]{2})", "dd": r"(?P<d>[0-9]{2})"}
    fields |= {"HH": r"(?P<h>[0-9]{2})", "mm": r"(?P<mi>[0-9]{2})", "ss": r"(?P<s>[0-9]{2})"}
    fields |= {"M": r"(?P<mo>[0-9]{1,2})", "d": r"(?P<d>[0-9]{1,2})", "H": r"(?P<h>[0-9]{1,2})"}
    tokens = re.findall(r"yyyy|MM|dd|HH|mm|ss|M|d|H|'T'|.", pattern)
    return "".join(fields.get(t, "T" if t == "'T'" else re.escape(t)) for t in tokens)


def reference(text: str) -> pd.Timestamp:
    """§1.2 Choice read literally: a listed pattern, a fraction after its seconds, a zone;
    NaT unless the fields name a real instant in the years nanoseconds hold."""
    for pattern in LISTED:
        seconds = r"(?:\.(?P<f>[0-9]{1,9}))?" if pattern in WITH_SECONDS else ""
        zone = r"(?P<z>Z|(?P<zs>[+-])(?P<zh>[0-9]{2}):(?P<zm>[0-9]{2}))?"
        found = re.fullmatch(_java_regex(pattern) + seconds + zone, text.strip(" \t\n\r\f\v"))
        if found is None:
            continue
        g = {k: v for k, v in found.groupdict().items() if v is not None}
        if not 1678 <= int(g["y"]) <= 2261 or int(g.get("zh", 0)) > 23 or int(g.get("zm", 0)) > 59:
            return pd.NaT
        try:
            at = datetime(*(int(g.get(k, 0)) for k in ("y", "mo", "d", "h", "mi", "s")))
        except ValueError:
            return pd.NaT
        offset = pd.Timedelta(hours=int(g.get("zh", 0)), minutes=int(g.get("zm", 0)))
        fraction = pd.Timedelta(int(g.get("f", "").ljust(9, "0")), "ns")
        return pd.Timestamp(at, tz="UTC") + fraction - offset * (-1 if g.get("zs") == "-" else 1)
    return pd.NaT


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """An accepted timestamp with a few characters replaced, inserted or removed."""
    text = list(draw(accepted())[0])
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from(list("0123456789-/: T.Z+t\t\u00a0\uff11")))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        if action == "insert" or at == len(text):
            text.insert(at, char)
        elif action == "replace":
            text[at] = char
        else:
            del text[at]
    return "".join(text)


@settings(max_examples=300, deadline=None)
@given(mutated(), st.sampled_from(FIRST_ROWS))
def test_a_mutated_timestamp_reads_as_the_contract_says_alone_and_in_a_column(
    text: str, first: str
) -> None:
    expected = reference(text)
    assert _same(parse_timestamps([text])[0], expected), text
    assert _same(parse_timestamps([first, text])[1], expected), (first, text)


@pytest.mark.parametrize(
    "stamp", ["2026-01-01 24:00:00", "2026-01-01T12:00:60", "2026-01-01T00:00:00+24:00"]
)
def test_a_label_past_the_clock_or_zone_names_its_line_not_the_next_day(
    stamp: str, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(f"2025-12-31T00:00:00,2026-01-01T00:00:00\n2026-01-01T00:00:00,{stamp}\n")
    with pytest.raises(UserError, match=r"labels.csv: line 2: .*expected a supported timestamp"):
        load_labels(labels)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(1678, 1, 2), max_value=datetime(2261, 12, 30)),
            st.integers(0, 10**9 - 1),
        ),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from(["T", " "]),
    st.integers(0, 9),
    st.sampled_from(sorted(ZONES)),
)
def test_a_column_in_one_iso_layout_reads_every_row_exactly(
    moments: list[tuple[datetime, int]], sep: str, digits: int, zone: str
) -> None:
    # the one-call path: every row in the first row's layout, fraction digits and zone
    column, expected = [], []
    for at, nanos in moments:
        fraction = f"{nanos:09d}"[:digits]
        text = at.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (f".{fraction}" if digits else "")
        column.append(text + zone)
        instant = pd.Timestamp(at.replace(microsecond=0), tz="UTC")
        instant += pd.Timedelta(int(fraction.ljust(9, "0") if digits else 0), "ns")
        expected.append(instant - pd.Timedelta(minutes=ZONES[zone]))
    assert list(parse_timestamps(column)) == expected
    assert list(parse_timestamps(pd.Series(column, dtype="str"))) == expected
