"""l4e-contracts §6: each execution names the model version it scored with (``ModelVersion``)
and, where the deployment's Region and account are known, the L4E-shaped ARNs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import plant_frame
from hypothesis import given
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryObjectStore, InMemoryStateStore
from cloud.inference.model import Model, train
from cloud.inference.registry import ModelRegistry
from cloud.inference.scheduler import (
    EXECUTIONS_NS,
    Execution,
    Scheduler,
    SchedulerConfig,
    create_scheduler,
    execution_key,
    list_executions,
)
from cloud.l4e.arns import ArnScope
from edge.clock import ManualClock

HISTORY = plant_frame(rows=3000, start="2025-12-29")
END = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
CONFIG = SchedulerConfig(name="pump-sched", model_name="pump")

# The response patterns of botocore's lookoutequipment 2020-12-15 model (ModelArn,
# ModelVersionArn, InferenceSchedulerArn), copied here: a test must not need the AWS SDK's
# data files to say what AWS accepts.
MODEL_ARN = r"arn:aws(-[^:]+)?:lookoutequipment:[a-zA-Z0-9\-]*:[0-9]{12}:model\/.+"
MODEL_VERSION_ARN = (
    r"^arn:aws(-[^:]+)?:lookoutequipment:[a-zA-Z0-9\-]*:[0-9]{12}:model\/"
    r"[0-9a-zA-Z_-]{1,200}\/.+\/model-version\/[0-9]{1,}$"
)
SCHEDULER_ARN = (
    r"arn:aws(-[^:]+)?:lookoutequipment:[a-zA-Z0-9\-]*:[0-9]{12}:inference-scheduler\/.+"
)
NAMES = st.from_regex(r"[0-9a-zA-Z_-]{1,200}", fullmatch=True)


@pytest.fixture(scope="module")
def model() -> Model:
    return train(HISTORY)


def _registry(model: Model, versions: int) -> ModelRegistry:
    registry = ModelRegistry(InMemoryObjectStore())
    for _ in range(versions):
        registry.save("pump", Model.from_artifacts(model.to_artifacts(), "test"))
    return registry


def _run(registry: ModelRegistry, state: InMemoryStateStore, **kwargs: object) -> Execution:
    scheduler = Scheduler(
        CONFIG,
        registry.load("pump"),
        InMemoryObjectStore(),
        InMemoryObjectStore(),
        state,
        ManualClock(END.timestamp()),
        **kwargs,  # type: ignore[arg-type]
    )
    return scheduler.run_window(END)


def test_an_execution_records_the_registry_version_active_when_it_ran(model: Model) -> None:
    registry, state = _registry(model, versions=3), InMemoryStateStore()
    registry.set_active("pump", 2)
    ran = _run(registry, state)
    # a FAILED run (no input here) scored nothing, yet names the version it ran with, as L4E
    assert (ran.status, ran.model_version) == ("FAILED", 2)
    [listed] = list_executions(state, "pump-sched")
    assert listed.model_version == 2
    assert (listed.model_arn, listed.model_version_arn, listed.scheduler_arn) == (None,) * 3


def test_the_version_is_the_folder_loaded_even_when_model_json_says_otherwise(
    model: Model,
) -> None:
    """A model.json copied by hand from another version (or written before versions were
    recorded in it) must not decide: the registry's folder does."""
    registry = _registry(model, versions=2)
    store = registry.store
    meta = json.loads(store.get("pump/v2/model.json"))
    meta.get("info", {}).pop("version", None)
    store.put("pump/v2/model.json", json.dumps(meta).encode())
    assert registry.load("pump").info["version"] == 2
    assert registry.load("pump", 1).info["version"] == 1


def test_with_a_deployment_scope_the_execution_carries_l4e_shaped_arns(model: Model) -> None:
    scope = ArnScope(partition="aws", region="eu-west-1", account="123456789012")
    ran = _run(_registry(model, versions=1), InMemoryStateStore(), arns=scope)
    assert ran.model_arn == "arn:aws:lookoutequipment:eu-west-1:123456789012:model/pump/plantwatch"
    assert ran.model_version_arn == f"{ran.model_arn}/model-version/1"
    assert ran.scheduler_arn == (
        "arn:aws:lookoutequipment:eu-west-1:123456789012:inference-scheduler/pump-sched/plantwatch"
    )


@given(model_name=NAMES, scheduler=NAMES, version=st.integers(1, 10**6))
def test_every_arn_matches_the_l4e_response_pattern(
    model_name: str, scheduler: str, version: int
) -> None:
    for partition, region in (("aws", "us-east-1"), ("aws-cn", "cn-north-1")):
        scope = ArnScope(partition=partition, region=region, account="000000000000")
        assert re.fullmatch(MODEL_ARN, scope.model(model_name))
        assert re.fullmatch(MODEL_VERSION_ARN, scope.model_version(model_name, version))
        assert re.fullmatch(SCHEDULER_ARN, scope.inference_scheduler(scheduler))


@pytest.mark.parametrize(
    ("arn", "scope"),
    [
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:plantwatch-inference",
            ArnScope("aws", "eu-west-1", "123456789012"),
        ),
        (
            "arn:aws-us-gov:lambda:us-gov-west-1:210987654321:function:f:live",
            ArnScope("aws-us-gov", "us-gov-west-1", "210987654321"),
        ),
        ("arn:aws:lambda:eu-west-1:12345:function:f", None),  # no 12-digit account
        ("arn:aws:lambda::123456789012:function:f", None),  # no Region
        ("not an arn", None),
        (None, None),
        (42, None),
    ],
)
def test_the_scope_comes_from_the_invoked_function_arn(arn: object, scope: ArnScope | None) -> None:
    assert ArnScope.from_arn(arn) == scope


def _summaries(data: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    from cloud.cli.main import main

    assert main(["executions", "--data", str(data), *extra]) == 0
    return capsys.readouterr().out


def test_executions_list_shows_the_version_and_old_records_still_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloud.cli.schedulers import LocalStack

    data = tmp_path / "d"
    old = datetime(2026, 1, 1, tzinfo=UTC)
    new = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    with LocalStack(data, create=True) as stack:
        create_scheduler(stack.state, CONFIG, old.timestamp())
        for start, version in ((old, None), (new, 7)):
            end = start.replace(minute=start.minute + 5)
            run = Execution("pump-sched", start, end, end, "FAILED", "no data", None)
            run.model_name = "pump"
            record = run.to_record()
            if version is None:  # a record stored before versions were recorded
                del record["model_version"]
                for key in ("model_arn", "model_version_arn", "scheduler_arn"):
                    record.pop(key, None)
            else:  # as the inference Lambda stores it
                scope = ArnScope("aws", "eu-west-1", "123456789012")
                record.update(
                    model_version=version,
                    model_arn=scope.model("pump"),
                    model_version_arn=scope.model_version("pump", version),
                    scheduler_arn=scope.inference_scheduler("pump-sched"),
                )
            stack.state.put(EXECUTIONS_NS, execution_key("pump-sched", start), record)
    newest, oldest = json.loads(_summaries(data, capsys, "--json"))
    assert newest["ModelVersion"] == 7
    assert newest["ModelArn"].endswith(":model/pump/plantwatch")
    assert newest["ModelVersionArn"] == newest["ModelArn"] + "/model-version/7"
    assert newest["InferenceSchedulerArn"].endswith(":inference-scheduler/pump-sched/plantwatch")
    # an old record, or one run where no Region or account is known: nothing made up
    assert not {"ModelVersion", "ModelArn", "ModelVersionArn", "InferenceSchedulerArn"} & set(
        oldest
    )
    header, first, second = _summaries(data, capsys).splitlines()
    assert "model version" in header
    column = header.index("model version")
    assert first[column:].split()[0] == "7"
    assert second[column:].split()[0] == "-"
