"""The rules runner's inbox: bounded by messages and bytes; a full inbox makes the producer
wait (back-pressure) instead of growing; close releases a waiting producer."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from cloud.rules.runner import Inbox


def item(n: int) -> tuple[int, object]:
    return (1, n)  # type: ignore[return-value]


def test_put_waits_while_full_and_resumes_when_the_consumer_takes_one() -> None:
    inbox = Inbox(max_messages=3, max_bytes=10_000)
    for n in range(3):
        assert inbox.put(item(n), 10)
    done = threading.Event()
    threading.Thread(target=lambda: (inbox.put(item(3), 10), done.set()), daemon=True).start()
    time.sleep(0.2)
    assert not done.is_set() and len(inbox) == 3 and inbox.waits == 1
    assert inbox.get() == item(0)
    assert done.wait(5)
    assert [inbox.get_nowait() for _ in range(3)] == [item(1), item(2), item(3)]
    with pytest.raises(queue.Empty):
        inbox.get_nowait()


def test_the_byte_bound_holds_but_one_big_message_still_fits_an_empty_inbox() -> None:
    inbox = Inbox(max_messages=100, max_bytes=1_000)
    assert inbox.put(item(0), 5_000), "alone, a message larger than the bound is admitted"
    blocked = threading.Event()

    def second() -> None:
        blocked.set()
        inbox.put(item(1), 10)

    thread = threading.Thread(target=second, daemon=True)
    thread.start()
    assert blocked.wait(5)
    time.sleep(0.1)
    assert len(inbox) == 1
    inbox.get()
    thread.join(5)
    assert len(inbox) == 1


def test_close_releases_a_waiting_producer_and_drains_before_ending() -> None:
    inbox = Inbox(max_messages=1, max_bytes=1_000)
    inbox.put(item(0), 1)
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(inbox.put(item(1), 1)), daemon=True)
    thread.start()
    time.sleep(0.1)
    inbox.close()
    thread.join(5)
    assert results == [False], "not admitted: it stays unacknowledged and is redelivered"
    assert inbox.get() == item(0)
    assert inbox.get() is None
    assert inbox.get_nowait() is None


def test_get_many_takes_up_to_its_limit_and_frees_room_for_a_waiting_producer() -> None:
    inbox = Inbox(max_messages=3, max_bytes=10_000)
    for n in range(3):
        inbox.put(item(n), 10)
    done = threading.Event()
    threading.Thread(target=lambda: (inbox.put(item(3), 10), done.set()), daemon=True).start()
    time.sleep(0.1)
    assert not done.is_set()
    assert inbox.get_many(2) == [item(0), item(1)]
    assert done.wait(5), "taking items wakes the producer that waits for room"
    assert inbox.get_many(10) == [item(2), item(3)]
    assert len(inbox) == 0 and inbox._bytes == 0


def test_get_many_waits_for_the_first_item_and_ends_with_none_once_closed_and_drained() -> None:
    inbox = Inbox()
    taken: list[object] = []
    consumer = threading.Thread(target=lambda: taken.append(inbox.get_many(5)), daemon=True)
    consumer.start()
    time.sleep(0.1)
    assert not taken, "nothing queued yet: it waits"
    inbox.put(item(7), 1)
    consumer.join(5)
    assert taken == [[item(7)]], "a put wakes the waiting consumer"
    inbox.put(item(8), 1)
    inbox.close()
    assert inbox.get_many(5) == [item(8)], "what was queued before close still comes out"
    assert inbox.get_many(5) is None


@pytest.mark.parametrize("rounds", [2_000])
def test_a_producer_and_a_consumer_pass_every_item_once_in_order(rounds: int) -> None:
    inbox = Inbox(max_messages=7, max_bytes=10_000)

    def produce() -> None:
        for n in range(rounds):
            inbox.put(item(n), 3)
        inbox.close()

    threading.Thread(target=produce, daemon=True).start()
    seen: list[object] = []
    while (batch := inbox.get_many(5)) is not None:
        assert 1 <= len(batch) <= 5
        seen.extend(batch)
    assert seen == [item(n) for n in range(rounds)]
