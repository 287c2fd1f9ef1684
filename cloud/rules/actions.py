"""What a rule's actions do locally, and the errorAction message when one fails."""

from __future__ import annotations

import base64
from typing import Any

from cloud.batcher import Batcher
from cloud.ports import Publisher
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


class ActionRunner:
    """Runs one rule's actions on its output; failures go to the rule's errorAction."""

    def __init__(self, batcher: Batcher, republisher: Publisher | None = None) -> None:
        self.batcher = batcher
        self.republisher = republisher
        self.errors = 0

    def run(self, rule: TopicRule, output: RuleOutput, message: Message) -> None:
        failures: list[dict[str, str]] = []
        for action in rule.actions:
            try:
                self.perform(action, output, message)
            except Exception as exc:  # every failure goes to errorAction
                failures.append(
                    {
                        "failedAction": f"{action.kind.capitalize()}Action",
                        "failedResource": _resource(action),
                        "errorMessage": f"{type(exc).__name__}: {exc}",
                    }
                )
        if not failures:
            return
        self.errors += 1
        if rule.error_action is None:
            raise RuntimeError(f"rule {rule.name}: {failures[0]['errorMessage']}")
        report = {
            "ruleName": rule.name,
            "topic": message.topic,
            "cloudwatchTraceId": message.trace_id,
            "clientId": message.client_id,
            "base64OriginalPayload": base64.b64encode(message.payload).decode("ascii"),
            "failures": failures,
        }
        self.perform(rule.error_action, RuleOutput(report), message)

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
            self.batcher.accept(message.topic, message.payload, client_id=message.client_id)


def _resource(action: Action) -> str:
    for key in ("streamName", "bucketName", "topic"):
        if key in action.params:
            return str(action.params[key])
    return action.kind
