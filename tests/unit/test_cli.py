"""The CLI shell: version, usage errors and error-to-exit-code mapping."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest

from cloud.cli import output
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


def test_running_out_of_memory_is_one_line_naming_it_unless_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    """Sizes beyond the machine are not a bug: the line says so and what numpy asked for."""
    import simulator.skab

    def too_big(*_args: object, **_kwargs: object) -> list:
        raise MemoryError("Unable to allocate 74.5 GiB for an array")

    monkeypatch.setattr(simulator.skab, "write", too_big)
    # the refusal comes inside the command's progress: on a loaded machine past its 2 s
    monkeypatch.setattr(output, "progress", functools.partial(output.progress, after_s=3600))
    assert main(["sim", "skab", "--out", str(tmp_path / "s")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "plantwatch: error: not enough memory: Unable to allocate 74.5 GiB for an array; "
        "try smaller sizes (run again with --debug for the traceback)"
    ]
    with pytest.raises(MemoryError):
        main(["--debug", "sim", "skab", "--out", str(tmp_path / "s")])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sim", "history", "--rate", "0.5ms", "--out", "x"], "a period of at least 1ms"),
        (["sim", "fleet", "--rate", "0.1ms"], "a period of at least 1ms"),
        (["bench", "latency", "--rate", "1e9"], "at most 1000/s"),
        (["bench", "skab", "--dataset", "x", "--window-s", "1e300"], "seconds above 0"),
        (["sim", "history", "--assets", "10001", "--out", "x"], "a whole number from 1 to 10000"),
        (["model", "train", "--dataset", "x", "--name", "m", "--smoothing", "1e23"], "to 100000"),
        # checked before the dataset is read: the name becomes a folder
        (["model", "train", "--dataset", "/nonexistent", "--name", "../x"], "a model name"),
        (["import", "l4e", "--input", "/nonexistent", "--train", "a/b"], "a model name"),
        (["model", "push", "m", "--aws", "--region", "eu west 1"], "an AWS Region"),
        (["provision-device", "t", "--site", "s1", "--region", "-1"], "an AWS Region"),
        (["shadow", "get", "t", "--aws", "--region", "EU-WEST-1"], "an AWS Region"),
    ],
)
def test_sizes_beyond_what_the_command_can_do_exit_2_before_any_work(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """These ran into internal errors (ZeroDivisionError for a period under the wire's 1 ms,
    pandas' Timedelta bound, OverflowError, botocore's InvalidRegionError), ran until memory
    ran out (10^23 assets), or failed only after training (a model name with a slash)."""
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("plantwatch: error: argument --")
    assert message in err[0]
