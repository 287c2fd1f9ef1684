"""The model registry over every ObjectStore (S3 under moto): no local path assumed."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from cloud.adapters.aws import S3ObjectStore
from cloud.adapters.local import FsObjectStore, InMemoryObjectStore
from cloud.inference.model import Model, TrainConfig, train
from cloud.inference.registry import ModelRegistry
from edge.errors import NotFoundError, UserError


def frame(rows: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    load = 50 + rng.normal(0, 5, rows)
    return pd.DataFrame(
        {
            "flow": 3 * load + rng.normal(0, 1, rows),
            "motor_current": 0.2 * load + rng.normal(0, 0.2, rows),
            "pressure": 0.05 * load + rng.normal(0, 0.05, rows),
        },
        index=pd.date_range("2026-01-01", periods=rows, freq="60s", tz="UTC"),
    )


@pytest.fixture(scope="module")
def model() -> Model:
    return train(frame(), TrainConfig(max_modes=1))


@pytest.fixture(params=["fs", "memory", "s3"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ModelRegistry]:
    if request.param == "fs":
        yield ModelRegistry(FsObjectStore(tmp_path / "models", create=False))
    elif request.param == "memory":
        yield ModelRegistry(InMemoryObjectStore(), "models/")
    else:
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket="artifacts")
            yield ModelRegistry(
                S3ObjectStore("artifacts", client=client), "models/", where="s3://artifacts/models/"
            )


def test_save_versions_activate_and_load(registry: ModelRegistry, model: Model) -> None:
    assert registry.names() == []
    assert registry.save("pump", model, {"evaluation": {"f1": 0.9}}) == 1
    assert registry.save("pump", model) == 2
    assert registry.save("fan", model) == 1
    assert registry.names() == ["fan", "pump"]
    assert registry.versions("pump") == [1, 2]
    assert registry.active_version("pump") == 2
    registry.set_active("pump", 1)
    assert registry.active_version("pump") == 1
    loaded = registry.load("pump")
    assert loaded.info["version"] == 1
    test = frame(50, seed=9)
    np.testing.assert_allclose(loaded.score(test).score, model.score(test).score)
    assert registry.report("pump", "evaluation") == {"f1": 0.9}
    assert registry.report("pump", "evaluation", 2) is None
    assert registry.describe("pump")["Versions"] == [1, 2]


def test_missing_models_and_versions_are_not_found(registry: ModelRegistry, model: Model) -> None:
    with pytest.raises(NotFoundError, match="'pump'"):
        registry.load("pump")
    registry.save("pump", model)
    with pytest.raises(NotFoundError, match="version 7"):
        registry.load("pump", 7)
    with pytest.raises(NotFoundError):
        registry.set_active("pump", 7)


def test_a_half_written_version_is_bad_input_naming_the_file(registry: ModelRegistry) -> None:
    registry.store.put(f"{registry.prefix}pump/v1/model.json", b"{}")
    with pytest.raises(UserError, match=r"model\.npz missing"):
        registry.load("pump")


def test_artifacts_load_without_pickle(model: Model) -> None:
    files = model.to_artifacts()
    evil = io.BytesIO()
    np.savez(evil, threshold=np.array([{"run": "code"}], dtype=object))
    with pytest.raises(UserError, match="unreadable model artifact"):
        Model.from_artifacts({**files, "model.npz": evil.getvalue()}, "s3://artifacts/m/v1")
    with pytest.raises(UserError, match="format"):
        Model.from_artifacts({**files, "model.json": b'{"format": 99}'}, "m")
    assert Model.from_artifacts(files, "m").sensors == model.sensors


def test_reading_a_local_registry_creates_nothing(tmp_path: Path) -> None:
    registry = ModelRegistry(FsObjectStore(tmp_path / "models", create=False))
    assert registry.names() == []
    with pytest.raises(NotFoundError):
        registry.load("pump")
    assert not (tmp_path / "models").exists()


def test_copy_from_another_registry_keeps_the_bytes_and_adds_no_duplicate(
    registry: ModelRegistry, model: Model
) -> None:
    # GIVEN a local registry whose pump model has two versions, v1 active, with reports
    local = ModelRegistry(InMemoryObjectStore())
    local.save("pump", model, {"evaluation": {"f1": 0.9}})
    local.put_file("pump", 1, "model_diagnostics_results.json.gz", b"\x1f\x8bdiag")
    local.save("pump", train(frame(seed=4), TrainConfig(max_modes=1)))
    local.set_active("pump", 1)
    # WHEN the active version is copied in, twice
    assert registry.copy_from(local, "pump") == (1, True)
    assert registry.copy_from(local, "pump") == (1, False)
    # THEN the arrays and files beside them are the same bytes, the info says where from
    for filename in ("model.npz", "evaluation.json", "model_diagnostics_results.json.gz"):
        assert registry.store.get(registry.key("pump", 1) + filename) == local.store.get(
            local.key("pump", 1) + filename
        )
    copied = registry.load("pump")
    assert (copied.info["name"], copied.info["version"]) == ("pump", 1)
    assert copied.info["copied_from"] == local.location("pump", 1)
    test = frame(50, seed=9)
    np.testing.assert_allclose(copied.score(test).score, model.score(test).score)
    # AND another version becomes the next active one; asking for a missing one is named
    assert registry.copy_from(local, "pump", 2) == (2, True)
    assert registry.active_version("pump") == 2
    with pytest.raises(NotFoundError, match="version 5"):
        registry.copy_from(local, "pump", 5)


def test_copy_from_refuses_an_unsafe_artifact_before_writing(
    registry: ModelRegistry, model: Model
) -> None:
    local = ModelRegistry(InMemoryObjectStore())
    evil = io.BytesIO()
    np.savez(evil, threshold=np.array([{"run": "code"}], dtype=object))
    local.store.put("pump/v1/model.npz", evil.getvalue())
    local.store.put("pump/v1/model.json", model.to_artifacts()["model.json"])
    with pytest.raises(UserError, match="unreadable model artifact"):
        registry.copy_from(local, "pump")
    assert list(registry.store.list(registry.prefix)) == []


@pytest.mark.parametrize(
    "damage", ["drop_config", "drop_sensors", "foreign_config_key", "foreign_alarm_setting"]
)
def test_a_damaged_model_json_is_bad_input_naming_the_artifact(model: Model, damage: str) -> None:
    files = model.to_artifacts()
    meta = json.loads(files["model.json"])
    if damage == "drop_config":
        del meta["config"]
    elif damage == "drop_sensors":
        del meta["sensors"]
    elif damage == "foreign_alarm_setting":
        meta["config"]["alarm"] = {"episodes": {"no_such_rule": 1}}
    else:
        meta["config"]["no_such_setting"] = 1
    with pytest.raises(UserError, match=r"^m: not a usable model artifact"):
        Model.from_artifacts({**files, "model.json": json.dumps(meta).encode()}, "m")
