"""The local ActionSink: alerts through the Notifier, topic publishes through the Publisher.

``sns`` becomes an email and an SMS (``cloud.alerts``), deduplicated per (model, key, event,
state entry) and channel: a channel counts as sent only once the notifier returned, so a
retried action (:mod:`cloud.detectors.outbox`) sends what failed and nothing twice. Alerts
pass the per-asset budget when a limiter is given, and an alarm model watching the asset
(``ack_alarm``) puts its acknowledge command in the text. An alarm's notification (an
``sns`` request whose payload is an alarm's, see :mod:`cloud.detectors.alarms.engine`) is
written with the alarm's own texts, on the channel and to the recipients it names.
``iotTopicPublish`` goes to the Publisher; ``iotEvents`` re-enters the bound engine (or the
bound router, which passes it to every model reading the input) as a message. A ``lambda`` action whose function ARN has a registered callable (``lambdas``,
from ``plantwatch import iotevents --lambda ARN=module:function``) calls it with the
action's payload as the event, as Lambda would. Other Lambda, SQS, Firehose, DynamoDB and
SiteWise actions exist only on AWS: locally they are appended to an outbox (a JSON-lines
file, and the ``outbox`` list of the latest ones) and logged with their target and payload,
never silently dropped; each record says what the service would have received.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud import alerts
from cloud.detectors.alarms.limits import NotificationLimiter
from cloud.detectors.engine import ActionRequest
from cloud.detectors.messages import reject_constant
from cloud.detectors.outbox import refusal
from cloud.detectors.service_requests import ServiceRequestError, service_request
from cloud.ports import Notification, Notifier, Publisher, StateStore
from edge.files import private_file

if TYPE_CHECKING:
    from cloud.detectors.router import MessageEngine

log = logging.getLogger(__name__)

DEDUP_NAMESPACE = "alerts/sent"
AWS_ONLY_KINDS = ("lambda", "sqs", "firehose", "dynamoDB", "dynamoDBv2", "iotSiteWise")
"""Actions recorded with what AWS would have received (``aws``), or why it would refuse
them (``aws_refused``): see :mod:`cloud.detectors.service_requests`."""
MAX_KEPT_IN_MEMORY = 1000
"""Recorded actions a sink keeps in ``outbox``: a stack running for weeks records one per
message for a model with an sqs or firehose action, and the log line holds each in full."""


class LocalActionSink:
    """Implements ``ActionSink`` for ``plantwatch up`` and the demo."""

    def __init__(
        self,
        notifier: Notifier,
        publisher: Publisher | None,
        *,
        email_target: str = "ops@example.com",
        sms_target: str = "+15555550100",
        sender_id: str | None = None,
        state: StateStore | None = None,
        outbox: str | os.PathLike[str] | None = None,
        lambdas: Mapping[str, Callable[[Any], Any]] | None = None,
        limiter: NotificationLimiter | None = None,
        ack_alarm: str | None = None,
    ) -> None:
        self._notifier = notifier
        self._lambdas = dict(lambdas or {})
        self._publisher = publisher
        self.email_target = email_target
        self.sms_target = sms_target
        self._sender_id = sender_id
        self._state = state
        self._outbox_path = Path(outbox) if outbox is not None else None
        self._limiter = limiter
        self.ack_alarm = ack_alarm
        """Name of the alarm model that watches the same assets (its ack command goes in alerts)."""
        self.outbox: list[dict[str, Any]] = []
        """The latest recorded actions (at most MAX_KEPT_IN_MEMORY); the file and the log
        have them all."""
        self.recorded = 0
        """Actions recorded since this sink was made."""
        self._sent: dict[str, set[str]] = {}
        """Alert identity -> channels already sent."""
        self._lock = threading.Lock()
        self._engine: MessageEngine | None = None
        if sender_id is not None and not alerts.valid_sender_id(sender_id):
            raise ValueError(
                f"sender_id {sender_id!r}: 3-11 letters, digits or '-', at least one letter"
            )

    def bind(self, engine: MessageEngine) -> None:
        """Called by the engine so ``iotEvents`` actions can feed it; a runtime with several
        models binds their router instead (after building the engines)."""
        self._engine = engine

    def execute(self, request: ActionRequest) -> None:
        if request.kind == "sns":
            self._sns(request)
        elif request.kind == "iotTopicPublish":
            self._publish(request)
        elif request.kind == "iotEvents":
            self._iot_events(request)
        elif request.kind == "lambda" and str(request.target.get("functionArn")) in self._lambdas:
            self._lambdas[str(request.target["functionArn"])](lambda_event(request))
        else:
            self._record(request, "AWS-only action; recorded locally")

    def _sns(self, request: ActionRequest) -> None:
        identity = alerts.alert_identity(
            request.detector_model,
            request.key_value,
            request.event_name,
            request.state_name,
            request.state_entry,
            request.detector_version,
        )
        payload = request.payload
        if isinstance(payload, Mapping) and "alarmModelName" in payload and "alarmState" in payload:
            self._alarm_sns(request, identity, payload)
            return
        with self._lock:
            done = self._channels_sent(identity)
        if {"email", "sms"} <= done:
            log.info("alert %s already sent; not sent again", identity)
            return
        content = alerts.content_from_payload(
            payload if isinstance(payload, Mapping | str) else json.dumps(payload),
            event_time_ms=request.event_time_ms,
        )
        if not done and not self._within_limit(content.asset, request, identity):
            return
        if self.ack_alarm and content.kind == "ALARM":
            content = dataclasses.replace(
                content, ack=alerts.ack_command(self.ack_alarm, content.asset)
            )
        subject, body = alerts.build_email(content)
        sms = alerts.build_sms(content)
        attrs: dict[str, str] = dict(alerts.SMS_ATTRIBUTES)
        if self._sender_id:
            attrs["AWS.SNS.SMS.SenderID"] = self._sender_id
        meta = {
            "topic_arn": str(request.target.get("targetArn", "")),
            "asset": content.asset,
            "kind": content.kind,
            "severity": alerts.SEVERITY[content.kind],
            "alert_id": identity,
        }
        self._send_once(
            identity,
            request,
            done,
            [
                Notification("email", self.email_target, subject, body, attributes=meta),
                Notification("sms", self.sms_target, subject, sms, attributes={**attrs, **meta}),
            ],
        )

    def _alarm_sns(self, request: ActionRequest, identity: str, payload: Mapping[str, Any]) -> None:
        """An alarm's notification, or an ``sns`` alarm action: the alarm's own texts.

        A notification names its channel and recipients in the target (``channel``, ``to``,
        ``subject``, ``additionalMessage``, ``senderId``); an alarm action's ``sns`` sends
        both channels to this sink's targets.
        """
        notice = alerts.alarm_notice_from_payload(payload)
        target = request.target
        if target.get("additionalMessage"):
            notice = dataclasses.replace(notice, additional=str(target["additionalMessage"]))
        channels = [str(target["channel"])] if target.get("channel") else ["email", "sms"]
        asset = notice.key or notice.model
        with self._lock:
            done = self._channels_sent(identity)
        if set(channels) <= done:
            log.info("alert %s already sent; not sent again", identity)
            return
        # A notification (it names its channel) was counted against the budget by its alarm
        # engine when the state changed; an sns alarm action is counted here.
        if (
            not done
            and not target.get("channel")
            and not self._within_limit(asset, request, identity)
        ):
            return
        subject, body = alerts.build_alarm_email(notice)
        meta = {
            "asset": asset,
            "kind": f"ALARM_{notice.kind}",
            "severity": alerts.alarm_severity(notice.kind),
            "alarm_model": notice.model,
            "state": notice.state,
            "alert_id": identity,
        }
        if target.get("targetArn"):
            meta["topic_arn"] = str(target["targetArn"])
        notifications: list[Notification] = []
        if "email" in channels:
            emails = [str(a) for a in target.get("to") or [self.email_target]]
            email_subject = str(target.get("subject") or subject)
            notifications += [Notification("email", a, email_subject, body, meta) for a in emails]
        if "sms" in channels:
            attrs = {**alerts.SMS_ATTRIBUTES, **meta}
            sender = target.get("senderId") or self._sender_id
            if sender:
                attrs["AWS.SNS.SMS.SenderID"] = str(sender)
            sms = alerts.build_alarm_sms(notice)
            phones = [str(p) for p in target.get("to") or [self.sms_target]]
            notifications += [Notification("sms", p, subject, sms, attrs) for p in phones]
        self._send_once(identity, request, done, notifications)

    def _within_limit(self, asset: str, request: ActionRequest, identity: str) -> bool:
        """Spend one of *asset*'s alert budget; an alert over it is counted and not sent."""
        if self._limiter is None or self._limiter.allow(asset, request.event_time_ms / 1000):
            return True
        # Counted by the limiter and listed by `plantwatch alarms list`; a flapping signal
        # would otherwise fill the log as well as the phone.
        log.info("alert %s suppressed: over the per-asset notification limit", identity)
        with self._lock:
            self._sent[identity] = {"email", "sms"}
            if self._state is not None:
                self._state.put(
                    DEDUP_NAMESPACE,
                    identity,
                    {"event_time_ms": request.event_time_ms, "suppressed": True},
                )
        return False

    def _send_once(
        self,
        identity: str,
        request: ActionRequest,
        done: set[str],
        notifications: list[Notification],
    ) -> None:
        """Send each channel not sent yet, recording it once the notifier returned.

        A channel that fails does not keep the next from the operator: each is tried, and
        then a failure is raised for the outbox, which retries only the channels not done.
        One a later attempt may deliver is raised before a refusal, so the alert is retried
        rather than set aside while any channel can still go out."""
        failures: list[Exception] = []
        for channel in ("email", "sms"):
            batch = [n for n in notifications if n.channel == channel]
            if not batch or channel in done:
                continue
            try:
                for notification in batch:
                    self._notifier.send(notification)
            except Exception as exc:
                failures.append(exc)
                continue
            done.add(channel)
            with self._lock:
                self._sent[identity] = set(done)
                if self._state is not None:
                    self._state.put(
                        DEDUP_NAMESPACE,
                        identity,
                        {"event_time_ms": request.event_time_ms, "channels": sorted(done)},
                    )
        if failures:
            passing = [exc for exc in failures if refusal(exc) is None]
            raise (passing or failures)[0]

    def _channels_sent(self, identity: str) -> set[str]:
        if identity in self._sent:
            return set(self._sent[identity])
        doc = self._state.get(DEDUP_NAMESPACE, identity) if self._state is not None else None
        if doc is None:
            return set()
        if doc.get("suppressed"):
            return {"email", "sms"}
        return set(doc.get("channels", ("email", "sms")))  # older records: both were sent

    def _publish(self, request: ActionRequest) -> None:
        topic = str(request.target["mqttTopic"])
        body = (
            request.payload.encode()
            if isinstance(request.payload, str)
            else json.dumps(request.payload, separators=(",", ":")).encode()
        )
        if self._publisher is None:
            self._record(request, "no publisher configured")
            return
        self._publisher.publish(topic, body, qos=1)

    def _iot_events(self, request: ActionRequest) -> None:
        if self._engine is None:
            self._record(request, "no engine bound")
            return
        payload = request.payload
        if isinstance(payload, str):
            # a STRING payload goes back in as a message would: NaN and Infinity are not JSON
            payload = json.loads(payload, parse_constant=reject_constant)
        if not isinstance(payload, Mapping):
            raise ValueError("iotEvents payload must be a JSON object")
        input_name = str(request.target["inputName"])
        if input_name not in self._engine.inputs:
            self._record(request, f"input {input_name!r} is not served by this engine")
            return
        self._engine.put_message(input_name, dict(payload))

    def _record(self, request: ActionRequest, note: str) -> None:
        entry = {
            "kind": request.kind,
            "note": note,
            "detector_model": request.detector_model,
            "key_value": request.key_value,
            "event_name": request.event_name,
            "state_name": request.state_name,
            "event_time_ms": request.event_time_ms,
            "target": dict(request.target),
            "payload": request.payload,
        }
        if request.kind in AWS_ONLY_KINDS:
            try:
                entry["aws"] = service_request(request)
            except ServiceRequestError as exc:
                entry["aws_refused"] = str(exc)
        # the whole record, on one line: without an outbox file (the Lambdas, `plantwatch
        # up`) the log is where what the action would have sent is kept
        log.warning(
            "%s/%s %s: %s action %s: %s",
            request.detector_model,
            request.key_value,
            request.event_name,
            request.kind,
            note,
            json.dumps(entry, default=str),
        )
        with self._lock:
            self.outbox.append(entry)
            self.recorded += 1
            if len(self.outbox) > MAX_KEPT_IN_MEMORY:
                del self.outbox[: len(self.outbox) - MAX_KEPT_IN_MEMORY]
            if self._outbox_path is not None:
                private_file(self._outbox_path)
                with open(self._outbox_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry, default=str) + "\n")


def lambda_event(request: ActionRequest) -> Any:
    """The event a function gets from a ``lambda`` action: Lambda takes the payload as JSON
    and hands the handler its value, so a STRING payload is parsed (and refused when it is
    not JSON, as Lambda refuses it)."""
    if request.payload_type != "STRING" or not isinstance(request.payload, str):
        return request.payload
    try:
        return json.loads(request.payload, parse_constant=reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ValueError(
            f"lambda {request.target.get('functionArn')}: the STRING payload is not JSON"
            f" ({exc}), and Lambda takes only JSON as an event; not invoked"
        ) from None


def load_callable(spec: str) -> Callable[[Any], Any]:
    """``package.module:function`` -> the function that stands in for a Lambda locally."""
    from edge.errors import ConfigError

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"callable {spec!r}: expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"callable {spec!r}: cannot import {module_name} ({exc})") from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise ConfigError(f"callable {spec!r}: {attr} is not a function of {module_name}")
    return function
