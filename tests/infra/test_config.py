"""CDK context keys the functions' environment comes from: validated once, named in errors."""

from __future__ import annotations

import pytest

from edge.errors import ConfigError
from infra.config import from_context


def config(**context: object):
    return from_context(context.get)


def test_default_site_is_s1_unless_given() -> None:
    assert config().default_site == "s1"
    assert config(default_site="plant1").default_site == "plant1"
    assert config(default_site="").default_site is None  # every site in its own folder


def test_a_bad_default_site_is_named() -> None:
    with pytest.raises(ConfigError, match=r"context default_site: 'plant 1' must match"):
        config(default_site="plant 1")


def test_detector_model_key_is_optional_and_under_detectors() -> None:
    assert config().detector_model_key is None
    key = "detectors/site_pumps/0123456789ab.json"
    assert config(detector_model_key=key).detector_model_key == key
    for bad in ("models/x.json", "detectors/x.txt", "/detectors/x.json"):
        with pytest.raises(ConfigError, match="context detector_model_key"):
            config(detector_model_key=bad)


def test_alarm_model_keys_are_optional_under_alarms_or_none() -> None:
    assert config().alarm_model_keys == ()
    keys = "alarms/a/0123456789ab.json, alarms/b/ba9876543210.json"
    assert config(alarm_model_keys=keys).alarm_model_keys == (
        "alarms/a/0123456789ab.json",
        "alarms/b/ba9876543210.json",
    )
    assert config(alarm_model_keys='["alarms/a/1.json"]').alarm_model_keys == ("alarms/a/1.json",)
    assert config(alarm_model_keys="none").alarm_model_keys == ("none",)
    for bad in ("detectors/x.json", "alarms/x.txt", "alarms/a.json,none"):
        with pytest.raises(ConfigError, match="context alarm_model_keys"):
            config(alarm_model_keys=bad)
