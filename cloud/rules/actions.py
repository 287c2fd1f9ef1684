"""What a rule's actions do locally, and the errorAction message when one fails."""

from __future__ import annotations

import base64
import re
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
    topic_level,
)
from cloud.rules.sql import Call, Literal, Star
from cloud.shadow.document import parse_request_topic
from edge.errors import PlantwatchError, RefusedError, UserError
from edge.wire import (
    MAX_PAYLOAD_BYTES,
    RULE_NAME_RE,
    iot_core_topic_problem,
    split_basic_ingest,
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


def render_topic_template(template: Template, topic: str) -> str | None:
    """:func:`render_template` for a template of literal text and ``topic()`` or
    ``topic(<integer>)`` parts only, from the topic alone (no message to build: the
    forwarding path's partition key); None for any other template."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Call) and part.name == "topic" and not part.args:
            out.append(topic)
        elif (
            isinstance(part, Call)
            and part.name == "topic"
            and len(part.args) == 1
            and isinstance(part.args[0], Literal)
            and type(part.args[0].value) is int
        ):
            level = topic_level(topic, part.args[0].value)
            out.append("" if level is UNDEFINED else level)
        else:
            return None
    return "".join(out)


KINESIS_KEY_CHARS = 256
"""Kinesis ``PutRecord``: a partition key is at most 256 characters."""


def check_partition_key(key: str) -> None:
    """RefusedError for a partition key over 256 characters, which Kinesis refuses. An
    empty one (a template whose expressions are all Undefined) goes on: AWS does not say
    whether IoT Core sends it (refused) or a random key instead."""
    if len(key) > KINESIS_KEY_CHARS:
        raise RefusedError(
            f"kinesis: partition key {key[:64]!r}...: {len(key):,} characters; Kinesis takes "
            f"at most {KINESIS_KEY_CHARS}; Kinesis would refuse it; not sent",
            reason="InvalidPartitionKey",
        )


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
            template = rule.actions[0].templates.get("partitionKey")
            if template is not None:
                key = render_topic_template(template, topic)
                if key is None:  # more than the topic: evaluated as :meth:`run` would
                    message = Message(topic, payload, client_id, received_ms)
                    key = render_template(template, message)
                check_partition_key(key)
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
            template = action.templates.get("partitionKey")
            if template is not None:
                check_partition_key(render_template(template, message))
            self._to_batcher(output, message)
        elif action.kind == "republish":
            if self.republisher is None:
                raise RuntimeError("republish action but no publisher configured")
            # the template's own ``$$`` is ``$`` already (parse_template); one a substitution
            # makes is text of the message and stays as it is: a reserved topic, refused
            topic = render_template(action.templates["topic"], message)
            problem = republish_topic_problem(topic)
            if problem is not None:
                raise RefusedError(
                    f"republish: {problem}; IoT Core would refuse it; not sent",
                    reason="InvalidTopic",
                )
            body = output.to_bytes()
            if len(body) > MAX_PAYLOAD_BYTES:  # IoT Core refuses it; a broker disconnects
                raise RefusedError(
                    f"republish to {topic[:64]!r}: the output is {len(body):,} bytes; IoT Core "
                    f"takes at most {MAX_PAYLOAD_BYTES:,}; not sent",
                    reason="RequestEntityTooLarge",
                )
            self.republisher.publish(topic, body, int(action.params.get("qos", 0)))
        elif action.kind == "s3":
            key = render_template(action.templates["key"], message)
            problem = s3_key_problem(key)
            if problem is not None:
                raise RefusedError(
                    f"s3: object key {key[:64]!r}: {problem}; S3 would refuse it; not stored",
                    reason="InvalidKey",
                )
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


S3_KEY_BYTES = 1024
"""S3's longest object key, in bytes of UTF-8."""


def s3_key_problem(key: str) -> str | None:
    """Why S3 would refuse *key* whatever the local store takes: empty (a template whose
    expressions are all Undefined), not UTF-8, or over 1,024 bytes of UTF-8."""
    if not key:
        return "empty"
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "not UTF-8 (a lone surrogate)"
    if size > S3_KEY_BYTES:
        return f"{size:,} bytes of UTF-8; S3 takes at most {S3_KEY_BYTES:,}"
    return None


def republish_topic_problem(topic: str) -> str | None:
    """Why IoT Core would refuse a republish to *topic*, else None: empty, NUL, not UTF-8
    (a lone surrogate), a control character or non-character (MQTT says a topic should
    not hold one; mosquitto disconnects the publisher), a ``+`` or ``#`` wildcard, over 256 bytes or over 7 slashes (the
    Basic Ingest prefix is not counted), or a reserved ``$`` topic a rule may not publish
    to. The ones it may are a shadow's request topics
    (``$aws/things/<thing>/shadow[/name/<shadow>]/get|update|delete``, AWS's example of
    ``$$``) and Basic Ingest (``$aws/rules/<rule>/<topic>``); AWS's republish action does
    not support jobs topics, and the rest are the service's own (events, a shadow's
    ``/accepted`` and ``/rejected`` replies, ``$SYS``)."""
    shown = repr(topic[:64]) + ("..." if len(topic) > 64 else "")
    if not topic:
        return "an empty topic"
    if "\x00" in topic:
        return f"topic {shown} holds a NUL character"
    try:
        topic.encode("utf-8")
    except UnicodeEncodeError:
        return f"topic {shown} is not UTF-8 (a lone surrogate)"
    if "+" in topic or "#" in topic:
        return f"topic {shown} holds a wildcard"
    discouraged = _discouraged(topic)
    if discouraged is not None:
        return (
            f"topic {shown} holds {discouraged}, which an MQTT topic should not "
            "(a broker may disconnect the publisher: mosquitto does)"
        )
    if topic.startswith("$"):
        ingest = split_basic_ingest(topic)
        if ingest is not None:
            if not RULE_NAME_RE.fullmatch(ingest[0]) or not ingest[1]:
                return (
                    f"topic {shown} is a reserved topic: a Basic Ingest topic is "
                    "$aws/rules/<rule name>/<topic>"
                )
        elif parse_request_topic(topic) is None or not all(topic.split("/")):
            return (
                f"topic {shown} is a reserved topic a rule may not publish to (only "
                "$aws/things/<thing>/shadow[/name/<shadow>]/get|update|delete and "
                "$aws/rules/<rule>/<topic>)"
            )
    return iot_core_topic_problem(topic)


_CONTROL = re.compile("[\x01-\x1f\x7f-\x9f]")
_NON_CHARACTER = re.compile(
    "[\ufdd0-\ufdef"  # and the last two code points of every plane
    + "".join(chr(plane | 0xFFFE) + chr(plane | 0xFFFF) for plane in range(0, 0x110000, 0x10000))
    + "]"
)


def _discouraged(topic: str) -> str | None:
    """The first code point MQTT says a string should not hold (3.1.1 §1.5.3, 5.0 §1.5.4):
    a control character (U+0001-U+001F, U+007F-U+009F) or a Unicode non-character."""
    for pattern, what in ((_CONTROL, "control character"), (_NON_CHARACTER, "non-character")):
        found = pattern.search(topic)
        if found is not None:
            return f"the {what} U+{ord(found.group()):04X}"
    return None


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
