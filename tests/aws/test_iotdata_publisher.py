"""IotDataPublisher against moto: the publish reaches iot-data (moto keeps it in its backend)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iotdata.models import iotdata_backends

from cloud.adapters.aws import IotDataPublisher
from edge.errors import ConfigError


def test_publish_reaches_iot_data() -> None:
    with mock_aws():
        publisher = IotDataPublisher(boto3.client("iot-data", region_name="us-east-1"))
        body = b'{"state":{"desired":{"mode":"safe"}}}'
        publisher.publish("$aws/things/pump-02/shadow/update", body)
        published = iotdata_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].published_payloads
        assert published == [("$aws/things/pump-02/shadow/update", body)]


def test_qos_2_is_refused_before_calling_aws() -> None:
    with mock_aws():
        publisher = IotDataPublisher(boto3.client("iot-data", region_name="us-east-1"))
        with pytest.raises(ConfigError, match="QoS 0 or 1"):
            publisher.publish("cmd/x", b"{}", qos=2)
