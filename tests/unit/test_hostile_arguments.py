"""Hostile values for time options: exit 2 with one line naming the option, never an
internal error. A date such as 2026-13-45 used to escape pandas as DateParseError, and
a `sim history --start` before 1970 made the day seeding raise ValueError.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.cli.main import main
from cloud.cli.times import parse_time_option
from edge.errors import UserError

BAD_DATES = ["2026-13-45", "2026-02-30", "0000-01-01"]


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _time_commands(data: Path, value: str) -> dict[str, list[str]]:
    return {
        "executions --data-start-after": [
            "executions",
            "--data-start-after",
            value,
            "--data",
            str(data),
        ],
        "export --from": [
            "export",
            *("--asset", "a", "--from", value, "--to", "2026-01-01", "--data", str(data)),
        ],
    }


@pytest.mark.parametrize("value", BAD_DATES)
@pytest.mark.parametrize("command", ["executions --data-start-after", "export --from"])
def test_an_impossible_date_exits_2_naming_the_option(
    command: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data").mkdir()
    code = _run(_time_commands(tmp_path / "data", value)[command])
    err = capsys.readouterr().err.splitlines()
    assert code == 2, err
    option = command.split()[-1]
    assert len(err) == 1 and err[0].startswith(f"plantwatch: error: {option} {value!r}: expected")


@pytest.mark.parametrize("value", BAD_DATES)
def test_the_shared_time_option_parser_names_an_impossible_date(value: str) -> None:
    with pytest.raises(UserError, match=rf"^--start {value!r}: expected a date"):
        parse_time_option(value, "start")


@pytest.mark.parametrize(
    "start",
    ["0001-01-01T00:00:00Z", "1969-12-31T23:00:00Z", "1970-01-01T12:00:00Z", "9999-12-31T00:00:00"],
)
def test_sim_history_start_outside_its_range_exits_2(
    start: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(
        ["sim", "history", "--start", start, "--days", "0.01", "--out", str(tmp_path / "h")]
    )
    err = capsys.readouterr().err.splitlines()
    assert code == 2, err
    assert err == [
        f"plantwatch: error: --start: expected a time from 1970-01-02 to 2261-12-31, got {start!r}"
    ]
    assert not (tmp_path / "h").exists()


def test_sim_history_from_the_earliest_start_writes_rows(tmp_path: Path) -> None:
    argv = ["sim", "history", "--start", "1970-01-02T00:00:00Z", "--days", "0.01"]
    assert _run([*argv, "--assets", "1", "--out", str(tmp_path / "h")]) == 0
    (csv,) = (tmp_path / "h" / "data").rglob("*.csv")
    assert csv.read_text().splitlines()[1].startswith("1970-01-02T00:00:00")
