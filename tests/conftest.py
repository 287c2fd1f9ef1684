"""Shared fixtures: a real broker per test module, started and stopped by the tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.runtime.broker import EmbeddedBroker


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    """A real amqtt broker on a free loopback port."""
    with EmbeddedBroker("amqtt") as running:
        yield running
