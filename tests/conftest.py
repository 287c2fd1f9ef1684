"""Shared fixtures and settings: a real broker per test module, started by the tests.

Hypothesis: no per-example deadline (a loaded 2-core machine makes timing flaky; speed is
measured by benchmarks, not tests), and under CI the search is derandomized so a run is
reproducible; locally it keeps exploring new examples.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from cloud.runtime.broker import EmbeddedBroker

settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    """A real amqtt broker on a free loopback port."""
    with EmbeddedBroker("amqtt") as running:
        yield running
