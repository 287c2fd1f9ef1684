"""The rules runner as the rules tests build it: a rules file of one rule in
CreateTopicRule's shape, and a runner over the local batcher that is never connected (the
tests hand it messages through ``handle`` or ``process``)."""

from __future__ import annotations

from typing import Any

from cloud.batcher import Batcher, BatcherConfig
from cloud.ports import ObjectStore, Publisher
from cloud.rules.definitions import rules_from_document
from cloud.rules.runner import RulesRunner
from edge.clock import Clock

UNUSED_BROKER = "mqtt://127.0.0.1:1"
"""The broker address a runner needs; nothing listens there and nothing connects."""


def topic_rule(
    name: str, sql: str, actions: list[dict], error_action: dict | None = None
) -> dict[str, Any]:
    """``{"rules": [...]}`` holding one rule (SQL version 2016-03-23), with an errorAction
    only when one is given."""
    payload: dict[str, Any] = {"sql": sql, "awsIotSqlVersion": "2016-03-23", "actions": actions}
    if error_action is not None:
        payload["errorAction"] = error_action
    return {"rules": [{"ruleName": name, "topicRulePayload": payload}]}


def offline_runner(
    document: dict[str, Any],
    store: ObjectStore,
    clock: Clock,
    *,
    publisher: Publisher | None = None,
    batcher_type: type[Batcher] = Batcher,
    **options: Any,
) -> RulesRunner:
    """A runner of *document*'s rules whose batcher writes to *store*; *publisher* takes
    the republish actions, *options* go to :class:`RulesRunner`."""
    batcher = batcher_type(store, BatcherConfig(), clock)
    return RulesRunner(
        UNUSED_BROKER,
        rules_from_document(document),
        batcher,
        clock,
        republisher=publisher,
        **options,
    )
