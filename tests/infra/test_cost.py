"""plantwatch cost: the per-service model, its inputs and its CLI."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.cli.main import main
from infra.cost import Usage, estimate, load_prices


def test_every_price_names_its_date_and_source() -> None:
    doc = json.loads((__import__("infra.cost").cost.PRICES).read_text())
    for name, entry in doc["prices"].items():
        assert entry["usd"] >= 0 and entry["date"] and entry["source"], name
        assert "verified" in entry, name
    assert load_prices()["l4e_scheduler_hour"] == 0.25


def test_default_report_has_the_three_fleets(capsys) -> None:
    assert main(["cost", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for fleet in ("100", "1000", "10000"):
        entry = doc[fleet]
        assert entry["per_asset_usd_per_month"] == pytest.approx(
            entry["total_usd_per_month"] / int(fleet), rel=1e-3
        )
        assert entry["retired"]["per_asset_usd_per_month"] > entry["per_asset_usd_per_month"]
    assert doc["assumptions"]["readings_per_message"] == 20


def test_one_fleet_size(capsys) -> None:
    assert main(["cost", "--assets", "250", "--rate", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(k for k in doc if k != "assumptions") == ["250"]


def test_bad_input_is_one_line_and_exit_2(capsys) -> None:
    assert main(["cost", "--assets", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "plantwatch: error: argument --assets: expected a whole number of at least 1, got '0' "
        "(see `plantwatch cost --help`)"
    ]


def test_iot_messages_are_metered_in_5_kb_steps() -> None:
    small = estimate(Usage(assets=100, readings_per_message=20))
    large = estimate(Usage(assets=100, readings_per_message=40))
    assert small["usage"]["iot_units_per_message"] == 1
    assert large["usage"]["iot_units_per_message"] == 2
    # twice the readings per message, half the messages, but each is two 5 KB units
    iot = "iot_core_messages_and_connectivity"
    assert large["services_usd_per_month"][iot] == pytest.approx(
        small["services_usd_per_month"][iot], rel=0.05
    )
    single = estimate(Usage(assets=100, readings_per_message=1))
    assert single["services_usd_per_month"][iot] > 10 * small["services_usd_per_month"][iot]


def test_s3_puts_scale_with_assets_times_windows() -> None:
    a = estimate(Usage(assets=1000))
    assert a["usage"]["s3_puts_per_month"] == 1000 * (730 * 3600 // 300) * 6
    assert a["services_usd_per_month"]["s3_requests"] > a["services_usd_per_month"]["kinesis"]


@given(
    assets=st.integers(1, 20_000),
    rate=st.floats(0.01, 50),
    batch=st.integers(1, 500),
)
def test_costs_are_positive_and_grow_with_the_fleet(assets: int, rate: float, batch: int) -> None:
    one = estimate(Usage(assets=assets, rate_per_s=rate, readings_per_message=batch))
    two = estimate(Usage(assets=assets * 2, rate_per_s=rate, readings_per_message=batch))
    assert all(v >= 0 for v in one["services_usd_per_month"].values())
    assert two["total_usd_per_month"] > one["total_usd_per_month"]
