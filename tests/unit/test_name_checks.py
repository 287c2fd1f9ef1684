"""Every name check matches the whole name: a trailing newline is not a valid name.

``re.match`` with a ``$``-anchored pattern accepts ``"x\\n"`` (``$`` also matches before a
final newline). Such a name corrupted window CSVs and wrote input files the scheduler never
lists, so each check uses ``fullmatch``; the source scan keeps it that way.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud.adapters.local import InMemoryObjectStore, InMemoryStateStore
from cloud.detectors.messages import batch_put_message
from cloud.feeder import ResultsFeeder
from cloud.inference.registry import ModelRegistry
from cloud.inference.scheduler import SchedulerConfig
from cloud.l4e.naming import InputNaming
from cloud.shadow.commands import parse_value
from cloud.shadow.document import ShadowError, validate_names
from edge import wire
from edge.errors import PlantwatchError, UserError, WireFormatError

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("edge", "cloud", "simulator") for p in sorted((ROOT / d).rglob("*.py"))]


def _anchored_patterns() -> set[str]:
    """Names bound to ``re.compile("...$")`` anywhere in the source."""
    names: set[str] = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Assign | ast.AnnAssign):
                continue
            call = node.value
            if not isinstance(call, ast.Call):
                continue
            if (
                isinstance(call.func, ast.Attribute)
                and call.func.attr == "compile"
                and call.args
                and isinstance(call.args[0], ast.Constant)
                and str(call.args[0].value).endswith("$")
            ):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def test_no_dollar_anchored_pattern_is_used_with_match() -> None:
    anchored = _anchored_patterns()
    assert {"NAME_RE", "SENSOR_RE", "COMPONENT_RE", "THING_NAME_RE", "MESSAGE_ID_RE"} <= anchored
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "match"
            ):
                continue
            target = node.func.value
            literal = (
                isinstance(target, ast.Name)
                and target.id == "re"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).endswith("$")
            )
            if literal or (isinstance(target, ast.Name) and target.id in anchored):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def _telemetry(site: str = "s1", asset: str = "pump", sensor: str = "flow") -> dict:
    return {
        "v": 1,
        "site": site,
        "asset": asset,
        "sender": "dev",
        "seq": 0,
        "samples": [{"ts": 1_700_000_000_000, "values": {sensor: 1.0}}],
    }


CHECKS: list[tuple[str, Callable[[], object]]] = [
    ("wire site", lambda: wire.from_document(_telemetry(site="s1\n"))),
    ("wire asset", lambda: wire.from_document(_telemetry(asset="nl\n"))),
    ("wire sensor", lambda: wire.from_document(_telemetry(sensor="a\n"))),
    ("telemetry topic", lambda: wire.telemetry_topic("s1", "pump\n")),
    ("parse topic", lambda: wire.parse_telemetry_topic("dt/plantwatch/s1/pump\n/telemetry")),
    (
        "l4e component",
        lambda: InputNaming().format("nl\n", datetime(2026, 1, 1, tzinfo=UTC)),
    ),
    ("tz offset", lambda: InputNaming(tz_offset="+05:30\n")),
    ("scheduler name", lambda: SchedulerConfig(name="sched\n", model_name="m")),
    ("model name", lambda: ModelRegistry(InMemoryObjectStore()).save("m\n", None)),  # type: ignore[arg-type]
    ("shadow sensor list", lambda: parse_value("sensors.enabled", ["a\n"])),
    ("setpoint name", lambda: parse_value("setpoints.t\n", 1)),
    (
        "detector message id",
        lambda: batch_put_message(
            [], {"messages": [{"messageId": "m\n", "inputName": "In", "payload": "{}"}]}
        ),
    ),
]


@pytest.mark.parametrize(("what", "check"), CHECKS, ids=[c[0] for c in CHECKS])
def test_a_trailing_newline_is_refused(what: str, check: Callable[[], object]) -> None:
    with pytest.raises((PlantwatchError, ValueError)):
        check()


def test_shadow_names_with_a_trailing_newline_are_invalid() -> None:
    with pytest.raises(ShadowError, match="Invalid thing name"):
        validate_names("pump\n", None)
    with pytest.raises(ShadowError, match="Invalid shadow name"):
        validate_names("pump", "cfg\n")


def test_an_input_file_named_with_a_newline_is_not_an_input_file() -> None:
    naming = InputNaming()
    assert naming.parse("input/nl\n_20260101000500.csv", "input/") is None
    assert naming.parse("input/nl_20260101000500.csv", "input/") == (
        "nl",
        datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
    )


def test_feeder_quarantines_a_results_key_whose_component_ends_in_a_newline() -> None:
    store, state = InMemoryObjectStore(), InMemoryStateStore()
    store.put("output/pump\n/2026-01-01T00:00:00Z/results.jsonl", b"")
    fed: list[dict] = []

    class Target:
        def put_message(self, _name: str, payload: dict, message_id: str | None = None) -> None:
            fed.append(payload)

    feeder = ResultsFeeder(store, "output/", Target(), state)
    assert feeder.poll() == 0
    [(key, reason)] = feeder.quarantined()
    assert key.startswith("output/pump\n/") and "not a valid detector key" in reason


def test_wire_errors_name_the_field() -> None:
    with pytest.raises(WireFormatError, match="asset") as caught:
        wire.from_document(_telemetry(asset="nl\n"))
    assert caught.value.reason == "bad_schema"
    with pytest.raises(UserError, match="sensor name"):
        wire.from_document(_telemetry(sensor="a\n"))
