"""An ``sns`` action goes out whatever its custom payload holds.

On AWS an ``sns`` action publishes its payload, any JSON or text (§4, Payload), to the
topic. Locally the payload becomes an email and an SMS; a payload that only looks like the
default one (a ``payload`` object whose ``detector`` or ``state`` is text) or like an
alarm's (``alarmState`` that is not an object) must still make an alert, not an error the
outbox retries for hours and then keeps as a dead letter.
"""

from __future__ import annotations

from typing import Any

import pytest
from detector_models import action_request
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryNotifier
from cloud.detectors.actions import LocalActionSink

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
SHAPED_KEYS = st.sampled_from(
    [
        "payload",
        "detector",
        "state",
        "variables",
        "eventName",
        "eventTime",
        "alarmModelName",
        "alarmState",
        "ruleEvaluation",
        "customerAction",
        "notice",
        "asset",
        "top_sensors",
    ]
)
LOOKALIKE = st.recursive(
    JSON_VALUES,
    lambda inner: st.dictionaries(SHAPED_KEYS, inner, max_size=4),
    max_leaves=12,
)


def sent(payload: Any, payload_type: str = "JSON") -> list[str]:
    notifier = InMemoryNotifier()
    LocalActionSink(notifier, None).execute(
        action_request(payload=payload, payload_type=payload_type)
    )
    return [n.channel for n in notifier.sent]


@pytest.mark.parametrize(
    "payload",
    [
        {"payload": {"detector": "pump-01", "state": "Alarm"}},
        {"payload": {"state": {"stateName": "Alarm", "variables": [1, 2]}}},
        {"payload": {"detector": 5}},
        {"alarmModelName": "boiler", "alarmState": "ACTIVE"},
        {"alarmModelName": "boiler", "alarmState": {"ruleEvaluation": "high"}},
        {"alarmModelName": "boiler", "alarmState": {"customerAction": ["ack"]}, "notice": 1},
    ],
)
def test_a_payload_that_only_looks_like_a_known_one_is_sent(payload: dict[str, Any]) -> None:
    assert sent(payload) == ["email", "sms"]


@settings(max_examples=300, deadline=None)
@given(LOOKALIKE)
def test_any_json_payload_is_sent(payload: Any) -> None:
    assert sent(payload) == ["email", "sms"]


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_string_payload_is_sent(payload: str) -> None:
    assert sent(payload, "STRING") == ["email", "sms"]
