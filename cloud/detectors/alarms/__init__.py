"""AWS IoT Events-compatible alarm models: load, validate, run, and act on them."""

from cloud.detectors.alarms.engine import (
    CLAIM_S,
    AlarmEngine,
    AlarmStateError,
    RecipientDirectory,
    StaticDirectory,
)
from cloud.detectors.alarms.limits import NotificationLimiter
from cloud.detectors.alarms.model import AlarmModel, check_alarm_references, load_alarm_model

__all__ = [
    "CLAIM_S",
    "AlarmEngine",
    "AlarmModel",
    "AlarmStateError",
    "NotificationLimiter",
    "RecipientDirectory",
    "StaticDirectory",
    "check_alarm_references",
    "load_alarm_model",
]
