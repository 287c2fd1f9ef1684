"""The one output style: plain text when piped (never wrapped, never cut), progress on stderr."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.cli.output import (
    Column,
    print_fields,
    print_json,
    print_report,
    print_table,
    progress,
)

_cell_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=60
).filter(lambda t: t.strip() == t)


@given(st.lists(st.tuples(_cell_text, _cell_text), min_size=1, max_size=8))
def test_piped_table_keeps_every_cell_whole_on_one_line(rows: list[tuple[str, str]]) -> None:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        print_table(
            [{"a": a, "b": b} for a, b in rows], [Column("asset", "a"), Column("subject", "b")]
        )
    lines = buffer.getvalue().splitlines()
    assert lines[0].split() == ["asset", "subject"]
    assert len(lines) == len(rows) + 1
    for line, (a, b) in zip(lines[1:], rows, strict=True):
        assert line.startswith(a)
        assert line.endswith(b)


def test_empty_table_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    print_table([], ["x"], empty="no models found")
    assert capsys.readouterr().out == "no models found\n"


def test_fields_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    print_fields({"name": "pump", "versions": [1, 2]})
    print_json({"a": 1})
    out = capsys.readouterr().out
    assert out.startswith("name      pump\nversions  [1,2]\n")
    assert json.loads(out[out.index("{") :]) == {"a": 1}


def test_report_shows_every_figure_under_its_json_name(capsys: pytest.CaptureFixture[str]) -> None:
    document = {"msgs_per_s": 4886.0, "baseline": {"msgs_per_s": 7000.0, "ratio": 0.7}, "x": None}
    print_report(document, as_json=False)
    assert capsys.readouterr().out.splitlines() == [
        "msgs_per_s           4886",
        "baseline.msgs_per_s  7000",
        "baseline.ratio       0.7",
        "x                    -",
    ]
    print_report(document, as_json=True)
    assert json.loads(capsys.readouterr().out) == document


def test_progress_piped_prints_sparse_lines(capsys: pytest.CaptureFixture[str]) -> None:
    with progress(1000, "scoring", interval_s=3600, after_s=0) as bar:
        for _ in range(1000):
            bar.advance()
        bar.stage("writing results", total=2)
        bar.advance()
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("scoring [")
    assert lines[1].startswith("writing results [")
    assert lines[2].startswith("writing results done 1/2 (50%) [")


def test_progress_piped_keeps_a_phase_with_a_line_break_on_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress(2, "reading odd\nname.csv", interval_s=3600, after_s=0) as bar:
        bar.stage("writing\r\nresults")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("reading odd\\nname.csv [")
    assert lines[1].startswith("writing\\r\\nresults [")


def test_progress_piped_reports_counts_once_per_interval(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress(4, "reading files", interval_s=0.0, after_s=0) as bar:
        bar.advance()
        bar.advance()
    lines = capsys.readouterr().err.splitlines()
    assert lines[1].startswith("reading files 1/4 (25%)")
    assert lines[2].startswith("reading files 2/4 (50%)")
    assert lines[-1].startswith("reading files done 2/4 (50%)")


def test_quick_or_failed_work_prints_nothing_when_piped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress(3, "loading"):
        pass
    with pytest.raises(ValueError), progress(3, "loading", after_s=0) as bar:
        bar.stage("training")
        raise ValueError("bad input")
    err = capsys.readouterr().err.splitlines()
    assert not any("done" in line for line in err)
    assert len(err) == 2  # the start and the stage of the second, never "done"


def test_a_long_phase_announces_itself_once_when_piped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress(None, "training", after_s=0.05):
        time.sleep(0.5)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("training [")
    assert err[1].startswith("training done [")
    assert len(err) == 2


def test_progress_draws_a_bar_only_on_a_terminal() -> None:
    """On a pseudo-terminal stderr gets rich's bar (cursor control codes), stdout nothing."""
    code = (
        "import time\n"
        "from cloud.cli.output import progress\n"
        "with progress(3, 'training') as bar:\n"
        "    for _ in range(3):\n"
        "        time.sleep(0.05); bar.advance()\n"
    )
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    stdout, _ = proc.communicate(timeout=30)
    os.close(leader)
    drawn = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert stdout == b""
    assert "training" in drawn and "3/3" in drawn
    assert "\x1b[" in drawn


def test_progress_counts_read_as_numbers_not_exponents(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``sim history`` of a year printed ``417792/1.5768e+06``; counts keep every digit."""
    with progress(1_576_800, "rows", interval_s=0.0, after_s=0) as bar:
        bar.advance(417_792)
    lines = capsys.readouterr().err.splitlines()
    assert lines[1].startswith("rows 417,792/1,576,800 (26%)")
    assert lines[-1].startswith("rows done 417,792/1,576,800 (26%)")
