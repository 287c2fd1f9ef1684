"""The data directory the dashboard tests read (built by :mod:`dash_data`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dash_data import build


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("dash") / "data")
