"""Broker URLs keep their credentials, and show them to no one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.adapters.local.mqtt_url import (
    BrokerAddress,
    parse_broker_url,
    redact,
    with_credentials,
)
from edge.errors import ConfigError


def test_user_and_password_are_kept_but_not_in_the_printable_url() -> None:
    address = parse_broker_url("mqtt://pump-01:s3cr%40t@10.0.0.5:1884")
    assert address == BrokerAddress("10.0.0.5", 1884, False, "pump-01", "s3cr@t")
    assert address.url == "mqtt://10.0.0.5:1884"
    assert "s3cr" not in repr(address)
    assert parse_broker_url(address.url_with_credentials) == address


def test_a_url_without_credentials_has_none() -> None:
    address = parse_broker_url("mqtts://broker.example")
    assert (address.username, address.password, address.port, address.tls) == (
        None,
        None,
        8883,
        True,
    )
    assert address.url_with_credentials == "mqtts://broker.example:8883"


def test_with_credentials_replaces_any_given_and_redact_hides_the_password() -> None:
    url = with_credentials("mqtt://old:pw@127.0.0.1:1883", "plantwatch-rules", "p/w:x")
    assert parse_broker_url(url).username == "plantwatch-rules"
    assert parse_broker_url(url).password == "p/w:x"
    assert redact("mqtt://u:hunter2@h:1") == "mqtt://u:***@h:1"
    assert redact("mqtt://h:1") == "mqtt://h:1"


def test_a_bad_url_error_never_echoes_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        parse_broker_url("http://u:hunter2@h:1")
    assert "hunter2" not in str(info.value)


@given(
    user=st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s),
    password=st.text(max_size=40).filter(lambda s: "\x00" not in s),
)
def test_any_credentials_survive_the_round_trip(user: str, password: str) -> None:
    url = with_credentials("mqtt://127.0.0.1:1883", user, password)
    address = parse_broker_url(url)
    assert (address.username, address.password) == (user, password)
