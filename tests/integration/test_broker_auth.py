"""Broker credentials, topic ACLs and the message-size limit, on both brokers, with raw paho
clients acting as devices (issue 13, items 3 and 10).

The policy has the IoT device policy's meaning: a device publishes only under its own site
and thing, uses only its own shadow topics, and cannot hold another client's session;
anonymous clients are refused. mosquitto accepts a SUBSCRIBE it will never deliver on and
amqtt refuses it, so what is asserted is what a client receives.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from raw_mqtt import RawClient

from cloud.runtime.broker import EmbeddedBroker
from cloud.runtime.broker_auth import AuthStore

BROKERS = [pytest.param("amqtt"), pytest.param("mosquitto", marks=pytest.mark.mosquitto)]


@dataclass
class Secured:
    broker: EmbeddedBroker
    store: AuthStore
    passwords: dict[str, str]

    def client(self, user: str | None, **kwargs: object) -> RawClient:
        password = None
        if user is not None:
            password = self.passwords.get(user) or self.store.service_password(user)
        return RawClient(
            self.broker.host,
            self.broker.port,
            username=user,
            password=password,
            **kwargs,  # type: ignore[arg-type]
        )


def attempt(secured: Secured, user: str, topic: str, payload: bytes) -> None:
    """One publish on a connection of its own. A publish the policy refuses ends the
    connection on amqtt, before any PUBACK, as IoT Core does; mosquitto acknowledges and
    drops it. Either way it is delivered to no one, which is what the tests assert. The
    client runs no network thread, so nothing retries the refused publish."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"try-{uuid.uuid4().hex}")
    client.username_pw_set(
        user, secured.passwords.get(user) or secured.store.service_password(user)
    )
    client.connect(secured.broker.host, secured.broker.port, keepalive=30)
    info = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if client.loop(0.01) != mqtt.MQTT_ERR_SUCCESS:
            break  # the broker closed the connection
        if info is None and client.is_connected():
            info = client.publish(topic, payload, qos=1)
        elif info is not None and info.is_published():
            break
    else:
        raise AssertionError(f"{user} -> {topic}: neither a PUBACK nor a disconnect")
    assert info is not None, f"{user} could not connect"
    client.disconnect()


@pytest.fixture(scope="module", params=BROKERS)
def secured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Secured]:
    store = AuthStore(tmp_path_factory.mktemp("auth") / "auth").ensure()
    passwords = {
        "pump-01": store.add_device("pump-01", "s1"),
        "pump-02": store.add_device("pump-02", "s1"),
        "gw-01": store.add_device("gw-01", "s2", ["a-1", "a-2"]),
    }
    with EmbeddedBroker(request.param, auth=store, max_message_kb=4) as broker:
        yield Secured(broker, store, passwords)


@pytest.fixture
def clients(secured: Secured) -> Iterator[list[RawClient]]:
    opened: list[RawClient] = []
    yield opened
    for client in opened:
        client.close()


def test_files_are_private_and_anonymous_or_wrong_credentials_are_refused(
    secured: Secured, clients: list[RawClient]
) -> None:
    root = secured.store.root
    assert root.stat().st_mode & 0o777 == 0o700
    for path in root.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert "pump-01" in secured.store.passwd_file.read_text()
    assert secured.passwords["pump-01"] not in "".join(p.read_text() for p in root.iterdir())

    anonymous = RawClient(secured.broker.host, secured.broker.port)
    clients.append(anonymous)
    assert not anonymous.accepted
    wrong = RawClient(
        secured.broker.host, secured.broker.port, username="pump-01", password="guess"
    )
    clients.append(wrong)
    assert not wrong.accepted
    unknown = RawClient(secured.broker.host, secured.broker.port, username="nobody", password="x")
    clients.append(unknown)
    assert not unknown.accepted


def test_a_device_publishes_telemetry_only_under_its_own_site_and_thing(
    secured: Secured, clients: list[RawClient]
) -> None:
    rules = secured.client("plantwatch-rules")
    clients.append(rules)
    assert rules.accepted
    rules.subscribe(["dt/plantwatch/#"])
    attempts = [
        ("pump-01", "dt/plantwatch/s1/pump-01/telemetry", True),
        ("pump-01", "dt/plantwatch/s1/pump-02/telemetry", False),
        ("pump-01", "dt/plantwatch/s2/pump-01/telemetry", False),
        ("pump-01", "dt/plantwatch/s1/gw-01/telemetry", False),
        ("pump-01", "dt/plantwatch/s1/pump-01", False),
        ("gw-01", "dt/plantwatch/s2/a-1/telemetry", True),
        ("gw-01", "dt/plantwatch/s2/a-2/telemetry", True),
        ("gw-01", "dt/plantwatch/s1/a-1/telemetry", False),
        ("gw-01", "dt/plantwatch/s2/gw-01/telemetry", False),
    ]
    for user, topic, _allowed in attempts:
        attempt(secured, user, topic, topic.encode())
    rules.wait_for_message("dt/plantwatch/s2/a-2/telemetry")
    rules.quiet(0.3)
    delivered = {topic for topic, _payload in rules.messages}
    assert delivered == {topic for _c, topic, allowed in attempts if allowed}


def test_a_device_sends_requests_only_for_its_own_shadows(
    secured: Secured, clients: list[RawClient]
) -> None:
    shadow_service = secured.client("plantwatch-shadow")
    clients.append(shadow_service)
    shadow_service.subscribe(["$aws/things/+/shadow/#"])
    attempts = [
        ("pump-01", "$aws/things/pump-01/shadow/update", True),
        ("pump-01", "$aws/things/pump-01/shadow/name/config/get", True),
        ("pump-01", "$aws/things/pump-02/shadow/update", False),
        ("pump-01", "$aws/things/pump-02/shadow/name/config/update", False),
        ("pump-01", "$aws/things/pump-01/shadow/update/accepted", False),
        ("pump-02", "$aws/things/pump-01/shadow/update/delta", False),
        ("pump-02", "$aws/things/pump-01/shadow/delete", False),
        ("pump-02", "$aws/things/pump-02/shadow/delete", True),
    ]
    for user, topic, _allowed in attempts:
        attempt(secured, user, topic, b"{}")
    shadow_service.wait_for_message("$aws/things/pump-02/shadow/delete")
    shadow_service.quiet(0.3)
    delivered = {topic for topic, _payload in shadow_service.messages}
    assert delivered == {topic for _c, topic, allowed in attempts if allowed}


def test_a_device_receives_only_its_own_shadow_replies(
    secured: Secured, clients: list[RawClient]
) -> None:
    shadow_service = secured.client("plantwatch-shadow")
    pump1, pump2 = secured.client("pump-01"), secured.client("pump-02")
    clients += [shadow_service, pump1, pump2]
    pump1.subscribe(["$aws/things/pump-01/shadow/#"])
    # pump-02 tries everything a snooper would; whatever the SUBACKs say, nothing arrives
    pump2.subscribe(["$aws/things/pump-02/shadow/#"])
    pump2.subscribe(["$aws/things/pump-01/shadow/get/accepted"])
    pump2.subscribe(["$aws/things/pump-01/shadow/update/delta"])
    pump2.subscribe(["$aws/things/+/shadow/#"])
    pump2.subscribe(["#"])
    pump2.subscribe(["$aws/#"])
    for thing in ("pump-01", "pump-02"):
        for suffix in ("get/accepted", "update/delta", "update/documents"):
            shadow_service.publish(f"$aws/things/{thing}/shadow/{suffix}", thing.encode())
    pump1.wait_for_message("$aws/things/pump-01/shadow/update/documents")
    pump2.wait_for_message("$aws/things/pump-02/shadow/update/documents")
    pump2.quiet(0.3)
    assert {payload for _t, payload in pump1.messages} == {b"pump-01"}
    assert {payload for _t, payload in pump2.messages} == {b"pump-02"}
    assert len(pump2.messages) == 3, "its own three replies, each once"


def test_a_credential_cannot_take_over_another_clients_session(
    secured: Secured, clients: list[RawClient]
) -> None:
    rules = secured.client("plantwatch-rules", client_id="plantwatch-rules")
    clients.append(rules)
    rules.subscribe(["dt/plantwatch/#"])
    intruder = secured.client("pump-01", client_id="plantwatch-rules")
    clients.append(intruder)
    assert intruder.accepted, "it connects, under its own name"
    intruder.publish("dt/plantwatch/s1/pump-01/telemetry", b"still here")
    assert rules.wait_for_message("dt/plantwatch/s1/pump-01/telemetry") == b"still here"
    assert rules.disconnects == 0, "the rules runner's session was not taken over"


def test_a_message_over_the_limit_disconnects_its_sender_and_goes_nowhere(
    secured: Secured, clients: list[RawClient]
) -> None:
    rules, pump1 = secured.client("plantwatch-rules"), secured.client("pump-01")
    clients += [rules, pump1]
    rules.subscribe(["dt/plantwatch/#"])
    topic = "dt/plantwatch/s1/pump-01/telemetry"
    assert pump1.publish(topic, b"a" * 4096), "exactly the limit (4 KB here) passes"
    assert rules.wait_for_message(topic) == b"a" * 4096
    pump1.publish(topic, b"b" * 6000, timeout=2)
    pump1.wait(lambda: pump1.disconnects >= 1, "the broker closing the connection")
    rules.quiet(0.5)
    assert rules.received(topic) == [b"a" * 4096]


def test_a_device_added_while_the_broker_runs_connects_after_a_reload(
    secured: Secured, clients: list[RawClient], tmp_path: Path
) -> None:
    password = secured.store.add_device("pump-03", "s1")
    secured.passwords["pump-03"] = password
    secured.broker.reload()
    for _ in range(50):
        late = secured.client("pump-03")
        clients.append(late)
        if late.accepted:
            break
        late.quiet(0.1)
    assert late.accepted


def test_a_device_sends_basic_ingest_only_for_its_own_telemetry_and_cannot_read_it(
    secured: Secured, clients: list[RawClient]
) -> None:
    """IoT Core Basic Ingest under the device policy: ``$aws/rules/<rule>/`` plus the
    device's own telemetry topics, nothing else under ``$aws/rules``; only the rules runner
    reads them."""
    rules = secured.client("plantwatch-rules")
    pump2 = secured.client("pump-02")
    clients += [rules, pump2]
    rules.subscribe(["$aws/rules/telemetry/#"])
    pump2.subscribe(["$aws/rules/#", "$aws/rules/telemetry/#"])
    attempts = [
        ("pump-01", "$aws/rules/telemetry/dt/plantwatch/s1/pump-01/telemetry", True),
        ("pump-01", "$aws/rules/telemetry/dt/plantwatch/s1/pump-02/telemetry", False),
        ("pump-01", "$aws/rules/telemetry/dt/plantwatch/s2/pump-01/telemetry", False),
        ("pump-01", "$aws/rules/telemetry/anything", False),
        ("pump-01", "$aws/rules/telemetry", False),
    ]
    for user, topic, _allowed in attempts:
        attempt(secured, user, topic, topic.encode())
    own = "$aws/rules/telemetry/dt/plantwatch/s1/pump-02/telemetry"
    assert pump2.publish(own, own.encode())
    attempts.append(("pump-02", own, True))
    rules.wait_for_message("$aws/rules/telemetry/dt/plantwatch/s1/pump-02/telemetry")
    rules.quiet(0.3)
    assert {topic for topic, _ in rules.messages} == {t for _c, t, ok in attempts if ok}
    assert pump2.messages == []


def test_a_device_subscribing_to_every_topic_reads_no_other_devices_telemetry(
    secured: Secured, clients: list[RawClient]
) -> None:
    """§5: devices never subscribe to ``#``; under the IoT policy a device may not subscribe
    to or receive any telemetry topic, its site's and its own included. Whatever the SUBACK
    says, a snooper's wildcard subscriptions deliver nothing, while the rules runner gets
    every message."""
    rules = secured.client("plantwatch-rules")
    snooper = secured.client("pump-02")
    clients += [rules, snooper]
    rules.subscribe(["dt/plantwatch/#"])
    snooper.subscribe(["#"])
    snooper.subscribe(["dt/plantwatch/#"])
    snooper.subscribe(["+/+/+/+/+"])
    snooper.subscribe(["dt/plantwatch/s1/+/telemetry"])
    snooper.subscribe(["dt/plantwatch/s1/pump-02/telemetry"])
    sent = ["dt/plantwatch/s1/pump-01/telemetry", "dt/plantwatch/s2/a-1/telemetry"]
    for user, topic in zip(("pump-01", "gw-01"), sent, strict=True):
        attempt(secured, user, topic, topic.encode())
    own = "dt/plantwatch/s1/pump-02/telemetry"
    assert snooper.publish(own, own.encode())
    rules.wait_for_message(own)
    snooper.quiet(0.3)
    assert {topic for topic, _ in rules.messages} == {*sent, own}
    assert snooper.messages == []
