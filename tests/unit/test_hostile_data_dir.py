"""A damaged file in a plantwatch data directory: one line naming it, never an internal
error. Disk faults, a half-copied backup or a hand edit can leave any of these files
truncated or garbled; before, JSON nested past the stack, an integer of thousands of
digits or bytes that are not UTF-8 escaped the readers as RecursionError, ValueError
or UnicodeDecodeError.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.adapters.local import FsObjectStore
from cloud.archive.retention import load_rules as load_retention
from cloud.cli.main import main
from cloud.inference.registry import ModelRegistry
from cloud.migrate.iotevents import read_registry
from cloud.runtime.broker_auth import _read_json
from edge.errors import UserError

DAMAGED = {
    "not_utf8": b"\xff\xfe\x00garbage",
    "deep": b"[" * 100_000,
    "many_digits": b"1" * 5000,
}


@pytest.mark.parametrize("damage", list(DAMAGED))
def test_a_damaged_model_report_names_the_file(damage: str, tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path, fsync=False)
    store.put("m1/active", b"1")
    store.put("m1/v1/evaluation.json", DAMAGED[damage])
    registry = ModelRegistry(store, where=str(tmp_path))
    with pytest.raises(UserError, match=r"m1/v1/evaluation\.json: "):
        registry.report("m1", "evaluation", 1)


def test_a_model_report_that_is_not_an_object_names_the_file(tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path, fsync=False)
    store.put("m1/v1/evaluation.json", b"[]")
    registry = ModelRegistry(store, where=str(tmp_path))
    with pytest.raises(UserError, match=r"m1/v1/evaluation\.json: not a JSON object"):
        registry.report("m1", "evaluation", 1)


@pytest.mark.parametrize("damage", list(DAMAGED))
def test_damaged_registry_and_auth_files_are_user_errors(damage: str, tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    path.write_bytes(DAMAGED[damage])
    with pytest.raises(UserError, match=r"registry\.json"):
        read_registry(tmp_path)
    with pytest.raises(UserError, match=r"registry\.json"):
        _read_json(path)


@pytest.mark.parametrize("damage", ["not_utf8", "deep"])
def test_retention_show_with_a_damaged_file_exits_2(
    damage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = DAMAGED[damage] if damage == "not_utf8" else b"x = " + DAMAGED[damage]
    (tmp_path / "retention.toml").write_bytes(content)
    with pytest.raises(UserError, match=r"retention\.toml: not valid TOML"):
        load_retention(tmp_path / "retention.toml")
    assert main(["retention", "show", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "retention.toml: not valid TOML" in err[0]
    assert "internal error" not in err[0]


def test_model_health_with_a_damaged_model_json_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    history = tmp_path / "h"
    assert main(["sim", "history", "--assets", "1", "--days", "0.1", "--out", str(history)]) == 0
    argv = ["model", "train", "--dataset", str(history / "data"), "--name", "m1"]
    assert main([*argv, "--data", str(data)]) == 0
    model_json = next(data.rglob("m1/v1/model.json"))
    model_json.write_bytes(DAMAGED["deep"])
    capsys.readouterr()
    assert main(["model", "health", "--data", str(data)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "m1/v1/model.json" in err[-1] and "internal error" not in err[-1]
