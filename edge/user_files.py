"""Reading a document the user names (a model, rules, scenario or config file), bounded.

``Path.read_text`` trusts the path: given a named pipe with no writer it blocks in
``open`` forever, and given ``/dev/zero`` (or a mistaken multi-gigabyte file) it reads
until memory runs out. :func:`read_document_text` is the drop-in replacement for these
small documents:

- the file is opened without waiting for a writer, so a FIFO nobody writes to reads as
  empty (and the caller's parser names the file), while ``<(command)`` still works;
- at most ``limit`` bytes are read, so an endless or huge source is refused quickly;
- the errors are the ones ``read_text`` raises (``OSError`` subclasses carrying the path,
  ``UnicodeDecodeError``), so every caller's existing ``except`` clauses keep naming the
  file and no new error type leaks out.
"""

from __future__ import annotations

import codecs
import difflib
import errno
import os
import stat
from collections.abc import Iterable
from typing import BinaryIO

from edge.errors import UserError

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""No model, rule set, scenario or agent config comes near this; a source that does is not
one (IoT Events caps a detector model at 1 MB, an IoT rule's SQL at 256 KB)."""


class DocumentTooLargeError(OSError):
    """The file (or stream) is longer than the document limit."""

    def __init__(self, path: str | os.PathLike[str], limit: int) -> None:
        super().__init__(
            errno.EFBIG,
            f"larger than {size_text(limit)}; not a document this command reads",
            str(path),
        )


def size_text(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


def read_document_bytes(path: str | os.PathLike[str], *, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The bytes of *path*, refusing more than *limit* and never waiting for a writer."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    mode = os.fstat(fd)
    if stat.S_ISDIR(mode.st_mode):  # before fdopen, whose error would name the descriptor
        os.close(fd)
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    with os.fdopen(fd, "rb", buffering=0) as fh:
        if stat.S_ISREG(mode.st_mode) and mode.st_size > limit:
            raise DocumentTooLargeError(path, limit)
        os.set_blocking(fd, True)  # a pipe with a writer: wait for its data as `cat` would
        chunks: list[bytes] = []
        total = 0
        while chunk := fh.read(min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise DocumentTooLargeError(path, limit)
    return b"".join(chunks)


_BOMS = (  # UTF-32 first: its little-endian mark begins with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class NotTextError(UnicodeDecodeError):
    """A document that is not text in its encoding, or holds a NUL byte (which no JSON,
    TOML or CSV document does: UTF-16 saved without a byte order mark reads so). Its
    ``str()`` is one line saying what to do, for callers that print the error."""

    def __str__(self) -> str:
        return f"not {self.encoding.upper()} text at byte {self.start} ({self.reason}); save it as UTF-8"


def read_document_text(
    path: str | os.PathLike[str], *, limit: int = MAX_DOCUMENT_BYTES, encoding: str = "utf-8"
) -> str:
    """:func:`read_document_bytes` decoded. A UTF-8 document may begin with a byte order
    mark, and one that begins with a UTF-16 or UTF-32 mark is read in that encoding (RFC
    8259 §8.1 lets a reader ignore the mark; Notepad writes UTF-8 with one, PowerShell's
    ``>`` UTF-16): the text is what the user wrote. Raises :class:`NotTextError` (a
    ``UnicodeDecodeError``, so every caller's ``except`` names the file) otherwise."""
    data = read_document_bytes(path, limit=limit)
    offset, codec = 0, encoding
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig"):
        offset, codec = next(
            ((len(bom), name) for bom, name in _BOMS if data.startswith(bom)), (0, "utf-8")
        )
    try:
        text = data[offset:].decode(codec)
    except UnicodeDecodeError as exc:
        raise NotTextError(codec, data, offset + exc.start, offset + exc.end, exc.reason) from None
    nul = text.find("\0")
    if nul >= 0:
        at = offset + len(text[:nul].encode(codec))
        raise NotTextError(codec, data, at, at + 1, "a NUL byte; UTF-16 without a byte order mark?")
    return text


MAX_HEADER_BYTES = 1 << 20
"""The longest first line a CSV reader takes as a header. L4E's largest dataset header,
3,000 sensors of 200 characters (l4e-contracts §1.4), is about 603,000 bytes; a line of a
gigabyte is no header, and reading it whole (as a CSV parser does) costs gigabytes."""


def read_header_line(
    source: str | os.PathLike[str] | BinaryIO | bytes,
    name: str,
    *,
    limit: int = MAX_HEADER_BYTES,
) -> bytes:
    """The first line of a CSV (without its line break), reading at most ``limit + 1``
    bytes, so a huge or endless first line is refused at once instead of being parsed.

    *source* is a path (opened without waiting for a writer; anything but a regular file
    is refused), an open binary file (left where it was) or the bytes themselves. Either
    line break, ``\n`` or ``\r``, ends the line. Raises :class:`UserError` naming *name*.
    """
    if isinstance(source, bytes):
        end = _line_end(source, limit + 1)
        prefix = source[: limit + 1 if end < 0 else end]
    elif isinstance(source, str | os.PathLike):
        prefix = _path_prefix(source, name, limit + 1)
    else:
        where = source.tell()
        prefix = _first_line(source, limit + 1)
        source.seek(where)
    end = _line_end(prefix, len(prefix))
    if end >= 0:
        return prefix[:end]
    if len(prefix) > limit:
        raise UserError(f"{name}: line 1: longer than {size_text(limit)}; not a CSV header")
    return prefix


HEADER_STEP_BYTES = 64 * 1024
"""How much of a file is read at a time while looking for the header's end: a typical
header ends in the first step, so a large file costs one small read, not ``limit``."""


def _line_end(data: bytes, stop: int) -> int:
    """Where the first ``\n`` or ``\r`` in ``data[:stop]`` is, or -1."""
    ends = [i for i in (data.find(b"\n", 0, stop), data.find(b"\r", 0, stop)) if i >= 0]
    return min(ends) if ends else -1


def _first_line(fh: BinaryIO, size: int) -> bytes:
    """At most *size* bytes of *fh*, read in steps until a line break has been read."""
    chunks: list[bytes] = []
    total = 0
    while total < size:
        chunk = fh.read(min(HEADER_STEP_BYTES, size - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if _line_end(chunk, len(chunk)) >= 0:
            break
    return b"".join(chunks)


def _path_prefix(path: str | os.PathLike[str], name: str, size: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO never ends, nor does /dev/zero
                raise UserError(f"{name}: not a regular file")
            return _first_line(fh, size)
    except OSError as exc:
        raise UserError(f"{name}: cannot read ({exc.strerror or exc})") from None


def parse_problem(exc: ValueError | RecursionError) -> str:
    """One line for what a JSON or TOML parser refused beyond its own decode errors.

    ``json`` and ``tomllib`` raise a plain ``ValueError`` for an integer of thousands of
    digits (Python's int-from-text limit) and ``RecursionError`` for nesting past the
    interpreter's stack; the user needs to know which, not the interpreter's wording.
    """
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "a number with too many digits" if "digits" in str(exc) else str(exc)


def nearest_name(name: str, known: Iterable[str]) -> str | None:
    """The known name a misspelt *name* most likely meant, if one is close enough: an error
    refusing an unknown key or field points at it, where a list of every name leaves the
    user to spot the typo (``evaluationMethd`` -> ``evaluationMethod``)."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return close[0] if close else None
