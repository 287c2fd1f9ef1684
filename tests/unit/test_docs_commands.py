"""The command lines in README.md, docs/*.md and cloud/inference/README.md parse.

Every ``plantwatch ...`` (and ``plantwatch-edge ...``) line in a fenced code block, and
every one in inline code, goes through the parser of the command it names (a dry parse:
nothing runs). So renaming or dropping an option, a subcommand or a choice breaks this
test instead of the user who copies the line. Synopses with placeholders (``a|b``,
``[--opt]``, ``...``) are skipped; an inline mention may leave out required arguments
(``plantwatch model train`` in a sentence), a code block may not.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from cloud.cli.main import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    ROOT / "cloud/inference/README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
PROGRAMS = ("plantwatch", "plantwatch-edge")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_PLACEHOLDER = re.compile(r"\||\[|\.\.\.|…|<")


def _is_command(text: str) -> bool:
    words = text.split(None, 2)
    return (
        len(words) >= 2
        and words[0] in PROGRAMS
        and re.fullmatch(r"[a-z][a-z0-9-]*", words[1]) is not None
    )


def _complete(lines: list[str], i: int, first: str) -> tuple[str, int]:
    """The command starting at *first* (line *i*), joined over ``\\`` and open quotes."""
    text = first
    while i + 1 < len(lines):
        if text.endswith("\\"):  # a continued line
            i += 1
            text = text[:-1] + " " + lines[i].strip()
            continue
        try:
            shlex.split(text, comments=True)
        except ValueError:  # an open quote: the statement goes on
            i += 1
            text += "\n" + lines[i].strip()
            continue
        break
    return text, i


def _commands(path: Path) -> list[tuple[str, str, bool]]:
    """(``file:line``, command, in a code block) for each command line in *path*."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found: list[tuple[str, str, bool]] = []
    in_block = False
    i = 0
    while i < len(lines):
        line = lines[i]
        where = f"{path.relative_to(ROOT)}:{i + 1}"
        if line.strip().startswith("```"):
            in_block = not in_block
        elif in_block:
            text = line.strip().removeprefix("$ ").removeprefix(".venv/bin/")
            if _is_command(text):
                text, i = _complete(lines, i, text)
                found.append((where, text, True))
        else:
            for span in re.findall(r"`([^`]+)`", line):
                text = span.strip().removeprefix(".venv/bin/")
                if _is_command(text):
                    found.append((where, text, False))
        i += 1
    return found


CASES = [
    case
    for doc in DOCS
    for case in _commands(doc)
    if not _PLACEHOLDER.search(_QUOTED.sub("''", case[1]))
]


def test_the_docs_have_commands_to_check() -> None:
    assert len([c for c in CASES if c[2]]) >= 40


@pytest.mark.parametrize(("where", "command", "block"), CASES, ids=[c[0] for c in CASES])
def test_a_documented_command_parses(where: str, command: str, block: bool) -> None:
    argv = shlex.split(command, comments=True)
    program, argv = argv[0], argv[1:]
    if program == "plantwatch-edge":
        argv = ["edge", *argv]
    argv = [a for a in argv if a not in ("--help", "-h", "--debug")]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser(argv[0] if argv[0] in COMMANDS else None).parse_args(argv)
    except SystemExit:
        message = err.getvalue().strip()
        if not block and "the following arguments are required" in message:
            return  # a command named in a sentence, without its arguments
        if re.search(r"(invalid choice: |got )'[A-Z][A-Z0-9_]*'", message):
            return  # a placeholder such as NAME or P where a value goes
        pytest.fail(f"{where}: {command!r}: {message}")
