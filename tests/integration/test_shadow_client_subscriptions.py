"""One long-lived ShadowClient asking about many things through amqtt, which holds each
connection to IoT Core's 50 subscriptions: the client must keep working past that many
answer topics, as it would have to on IoT Core."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.runtime.amqtt_server import MAX_SUBSCRIPTIONS_PER_CONNECTION
from cloud.runtime.broker import EmbeddedBroker
from cloud.shadow.client import ShadowClient
from cloud.shadow.service import ShadowService
from edge.clock import ManualClock
from edge.errors import NotFoundError, PlantwatchError

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


def test_a_refused_answer_subscription_is_named_at_once_not_waited_on(
    broker: EmbeddedBroker, service: ShadowService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that keeps more answer filters than the connection takes: the broker's
    refusal in the SUBACK is the answer, so the request fails saying so, without waiting
    out its timeout on an answer that cannot come."""
    monkeypatch.setattr("cloud.shadow.client.HELD_ANSWER_FILTERS", 10 * len(THINGS))
    with ShadowClient(broker.url, "operator", timeout=30.0) as client:
        refused = MAX_SUBSCRIPTIONS_PER_CONNECTION // 2
        for thing in THINGS[:refused]:
            client.update(thing, desired={"on": True})
        started = time.monotonic()
        with pytest.raises(PlantwatchError, match=r"refused the subscription.*pump-025"):
            client.update(THINGS[refused], desired={"on": True})
        assert time.monotonic() - started < 10.0
