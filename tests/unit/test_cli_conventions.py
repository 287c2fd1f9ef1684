"""Every command and subcommand, discovered from ``COMMANDS``: help, bad numbers, bad paths.

The walk builds each command's real parser, so a command another change adds is covered
as soon as it is registered in ``cloud/cli/main.py``:

- ``--help`` exits 0 and every option (and subcommand) has help text and a description;
- an option with a default shows it in ``--help``;
- no option parses numbers with bare ``int``/``float``: the shared validators in
  ``edge.cliargs`` name the option and what was expected;
- a bad number for each validated option exits 2 with one stderr line naming the option;
- a bad path (under a regular file) exits 2 with one stderr line naming the path;
- nothing prints a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.cli.main import COMMANDS, build_parser, main
from edge.cliargs import SUBCOMMAND, has_shown_default

Leaf = tuple[tuple[str, ...], argparse.ArgumentParser]


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[Leaf]:
    yield path, parser
    for group in _subparsers(parser):
        for name, child in group.choices.items():
            yield from _walk(child, (*path, name))


def _all_parsers() -> list[Leaf]:
    found: list[Leaf] = []
    for name in COMMANDS:
        (group,) = _subparsers(build_parser(name))
        found.extend(_walk(group.choices[name], (name,)))
    return found


PARSERS = _all_parsers()
LEAVES = [(path, parser) for path, parser in PARSERS if not _subparsers(parser)]


def _id(path: tuple[str, ...]) -> str:
    return " ".join(path)


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def test_the_walk_finds_every_command() -> None:
    names = {path[0] for path, _ in PARSERS}
    assert names == set(COMMANDS)
    assert len(LEAVES) >= 40


@pytest.mark.parametrize(("path", "parser"), PARSERS, ids=[_id(p) for p, _ in PARSERS])
def test_help_exits_0(path: tuple[str, ...], parser, capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: plantwatch {' '.join(path)}")


@pytest.mark.parametrize(("path", "parser"), PARSERS, ids=[_id(p) for p, _ in PARSERS])
def test_every_option_and_subcommand_has_help(path: tuple[str, ...], parser) -> None:
    assert (parser.description or "").strip(), f"plantwatch {' '.join(path)}: no description"
    for action in _options(parser):
        name = "/".join(action.option_strings) or action.dest
        if isinstance(action, argparse._SubParsersAction):
            assert action.metavar == SUBCOMMAND, f"plantwatch {' '.join(path)}: {action.metavar}"
            for choice in action._choices_actions:
                assert (choice.help or "").strip(), f"{' '.join(path)} {choice.dest}: no help"
            continue
        if action.help == argparse.SUPPRESS:
            continue  # a hidden, deprecated alias
        assert (action.help or "").strip(), f"plantwatch {' '.join(path)} {name}: no help"
        assert action.type not in (int, float), (
            f"plantwatch {' '.join(path)} {name}: use a validator from edge.cliargs"
        )


@pytest.mark.parametrize(("path", "parser"), PARSERS, ids=[_id(p) for p, _ in PARSERS])
def test_help_shows_every_default(path: tuple[str, ...], parser) -> None:
    """An option that has a default says what it is in ``--help`` (brief: sane defaults shown)."""
    for action in _options(parser):
        if isinstance(action, argparse._SubParsersAction) or not has_shown_default(action):
            continue
        formatter = parser._get_formatter()
        line = " ".join(formatter._expand_help(action).split()) if action.help else ""
        name = "/".join(action.option_strings)
        assert "default" in line, f"plantwatch {' '.join(path)} {name}: help hides its default"


def _validated(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in _options(parser)
        if a.option_strings and getattr(a.type, "__module__", "") == "edge.cliargs"
    ]


NUMBER_CASES = [
    (path, action.option_strings[0], action.type)
    for path, parser in LEAVES
    for action in _validated(parser)
]


def _bad_value(check) -> str:
    for candidate in ("-5", "0", "99999999", "nan", "abc"):
        try:
            check(candidate)
        except argparse.ArgumentTypeError:
            return candidate
    raise AssertionError(f"{check.__name__}: accepts every bad candidate")


@pytest.mark.parametrize(
    ("path", "option", "check"), NUMBER_CASES, ids=[f"{_id(p)} {o}" for p, o, _ in NUMBER_CASES]
)
def test_a_bad_number_exits_2_with_one_line_naming_the_option(
    path: tuple[str, ...], option: str, check, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _bad_value(check)
    assert _exit_code([*path, f"{option}={bad}"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("plantwatch: error: argument ") and option in lines[0]
    assert repr(bad) in lines[0] and "Traceback" not in captured.err
    assert captured.out == ""


PATH_OPTIONS = (
    "data",
    "dataset",
    "config",
    "scenario",
    "file",
    "model",
    "store",
    "out",
    "rules",
    "labels",
)
"""Which option of a command gets the bad path: the first of these it has."""

DUMMIES = {
    "assignments": ["mode=safe"],
    "sql": ["SELECT * FROM 'dt/#'"],
    "broker": ["mqtt://127.0.0.1:1"],
    "days": ["30"],
}
EXTRA = {("up",): ["--port", "0", "--dashboard-port", "0"], ("dashboard",): ["--port", "0"]}
"""Free ports, so that a busy 1883 or 8600 on the test machine does not answer first."""


def _path_option(parser: argparse.ArgumentParser) -> argparse.Action | None:
    actions = {a.dest: a for a in _options(parser)}
    for dest in PATH_OPTIONS:
        action = actions.get(dest)
        if action is not None and (dest != "model" or action.type is Path):
            return action
    return None


PATH_CASES = [(path, parser) for path, parser in LEAVES if _path_option(parser) is not None]


def _argv(path: tuple[str, ...], parser, chosen: argparse.Action, bad: str, tmp: Path) -> list:
    argv: list[str] = [*path, *EXTRA.get(path, [])]
    positionals: list[str] = []
    for action in _options(parser):
        if action is chosen:
            value = [bad]
        elif action.nargs == "*" or not (
            action.required or (not action.option_strings and action.nargs != "?")
        ):
            continue
        elif action.nargs == 0:  # a required flag (``--aws`` on push commands)
            value = []
        elif action.dest in DUMMIES:
            value = DUMMIES[action.dest]
        elif action.choices:
            value = [next(iter(action.choices))]
        elif action.type is Path or action.dest in PATH_OPTIONS:
            value = [str(tmp / "dummy")]
        else:
            value = ["x"]
        if action.option_strings:
            argv += [action.option_strings[0], *value]
        else:
            positionals += value
    return [*argv, *positionals]


@pytest.mark.parametrize(("path", "parser"), PATH_CASES, ids=[_id(p) for p, _ in PATH_CASES])
def test_a_bad_path_exits_2_with_one_line_naming_it(
    path: tuple[str, ...], parser, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("a file, not a directory\n")
    bad = str(tmp_path / "afile" / "sub")
    chosen = _path_option(parser)
    argv = _argv(path, parser, chosen, bad, tmp_path)
    assert _exit_code(argv) == 2, argv
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, (argv, captured.err)
    assert lines[0].startswith("plantwatch: error: ") and "afile" in lines[0], lines[0]
    assert "Traceback" not in captured.err


def test_up_names_a_busy_port_before_starting_a_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["up", "--data", str(tmp_path / "d"), "--port", str(port)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err) == 1 and f"--port {port}: cannot listen on 127.0.0.1:{port}" in err[0]
    assert not (tmp_path / "d" / "runtime.json").exists()


@pytest.mark.parametrize(("path", "parser"), LEAVES, ids=[_id(p) for p, _ in LEAVES])
def test_a_default_from_the_scenario_only_where_there_is_one(path: tuple[str, ...], parser) -> None:
    """``sim replay --site`` said "default: scenario's, or s1" though replay takes no scenario."""
    if any("--scenario" in a.option_strings for a in parser._actions):
        return
    for action in _options(parser):
        text = action.help if isinstance(action.help, str) else ""
        assert "scenario's" not in text, f"plantwatch {' '.join(path)} {action.dest}: {text}"
