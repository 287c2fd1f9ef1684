"""The timestamp parser must not lean on numpy behaviour that numpy has deprecated.

numpy 2.5 (the version a fresh Python 3.13 install gets) warns that adding a bare integer to
a ``datetime64[M]`` array is deprecated and "will raise an error in the future"; the day-of-
month check did that, so every dataset read warned, and a later numpy would fail every read.
"""

from __future__ import annotations

import warnings

import pandas as pd

from cloud.inference.dataset import parse_timestamps


def test_parsing_dates_raises_no_numpy_deprecation() -> None:
    stamps = ["2024-02-29 12:00:00", "2023-02-29 12:00:00", "2024-12-31T23:59:59Z", "2024-04-31"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        parsed = parse_timestamps(stamps)
    assert parsed[0] == pd.Timestamp("2024-02-29 12:00:00", tz="UTC")
    assert pd.isna(parsed[1]), "2023 has no 29 February"
    assert parsed[2] == pd.Timestamp("2024-12-31 23:59:59", tz="UTC")
    assert pd.isna(parsed[3]), "April has no 31st"
