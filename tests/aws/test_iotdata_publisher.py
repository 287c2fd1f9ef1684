"""IotDataPublisher against moto: the publish reaches iot-data (moto keeps it in its backend)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iotdata.models import iotdata_backends

from cloud.adapters.aws import IotDataPublisher
from edge.errors import ConfigError, RefusedError, StorageError


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


def published() -> list[tuple[str, bytes]]:
    return list(iotdata_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].published_payloads)


def test_a_payload_past_128_kb_is_refused_before_calling_aws() -> None:
    # IoT Core takes at most 128 KB per publish (iot-data answers
    # RequestEntityTooLargeException; moto does not check)
    with mock_aws():
        publisher = IotDataPublisher(boto3.client("iot-data", region_name="us-east-1"))
        publisher.publish("cmd/plantwatch/s1/pump-02/req", b"x" * 128 * 1024)
        with pytest.raises(RefusedError, match=r"131,073 bytes; IoT Core takes at most 131,072"):
            publisher.publish("cmd/plantwatch/s1/pump-02/req", b"x" * (128 * 1024 + 1))
        assert len(published()) == 1


def test_a_shadow_update_whose_state_passes_8_kb_is_refused_before_calling_aws() -> None:
    # A Publish to a shadow's update topic is accepted by iot-data whatever it holds; the
    # shadow service then rejects a state over 8 KB on .../update/rejected, which no one
    # reads, so the command would be lost while the outbox counted it delivered
    with mock_aws():
        publisher = IotDataPublisher(boto3.client("iot-data", region_name="us-east-1"))
        fits = json.dumps({"state": {"desired": {"a": "x" * 8000, "gone": None}}}).encode()
        too_big = json.dumps({"state": {"desired": {"a": "x" * 8200}}}).encode()
        publisher.publish("$aws/things/pump-02/shadow/update", fits)
        with pytest.raises(RefusedError, match=r"shadow/update'?: .*413 The payload exceeds"):
            publisher.publish("$aws/things/pump-02/shadow/update", too_big)
        with pytest.raises(RefusedError, match=r"shadow/name/cfg/update'?: .*413"):
            publisher.publish("$aws/things/pump-02/shadow/name/cfg/update", too_big)
        assert len(published()) == 1


class FailingIotData:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def publish(self, **_: object) -> None:
        raise self.error


def iot_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Publish",
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("InvalidRequestException", 400),
        ("UnauthorizedException", 401),
        ("AccessDeniedException", 403),
        ("RequestEntityTooLargeException", 413),
    ],
)
def test_what_iot_data_refuses_every_time_is_refused(code: str, status: int) -> None:
    publisher = IotDataPublisher(FailingIotData(iot_error(code, status)))
    with pytest.raises(RefusedError, match=f"cmd/x.*refused \\({code}\\)") as e:
        publisher.publish("cmd/x", b"{}")
    assert e.value.reason == code


@pytest.mark.parametrize(
    "error",
    [
        iot_error("ThrottlingException", 429),
        iot_error("InternalFailureException", 500),
        iot_error("ServiceUnavailableException", 503),
        EndpointConnectionError(endpoint_url="https://data-ats.iot.us-east-1.amazonaws.com"),
    ],
    ids=["throttled", "500", "503", "connect"],
)
def test_a_transient_iot_data_failure_is_a_plain_storage_error(error: Exception) -> None:
    publisher = IotDataPublisher(FailingIotData(error))
    with pytest.raises(StorageError) as e:
        publisher.publish("cmd/x", b"{}")
    assert not isinstance(e.value, RefusedError)
