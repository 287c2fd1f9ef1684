"""The one output style of the CLI.

- ``--json``: exactly one JSON document on stdout (:func:`print_json`).
- A terminal: rich tables with headers (:func:`print_table`), key/value panels
  (:func:`print_fields`).
- Piped or redirected: plain aligned text with the same headers, never wrapped and never
  truncated, so ``| tee``, CI logs and ``grep`` see every character of every cell.
- Logs, progress bars and hints go to stderr, never stdout; :func:`progress` draws a bar
  only on a terminal and otherwise prints a line per stage (and at most one every
  ``interval_s``), so CI logs are not flooded with redraws.

Commands call these helpers instead of building rich objects themselves, so the choice
between the terminal and the piped form is made in one place.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape

_PIPED_WIDTH = 1_000_000
"""Console width when the stream is not a terminal: wide enough that rich never wraps."""


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, highlight=False)
    return Console(
        stderr=stderr,
        highlight=False,
        width=_PIPED_WIDTH,
        soft_wrap=True,
        no_color=True,
        emoji=False,
    )


stderr = _console(stderr=True)
"""Logs, progress bars and hints for people."""

stdout = _console(stderr=False)
"""Human-readable results; prefer :func:`print_table`, :func:`print_fields`, :func:`print_line`."""


def is_terminal() -> bool:
    return sys.stdout.isatty()


@dataclass(frozen=True, slots=True)
class Column:
    """One table column: the header shown and the row key it reads."""

    header: str
    key: str
    justify: str = "left"
    """``left`` or ``right`` (numbers)."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def _columns(columns: Sequence[Column | str]) -> list[Column]:
    return [c if isinstance(c, Column) else Column(header=c, key=c) for c in columns]


def print_table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[Column | str],
    *,
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    """A table on stdout; *empty* (one line on stdout) when there are no rows.

    In a terminal this is a rich table whose cells fold rather than truncate; piped, it is
    plain text aligned on spaces with a header row and no limit on line length.
    """
    cols = _columns(columns)
    cells = [[_cell(row.get(c.key)) for c in cols] for row in rows]
    if not cells:
        print_line(empty)
        return
    if is_terminal():
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for col in cols:
            table.add_column(col.header, justify=col.justify, overflow="fold")  # type: ignore[arg-type]
        for row in cells:
            table.add_row(*(escape(c) for c in row))
        stdout.print(table)
        return
    if title:
        print_line(title)
    widths = [max(len(c.header), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]

    def fmt(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if c.justify == "right" else v.ljust(w)
            for v, w, c in zip(values, widths, cols, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [fmt([c.header for c in cols]), *(fmt(r) for r in cells)]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def print_fields(fields: Mapping[str, Any], *, title: str | None = None) -> None:
    """A key/value block (``describe`` commands): one ``key: value`` line per field."""
    if title:
        print_line(title)
    width = max((len(k) for k in fields), default=0)
    for key, value in fields.items():
        print_line(f"{key.ljust(width)}  {_cell(value)}")


def print_line(text: str = "") -> None:
    """One line on stdout, never wrapped; rich markup is not interpreted."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_json(document: Any) -> None:
    """Print exactly one JSON document (object or array) on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


class Progress:
    """Handle for long work: :meth:`advance` as units finish, :meth:`stage` as phases change.

    Engines do not import the CLI; a command passes ``bar.advance`` (or a lambda around it)
    to them as a plain callback.
    """

    def __init__(self, total: float | None, description: str, interval_s: float) -> None:
        self.total = total
        self.description = description
        self.completed = 0.0
        self._interval_s = interval_s
        self._began = time.monotonic()
        self._last_line = self._began
        self._bar: Any = None
        self._task: Any = None

    def advance(self, amount: float = 1.0) -> None:
        self.completed += amount
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed)
            return
        now = time.monotonic()
        if now - self._last_line >= self._interval_s:
            self._line(self._count())

    def stage(self, description: str, total: float | None = None, completed: float = 0.0) -> None:
        """Start a new phase (its own description and, optionally, its own total)."""
        self.description, self.total, self.completed = description, total, completed
        if self._bar is not None:
            self._bar.update(
                self._task, description=escape(description), total=total, completed=completed
            )
        else:
            self._line("")

    def _count(self) -> str:
        if self.total:
            return f"{self.completed:g}/{self.total:g} ({self.completed / self.total:.0%})"
        return f"{self.completed:g}" if self.completed else ""

    def _line(self, detail: str) -> None:
        self._last_line = time.monotonic()
        elapsed = self._last_line - self._began
        text = f"{self.description}{' ' + detail if detail else ''} [{elapsed:.0f} s]"
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


@contextmanager
def progress(
    total: float | None, description: str, *, interval_s: float = 10.0
) -> Iterator[Progress]:
    """Show progress of long work on stderr; *total* None is work of unknown size.

    In a terminal this is a rich progress bar (spinner, bar, count, elapsed time). Piped,
    it prints one plain line when work starts, one per :meth:`Progress.stage`, at most one
    per *interval_s* while advancing, and a final line with the elapsed time.
    """
    handle = Progress(total, description, interval_s)
    if not stderr.is_terminal:
        handle._line("")
        try:
            yield handle
        finally:
            handle._line(f"done {handle._count()}".rstrip())
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as Bar

    with Bar(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
    ) as bar:
        handle._bar = bar
        handle._task = bar.add_task(escape(description), total=total)
        yield handle
