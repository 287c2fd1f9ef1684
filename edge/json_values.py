"""Checks on decoded JSON values, shared by the edge and the cloud engines.

Equality: Python's ``==`` says ``True == 1`` and ``{"a": True} == {"a": 1}``; JSON does
not, and the shadow service keeps a ``true`` desired against a reported ``1`` in the delta.
The service (delta and ``wait``) and the device (which desired values it has already
applied) must agree on that, so both use :func:`same_value`. Text: a decoded document may
hold strings no store can write, which :func:`not_unicode` finds where it comes in.
"""

from __future__ import annotations

import math
import re
from itertools import accumulate, count
from operator import sub
from typing import Any


def finite_number(value: Any) -> bool:
    """A real number a JSON document can carry into arithmetic: not a bool, not NaN or
    infinite, and not an integer too large for a float (``math.isfinite`` raises there)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def same_value(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value (1 == 1.0), but booleans are not numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def deeper_than(value: Any, levels: int) -> bool:
    """Whether *value* holds a non-empty object or array more than *levels* containers
    down (the value itself being the first). Iterative, so a hostile document nested a
    thousand deep is measured without the recursion that ``==``, ``str()`` and
    :func:`same_value` would run out of."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if not children:
            continue
        if level > levels:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_OPENS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def nesting_depth(text: bytes | str) -> int:
    """How deep objects and arrays nest in JSON *text* (``[]`` is 1, a scalar 0), brackets
    inside strings skipped, measured in one linear pass without parsing.

    Why: ``json.loads`` refuses nesting at Python's recursion limit less the frames its
    caller already uses, so near 1000 levels the same payload was read or refused
    depending on who called; a limit checked here first gives one verdict for any caller.
    On text that is not JSON the number means nothing, but it still takes linear time.

    How, in C-speed steps: escapes go (so every quote left opens or closes a string),
    then all but quotes and brackets; between the quotes, the even parts are outside
    strings (an unterminated string runs to the end). With each bracket an opening 2 or
    a closing 0, the depth after the i-th bracket is the running sum less i."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if b"\\" in data:
        data = _ESCAPE.sub(b"", data)
    structure = data.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in structure:  # a string holding brackets (two adjacent quotes hold nothing)
        structure = b"".join(structure.split(b'"')[::2])
    steps = structure.translate(_OPENS)
    return max(map(sub, accumulate(steps), count(1)), default=0)


def nests_deeper_than(text: bytes | str, levels: int) -> bool:
    """Whether JSON *text* nests objects and arrays more than *levels* deep
    (:func:`nesting_depth`). Most messages hold fewer openers than *levels* in all, which
    two C counts show without the scan."""
    if isinstance(text, str):
        opens = text.count("[") + text.count("{")
    else:
        opens = text.count(b"[") + text.count(b"{")
    return opens > levels and nesting_depth(text) > levels


def not_unicode(value: Any) -> str | None:
    """Why *value* (a string, or a decoded JSON document) holds text UTF-8 cannot encode, or
    None. JSON's ``"\\ud800"`` escape decodes to a lone surrogate, no Unicode character: a
    state store, a log line or SNS refuses it later, far from where it came in, so it is
    checked there. A problem inside a document names its place (``$.a[1].b``). Iterative,
    as :func:`deeper_than`, so a hostile nesting cannot exhaust the recursion limit; each
    node keeps only a link to its parent's trail, so a deep one costs no long paths."""
    if isinstance(value, str):
        return _not_text(value)
    stack: list[tuple[Any, Any]] = [(value, None)]  # (node, (parent's trail, step) or None)
    while stack:
        node, trail = stack.pop()
        problem: str | None = None
        if isinstance(node, str):
            problem = _not_text(node)
        elif isinstance(node, dict):
            for name in node:
                problem = _not_text(name) if isinstance(name, str) else None
                if problem:
                    problem = f"the name {name!r}: {problem}"
                    break
            stack.extend((node[name], (trail, f".{name}")) for name in reversed(list(node)))
        elif isinstance(node, list):
            stack.extend((item, (trail, f"[{i}]")) for i, item in reversed(list(enumerate(node))))
        if problem:
            steps: list[str] = []
            while trail is not None:
                trail, step = trail
                steps.append(step)
            return f"${''.join(reversed(steps))}: {problem}"
    return None


def _not_text(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"position {exc.start} holds {text[exc.start]!r}, not a Unicode character"
    return None
