"""Durations as people and AWS write them: ISO 8601 (``PT5M``, ``P1DT2H``) or ``90s``/``15m``/``2h``.

Used where a user gives a length of time on the command line or in a replay file: moving a
replay's clock (``{"advance": "PT5M"}``), snoozing an alarm (``--for 30m``).
"""

from __future__ import annotations

import math
import re
from typing import Final

from edge.cliargs import parse_duration_text

_ISO_RE: Final = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)


def parse_duration(text: str) -> float:
    """Seconds in *text*: ISO 8601 (``PT5M``) or the CLI's forms (``90s``, ``15m``, ``2h``).

    ValueError says what was expected.
    """
    value = text.strip() if isinstance(text, str) else ""
    expected = f"expected a duration like PT5M, 90s, 15m or 2h, got {text!r}"
    iso = _ISO_RE.fullmatch(value)
    if iso is not None and value.upper() not in ("P", "PT") and not value.upper().endswith("T"):
        parts = iso.groupdict()
        seconds = sum(
            float(parts[name] or 0) * factor
            for name, factor in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0))
        )
        return _finite(seconds, expected)
    try:
        return parse_duration_text(value)
    except ValueError:
        raise ValueError(expected) from None


def _finite(seconds: float, expected: str) -> float:
    if not math.isfinite(seconds):
        raise ValueError(expected)
    return seconds


def format_duration(seconds: float) -> str:
    """``+01:05:00`` style offset for tables; days shown when present (``+2d 01:00:00``)."""
    sign = "-" if seconds < 0 else "+"
    total = abs(seconds)
    whole = int(total)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    frac = total - whole
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    if frac >= 0.0005:
        text += f".{round(frac * 1000):03d}"
    return f"{sign}{days}d {text}" if days else f"{sign}{text}"
