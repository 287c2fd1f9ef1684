"""Time options (``--start``, ``--train-start``, ``--window-end`` ...): one parser, one help.

They accept what L4E accepts in input files, so a timestamp copied from a CSV works; the
help lists the forms because users do not have the L4E documentation at hand.
"""

from __future__ import annotations

from datetime import date
from typing import Any

TIMESTAMP_FORMATS = (
    "a date 2026-01-05, or a time as 2026-01-05T06:00:00, '2026-01-05 06:00', "
    "2026/01/05-06-00-00, 20260105T060000, 20260105 0600 or 1/5/2026 6:00; seconds "
    "optional, a .fraction only after them; Z or +HH:MM suffix (default UTC)"
)
"""The forms :func:`parse_time_option` accepts, for help text."""


def parse_time_option(text: str | None, option: str) -> Any:
    """A UTC ``pandas.Timestamp``, or None when the option was not given.

    Raises ``UserError`` naming the option and the accepted forms.
    """
    if text is None:
        return None
    import re

    import pandas as pd

    from cloud.inference.dataset import parse_timestamps
    from edge.errors import UserError

    parsed = parse_timestamps([text])[0]
    if pd.isna(parsed) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        try:  # a calendar date (not 2026-13-45, not year 0, which pandas takes), any year
            parsed = pd.Timestamp(date.fromisoformat(text.strip()), tz="UTC")
        except ValueError:
            parsed = pd.NaT
    if pd.isna(parsed):
        raise UserError(f"--{option} {text!r}: expected {TIMESTAMP_FORMATS}")
    return parsed
