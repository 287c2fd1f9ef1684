"""Topic rules in AWS's ``CreateTopicRule`` shape, loaded and checked once.

A rules file is ``{"rules": [{"ruleName": ..., "topicRulePayload": {...}}]}`` where each
payload is exactly what ``iot:CreateTopicRule`` (and CDK's ``CfnTopicRule``) takes: ``sql``,
``awsIotSqlVersion`` (must be ``2016-03-23``), ``ruleDisabled``, ``actions``,
``errorAction``. Deployment-only fields (``roleArn``, real stream and bucket names) are
filled in by the CDK app; the SQL strings are deployed unchanged.

Locally the actions mean: ``kinesis`` -> the batcher, ``republish`` -> the broker,
``s3`` -> the local object store. Other action types are rejected at load time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.rules.sql import SQL_VERSION, Expr, Statement, parse, parse_expression
from edge.errors import ConfigError, RuleSqlError
from edge.user_files import read_document_text

DEFAULT_RULES = Path(__file__).with_name("default_rules.json")
RULE_NAME_RE = re.compile(r"^[a-zA-Z0-9_]{1,128}$")
MAX_ACTIONS = 10
ACTION_TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "kinesis": ("partitionKey",),
    "republish": ("topic",),
    "s3": ("key",),
}
"""Supported action types and their fields that take ``${...}`` substitution templates."""
ACTION_FIELDS: dict[str, tuple[str, ...]] = {
    "kinesis": ("streamName", "partitionKey", "roleArn"),
    "republish": ("topic", "qos", "roleArn"),
    "s3": ("bucketName", "key", "roleArn", "cannedAcl"),
}
"""Each supported action's fields, as AWS's ``KinesisAction``, ``RepublishAction`` and
``S3Action`` name them."""
UNSUPPORTED_FIELDS = {("republish", "headers"): "MQTT 5 properties of the republished message"}
"""AWS's fields the local engine cannot honour: refused as such, not as unknown."""
CANNED_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "aws-exec-read",
    "authenticated-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
)
"""``S3Action.cannedAcl``'s valid values (AWS IoT API reference): CreateTopicRule refuses
any other, so a rule taken here with one would not deploy."""
ENTRY_FIELDS = ("ruleName", "topicRulePayload")
PAYLOAD_FIELDS = ("sql", "description", "actions", "ruleDisabled", "awsIotSqlVersion")
PAYLOAD_FIELDS += ("errorAction",)
"""``TopicRulePayload``'s fields: AWS (its CLI, CloudFormation) refuses any other, so a
misspelt ``errorAction`` would never deploy; taken here it would drop the errorAction."""


@dataclass(frozen=True, slots=True)
class Template:
    """A string with ``${expr}`` parts; ``parts`` alternate literal text and expressions."""

    text: str
    parts: tuple[str | Expr, ...]


@dataclass(frozen=True, slots=True)
class Action:
    kind: str
    """``kinesis``, ``republish`` or ``s3``."""
    params: Mapping[str, Any]
    templates: Mapping[str, Template]


@dataclass(frozen=True, slots=True)
class TopicRule:
    name: str
    sql: str
    statement: Statement
    actions: tuple[Action, ...]
    error_action: Action | None = None
    disabled: bool = False


def load_rules(path: str | Path | None = None) -> list[TopicRule]:
    """Rules from a JSON file (default: the project's ``default_rules.json``)."""
    source = Path(path) if path is not None else DEFAULT_RULES
    try:
        doc = json.loads(read_document_text(source))
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such rules file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read rules file: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: line {exc.lineno}: not JSON: {exc.msg}") from None
    except RecursionError:
        raise ConfigError(f"{source}: JSON nested too deeply to be a rules file") from None
    except ValueError as exc:  # an integer of thousands of digits: not a JSONDecodeError
        raise ConfigError(f"{source}: not usable JSON: {exc}") from None
    return rules_from_document(doc, str(source))


def rules_from_document(doc: Any, source: str = "<rules>") -> list[TopicRule]:
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise ConfigError(f'{source}: expected {{"rules": [...]}}')
    rules: list[TopicRule] = []
    names: set[str] = set()
    for i, entry in enumerate(doc["rules"]):
        where = f"{source}: rules[{i}]"
        rule = rule_from_document(entry, where)
        if rule.name in names:
            raise ConfigError(f"{where}.ruleName: {rule.name!r} is defined twice")
        names.add(rule.name)
        rules.append(rule)
    return rules


def rule_from_document(entry: Any, where: str = "rule") -> TopicRule:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected an object with ruleName and topicRulePayload")
    refuse_other_fields(entry, ENTRY_FIELDS, where)
    name = entry.get("ruleName")
    if not isinstance(name, str) or not RULE_NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}.ruleName: expected a name matching {RULE_NAME_RE.pattern}")
    where = f"{where} ({name})"
    payload = entry.get("topicRulePayload")
    if not isinstance(payload, dict):
        raise ConfigError(f"{where}.topicRulePayload: expected an object")
    refuse_other_fields(payload, PAYLOAD_FIELDS, f"{where}.topicRulePayload")
    description = payload.get("description")
    if description is not None and not isinstance(description, str):
        raise ConfigError(f"{where}.topicRulePayload.description: expected a string")
    version = payload.get("awsIotSqlVersion")
    if version != SQL_VERSION:
        raise ConfigError(
            f"{where}.topicRulePayload.awsIotSqlVersion: expected {SQL_VERSION!r}, got "
            f"{version!r} (AWS uses 2015-10-08 when it is missing)"
        )
    sql = payload.get("sql")
    if not isinstance(sql, str):
        raise ConfigError(f"{where}.topicRulePayload.sql: expected a string")
    try:
        statement = parse(sql)
    except RuleSqlError as exc:
        raise RuleSqlError(f"{where}.topicRulePayload.sql: {exc}") from None
    disabled = payload.get("ruleDisabled", False)
    if not isinstance(disabled, bool):
        raise ConfigError(f"{where}.topicRulePayload.ruleDisabled: expected true or false")
    raw_actions = payload.get("actions")
    # AWS's TopicRulePayload: "Minimum number of 0 items. Maximum number of 10 items."
    if not isinstance(raw_actions, list) or len(raw_actions) > MAX_ACTIONS:
        raise ConfigError(
            f"{where}.topicRulePayload.actions: expected a list of 0 to {MAX_ACTIONS} actions"
        )
    actions = tuple(
        _action(a, f"{where}.topicRulePayload.actions[{j}]") for j, a in enumerate(raw_actions)
    )
    error_action = None
    if payload.get("errorAction") is not None:
        error_action = _action(payload["errorAction"], f"{where}.topicRulePayload.errorAction")
    return TopicRule(name, sql, statement, actions, error_action, disabled)


def _action(doc: Any, where: str) -> Action:
    if not isinstance(doc, dict) or len(doc) != 1:
        raise ConfigError(f'{where}: expected one action, e.g. {{"kinesis": {{...}}}}')
    ((kind, params),) = doc.items()
    if kind not in ACTION_TEMPLATE_FIELDS:
        raise ConfigError(
            f"{where}: action {kind!r} is not supported locally "
            f"(expected {', '.join(ACTION_TEMPLATE_FIELDS)})"
        )
    if not isinstance(params, dict):
        raise ConfigError(f"{where}.{kind}: expected an object")
    for name in params:
        if (kind, name) in UNSUPPORTED_FIELDS:
            raise ConfigError(
                f"{where}.{kind}.{name}: {UNSUPPORTED_FIELDS[kind, name]}, which AWS takes, "
                "are not supported locally"
            )
    refuse_other_fields(params, ACTION_FIELDS[kind], f"{where}.{kind}")
    for name in ACTION_FIELDS[kind]:
        if name != "qos" and name in params and not isinstance(params[name], str):
            raise ConfigError(f"{where}.{kind}.{name}: expected a string")
    if "cannedAcl" in params and params["cannedAcl"] not in CANNED_ACLS:
        raise ConfigError(
            f"{where}.{kind}.cannedAcl: expected one of {', '.join(CANNED_ACLS)}, "
            f"got {params['cannedAcl']!r}"
        )
    templates: dict[str, Template] = {}
    for name in ACTION_TEMPLATE_FIELDS[kind]:
        value = params.get(name)
        if value is None:
            continue
        try:
            templates[name] = parse_template(value)
        except RuleSqlError as exc:
            raise RuleSqlError(f"{where}.{kind}.{name}: {exc}") from None
    required = {"republish": "topic", "s3": "key"}.get(kind)
    if required and required not in templates:
        raise ConfigError(f"{where}.{kind}.{required}: required")
    qos = params.get("qos", 0)
    if kind == "republish" and (type(qos) is not int or qos not in (0, 1)):
        raise ConfigError(f"{where}.republish.qos: expected 0 or 1")
    return Action(kind, dict(params), templates)


def refuse_other_fields(doc: Mapping[str, Any], fields: tuple[str, ...], where: str) -> None:
    """ConfigError naming the first field of *doc* not in *fields*: AWS refuses it, and
    taken here it would be dropped without a word."""
    for name in doc:
        if name not in fields:
            raise ConfigError(
                f"{where}.{name}: not a field of this object (expected {', '.join(fields)})"
            )


def parse_template(text: str) -> Template:
    """``raw/${topic(3)}/${timestamp()}``: literal text and ``${expr}`` parts; ``$$`` is ``$``."""
    parts: list[str | Expr] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            literal.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _template_end(text, i + 2)
            if literal:
                parts.append("".join(literal))
                literal = []
            try:
                parts.append(parse_expression(text[i + 2 : end]))
            except RuleSqlError as exc:
                position = None if exc.position is None else exc.position + i + 2
                raise RuleSqlError(
                    f"in ${{...}}: {str(exc).rsplit(' (at position', 1)[0]}", position=position
                ) from None
            i = end + 1
        else:
            literal.append(text[i])
            i += 1
    if literal:
        parts.append("".join(literal))
    return Template(text, tuple(parts))


def _template_end(text: str, start: int) -> int:
    depth, quote = 0, ""
    for j in range(start, len(text)):
        ch = text[j]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return j
            depth -= 1
    raise RuleSqlError("unterminated ${...} template", position=start - 1)
