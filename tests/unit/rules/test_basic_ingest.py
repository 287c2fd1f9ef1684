"""IoT Core Basic Ingest in the local rules runner (iot-core-rules-and-limits §1.6, §2):
a message on ``$aws/rules/<rule>/<topic>`` runs that rule alone, FROM filter or not, and
the rule sees ``<topic>``: ``topic()``, ``topic(n)`` and the topic limits leave the prefix
out. A message naming a rule the runner does not run is quarantined, never dropped unseen."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryObjectStore, InMemoryPublisher
from cloud.batcher import Batcher, BatcherConfig
from cloud.rules.definitions import load_rules, rules_from_document
from cloud.rules.runner import RulesRunner
from edge import wire
from edge.clock import ManualClock

T0 = 1_700_000_000
TOPIC = "dt/plantwatch/s1/dev7/telemetry"


def rule(name: str, sql: str, topic: str, *, disabled: bool = False) -> dict:
    return {
        "ruleName": name,
        "topicRulePayload": {
            "sql": sql,
            "awsIotSqlVersion": "2016-03-23",
            "ruleDisabled": disabled,
            "actions": [{"republish": {"topic": topic, "qos": 1}}],
        },
    }


RULES = [
    # the general evaluator (WHERE) and the compiled path (aliases only)
    rule(
        "dry",
        "SELECT topic() AS t, topic(4) AS thing, moisture FROM "
        "'dt/plantwatch/+/+/telemetry' WHERE moisture < 20",
        "alerts/${topic(3)}/${topic(4)}",
    ),
    rule(
        "copy", "SELECT topic() AS t, topic(1) AS first FROM 'dt/plantwatch/#'", "copy/${topic()}"
    ),
    rule("off", "SELECT topic() AS t FROM 'dt/#'", "off/${topic()}", disabled=True),
]


def make_runner(
    doc: list[dict] | None = None,
) -> tuple[RulesRunner, InMemoryPublisher, InMemoryObjectStore]:
    store, publisher, clock = InMemoryObjectStore(), InMemoryPublisher(), ManualClock(T0)
    runner = RulesRunner(
        "mqtt://127.0.0.1:1",
        rules_from_document({"rules": doc or RULES}),
        Batcher(store, BatcherConfig(), clock),
        clock,
        republisher=publisher,
    )
    return runner, publisher, store


def outputs(publisher: InMemoryPublisher) -> list[tuple[str, dict]]:
    return [(topic, json.loads(payload)) for topic, payload, _qos in publisher.published]


def test_the_runner_subscribes_to_the_basic_ingest_topics_of_its_enabled_rules() -> None:
    runner, _, _ = make_runner()
    assert runner.subscriptions() == [
        "dt/plantwatch/#",
        "dt/plantwatch/+/+/telemetry",
        "$aws/rules/dry/#",
        "$aws/rules/copy/#",
    ]


def test_a_basic_ingest_message_runs_only_its_rule_and_topic_leaves_the_prefix_out() -> None:
    runner, publisher, _ = make_runner()
    runner.handle(f"$aws/rules/dry/{TOPIC}", b'{"moisture": 12}')
    assert outputs(publisher) == [
        ("alerts/s1/dev7", {"t": TOPIC, "thing": "dev7", "moisture": 12}),
    ]
    publisher.published.clear()
    runner.handle(f"$aws/rules/copy/{TOPIC}", b'{"moisture": 12}')
    assert outputs(publisher) == [(f"copy/{TOPIC}", {"t": TOPIC, "first": "dt"})]
    publisher.published.clear()
    # the same message published plainly reaches both rules
    runner.handle(TOPIC, b'{"moisture": 12}')
    assert sorted(t for t, _ in outputs(publisher)) == ["alerts/s1/dev7", f"copy/{TOPIC}"]


def test_the_rules_where_still_applies_but_its_from_filter_does_not() -> None:
    runner, publisher, _ = make_runner()
    runner.handle(f"$aws/rules/dry/{TOPIC}", b'{"moisture": 30}')
    assert publisher.published == []
    runner.handle("$aws/rules/dry/lab/bench-3", b'{"moisture": 5}')
    runner.handle("$aws/rules/copy/lab", b"{}")
    assert outputs(publisher) == [
        ("alerts//", {"t": "lab/bench-3", "moisture": 5}),  # topic(3), topic(4) Undefined
        ("copy/lab", {"t": "lab", "first": "lab"}),
    ]


@pytest.mark.parametrize("name", ["off", "nosuchrule", ""])
def test_a_message_for_a_disabled_or_unknown_rule_is_quarantined(name: str) -> None:
    runner, publisher, store = make_runner()
    runner.handle(f"$aws/rules/{name}/{TOPIC}", b'{"moisture": 1}')
    assert publisher.published == []
    assert runner.counts["unknown_rule"] == 1
    [key] = store.list("quarantine/")
    assert key.startswith("quarantine/unknown_rule/")
    record = json.loads(store.get(key))
    assert record["topic"] == f"$aws/rules/{name}/{TOPIC}"
    assert json.loads(record["payload"]) == {"moisture": 1}


def reading(asset: str, site: str = "s1") -> bytes:
    doc = {"v": wire.SCHEMA_VERSION, "site": site, "asset": asset, "sender": "e", "seq": 1}
    return json.dumps({**doc, "samples": [{"ts": T0 * 1000, "values": {"flow": 1.5}}]}).encode()


def test_telemetry_through_basic_ingest_is_batched_like_telemetry_and_the_prefix_is_not_counted() -> (
    None
):
    site, asset = "s" * 128, "a" * 103  # the plain topic is 256 bytes, the limit
    topic = wire.telemetry_topic(site, asset)
    assert len(topic) == wire.MAX_TOPIC_BYTES
    ingest = wire.basic_ingest_topic("plantwatch_telemetry_to_batcher", topic)
    store, clock = InMemoryObjectStore(), ManualClock(T0)
    runner = RulesRunner(
        "mqtt://127.0.0.1:1", load_rules(), Batcher(store, BatcherConfig(), clock), clock
    )
    runner.handle(ingest, reading(asset, site))
    runner.handle(
        wire.basic_ingest_topic("plantwatch_telemetry_to_batcher", "lab/x"), reading(asset, site)
    )
    runner.batcher.flush_all()
    keys = list(store.list())
    assert [k for k in keys if k.endswith(".csv")], keys
    assert [k for k in keys if k.startswith("quarantine/bad_topic/")], keys


@settings(max_examples=40, deadline=None)
@given(
    # at most 7 levels: the rule republishes to copy/<inner>, and IoT Core takes 8 at most
    st.lists(st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True), min_size=1, max_size=7).map(
        "/".join
    )
)
def test_topic_of_a_basic_ingest_message_is_the_topic_after_the_prefix(inner: str) -> None:
    runner, publisher, _ = make_runner()
    runner.handle(f"$aws/rules/copy/{inner}", b"{}")
    [(out_topic, doc)] = outputs(publisher)
    assert doc == {"t": inner, "first": inner.split("/")[0]}
    assert out_topic == f"copy/{inner}"


RULE_NAMES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/#+\x00"), max_size=12
).filter(lambda name: name not in ("dry", "copy"))


@settings(max_examples=30, deadline=None)
@given(
    sends=st.lists(
        st.tuples(st.sampled_from(["nosuch", "off", "Dry", ""]) | RULE_NAMES, st.integers(0, 50)),
        min_size=1,
        max_size=30,
    )
)
def test_an_unknown_rule_is_counted_per_message_and_logged_once_per_name_per_minute(
    sends: list[tuple[str, int]],
) -> None:
    """IoT Core delivers such a message to no rule and counts it (``RuleNotFound``); the
    runner counts every one and logs each rule name at most once a minute, so a device
    publishing to a wrong name cannot flood the log."""
    import logging

    runner, publisher, _ = make_runner()
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    logger = logging.getLogger("cloud.rules.runner")
    logger.addHandler(handler)
    try:
        clock = runner.clock
        expected: list[str] = []
        last: dict[str, float] = {}
        for name, wait_s in sends:
            clock.advance(wait_s)
            runner.handle(f"$aws/rules/{name}/{TOPIC}", b'{"moisture": 1}')
            now = clock.now()
            if name not in last or now - last[name] >= 60:
                last[name] = now
                expected.append(name)
    finally:
        logger.removeHandler(handler)
    assert publisher.published == []
    assert runner.counts["unknown_rule"] == len(sends)
    logged = [r.getMessage() for r in records if "unknown_rule" in r.getMessage()]
    assert len(logged) == len(expected)
    for message, name in zip(logged, expected, strict=True):
        assert f"rule {name!r}" in message
        assert "\n" not in message


def test_a_rule_without_from_runs_only_through_basic_ingest() -> None:
    """AWS's SQL reference: FROM is "Optional for rules that are only triggered using the
    Basic Ingest feature". Such a rule loads, is subscribed only on its Basic Ingest topics,
    and never runs on a plain publish."""
    ingest_only = rule("direct", "SELECT topic() AS t, v WHERE v > 1", "direct/${topic()}")
    runner, publisher, _ = make_runner([*RULES, ingest_only])
    assert runner.subscriptions() == [
        "dt/plantwatch/#",
        "dt/plantwatch/+/+/telemetry",
        "$aws/rules/dry/#",
        "$aws/rules/copy/#",
        "$aws/rules/direct/#",
    ]
    runner.handle("$aws/rules/direct/lab/bench-3", b'{"v": 2}')
    runner.handle("$aws/rules/direct/lab/bench-3", b'{"v": 1}')
    assert outputs(publisher) == [("direct/lab/bench-3", {"t": "lab/bench-3", "v": 2})]
    publisher.published.clear()
    runner.handle("lab/bench-3", b'{"v": 2}')
    assert publisher.published == []
