"""Monthly AWS cost of the deployed architecture, per service, and of the retired setup.

A usage model (how many messages, requests, objects and bytes a fleet produces) times the
unit prices in ``prices.json``. Every quantity is derived from the inputs below; the
constants say what a plantwatch component does per window, as the code does today.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge.errors import ConfigError

PRICES = Path(__file__).with_name("prices.json")
SECONDS_PER_MONTH = 730 * 3600
MINUTES_PER_MONTH = 730 * 60
KB = 1024
IOT_UNIT = 5 * KB
"""IoT Core meters messages and rule actions, and Firehose records, in 5 KB steps."""
KINESIS_UNIT = 25 * KB
IOT_EVENTS_UNIT = KB
DEFAULT_FLEETS = (100, 1_000, 10_000)

# CloudWatch Logs: the bytes of each line the handlers write (measured from
# cloud/handlers/observability.py; tests/infra/test_cost.py checks them against real lines).
RESULT_LINE_BYTES = 250
RESULT_LINE_BYTES_PER_SENSOR = 48
"""A ``result`` line (one per anomalous row): fields plus one ``{name, value}`` per sensor."""
WINDOW_LINE_BYTES = 360
"""A ``window`` line: one per asset per window (results object)."""
EXECUTION_LINE_BYTES = 320
EMF_BYTES = 620
"""One embedded-metric document of the seven metrics for a site."""
PLATFORM_BYTES_PER_INVOCATION = 600
"""Lambda's own JSON lines per invocation (``platform.start``, ``platform.report``): an
estimate, not measured here."""


@dataclass(frozen=True, slots=True)
class Usage:
    assets: int
    rate_per_s: float = 1.0
    """Readings per second per asset."""
    readings_per_message: int = 20
    sensors: int = 10
    window_s: int = 300
    """The scheduler's upload frequency (PT5M)."""
    assets_per_site: int = 100
    alerts_per_asset_month: float = 4.0
    sms_share: float = 0.5
    anomalous_share: float = 0.02
    """Share of result rows flagged anomalous: each one is a ``result`` log line."""

    def __post_init__(self) -> None:
        if self.assets < 1:
            raise ConfigError(f"--assets: expected at least 1, got {self.assets}")
        if not 0 < self.rate_per_s <= 1000:
            raise ConfigError(f"--rate: expected 0 < R <= 1000 readings/s, got {self.rate_per_s}")
        if not 1 <= self.readings_per_message <= 10_000:
            raise ConfigError(
                f"--readings-per-message: expected 1 to 10000, got {self.readings_per_message}"
            )
        if not 1 <= self.sensors <= 500:
            raise ConfigError(f"--sensors: expected 1 to 500, got {self.sensors}")
        if not 0 <= self.anomalous_share <= 1:
            raise ConfigError(
                f"--anomalous-pct: expected 0 to 100, got {self.anomalous_share * 100:g}"
            )

    @property
    def reading_bytes(self) -> int:
        """One sample on the wire: ``{"ts":1700000000000,"values":{"sensor_01":12.345,...}}``."""
        return 30 + 20 * self.sensors

    @property
    def message_bytes(self) -> int:
        """Payload plus envelope (v, site, asset, sender, seq) plus topic."""
        return 120 + self.readings_per_message * self.reading_bytes


def load_prices(path: Path = PRICES) -> dict[str, float]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {name: float(entry["usd"]) for name, entry in doc["prices"].items()}


def estimate(usage: Usage, prices: dict[str, float] | None = None) -> dict[str, Any]:
    """Monthly cost by service for *usage*; ``total_usd_per_month`` and per asset."""
    p = prices or load_prices()
    n = usage.assets
    readings = n * usage.rate_per_s * SECONDS_PER_MONTH
    messages = readings / usage.readings_per_message
    iot_units = math.ceil(usage.message_bytes / IOT_UNIT)
    windows = SECONDS_PER_MONTH / usage.window_s
    asset_windows = n * windows
    rules = 2  # telemetry -> Kinesis, telemetry -> Firehose archive

    iot_core = (
        messages * iot_units * p["iot_messages_per_million"] / 1e6
        + n * MINUTES_PER_MONTH * p["iot_connectivity_per_million_minutes"] / 1e6
    )
    rules_cost = (
        messages * rules * p["iot_rules_triggered_per_million"] / 1e6
        + messages * rules * iot_units * p["iot_actions_per_million"] / 1e6
    )
    record_bytes = math.ceil(usage.message_bytes * 4 / 3) + 200  # base64 payload + envelope
    bytes_per_s = messages * record_bytes / SECONDS_PER_MONTH
    records_per_s = messages / SECONDS_PER_MONTH
    shards = max(1, math.ceil(max(bytes_per_s / (1024 * KB), records_per_s / 1000) * 1.25))
    kinesis = (
        shards * 730 * p["kinesis_shard_hour"]
        + messages
        * math.ceil(record_bytes / KINESIS_UNIT)
        * p["kinesis_put_units_per_million"]
        / 1e6
    )

    # Lambda: batcher ~2 ms per message at 512 MB plus a flush a minute; inference one
    # execution per window scoring every asset (0.5 s + 20 ms/asset at 2 GB); detector one
    # invocation per results object (0.3 s at 1 GB); timers one a minute (0.2 s at 512 MB).
    batcher_gbs = messages * 0.002 * 0.5 + MINUTES_PER_MONTH * 0.2 * 0.5
    inference_gbs = windows * (0.5 + 0.02 * n) * 2
    detector_gbs = asset_windows * 0.3 * 1
    timers_gbs = MINUTES_PER_MONTH * 0.2 * 0.5
    invocations = messages / 100 + MINUTES_PER_MONTH * 2 + windows + asset_windows
    lambda_cost = (batcher_gbs + inference_gbs + detector_gbs + timers_gbs) * p[
        "lambda_gb_second"
    ] + invocations * p["lambda_requests_per_million"] / 1e6

    # S3 requests: per asset per window the batcher writes the input CSV plus its spool
    # records (pending chunk, seen, written), the scheduler writes results.jsonl and
    # Firehose one Parquet object per partition; reads: inference reads the CSV, the
    # detector the results, the batcher its spool.
    puts = asset_windows * (1 + 3 + 1 + 1)
    gets = asset_windows * (1 + 1 + 2)
    csv_bytes = readings * (14 + 9 * usage.sensors)
    results_bytes = readings * (120 + 30 * usage.sensors)
    parquet_bytes = readings * (8 + 3 * usage.sensors)
    stored_gb = (csv_bytes + results_bytes + parquet_bytes) / KB**3
    s3_requests = puts * p["s3_put_per_thousand"] / 1e3 + gets * p["s3_get_per_thousand"] / 1e3
    s3_storage = stored_gb * p["s3_storage_gb_month"]

    dynamodb = (
        asset_windows * 3 * p["dynamodb_write_units_per_million"] / 1e6
        + asset_windows * 2 * p["dynamodb_read_units_per_million"] / 1e6
    )
    alerts = n * usage.alerts_per_asset_month
    sns = (
        alerts * 2 * p["sns_publish_per_million"] / 1e6
        + alerts * (1 - usage.sms_share) * p["sns_email_per_100k"] / 1e5
        + alerts * usage.sms_share * p["sns_sms_each"]
    )
    firehose_gb = messages * math.ceil(usage.message_bytes / IOT_UNIT) * IOT_UNIT / KB**3
    firehose = (
        firehose_gb
        * (
            p["firehose_ingest_gb"]
            + p["firehose_format_conversion_gb"]
            + p["firehose_dynamic_partitioning_gb"]
        )
        + asset_windows * p["firehose_dynamic_partitioning_objects_per_thousand"] / 1e3
    )
    scheduler = windows * p["scheduler_invocations_per_million"] / 1e6
    sites = math.ceil(n / usage.assets_per_site)
    result_rows = readings  # one results.jsonl row per reading
    anomalous_rows = result_rows * usage.anomalous_share
    # a "result" line per anomalous row, a "window" line per asset per window, an
    # "execution" line and a metrics document per execution, Lambda's lines per invocation
    log_bytes = (
        anomalous_rows * (RESULT_LINE_BYTES + RESULT_LINE_BYTES_PER_SENSOR * usage.sensors)
        + asset_windows * WINDOW_LINE_BYTES
        + windows * (EXECUTION_LINE_BYTES + EMF_BYTES)
        + invocations * PLATFORM_BYTES_PER_INVOCATION
    )
    log_gb = log_bytes / KB**3
    cloudwatch = sites * 7 * p["cloudwatch_metric_month"] + log_gb * p["cloudwatch_logs_ingest_gb"]
    kms = p["kms_key_month"]

    services = {
        "iot_core_messages_and_connectivity": iot_core,
        "iot_rules_and_actions": rules_cost,
        "kinesis": kinesis,
        "lambda": lambda_cost,
        "s3_requests": s3_requests,
        "s3_storage": s3_storage,
        "dynamodb": dynamodb,
        "sns": sns,
        "firehose": firehose,
        "eventbridge_scheduler": scheduler,
        "cloudwatch_metrics_and_logs": cloudwatch,
        "kms": kms,
    }
    total = sum(services.values())

    l4e = n * 730 * p["l4e_scheduler_hour"]
    row_kb = math.ceil((120 + 30 * usage.sensors) / IOT_EVENTS_UNIT)
    iot_events = result_rows * row_kb * p["iot_events_evaluations_per_million"] / 1e6
    shared = sum(
        services[k]
        for k in (
            "iot_core_messages_and_connectivity",
            "iot_rules_and_actions",
            "kinesis",
            "s3_requests",
            "s3_storage",
            "sns",
            "kms",
        )
    )
    retired_total = l4e + iot_events + shared
    return {
        "assets": n,
        "total_usd_per_month": round(total, 2),
        "per_asset_usd_per_month": round(total / n, 4),
        "services_usd_per_month": {k: round(v, 2) for k, v in services.items()},
        "usage": {
            "messages_per_month": round(messages),
            "iot_units_per_message": iot_units,
            "message_bytes": usage.message_bytes,
            "kinesis_shards": shards,
            "s3_puts_per_month": round(puts),
            "result_rows_per_month": round(result_rows),
            "result_log_lines_per_month": round(anomalous_rows),
            "log_gb_per_month": round(log_gb, 1),
            "stored_gb_per_month": round(stored_gb, 1),
        },
        "retired": {
            "l4e_schedulers_usd_per_month": round(l4e, 2),
            "iot_events_usd_per_month": round(iot_events, 2),
            "shared_ingest_usd_per_month": round(shared, 2),
            "total_usd_per_month": round(retired_total, 2),
            "per_asset_usd_per_month": round(retired_total / n, 4),
        },
    }


def report(fleets: tuple[int, ...], **inputs: Any) -> dict[str, Any]:
    """One entry per fleet size (key: the number of assets as a string), plus assumptions."""
    out: dict[str, Any] = {}
    for n in fleets:
        out[str(n)] = estimate(Usage(assets=n, **inputs))
    first = Usage(assets=fleets[0], **inputs)
    assumptions = asdict(first)
    del assumptions["assets"]
    out["assumptions"] = {**assumptions, "region": "us-east-1", "prices": str(PRICES.name)}
    return out
