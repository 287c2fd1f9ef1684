"""The Publisher port over AWS IoT Core's HTTP data plane (``iot-data`` ``Publish``).

Used for detector ``iotTopicPublish`` actions, shadow commands included: a publish to
``$aws/things/<thing>/shadow/update`` is a shadow update, as it was from IoT Events. IoT
Core has no QoS 2, so QoS is 0 or 1. A publish IoT Core is sure to refuse (over 128 KB,
or a shadow update whose own state passes 8 KB) is refused before it is sent
(:func:`refused`); one that passes 8 KB only once merged with the shadow's current state
cannot be seen from here and is rejected by the shadow service, unseen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from cloud.adapters.aws.errors import IOT_DATA_REFUSALS, classified
from cloud.shadow.document import (
    MAX_PAYLOAD_BYTES,
    ShadowError,
    apply_update,
    parse_payload,
    parse_request_topic,
    validate_update,
)
from edge.errors import ConfigError, RefusedError
from edge.wire import iot_core_topic_problem

if TYPE_CHECKING:
    IoTDataPlaneClient = Any


class IotDataPublisher:
    """*endpoint* is the account's ``xxxx-ats.iot.<region>.amazonaws.com`` (optional: boto3
    finds the default one, but the ATS endpoint avoids a legacy-certificate hop)."""

    def __init__(
        self, client: IoTDataPlaneClient | None = None, *, endpoint: str | None = None
    ) -> None:
        if client is None:
            url = None
            if endpoint:
                url = endpoint if "://" in endpoint else f"https://{endpoint}"
            client = boto3.client("iot-data", endpoint_url=url)
        self._client = client

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        if qos not in (0, 1):
            raise ConfigError(f"qos {qos}: AWS IoT Core publishes with QoS 0 or 1")
        refused(topic, payload)
        try:
            self._client.publish(topic=topic, qos=qos, payload=payload)
        except (ClientError, BotoCoreError) as exc:
            raise classified(exc, IOT_DATA_REFUSALS, f"iot-data publish to {topic!r}") from exc


def refused(topic: str, payload: bytes) -> None:
    """RefusedError, before anything is sent, for a publish IoT Core is sure to refuse: a
    topic it does not publish to (:func:`publish_topic_problem`), over 128 KB (iot-data
    answers ``RequestEntityTooLargeException``), or a shadow update the shadow service
    rejects whatever the shadow holds (a state over 8 KB, a malformed request). iot-data
    accepts the latter and the shadow service answers on ``.../update/rejected``, which no
    one reads: the command would be lost while the outbox counted it delivered. Refused
    here, the outbox keeps it as a dead letter with the reason.

    What it can and cannot know: the 8 KB limit applies to the *merged* shadow (the
    compact JSON of merged ``desired`` plus merged ``reported``), and the publisher does
    not hold the shadow's current document (fetching it would be a GetThingShadow per
    command, and still racy). So the update is judged as if the shadow were empty. That
    verdict is a lower bound: the merged state holds every non-null value of the update,
    so what is refused here is refused on any shadow (nothing AWS would take is kept as
    a dead letter), but an update that fits alone and not once merged with what the
    shadow holds passes here and is rejected by the shadow service on
    ``.../update/rejected``, unseen. A ``version`` in the update is checked for what it
    is (an integer >= 0: null, negative, a bool or any other type is 400 Invalid version
    on every shadow), not for whether it matches (only the stored shadow can say)."""
    problem = publish_topic_problem(topic)
    if problem is not None:
        raise RefusedError(
            f"iot-data publish: {problem}; IoT Core does not publish to it; not sent",
            reason="InvalidTopic",
        )
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise RefusedError(
            f"iot-data publish to {topic!r}: {len(payload):,} bytes; IoT Core takes at most "
            f"{MAX_PAYLOAD_BYTES:,}; not sent",
            reason="RequestEntityTooLarge",
        )
    parsed = parse_request_topic(topic)
    if parsed is None or parsed[2] != "update":
        return
    try:
        request = parse_payload(payload)
        validate_update(request)  # the checks that need no shadow, the version's type too
        # on an empty shadow: what is rejected there is rejected on any
        apply_update(None, {k: v for k, v in request.items() if k != "version"}, 0)
    except ShadowError as exc:
        raise RefusedError(
            f"iot-data publish to {topic!r}: the shadow service would reject it "
            f"({exc.code} {exc.message}); not sent",
            reason=f"shadow {exc.code}",
        ) from None


def publish_topic_problem(topic: str) -> str | None:
    """Why *topic* cannot be published to on IoT Core: empty, a ``+`` or ``#`` wildcard,
    or what :func:`edge.wire.iot_core_topic_problem` finds (over 256 bytes, over 7
    slashes, a reserved ``$`` topic); None when it can."""
    if not topic:
        return "an empty topic"
    if "+" in topic or "#" in topic:
        return f"topic {topic[:64]!r} holds a wildcard"
    return iot_core_topic_problem(topic)
