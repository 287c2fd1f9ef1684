"""``model train --dataset history/`` on ``sim history``'s output folder.

L4E's ingestion reads ``{prefix}/{component}/*`` across subfolders, so ``history/data/
pump-01/*.csv`` ... read from ``history/`` are one component ``data``: the three pumps'
rows merged into one. That stays (it is the contract), but training on it said nothing;
now it warns and names the folder to pass instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.cli.main import main
from cloud.inference.dataset import load_dataset, nested_components_warning

CSV = "Timestamp,temp\n" + "".join(
    f"2026-01-01T{m // 60:02d}:{m % 60:02d}:00,{20 + (m % 7) * 0.5}\n" for m in range(120)
)


def _history(root: Path, assets: list[str]) -> Path:
    for asset in assets:
        folder = root / "data" / asset
        folder.mkdir(parents=True)
        (folder / f"{asset}.csv").write_text(CSV)
    return root


def test_components_in_subfolders_are_named(tmp_path: Path) -> None:
    root = _history(tmp_path / "history", ["pump-01", "pump-02", "pump-03"])
    warning = nested_components_warning(load_dataset(root), root)
    assert warning is not None
    assert warning.startswith("nested-components: ")
    assert "pump-01, pump-02, pump-03" in warning
    assert f"--dataset {root / 'data'}" in warning


def test_a_plain_dataset_is_quiet(tmp_path: Path) -> None:
    root = _history(tmp_path / "history", ["pump-01", "pump-02"])
    assert nested_components_warning(load_dataset(root / "data"), root / "data") is None


def test_model_train_warns_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _history(tmp_path / "history", ["pump-01", "pump-02"])
    argv = ["model", "train", "--dataset", str(root), "--name", "m", "--data", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    out, err = capsys.readouterr()
    assert "nested-components: " in err
    assert "nested-components" not in out


def test_a_flat_dataset_trains_without_an_internal_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``root/<component>_*.csv`` (§1.1's flat form) lies beside, not under, ``root/<component>``:
    the nesting check took every file for one under it and ``model train`` ended in
    'internal error: ValueError: ... is not in the subpath of ...'."""
    root = tmp_path / "flat"
    root.mkdir()
    for part in ("1", "2"):
        (root / f"pump_{part}.csv").write_text(CSV)
    assert nested_components_warning(load_dataset(root), root) is None
    argv = ["model", "train", "--dataset", str(root), "--name", "m", "--data", str(tmp_path)]
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
