"""After a deploy: push a model, create a scheduler, push a detector model, then the
functions run on what the commands registered (moto).

The deployment is a CloudFormation stack whose outputs carry the names the CDK app declares
(``infra.outputs``); the commands find the buckets and the table through those outputs
alone, as they would after ``plantwatch deploy``. The entry points are the env-built
Lambda ``handler()`` functions, with the environment taken from the same outputs.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from aws_support import REGION, LambdaContext, table_resource
from moto import mock_aws

from cloud.adapters.aws import DynamoDbStateStore, S3ObjectStore
from cloud.adapters.local import InMemoryObjectStore, InMemoryStateStore
from cloud.cli.main import main
from cloud.detectors import default_detector_paths
from cloud.handlers import detector, inference, timers
from cloud.inference.model import TrainConfig, train
from cloud.inference.registry import ModelRegistry
from cloud.inference.scheduler import Scheduler, create_scheduler, load_config
from cloud.l4e.naming import InputNaming, format_row_timestamp, window_end
from cloud.runtime.layout import DataLayout
from edge.clock import ManualClock
from infra import outputs

EVENTS = Path(__file__).parents[1] / "events"
STACK = "plantwatch"
SCHEDULER = "plantwatch"
ASSETS = ("pump-01", "pump-02")


def stack_template() -> dict[str, Any]:
    """The deployment's data resources, with the outputs the CDK app declares."""
    buckets = {"Input": outputs.INPUT_BUCKET, "Output": outputs.OUTPUT_BUCKET}
    buckets |= {"Quarantine": outputs.QUARANTINE_BUCKET, "Artifacts": outputs.ARTIFACTS_BUCKET}
    resources: dict[str, Any] = {name: {"Type": "AWS::S3::Bucket"} for name in buckets}
    resources["State"] = table_resource([("namespace", "HASH"), ("key", "RANGE")])
    resources["Idempotency"] = table_resource([("id", "HASH")])
    resources["Alerts"] = {"Type": "AWS::SNS::Topic"}
    outs = {output: {"Value": {"Ref": name}} for name, output in buckets.items()}
    outs[outputs.STATE_TABLE] = {"Value": {"Ref": "State"}}
    outs[outputs.ALERTS_TOPIC_ARN] = {"Value": {"Ref": "Alerts"}}
    outs["IdempotencyTable"] = {"Value": {"Ref": "Idempotency"}}
    schedulers = [{"name": SCHEDULER, "upload_frequency": "PT5M", "delay_offset_min": 2}]
    outs[outputs.SCHEDULERS] = {"Value": json.dumps(schedulers)}
    return {"Resources": resources, "Outputs": outs}


@dataclass
class Deployed:
    outputs: dict[str, str]
    data: Path

    def env(self) -> dict[str, str]:
        """The functions' environment, as the stack sets it."""
        o = self.outputs
        return {
            "INPUT_BUCKET": o[outputs.INPUT_BUCKET],
            "OUTPUT_BUCKET": o[outputs.OUTPUT_BUCKET],
            "QUARANTINE_BUCKET": o[outputs.QUARANTINE_BUCKET],
            "ARTIFACTS_BUCKET": o[outputs.ARTIFACTS_BUCKET],
            "STATE_TABLE": o[outputs.STATE_TABLE],
            "IDEMPOTENCY_TABLE": o["IdempotencyTable"],
            "ALERTS_TOPIC_ARN": o[outputs.ALERTS_TOPIC_ARN],
            "SCHEDULER_NAME": SCHEDULER,
            "DEFAULT_SITE": "s1",
        }


def history() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = 1500
    load = np.where((np.arange(rows) // 200) % 2 == 1, 80.0, 40.0) + rng.normal(0, 2, rows)
    index = pd.date_range("2026-01-01", periods=rows, freq="60s", tz="UTC")
    return pd.DataFrame(
        {
            "flow": 3.0 * load + rng.normal(0, 2.0, rows),
            "motor_current": 0.2 * load + rng.normal(0, 0.3, rows),
            "temperature": 40 + 0.1 * load + rng.normal(0, 0.5, rows),
        },
        index=index,
    )


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Deployed]:
    for module in (inference, detector, timers):
        monkeypatch.setattr(module, "_handler", None)
    with mock_aws():
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(stack_template()))
        [stack] = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
        found = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        data = tmp_path / "data"
        DataLayout.at(data).registry().save("pumps", train(history(), TrainConfig()))
        yield Deployed(found, data)


def cli(*argv: str) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    text = out.getvalue()
    return code, json.loads(text) if text.strip().startswith(("{", "[")) else text, err.getvalue()


def invoke(handle: Any, event: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        response = handle(event, LambdaContext())
    return response, [json.loads(line) for line in out.getvalue().splitlines() if line]


def window_csvs(end: float) -> dict[str, bytes]:
    """One L4E input file per asset for the window ending at *end*; pump-02 overheats."""
    rng = np.random.default_rng(11)
    naming = InputNaming()
    files = {}
    for asset in ASSETS:
        lines = ["Timestamp,flow,motor_current,temperature"]
        for i in range(1, 21):
            at = datetime.fromtimestamp(end - 300 + 15 * i, tz=UTC)
            load = 80 + rng.normal(0, 2)
            hot = asset == "pump-02" and i > 8
            current = 0.2 * load * (1.8 if hot else 1.0) + rng.normal(0, 0.3)
            temperature = 40 + 0.1 * load + (25 if hot else 0) + rng.normal(0, 0.5)
            flow = 3 * load + rng.normal(0, 2)
            lines.append(f"{format_row_timestamp(at)},{flow:.3f},{current:.3f},{temperature:.3f}")
        key = naming.format(asset, datetime.fromtimestamp(end, tz=UTC), prefix="input/")
        files[key] = ("\n".join(lines) + "\n").encode()
    return files


def test_push_create_and_the_functions_run_on_what_was_registered(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    o = deployed.outputs
    # GIVEN a deployed stack, and a model trained locally
    # WHEN the model is pushed and a scheduler created, the names coming from the stack
    code, pushed, err = cli(
        "model", "push", "pumps", "--aws", "--data", str(deployed.data), "--json"
    )
    assert code == 0, err
    assert pushed == {
        "ModelName": "pumps",
        "LocalVersion": 1,
        "ModelVersion": 1,
        "Copied": True,
        "Path": f"s3://{o[outputs.ARTIFACTS_BUCKET]}/models/pumps/v1",
    }
    assert "schedulers create" in err
    code, described, err = cli(
        "schedulers", "create", SCHEDULER, "--model", "pumps", "--aws", "--json"
    )
    assert code == 0, err
    # its first window is the one after it started (a clock read before the command could
    # fall in the window before, when the command crosses a 5-minute boundary)
    created_at = datetime.fromisoformat(described["StartedAt"]).timestamp()
    assert described["DataUploadFrequency"] == "PT5M"
    assert described["DataDelayOffsetInMinutes"] == 2  # the stack's schedule fires at +2 min
    s3_in = described["DataInputConfiguration"]["S3InputConfiguration"]
    assert s3_in == {"Bucket": o[outputs.INPUT_BUCKET], "Prefix": "input/"}
    # AND a detector model is pushed (the default one, renamed)
    body = json.loads(default_detector_paths()[0].read_text())
    body["detectorModelName"] = "site_pumps"
    model_file = tmp_path / "site_pumps.json"
    model_file.write_text(json.dumps(body))
    code, uploaded, err = cli("detectors", "push", str(model_file), "--aws", "--json")
    assert code == 0, err
    assert uploaded["key"].startswith("detectors/site_pumps/") and not uploaded["deployed"]
    assert f"detector_model_key={uploaded['key']}" in err

    # WHEN the first window's files arrive and EventBridge Scheduler invokes the function
    end = window_end(created_at, 300)
    end = end + 300 if end <= created_at else end
    input_store = S3ObjectStore(o[outputs.INPUT_BUCKET])
    for key, csv in window_csvs(end).items():
        input_store.put(key, csv)
    for name, value in {**deployed.env(), "DETECTOR_MODEL_KEY": uploaded["key"]}.items():
        monkeypatch.setenv(name, value)
    at = datetime.fromtimestamp(end, tz=UTC) + timedelta(minutes=2, seconds=5)
    event = {"scheduler": SCHEDULER, "time": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    response, lines = invoke(inference.handler, event)

    # THEN results.jsonl are in the output bucket, equal to the local scheduler's
    assert [e["status"] for e in response["executions"]] == ["SUCCESS"]
    output_store = S3ObjectStore(o[outputs.OUTPUT_BUCKET])
    written = {key: output_store.get(key) for key in output_store.list("output/")}
    start = datetime.fromtimestamp(end - 300, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sorted(written) == [f"output/{asset}/{start}/results.jsonl" for asset in ASSETS]
    config = load_config(DynamoDbStateStore(o[outputs.STATE_TABLE]), SCHEDULER)
    local_in, local_out, local_state = (
        InMemoryObjectStore(),
        InMemoryObjectStore(),
        InMemoryStateStore(),
    )
    for key, csv in window_csvs(end).items():
        local_in.put(key, csv)
    create_scheduler(local_state, config, created_at)
    model = ModelRegistry(S3ObjectStore(o[outputs.ARTIFACTS_BUCKET]), "models/").load("pumps")
    Scheduler(
        config, model, local_in, local_out, local_state, ManualClock(at.timestamp())
    ).run_due()
    assert written == {key: local_out.get(key) for key in local_out.list("output/")}
    assert [x["status"] for x in lines if x.get("message") == "execution"] == ["SUCCESS"]

    # AND the detector function runs the pushed detector model on them
    failing = f"output/pump-02/{start}/results.jsonl"
    notification = json.loads((EVENTS / "s3_results_created.json").read_text())
    record = notification["Records"][0]["s3"]
    record["bucket"]["name"] = o[outputs.OUTPUT_BUCKET]
    record["object"]["key"] = failing
    response, _lines = invoke(detector.handler, notification)
    assert response["objects"][0]["rows_fed"] == 20
    instance = DynamoDbStateStore(o[outputs.STATE_TABLE]).get("detectors/site_pumps", "pump-02")
    assert instance is not None and instance["state"] == "Alarm"


def test_pushing_the_same_model_twice_adds_no_version(deployed: Deployed) -> None:
    args = ("model", "push", "pumps", "--aws", "--data", str(deployed.data), "--json")
    assert cli(*args)[1]["Copied"] is True
    code, again, _err = cli(*args)
    assert (code, again["ModelVersion"], again["Copied"]) == (0, 1, False)


def test_a_scheduler_the_stack_does_not_schedule_is_refused(deployed: Deployed) -> None:
    assert cli("model", "push", "pumps", "--aws", "--data", str(deployed.data))[0] == 0
    code, _out, err = cli("schedulers", "create", "fans", "--model", "pumps", "--aws")
    assert code == 2
    assert err.strip() == (
        "plantwatch: error: scheduler 'fans': stack 'plantwatch' has no schedule for it "
        "(deployed: plantwatch); name one of those, or add it to the `schedulers` context "
        "and deploy again"
    )
    code, _out, err = cli(
        "schedulers", "create", SCHEDULER, "--model", "pumps", "--aws", "--delay", "5"
    )
    assert code == 2 and "--delay 5: the stack's schedule 'plantwatch' fires with PT5M" in err
    # nothing was registered by the refused commands
    assert cli("schedulers", "list", "--aws", "--json")[1] == []


def test_a_missing_stack_or_model_is_one_line_and_exit_2(deployed: Deployed) -> None:
    code, _out, err = cli(
        "model", "push", "pumps", "--aws", "--stack", "nope", "--data", str(deployed.data)
    )
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "plantwatch: error: stack 'nope': not deployed in us-east-1 (run `plantwatch deploy`, "
        "pass --region, or name the resources directly)"
    )
    code, _out, err = cli("schedulers", "create", SCHEDULER, "--model", "fans", "--aws")
    assert code == 2 and "model 'fans': not found under s3://" in err


def test_explicit_names_need_no_stack(deployed: Deployed) -> None:
    o = deployed.outputs
    code, pushed, err = cli(
        "model", "push", "pumps", "--aws", "--stack", "absent", "--data", str(deployed.data),
        "--artifacts-bucket", o[outputs.ARTIFACTS_BUCKET], "--json",
    )  # fmt: skip
    assert code == 0, err
    assert pushed["ModelVersion"] == 1
    names = (
        "--state-table", o[outputs.STATE_TABLE],
        "--artifacts-bucket", o[outputs.ARTIFACTS_BUCKET],
        "--input-bucket", o[outputs.INPUT_BUCKET],
        "--output-bucket", o[outputs.OUTPUT_BUCKET],
    )  # fmt: skip
    code, described, err = cli(
        "schedulers", "create", "custom", "--model", "pumps", "--aws", "--stack", "absent",
        "--json", *names,
    )  # fmt: skip
    assert code == 0, err
    assert (described["DataUploadFrequency"], described["DataDelayOffsetInMinutes"]) == (
        "PT5M",
        0,
    )
    code, listed, err = cli(
        "schedulers", "list", "--aws", "--json", "--state-table", o[outputs.STATE_TABLE]
    )
    assert [row["InferenceSchedulerName"] for row in listed] == ["custom"]


def test_a_window_run_by_hand_on_aws_names_the_version_and_the_arns(deployed: Deployed) -> None:
    """l4e-contracts §6: `schedulers run --aws` writes the records the inference function
    writes, ModelVersion and the ARNs in the deployment's Region and account included."""
    from cloud.inference.scheduler import list_executions

    assert cli("model", "push", "pumps", "--aws", "--data", str(deployed.data))[0] == 0
    assert cli("schedulers", "create", SCHEDULER, "--model", "pumps", "--aws")[0] == 0
    end = "2026-01-05T07:05:00"
    code, runs, err = cli("schedulers", "run", SCHEDULER, "--window-end", end, "--aws", "--json")
    assert code == 1 and runs[0]["status"] == "FAILED", err  # no input files: still recorded
    [ran] = list_executions(DynamoDbStateStore(deployed.outputs[outputs.STATE_TABLE]), SCHEDULER)
    scope = f"arn:aws:lookoutequipment:{REGION}:123456789012"
    assert (ran.model_version, ran.model_version_arn, ran.scheduler_arn) == (
        1,
        f"{scope}:model/pumps/plantwatch/model-version/1",
        f"{scope}:inference-scheduler/{SCHEDULER}/plantwatch",
    )
