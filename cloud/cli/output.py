"""The one output style of the CLI.

- ``--json``: exactly one JSON document on stdout (:func:`print_json`).
- A terminal: rich tables with headers (:func:`print_table`), key/value panels
  (:func:`print_fields`).
- Piped or redirected: plain aligned text with the same headers, never wrapped and never
  truncated, so ``| tee``, CI logs and ``grep`` see every character of every cell.
- Logs, progress bars and hints go to stderr, never stdout; :func:`progress` draws a bar
  only on a terminal and otherwise prints sparse lines for long work only, so CI logs are
  not flooded with redraws.

Commands call these helpers instead of building rich objects themselves, so the choice
between the terminal and the piped form is made in one place.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape

from edge.cliargs import one_line

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
    """A key/value block (``describe`` commands): one ``key  value`` line per field; a
    missing value shows as ``-`` so an empty setting is not mistaken for a blank."""
    if title:
        print_line(title)
    width = max((len(k) for k in fields), default=0)
    for key, value in fields.items():
        print_line(f"{key.ljust(width)}  {'-' if value is None else _cell(value)}")


def print_report(document: Mapping[str, Any], *, as_json: bool) -> None:
    """A benchmark or summary: one JSON document with ``--json``; otherwise one
    ``key  value`` line per leaf, nested keys joined with dots (``baseline.msgs_per_s``),
    so the human form shows every figure the JSON has, under the same names."""
    if as_json:
        print_json(document)
        return

    def leaves(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(value, Mapping) and value:
            for key, inner in value.items():
                yield from leaves(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            yield prefix, value

    print_fields(dict(leaves("", document)))


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

    def __init__(
        self, total: float | None, description: str, interval_s: float, after_s: float
    ) -> None:
        self.total = total
        self.description = description
        self.completed = 0.0
        self._interval_s = interval_s
        self._after_s = after_s
        self._began = time.monotonic()
        self._last_line = self._began
        self._shown = False
        self._lock = threading.Lock()
        self._bar: Any = None
        self._task: Any = None

    def advance(self, amount: float = 1.0) -> None:
        self.completed += amount
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed)
            return
        now = time.monotonic()
        due = now - self._last_line >= self._interval_s if self._shown else self._late(now)
        if due:
            self._line(self._count())

    def stage(self, description: str, total: float | None = None) -> None:
        """Name the current phase; with *total*, also restart the count for that phase."""
        self.description = description
        if total is not None:
            self.total, self.completed = total, 0.0
        if self._bar is not None:
            self._bar.update(
                self._task,
                description=escape(description),
                total=self.total,
                completed=self.completed,
            )
        elif self._shown or self._late(time.monotonic()):
            self._line(self._count())

    def _late(self, now: float) -> bool:
        return now - self._began >= self._after_s

    def _count(self) -> str:
        if not self.completed:
            return ""
        if self.total:
            done, total = _amount(self.completed), _amount(self.total)
            return f"{done}/{total} ({self.completed / self.total:.0%})"
        return _amount(self.completed)

    def _line(self, detail: str) -> None:
        with self._lock:
            self._shown = True
            self._last_line = time.monotonic()
            elapsed = self._last_line - self._began
            line = f"{self.description}{' ' + detail if detail else ''}"
            text = f"{one_line(line)} [{elapsed:.0f} s]"
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def _first_line(self) -> None:
        """Called once *after_s* into the work: a long phase says what it is doing."""
        if not self._shown:
            self._line(self._count())


def _amount(value: float) -> str:
    """A count as people read it: 1,576,800 rather than 1.5768e+06; fractions as given."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


@contextmanager
def progress(
    total: float | None,
    description: str,
    *,
    interval_s: float = 10.0,
    after_s: float = 2.0,
) -> Iterator[Progress]:
    """Show progress of long work on stderr; *total* None is work of unknown size.

    In a terminal this is a rich progress bar (spinner, bar, count, elapsed time). Piped,
    work that ends within *after_s* prints nothing (so a quick command, or one that fails
    on bad input, keeps stderr to its one line); longer work prints a line naming the
    current phase, one per later :meth:`Progress.stage`, at most one per *interval_s* while
    advancing, and a final ``done`` line.
    """
    handle = Progress(total, description, interval_s, after_s)
    if not stderr.is_terminal:
        timer = threading.Timer(after_s, handle._first_line)
        timer.daemon = True
        if after_s > 0:
            timer.start()
        else:
            handle._first_line()
        try:
            yield handle
        finally:
            timer.cancel()
        if handle._shown:
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
        transient=True,
    ) as bar:
        handle._bar = bar
        handle._task = bar.add_task(escape(description), total=total)
        yield handle
