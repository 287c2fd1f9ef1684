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


def _logged(emit) -> list[int]:
    """The byte length of each line the handlers' Observability writes for *emit*."""
    import contextlib
    import io

    from cloud.handlers.observability import Observability

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        emit(Observability())
    return [len(line.encode()) + 1 for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("sensors", [1, 10, 30])
def test_log_line_sizes_are_the_handlers_lines(sensors: int) -> None:
    from cloud.handlers.observability import Metric
    from infra import cost

    names = [f"pump-0001\\sensor_{i:02d}" for i in range(sensors)]
    diagnostics = [{"name": n, "value": round(1 / sensors, 5)} for n in names]
    window = {"data_start_time": "2026-01-05T07:00:00Z", "data_end_time": "2026-01-05T07:05:00Z"}

    def emit(obs) -> None:
        obs.event(
            "result",
            site="plant-01",
            asset="pump-0001",
            timestamp="2026-01-05T07:05:30.000000",
            prediction=1,
            anomaly_score=0.73412,
            top_sensor=names[0],
            diagnostics=diagnostics,
        )
        obs.event(
            "window",
            site="plant-01",
            asset="pump-0001",
            scheduler="plantwatch",
            rows=300,
            anomalous_rows=3,
            max_score=0.73412,
            top_sensor=names[0],
            **window,
        )
        obs.event(
            "execution",
            scheduler="plantwatch",
            status="SUCCESS",
            input_files=100,
            failed_components=[],
            **window,
        )
        for metric in Metric:
            obs.count(metric, "plant-01", 3)
        obs.flush()

    result, window_line, execution, emf = _logged(emit)
    modelled = cost.RESULT_LINE_BYTES + cost.RESULT_LINE_BYTES_PER_SENSOR * sensors
    assert result == pytest.approx(modelled, rel=0.15)
    assert window_line == pytest.approx(cost.WINDOW_LINE_BYTES, rel=0.15)
    assert execution == pytest.approx(cost.EXECUTION_LINE_BYTES, rel=0.15)
    assert emf == pytest.approx(cost.EMF_BYTES, rel=0.15)


def test_logs_follow_the_anomalous_rows_not_every_row() -> None:
    quiet = estimate(Usage(assets=1000, anomalous_share=0.0))
    usual = estimate(Usage(assets=1000))
    noisy = estimate(Usage(assets=1000, anomalous_share=0.5))
    logs = "cloudwatch_metrics_and_logs"
    assert usual["usage"]["result_log_lines_per_month"] == pytest.approx(
        0.02 * usual["usage"]["result_rows_per_month"], rel=1e-6
    )
    assert quiet["usage"]["result_log_lines_per_month"] == 0
    # at 1,000 assets, logs stay a small item unless most rows are anomalous
    assert usual["services_usd_per_month"][logs] < 0.1 * usual["total_usd_per_month"]
    assert noisy["services_usd_per_month"][logs] > 10 * usual["services_usd_per_month"][logs]
    assert quiet["services_usd_per_month"][logs] > 0  # window lines, metrics, Lambda's lines


def test_anomalous_pct_is_checked(capsys) -> None:
    assert main(["cost", "--anomalous-pct", "150"]) == 2
    assert "--anomalous-pct" in capsys.readouterr().err
