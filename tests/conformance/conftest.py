"""Conformance fixtures: each case runs once per backend: the local service over MQTT, the
local service over REST (boto3 ``iot-data`` at its ``rest_url``) and moto's iot-data.

A case marked ``@moto_deviation(reason)`` is a strict xfail on moto: where moto disagrees
with AWS's documented behaviour the suite follows AWS, and if moto is ever fixed the XPASS
fails the run so the deviation table in ``DEVIATIONS.md`` gets updated.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from shadow_backends import Backend, LocalBackend, MotoBackend, RestBackend, local_iot_data

from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.client import ShadowClient
from cloud.shadow.service import ShadowService
from edge.clock import ManualClock


@pytest.fixture(scope="module")
def local_service(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ShadowService, ManualClock]]:
    """One service for both local faces: a second one on the broker would answer every
    MQTT request again from its own store."""
    clock = ManualClock(1_750_000_000.0)
    db = Path(tmp_path_factory.mktemp("conformance")) / "shadows.db"
    with ShadowService(broker.url, str(db), clock, limits=False, rest_port=0) as service:
        yield service, clock


@pytest.fixture(scope="module")
def local_backend(
    broker: EmbeddedBroker, local_service: tuple[ShadowService, ManualClock]
) -> Iterator[LocalBackend]:
    with ShadowClient(broker.url) as client:
        yield LocalBackend(client, local_service[1])


@pytest.fixture(scope="module")
def rest_backend(local_service: tuple[ShadowService, ManualClock]) -> RestBackend:
    service, clock = local_service
    assert service.rest_url is not None
    return RestBackend(local_iot_data(service.rest_url), clock)


@pytest.fixture(scope="module")
def moto_backend() -> Iterator[MotoBackend]:
    import boto3
    from moto import mock_aws

    with mock_aws():
        region = "us-east-1"
        yield MotoBackend(
            boto3.client("iot", region_name=region),
            boto3.client("iot-data", region_name=region),
        )


@pytest.fixture(params=["local", "rest", "moto"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.getfixturevalue(f"{request.param}_backend")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reason = getattr(getattr(item, "function", None), "_moto_deviation", None)
        callspec = getattr(item, "callspec", None)
        if reason and callspec is not None and callspec.params.get("backend") == "moto":
            item.add_marker(
                pytest.mark.xfail(reason=f"moto deviates from AWS: {reason}", strict=True)
            )
