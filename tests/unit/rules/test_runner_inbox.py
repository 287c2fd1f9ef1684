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
