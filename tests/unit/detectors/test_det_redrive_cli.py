"""``plantwatch alarms dead-letters`` and ``alarms redrive`` on a local data directory."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from detector_models import EventSink, action_request

from cloud.adapters.local import SqliteStateStore
from cloud.cli.main import main
from cloud.detectors.engine import ActionRequest
from cloud.detectors.outbox import DEAD_LETTER_NAMESPACE, OUTBOX_NAMESPACE, DeliveryOutbox
from edge.clock import ManualClock, SystemClock
from edge.errors import RefusedError

TOPIC = "arn:aws:sns:us-east-1:123456789012:alerts"
LONG_ERROR = "x" * 500


def request(kind: str, target: dict[str, Any], event: str, ms: int) -> ActionRequest:
    return action_request(
        kind=kind, target=target, event_name=event, event_time_ms=ms, detector_model="pump-model"
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory with two dead letters: an alert whose topic was gone, and a shadow
    command whose publish was refused with a long message."""
    folder = tmp_path / "data"
    folder.mkdir()
    state = SqliteStateStore(folder / "state.db")
    clock = ManualClock(SystemClock().now() - 3600)
    gone = RefusedError(f"sns {TOPIC}: NotFound", reason="NotFound")
    DeliveryOutbox(EventSink(gone), state, clock).execute(
        request("sns", {"targetArn": TOPIC}, "alarm raised", 1_767_225_600_000)
    )
    refused = RefusedError(f"publish refused: {LONG_ERROR}", reason="Forbidden")
    DeliveryOutbox(EventSink(refused), state, clock).execute(
        request("iotTopicPublish", {"mqttTopic": "cmd/pump-01/safe"}, "go safe", 1_767_225_601_000)
    )
    state.close()
    return folder


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def stored(data: Path, namespace: str) -> list[tuple[str, dict[str, Any]]]:
    state = SqliteStateStore(data / "state.db", readonly=True)
    try:
        return list(state.items(namespace))
    finally:
        state.close()


def test_dead_letters_lists_each_with_its_action_reason_and_error(data: Path) -> None:
    code, out, err = cli("alarms", "dead-letters", "--data", str(data), "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["kind"], r["target"], r["event"], r["attempts"]) for r in rows] == [
        ("sns", TOPIC, "pump-model/pump-01 alarm raised", 1),
        ("iotTopicPublish", "cmd/pump-01/safe", "pump-model/pump-01 go safe", 1),
    ]
    assert [k for k, _ in stored(data, DEAD_LETTER_NAMESPACE)] == [r["key"] for r in rows]
    assert rows[0]["dead_reason"] == "refused (NotFound): retrying cannot help"
    assert rows[1]["last_error"].endswith(LONG_ERROR)  # whole in JSON
    assert rows[0]["redrives"] == 0 and rows[0]["when"]

    code, out, _err = cli("alarms", "dead-letters", "--data", str(data))
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split()[:3] == ["key", "kind", "target"]
    assert len(lines) == 2 and rows[1]["key"] in lines[1]
    assert LONG_ERROR not in out and "xxx…" in lines[1]  # clipped in the table


def test_no_dead_letters_is_one_line(tmp_path: Path) -> None:
    SqliteStateStore(tmp_path / "state.db").close()
    code, out, _err = cli("alarms", "dead-letters", "--data", str(tmp_path))
    assert (code, out) == (0, "no dead letters\n")
    code, out, _err = cli("alarms", "redrive", "--all", "--data", str(tmp_path))
    assert (code, out) == (0, "no dead letters\n")


def test_redrive_puts_one_back_due_now_and_the_next_retry_sends_it(data: Path) -> None:
    [(alert, _), (command, _)] = stored(data, DEAD_LETTER_NAMESPACE)
    code, out, err = cli("alarms", "redrive", alert, "--data", str(data))
    assert code == 0, err
    assert out == f"{alert}: redriven (1 time); due now\n"
    assert f"`plantwatch up --data {data}` sends them on its next step while" in err
    assert [k for k, _ in stored(data, DEAD_LETTER_NAMESPACE)] == [command]
    [(key, record)] = stored(data, OUTBOX_NAMESPACE)
    assert (key, record["attempts"], record["redrives"]) == (alert, 0, 1)
    state, sink = SqliteStateStore(data / "state.db"), EventSink()
    try:
        assert DeliveryOutbox(sink, state, SystemClock()).retry_due() == 1
    finally:
        state.close()
    assert sink.done == ["alarm raised"]


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(data: Path) -> None:
    before = (data / "state.db").read_bytes()
    code, out, err = cli("alarms", "redrive", "--all", "--dry-run", "--json", "--data", str(data))
    assert code == 0, err
    assert [r["status"] for r in json.loads(out)] == ["would redrive", "would redrive"]
    assert (data / "state.db").read_bytes() == before


def test_redrive_all_as_json(data: Path) -> None:
    keys = [k for k, _ in stored(data, DEAD_LETTER_NAMESPACE)]
    code, out, err = cli("alarms", "redrive", "--all", "--json", "--data", str(data))
    assert code == 0, err
    assert json.loads(out) == [{"key": k, "status": "redriven", "redrives": 1} for k in keys]
    assert stored(data, DEAD_LETTER_NAMESPACE) == []
    assert [k for k, _ in stored(data, OUTBOX_NAMESPACE)] == keys


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["nope-1", "nope-2"], "no dead letter 'nope-1', 'nope-2'"),
        ([], "name the dead letters to redrive"),
        (["--all", "nope"], "either KEY ... or --all"),
    ],
)
def test_bad_keys_exit_2_with_one_line_and_redrive_nothing(
    data: Path, argv: list[str], names: str
) -> None:
    before = (data / "state.db").read_bytes()
    [(alert, _), _] = stored(data, DEAD_LETTER_NAMESPACE)
    extra = [alert] if argv and argv[0].startswith("nope") else []
    code, out, err = cli("alarms", "redrive", *extra, *argv, "--data", str(data))
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and names in err, err
    assert (data / "state.db").read_bytes() == before


def test_a_missing_data_directory_exits_2(tmp_path: Path) -> None:
    for argv in (["dead-letters"], ["redrive", "--all"]):
        code, _out, err = cli("alarms", *argv, "--data", str(tmp_path / "missing"))
        assert code == 2 and "no such data directory" in err
    assert list(tmp_path.iterdir()) == []


def test_beside_a_running_stack_the_hint_says_it_sends_them(data: Path) -> None:
    from cloud.detectors.alarms.operations import beat

    state = SqliteStateStore(data / "state.db")
    beat(state, SystemClock().now(), [])
    state.close()
    code, _out, err = cli("alarms", "redrive", "--all", "--data", str(data))
    assert code == 0
    assert err == "the running `plantwatch up` sends them on its next step\n"
