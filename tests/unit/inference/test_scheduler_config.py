"""A scheduler configuration outside CreateInferenceScheduler's rules is refused, naming the
field and what it takes; never a TypeError, a fractional wake-up or a folder outside the
data directory."""

from __future__ import annotations

from typing import Any

import pytest

from cloud.inference.scheduler import SchedulerConfig
from cloud.l4e.naming import upload_frequency_seconds
from edge.errors import ConfigError


def config(**kwargs: Any) -> SchedulerConfig:
    return SchedulerConfig(**{"name": "s1", "model_name": "pumps", **kwargs})


@pytest.mark.parametrize("delay", ["5", 5.5, 1.0, True, None, -1, 61, float("nan")])
def test_a_delay_offset_that_is_no_whole_number_of_minutes_0_to_60_is_refused(
    delay: object,
) -> None:
    with pytest.raises(ConfigError, match=r"DataDelayOffsetInMinutes .*0 to 60"):
        config(delay_offset_min=delay)


@pytest.mark.parametrize("delay", [0, 1, 59, 60])
def test_every_delay_offset_aws_allows_is_taken(delay: int) -> None:
    assert config(delay_offset_min=delay).delay_offset_min == delay


@pytest.mark.parametrize("frequency", [None, ["PT5M"], 300, "PT1M", "PT2H", "pt5m", " PT5M"])
def test_an_upload_frequency_outside_the_allowed_set_is_refused_by_name(frequency: object) -> None:
    with pytest.raises(ConfigError, match=r"DataUploadFrequency .*PT5M, PT10M, PT15M, PT30M, PT1H"):
        config(upload_frequency=frequency)
    with pytest.raises(ConfigError, match="DataUploadFrequency"):
        upload_frequency_seconds(frequency)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bucket",
    ["", "ab", "../../etc", "..", "a/b", "Input", "in_put", "-input", "input-", "a" * 64, None],
)
@pytest.mark.parametrize("field", ["input_bucket", "output_bucket"])
def test_a_bucket_that_is_no_bucket_name_is_refused_by_name(field: str, bucket: object) -> None:
    """Locally a bucket is a folder under the data directory: ``../../etc`` named one
    outside it."""
    with pytest.raises(ConfigError, match=r"Bucket .*3-63"):
        config(**{field: bucket})


@pytest.mark.parametrize("bucket", ["input", "pw-in", "my.bucket.1", "abc"])
def test_a_bucket_name_aws_allows_is_taken(bucket: str) -> None:
    assert config(input_bucket=bucket, output_bucket=bucket).input_bucket == bucket


@pytest.mark.parametrize(
    "prefix", ["input", "in\x00put/", "入力/", "a" * 1024 + "/", None, 7, "x\x1f/"]
)
@pytest.mark.parametrize("field", ["input_prefix", "output_prefix"])
def test_a_prefix_outside_aws_pattern_is_refused_by_name(field: str, prefix: object) -> None:
    # Prefix pattern (^$)|([\u0009\u000A\u000D\u0020-\u00FF]{1,1023}/$)
    with pytest.raises(ConfigError, match="Prefix"):
        config(**{field: prefix})


@pytest.mark.parametrize("prefix", ["", "input/", "a b/é/", "deep/er/", "x" * 1023 + "/"])
def test_a_prefix_aws_allows_is_taken(prefix: str) -> None:
    assert config(input_prefix=prefix, output_prefix=prefix).input_prefix == prefix


@pytest.mark.parametrize("name", [None, 5, "", "a b", "a/b", "x" * 201])
def test_a_scheduler_name_outside_the_pattern_is_refused_by_name(name: object) -> None:
    with pytest.raises(ConfigError, match="InferenceSchedulerName"):
        config(name=name)


@pytest.mark.parametrize(
    "naming",
    [None, "EPOCH", ["_"], {"delimiter": "_", "format": "EPOCH"}, {"tz_offset": None}],
)
def test_a_stored_naming_of_the_wrong_shape_is_a_config_error(naming: object) -> None:
    doc = {**config().to_dict(), "naming": naming}
    with pytest.raises(ConfigError, match=r"InferenceInputNameConfiguration|InputTimeZoneOffset"):
        SchedulerConfig.from_dict(doc)


def test_a_stored_configuration_reads_back_unchanged() -> None:
    original = config(input_prefix="a b/", delay_offset_min=7, upload_frequency="PT1H")
    assert SchedulerConfig.from_dict(original.to_dict()) == original
