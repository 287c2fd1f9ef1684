"""awsiotsdk's own ``iotshadow`` clients, unchanged, against the local shadow service.

The SDK rides awscrt's MQTT 3.1.1 ``awscrt.mqtt.Connection`` over plain TCP to the embedded
amqtt broker (awscrt's MQTT 5 client cannot connect to amqtt, which speaks 3.1.1 only); the
MQTT 5 case runs on mosquitto.
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from awscrt import io, mqtt, mqtt_request_response
from awsiot import ServiceStreamOptions, V2ServiceException, iotshadow
from shadow_backends import local_iot_data

from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.client import ShadowClient
from cloud.shadow.service import ShadowService
from edge.clock import ManualClock

TIMEOUT = 10


@pytest.fixture(scope="module")
def service(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShadowService]:
    db = Path(tmp_path_factory.mktemp("sdk")) / "shadows.db"
    with ShadowService(
        broker.url, str(db), ManualClock(1_750_000_000.0), limits=False, rest_port=0
    ) as running:
        yield running


@pytest.fixture
def connection(broker: EmbeddedBroker, service: ShadowService) -> Iterator[mqtt.Connection]:
    elg = io.EventLoopGroup(1)
    bootstrap = io.ClientBootstrap(elg, io.DefaultHostResolver(elg))
    conn = mqtt.Connection(
        client=mqtt.Client(bootstrap),
        host_name=broker.host,
        port=broker.port,
        client_id=f"sdk-device-{uuid.uuid4().hex[:8]}",
        clean_session=True,
        keep_alive_secs=30,
    )
    conn.connect().result(TIMEOUT)
    yield conn
    conn.disconnect().result(TIMEOUT)


def v2_client(connection: Any) -> iotshadow.IotShadowClientV2:
    """V2 over an MQTT 3.1.1 ``mqtt.Connection`` or an MQTT 5 ``mqtt5.Client``."""
    return iotshadow.IotShadowClientV2(
        connection,
        mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=4,
            max_streaming_subscriptions=2,
            operation_timeout_in_seconds=TIMEOUT,
        ),
    )


def test_v2_client_get_update_delete_and_delta_stream(connection: mqtt.Connection, broker):
    thing = f"sdk-{uuid.uuid4().hex[:8]}"
    shadow = v2_client(connection)
    deltas: queue.Queue[iotshadow.ShadowDeltaUpdatedEvent] = queue.Queue()
    subscribed: Future[None] = Future()

    def on_status(event: mqtt_request_response.SubscriptionStatusEvent) -> None:
        if (
            event.type == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED
            and not subscribed.done()
        ):
            subscribed.set_result(None)

    stream = shadow.create_shadow_delta_updated_stream(
        iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing),
        ServiceStreamOptions(deltas.put, subscription_status_listener=on_status),
    )
    stream.open()
    subscribed.result(TIMEOUT)

    with pytest.raises(V2ServiceException) as missing:
        shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=thing)).result(TIMEOUT)
    assert missing.value.modeled_error.code == 404

    # A command from the operator's side (plantwatch's own client) reaches the device as a delta.
    with ShadowClient(broker.url) as operator:
        operator.update(thing, desired={"mode": "safe", "sampling_interval_s": 5})
    delta = deltas.get(timeout=TIMEOUT)
    assert delta.state == {"mode": "safe", "sampling_interval_s": 5}
    assert delta.version == 1

    got = shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=thing)).result(TIMEOUT)
    assert got.state.desired == {"mode": "safe", "sampling_interval_s": 5}
    assert got.state.delta == {"mode": "safe", "sampling_interval_s": 5}
    assert got.timestamp.year >= 2025

    updated = shadow.update_shadow(
        iotshadow.UpdateShadowRequest(
            thing_name=thing,
            state=iotshadow.ShadowState(reported={"mode": "safe", "sampling_interval_s": 5}),
            version=1,
        )
    ).result(TIMEOUT)
    assert updated.version == 2
    assert updated.state.reported == {"mode": "safe", "sampling_interval_s": 5}

    converged = shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=thing)).result(TIMEOUT)
    assert converged.state.delta is None

    with pytest.raises(V2ServiceException) as conflict:
        shadow.update_shadow(
            iotshadow.UpdateShadowRequest(
                thing_name=thing, state=iotshadow.ShadowState(reported={"x": 1}), version=1
            )
        ).result(TIMEOUT)
    assert conflict.value.modeled_error.code == 409

    deleted = shadow.delete_shadow(iotshadow.DeleteShadowRequest(thing_name=thing)).result(TIMEOUT)
    assert deleted.version == 2


def test_v1_client_subscribes_and_round_trips_a_named_shadow(connection: mqtt.Connection):
    thing, name = f"sdk-{uuid.uuid4().hex[:8]}", "config"
    shadow = iotshadow.IotShadowClient(connection)
    accepted: queue.Queue[iotshadow.UpdateShadowResponse] = queue.Queue()
    deltas: queue.Queue[iotshadow.ShadowDeltaUpdatedEvent] = queue.Queue()
    got: queue.Queue[iotshadow.GetShadowResponse] = queue.Queue()
    documents: queue.Queue[iotshadow.ShadowUpdatedEvent] = queue.Queue()
    qos = mqtt.QoS.AT_LEAST_ONCE
    futures = [
        shadow.subscribe_to_update_named_shadow_accepted(
            iotshadow.UpdateNamedShadowSubscriptionRequest(thing_name=thing, shadow_name=name),
            qos,
            accepted.put,
        )[0],
        shadow.subscribe_to_named_shadow_delta_updated_events(
            iotshadow.NamedShadowDeltaUpdatedSubscriptionRequest(
                thing_name=thing, shadow_name=name
            ),
            qos,
            deltas.put,
        )[0],
        shadow.subscribe_to_named_shadow_updated_events(
            iotshadow.NamedShadowUpdatedSubscriptionRequest(thing_name=thing, shadow_name=name),
            qos,
            documents.put,
        )[0],
        shadow.subscribe_to_get_named_shadow_accepted(
            iotshadow.GetNamedShadowSubscriptionRequest(thing_name=thing, shadow_name=name),
            qos,
            got.put,
        )[0],
    ]
    for future in futures:
        future.result(TIMEOUT)

    shadow.publish_update_named_shadow(
        iotshadow.UpdateNamedShadowRequest(
            thing_name=thing,
            shadow_name=name,
            state=iotshadow.ShadowState(desired={"setpoints": {"temp_c": 60}}),
            client_token="tok-1",
        ),
        qos,
    ).result(TIMEOUT)
    response = accepted.get(timeout=TIMEOUT)
    assert (response.client_token, response.version) == ("tok-1", 1)
    delta = deltas.get(timeout=TIMEOUT)
    assert delta.state == {"setpoints": {"temp_c": 60}}
    assert delta.client_token == "tok-1"
    updated = documents.get(timeout=TIMEOUT)
    assert updated.previous is None
    assert updated.current.state.desired == {"setpoints": {"temp_c": 60}}
    assert updated.current.version == 1

    shadow.publish_get_named_shadow(
        iotshadow.GetNamedShadowRequest(thing_name=thing, shadow_name=name, client_token="tok-2"),
        qos,
    ).result(TIMEOUT)
    document = got.get(timeout=TIMEOUT)
    assert document.client_token == "tok-2"
    assert document.state.delta == {"setpoints": {"temp_c": 60}}
    assert document.metadata.desired == {"setpoints": {"temp_c": {"timestamp": 1_750_000_000}}}


def test_v2_named_shadow_streams_see_a_boto3_rest_update_and_nullable_sections(
    connection: mqtt.Connection, service: ShadowService
):
    """Spec 6 (V2 named operations and both streams) and 7 (a REST update publishes the
    delta and the documents a device follows)."""
    thing, name = f"sdk-{uuid.uuid4().hex[:8]}", "config"
    shadow = v2_client(connection)
    deltas: queue.Queue[iotshadow.ShadowDeltaUpdatedEvent] = queue.Queue()
    documents: queue.Queue[iotshadow.ShadowUpdatedEvent] = queue.Queue()
    established: queue.Queue[None] = queue.Queue()

    def on_status(event: mqtt_request_response.SubscriptionStatusEvent) -> None:
        if event.type == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED:
            established.put(None)

    streams = [
        shadow.create_named_shadow_delta_updated_stream(
            iotshadow.NamedShadowDeltaUpdatedSubscriptionRequest(
                thing_name=thing, shadow_name=name
            ),
            ServiceStreamOptions(deltas.put, subscription_status_listener=on_status),
        ),
        shadow.create_named_shadow_updated_stream(
            iotshadow.NamedShadowUpdatedSubscriptionRequest(thing_name=thing, shadow_name=name),
            ServiceStreamOptions(documents.put, subscription_status_listener=on_status),
        ),
    ]
    for stream in streams:
        stream.open()
    for _ in streams:
        established.get(timeout=TIMEOUT)

    with pytest.raises(V2ServiceException) as missing:
        shadow.get_named_shadow(
            iotshadow.GetNamedShadowRequest(thing_name=thing, shadow_name=name)
        ).result(TIMEOUT)
    assert missing.value.modeled_error.code == 404
    assert missing.value.modeled_error.message == f"No shadow exists with name: '{name}'"

    assert service.rest_url is not None
    data = local_iot_data(service.rest_url)
    data.update_thing_shadow(
        thingName=thing, shadowName=name, payload=b'{"state":{"desired":{"mode":"stop"}}}'
    )
    delta = deltas.get(timeout=TIMEOUT)
    assert (delta.state, delta.version) == ({"mode": "stop"}, 1)
    created = documents.get(timeout=TIMEOUT)
    assert created.previous is None and created.current.version == 1
    assert created.current.state.desired == {"mode": "stop"}

    cleared = shadow.update_named_shadow(
        iotshadow.UpdateNamedShadowRequest(
            thing_name=thing,
            shadow_name=name,
            state=iotshadow.ShadowState(
                reported={"mode": "stop"}, desired=None, desired_is_nullable=True
            ),
        )
    ).result(TIMEOUT)
    assert cleared.version == 2 and cleared.state.desired is None
    after = documents.get(timeout=TIMEOUT)
    assert after.previous.state.desired == {"mode": "stop"}
    assert after.current.state.desired is None and after.current.state.reported == {"mode": "stop"}
    assert deltas.empty(), "no delta once desired is gone"

    deleted = shadow.delete_named_shadow(
        iotshadow.DeleteNamedShadowRequest(thing_name=thing, shadow_name=name)
    ).result(TIMEOUT)
    assert deleted.version == 2


@pytest.mark.mosquitto
def test_v1_and_v2_clients_over_mqtt5(tmp_path: Path):
    """Spec 6: the clients also ride awscrt's MQTT 5 client (IoT Core's protocol); amqtt speaks
    3.1.1 only, so this runs on mosquitto."""
    from awscrt import mqtt5

    with (
        EmbeddedBroker("mosquitto") as broker,
        ShadowService(broker.url, str(tmp_path / "s.db"), ManualClock(1_750_000_000.0)),
    ):
        connected: Future[None] = Future()
        client = mqtt5.Client(
            mqtt5.ClientOptions(
                host_name=broker.host,
                port=broker.port,
                connect_options=mqtt5.ConnectPacket(client_id=f"sdk5-{uuid.uuid4().hex[:8]}"),
                on_lifecycle_event_connection_success_fn=lambda _e: connected.set_result(None),
            )
        )
        client.start()
        try:
            connected.result(TIMEOUT)
            v1 = iotshadow.IotShadowClient(client)
            deltas: queue.Queue[iotshadow.ShadowDeltaUpdatedEvent] = queue.Queue()
            subscribed, _topic = v1.subscribe_to_shadow_delta_updated_events(
                iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name="m5"),
                mqtt.QoS.AT_LEAST_ONCE,
                deltas.put,
            )
            subscribed.result(TIMEOUT)
            v2 = v2_client(client)
            updated = v2.update_shadow(
                iotshadow.UpdateShadowRequest(
                    thing_name="m5", state=iotshadow.ShadowState(desired={"mode": "safe"})
                )
            ).result(TIMEOUT)
            assert updated.version == 1
            assert deltas.get(timeout=TIMEOUT).state == {"mode": "safe"}
            got = v2.get_shadow(iotshadow.GetShadowRequest(thing_name="m5")).result(TIMEOUT)
            assert got.state.delta == {"mode": "safe"}
            deleted = v2.delete_shadow(iotshadow.DeleteShadowRequest(thing_name="m5")).result(
                TIMEOUT
            )
            assert deleted.version == 1
        finally:
            client.stop()
