"""One-state detector models for engine tests: the shape CreateDetectorModel takes, with only
the events a test is about, so each test file shows its events and not the scaffolding."""

from __future__ import annotations

from typing import Any

ROLE_ARN = "arn:aws:iam::123456789012:role/r"


def event(
    *actions: dict[str, Any], condition: str = 'currentInput("In")', name: str = "e"
) -> dict[str, Any]:
    return {"eventName": name, "condition": condition, "actions": list(actions)}


def one_state_model(*events: dict[str, Any], name: str = "m", key: str = "id") -> dict[str, Any]:
    return {
        "detectorModelName": name,
        "roleArn": ROLE_ARN,
        "key": key,
        "detectorModelDefinition": {
            "initialStateName": "A",
            "states": [{"stateName": "A", "onInput": {"events": list(events)}}],
        },
    }
