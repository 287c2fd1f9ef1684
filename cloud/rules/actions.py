"""What a rule's actions do locally, and the errorAction message when one fails."""

from __future__ import annotations

import base64
from typing import Any

from cloud.batcher import Batcher
from cloud.ports import Publisher
from cloud.rules.compiled import compile_statement
from cloud.rules.definitions import Action, Template, TopicRule
from cloud.rules.evaluate import (
    UNDEFINED,
    Encoded,
    Message,
    RuleOutput,
    evaluate_expression,
    plain,
    to_string,
)
from cloud.rules.sql import Call, Literal, Star
from edge.errors import PlantwatchError, RefusedError, UserError


def render_template(template: Template, message: Message) -> str:
    """Substitute ``${expr}`` parts, evaluated against the original message (spec §1.8)."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = evaluate_expression(part, message)
        text = to_string(value) if value is not UNDEFINED else ""
        out.append("" if text is UNDEFINED else text)
    return "".join(out)


class RuleFailed(RuntimeError):
    """A rule's actions failed and no errorAction took the report (the rule has none, or
    it failed too): the runner quarantines the message as ``rule_failed``."""


def is_transient(exc: BaseException) -> bool:
    """Whether *exc* may pass on a retry: a storage or broker failure (``StorageError``,
    a publish not acknowledged), not a refusal (``RefusedError``: the service refuses
    this very request and will again) nor bad input (``UserError``)."""
    return isinstance(exc, PlantwatchError) and not isinstance(exc, RefusedError | UserError)


class ActionRunner:
    """Runs one rule's actions on its output; failures go to the rule's errorAction.

    A transient failure (:func:`is_transient`: the spool, the store or the broker is
    down) is not such a failure: it propagates, so the runner leaves the message
    unacknowledged and the broker redelivers it once the store works again, as AWS
    retries a failed delivery. A refusal (``RefusedError``, e.g. an object key the store
    cannot hold) would fail the same way on every redelivery, and hold up every message
    of its batch: it is a failed action, reported to errorAction as AWS does."""

    def __init__(self, batcher: Batcher, republisher: Publisher | None = None) -> None:
        self.batcher = batcher
        self.republisher = republisher
        self.errors = 0

    def run(self, rule: TopicRule, output: RuleOutput, message: Message) -> None:
        failures: list[dict[str, str]] = []
        for action in rule.actions:
            try:
                self.perform(action, output, message)
            except Exception as exc:  # every failure but a transient one goes to errorAction
                if is_transient(exc):  # storage or broker down: unacknowledged, redelivered
                    raise
                failures.append(_failure(action, exc))
        if failures:
            self.fail(rule, failures, message)

    def forward(
        self, rule: TopicRule, topic: str, payload: bytes, client_id: str, received_ms: int
    ) -> None:
        """:meth:`run` for a rule that :func:`forwards_to_batcher`: the payload's bytes go
        straight to the batcher, as its kinesis action would send them, without building
        the message or the rule's output. A failure goes to errorAction as :meth:`run`
        sends it, for the message received at *received_ms* (``timestamp()``)."""
        try:
            self.batcher.accept(topic, bytes(payload), client_id=client_id)
        except Exception as exc:  # every failure but a transient one goes to errorAction
            if is_transient(exc):
                raise
            message = Message(topic, payload, client_id, received_ms)
            self.fail(rule, [_failure(rule.actions[0], exc)], message)

    def fail(self, rule: TopicRule, failures: list[dict[str, str]], message: Message) -> None:
        """Count the failed run and send the rule's errorAction its report. Raises
        :class:`RuleFailed` when the rule has none or it fails too (the message is then
        quarantined); a transient failure of the errorAction propagates (redelivered)."""
        self.errors += 1
        first = f"{failures[0]['failedAction']} failed: {failures[0]['errorMessage']}"
        if rule.error_action is None:
            raise RuleFailed(f"rule {rule.name}: {first}; the rule has no errorAction")
        report = {
            "ruleName": rule.name,
            "topic": message.topic,
            "cloudwatchTraceId": message.trace_id,
            "clientId": message.client_id,
            "base64OriginalPayload": base64.b64encode(message.payload).decode("ascii"),
            "failures": failures,
        }
        try:
            self.perform(rule.error_action, RuleOutput(report), message)
        except Exception as exc:
            if is_transient(exc):
                raise
            error = _failure(rule.error_action, exc)
            raise RuleFailed(
                f"rule {rule.name}: {first}; its errorAction {error['failedAction']} "
                f"failed too: {error['errorMessage']}"
            ) from exc

    def perform(self, action: Action, output: RuleOutput, message: Message) -> None:
        if action.kind == "kinesis":
            self._to_batcher(output, message)
        elif action.kind == "republish":
            if self.republisher is None:
                raise RuntimeError("republish action but no publisher configured")
            topic = render_template(action.templates["topic"], message)
            if topic.startswith("$$"):
                topic = topic[1:]
            self.republisher.publish(topic, output.to_bytes(), int(action.params.get("qos", 0)))
        elif action.kind == "s3":
            key = render_template(action.templates["key"], message)
            self.batcher.store.put(key, output.to_bytes())
        else:
            raise RuntimeError(f"action {action.kind!r} is not supported locally")

    def _to_batcher(self, output: RuleOutput, message: Message) -> None:
        value: Any = output.value
        if isinstance(value, dict) and "payload" in value and "topic" in value:
            payload, topic = value["payload"], value["topic"]
            if isinstance(payload, Encoded) and isinstance(topic, str):
                # the bytes the envelope's base64 text stands for: no encode, no decode
                client_id = str(value.get("clientid", "n/a"))
                self.batcher.accept(topic, payload.data, client_id=client_id)
            else:
                self.batcher.accept_envelope(plain(value))
        elif isinstance(value, dict):
            self.batcher.accept_row(
                plain(value), message.payload, message.topic, client_id=message.client_id
            )
        else:
            self.batcher.accept(message.topic, bytes(message.payload), client_id=message.client_id)


def forwards_to_batcher(rule: TopicRule) -> bool:
    """Whether the rule's only action is kinesis and its output is the message's envelope:
    ``encode(*, 'base64') AS payload, topic() AS topic`` and optionally ``clientid() AS
    clientid``, besides items that only read the envelope (the project's telemetry rule).
    The batcher then takes ``(topic, payload, client id)`` whatever the other items say, so
    the runner may hand it the message without evaluating them
    (:meth:`ActionRunner.forward`)."""
    statement = rule.statement
    if len(rule.actions) != 1 or rule.actions[0].kind != "kinesis":
        return False
    if statement.where is not None or statement.value:
        return False
    if any(item.alias is None for item in statement.items):
        return False
    exprs = {item.alias: item.expr for item in statement.items}
    payload, topic = exprs.get("payload"), exprs.get("topic")
    clientid = exprs.get("clientid", Call("clientid", ()))
    return (
        compile_statement(statement, defer_encoding=True) is not None
        and payload == Call("encode", (Star(), Literal("base64")))
        and type(payload.args[1].value) is str  # type: ignore[union-attr]
        and topic == Call("topic", ())
        and clientid == Call("clientid", ())
    )


def _failure(action: Action, exc: Exception) -> dict[str, str]:
    return {
        "failedAction": f"{action.kind.capitalize()}Action",
        "failedResource": _resource(action),
        "errorMessage": f"{type(exc).__name__}: {exc}",
    }


def _resource(action: Action) -> str:
    for key in ("streamName", "bucketName", "topic"):
        if key in action.params:
            return str(action.params[key])
    return action.kind
