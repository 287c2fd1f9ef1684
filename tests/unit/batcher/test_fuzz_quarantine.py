"""A fuzz corpus of malformed messages mixed into a clean run: every one is quarantined
with a reason, and the clean output is byte-identical to a run without them."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryObjectStore
from cloud.batcher import Batcher, BatcherConfig
from cloud.batcher.quarantine import Quarantine
from cloud.rules.runner import RulesRunner, load_rules
from edge import wire
from edge.clock import ManualClock

T0 = 1652443800
TOPIC = wire.telemetry_topic("s1", "pump")


def clean_messages() -> list[tuple[str, bytes]]:
    out = []
    for asset in ("pump", "fan"):
        samples = [
            wire.Sample((T0 + 1 + 7 * i) * 1000, {"amps": round(10 + i * 0.1, 3), "rpm": 1500 + i})
            for i in range(128)  # 12:10:01 to 12:24:50: three windows
        ]
        for m in wire.batch_samples("s1", asset, "edge-1", 0, samples, per_message=10):
            out.append((m.topic, wire.encode(m)))
    return out


def good_doc(rng: random.Random) -> dict:
    return {
        "v": 1,
        "site": "s1",
        "asset": "pump",
        "sender": "fuzz",
        "seq": rng.randrange(10**6),
        "samples": [{"ts": (T0 + rng.randrange(900)) * 1000, "values": {"amps": 1.0}}],
    }


def mutate(doc: dict, path: list, value: object) -> bytes:
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(doc).encode()


Mutator = Callable[[random.Random], tuple[str, bytes]]
MUTATORS: list[tuple[str, Mutator]] = [
    ("bad_json", lambda r: (TOPIC, json.dumps(good_doc(r)).encode()[: r.randrange(1, 40)])),
    ("bad_json", lambda r: (TOPIC, bytes(r.randrange(128, 256) for _ in range(r.randrange(1, 50))))),
    ("bad_json", lambda r: (TOPIC, b"")),
    ("bad_json", lambda r: (TOPIC, b"{'v': 1}")),
    ("bad_json", lambda r: (TOPIC, b"[" * 5000)),
    ("bad_schema", lambda r: (TOPIC, json.dumps(r.choice([[], 1, "x", None, True])).encode())),
    ("unsupported_version", lambda r: (TOPIC, mutate(good_doc(r), ["v"], r.choice([0, 2, "1", None])))),
    ("bad_schema", lambda r: (TOPIC, mutate(good_doc(r), ["seq"], r.choice([-1, 1.5, "3", None, True])))),
    ("bad_schema", lambda r: (TOPIC, mutate(good_doc(r), ["samples"], r.choice([[], {}, None, "x"])))),
    ("bad_schema", lambda r: (TOPIC, mutate(good_doc(r), ["sender"], r.choice(["", "a b", 5, "é"])))),
    ("bad_timestamp", lambda r: (TOPIC, mutate(good_doc(r), ["samples", 0, "ts"], r.choice([1.5, "now", None, True])))),
    ("out_of_range", lambda r: (TOPIC, mutate(good_doc(r), ["samples", 0, "ts"], r.choice([-5, 0, 10**15, 10**400])))),
    ("out_of_range", lambda r: (TOPIC, mutate(good_doc(r), ["samples", 0, "values", "amps"], r.choice([10**400, -(10**16), 2e15])))),
    ("out_of_range", lambda r: (TOPIC, mutate(good_doc(r), ["seq"], r.choice([2**63, 10**400])))),
    ("bad_schema", lambda r: (TOPIC, mutate(good_doc(r), ["samples", 0, "values"], r.choice([{}, [], None])))),
    ("bad_value_type", lambda r: (TOPIC, mutate(good_doc(r), ["samples", 0, "values", "amps"], r.choice(["1", True, [1], {"a": 1}])))),
    ("non_finite", lambda r: (TOPIC, json.dumps(good_doc(r)).replace("1.0", r.choice(["NaN", "Infinity", "-Infinity", "1e999"])).encode())),
    ("bad_sensor_name", lambda r: (TOPIC, mutate(good_doc(r), ["samples", 0, "values"], {r.choice(["a b", "a/b", "x\\y", ""]): 1}))),
    ("timestamp_out_of_range", lambda r: (TOPIC, mutate(good_doc(r), ["samples", 0, "ts"], r.choice([10**12, (T0 - 30 * 86400) * 1000, (T0 + 30 * 86400) * 1000])))),
    ("topic_mismatch", lambda r: (wire.telemetry_topic("s1", "fan"), json.dumps(good_doc(r)).encode())),
    ("bad_topic", lambda r: ("dt/plantwatch/s1/bad asset!/telemetry", json.dumps(good_doc(r)).encode())),
    ("oversize", lambda r: (TOPIC, b" " * (wire.MAX_PAYLOAD_BYTES + r.randrange(1, 100)) + b"{}")),
]  # fmt: skip


def corpus(n: int, seed: int = 7) -> list[tuple[str, str, bytes]]:
    rng = random.Random(seed)
    return [
        (reason, *mutator(rng))
        for reason, mutator in (MUTATORS[i % len(MUTATORS)] for i in range(n))
    ]


def run(messages: list[tuple[str, bytes]]) -> tuple[InMemoryObjectStore, Batcher]:
    clock = ManualClock(T0)
    store = InMemoryObjectStore()
    batcher = Batcher(store, BatcherConfig(), clock)
    runner = RulesRunner("mqtt://127.0.0.1:1", load_rules(), batcher, clock)
    for topic, payload in messages:
        runner.handle(topic, payload)
    clock.advance(900 + 30)
    batcher.flush_due()
    return store, batcher


def test_fuzz_corpus_is_quarantined_and_clean_output_is_unchanged() -> None:
    clean = clean_messages()
    bad = corpus(1_200)
    baseline_store, _ = run(clean)

    rng = random.Random(11)
    mixed: list[tuple[str, bytes]] = list(clean)
    for _reason, topic, payload in bad:
        mixed.insert(rng.randrange(len(mixed) + 1), (topic, payload))
    store, batcher = run(mixed)

    inputs = {k: store.get(k) for k in store.list("input/")}
    assert inputs == {k: baseline_store.get(k) for k in baseline_store.list("input/")}
    assert len(inputs) == 6  # 2 assets x 3 windows

    expected: dict[str, int] = {}
    for reason, _t, _p in bad:
        expected[reason] = expected.get(reason, 0) + 1
    assert batcher.stats["quarantined_by_reason"] == expected
    records = [json.loads(store.get(k)) for k in store.list("quarantine/")]
    assert len(records) == len(bad)
    assert all(r["reason"] and r["error"] for r in records)


TEXT = st.text(st.characters(exclude_categories=[])) | st.just("pump \ud800 tripped")


@settings(max_examples=100, deadline=None)
@given(error=TEXT, topic=TEXT, client_id=TEXT, payload=st.binary(max_size=64))
def test_a_quarantine_record_is_written_whatever_its_text_holds(
    error: str, topic: str, client_id: str, payload: bytes
) -> None:
    """The error and topic may carry a device's text, lone surrogates among it (JSON's
    "\\ud800" decodes to one); the record must still be written, or the message that
    should be set aside fails its whole batch instead."""
    store = InMemoryObjectStore()
    key = Quarantine(store, "quarantine/").put(
        "rule_failed", error, payload, topic=topic, client_id=client_id, received_at=T0
    )
    record = json.loads(store.get(key))
    assert (record["error"], record["topic"], record["client_id"]) == (error, topic, client_id)
