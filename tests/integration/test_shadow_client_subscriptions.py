"""One long-lived ShadowClient asking about many things through amqtt, which holds each
connection to IoT Core's 50 subscriptions: the client must keep working past that many
answer topics, as it would have to on IoT Core."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.runtime.amqtt_server import MAX_SUBSCRIPTIONS_PER_CONNECTION
from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.client import ShadowClient
from cloud.shadow.service import ShadowService
from edge.clock import ManualClock
from edge.errors import NotFoundError

THINGS = [f"pump-{n:03d}" for n in range(MAX_SUBSCRIPTIONS_PER_CONNECTION + 5)]
"""More things than the quota has places: even one operation per thing (two answer
filters each) runs past it halfway through."""


@pytest.fixture
def service(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[ShadowService]:
    clock = ManualClock(1_750_000_000.0)
    with ShadowService(broker.url, str(tmp_path / "shadows.db"), clock, limits=False) as running:
        yield running


def test_one_client_updates_gets_and_deletes_more_things_than_the_subscription_quota(
    broker: EmbeddedBroker, service: ShadowService
) -> None:
    with ShadowClient(broker.url, "operator", timeout=5.0) as client:
        for n, thing in enumerate(THINGS):
            assert client.update(thing, desired={"n": n})["state"]["desired"] == {"n": n}
        for n, thing in enumerate(THINGS):
            assert client.get(thing)["state"]["desired"] == {"n": n}
        for thing in THINGS:
            client.delete(thing)
        with pytest.raises(NotFoundError):
            client.get(THINGS[0])
        assert client.counts["callback_errors"] == 0


def test_concurrent_requests_from_one_client_over_many_things_all_get_their_answers(
    broker: EmbeddedBroker, service: ShadowService
) -> None:
    """Threads sharing the client: a filter one request waits on is never the one another
    request gives up to make room."""
    failures: list[BaseException] = []

    with ShadowClient(broker.url, "operator", timeout=5.0) as client:

        def run(things: list[str]) -> None:
            try:
                for thing in things:
                    client.update(thing, reported={"on": True})
                    assert client.get(thing)["state"]["reported"] == {"on": True}
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=run, args=(THINGS[k::4],)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert failures == []
