"""IotDataPublisher against moto: the publish reaches iot-data (moto keeps it in its backend)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iotdata.models import iotdata_backends

from cloud.adapters.aws import IotDataPublisher
from cloud.adapters.aws.iotdata_publisher import refused
from cloud.shadow.document import ShadowError, apply_update
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
        iot_error("UnauthorizedException", 401),
        iot_error("AccessDeniedException", 403),
    ],
    ids=["throttled", "500", "503", "connect", "Unauthorized", "AccessDenied"],
)
def test_a_transient_iot_data_failure_is_a_plain_storage_error(error: Exception) -> None:
    publisher = IotDataPublisher(FailingIotData(error))
    with pytest.raises(StorageError) as e:
        publisher.publish("cmd/x", b"{}")
    assert not isinstance(e.value, RefusedError)


blob = st.builds(lambda n, c: c * n, st.integers(0, 3000), st.sampled_from(["x", "é", "水"]))
leaf = st.one_of(blob, st.integers(-5, 5), st.lists(st.integers(0, 9), max_size=3))
value = st.one_of(leaf, st.dictionaries(st.sampled_from("abcde"), leaf, max_size=3))
section = st.dictionaries(st.sampled_from("abcde"), value, max_size=4)
update_section = st.dictionaries(st.sampled_from("abcde"), st.one_of(st.none(), value), max_size=4)
shadow_state = st.fixed_dictionaries({}, optional={"desired": section, "reported": section})
update_state = st.fixed_dictionaries(
    {}, optional={"desired": update_section, "reported": update_section}
)


@settings(max_examples=200, deadline=None)
@given(stored=shadow_state, update=update_state)
def test_what_the_pre_check_refuses_the_shadow_service_refuses_on_any_shadow(
    stored: dict[str, Any], update: dict[str, Any]
) -> None:
    # A refusal is now a dead letter at once: the pre-check, which cannot see the shadow,
    # must never refuse an update the shadow service would take on some shadow
    try:
        shadow = apply_update(None, {"state": stored}, 0).shadow
    except ShadowError:
        return  # not a shadow that can exist
    payload = json.dumps({"state": update}).encode()
    try:
        refused("$aws/things/pump-02/shadow/update", payload)
    except RefusedError:
        with pytest.raises(ShadowError) as error:
            apply_update(shadow, {"state": update}, 1)
        assert error.value.code == 413


WIDTHS = st.sampled_from([("x", 1), ("é", 2), ("水", 3)])
near_limit = WIDTHS.flatmap(  # a desired value of 7,800 to 8,500 bytes: either side of 8 KB
    lambda cw: st.builds(lambda n: cw[0] * n, st.integers(7800 // cw[1], 8500 // cw[1]))
)
near_limit_update = st.builds(
    lambda big, rest: {"desired": {"big": big, **rest}},
    near_limit,
    st.dictionaries(st.sampled_from("abcde"), st.one_of(st.none(), leaf), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(stored=shadow_state, update=near_limit_update)
def test_near_8_kb_the_pre_check_is_the_empty_shadows_verdict(
    stored: dict[str, Any], update: dict[str, Any]
) -> None:
    # the property above, where it matters: updates on either side of the limit (the
    # generator above makes one refusal in about 40 updates; this one, about half). What
    # the pre-check refuses, the shadow service refuses on an empty shadow and on any other
    payload = json.dumps({"state": update}).encode()
    try:
        refused("$aws/things/pump-02/shadow/update", payload)
    except RefusedError:
        with pytest.raises(ShadowError):
            apply_update(None, {"state": update}, 0)
        try:
            shadow = apply_update(None, {"state": stored}, 0).shadow
        except ShadowError:
            return  # not a shadow that can exist
        with pytest.raises(ShadowError) as error:
            apply_update(shadow, {"state": update}, 1)
        assert error.value.code == 413
    else:  # ... and what it lets through, an empty shadow takes
        apply_update(None, {"state": update}, 0)


def test_an_update_past_8_kb_only_once_merged_is_not_seen_by_the_pre_check() -> None:
    # what the publisher cannot know without the shadow's document (spec §5: the limit is
    # on the merged state); documented in refused()'s docstring
    shadow = apply_update(None, {"state": {"reported": {"log": "x" * 5000}}}, 0).shadow
    update = {"state": {"desired": {"note": "y" * 4000}}}
    refused("$aws/things/pump-02/shadow/update", json.dumps(update).encode())
    with pytest.raises(ShadowError) as error:
        apply_update(shadow, update, 1)
    assert error.value.code == 413


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        ("", "empty"),
        ("cmd/+/req", "wildcard"),
        ("cmd/#", "wildcard"),
        ("cmd/" + "x" * 260, "bytes"),
        ("a/b/c/d/e/f/g/h/i", "slashes"),
        ("$SYS/x", "reserved"),
    ],
)
def test_a_topic_iot_core_does_not_publish_to_is_refused_before_calling_aws(
    topic: str, why: str
) -> None:
    with mock_aws():
        publisher = IotDataPublisher(boto3.client("iot-data", region_name="us-east-1"))
        with pytest.raises(RefusedError, match=why):
            publisher.publish(topic, b"{}")
        assert published() == []


@pytest.mark.parametrize("version", [None, -1, True, False, "3", 1.5, [1], {"v": 1}])
def test_a_shadow_update_with_an_invalid_version_is_refused_before_calling_aws(
    version: Any,
) -> None:
    # the shadow service answers 400 Invalid version on .../update/rejected, which no one
    # reads: whatever the shadow holds, the command could never be applied
    with mock_aws():
        publisher = IotDataPublisher(boto3.client("iot-data", region_name="us-east-1"))
        topic = "$aws/things/pump-02/shadow/update"
        body = json.dumps({"state": {"desired": {"mode": "safe"}}, "version": version})
        with pytest.raises(RefusedError, match="Invalid version") as caught:
            publisher.publish(topic, body.encode())
        assert caught.value.reason == "shadow 400"
        assert published() == []
        valid = json.dumps({"state": {"desired": {"mode": "safe"}}, "version": 7}).encode()
        publisher.publish(topic, valid)  # whether 7 matches, only the shadow can say
        assert published() == [(topic, valid)]
