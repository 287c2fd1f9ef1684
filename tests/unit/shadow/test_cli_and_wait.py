"""``plantwatch shadow`` against the store file (no broker), and ``wait`` on an injected clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.cli.main import main
from cloud.shadow.client import DirectShadowClient
from cloud.shadow.document import apply_update, get_document
from cloud.shadow.wait import pending_keys, wait_in_sync
from edge.clock import ManualClock


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["shadow", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_set_get_delete_against_the_store_when_no_broker_runs(tmp_path: Path, capsys):
    data = str(tmp_path)
    code, out, err = run_cli(
        capsys, "set", "pump-1", "mode=safe", "setpoints.temp_c=60", "--data", data, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["state"] == {"desired": {"mode": "safe", "setpoints": {"temp_c": 60}}}
    assert "no broker" in err and "directly" in err
    code, out, _ = run_cli(capsys, "get", "pump-1", "--data", data, "--json")
    assert json.loads(out)["state"]["delta"] == {"mode": "safe", "setpoints": {"temp_c": 60}}
    code, out, _ = run_cli(capsys, "get", "pump-1", "--data", data)
    assert "setpoints.temp_c" in out and "version 1" in out
    code, out, _ = run_cli(capsys, "delete", "pump-1", "--data", data, "--json")
    assert (code, json.loads(out)["version"]) == (0, 1)
    code, _, err = run_cli(capsys, "get", "pump-1", "--data", data)
    assert code == 2 and "No shadow exists with name: 'pump-1'" in err


def test_out_of_range_value_is_refused_before_anything_is_written(tmp_path: Path, capsys):
    code, out, err = run_cli(
        capsys, "set", "pump-2", "sampling_interval_s=0", "--data", str(tmp_path)
    )
    assert code == 2 and out == ""
    assert err.strip() == (
        "plantwatch: error: sampling_interval_s=0: out of range; allowed 0.1..3600 seconds"
    )
    assert not (tmp_path / "shadows.db").exists()


def test_version_conflict_exits_1(tmp_path: Path, capsys):
    data = str(tmp_path)
    run_cli(capsys, "set", "pump-3", "mode=safe", "--data", data)
    code, _, err = run_cli(capsys, "set", "pump-3", "mode=stop", "--version", "7", "--data", data)
    assert code == 1 and "Version conflict" in err


def test_wait_times_out_then_succeeds_once_reported(tmp_path: Path, capsys):
    data = str(tmp_path)
    run_cli(capsys, "set", "pump-4", "mode=safe", "--data", data)
    code, out, _ = run_cli(
        capsys, "wait", "pump-4", "mode=safe", "--timeout", "0.3", "--data", data, "--json"
    )
    summary = json.loads(out)
    assert code == 1 and summary["in_sync"] is False
    assert summary["pending"] == {"mode": {"desired": "safe", "reported": None}}
    device = DirectShadowClient(tmp_path / "shadows.db", ManualClock())
    device.update("pump-4", reported={"mode": "safe"})
    device.close()
    code, out, _ = run_cli(capsys, "wait", "pump-4", "--timeout", "1", "--data", data, "--json")
    assert code == 0 and json.loads(out)["in_sync"] is True


def test_wait_uses_the_injected_clock(tmp_path: Path):
    clock = ManualClock(0)
    api = DirectShadowClient(tmp_path / "s.db", clock)
    api.update("pump-5", desired={"mode": "stop"}, reported={"mode": "normal"})
    result = wait_in_sync(api, "pump-5", None, 30.0, clock, poll_s=5.0)
    assert not result.in_sync and result.waited_s == 30.0
    assert result.pending == {"mode": {"desired": "stop", "reported": "normal"}}
    missing = wait_in_sync(api, "nobody", {"mode": "safe"}, 1.0, clock)
    assert not missing.in_sync and missing.document is None
    api.close()


def test_without_targets_whatever_the_shadow_holds_in_its_delta_is_pending():
    """A key may hold a dot (AWS allows any JSON key): desired ``{"a.b": 1}`` is not met by
    reported ``{"a": {"b": 1}}`` and the shadow's delta says so. Comparing dotted
    flattenings called the two equal, and ``wait`` reported in sync while ``get`` still
    showed the delta."""
    request = {"state": {"desired": {"a.b": 1, "c": 2}, "reported": {"a": {"b": 1}, "c": 2}}}
    document = get_document(apply_update(None, request, 1_750_000_000).shadow, 1_750_000_000)
    assert document["state"]["delta"] == {"a.b": 1}
    assert pending_keys(document, None) == {"a.b": {"desired": 1, "reported": None}}
    synced = {"state": {"desired": {"a.b": 1}, "reported": {"a.b": 1}}}
    assert pending_keys(get_document(apply_update(None, synced, 1).shadow, 1), None) == {}


def test_missing_data_dir_is_a_usage_error(tmp_path: Path, capsys):
    code, _, err = run_cli(capsys, "get", "pump-6", "--data", str(tmp_path / "nope"))
    assert code == 2 and "--broker-url" in err


def test_list_shows_named_shadows_only(tmp_path: Path, capsys):
    data = str(tmp_path)
    run_cli(capsys, "set", "pump-7", "mode=safe", "--data", data)
    for name in ("config", "alarms"):
        run_cli(capsys, "set", "pump-7", "mode=safe", "--name", name, "--data", data)
    code, out, _ = run_cli(capsys, "list", "pump-7", "--data", data, "--json")
    assert (code, json.loads(out)) == (0, ["alarms", "config"])


def test_set_version_0_creates_a_shadow_only_if_it_never_existed(tmp_path: Path, capsys):
    """Contract 2.1 (``version`` is an integer >= 0) and 4.6 Choice: ``version`` 0 sent to a
    shadow that never existed creates it; once it exists, 0 is a 409 like any stale version."""
    data = str(tmp_path)
    code, out, err = run_cli(
        capsys, "set", "pump-5", "mode=safe", "--version", "0", "--data", data, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["version"] == 1
    code, _, err = run_cli(capsys, "set", "pump-5", "mode=stop", "--version", "0", "--data", data)
    assert code == 1 and "Version conflict" in err
    code, _, err = run_cli(capsys, "set", "pump-5", "mode=stop", "--version", "-1", "--data", data)
    assert code == 2 and "--version" in err


@pytest.mark.parametrize("thing", ["pump 7", "t" * 129, "$pump"])
def test_list_refuses_an_invalid_thing_name_like_get_does(tmp_path: Path, capsys, thing: str):
    """Contract section 5 Choice: a thing name that breaks ``[a-zA-Z0-9:_-]{1,128}`` gets
    400 ``Invalid thing name``, for ``list`` as for ``get`` (the REST face's
    ListNamedShadowsForThing answers it too), instead of "no named shadows"."""
    data = str(tmp_path)
    run_cli(capsys, "set", "pump-7", "mode=safe", "--name", "cfg", "--data", data)
    for action in ("get", "list"):
        code, out, err = run_cli(capsys, action, thing, "--data", data)
        assert code != 0 and out == "", (action, out)
        assert "400 Invalid thing name" in err, (action, err)
