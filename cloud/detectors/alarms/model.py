"""Load and validate CreateAlarmModel request bodies, exactly as AWS takes them (spec §7).

Errors follow the detector validator's conventions: one :class:`DetectorModelError` whose
message starts with the source and the JSON path, e.g. ``boiler.json:
$.alarmRule.simpleRule.comparisonOperator: 'ABOVE': expected one of GREATER, ...``.

plantwatch reads two settings of its own from the model's AWS ``tags`` (AWS stores tags and
ignores them, so the same file still deploys to IoT Events): ``plantwatch:reminderInterval``
(a duration such as ``PT30M``; an ACTIVE alarm nobody acknowledges is notified again at that
interval) and ``plantwatch:reminderCap`` (how many reminders at most, default 3).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cloud.detectors import expr as ex
from cloud.detectors.api_types import INTEGER_MAX
from cloud.detectors.durations import parse_duration
from cloud.detectors.model import (
    SERVICE_ACTIONS,
    STRICT_LIMITS,
    Action,
    InputDefinition,
    Payload,
    _action,
    _Ctx,
    _name_role_key,
    _read,
    _service_fields,
    check_input_references,
    check_tags,
    refuse_wrappers,
)
from edge.errors import DetectorModelError

OPERATORS: Final[Mapping[str, str]] = {
    "GREATER": ">",
    "GREATER_OR_EQUAL": ">=",
    "LESS": "<",
    "LESS_OR_EQUAL": "<=",
    "EQUAL": "==",
    "NOT_EQUAL": "!=",
}
RULE_CHARS: Final = 512
SEVERITY_MAX: Final = INTEGER_MAX
"""``severity`` is an Integer from 0 (CreateAlarmModel)."""
ADDITIONAL_MESSAGE_MAX: Final = 200
"""Characters in an email or SMS ``additionalMessage`` (API, NotificationAdditionalMessage)."""
REMINDER_INTERVAL_TAG: Final = "plantwatch:reminderInterval"
REMINDER_CAP_TAG: Final = "plantwatch:reminderCap"
DEFAULT_REMINDER_CAP: Final = 3
_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class SimpleRule:
    """``inputProperty <operator> threshold``; both sides are expressions."""

    input_property: ex.Expr
    input_property_text: str
    operator: str
    """``GREATER`` ... ``NOT_EQUAL``."""
    threshold: ex.Expr
    threshold_text: str


@dataclass(frozen=True, slots=True)
class Recipient:
    """An IAM Identity Center user; a :class:`RecipientDirectory` resolves it to an address."""

    identity_store_id: str
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class EmailConfiguration:
    sender: str
    subject: str | None
    additional_message: str | None
    to: tuple[Recipient, ...]


@dataclass(frozen=True, slots=True)
class SmsConfiguration:
    sender_id: str | None
    additional_message: str | None
    recipients: tuple[Recipient, ...]


@dataclass(frozen=True, slots=True)
class NotificationAction:
    """The notification Lambda and who it emails and texts."""

    function_arn: str
    payload: Payload | None
    emails: tuple[EmailConfiguration, ...]
    sms: tuple[SmsConfiguration, ...]


@dataclass(frozen=True, slots=True)
class AlarmModel:
    """A validated CreateAlarmModel body with compiled expressions."""

    name: str
    rule: SimpleRule
    key: str | None
    key_path: tuple[str, ...] | None
    severity: int | None
    notifications: tuple[NotificationAction, ...]
    actions: tuple[Action, ...]
    disabled_on_initialization: bool
    """AWS's default is true (API reference): new instances start DISABLED."""
    acknowledge_flow: bool
    role_arn: str
    description: str = ""
    reminder_interval_s: float | None = None
    reminder_cap: int = DEFAULT_REMINDER_CAP
    source: str = "model"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def expressions(self) -> list[tuple[str, ex.Expr]]:
        """Every expression with its JSON path: the rule, then the actions' fields."""
        out = [
            ("$.alarmRule.simpleRule.inputProperty", self.rule.input_property),
            ("$.alarmRule.simpleRule.threshold", self.rule.threshold),
        ]
        for action in self.actions:
            out += [(f"{action.path}.{name}", node) for name, node in action.expressions.items()]
            if action.payload is not None:
                out.append((f"{action.path}.payload.contentExpression", action.payload.content))
        for i, notification in enumerate(self.notifications):
            if notification.payload is not None:
                out.append(
                    (
                        f"$.alarmNotification.notificationActions[{i}].action.lambdaAction"
                        ".payload.contentExpression",
                        notification.payload.content,
                    )
                )
        return out

    def inputs_read(self) -> set[str]:
        """Inputs the rule and actions read; messages on other inputs never reach the alarm."""
        return {
            ref.input_name
            for _path, node in self.expressions()
            for ref in ex.references(node)
            if isinstance(ref, ex.InputRef)
        }

    def fingerprint(self) -> str:
        """Hash of what evaluation depends on; a changed definition is a new version."""
        body = {k: v for k, v in self.raw.items() if k not in ("tags", "alarmModelDescription")}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_alarm_path() -> Path:
    """The shipped companion of the ``equipment_anomaly`` detector model (``anomaly_score``)."""
    return Path(__file__).parents[1] / "models" / "anomaly_score_alarm.json"


def load_alarm_model(
    path_or_dict: str | os.PathLike[str] | Mapping[str, Any],
    *,
    strict: bool = True,
    source: str | None = None,
) -> AlarmModel:
    """Load a CreateAlarmModel body; input references are checked by :func:`check_alarm_references`."""
    body, name = _read(path_or_dict, source or "alarm model")
    ctx = _Ctx(source or name, strict, STRICT_LIMITS)
    body = ctx.obj(body, "$")
    refuse_wrappers(ctx, body, "alarm")
    ctx.unknown_fields(
        body,
        (
            "alarmModelName",
            "alarmModelDescription",
            "roleArn",
            "tags",
            "key",
            "severity",
            "alarmRule",
            "alarmNotification",
            "alarmEventActions",
            "alarmCapabilities",
        ),
        "$",
    )
    model_name, role_arn, key, key_path = _name_role_key(ctx, body, "alarmModelName")
    description = ctx.string(
        "" if body.get("alarmModelDescription") is None else body["alarmModelDescription"],
        "$.alarmModelDescription",
        min_len=0,
        max_len=1024,
    )
    severity = body.get("severity")
    if severity is not None and (
        not isinstance(severity, int)
        or isinstance(severity, bool)
        or not 0 <= severity <= SEVERITY_MAX
    ):
        raise ctx.error("$.severity", f"expected an integer 0-{SEVERITY_MAX}, got {severity!r}")
    rule = _rule(ctx, ctx.required(body, "alarmRule", "$"))
    notifications = _notifications(ctx, body.get("alarmNotification"))
    actions = _alarm_actions(ctx, body.get("alarmEventActions"))
    disabled, ack = _capabilities(ctx, body.get("alarmCapabilities"))
    interval, cap = _reminder_tags(ctx, body.get("tags"))
    return AlarmModel(
        name=model_name,
        rule=rule,
        key=key,
        key_path=key_path,
        severity=severity,
        notifications=notifications,
        actions=actions,
        disabled_on_initialization=disabled,
        acknowledge_flow=ack,
        role_arn=role_arn,
        description=description,
        reminder_interval_s=interval,
        reminder_cap=cap,
        source=ctx.source,
        raw=body,
    )


def check_alarm_references(model: AlarmModel, inputs: Sequence[InputDefinition]) -> list[str]:
    """Every ``$input`` reference against *inputs* (errors raise); return warnings.

    The rule's ``inputProperty`` must read an input: it is what the alarm watches.
    """
    warnings, reading = check_input_references(model.source, model.expressions(), inputs)
    if "$.alarmRule.simpleRule.inputProperty" not in reading:
        raise DetectorModelError(
            f"{model.source}: $.alarmRule.simpleRule.inputProperty: must read an input"
            " attribute ($input.<Input>.<path>)"
        )
    return warnings


def _rule(ctx: _Ctx, raw: Any) -> SimpleRule:
    path = "$.alarmRule"
    body = ctx.obj(raw, path)
    ctx.unknown_fields(body, ("simpleRule",), path)
    rule = ctx.obj(ctx.required(body, "simpleRule", path), f"{path}.simpleRule")
    path += ".simpleRule"
    ctx.unknown_fields(rule, ("inputProperty", "comparisonOperator", "threshold"), path)
    prop_text = ctx.string(
        ctx.required(rule, "inputProperty", path), f"{path}.inputProperty", max_len=RULE_CHARS
    )
    prop = ctx.expression(prop_text, f"{path}.inputProperty", max_len=RULE_CHARS)
    operator = ctx.required(rule, "comparisonOperator", path)
    if not isinstance(operator, str) or operator not in OPERATORS:
        raise ctx.error(
            f"{path}.comparisonOperator",
            f"{operator!r}: expected one of {', '.join(OPERATORS)}",
        )
    threshold_raw = ctx.required(rule, "threshold", path)
    threshold_text = ctx.string(threshold_raw, f"{path}.threshold", max_len=RULE_CHARS)
    threshold = _number_literal(
        ctx.expression(threshold_text, f"{path}.threshold", max_len=RULE_CHARS)
    )
    for side, node in (("inputProperty", prop), ("threshold", threshold)):
        for ref in ex.references(node):
            if isinstance(ref, ex.VariableRef):
                # the rule compares input attributes and numbers (API reference); an
                # alarm model has no variables, so this side would never have a value
                raise ctx.error(
                    f"{path}.{side}",
                    f"$variable.{ref.name}: an alarm model has no variables"
                    " (compare input attributes and numbers)",
                )
        if ex.static_type(node) == "boolean" and operator not in ("EQUAL", "NOT_EQUAL"):
            raise ctx.error(f"{path}.{side}", f"a Boolean cannot be compared with {operator}")
    return SimpleRule(prop, prop_text, operator, threshold, threshold_text)


def _number_literal(node: ex.Expr) -> ex.Expr:
    """The threshold is "a number or ... an input attribute" (SimpleRule), and AWS's own
    literal form of a number is quoted ("'123' # Integer, '123.12' # Decimal", expression
    usage): a quoted number is that number, as in the spec's other typed fields, so
    ``'80'`` is never compared as text (which no numeric reading would ever breach)."""
    if not isinstance(node, ex.Literal) or not isinstance(node.value, str):
        return node
    number = ex.decimal_text(node.value)
    if number is None:
        return node
    text = node.value.strip()
    return ex.Literal(int(text) if _INTEGER_TEXT.fullmatch(text) else number)


def _recipients(ctx: _Ctx, raw: Any, path: str) -> tuple[Recipient, ...]:
    items = ctx.array(raw, path)
    if not items:
        raise ctx.error(path, "at least one recipient is required")
    out = []
    for i, item in enumerate(items):
        rpath = f"{path}[{i}]"
        body = ctx.obj(item, rpath)
        ctx.unknown_fields(body, ("ssoIdentity",), rpath)
        sso = ctx.obj(ctx.required(body, "ssoIdentity", rpath), f"{rpath}.ssoIdentity")
        ctx.unknown_fields(sso, ("identityStoreId", "userId"), f"{rpath}.ssoIdentity")
        store = ctx.string(
            ctx.required(sso, "identityStoreId", f"{rpath}.ssoIdentity"),
            f"{rpath}.ssoIdentity.identityStoreId",
        )
        user = sso.get("userId")
        if user is not None:
            user = ctx.string(user, f"{rpath}.ssoIdentity.userId")
        out.append(Recipient(store, user))
    return tuple(out)


def _notifications(ctx: _Ctx, raw: Any) -> tuple[NotificationAction, ...]:
    if raw is None:
        return ()
    path = "$.alarmNotification"
    body = ctx.obj(raw, path)
    ctx.unknown_fields(body, ("notificationActions",), path)
    if body.get("notificationActions") is None:  # optional in AlarmNotification (API)
        return ()
    items = ctx.array(body["notificationActions"], f"{path}.notificationActions")
    if not items:
        raise ctx.error(f"{path}.notificationActions", "at least one notification action")
    out = []
    for i, item in enumerate(items):
        npath = f"{path}.notificationActions[{i}]"
        entry = ctx.obj(item, npath)
        ctx.unknown_fields(entry, ("action", "smsConfigurations", "emailConfigurations"), npath)
        action = ctx.obj(ctx.required(entry, "action", npath), f"{npath}.action")
        ctx.unknown_fields(action, ("lambdaAction",), f"{npath}.action")
        lam = ctx.obj(
            ctx.required(action, "lambdaAction", f"{npath}.action"), f"{npath}.action.lambdaAction"
        )
        exprs: dict[str, ex.Expr] = {}
        payload = _service_fields(ctx, "lambda", lam, f"{npath}.action.lambdaAction", exprs)
        emails = []
        raw_emails = _configurations(ctx, entry, "emailConfigurations", npath)
        for j, raw_email in enumerate(raw_emails):
            epath = f"{npath}.emailConfigurations[{j}]"
            email = ctx.obj(raw_email, epath)
            ctx.unknown_fields(email, ("from", "content", "recipients"), epath)
            sender = ctx.string(ctx.required(email, "from", epath), f"{epath}.from")
            raw_content = email.get("content")
            content = {} if raw_content is None else ctx.obj(raw_content, f"{epath}.content")
            ctx.unknown_fields(content, ("subject", "additionalMessage"), f"{epath}.content")
            recipients = ctx.obj(ctx.required(email, "recipients", epath), f"{epath}.recipients")
            ctx.unknown_fields(recipients, ("to",), f"{epath}.recipients")
            # EmailRecipients.to is optional (API): without it the email addresses nobody
            to = (
                ()
                if recipients.get("to") is None
                else _recipients(ctx, recipients["to"], f"{epath}.recipients.to")
            )
            emails.append(
                EmailConfiguration(
                    sender,
                    _opt_text(ctx, content, "subject", f"{epath}.content"),
                    _additional_message(ctx, content, f"{epath}.content"),
                    to,
                )
            )
        sms = []
        raw_texts = _configurations(ctx, entry, "smsConfigurations", npath)
        for j, raw_sms in enumerate(raw_texts):
            spath = f"{npath}.smsConfigurations[{j}]"
            config = ctx.obj(raw_sms, spath)
            ctx.unknown_fields(config, ("senderId", "additionalMessage", "recipients"), spath)
            sms.append(
                SmsConfiguration(
                    _opt_text(ctx, config, "senderId", spath),
                    _additional_message(ctx, config, spath),
                    _recipients(
                        ctx, ctx.required(config, "recipients", spath), f"{spath}.recipients"
                    ),
                )
            )
        out.append(NotificationAction(str(lam["functionArn"]), payload, tuple(emails), tuple(sms)))
    return tuple(out)


def _additional_message(ctx: _Ctx, parent: Mapping[str, Any], path: str) -> str | None:
    """An email's or SMS's ``additionalMessage``: one API type (NotificationAdditionalMessage)
    with one limit for both."""
    message = _opt_text(ctx, parent, "additionalMessage", path)
    if message is not None and len(message) > ADDITIONAL_MESSAGE_MAX:
        raise ctx.error(
            f"{path}.additionalMessage",
            f"{len(message)} characters; at most {ADDITIONAL_MESSAGE_MAX} allowed",
        )
    return message


def _configurations(ctx: _Ctx, entry: Mapping[str, Any], name: str, path: str) -> list[Any]:
    """An entry's email or SMS configurations: absent, or a list of at least one (API)."""
    if entry.get(name) is None:
        return []
    items = ctx.array(entry[name], f"{path}.{name}")
    if not items:
        raise ctx.error(f"{path}.{name}", "at least one configuration is required when present")
    return items


def _opt_text(ctx: _Ctx, body: Mapping[str, Any], name: str, path: str) -> str | None:
    if body.get(name) is None:
        return None
    return ctx.string(body[name], f"{path}.{name}")


def _alarm_actions(ctx: _Ctx, raw: Any) -> tuple[Action, ...]:
    if raw is None:
        return ()
    path = "$.alarmEventActions"
    body = ctx.obj(raw, path)
    ctx.unknown_fields(body, ("alarmActions",), path)
    raw_items = body.get("alarmActions")
    items = [] if raw_items is None else ctx.array(raw_items, f"{path}.alarmActions")
    actions = []
    for i, item in enumerate(items):
        apath = f"{path}.alarmActions[{i}]"
        if isinstance(item, dict) and len(item) == 1 and next(iter(item)) not in SERVICE_ACTIONS:
            raise ctx.error(
                f"{apath}.{next(iter(item))}",
                f"unknown alarm action (expected one of: {', '.join(SERVICE_ACTIONS)})",
            )
        actions.append(_action(ctx, item, apath))
    return tuple(actions)


def _capabilities(ctx: _Ctx, raw: Any) -> tuple[bool, bool]:
    """(disabledOnInitialization, acknowledgeFlow.enabled); both default to true (§7)."""
    if raw is None:
        return True, True
    path = "$.alarmCapabilities"
    body = ctx.obj(raw, path)
    ctx.unknown_fields(body, ("initializationConfiguration", "acknowledgeFlow"), path)
    disabled, ack = True, True
    if body.get("initializationConfiguration") is not None:
        ipath = f"{path}.initializationConfiguration"
        init = ctx.obj(body["initializationConfiguration"], ipath)
        ctx.unknown_fields(init, ("disabledOnInitialization",), ipath)
        disabled = _boolean(ctx, ctx.required(init, "disabledOnInitialization", ipath), ipath)
    if body.get("acknowledgeFlow") is not None:
        fpath = f"{path}.acknowledgeFlow"
        flow = ctx.obj(body["acknowledgeFlow"], fpath)
        ctx.unknown_fields(flow, ("enabled",), fpath)
        ack = _boolean(ctx, ctx.required(flow, "enabled", fpath), fpath)
    return disabled, ack


def _boolean(ctx: _Ctx, value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ctx.error(path, f"expected true or false, got {value!r}")
    return value


def _reminder_tags(ctx: _Ctx, raw: Any) -> tuple[float | None, int]:
    interval: float | None = None
    cap = DEFAULT_REMINDER_CAP
    for i, (key, value) in enumerate(check_tags(ctx, raw)):
        tpath = f"$.tags[{i}]"
        if key == REMINDER_INTERVAL_TAG:
            try:
                interval = parse_duration(value)
            except ValueError as exc:
                raise ctx.error(f"{tpath}.value", str(exc)) from None
            if interval <= 0:
                raise ctx.error(f"{tpath}.value", "a reminder interval must be positive")
        elif key == REMINDER_CAP_TAG:
            # ASCII digits only: str.isdigit() also takes '²', which int() refuses
            if not (value.isascii() and value.isdigit()):
                raise ctx.error(f"{tpath}.value", f"expected a whole number, got {value!r}")
            cap = int(value)
    return interval, cap
