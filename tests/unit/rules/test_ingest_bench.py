"""``bench ingest``: the in-process mode times the runner's batch path on the edge agent's
payload and counts every reading; the headline batch size is the agent's own default."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cloud.bench.ingest import AGENT_SAMPLES_PER_MESSAGE
from cloud.cli.main import main
from edge.agent import AgentConfig


def test_the_default_batch_is_the_edge_agents() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(AgentConfig)}
    assert defaults["samples_per_message"] == AGENT_SAMPLES_PER_MESSAGE


def test_in_process_bench_lands_every_reading_and_reports_its_cost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "ingest", "--in-process", "--readings", "2400", "--repeat", "1", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["lost"], report["duplicated"]) == (0, 0)
    assert report["readings"] == 2400 and report["messages"] == 120
    assert report["payload"] == "pump" and report["per_message"] == 20
    assert report["files_written"] == 4 * 2  # 4 assets, 600 s of one-second samples
    assert report["us_per_message"] == pytest.approx(
        report["intake_us_per_message"] + report["flush_us_per_message"], abs=0.02
    )
    assert report["baseline"]["us_per_message"] > 0 and report["ratio"] > 0
    assert report["cpu_us_per_message"] > 0


@pytest.mark.parametrize(
    ("broker", "client"),
    [("amqtt", "paho"), pytest.param("mosquitto", "crt", marks=pytest.mark.mosquitto)],
)
def test_broker_bench_splits_the_runners_cpu_per_message(
    capsys: pytest.CaptureFixture[str], broker: str, client: str
) -> None:
    argv = ["bench", "ingest", "--broker", broker, "--readings", "2000", "--repeat", "1"]
    assert main([*argv, "--baseline-messages", "200", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["client"] == client, "auto: awscrt where the broker speaks MQTT 5"
    assert (report["lost"], report["duplicated"]) == (0, 0)
    assert report["deadline_passed"] is False and report["runs"][0]["deadline_passed"] is False
    total = report["runner_cpu_us_per_message"]
    assert total == pytest.approx(report["runner_cpu_us_per_reading"] * 20, rel=0.05)
    assert 0 <= report["worker_cpu_us_per_message"] <= total
    assert 0 <= report["network_cpu_us_per_message"] <= total
    assert report["runs"][0]["messages_per_batch"] >= 1
    # every thread of the runner process, by role; the parts make up the total
    (run,) = report["runs"]
    parts = run["threads_cpu_us_per_message"]
    assert {"network", "worker", "flush", "harness", "stop", "ended_threads"} <= set(parts)
    assert 0 < parts["worker"] <= run["worker_cpu_us_per_message"] + 0.1  # since the start
    assert sum(parts.values()) == pytest.approx(run["runner_cpu_us_per_message"], abs=1)
    # the least a Python runner pays per message: a subscriber on the runner's client that
    # only acknowledges, the wire decode and the CSV render, measured in the same run
    floor = report["floor"]
    assert floor["client"] == client
    assert floor["network_cpu_us_per_message"] > 0
    assert floor["decode_us_per_message"] > 0 and floor["render_us_per_message"] > 0
    assert floor["total_us_per_message"] == pytest.approx(
        floor["network_cpu_us_per_message"]
        + floor["decode_us_per_message"]
        + floor["render_us_per_message"],
        abs=0.2,
    )
    assert floor["runner_over_floor"] == pytest.approx(
        total / floor["total_us_per_message"], rel=0.01
    )


@pytest.mark.mosquitto
def test_a_shared_group_run_is_not_split_with_the_last_runs_sessions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Runners keep their sessions on purpose; a bench run's must not outlive it, or the
    broker hands the dead members of the group their share of the next run's messages."""
    argv = ["bench", "ingest", "--broker", "mosquitto", "--runners", "2", "--repeat", "2"]
    assert main([*argv, "--readings", "2000", "--baseline-messages", "200", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(r["lost"], r["duplicated"]) for r in report["runs"]] == [(0, 0), (0, 0)]
