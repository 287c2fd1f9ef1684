"""The CLI shell: version, usage errors and error-to-exit-code mapping."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cloud.cli.main import main


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cloud.cli.main", *args], capture_output=True, text=True, timeout=60
    )


def test_version() -> None:
    proc = _run("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("plantwatch ")


def test_unknown_command_is_usage_error() -> None:
    proc = _run("frobnicate")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_an_unexpected_error_is_one_line_unless_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug still reaches the user as one line (exit 1); --debug shows the traceback."""
    import cloud.cli.executions

    def broken(_args: object) -> int:
        raise KeyError("oops")

    monkeypatch.setattr(cloud.cli.executions, "run", broken)
    assert main(["executions"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "plantwatch: error: internal error: KeyError: 'oops' "
        "(run again with --debug for the traceback)"
    ]
    with pytest.raises(KeyError):
        main(["--debug", "executions"])
