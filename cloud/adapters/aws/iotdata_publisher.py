"""The Publisher port over AWS IoT Core's HTTP data plane (``iot-data`` ``Publish``).

Used for detector ``iotTopicPublish`` actions, shadow commands included: a publish to
``$aws/things/<thing>/shadow/update`` is a shadow update, as it was from IoT Events. IoT
Core has no QoS 2, so QoS is 0 or 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from edge.errors import ConfigError, StorageError

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
        try:
            self._client.publish(topic=topic, qos=qos, payload=payload)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"iot-data publish to {topic!r} failed: {exc}") from exc
