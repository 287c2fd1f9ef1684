"""``bench broker --auth``: one JSON document with the open and the authenticated rate of
each broker, measured in the same run (issue 13: what credentials and ACLs cost)."""

from __future__ import annotations

import json

import pytest

from cloud.cli.main import main

pytestmark = pytest.mark.slow


def test_bench_broker_with_auth_reports_both_rates_per_broker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["bench", "broker", "--auth", "--messages", "300", "--repeat", "1", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    amqtt = report["brokers"]["amqtt"]
    assert amqtt["qos1_msgs_per_s"] > 0 and amqtt["auth_qos1_msgs_per_s"] > 0
    assert amqtt["auth_ratio"] == round(amqtt["auth_qos1_msgs_per_s"] / amqtt["qos1_msgs_per_s"], 3)
