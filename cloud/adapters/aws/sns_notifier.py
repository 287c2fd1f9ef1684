"""The Notifier port on one SNS topic: email and SMS subscriptions pick their messages with
filter policies on the ``channel`` message attribute.

Each alert is two publishes (the detector's action sink sends one Notification per
channel): the email one with a Subject and the full body, the SMS one with the SMS-typed
attributes (``AWS.SNS.SMS.SMSType`` and, if set, ``AWS.SNS.SMS.SenderID``) and a body of
at most 160 GSM-7 characters. The notifier re-applies both limits, so a caller that
formats its own text cannot produce a message SNS would split or reject. An email body past
what one publish holds (256 KiB with the attributes) is cut to fit, with a last line saying
so: SNS refuses it whole with ``InvalidParameter``, and the outbox would retry it in vain.
What SNS refuses every time for the request itself (a parameter it never takes) is raised
as ``RefusedError`` (:mod:`cloud.adapters.aws.errors`), so the outbox keeps it as a dead
letter at once; throttling, server errors and errors about the deployment (a topic that
does not exist, no permission: an operator can fix them) stay retried.

Routing attributes on every publish: ``channel``, ``severity``, ``site``, ``asset`` (plus
``kind`` and ``alert_id`` for tracing). All are String attributes, fewer than SQS raw
delivery's limit of 10, each cut to 256 bytes so the alert keeps the room in the publish.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from cloud.adapters.aws.errors import SNS_REFUSALS, classified
from cloud.alerts import SEVERITY, SMS_ATTRIBUTES, ascii_subject, fit_sms, valid_sender_id
from cloud.ports import Notification

if TYPE_CHECKING:
    SNSClient = Any

ROUTING = ("severity", "site", "asset", "kind", "alert_id")
SMS_PREFIX = "AWS.SNS.SMS."
SENDER_ID = "AWS.SNS.SMS.SenderID"
log = logging.getLogger(__name__)
ATTRIBUTE_MAX_BYTES = 256
"""Longest routing attribute value (UTF-8 bytes): a name a filter policy matches is far
shorter, and the attributes count against the publish, so an asset name from device data
must not crowd out the alert or make SNS refuse it."""
MAX_PUBLISH_BYTES = 262_144
"""What one publish holds by default: the message and its attributes as UTF-8 bytes (SNS
Publish, Message constraints; a topic's ``MaximumMessageSize`` defaults to 256 KiB). Over
it SNS answers ``InvalidParameter``, every time."""


class SnsNotifier:
    """Publishes to *topic_arn* whatever the notification's target says: on AWS the
    deployment's topic is the one place alerts go, and subscriptions decide who gets what."""

    def __init__(
        self, topic_arn: str, client: SNSClient | None = None, *, site: str = "unknown"
    ) -> None:
        """*site* stands in when a notification's attributes name none."""
        self.topic_arn = topic_arn
        self.site = site
        self._sns = client if client is not None else boto3.client("sns")

    def send(self, notification: Notification) -> None:
        notification = utf8_notification(notification)
        attributes = message_attributes(notification, self.site)
        arguments: dict[str, Any] = {
            "TopicArn": self.topic_arn,
            "MessageAttributes": {
                name: {"DataType": "String", "StringValue": value}
                for name, value in attributes.items()
            },
        }
        subject = ascii_subject(notification.subject)  # never empty
        if notification.channel == "sms":
            text = fit_sms(notification.body)
            # nothing readable (spaces, controls): a blank text would reach the phone
            arguments["Message"] = text if text.strip() else fit_sms(subject)
        else:
            text = notification.body or notification.subject or subject
            arguments["Message"] = fit_publish(text, MAX_PUBLISH_BYTES - _size(attributes))
            arguments["Subject"] = subject
        try:
            self._sns.publish(**arguments)
        except (ClientError, BotoCoreError) as exc:
            what = f"sns {self.topic_arn}: {notification.channel} publish"
            raise classified(exc, SNS_REFUSALS, what) from exc


LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A Python string holds a surrogate only unpaired (json.loads joins a valid pair)."""


def utf8(text: str) -> str:
    """*text* with each lone surrogate (from a ``\\ud800`` JSON escape) as U+FFFD: botocore
    cannot encode one, so the publish would fail the same way on every attempt."""
    return LONE_SURROGATE.sub("\ufffd", text)


def utf8_notification(notification: Notification) -> Notification:
    return dataclasses.replace(
        notification,
        subject=utf8(notification.subject),
        body=utf8(notification.body),
        attributes={utf8(k): utf8(str(v)) for k, v in notification.attributes.items()},
    )


def _size(attributes: Mapping[str, str]) -> int:
    """Bytes the attributes count against a publish: name, data type and value of each."""
    return sum(len(k.encode()) + len(b"String") + len(v.encode()) for k, v in attributes.items())


def fit_publish(text: str, limit: int) -> str:
    """*text* if it fits in *limit* UTF-8 bytes, else cut at a character boundary with a
    last line saying how much was cut (an email reader sees that it is not whole)."""
    data = text.encode()
    if len(data) <= limit:
        return text
    note = "\n[{:,} bytes of the alert were cut: SNS takes 256 KiB]"
    keep = limit - len(note.format(len(data)).encode())
    head = data[:keep].decode(errors="ignore")
    return head + note.format(len(data) - len(head.encode()))


def cut_utf8(text: str, limit: int) -> str:
    """*text*, or its start cut at a character to at most *limit* UTF-8 bytes."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore")


def message_attributes(notification: Notification, site: str) -> dict[str, str]:
    """The attributes one publish carries; empty values are left out (SNS rejects them)."""
    given: Mapping[str, str] = notification.attributes
    kind = given.get("kind", "")
    attributes = {
        "channel": notification.channel,
        "severity": given.get("severity") or SEVERITY.get(kind, "info"),
        "site": given.get("site") or site,
    }
    for name in ROUTING:
        if name not in attributes and given.get(name):
            attributes[name] = str(given[name])
    attributes = {name: cut_utf8(value, ATTRIBUTE_MAX_BYTES) for name, value in attributes.items()}
    if notification.channel == "sms":
        attributes.update(SMS_ATTRIBUTES)
        attributes.update({k: str(v) for k, v in given.items() if k.startswith(SMS_PREFIX)})
        sender = attributes.get(SENDER_ID)
        if sender is not None and not valid_sender_id(sender):
            # SNS refuses the whole publish over it; the SMS matters, the name does not
            log.warning("SMS sender ID %r left out: SNS takes 3-11 letters, digits or '-'", sender)
            del attributes[SENDER_ID]
    return {name: value for name, value in attributes.items() if value}
